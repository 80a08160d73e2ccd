"""verify on jsonb columns: SQLite's JSON text is compared with what PostgreSQL's jsonb made of it.

PostgreSQL reorders keys and respaces, so text equality with the source is no test; parsing both sides
in Python was slow and rounded numbers to floats, so a changed 19th digit went unseen. PostgreSQL now
parses the source texts itself (pgferry.migrate.verify._jsonb_by_postgres); a source value it cannot
parse falls back to the comparison in Python.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.migrate.verify import verify_copy

DOCS = {
    1: '{"b": 1, "a": [1, 2.50]}',
    2: '{"x": 0.1000000000000000001}',
    3: "[ 1 , 2 ]",
    4: None,
    5: '{"s": "é \\u00e9 \\ud83d\\ude80", "q": "say \\"hi\\""}',
}


@pytest.fixture
def copied(tmp_path: Path, pg_dsn: str) -> Path:
    path = tmp_path / "json.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON, note TEXT)")
        conn.executemany("INSERT INTO j VALUES (?, ?, ?)", [(k, v, f"row {k}") for k, v in DOCS.items()])
        conn.executemany("INSERT INTO j VALUES (?, ?, NULL)", [(i, f'{{"n": {i}}}') for i in range(6, 300)])
    conn.close()
    copy_database(path, pg_dsn, CopyOptions(jobs=1))
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT doc::text FROM j WHERE id = 1").fetchone() == ('{"a": [1, 2.50], "b": 1}',)
    return path


def _verdict(path: Path, dsn: str):  # type: ignore[no-untyped-def]
    return {t.table: t for t in verify_copy(path, dsn, chunk_rows=100).tables}["j"]


def test_reordered_and_respaced_json_is_identical(copied: Path, pg_dsn: str) -> None:
    verdict = _verdict(copied, pg_dsn)
    assert verdict.identical and verdict.exact_chunks == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ("""UPDATE j SET doc = '{"x": 0.1}' WHERE id = 2""", 2),  # equal as Python floats
        ("UPDATE j SET doc = NULL WHERE id = 3", 3),
        ("""UPDATE j SET doc = '{"n": 151}' WHERE id = 150""", 150),
        ("""UPDATE j SET doc = '{"s": "e", "q": "say \\"hi\\""}' WHERE id = 5""", 5),
    ],
)
def test_a_changed_document_is_named(copied: Path, pg_dsn: str, change: str, key: int) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute(change)
    verdict = _verdict(copied, pg_dsn)
    assert verdict.differing_keys == [[key]]


def test_a_source_value_postgresql_cannot_parse_is_compared_in_python(copied: Path, pg_dsn: str) -> None:
    with sqlite3.connect(copied) as conn:
        conn.execute("UPDATE j SET doc = 'not json' WHERE id = 120")
        conn.execute("UPDATE j SET doc = x'00ff' WHERE id = 250")  # a BLOB: no JSON text at all
    conn.close()
    verdict = _verdict(copied, pg_dsn)
    assert verdict.differing_keys == [[120], [250]]
