"""A SQLAlchemy 2 + Alembic project whose PostgreSQL schema Alembic made (`alembic upgrade head`: a native
enum type, uuid, interval, numeric(10,2), json, a deferrable foreign key) is filled by copy
--into-existing from its SQLite file: objects read back equal, writes work, `alembic check` is clean."""

from __future__ import annotations

from pathlib import Path

from apps.runner import run, seeded
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify


def test_alembic_schema_filled_into_existing(tmp_path: Path, pg_dsn: str) -> None:
    app, db = seeded("sqla_catalog", tmp_path, "sqla.db", PGFERRY_TEST_NATIVE_ENUM="1")
    assert run(app, "migrate", pg_dsn, PGFERRY_TEST_NATIVE_ENUM="1").splitlines()[-1] == "ok"
    job = copy_and_verify(db, pg_dsn, CopyOptions(jobs=2, into_existing=True, truncate_existing=True))
    assert job.identical, job.verify
    assert any("alembic_version (1 rows)" in note for note in job.copy.notes)  # Alembic's own row, replaced
    assert job.copy.plan is not None
    item = {c.source: (c.choice.pg_type, c.choice.converter) for c in job.copy.plan.table("item").columns}
    assert item["lasts"] == ("interval", "epoch_text_interval")  # SQLAlchemy's Interval: 1970-01-01 plus it
    assert item["status"] == ("status", "text")  # the native enum type
    assert item["price"] == ("numeric(10,2)", "numeric_fit")
    shelf = {c.source: (c.choice.pg_type, c.choice.converter) for c in job.copy.plan.table("shelf").columns}
    assert shelf["code"] == ("uuid", "uuid_hex") and shelf["meta"] == ("json", "json_any")
    assert shelf["opened"] == ("timestamp", "timestamp_text")
    assert run(app, "check", pg_dsn, PGFERRY_TEST_NATIVE_ENUM="1").splitlines()[-1] == "ok"
    (app / "later" / "0002_later.py").rename(app / "migrations" / "versions" / "0002_later.py")
    assert run(app, "next", pg_dsn, PGFERRY_TEST_NATIVE_ENUM="1").splitlines()[-1] == "ok"
