"""Steps of the wide-model SQLAlchemy project: `python run.py STEP` with PGFERRY_TEST_DB=sqlite:PATH.

seed   create the table and write members (some with a profile, a few with links)
orm    add/flush (RETURNING ids), change and flush (rowcount checked: StaleDataError otherwise), a
       bulk UPDATE's rowcount, delete, add_all; prints one JSON line of what the ORM reported and the
       rows read back, to compare split against unsplit
"""

import json
import os

from sqlalchemy import String, create_engine, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Member(Base):
    __tablename__ = "wide_member"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    email: Mapped[str] = mapped_column(String(80))
    logins: Mapped[int]
    bio: Mapped[str | None]
    location: Mapped[str | None]
    website: Mapped[str | None]
    github: Mapped[str | None]
    mastodon: Mapped[str | None]
    discord: Mapped[str | None]


def engine():
    return create_engine("sqlite:///" + os.environ["PGFERRY_TEST_DB"][len("sqlite:") :])


def seed() -> None:
    Base.metadata.create_all(engine())
    with Session(engine()) as session:
        for i in range(1, 41):
            profile = i % 3 == 0
            session.add(
                Member(
                    username=f"m{i}",
                    email=f"m{i}@x",
                    logins=i,
                    bio=f"bio {i}" if profile else None,
                    location="Oslo" if profile else None,
                    website=f"https://m{i}.test" if profile else None,
                    github=f"gh{i}" if i % 7 == 0 else None,
                    mastodon=f"@m{i}" if i % 11 == 0 else None,
                    discord=f"d{i}" if i % 13 == 0 else None,
                )
            )
        session.commit()


def orm() -> None:
    out = {}
    with Session(engine()) as session:
        new = Member(username="new", email="new@x", logins=0, bio="fresh")
        session.add(new)
        session.flush()  # INSERT ... RETURNING id
        out["create_pk"] = new.id
        new.location, new.logins = "Bergen", 1  # UPDATE of a moved and a core column: rowcount must be 1
        session.flush()
        member = session.get(Member, 3)
        member.bio = None
        session.flush()
        out["bulk_update"] = session.execute(
            update(Member).where(Member.logins < 6).values(website="https://x.test")
        ).rowcount
        out["update_none"] = session.execute(update(Member).where(Member.id == 999).values(bio="x")).rowcount
        session.delete(session.get(Member, 7))
        session.flush()
        batch = [Member(username=f"b{i}", email=f"b{i}@x", logins=i, github=f"g{i}") for i in range(3)]
        session.add_all(batch)
        session.flush()
        out["bulk_pks"] = [m.id for m in batch]
        session.commit()
        out["rows"] = [
            [m.id, m.username, m.logins, m.bio, m.location, m.website, m.github, m.mastodon, m.discord]
            for m in session.scalars(select(Member).order_by(Member.id))
        ]
        out["count"] = session.scalar(select(func.count()).select_from(Member))
    print(json.dumps(out))


if __name__ == "__main__":
    import sys

    {"seed": seed, "orm": orm}[sys.argv[1]]()
