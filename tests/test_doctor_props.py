"""Property tests for the doctor's pure parts: redundancy rules on random index sets (checked on a
real SQLite schema), the distinct-count estimator, size parsing and plan-line parsing."""

from __future__ import annotations

import contextlib
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from pgferry.cli_doctor import parse_size
from pgferry.doctor.indexes_redundant import find_structural, index_views, is_prefix, same_keys
from pgferry.doctor.planner import parse_access
from pgferry.doctor.stats import avg_per_key
from pgferry.sqlite.schema import read_schema

COLUMNS = ("a", "b", "c", "d")
key = st.tuples(st.sampled_from(COLUMNS), st.booleans(), st.sampled_from(("BINARY", "NOCASE")))
index = st.tuples(st.lists(key, min_size=1, max_size=3, unique_by=lambda k: k[0]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.lists(index, min_size=1, max_size=7))
def test_redundancy_keeps_a_covering_index_for_everything_it_flags(specs: list) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c, d UNIQUE)")
    for n, (keys, unique) in enumerate(specs):
        cols = ", ".join(f'"{c}" COLLATE {coll}{" DESC" if desc else ""}' for c, desc, coll in keys)
        with contextlib.suppress(sqlite3.IntegrityError):
            conn.execute(f'CREATE {"UNIQUE " if unique else ""}INDEX "i{n}" ON t ({cols})')
    schema = read_schema(conn)
    views = index_views(conn, schema)["t"]
    flagged = {r.index.name: r for r in find_structural({"t": views})}
    by_name = {v.name: v for v in views}
    kept = [v for v in views if v.name not in flagged]
    for name, item in flagged.items():
        view = by_name[name]
        assert view.droppable  # constraint indexes are never dropped
        assert not (view.unique and item.reason == "prefix_covered")  # a UNIQUE prefix enforces something
        assert any(same_keys(view.keys, k.keys) or is_prefix(view.keys, k.keys) for k in kept), (
            "a flagged index must be covered by one that stays"
        )
    for i, a in enumerate(kept):  # what stays holds no exact duplicate of a user index
        for b in kept[i + 1 :]:
            if a.droppable and b.droppable:
                assert not (same_keys(a.keys, b.keys) and a.where == b.where and a.unique == b.unique)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=10**7),
)
def test_rows_per_key_estimate_stays_in_bounds(n: int, distinct: int, singles: int, population: int) -> None:
    distinct = min(distinct, n)
    singles = min(singles, distinct)
    population = max(population, n)
    avg = avg_per_key(n, distinct, singles, population, sampled=population > n)
    assert 1 <= avg <= max(1, -(-population // distinct))


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["", "B", "KiB", "MiB", "GiB", "kb", "GB"]))
def test_parse_size_units(value: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kb": 1000, "GB": 1000**3}[unit]
    assert parse_size(f"{value} {unit}") == value * factor


def test_plan_lines_parse() -> None:
    a = parse_access("SEARCH r USING INDEX idx_x (topic_id=? AND created_at>?)")
    assert (a.op, a.alias, a.index, a.eq, a.ranges, a.covering) == ("SEARCH", "r", "idx_x", 1, 1, False)
    b = parse_access("SEARCH u USING INTEGER PRIMARY KEY (rowid=?) LEFT-JOIN")
    assert (b.alias, b.index, b.eq) == ("u", "rowid", 1)
    c = parse_access("SCAN t USING COVERING INDEX i2")
    assert (c.op, c.index, c.covering) == ("SCAN", "i2", True)
    assert parse_access("USE TEMP B-TREE FOR ORDER BY") is None
