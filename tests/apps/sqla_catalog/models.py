"""SQLAlchemy 2 models whose PostgreSQL types differ from their SQLite ones, named by a naming convention
(Alembic's drop_constraint names them), with a deferrable foreign key. PGFERRY_TEST_NATIVE_ENUM=1 makes
the enum a PostgreSQL enum type (a schema Alembic makes itself, filled by copy --into-existing); without
it the enum is a VARCHAR on both sides (a default copy cannot know the type's values)."""

import datetime
import decimal
import enum
import os
import uuid

import psycopg
from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, MetaData, Numeric, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


NATIVE_ENUM = os.environ.get("PGFERRY_TEST_NATIVE_ENUM") == "1"


class Status(enum.Enum):
    draft = "draft"
    live = "live"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=CONVENTION)


class Shelf(Base):
    __tablename__ = "shelf"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(300), unique=True)
    code: Mapped[uuid.UUID]
    opened: Mapped[datetime.datetime]
    meta: Mapped[dict | None] = mapped_column(JSON)
    items: Mapped[list["Item"]] = relationship(back_populates="shelf", order_by="Item.id")


class Item(Base):
    __tablename__ = "item"
    __table_args__ = (CheckConstraint("weight > 0", name="weight_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelf.id", deferrable=True, initially="DEFERRED"))
    price: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
    weight: Mapped[int]
    lasts: Mapped[datetime.timedelta]
    opens_at: Mapped[datetime.time]
    made: Mapped[datetime.date]
    fragile: Mapped[bool]
    status: Mapped[Status] = mapped_column(Enum(Status, name="status", native_enum=NATIVE_ENUM, length=10))
    shelf: Mapped[Shelf] = relationship(back_populates="items")


def engine():
    target = os.environ["PGFERRY_TEST_DB"]
    if target.startswith("sqlite:"):
        return create_engine(f"sqlite:///{target[len('sqlite:') :]}")
    params = psycopg.conninfo.conninfo_to_dict(target)
    url = "postgresql+psycopg://{user}:{password}@{host}:{port}/{dbname}".format(**params)
    return create_engine(url)
