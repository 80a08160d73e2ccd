"""A schema change on PostgreSQL while the route is `postgres` stops the reverse applier and the
rollback with a message naming the table and the columns, before any value is dropped on the way
back; undone, the rollback carries every row back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from capture_util import caught_up, started
from pgferry.capture.reverse.drift import SchemaDrift
from pgferry.capture.rollback import rollback
from pgferry.cli import main
from pgferry.runtime.route import Route
from reverse_fixtures import cut_over_now, pg_write, reverse_caught_up, route_of


def cut_over_app(path: Path, dsn: str) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n INTEGER)")
        conn.executemany("INSERT INTO note (body, n) VALUES (?, ?)", [(f"seed {i}", i) for i in range(5)])
    started(path, dsn)
    cut_over_now(path, dsn)
    return path


def test_a_column_added_on_postgres_stops_the_way_back_until_it_is_undone(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over_app(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, [("INSERT INTO note (body) VALUES ('before the change')", ())])
    caught_up(path, pg_dsn)  # carried back: the schema is still the copy's
    pg_write(
        pg_dsn,
        [
            ("ALTER TABLE note ADD COLUMN mood text", ()),
            ("INSERT INTO note (body, mood) VALUES ('after the change', 'glad')", ()),
        ],
    )
    with pytest.raises(SchemaDrift, match=r"table 'note': column\(s\) mood added"):
        caught_up(path, pg_dsn)
    refused = CliRunner().invoke(main, ["migrate", "rollback", str(path), pg_dsn])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "mood added" in refused.output and "undo the change on PostgreSQL" in refused.output
    assert route_of(path) is Route.POSTGRES  # nothing changed: the application goes on on PostgreSQL
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM note WHERE body = 'after the change'").fetchone() == (0,)
    pg_write(pg_dsn, [("ALTER TABLE note DROP COLUMN mood", ())])
    rollback(path, pg_dsn)
    with sqlite3.connect(path) as conn:
        bodies = {b for (b,) in conn.execute("SELECT body FROM note")}
    assert {"before the change", "after the change"} <= bodies


def test_a_column_dropped_on_postgres_is_named_too(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over_app(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, [("ALTER TABLE note DROP COLUMN n", ()), ("UPDATE note SET body = 'edited' WHERE id = 1", ())])
    with pytest.raises(SchemaDrift, match=r"table 'note': column\(s\) n dropped"):
        rollback(path, pg_dsn)
    assert route_of(path) is Route.POSTGRES


def catalog_reads(dsn: str) -> int:
    """How many statements this database has run that read pg_attribute (pg_stat_statements)."""
    with psycopg.connect(dsn, autocommit=True) as pg:
        row = pg.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() AND s.query ILIKE '%pg_attribute%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_batch_finds_drift_in_the_rows_it_reads_not_in_a_catalog_query(tmp_path: Path, pg_dsn: str) -> None:
    """The drift check costs no query of its own per batch: applying five batches reads the catalog as
    often as applying one (the applier's start-up reads it once either way)."""
    path = cut_over_app(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, [("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", ())])
    reads = []
    for entries in (1, 5):
        pg_write(pg_dsn, [(f"INSERT INTO note (body) VALUES ('batch {i}')", ()) for i in range(entries)])
        before = catalog_reads(pg_dsn)
        assert reverse_caught_up(path, pg_dsn, batch_entries=1) == entries
        reads.append(catalog_reads(pg_dsn) - before)
    assert reads[0] == reads[1], reads
    pg_write(pg_dsn, [("ALTER TABLE note ADD COLUMN mood text", ()), ("UPDATE note SET mood = 'x' WHERE id = 1", ())])
    with pytest.raises(SchemaDrift, match=r"table 'note': column\(s\) mood added"):
        reverse_caught_up(path, pg_dsn, batch_entries=1)
