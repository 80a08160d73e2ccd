"""Property: a value the guard lets through, and PostgreSQL accepts, never changes the type choice.

That is what makes typing big tables from a sample safe (pgferry.migrate.rowformat): whatever value
the sample missed is either refused (by the guard or by PostgreSQL), which makes the copy take a full
census, or it is one the full census would have typed the same way. Checked against SQLite's own
storage rules (the value goes through the declared type's affinity) and a real PostgreSQL.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgferry.migrate.plan import ColumnPlan
from pgferry.migrate.rowformat import guard_predicate, number_guard, python_text, rendered_in_python, text_expression
from pgferry.migrate.types import choose_type
from pgferry.sqlite.census import take_census
from pgferry.sqlite.schema import read_schema

# (declared type, column name, values a sample saw)
SAMPLES = [
    ("INTEGER", "v", [1, 2, 300]),
    ("BOOLEAN", "is_on", [0, 1, 1]),
    ("DATETIME", "v", ["2024-01-01 10:00:00", "2023-12-31 23:59:59"]),
    ("DATETIME", "v", ["2024-01-01T10:00:00Z", "2024-01-02 10:00:00+02:00"]),
    ("DATE", "v", ["2024-01-01", "1999-12-31"]),
    ("TIMESTAMP", "v", [1_700_000_000, 1_600_000_000]),
    ("TEXT", "v", ["plain", "words"]),
    ("JSON", "v", ['{"a": 1}', "[1, 2]"]),
    ("BLOB", "v", [b"\x00\x01", b"x"]),
    ("REAL", "v", [1.5, -2.25]),
    ("DATETIME", "v", [2_460_000.5, 2_459_000.25]),  # Julian day numbers
    ("", "v", [None, None]),  # nothing seen: typed from the declaration
]

ODD_TEXTS = [
    "now", "today", "epoch", "infinity", "yes", "t", "NaN", "0x10", "1_000", "1e5", " 12", "",
    '{"a": 1}', "[1,2]", "{bad", "[", "2024-02-30", "2024-02-29", "2023-02-29", "2024-01-01 24:00:00",
    "2024-01-01 23:59:60", "2024-01-01T10:00:00+02:00", "2024-01-01 10:00:00Z", "20240101", "2024-1-1",
    "J2451187", "2024-01-01 10:00:00 PST", "2024-01-01 10:00", "2024-01-01 10:00:00.123456",
    "2024-01-01 10:00:00.1234567", "2024-01-01 10:00:00\x00x", "a\x00b", "0", "1", "true",
    "2024-01-01 10:00:00 ", "2024-01-01  10:00",
]  # fmt: skip
DATE_LIKE = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 3),
    st.sampled_from([2**31 - 1, 2**31, -(2**31) - 1, 2**53, 2**53 + 1, 1_700_000_000, 1_700_000_000_000]),
    st.floats(allow_nan=False),
    st.sampled_from(ODD_TEXTS),
    DATE_LIKE,
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12),
    st.binary(max_size=6),
)


def _store(declared: str, name: str, values: list) -> sqlite3.Connection:  # type: ignore[type-arg]
    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE TABLE t (id INTEGER PRIMARY KEY, "{name}" {declared})')
    conn.executemany("INSERT INTO t VALUES (NULL, ?)", [(v,) for v in values])
    return conn


def _choice(conn: sqlite3.Connection):  # type: ignore[no-untyped-def]
    table = read_schema(conn).table("t")
    census = take_census(conn, table)
    column = table.columns[1]
    return choose_type(column, census.column(column.name))


def _pg_accepts(pg: psycopg.Connection, text: str | None, pg_type: str) -> bool:
    if text is None:
        return True
    try:
        with pg.transaction():
            pg.execute(f"SELECT %s::text::{pg_type}", [str(text)])  # the type's input function, as COPY
        return True
    except (psycopg.DataError, ValueError):  # ValueError: a NUL byte psycopg will not send
        return False


@pytest.fixture(scope="module")
def pg(pg_cluster):  # type: ignore[no-untyped-def]
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


ODD_NUMBERS = [
    *(2, -1, 2**31, 2**53 + 1, 5, 1_700_000_000_000, 2.0, 0.5, float("inf"), -0.0, 2_451_187.5),
    *(2_460_001, 2_488_069.5, 2_488_070.5, 1_721_425.5, 1_721_424.5, 700_000_000.25),
]


@pytest.mark.parametrize(("declared", "name", "sample"), SAMPLES)
def test_every_odd_value_keeps_the_sampled_type_or_is_refused(pg, declared: str, name: str, sample: list) -> None:  # type: ignore[no-untyped-def]
    for value in [*ODD_TEXTS, *ODD_NUMBERS, b"\x00", None]:
        _check(pg, declared, name, sample, value)


@pytest.mark.parametrize(("declared", "name", "sample"), SAMPLES)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_a_guarded_value_keeps_the_sampled_type(pg, declared: str, name: str, sample: list, value) -> None:  # type: ignore[no-untyped-def]
    _check(pg, declared, name, sample, value)


def _check(pg: psycopg.Connection, declared: str, name: str, sample: list, value: object) -> None:  # type: ignore[type-arg]
    sampled = _choice(_store(declared, name, sample))
    plan = ColumnPlan(name, name, sampled, notnull=False, default=None)
    conn = _store(declared, name, [*sample, value])
    stored = conn.execute(f'SELECT "{name}" FROM t ORDER BY id DESC LIMIT 1').fetchone()[0]
    if rendered_in_python(plan):
        passes = stored is None or number_guard(plan)(stored)
        rendered = python_text(stored)
    else:
        predicate = guard_predicate(plan) or "1"
        conn.text_factory = lambda data: data.decode("utf-8", "replace")
        passes, rendered = conn.execute(
            f'SELECT "{name}" IS NULL OR ({predicate}), {text_expression(plan)} FROM t ORDER BY id DESC LIMIT 1'
        ).fetchone()
    if not passes or not _pg_accepts(pg, rendered, sampled.pg_type):
        return  # refused: the copy takes a full census of the table
    full = _choice(conn)
    assert (full.pg_type, full.converter) == (sampled.pg_type, sampled.converter), (stored, rendered)
