"""A Django 5 project runs on its SQLite file's copy unchanged: every object reads back equal (Decimal,
UUID, timedelta, time, aware datetime, dict, IP), writes work, `migrate --check` is clean and the next
migration (a new field, a named constraint removed) applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.runner import run, seeded
from pgcatalog import column_types
from pgferry.errors import TargetError
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify


@pytest.fixture
def django_file(tmp_path: Path) -> tuple[Path, Path]:
    return seeded("django_catalog", tmp_path, "django.db")


def test_django_runs_on_the_default_copy(django_file: tuple[Path, Path], pg_dsn: str, tmp_path: Path) -> None:
    app, db = django_file
    casts = tmp_path / "casts.toml"  # the one field the file cannot tell apart from a BigIntegerField
    casts.write_text('[columns]\n"catalog_book.reading_time" = "interval"\n')
    job = copy_and_verify(db, pg_dsn, CopyOptions(jobs=2, casts_file=str(casts)))
    assert job.identical, job.verify
    assert job.copy.plan is not None and job.copy.plan.framework == {
        "name": "Django",
        "evidence": "table django_migrations",
    }
    assert column_types(pg_dsn, "catalog_author") == {
        "id": "bigint",
        "name": "character varying(300)",  # 300 characters, more bytes
        "uid": "uuid",
        "ip": "inet",
        "joined": "timestamp with time zone",
        "profile": "jsonb",
        "flags": "smallint",
    }
    book = column_types(pg_dsn, "catalog_book")
    assert (book["price"], book["reading_time"], book["starts_at"], book["pages"], book["big"]) == (
        "numeric",
        "interval",
        "time without time zone",
        "integer",
        "bigint",
    )
    notes = {c["column"]: c["note"] for c in job.copy.choices if c["table"] == "catalog_book"}
    assert "DurationField" in notes["big"] and notes["author_id"] is None  # a key is no duration
    assert column_types(pg_dsn, "auth_user")["username"] == "character varying(150)"  # empty, as declared
    [json_check] = [s for s in job.copy.skipped if "JSON_VALID" in s.name.upper()]
    assert "holds only valid JSON" in json_check.reason
    assert run(app, "check", pg_dsn).splitlines()[-1] == "ok"
    (app / "later" / "0002_later.py").rename(app / "catalog" / "migrations" / "0002_later.py")
    assert run(app, "next", pg_dsn).splitlines()[-1] == "ok"


def test_django_schema_made_by_migrate_filled_into_existing(django_file: tuple[Path, Path], pg_dsn: str) -> None:
    """Django's migrate makes the schema on PostgreSQL (its own constraint names, deferrable foreign keys,
    identity columns, and rows in django_migrations, django_content_type, auth_permission); the copy
    fills it, converting to Django's types: no --cast needed, the DurationField is interval there."""
    app, db = django_file
    assert run(app, "migrate", pg_dsn).splitlines()[-1] == "ok"
    with pytest.raises(TargetError, match=r"already hold rows: auth_permission \(\d+ rows\), django_content_type"):
        copy_and_verify(db, pg_dsn, CopyOptions(jobs=2, into_existing=True))
    job = copy_and_verify(db, pg_dsn, CopyOptions(jobs=2, into_existing=True, truncate_existing=True))
    assert job.identical, job.verify
    notes = "\n".join(job.copy.notes)
    assert "one TRUNCATE): auth_permission" in notes and "django_migrations" in notes
    assert "sequences set above the copied keys after the data: " in notes and "public.catalog_book_id_seq" in notes
    converters = {(c.source, c.choice.converter) for c in job.copy.plan.table("catalog_book").columns} | {
        (c.source, c.choice.converter) for c in job.copy.plan.table("catalog_author").columns
    }
    assert {("reading_time", "micros_interval"), ("price", "numeric_fit"), ("uid", "uuid_hex")} <= converters
    assert {("joined", "utc_text"), ("ip", "inet_text"), ("profile", "json_any")} <= converters
    assert run(app, "check", pg_dsn).splitlines()[-1] == "ok"
    (app / "later" / "0002_later.py").rename(app / "catalog" / "migrations" / "0002_later.py")
    assert run(app, "next", pg_dsn).splitlines()[-1] == "ok"
