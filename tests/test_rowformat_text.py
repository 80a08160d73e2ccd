"""Property: any text rendered as a COPY CSV field arrives in PostgreSQL exactly as SQLite holds it.

Quotes are doubled only where a GLOB finds one (pgferry.migrate.rowformat.doubled_quotes); text with
quotes, commas, line breaks, backslashes, an empty string, or a NULL must all survive, in each of
the field's forms: nullable or NOT NULL, typed from a sample (guarded) or not.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgferry.migrate.plan import ColumnPlan
from pgferry.migrate.rowformat import select_list
from pgferry.migrate.types import TypeChoice

TEXT = TypeChoice("text", "text", "text values")
TEXTS = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20),
    st.text(alphabet='",\n\r\\ a', max_size=8),
    st.none(),
)


@pytest.fixture(scope="module")
def pg(pg_cluster):  # type: ignore[no-untyped-def]
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (a text, b text, c text)")
        yield conn


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(TEXTS, TEXTS, TEXTS), min_size=1, max_size=5), guarded=st.booleans())
def test_text_fields_arrive_unchanged(pg, values: list, guarded: bool) -> None:  # type: ignore[no-untyped-def]
    # Column b is NOT NULL when the drawn rows allow it: that form is joined outside printf().
    b_notnull = all(row[1] is not None for row in values)
    columns = [ColumnPlan(name, name, TEXT, name == "b" and b_notnull, None) for name in "abc"]
    src = sqlite3.connect(":memory:")
    src.execute("CREATE TABLE t (a TEXT, b TEXT, c TEXT)")
    src.executemany("INSERT INTO t VALUES (?, ?, ?)", values)
    (line_sql,) = select_list(columns, guarded)
    lines = "".join(row[0] for row in src.execute(f"SELECT {line_sql} FROM t ORDER BY rowid"))
    pg.execute("TRUNCATE t")
    with pg.cursor().copy("COPY t FROM STDIN (FORMAT csv)") as copy:
        copy.write(lines)
    assert pg.execute("SELECT a, b, c FROM t").fetchall() == values
