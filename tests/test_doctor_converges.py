"""doctor -> tune --apply -> doctor -> tune converges: the second tune has no step, and the second
doctor proposes nothing that undoes the first tune (no index it dropped asked back, none it created
called redundant). On the lending-library app with its workload, on databases written by Django and
by SQLAlchemy (tests/apps: the frameworks' own schemas, with workloads in the qmark style their SQLite
drivers run), on the seeded forum, and on files whose empty tables ANALYZE leaves without statistics."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from apps.runner import project, run
from converge import ALL_KINDS, assert_converges
from doctor_app import build_library, run_app
from forum.seed import generate
from pgferry.doctor import diagnose
from pgferry.workload import Statement


def test_library_app_with_its_workload(tmp_path: Path) -> None:
    db = build_library(tmp_path / "library.db", defects=True)
    log = run_app(db, tmp_path / "capture.jsonl", defects=True)
    assert_converges(db, log)


def test_library_app_with_every_kind_tune_fixes(tmp_path: Path) -> None:
    db = build_library(tmp_path / "library.db", defects=True)
    log = run_app(db, tmp_path / "capture.jsonl", defects=True)
    assert_converges(db, log, ALL_KINDS)


@pytest.fixture(scope="module")
def framework_dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("frameworks")
    out = {}
    for name in ("django_catalog", "sqla_catalog"):
        db = base / f"{name}.db"
        run(project(name, base), "seed", f"sqlite:{db}")
        out[name] = db
    return out


WORKLOADS: dict[str, list[Statement]] = {
    "django_catalog": [
        Statement('SELECT "id", "title" FROM "catalog_book" WHERE "author_id" = ? ORDER BY "id"', [i % 30 + 1], ms=0.2)
        for i in range(30)
    ]
    + [
        Statement('SELECT "id" FROM "catalog_book" WHERE "in_print" = ? AND "published" > ?', [1, "2003-01-01"], ms=1)
        for _ in range(20)
    ]
    + [Statement('SELECT "id", "name" FROM "catalog_author" WHERE "uid" = ?', ["x"], ms=0.5) for _ in range(20)],
    "sqla_catalog": [
        Statement("SELECT item.id FROM item WHERE item.status = ? AND item.made > ?", ["a", "2001-01-01"], ms=1)
        for _ in range(20)
    ]
    + [Statement("SELECT item.id FROM item WHERE item.shelf_id = ?", [i % 20 + 1], ms=0.3) for i in range(30)],
}


@pytest.mark.parametrize("name", ["django_catalog", "sqla_catalog"])
@pytest.mark.parametrize("with_workload", [False, True], ids=["schema", "workload"])
def test_framework_databases(framework_dbs: dict[str, Path], tmp_path: Path, name: str, with_workload: bool) -> None:
    db = tmp_path / "app.db"
    shutil.copy(framework_dbs[name], db)
    assert_converges(db, WORKLOADS[name] if with_workload else None, ALL_KINDS)


def test_seeded_forum(tmp_path: Path) -> None:
    db = tmp_path / "forum.db"
    generate(db, scale=0.01, seed=7)
    assert_converges(db, None, ALL_KINDS)


def test_empty_tables_do_not_ask_for_analyze_forever(tmp_path: Path) -> None:
    """ANALYZE writes no row for an empty table, and a partial index's row counts only its own rows:
    neither is stale statistics, or every tune would plan the same ANALYZE again."""
    db = tmp_path / "empty.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b TEXT); CREATE INDEX ia ON a (b); "
        "CREATE TABLE full (id INTEGER PRIMARY KEY, b TEXT); CREATE INDEX ifull ON full (b); "
        "CREATE TABLE p (id INTEGER PRIMARY KEY, b TEXT); CREATE INDEX ip ON p (b) WHERE b IS NULL;"
    )
    conn.executemany("INSERT INTO full (b) VALUES (?)", [(str(i),) for i in range(50)])
    conn.executemany("INSERT INTO p (b) VALUES (?)", [(str(i) if i % 10 else None,) for i in range(500)])
    conn.commit()
    conn.close()
    assert_converges(db, None)
    stale = [f for f in diagnose(db).by_kind("pragma") if f.evidence.get("setting") == "sqlite_stat1"]
    assert stale == []
