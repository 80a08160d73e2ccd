"""A SQLAlchemy 2 + Alembic project runs on its SQLite file's copy unchanged: objects read back equal
(Decimal, UUID, timedelta, time, naive datetime, JSON, enum), writes work, `alembic check` finds the
schema equal to the models (types compared) and the next migration drops a convention-named constraint."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.runner import run, seeded
from pgcatalog import column_types
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify


@pytest.fixture
def sqla_file(tmp_path: Path) -> tuple[Path, Path]:
    return seeded("sqla_catalog", tmp_path, "sqla.db")


def test_sqlalchemy_runs_on_the_default_copy(sqla_file: tuple[Path, Path], pg_dsn: str, tmp_path: Path) -> None:
    app, db = sqla_file
    casts = tmp_path / "casts.toml"  # Interval and DateTime are both DATETIME on SQLite
    casts.write_text('[columns]\n"item.lasts" = "interval"\n')
    job = copy_and_verify(db, pg_dsn, CopyOptions(jobs=2, casts_file=str(casts)))
    assert job.identical, job.verify
    assert job.copy.plan is not None and job.copy.plan.framework is not None
    assert job.copy.plan.framework["name"] == "SQLAlchemy (Alembic)"
    item, shelf = column_types(pg_dsn, "item"), column_types(pg_dsn, "shelf")
    assert item["id"] == "integer" and item["price"] == "numeric(10,2)"  # Integer is int4 on PostgreSQL
    assert shelf["code"] == "uuid" and item["lasts"] == "interval" and shelf["meta"] == "json"
    assert run(app, "check", pg_dsn).splitlines()[-1] == "ok"
    (app / "later" / "0002_later.py").rename(app / "migrations" / "versions" / "0002_later.py")
    assert run(app, "next", pg_dsn).splitlines()[-1] == "ok"
