"""Property: on random wide tables with random NULL patterns and random plans, reading through the
view returns the original rows; random writes through the view equal the same writes on the original
table; and revert gives back exactly what the original table would hold (schema text, rowids,
values and their storage classes)."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pgferry.split import SplitPlan
from pgferry.split.apply import apply_split
from pgferry.split.checks import out_of_step
from pgferry.split.contract import contract_split
from pgferry.split.layout import Layout
from pgferry.split.plan import Family
from pgferry.split.revert import revert_split
from pgferry.split.sqltext import fold
from pgferry.split.validate import affinity
from pgferry.sqlite.schema import read_schema
from pgferry.sqltext import quote_ident as q
from split_util import cells, snapshot

TYPES = ["INTEGER", "TEXT", "REAL", "BLOB", "", "NUMERIC", "VARCHAR(10)", "INT"]
KEY_KINDS = ["alias", "text", "composite", "without_rowid"]

names = st.text(alphabet="abAB _\"'-é1", min_size=1, max_size=5).filter(
    lambda n: not fold(n).startswith("sqlite_") and fold(n) not in {"rowid", "oid", "_rowid_", "k1", "k2"}
)
values = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from([0, 0.0, 1, 1.0, "1", b"1", "a", "A", ""]),  # equal or alike under some comparison
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=6),
)

op_values = st.one_of(st.none(), st.none(), values)  # writes that empty families happen often


@st.composite
def wide_tables(draw: st.DrawFn) -> dict[str, Any]:
    columns = draw(st.lists(names, min_size=2, max_size=8, unique_by=fold))
    types = [draw(st.sampled_from(TYPES)) for _ in columns]
    key_kind = draw(st.sampled_from(KEY_KINDS))
    buckets = [draw(st.integers(0, 3)) for _ in columns]  # 0 core, 1 side A, 2 side B, 3 key-value
    n_rows = draw(st.integers(0, 12))
    keys = draw(st.lists(st.integers(1, 60), min_size=n_rows, max_size=n_rows, unique=True))
    rows = [[draw(values) for _ in columns] for _ in keys]
    op_keys = st.one_of(st.sampled_from(keys), st.integers(1, 70)) if keys else st.integers(1, 70)
    ops = draw(st.lists(st.tuples(st.sampled_from(["insert", "update", "delete"]), op_keys,
                                  st.lists(op_values, min_size=len(columns), max_size=len(columns)),
                                  st.lists(st.booleans(), min_size=len(columns), max_size=len(columns)),
                                  st.booleans()), max_size=6))  # fmt: skip
    return {"columns": columns, "types": types, "key_kind": key_kind, "buckets": buckets, "keys": keys,
            "rows": rows, "ops": ops, "contract": draw(st.booleans())}  # fmt: skip


def _key(kind: str, k: int) -> list[Any]:
    return {"alias": [k], "text": [f"t{k}"], "composite": [k % 7, f"c{k}"], "without_rowid": [f"w{k}"]}[kind]


def _create(case: dict[str, Any]) -> tuple[str, list[str]]:
    kind = case["key_kind"]
    key_defs = {
        "alias": (["k1 INTEGER PRIMARY KEY"], ["k1"], ""),
        "text": (["k1 TEXT PRIMARY KEY"], ["k1"], ""),
        "composite": (["k1 INT", "k2 TEXT"], ["k1", "k2"], ""),
        "without_rowid": (["k1 TEXT PRIMARY KEY"], ["k1"], " WITHOUT ROWID"),
    }[kind]
    defs, key, options = key_defs
    cols = [f"{q(c)} {t}".rstrip() for c, t in zip(case["columns"], case["types"], strict=True)]
    extra = [f"PRIMARY KEY ({', '.join(key)})"] if kind == "composite" else []
    return f'CREATE TABLE "Wide ""T" ({", ".join(defs + cols + extra)}){options}', key


def _plan(case: dict[str, Any], key: list[str]) -> SplitPlan:
    columns, types, buckets = case["columns"], case["types"], case["buckets"]
    kv = [c for c, b in zip(columns, buckets, strict=True) if b == 3]
    kv_kind = affinity(types[columns.index(kv[0])]) if kv else None
    kv = [c for c in kv if affinity(types[columns.index(c)]) == kv_kind]
    families = [
        Family("side", "side A", [c for c, b in zip(columns, buckets, strict=True) if b == 1]),
        Family("side", 'Side "B"', [c for c, b in zip(columns, buckets, strict=True) if b == 2]),
        Family("key_value", "kv", kv),
    ]
    families = [f for f in families if f.columns]
    moved = {c for f in families for c in f.columns}
    return SplitPlan('Wide "T', key, 'Wide "T', key + [c for c in columns if c not in moved], families)


def _run(conn: sqlite3.Connection, sql: str, params: list[Any]) -> str:
    try:
        cursor = conn.execute(sql, params)
    except sqlite3.IntegrityError as exc:
        return f"IntegrityError: {exc}".split(":")[0]
    return f"ok {cursor.rowcount} {cursor.lastrowid if sql.startswith('INSERT') else ''}"


def _write(conn: sqlite3.Connection, case: dict[str, Any], key: list[str], op: tuple[Any, ...]) -> str:
    kind, k, vals, chosen, omit_key = op
    table = q('Wide "T')
    cols = case["columns"]
    key_values = _key(case["key_kind"], k)
    where = " AND ".join(f"{q(c)} = ?" for c in key)
    if kind == "insert":
        names = [c for c, pick in zip(cols, chosen, strict=True) if pick]
        vals_picked = [v for v, pick in zip(vals, chosen, strict=True) if pick]
        if not (omit_key and case["key_kind"] == "alias"):  # SQLite assigns an INTEGER PRIMARY KEY
            names, vals_picked = key + names, key_values + vals_picked
        if not names:
            return _run(conn, f"INSERT INTO {table} DEFAULT VALUES", [])
        marks = ", ".join("?" * len(names))
        return _run(conn, f"INSERT INTO {table} ({', '.join(q(c) for c in names)}) VALUES ({marks})", vals_picked)
    if kind == "update":
        sets = [(c, v) for c, v, pick in zip(cols, vals, chosen, strict=True) if pick]
        if omit_key:  # move the row to another key
            sets += list(zip(key, _key(case["key_kind"], k + 1), strict=True))
        if not sets:
            return "ok"
        assignments = ", ".join(f"{q(c)} = ?" for c, _ in sets)
        return _run(conn, f"UPDATE {table} SET {assignments} WHERE {where}", [v for _, v in sets] + key_values)
    return _run(conn, f"DELETE FROM {table} WHERE {where}", key_values)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_tables())
def test_split_writes_contract_and_revert(case: dict[str, Any]) -> None:
    """Writes on the split table give the same results (rowcount, lastrowid included) as on the
    unsplit one, the new tables stay in step, and contract then revert gives the original file."""
    create, key = _create(case)
    assume(_plan(case, key).families)  # a plan that moves nothing is refused (tested in test_split_tables)
    with tempfile.TemporaryDirectory() as tmp:
        db, reference = Path(tmp) / "db.sqlite", Path(tmp) / "ref.sqlite"
        with sqlite3.connect(db) as conn:
            conn.execute(create)
            marks = ", ".join("?" * (len(key) + len(case["columns"])))
            for k, row in zip(case["keys"], case["rows"], strict=True):
                conn.execute(f'INSERT INTO "Wide ""T" VALUES ({marks})', _key(case["key_kind"], k) + row)
        shutil.copyfile(db, reference)
        order = "ORDER BY " + ", ".join(key)
        with sqlite3.connect(db) as conn:
            original = cells(conn, f'SELECT * FROM "Wide ""T" {order}')
        apply_split(db, _plan(case, key), measure=False)
        with sqlite3.connect(db) as conn:
            assert cells(conn, f'SELECT * FROM "Wide ""T" {order}') == original
        results = []
        for target in (db, reference):
            with sqlite3.connect(target) as conn:
                results.append([_write(conn, case, key, op) for op in case["ops"]])
        assert results[0] == results[1]
        with sqlite3.connect(db) as conn, sqlite3.connect(reference) as ref:
            select = f'SELECT * FROM "Wide ""T" {order}'
            assert cells(conn, select) == cells(ref, select)
            assert out_of_step(conn, Layout.of(read_schema(conn).table('Wide "T'), _plan(case, key))) == 0
        if case["contract"]:
            contract_split(db, 'Wide "T')
        revert_split(db, 'Wide "T')
        assert snapshot(db) == snapshot(reference)
