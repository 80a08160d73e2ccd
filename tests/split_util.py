"""Helpers for the split tests: a whole-database snapshot to compare cell by cell."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pgferry.sqltext import quote_ident as q


def cells(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[tuple[str, Any], ...]]:
    """Rows as (storage class, value) pairs: 1, 1.0 and '1' are different cells (Python's sqlite3
    maps INTEGER, REAL, TEXT, BLOB and NULL to int, float, str, bytes and None)."""
    return [tuple((type(v).__name__, v) for v in row) for row in conn.execute(sql, params).fetchall()]


def snapshot(path: str | Path) -> dict[str, Any]:
    """Schema text of every object and every table's rows with rowids and storage classes."""
    conn = sqlite3.connect(path)
    try:
        master = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(), key=repr)
        data: dict[str, Any] = {}
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall():
            # sqlite_sequence and sqlite_stat1 are compared by content: SQLite rewrites their rowids.
            no_rowid = "WITHOUT ROWID" in (sql or "").upper() or name.startswith("sqlite_")
            select = f"SELECT {'' if no_rowid else 'rowid AS _rowid_, '}* FROM {q(name)}"
            data[name] = sorted(cells(conn, select), key=repr)
        return {"schema": master, "data": data}
    finally:
        conn.close()
