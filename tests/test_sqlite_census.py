"""The census counts what columns really hold, whatever they declare."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgferry.sqlite.census import take_census
from pgferry.sqlite.connect import open_readonly
from pgferry.sqlite.schema import read_schema


def census_of(tmp_path: Path, ddl: str, rows: list[tuple]) -> dict:
    path = tmp_path / "c.db"
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        placeholders = ", ".join("?" * len(rows[0]))
        conn.executemany(f'INSERT INTO "t t" VALUES ({placeholders})', rows)
    ro = open_readonly(path)
    census = take_census(ro, read_schema(ro).table("t t"))
    return {c.name: c for c in census.columns}


def test_storage_classes_and_ranges(tmp_path: Path) -> None:
    cols = census_of(
        tmp_path,
        'CREATE TABLE "t t" (a INTEGER, "b c" REAL, d TEXT)',
        [(1, 1.5, "x"), ("oops", 2.0, None), (2**63 - 1, float("inf"), "a\x00b"), (None, None, "12")],
    )
    a = cols["a"]
    assert (a.rows, a.nulls, a.integers, a.texts) == (4, 1, 2, 1)
    assert (a.int_min, a.int_max) == (1, 2**63 - 1)
    assert a.storage_classes == ("integer", "text")
    b = cols["b c"]
    assert (b.reals, b.real_nonfinite) == (3, True)
    d = cols["d"]
    assert (d.texts, d.text_with_nul) == (3, 1)


def test_text_formats(tmp_path: Path) -> None:
    values = [
        ("2024-01-31 12:00:00", '{"a": 1}', "1"),
        ("2024-02-30", "[1, 2]", "0"),  # Feb 30 is not a date, even though SQLite's date() accepts it
        ("2024-03-01", "not json", "1"),
        ("2024-03-01T10:00:00Z", "42", "2"),
        ("2024-03-01T01:00:00+02:00", None, None),  # the UTC date is the day before
    ]
    cols = census_of(tmp_path, 'CREATE TABLE "t t" (ts TEXT, j TEXT, f BOOLEAN)', values)
    assert not cols["ts"].texts_iso_datetime  # one impossible date spoils the column
    assert not cols["j"].texts_json  # "42" is valid JSON but not an object or array
    f = cols["f"]
    assert f.integers == 4 and not f.only_flags  # BOOLEAN affinity stores numbers; 2 is not a flag


def test_every_text_format(tmp_path: Path) -> None:
    rows = [
        ("2024-01-31 12:00:00", "2024-01-31", '{"a": [1]}', "2024-03-01T01:00:00+02:00"),
        ("2024-02-29T23:59:59.123", "2024-02-29", "[1, 2]", "2024-03-01T10:00:00Z"),
    ]
    cols = census_of(tmp_path, 'CREATE TABLE "t t" (ts TEXT, d DATE, j TEXT, z TEXT)', rows)
    ts, d, j, z = cols["ts"], cols["d"], cols["j"], cols["z"]
    assert ts.texts_iso_datetime and not ts.texts_iso_date_only and ts.texts_without_zone
    assert d.texts_iso_datetime and d.texts_iso_date_only
    assert j.texts_json and not j.texts_iso_datetime
    assert z.texts_with_zone and not z.texts_without_zone


def test_varchar_sizes_are_measured_in_characters(tmp_path: Path) -> None:
    """varchar(n) counts characters in PostgreSQL: three é are 6 bytes but fit varchar(3)."""
    cols = census_of(tmp_path, 'CREATE TABLE "t t" (v VARCHAR(3))', [("abc",), ("é" * 3,), (None,)])
    assert cols["v"].text_max_chars == 3


def test_wide_table_is_measured_in_several_scans(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(250)]
    ddl = 'CREATE TABLE "t t" (' + ", ".join(names) + ")"
    cols = census_of(tmp_path, ddl, [tuple(range(250)), tuple([None] * 250)])
    assert len(cols) == 250
    assert cols["c249"].int_max == 249 and cols["c249"].nulls == 1


NUMBERS = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(NUMBERS, min_size=1, max_size=30), declared=st.sampled_from(["INTEGER", "REAL", "NUMERIC", ""]))
def test_numeric_census_matches_the_values(values: list, declared: str) -> None:
    """Integer bounds, REAL count and magnitude, NULLs: the one-scan speculation agrees with Python."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE TABLE "t t" (v {declared})')
    conn.executemany('INSERT INTO "t t" VALUES (?)', [(v,) for v in values])
    stored = [v for (v,) in conn.execute('SELECT v FROM "t t"')]  # after SQLite's type affinity
    column = take_census(conn, read_schema(conn).table("t t")).columns[0]
    ints = [v for v in stored if isinstance(v, int)]
    reals = [v for v in stored if isinstance(v, float)]
    assert column.nulls == stored.count(None)
    assert (column.integers, column.reals) == (len(ints), len(reals))
    assert (column.int_min, column.int_max) == ((min(ints), max(ints)) if ints else (None, None))
    assert column.real_abs_max == (max(abs(r) for r in reals) if reals else None)


def test_date_columns_zones_and_nul_bytes(tmp_path: Path) -> None:
    cols = census_of(
        tmp_path,
        'CREATE TABLE "t t" (zoned DATETIME, mixed DATETIME, naive TIMESTAMP, notes DATETIME)',
        [
            ("2024-01-02 03:04:05+02:00", "2024-01-02 03:04:05Z", "2024-01-02 03:04:05", "soon\x00ish"),
            ("2024-02-29T10:00:00Z", "2024-01-02 03:04:05", "2024-01-03", "later"),
        ],
    )
    assert cols["zoned"].texts_iso_datetime and cols["zoned"].texts_with_zone
    assert not cols["zoned"].texts_without_zone
    assert cols["mixed"].texts_iso_datetime
    assert not cols["mixed"].texts_with_zone and not cols["mixed"].texts_without_zone
    assert cols["naive"].texts_without_zone and not cols["naive"].texts_iso_date_only
    assert not cols["notes"].texts_iso_datetime and cols["notes"].text_with_nul == 1


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=1, max_size=20))
def test_nul_bytes_are_counted_in_any_text(values: list) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE "t t" (v TEXT)')
    conn.executemany('INSERT INTO "t t" VALUES (?)', [(v,) for v in values])
    column = take_census(conn, read_schema(conn).table("t t")).columns[0]
    assert column.text_with_nul == sum(1 for v in values if v is not None and "\x00" in v)


@pytest.mark.parametrize("odd", ["2024-01-01 10:00:00 ", "2024-01-01 ", "2024-01-01  10:00:00", "2024-01-01T10:00 "])
def test_a_date_with_stray_spaces_is_not_a_date(tmp_path: Path, odd: str) -> None:
    """PostgreSQL would trim or collapse the spaces: typed as a date-time, the value would change."""
    cols = census_of(tmp_path, 'CREATE TABLE "t t" (ts DATETIME)', [("2024-01-02 10:00:00",), (odd,)])
    assert not cols["ts"].texts_iso_datetime


@pytest.mark.parametrize(
    ("value", "is_date_time"),
    [
        ("2024-01-01 10:00:00.1234567", False),  # PostgreSQL would round to 10:00:00.123457
        ("2024-01-01T10:00:00.123456789Z", False),
        ("2024-01-01 10:00:00.123456", True),
        ("2024-01-01T10:00:00.5+02:00", True),
    ],
)
def test_a_fraction_finer_than_microseconds_is_not_a_date_time(tmp_path: Path, value: str, is_date_time: bool) -> None:
    cols = census_of(tmp_path, 'CREATE TABLE "t t" (ts DATETIME)', [("2024-01-02 10:00:00",), (value,)])
    assert cols["ts"].texts_iso_datetime is is_date_time
