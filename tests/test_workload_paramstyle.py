"""Parameter markers of every DB-API style rewritten to SQLite's `?`: SQLite itself checks that each
value lands where the original statement put it, with decoys (`%s`, `?`, `:name` in strings, quoted
names and comments) that must be left alone."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgferry.workload.paramstyle import MISFIT, MIXED, ParamStyleError, markers, to_sqlite

DECOYS = ["'%s'", "'?'", "':name'", "'%(x)s'", "'it''s %s'", '"%s"', "'--'", "'/*'"]
COMMENTS = ["/* %s ? :x */", "-- %s ? :x\n", "/* %(a)s */"]
values = st.one_of(st.integers(-(2**62), 2**62), st.text(max_size=8), st.none(), st.binary(max_size=4))


@st.composite
def statements(draw: st.DrawFn, style: str) -> tuple[str, str, Any, list[Any]]:
    """(statement, its parameters, the row SQLite must return) for a SELECT of markers and decoys."""
    items: list[str] = []
    expected: list[Any] = []
    pool = draw(st.lists(values, min_size=1, max_size=4))
    names = [f"p{k}" for k in range(len(pool))]
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            decoy = draw(st.sampled_from(DECOYS))
            items.append(decoy)
            expected.append(sqlite3.connect(":memory:").execute(f"SELECT {decoy}").fetchone()[0])
        else:
            k = draw(st.integers(0, len(pool) - 1))
            if style == "numeric":
                items.append(f":{k + 1}")
            elif style == "named":
                items.append(f":{names[k]}")
            elif style == "pyformat":
                items.append(f"%({names[k]})s")
            else:
                items.append("@")  # replaced below, once the markers are counted
            expected.append(("slot", k))
        if draw(st.booleans()):
            items[-1] += " " + draw(st.sampled_from(COMMENTS))
    if style in ("qmark", "format"):  # one value per marker, in order
        slots = [e for e in expected if isinstance(e, tuple) and e and e[0] == "slot"]
        pool = draw(st.lists(values, min_size=len(slots), max_size=len(slots)))
        k = 0
        for i, e in enumerate(expected):
            if isinstance(e, tuple) and e and e[0] == "slot":
                expected[i] = ("slot", k)
                items[i] = items[i].replace("@", "?" if style == "qmark" else "%s", 1)
                k += 1
        params: Any = pool
    elif style in ("named", "pyformat"):
        params = dict(zip(names, pool, strict=True))
    else:
        params = pool
        used = {e[1] for e in expected if isinstance(e, tuple) and e and e[0] == "slot"}
        if max(used, default=-1) + 1 != len(pool):  # SQLite wants a value for every number up to the largest
            pool = pool[: max(used, default=-1) + 1]
            params = pool
    row = [pool[e[1]] if isinstance(e, tuple) and e and e[0] == "slot" else e for e in expected]
    sql = "SELECT " + ", ".join(items) + (" /* % */" if style != "format" else " /* 100%% */")
    return style, sql, params, row


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["qmark", "numeric", "named", "format", "pyformat"]).flatmap(statements))
def test_rewritten_statement_binds_the_same_values_in_the_same_places(case: tuple[str, str, Any, list[Any]]) -> None:
    style, sql, params, row = case
    rewritten, bound = to_sqlite(sql, params)
    db = sqlite3.connect(":memory:")
    assert list(db.execute(rewritten, bound).fetchone()) == row
    if style in ("qmark", "named"):  # SQLite's own styles: the original runs too, with the same result
        assert list(db.execute(sql, params).fetchone()) == row


def test_format_style_percent_escapes_and_literals() -> None:
    sql, bound = to_sqlite("SELECT %s, '%s', x %% 2 FROM t WHERE a LIKE '100%%' -- %s %%", [7])
    assert sql == "SELECT ?, '%s', x % 2 FROM t WHERE a LIKE '100%' -- %s %%"  # `%%` is the driver's `%`
    assert bound == [7]
    assert to_sqlite("SELECT x %% 2, '%%' FROM t WHERE a = ?", [1])[0] == "SELECT x %% 2, '%%' FROM t WHERE a = ?"


def test_executemany_rows_are_rewritten_each() -> None:
    sql, rows = to_sqlite("INSERT INTO t VALUES (%(a)s, %(b)s, %(a)s)", [{"a": 1, "b": 2}, {"a": 3, "b": 4}], many=2)
    assert sql == "INSERT INTO t VALUES (?, ?, ?)" and rows == [[1, 2, 1], [3, 4, 3]]


def test_values_not_recorded_keep_the_rewritten_text() -> None:
    assert to_sqlite("SELECT %s, %s", None) == ("SELECT ?, ?", None)
    assert markers("SELECT %s, %s").count == 2


@pytest.mark.parametrize(
    ("sql", "params", "reason"),
    [
        ("SELECT %s, ?", [1, 2], MIXED),
        ("SELECT :a, ?", [1, 2], MIXED),
        ("SELECT %(a)s, %s", {"a": 1}, MIXED),
        ("SELECT %s, %s", [1], MISFIT),
        ("SELECT %(a)s", [1], MISFIT),
        ("SELECT %(a)s", {"b": 1}, MISFIT),
        ("SELECT ?", {"a": 1}, MISFIT),
        ("SELECT 1", [1], MISFIT),
    ],
)
def test_statements_that_cannot_be_bound_say_why(sql: str, params: Any, reason: str) -> None:
    with pytest.raises(ParamStyleError) as err:
        to_sqlite(sql, params)
    assert err.value.reason == reason


def test_every_style_has_the_same_fingerprint() -> None:
    from pgferry.workload import fingerprint

    forms = ["?", "%s", "%(v)s", ":1", "$1", "?1", ":v", "@v"]
    ids = {fingerprint(f"SELECT * FROM t WHERE a = {m} AND b IN ({m}, {m})").id for m in forms}
    assert len(ids) == 1
    assert markers("SELECT a[1:2], b[i:3] FROM t").count == 0  # array slices (PostgreSQL), not markers
    assert markers("SELECT :1, (:2)").count == 2
