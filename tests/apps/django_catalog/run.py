"""Run one step of the Django test project: `python run.py STEP` with PGFERRY_TEST_DB set.

seed     migrate and write the objects (on SQLite)
migrate  Django's own schema on an empty database (for copy --into-existing); prints "ok"
check    read every object back equal, types included; create, update, delete; a deferred forward
         reference; `migrate --check`; prints "ok" (on the copy)
next     apply the next migration (later/0002_later.py must be in catalog/migrations) and use it
"""

import datetime
import decimal
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django

django.setup()

from catalog.models import Author, Book
from django.core.management import call_command
from django.db import connection, transaction

UTC = datetime.UTC
AUTHORS = 30


def author_fields(i: int) -> dict:
    return {
        "name": f"author {i} " + "é" * (300 - len(f"author {i} ")) if i == 1 else f"author {i}",
        "uid": uuid.UUID(int=i * 7919),
        "ip": None if i % 5 == 0 else (f"2001:db8::{i:x}" if i % 2 else f"10.0.0.{i}"),
        "joined": datetime.datetime(2024, 1, 1, 12, 0, tzinfo=UTC) + datetime.timedelta(days=i, microseconds=i * 37),
        "profile": None if i % 7 == 0 else {"i": i, "tags": ["a", "b"], "nested": {"x": None}},
        "flags": i % 4,
    }


def book_fields(i: int) -> dict:
    return {
        "title": f"book {i}",
        "price": decimal.Decimal(f"{i}.{i % 100:02d}"),
        "pages": 100 + i,
        "reading_time": datetime.timedelta(days=i % 3, hours=i % 24, microseconds=i * 11),
        "starts_at": datetime.time(i % 24, i % 60, i % 60, (i * 1000) % 1_000_000),
        "published": datetime.date(2000, 1, 1) + datetime.timedelta(days=i * 30),
        "in_print": bool(i % 2),
        "big": 2**40 + i,
    }


def seed() -> None:
    call_command("migrate", verbosity=0)
    for i in range(1, AUTHORS + 1):
        author = Author.objects.create(**author_fields(i))
        for j in range(3):
            Book.objects.create(author=author, **book_fields(i * 10 + j))


def migrate() -> None:
    call_command("migrate", verbosity=0)
    print("ok")


def same(expected: dict, obj: object) -> None:
    for name, value in expected.items():
        got = getattr(obj, name)
        assert type(got) is type(value) and got == value, (type(obj).__name__, obj.pk, name, got, value)


def check() -> None:
    assert Author.objects.count() == AUTHORS and Book.objects.count() == AUTHORS * 3
    for i in range(1, AUTHORS + 1):
        author = Author.objects.get(name=author_fields(i)["name"])
        same(author_fields(i), author)
        for j, book in enumerate(author.books.order_by("id")):
            same(book_fields(i * 10 + j), book)
    # filters through the types (uuid = uuid, interval > interval, inet = inet, aware datetimes)
    assert Author.objects.filter(uid=uuid.UUID(int=7919)).count() == 1
    assert Book.objects.filter(reading_time__gt=datetime.timedelta(days=2)).exists()
    assert Author.objects.filter(ip="10.0.0.2").count() == 1
    assert Author.objects.filter(joined__lt=datetime.datetime(2024, 1, 3, tzinfo=UTC)).count() == 1
    assert Author.objects.filter(profile__i=3).count() == 1
    # create, update, delete
    new = Author.objects.create(**{**author_fields(999), "name": "new author"})
    Book.objects.create(author=new, **book_fields(9990))
    Book.objects.filter(author=new).update(price=decimal.Decimal("1.50"))
    assert Book.objects.get(author=new).price == decimal.Decimal("1.50")
    new.delete()
    # a forward reference inside a transaction: the FK is checked at commit
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO catalog_book (author_id, title, price, pages, reading_time, starts_at, published,"
                " in_print, big) VALUES (%s, 'forward', 1, 1, '1 second', '00:00', '2000-01-01', true, 0)",
                [10_000],
            )
        Author.objects.create(id=10_000, **{**author_fields(10_000), "name": "late parent"})
    call_command("migrate", "--check", verbosity=0)
    print("ok")


def next_migration() -> None:
    call_command("migrate", verbosity=0)
    book = Book.objects.first()
    book.isbn = "9780000000000"
    book.pages = 0  # allowed once book_pages_sane is gone
    book.save()
    print("ok")


if __name__ == "__main__":
    {"seed": seed, "migrate": migrate, "check": check, "next": next_migration}[sys.argv[1]]()
