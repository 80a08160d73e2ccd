"""The types an application expects, without a framework: declared widths and precisions are kept when
every value fits and never narrowed below them; --cast converts by the target type; verify compares
through the target's type. Each case copies into the real PostgreSQL and verifies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from pgcatalog import column_types
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify


def _file(path: Path, ddl: str, rows: list[tuple]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return path


def test_declared_types_are_kept_when_the_values_fit(tmp_path: Path, pg_dsn: str) -> None:
    path = _file(
        tmp_path / "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s SMALLINT, wide SMALLINT, price DECIMAL(10,2),"
        " odd DECIMAL(5,2), plain NUMERIC, v VARCHAR(3), at TIME, u UUID, raw CHAR(32))",
        [
            (1, 5, 1, 70000, 12.34, 1.005, 1.5, "ééé", "12:34:56", "550e8400-e29b-41d4-a716-446655440000", "a" * 32),
            (2, -7, 2, 3, 0.1, 123.45, 2, "ab", "23:59:59.123456", "550e8400e29b41d4a716446655440001", "b" * 32),
            (3, None, None, None, 99999999.99, None, None, None, None, None, None),
        ],
    )
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=2))
    assert job.identical, job.verify
    assert column_types(pg_dsn) == {
        "id": "bigint",
        "n": "bigint",  # small values today, 64 bits tomorrow: never narrowed
        "s": "smallint",
        "wide": "integer",  # declared SMALLINT, holds 70000: widened, with a note
        "price": "numeric(10,2)",
        "odd": "numeric",  # 1.005 has three decimals: numeric(5,2) would round it
        "plain": "numeric",
        "v": "character varying(3)",  # three characters, six bytes
        "at": "time without time zone",
        "u": "uuid",
        "raw": "character varying(32)",  # CHAR(32) without a framework: text, not uuid
    }
    notes = {c["column"]: c["note"] for c in job.copy.choices if c["note"]}
    assert "70000" in notes["wide"] and "round" in notes["odd"]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT odd::text, price::text FROM t WHERE id = 1").fetchone() == ("1.005", "12.34")


def test_casts_convert_by_target_type_and_verify_through_it(tmp_path: Path, pg_dsn: str) -> None:
    """The bug: after --cast to timestamptz, uuid and inet verify reported every table as differing."""
    path = _file(
        tmp_path / "c.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, u CHAR(32), ip TEXT, took BIGINT, ts INTEGER)",
        [
            (1, "2024-05-01 10:00:33.154920", "550e8400e29b41d4a716446655440000", "10.1.2.3", 1_500_000, 1_700_000_000),
            (2, "2024-05-01 10:00:33", "550E8400E29B41D4A716446655440001", "2001:db8::1", -5, 1_700_000_001),
            (3, None, None, "192.168.0.0/16", 86_400_000_000 * 3 + 7, None),
        ],
    )
    casts = tmp_path / "casts.toml"
    casts.write_text(
        '[columns]\n"t.at" = "timestamptz"\n"t.u" = "uuid"\n"t.ip" = "inet"\n"t.took" = "interval"\n'
        '"t.ts" = "timestamptz"\n'
    )
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=2, casts_file=str(casts)))
    assert job.identical, job.verify
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        at, u, ip, took, ts = conn.execute(
            "SELECT at::text, u::text, ip::text, took::text, ts::text FROM t WHERE id = 1"
        ).fetchone()
        assert (at, u, ip, took, ts) == (
            "2024-05-01 10:00:33.15492+00",  # the naive text read as UTC, whatever the server's zone
            "550e8400-e29b-41d4-a716-446655440000",
            "10.1.2.3/32",  # inet's text names the mask
            "00:00:01.5",
            "2023-11-14 22:13:20+00",
        )
        assert conn.execute("SELECT took::text FROM t WHERE id = 3").fetchone() == ("3 days 00:00:00.000007",)


@pytest.mark.parametrize(
    ("declared", "value", "cast"),
    [("DATETIME", "2024-05-01 10:00:00", "timestamptz"), ("TEXT", "550e8400e29b41d4a716446655440000", "uuid")],
)
def test_verify_names_the_column_that_differs_through_the_target_type(
    tmp_path: Path, pg_dsn: str, declared: str, value: str, cast: str
) -> None:
    path = _file(tmp_path / "d.db", f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})", [(1, value), (2, value)])
    casts = tmp_path / "casts.toml"
    casts.write_text(f'[columns]\n"t.v" = "{cast}"\n')
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=1, casts_file=str(casts)))
    assert job.identical, job.verify
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        changed = "now()" if cast == "timestamptz" else "gen_random_uuid()"
        conn.execute(f"UPDATE t SET v = {changed} WHERE id = 2")
    from pgferry.migrate.verify import verify_copy

    verdict = verify_copy(path, pg_dsn)
    assert not verdict.identical
    [table] = verdict.tables
    assert table.differing_keys == [[2]] and table.differing_columns == {"v": 1}, table
