"""Run one step of the SQLAlchemy shop: `python run.py STEP` with PGFERRY_TEST_DB set.

seed             create the tables and the rows
capture          serve a few "requests" through pgferry's capture wrapper (the engine's `creator`),
                 written to PGFERRY_TEST_WORKLOAD, in the parameter style SHOP_PARAMSTYLE names (`named`, the default:
                 `:name` markers and dict values; or `qmark`). Planted: filters on unindexed columns (email, city, status), an N+1
                 loop (lazy `order.customer`, in `order_report`), two writes in autocommit with no
                 transaction (`adjust`); not a defect: one session flush of two INSERTs, which runs in
                 the transaction Python's sqlite3 opens implicitly (`checkout`).
"""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import Base, Customer, Order
from sqlalchemy import create_engine, func, insert, select, update
from sqlalchemy.orm import Session

from pgferry.workload import JsonlSink, capture, request_scope

PATH = os.environ["PGFERRY_TEST_DB"].removeprefix("sqlite:")
CUSTOMERS = 400
CITIES = 40
STYLE = os.environ.get("SHOP_PARAMSTYLE", "named")  # or "qmark", SQLAlchemy's default for sqlite3


def seed() -> None:
    engine = create_engine(f"sqlite:///{PATH}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(
            Customer(id=i + 1, name=f"customer {i}", email=f"c{i}@example.com", city=f"city {i % CITIES}")
            for i in range(CUSTOMERS)
        )
        session.add_all(
            Order(customer_id=i % CUSTOMERS + 1, status=("open", "paid", "shipped", "void")[i % 4], total=i)
            for i in range(CUSTOMERS * 5)
        )
        session.commit()


def find_customer(session: Session, email: str) -> str | None:
    customer = session.scalars(select(Customer).where(Customer.email == email)).first()
    return customer.name if customer else None


def city_customers(session: Session, city: str) -> int:
    return len(session.scalars(select(Customer).where(Customer.city == city)).all())


def open_orders(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Order).where(Order.status == "open")) or 0


def order_report(session: Session) -> list[str]:
    orders = session.scalars(select(Order).order_by(Order.id.desc()).limit(25)).all()
    return [order.customer.name for order in orders]  # N+1: a lazy load per order


def checkout(session: Session, i: int) -> None:
    customer = Customer(name=f"buyer {i}", email=f"buyer{i}@example.com", city="city 1")
    session.add_all([customer, Order(customer=customer, status="paid", total=i)])
    session.commit()  # one flush: both INSERTs in the driver's implicit transaction


def adjust(engine: object, i: int) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # type: ignore[attr-defined]
        conn.execute(insert(Customer).values(name=f"walk-in {i}", email=f"w{i}@example.com", city="city 2"))
        conn.execute(update(Order).where(Order.id == i + 1).values(total=Order.total + 1))  # no transaction


def serve(log: str) -> None:
    sink = JsonlSink(log)
    engine = create_engine("sqlite://", creator=lambda: capture(sqlite3.connect(PATH), sink), paramstyle=STYLE)
    for i in range(30):
        with request_scope(), Session(engine) as session:
            find_customer(session, f"c{i * 7}@example.com")
        with request_scope(), Session(engine) as session:
            city_customers(session, f"city {i % CITIES}")
        with request_scope(), Session(engine) as session:
            open_orders(session)
    for i in range(4):
        with request_scope(), Session(engine) as session:
            order_report(session)
        with request_scope(), Session(engine) as session:
            checkout(session, i)
        with request_scope():
            adjust(engine, i)
    engine.dispose()
    sink.close()
    print("ok")


if __name__ == "__main__":
    {"seed": seed, "capture": lambda: serve(os.environ["PGFERRY_TEST_WORKLOAD"])}[sys.argv[1]]()
