"""SQLAlchemy 2 models whose PostgreSQL types differ from their SQLite ones (Numeric, Uuid, Interval, Time,
JSON, DateTime, a native Enum, Boolean), with a deferrable foreign key: Alembic makes the PostgreSQL
schema itself and `copy --into-existing` fills it."""

import datetime
import decimal
import enum
import os
import uuid

import psycopg
from sqlalchemy import JSON, Enum, ForeignKey, Numeric, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Status(enum.Enum):
    draft = "draft"
    live = "live"


class Base(DeclarativeBase):
    pass


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
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelf.id", deferrable=True, initially="DEFERRED"))
    price: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
    lasts: Mapped[datetime.timedelta]
    opens_at: Mapped[datetime.time]
    made: Mapped[datetime.date]
    fragile: Mapped[bool]
    status: Mapped[Status] = mapped_column(Enum(Status, name="status"))  # native: a PostgreSQL enum type
    shelf: Mapped[Shelf] = relationship(back_populates="items")


def engine():
    target = os.environ["PGFERRY_TEST_DB"]
    if target.startswith("sqlite:"):
        return create_engine(f"sqlite:///{target[len('sqlite:') :]}")
    params = psycopg.conninfo.conninfo_to_dict(target)
    url = "postgresql+psycopg://{user}:{password}@{host}:{port}/{dbname}".format(**params)
    return create_engine(url)
