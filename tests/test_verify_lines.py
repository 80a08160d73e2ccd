"""verify's fast path: row lines hashed by SQLite and PostgreSQL themselves, with the exact comparison
as fallback. Equal values must hash equal (else the fast path is useless), and any difference the
line can see must be seen (else it is unsound); values the line does not cover go the exact way."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgferry.migrate.checksum import sqlite_line
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.migrate.run import copy_database
from pgferry.migrate.types import TypeChoice
from pgferry.migrate.verify import verify_copy

TRICKY_TEXT = ["", "~", ":", "1:", "0:~", "a,b", 'quote"d', "line\nbreak", "é ü 漢字 🚀", " trailing "]


def _build(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, flag BOOLEAN, at DATETIME, day DATE, raw BLOB,
                        n INTEGER);
        CREATE TABLE "Text Key" (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
        CREATE TABLE keyless (a INTEGER, b TEXT);
        """
    )
    rows = []
    for i in range(1, 2501):
        text = TRICKY_TEXT[i % len(TRICKY_TEXT)] if i % 7 else None
        rows.append(
            (
                i,
                text,
                i % 2,
                f"2024-0{1 + i % 9}-1{i % 10} 1{i % 10}:0{i % 6}:{10 + i % 50}" if i % 5 else None,
                f"2023-1{i % 3}-2{i % 8}",
                bytes([i % 256, 0, 255]) if i % 3 else None,
                i * 1_000_003 - 2**40,
            )
        )
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany(
        'INSERT INTO "Text Key" VALUES (?, ?)', [(k, k.upper()) for k in ["B", "a", "b", "A", "é", "Z", "ab"]]
    )
    conn.executemany("INSERT INTO keyless VALUES (?, ?)", [(1, "x"), (1, "x"), (2, None), (3, "")])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def copied(tmp_path: Path, pg_dsn: str) -> Path:
    path = _build(tmp_path / "lines.db")
    copy_database(path, pg_dsn, CopyOptions(jobs=1, chunk_rows=500))
    return path


def _verdicts(path: Path, dsn: str) -> dict:
    return {t.table: t for t in verify_copy(path, dsn, chunk_rows=500).tables}


def test_equal_values_take_the_fast_path(copied: Path, pg_dsn: str) -> None:
    verdicts = _verdicts(copied, pg_dsn)
    assert all(v.identical for v in verdicts.values()), verdicts
    assert verdicts["t"].chunks >= 5
    assert {name: v.exact_chunks for name, v in verdicts.items()} == {"t": 0, "Text Key": 0, "keyless": 0}


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE t SET name = name || ' ' WHERE id = 1234",
        "UPDATE t SET name = '' WHERE id = 1400",  # NULL (id % 7 == 0) becomes an empty string
        "UPDATE t SET flag = NOT flag WHERE id = 1234",
        "UPDATE t SET at = at + interval '0.5 second' WHERE id = 1234",  # a fraction the day text cannot show
        "UPDATE t SET raw = '\\x00'::bytea || raw WHERE id = 1234",
        "UPDATE t SET n = n + 1 WHERE id = 1234",
        "DELETE FROM t WHERE id = 1234",
    ],
)
def test_a_changed_value_is_found_and_named(copied: Path, pg_dsn: str, change: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute(change)
    verdict = _verdicts(copied, pg_dsn)["t"]
    assert not verdict.identical
    assert verdict.differing_keys == [[1234]] or verdict.differing_keys == [[1400]]
    assert verdict.exact_chunks == 1  # only the chunk whose hash differed was compared value by value


def test_extra_rows_and_text_keys_in_bytewise_order(copied: Path, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("""INSERT INTO "Text Key" VALUES ('aa', 'AA')""")
        pg.execute("INSERT INTO t (id) VALUES (999999)")
        pg.execute("INSERT INTO keyless VALUES (1, 'x')")
    verdicts = _verdicts(copied, pg_dsn)
    assert verdicts["Text Key"].extra_in_target == 1
    assert verdicts["t"].extra_in_target == 1
    assert verdicts["keyless"].extra_in_target == 1 and not verdicts["keyless"].identical


def test_values_the_line_does_not_cover_are_compared_exactly(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "iso.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME)")
    conn.executemany("INSERT INTO e VALUES (?, ?)", [(1, "2024-01-02T03:04:05"), (2, "2024-01-02 03:04:05.250")])
    conn.commit()
    conn.close()
    copy_database(path, pg_dsn, CopyOptions(jobs=1))
    verdict = _verdicts(path, pg_dsn)["e"]
    assert verdict.identical and verdict.exact_chunks == 1


@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=4))
def test_line_fields_cannot_be_forged(values: list[str | None]) -> None:
    """Two different rows never give the same line: fields are length-prefixed, NULL is '~'."""
    conn = sqlite3.connect(":memory:")
    names = [f"c{i}" for i in range(len(values))]
    columns = [ColumnPlan(n, n, TypeChoice("text", "text", "test"), False, None) for n in names]
    plan = TablePlan(source="x", target="x", columns=columns, key=(), rows=0)
    conn.execute(f"CREATE TABLE x ({', '.join(f'{n} TEXT' for n in names)})")
    conn.execute(f"INSERT INTO x VALUES ({', '.join('?' * len(values))})", values)
    shifted = [None if v is None else v + ":" for v in values]
    conn.execute(f"INSERT INTO x VALUES ({', '.join('?' * len(values))})", shifted)
    lines = [row[0] for row in conn.execute(f"SELECT {sqlite_line(plan)} FROM x")]
    assert (lines[0] == lines[1]) == (values == shifted)
