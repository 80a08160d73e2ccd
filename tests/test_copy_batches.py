"""Lines joined in SQLite a batch at a time: every row arrives once, at every batch and chunk boundary.

A rowid table's chunk is read as several keyset queries, each joining up to STREAM_ROWS lines with
group_concat. The boundaries are where a row could be lost or sent twice: a batch that ends exactly
at the chunk's end, a chunk that ends exactly at the table's end, a part's upper key. Batches of 7
rows in chunks of 20 and parts of 15 rows put all of them in small tables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from pgferry.migrate import render as render_module
from pgferry.migrate import source as source_module
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_module, "STREAM_ROWS", 7)
    monkeypatch.setattr(source_module, "ROWS_PER_PART", 15)


TEXT = 'a "quoted", comma\nand a line break'


def _rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    return sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall())


@pytest.mark.parametrize("rows", [0, 6, 7, 14, 20, 40, 41, 100])
@pytest.mark.parametrize("jobs", [1, 3])
def test_every_row_once_at_every_boundary(tmp_path: Path, pg_dsn: str, rows: int, jobs: int) -> None:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as conn:
        # An alias of the rowid with an odd name, with gaps in the keys; a table with the bare rowid
        # and duplicate rows.
        conn.execute('CREATE TABLE "odd key" ("my id" INTEGER PRIMARY KEY, body TEXT NOT NULL, n INTEGER)')
        conn.execute("CREATE TABLE dup (body TEXT, n INTEGER)")
        conn.executemany('INSERT INTO "odd key" VALUES (?, ?, ?)', ((i * 3, f"{TEXT} {i}", i) for i in range(rows)))
        conn.executemany("INSERT INTO dup VALUES (?, ?)", ((TEXT, i % 4) for i in range(rows)))
        expected = {"odd key": _rows(conn, "odd key"), "dup": _rows(conn, "dup")}
    conn.close()

    report = copy_database(path, pg_dsn, CopyOptions(jobs=jobs, chunk_rows=20))

    assert {t.source: t.rows for t in report.tables} == {"odd key": rows, "dup": rows}
    with psycopg.connect(pg_dsn) as pg:
        for table, want in expected.items():
            got = sorted(pg.execute(f'SELECT * FROM "{table}"').fetchall())
            assert got == want, table
