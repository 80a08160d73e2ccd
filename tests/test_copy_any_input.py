"""Any table copies and verifies identical: random declared types holding random values of every storage
class (big integers, infinities, -0.0, NUL bytes, text that is not UTF-8, BLOBs, JSON, dates, UUIDs, times,
IPs), keyed by rowid or by a WITHOUT ROWID primary key. The copy either carries every value losslessly
(verify: identical) or stops with one of pgferry's errors naming the table; never a traceback."""

from __future__ import annotations

import math
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from pgferry.dsn import with_database
from pgferry.errors import PgferryError
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify
from pgferry.pg.cluster import LocalCluster

DECLARED = ["", "INTEGER", "SMALLINT", "BIGINT", "REAL", "TEXT", "BLOB", "NUMERIC", "DECIMAL(6,2)", "BOOLEAN",
            "DATETIME", "DATE", "TIME", "VARCHAR(4)", "CHAR(32)", "UUID", "JSON", "TEXT COLLATE NOCASE"]  # fmt: skip
values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, 2**31, -(2**15) - 1]),
    st.floats(allow_nan=False),
    st.sampled_from([-0.0, math.inf, -math.inf, 0.1, 12.34, 1.005]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "2024-02-29 10:00:00",
            "2024-02-30",
            "12:34:56",
            "24:00:00",
            '{"a": 1}',
            "null",
            "[1,",
            '"\\u0000"',
            "10.0.0.1",
            uuid.UUID(int=7).hex,
            str(uuid.UUID(int=9)),
            "NaN",
            "ÉÉÉÉ",
        ]
    ),
    st.binary(max_size=8),
    st.sampled_from([b"\xff\xfe", b"ok \xc3"]).map(lambda b: ("text_bytes", b)),  # text that is not UTF-8
)


def _insertable(value: Any) -> tuple[str, Any]:
    if isinstance(value, tuple):
        return "CAST(? AS TEXT)", value[1]
    return "?", value


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[list[Any]], bool]:
    declared = draw(st.lists(st.sampled_from(DECLARED), min_size=1, max_size=4))
    without_rowid = draw(st.booleans())
    columns = ", ".join(f'"c{i}" {d}' for i, d in enumerate(declared))
    rows = draw(st.lists(st.lists(values, min_size=len(declared), max_size=len(declared)), max_size=12))
    if without_rowid:
        ddl = f'CREATE TABLE t ("k" INTEGER NOT NULL PRIMARY KEY, {columns}) WITHOUT ROWID'
        rows = [[i, *row] for i, row in enumerate(rows)]
    else:
        ddl = f"CREATE TABLE t ({columns})"
    return ddl, rows, without_rowid


@pytest.fixture(scope="module")
def admin(pg_cluster: LocalCluster) -> str:
    return pg_cluster.dsn()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tables())
def test_any_table_copies_identical_or_stops_cleanly(admin: str, table: tuple[str, list[list[Any]], bool]) -> None:
    ddl, rows, _without_rowid = table
    name = f"any_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as tmp, psycopg.connect(admin, autocommit=True) as conn:
        path = Path(tmp) / "any.db"
        with sqlite3.connect(path) as db:
            db.execute(ddl)
            for row in rows:
                marks, params = zip(*(_insertable(v) for v in row), strict=True) if row else ((), ())
                db.execute(f"INSERT INTO t VALUES ({', '.join(marks)})", params)
        db.close()
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            try:
                job = copy_and_verify(path, with_database(admin, name), CopyOptions(jobs=1))
            except PgferryError as exc:
                assert "'t'" in str(exc) or '"t"' in str(exc), f"the error does not name the table: {exc}"
                return
            assert job.identical, (ddl, rows, job.verify)
        finally:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
