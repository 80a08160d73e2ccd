"""verify recomputes converted values from the raw SQLite value, so a conversion bug in the copy shows.

Epoch numbers, Julian days and BLOBs are rendered by the copy with SQLite functions
(pgferry.migrate.rowformat.text_expression). Verify once rendered the source the same way, so a bug in
that rendering made both sides agree: NULL BLOBs went as empty bytea, Core Data dates as NULL, and both
verified identical. Here the copy's rendering is broken on purpose, one converter at a time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pgferry.migrate import rowformat, verify_chunks
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.migrate.verify import verify_copy
from pgferry.sqltext import quote_ident

SHIFTS = {
    "seen": '("seen" + 1)',  # epoch seconds: one second later
    "seen_ms": '("seen_ms" + 1)',  # epoch milliseconds
    "at": '("at" + 0.5)',  # Julian days: twelve hours later
    "raw": "(\"raw\" || x'00')",  # a BLOB with one byte more
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "conv.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, seen DATETIME, seen_ms TIMESTAMP, at DATETIME, raw BLOB)")
        conn.executemany(
            "INSERT INTO e VALUES (?, ?, ?, ?, ?)",
            [(i, 1_700_000_000 + i, 1_700_000_000_000 + i, 2_460_000.25 + i, bytes([i, 0])) for i in range(1, 50)],
        )
    conn.close()
    return path


def test_an_honest_copy_verifies_identical(source: Path, pg_dsn: str) -> None:
    report = copy_database(source, pg_dsn, CopyOptions(jobs=1))
    kinds = {c["column"]: c["type"] for c in report.choices}
    assert kinds == {"id": "bigint", "seen": "timestamptz", "seen_ms": "timestamptz", "at": "timestamp", "raw": "bytea"}
    assert verify_copy(source, pg_dsn).identical


@pytest.mark.parametrize("column", sorted(SHIFTS))
def test_a_conversion_bug_in_the_copy_is_found(
    source: Path, pg_dsn: str, column: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = rowformat.text_expression

    def broken(plan_column):  # type: ignore[no-untyped-def]
        rendered = honest(plan_column)
        if plan_column.source != column:
            return rendered
        return rendered.replace(quote_ident(column), SHIFTS[column])

    # The same broken rendering wherever copy and verify share it: verify must not depend on it.
    monkeypatch.setattr(rowformat, "text_expression", broken)
    monkeypatch.setattr(verify_chunks, "text_expression", broken)
    copy_database(source, pg_dsn, CopyOptions(jobs=1))
    verdict = verify_copy(source, pg_dsn).tables[0]
    assert len(verdict.differing_keys) == 20  # every row differs; the report lists the first 20
