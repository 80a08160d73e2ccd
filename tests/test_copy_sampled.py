"""Big tables are typed from a sample; a value the sample missed re-plans the table, never slips through.

Each case plants one value that breaks the sampled type at a row no sample window covers, and one
that PostgreSQL would accept under that type while changing it ('0x10' into an integer, 'now' into a
timestamp, 'NaN' into a double) where there is one. The copy must end with the type a full census
gives, every value exactly as in SQLite (verify identical), and the re-plan in its report.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from pgferry.migrate import source as source_module
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.migrate.verify import verify_copy
from pgferry.sqlite import census as census_module

ROWS = 3_000
BAD_ROW = 1_500  # between sample windows (see `small_samples`); the test checks a re-plan happened


@pytest.fixture(autouse=True)
def small_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sample tables above 500 rows, in 32 windows of 4 rows: 128 of the 3,000 rows."""
    monkeypatch.setattr(source_module, "SAMPLE_ABOVE_ROWS", 500)
    monkeypatch.setattr(census_module, "SAMPLE_WINDOW_ROWS", 4)
    monkeypatch.setattr(source_module, "ROWS_PER_PART", 1_000)


def _source(path: Path, declared: str, good, bad, name: str = "v") -> Path:  # type: ignore[no-untyped-def]
    with sqlite3.connect(path) as conn:
        conn.execute(f'CREATE TABLE t (id INTEGER PRIMARY KEY, "{name}" {declared}, note TEXT)')
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)",
            ((i, bad if i == BAD_ROW else good(i), f"row {i}") for i in range(1, ROWS + 1)),
        )
    return path


def _type(dsn: str, column: str = "v") -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = %s",
            [column],
        ).fetchone()
    assert row is not None
    return row[0]


CASES = [
    # declared, good value, bad value, column name, type from the sample, type from the full census
    ("INTEGER", lambda i: i * 7, "0x10", "v", "bigint", "text"),  # PostgreSQL 16 reads hex
    ("BOOLEAN", lambda i: i % 2, 2, "is_set", "boolean", "bigint"),
    ("DATETIME", lambda i: f"2024-01-{i % 28 + 1:02d} 10:00:00", "2024-01-01 24:00:00", "v", "timestamp", "text"),
    ("DATETIME", lambda i: f"2024-01-{i % 28 + 1:02d} 10:00:00", "now", "v", "timestamp", "text"),
    ("DATE", lambda i: f"2024-02-{i % 28 + 1:02d}", "2024-02-30", "v", "date", "text"),
    # A quote after the NUL: GLOB stops at the NUL and does not double it; PostgreSQL refuses the NUL.
    ("TEXT", lambda i: f"text {i}", 'a\x00",b', "v", "text", "bytea"),
    ("REAL", lambda i: i / 3, "NaN", "v", "double precision", "text"),
    ("SMALLINT", lambda i: i, 2**40, "v", "smallint", "bigint"),  # only a declared width narrows
    ("JSON", lambda i: f'{{"n": {i}}}', "plain words", "v", "jsonb", "text"),
    ("BLOB", lambda i: bytes([i % 256, 0]), "text among blobs", "v", "bytea", "bytea"),
    ("TIMESTAMP", lambda i: 1_700_000_000 + i, 5, "v", "timestamp with time zone", "bigint"),
]


@pytest.mark.parametrize(("declared", "good", "bad", "name", "sampled", "full"), CASES)
def test_a_value_the_sample_missed_replans_the_table(
    tmp_path: Path, pg_dsn: str, declared: str, good, bad, name: str, sampled: str, full: str
) -> None:  # type: ignore[no-untyped-def]
    source = _source(tmp_path / "s.db", declared, good, bad, name)
    report = copy_database(source, pg_dsn, CopyOptions(jobs=2, chunk_rows=200))
    [replan] = report.replanned
    assert replan.table == "t"
    if bad in ("now", "2024-01-01 24:00:00"):  # accepted by PostgreSQL: refused by the guard's marker
        assert replan.refused.startswith(f"column {name}: a value unlike those in the sample")
    assert replan.changes == ([] if sampled == full else [f"{name}: {_pg(sampled)} -> {_pg(full)}"])
    assert _type(pg_dsn, name) == full
    assert report.rows == ROWS
    verdict = verify_copy(source, pg_dsn, plan=report.plan)
    assert verdict.identical, verdict.tables
    choice = next(c for c in report.choices if c["column"] == name)
    assert "sample" not in choice["reason"], "a full census replaced the sample"


def _pg(type_name: str) -> str:
    """format_type's spelling back to the plan's."""
    return {"timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz"}.get(
        type_name, type_name
    )


def test_clean_big_tables_are_sampled_and_copied_unchanged(tmp_path: Path, pg_dsn: str) -> None:
    source = _source(
        tmp_path / "clean.db", "DATETIME", lambda i: f"2024-03-{i % 28 + 1:02d} 08:30:00", "2024-03-01 00:00:00"
    )
    report = copy_database(source, pg_dsn, CopyOptions(jobs=2, chunk_rows=300))
    assert report.replanned == []
    assert _type(pg_dsn) == "timestamp without time zone"
    assert "in a sample of" in next(c for c in report.choices if c["column"] == "v")["reason"]
    assert verify_copy(source, pg_dsn, plan=report.plan).identical


def test_full_census_option_types_from_every_row(tmp_path: Path, pg_dsn: str) -> None:
    source = _source(tmp_path / "s.db", "INTEGER", lambda i: i, "0x10")
    report = copy_database(source, pg_dsn, CopyOptions(full_census=True))
    assert report.replanned == [] and _type(pg_dsn) == "text"


def test_text_that_is_not_utf8_after_the_sample_is_replanned_to_bytea(tmp_path: Path, pg_dsn: str) -> None:
    """Invalid UTF-8 the sample missed: PostgreSQL refuses it, the full census counts it, the column
    becomes bytea and the table is copied again."""
    path = tmp_path / "utf8.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"ok {i}") for i in range(1, ROWS + 1)))
        conn.execute(f"UPDATE t SET body = CAST(X'6f6b20ff21' AS TEXT) WHERE id = {BAD_ROW}")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=2, chunk_rows=200))
    assert [r.changes for r in report.replanned] == [["body: text -> bytea"]]
    assert verify_copy(path, pg_dsn, plan=report.plan).identical


def test_a_replan_copies_again_the_parts_already_finished(tmp_path: Path, pg_dsn: str) -> None:
    """The bad value sits in the last part, at its end: the other parts are done by then."""
    path = tmp_path / "late.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, i) for i in range(1, ROWS + 1)))
        conn.execute(f"UPDATE t SET v = 'late' WHERE id = {ROWS - 40}")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=3, chunk_rows=100))
    assert [r.changes for r in report.replanned] == [["v: bigint -> text"]]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (ROWS, ROWS)
    assert verify_copy(path, pg_dsn, plan=report.plan).identical


def test_not_null_text_first_and_last_with_quotes_commas_and_a_nul(tmp_path: Path, pg_dsn: str) -> None:
    """Guarded NOT NULL text is quoted by the printf() formats around it: at either end of the line too."""
    path = tmp_path / "edges.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (first TEXT NOT NULL, id INTEGER PRIMARY KEY, mid TEXT, last TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            ((f'say "hi", {i}', i, None if i % 3 else "a\nb", f'{i},""') for i in range(1, ROWS + 1)),
        )
        conn.execute(f"UPDATE t SET last = 'x' || char(0) || '\",\"y' WHERE id = {BAD_ROW}")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=2, chunk_rows=250))
    assert [r.changes for r in report.replanned] == [["last: text -> bytea"]]
    assert verify_copy(path, pg_dsn, plan=report.plan).identical
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT first, mid FROM t WHERE id = 3").fetchone() == ('say "hi", 3', "a\nb")


def _sparse(path: Path, flag: str) -> Path:
    """Columns NULL in every row but BAD_ROW, which holds n = 5, a date-time and `flag` (SQL literal)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, at DATETIME, flag BOOLEAN)")
        conn.executemany("INSERT INTO t (id) VALUES (?)", ((i,) for i in range(1, ROWS + 1)))
        conn.execute(f"UPDATE t SET n = 5, at = '2024-01-01 10:00:00', flag = {flag} WHERE id = {BAD_ROW}")
    return path


def test_columns_the_sample_saw_only_null_in(tmp_path: Path, pg_dsn: str) -> None:
    """Typed from their declaration, still guarded: 'yes' in a BOOLEAN re-plans the table, and the full
    census then types every column from its values (n stays bigint: SQLite's INTEGER is 64-bit)."""
    path = _sparse(tmp_path / "sparse.db", flag="'yes'")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=2, chunk_rows=400))
    [replan] = report.replanned
    assert sorted(replan.changes) == ["flag: boolean -> text"]
    assert (_type(pg_dsn, "n"), _type(pg_dsn, "at")) == ("bigint", "timestamp without time zone")
    assert verify_copy(path, pg_dsn, plan=report.plan).identical


def test_a_value_fitting_the_declared_type_of_an_unseen_column_loads_as_is(tmp_path: Path, pg_dsn: str) -> None:
    path = _sparse(tmp_path / "sparse_ok.db", flag="1")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=2, chunk_rows=400))
    assert report.replanned == []
    assert (_type(pg_dsn, "n"), _type(pg_dsn, "at")) == ("bigint", "timestamp without time zone")
    assert verify_copy(path, pg_dsn, plan=report.plan).identical
