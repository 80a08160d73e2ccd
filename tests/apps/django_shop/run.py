"""Run one step of the Django shop: `python run.py STEP` with PGFERRY_TEST_DB set.

seed             create the tables (syncdb, no migrations) and the rows
remake           what a migration altering a field does on SQLite: rebuild shop_customer and shop_orderline
allow_null       AlterField(Customer.city, null=True): a rebuild of shop_customer that keeps its column types
capture          serve a few "requests" through pgferry's capture wrapper, written to PGFERRY_TEST_WORKLOAD; each
                 request is a `request_scope`. Planted: filters on unindexed columns (email, city,
                 status), an N+1 loop (`order.customer` per order, in `order_report`), two writes with
                 no transaction (`sign_up`); not a defect: two writes in `transaction.atomic()`
                 (`checkout`). Django hands `%s` markers to its cursor: that is what the log holds.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django

django.setup()

from django.core.management import call_command
from django.db import transaction
from django.db.backends.signals import connection_created
from shop.models import Customer, Order, OrderLine

from pgferry.workload import JsonlSink, capture, request_scope

CUSTOMERS = 400
CITIES = 40


def seed() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)
    Customer.objects.bulk_create(
        Customer(name=f"customer {i}", email=f"c{i}@example.com", city=f"city {i % CITIES}") for i in range(CUSTOMERS)
    )
    ids = list(Customer.objects.values_list("id", flat=True))
    Order.objects.bulk_create(
        Order(customer_id=ids[i % len(ids)], status=("open", "paid", "shipped", "void")[i % 4], total=i)
        for i in range(CUSTOMERS * 5)
    )
    orders = list(Order.objects.values_list("id", flat=True)[:200])
    OrderLine.objects.bulk_create(OrderLine(order_id=o, sku=f"sku-{k}") for o in orders for k in range(3))


def remake() -> None:
    """AlterField on SQLite: Django rebuilds each table from its model (create, copy, drop, rename)."""
    from django.db import connection, models

    for model, name in ((Customer, "name"), (OrderLine, "sku")):
        old = model._meta.get_field(name)
        new = models.CharField(max_length=old.max_length + 1)
        new.set_attributes_from_name(name)
        new.model = model
        with connection.schema_editor() as editor:
            editor.alter_field(model, old, new)
    print("ok")


def allow_null() -> None:
    """AlterField(null=True) on SQLite: the table is rebuilt (create, copy, drop, rename), its types kept."""
    from django.db import connection, models

    old = Customer._meta.get_field("city")
    new = models.CharField(max_length=old.max_length, null=True)
    new.set_attributes_from_name("city")
    new.model = Customer
    with connection.schema_editor() as editor:
        editor.alter_field(Customer, old, new)
    print("ok")


def find_customer(email: str) -> str | None:
    customer = Customer.objects.filter(email=email).first()
    return customer.name if customer else None


def city_customers(city: str) -> int:
    return len(list(Customer.objects.filter(city=city)))


def open_orders() -> int:
    return Order.objects.filter(status="open").count()


def order_report() -> list[str]:
    return [order.customer.name for order in Order.objects.order_by("-id")[:25]]  # N+1: one lookup per order


def sign_up(i: int) -> None:
    customer = Customer.objects.create(name=f"new {i}", email=f"new{i}@example.com", city="city 0")
    Order.objects.create(customer=customer, status="open", total=0)  # a second write, no transaction


def checkout(i: int) -> None:
    with transaction.atomic():
        customer = Customer.objects.create(name=f"buyer {i}", email=f"buyer{i}@example.com", city="city 1")
        Order.objects.create(customer=customer, status="paid", total=i)


def serve(log: str) -> None:
    sink = JsonlSink(log)

    def wrap(sender: object, connection: object, **kwargs: object) -> None:
        connection.connection = capture(connection.connection, sink)  # type: ignore[attr-defined]

    connection_created.connect(wrap)
    for i in range(30):
        with request_scope():
            find_customer(f"c{i * 7}@example.com")
        with request_scope():
            city_customers(f"city {i % CITIES}")
        with request_scope():
            open_orders()
    for i in range(4):
        with request_scope():
            order_report()
        with request_scope():
            sign_up(i)
        with request_scope():
            checkout(i)
    sink.close()
    print("ok")


if __name__ == "__main__":
    {
        "seed": seed,
        "remake": remake,
        "allow_null": allow_null,
        "capture": lambda: serve(os.environ["PGFERRY_TEST_WORKLOAD"]),
    }[sys.argv[1]]()
