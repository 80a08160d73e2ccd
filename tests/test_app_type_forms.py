"""The pure parts of the application types: the census's numeric(p, s) fit test in SQLite agrees with the
copy's Python guard and with what numeric(p, s) holds exactly; interval texts in both spellings read back
as the same microseconds; UUID and time predicates accept exactly what PostgreSQL reads back unchanged;
frameworks are told by their migration tables."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgferry.migrate.frameworks import DJANGO, RAILS, SQLALCHEMY, detect
from pgferry.migrate.valueforms import interval_micros, numeric_guard
from pgferry.sqlite.census import ColumnCensus
from pgferry.sqlite.declared import Precision, decimal_fits, decimal_precision, time_predicate, uuid_predicate
from pgferry.sqlite.schema import Column, Schema, Table

MEMORY = sqlite3.connect(":memory:")


def sqlite_says(predicate: str, value: object) -> bool:
    query = f"SELECT {predicate.replace('{}', '?')}"
    return bool(MEMORY.execute(query, (value,) * predicate.count("{}")).fetchone()[0])


def holds_exactly(value: int | float, precision: int, scale: int) -> bool:
    """What PostgreSQL's numeric(p, s) keeps unchanged: the value's exact decimal (repr for a double,
    which is the text the copy sends) has at most s decimals and fewer than p - s integer digits."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return abs(number) < Decimal(10) ** (precision - scale) and number == number.quantize(Decimal(1).scaleb(-scale))


numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False).map(float),
)


@given(numbers, st.integers(min_value=1, max_value=18), st.integers(min_value=0, max_value=6))
def test_decimal_fit_agrees_in_sqlite_python_and_postgresql(value: int | float, precision: int, scale: int) -> None:
    scale = min(scale, precision)
    expected = holds_exactly(value, precision, scale)
    in_sqlite = sqlite_says(decimal_fits("{}", Precision(precision, scale)), value)
    assert in_sqlite == expected, (value, precision, scale)
    assert numeric_guard(f"numeric({precision},{scale})")(value) == expected


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("decimal(10,2)", Precision(10, 2)),
        ("NUMERIC( 8 )", Precision(8, 0)),
        ("decimal", Precision(None, 0)),
        ("NUMERIC(2000, 1)", Precision(None, 0)),  # PostgreSQL refuses it: plain numeric
        ("DECIMAL INTEGER", None),  # INTEGER affinity wins in SQLite
        ("varchar(10)", None),
    ],
)
def test_decimal_precision(declared: str, expected: Precision | None) -> None:
    assert decimal_precision(declared) == expected


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_interval_spellings_read_as_the_same_microseconds(micros: int) -> None:
    day = 86_400_000_000
    days, rest = int(micros / day), micros - int(micros / day) * day  # SQLite's division truncates
    rendered = f"{days} days {rest} microseconds"  # the copy's rendering (valueforms.micros_render)
    assert interval_micros(rendered) == micros
    delta = timedelta(microseconds=micros)
    # PostgreSQL's 'postgres' style as it prints a days-and-time interval
    sign = "-" if rest < 0 else ""
    hours, remainder = divmod(abs(rest), 3_600_000_000)
    minutes, remainder = divmod(remainder, 60_000_000)
    seconds = Decimal(remainder) / 1_000_000
    clock = f"{sign}{hours:02d}:{minutes:02d}:{seconds:09.6f}"
    assert interval_micros(f"{days} days {clock}") == delta // timedelta(microseconds=1)


def test_interval_texts_postgresql_prints() -> None:
    assert interval_micros("1 day 02:03:04.5") == ((26 * 60 + 3) * 60 + 4.5) * 1_000_000
    assert interval_micros("-00:00:00.000005") == -5
    assert interval_micros("1 year 2 mons") == (360 + 60) * 86_400_000_000
    with pytest.raises(ValueError):
        interval_micros("soon")


@given(st.uuids())
def test_uuid_predicate_accepts_both_spellings(value: uuid.UUID) -> None:
    for text in (value.hex, str(value), str(value).upper()):
        assert sqlite_says(uuid_predicate("{}"), text)


@pytest.mark.parametrize(
    "text", ["", "x" * 32, "550e8400e29b41d4a71644665544000", "{550e8400-e29b-41d4-a716-446655440000}"]
)
def test_uuid_predicate_refuses_other_texts(text: str) -> None:
    assert not sqlite_says(uuid_predicate("{}"), text)


@given(st.times())
def test_time_predicate_accepts_what_time_reads_back(value: time) -> None:
    text = value.isoformat()
    assert sqlite_says(time_predicate("{}"), text) and time.fromisoformat(text) == value


@pytest.mark.parametrize("text", ["24:00:00", "12:60:00", "1:02:03", "12:00:00.1234567", "12:00:00Z", "12:00"])
def test_time_predicate_refuses_what_time_would_change_or_refuse(text: str) -> None:
    assert not sqlite_says(time_predicate("{}"), text)


def _schema(*names: str) -> Schema:
    return Schema(tables=[Table(n, (), (), (), (), (), False, False, False, "") for n in names])


def test_frameworks_are_told_by_their_migration_tables() -> None:
    assert detect(_schema("django_migrations", "app_x")) is DJANGO
    assert detect(_schema("alembic_version")) is SQLALCHEMY
    assert detect(_schema("schema_migrations", "ar_internal_metadata")) is RAILS
    assert detect(_schema("schema_migrations")) is None  # many tools have one: Rails has both


def test_a_framework_type_needs_every_value_to_fit() -> None:
    column = Column("uid", "char(32)", True, None, 0)
    uuids = ColumnCensus("uid", rows=2, texts=2, texts_uuid=True)
    assert DJANGO.choose(column, uuids, is_key=False).pg_type == "uuid"  # type: ignore[union-attr]
    assert DJANGO.choose(column, ColumnCensus("uid", rows=2, texts=2), is_key=False) is None
    key = Column("id", "integer", True, None, 1)
    ints = ColumnCensus("id", rows=2, integers=2, int_min=1, int_max=2)
    assert DJANGO.choose(key, ints, is_key=True) is None  # BigAutoField or AutoField: bigint
    assert SQLALCHEMY.choose(Column("id", "INTEGER", True, None, 1), ints, is_key=True).pg_type == "integer"  # type: ignore[union-attr]
