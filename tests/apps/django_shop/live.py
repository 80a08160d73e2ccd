"""The shop as a live application for tests/test_apps_live_cutover.py: plain Django, no pgferry.

python live.py write ACKS SWITCH SWITCHED AFTER
    Write in a loop through the ORM: a new customer, a checkout (a customer and an order in one
    `transaction.atomic()`), an update of a seeded customer's name. Each write Django returned from is
    acknowledged: one JSON line appended to ACKS, flushed. A write that raised (SQLite's "database is
    locked" past Django's busy timeout) is logged as failed and done again. Before each write the
    process looks for SWITCH: once it exists it holds a DSN; the process closes its connections, points
    DATABASES["default"] at PostgreSQL, creates SWITCHED and goes on there for AFTER writes, then stops.
    It gives up after LIMIT_S seconds in all (a write failing for ever cannot keep it going).
python live.py readback  (PGFERRY_TEST_ACKS=ACKS)
    On PGFERRY_TEST_DB (PostgreSQL): read every acknowledged object back through the ORM, compare it
    field by field, create one more customer; print "ok" or what differs.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django

django.setup()

from django.db import DatabaseError, connections, transaction
from settings import database
from shop.models import Customer, Order

LIMIT_S = 120.0
PAUSE_S = 0.002  # between writes: the application's own pace
UPDATED = 50  # the seeded customers the updates go to (ids 1-50)


def one_write(i: int) -> dict[str, object]:
    """Write number i; what was written, as it should read back."""
    name = f"live {i}"
    if i % 3 == 0:
        customer = Customer.objects.create(name=name, email=f"live{i}@example.com", city="live")
        return {"op": "create", "id": customer.pk, "name": name}
    if i % 3 == 1:
        with transaction.atomic():
            customer = Customer.objects.create(name=name, email=f"live{i}@example.com", city="checkout")
            order = Order.objects.create(customer=customer, status="paid", total=i)
        return {"op": "checkout", "id": customer.pk, "name": name, "order": order.pk, "total": i}
    target = 1 + i % UPDATED
    assert Customer.objects.filter(pk=target).update(name=f"updated {i}") == 1
    return {"op": "update", "id": target, "name": f"updated {i}"}


def switch(dsn: str) -> None:
    """What a deploy of new settings does, in process: close every connection, point "default" at
    PostgreSQL; the next query connects there."""
    connections.close_all()
    del connections["default"]
    connections.settings["default"] = connections.configure_settings({"default": database(dsn)})["default"]


def write(acks: str, switch_file: str, switched: str, after: int) -> None:
    started, on, i, left = time.monotonic(), "sqlite", 0, after
    with open(acks, "a", encoding="utf-8") as log:
        while left > 0:
            if time.monotonic() - started > LIMIT_S:
                sys.exit(f"still writing on {on} after {LIMIT_S:g} s")
            if on == "sqlite" and os.path.exists(switch_file):
                switch(Path(switch_file).read_text(encoding="utf-8"))
                on = "postgres"
                Path(switched + ".tmp").write_text(str(i), encoding="utf-8")
                os.replace(switched + ".tmp", switched)
            try:
                record = one_write(i)
            except DatabaseError as exc:  # not acknowledged: done again
                log.write(json.dumps({"i": i, "db": on, "failed": str(exc)}) + "\n")
                log.flush()
                continue
            log.write(json.dumps({"i": i, "db": on, **record}) + "\n")
            log.flush()
            i += 1
            left -= on == "postgres"
            time.sleep(PAUSE_S)
    print("ok")


def readback(acks: str) -> None:
    lines = [json.loads(line) for line in Path(acks).read_text(encoding="utf-8").splitlines()]
    done = [a for a in lines if "failed" not in a]
    wrong = []
    for ack in done:
        if (
            ack["op"] == "update"
            and max(a["i"] for a in done if a["op"] == "update" and a["id"] == ack["id"]) > ack["i"]
        ):
            continue  # updated again later: the last update is the one to read
        customer = Customer.objects.get(pk=ack["id"])
        if customer.name != ack["name"]:
            wrong.append(f"customer {ack['id']}: {customer.name!r}, acknowledged {ack['name']!r}")
        if ack["op"] == "checkout":
            order = Order.objects.select_related("customer").get(pk=ack["order"])
            if (order.customer.name, order.status, order.total) != (ack["name"], "paid", ack["total"]):
                wrong.append(f"order {ack['order']}: {order.customer.name!r} {order.status} {order.total}")
    created = sum(a["op"] in ("create", "checkout") for a in done)
    if Customer.objects.filter(name__startswith="live ").count() != created:
        wrong.append(
            f"{Customer.objects.filter(name__startswith='live ').count()} live customers, {created} acknowledged"
        )
    extra = Customer.objects.create(name="after the cutover", email="after@example.com", city="pg")
    if extra.pk <= max(a["id"] for a in done):
        wrong.append(f"the next customer got id {extra.pk}")
    print("\n".join(wrong) or "ok")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        readback(os.environ["PGFERRY_TEST_ACKS"])
