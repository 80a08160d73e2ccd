"""REAL values in a date-time column: Julian day numbers become timestamps, anything else stays a number.

Core Data (iOS, macOS) stores dates as REAL seconds since 2001 in TIMESTAMP columns. Those were once
typed as Julian days, and SQLite's strftime() of a number beyond its calendar is NULL: every date
arrived as NULL, and verify, rendering the source the same way, called it identical.
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


def _source(path: Path, values: list[float | None]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, created TIMESTAMP)")
        conn.executemany("INSERT INTO notes VALUES (?, ?)", list(enumerate(values, start=1)))
    conn.close()
    return path


def _column(dsn: str) -> tuple[str, list]:
    with psycopg.connect(dsn) as pg:
        kind = pg.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'notes'::regclass AND attname = 'created'"
        ).fetchone()[0]
        values = [r[0] for r in pg.execute("SELECT created::text FROM notes ORDER BY id")]
    return kind, values


def test_julian_day_numbers_become_timestamps(tmp_path: Path, pg_dsn: str) -> None:
    values = [2460000.5, 2460000.75, 1721425.5, 2488069.5, None]
    path = _source(tmp_path / "j.db", values)
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    sqlite = sqlite3.connect(":memory:")
    expected = [sqlite.execute("SELECT strftime('%Y-%m-%d %H:%M:%S', ?)", [v]).fetchone()[0] for v in values]
    assert expected[:2] == ["2023-02-25 00:00:00", "2023-02-25 06:00:00"]
    assert _column(pg_dsn) == ("timestamp without time zone", expected)
    assert verify_copy(path, pg_dsn, plan=report.plan).identical


@pytest.mark.parametrize(
    "values",
    [
        [700_000_001.123, 700_000_002.5, None],  # Core Data: seconds since 2001-01-01
        [2460000.5, 0.5],  # one value before year 1
        [2460000.5, -2460000.5],
        [2460000.5, 2488070.5],  # after 2100-01-01
        [2460000.5, float("inf")],
    ],
)
def test_other_reals_in_a_timestamp_column_stay_numbers(tmp_path: Path, pg_dsn: str, values: list) -> None:
    path = _source(tmp_path / "r.db", values)
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    kind, loaded = _column(pg_dsn)
    assert kind == "double precision"
    assert [None if v is None else float(v) for v in loaded] == values
    assert verify_copy(path, pg_dsn, plan=report.plan).identical


def test_a_julian_sample_with_a_number_outside_it_is_replanned(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_module, "SAMPLE_ABOVE_ROWS", 500)
    monkeypatch.setattr(census_module, "SAMPLE_WINDOW_ROWS", 4)
    values = [2460000.5 + i / 24 for i in range(3000)]
    values[1499] = 700_000_000.25  # id 1500: between the sample's windows
    path = _source(tmp_path / "s.db", values)
    report = copy_database(path, pg_dsn, CopyOptions(jobs=2, chunk_rows=250))
    assert [r.changes for r in report.replanned] == [["created: timestamp -> double precision"]]
    kind, loaded = _column(pg_dsn)
    assert kind == "double precision" and loaded[1499] is not None and float(loaded[1499]) == 700_000_000.25
    assert verify_copy(path, pg_dsn, plan=report.plan).identical
