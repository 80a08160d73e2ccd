"""Run one step of the SQLAlchemy + Alembic test project: `python run.py STEP` with PGFERRY_TEST_DB set.

seed     alembic upgrade head and write the objects (on SQLite)
migrate  alembic upgrade head on an empty database (the schema copy --into-existing fills); prints "ok"
check    read every object back equal, types included; create, update, delete; a deferred forward
         reference; `alembic check` clean; prints "ok" (on the copy)
diff     what `alembic revision --autogenerate` would write: the index operations, one per line
next     apply the next migration (later/0002_later.py must be in migrations/versions) and use it
"""

import datetime
import decimal
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from alembic import command
from alembic.config import Config
from models import Item, Shelf, Status, engine
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

SHELVES = 20
CONFIG = Config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "alembic.ini"))


def shelf_fields(i: int) -> dict:
    return {
        "label": "é" * 300 if i == 1 else f"shelf {i}",
        "code": uuid.UUID(int=i * 104729),
        "opened": datetime.datetime(2023, 5, 1, 8, 30) + datetime.timedelta(hours=i, microseconds=i * 13),
        "meta": None if i % 6 == 0 else {"i": i, "list": [1, 2.5, "x"], "none": None},
    }


def item_fields(i: int) -> dict:
    return {
        "price": decimal.Decimal(f"{i * 3}.{i % 100:02d}"),
        "weight": i,
        # negative ones too: SQLAlchemy stores 1970-01-01 plus the duration, a date before 1970 for these
        "lasts": datetime.timedelta(days=i % 5 - 2, seconds=i * 7, microseconds=i),
        "opens_at": datetime.time(i % 24, (i * 7) % 60, i % 60),
        "made": datetime.date(2010, 1, 1) + datetime.timedelta(days=i * 11),
        "fragile": bool(i % 3),
        "status": Status.live if i % 2 else Status.draft,
    }


def seed() -> None:
    command.upgrade(CONFIG, "head")
    with Session(engine()) as session:
        for i in range(1, SHELVES + 1):
            shelf = Shelf(**shelf_fields(i))
            shelf.items = [Item(**item_fields(i * 10 + j)) for j in range(4)]
            session.add(shelf)
        session.commit()


def same(expected: dict, obj: object) -> None:
    for name, value in expected.items():
        got = getattr(obj, name)
        assert type(got) is type(value) and got == value, (type(obj).__name__, obj.id, name, got, value)


def check() -> None:
    with Session(engine()) as session:
        assert session.scalar(select(func.count()).select_from(Shelf)) == SHELVES
        for i in range(1, SHELVES + 1):
            shelf = session.scalars(select(Shelf).where(Shelf.label == shelf_fields(i)["label"])).one()
            same(shelf_fields(i), shelf)
            for j, item in enumerate(shelf.items):
                same(item_fields(i * 10 + j), item)
        assert session.scalars(select(Shelf).where(Shelf.code == uuid.UUID(int=104729))).one().label == "é" * 300
        assert session.scalars(select(Item).where(Item.lasts > datetime.timedelta(days=1))).first() is not None
        assert session.scalar(select(func.count()).select_from(Item).where(Item.status == Status.live)) == 40
        # create, update, delete
        shelf = Shelf(**{**shelf_fields(500), "label": "new"})
        shelf.items = [Item(**item_fields(5000))]
        session.add(shelf)
        session.commit()
        assert shelf.id == SHELVES + 1  # above the copied ids: the identity was set
        shelf.items[0].price = decimal.Decimal("2.50")
        session.commit()
        session.delete(shelf.items[0])
        session.delete(shelf)
        session.commit()
        # a forward reference: the deferred foreign key is checked at commit
        session.execute(
            text(
                "INSERT INTO item (shelf_id, price, weight, lasts, opens_at, made, fragile, status) "
                "VALUES (9000, 1, 1, '1 second', '00:00', '2000-01-01', true, 'live')"
            )
        )
        session.add(Shelf(id=9000, **{**shelf_fields(9000), "label": "late"}))
        session.commit()
    command.check(CONFIG)
    print("ok")


def migrate() -> None:
    command.upgrade(CONFIG, "head")
    print("ok")


def next_migration() -> None:
    command.upgrade(CONFIG, "head")
    with Session(engine()) as session:
        session.execute(text("UPDATE item SET isbn = '9780000000000', weight = 0 WHERE id = 1"))
        session.commit()
    print("ok")


def diff() -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from models import Base

    with engine().connect() as conn:
        for op in compare_metadata(MigrationContext.configure(conn), Base.metadata):
            if op[0] in ("add_index", "remove_index"):
                print(op[0], op[1].name)


if __name__ == "__main__":
    {"seed": seed, "migrate": migrate, "check": check, "next": next_migration, "diff": diff}[sys.argv[1]]()
