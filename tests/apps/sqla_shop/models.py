"""The SQLAlchemy shop: the columns the code filters on have no index (planted defects)."""

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))  # filtered on, not indexed
    city: Mapped[str] = mapped_column(String(100))  # filtered on, not indexed


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # filtered on, not indexed
    total: Mapped[int]
    customer: Mapped[Customer] = relationship()
