"""The reject file of `--on-error reject`: every row the copy left out, whole and lossless.

One JSON object per line: `table`, `key` (the copy's row key), `column` and `problem` (what was
refused), `value` (a short view of it) and `row`, every column of the SQLite row with its storage class:

    {"integer": 7}   {"real": "0x1.8000000000000p+0"}   {"text": "..."}   {"text_hex": "6f6bff"}
    {"blob": "00ff"}   null

REALs are written with float.hex (exact, inf and nan included), text that is not UTF-8 as the hex of its
bytes, BLOBs as hex. `decode_value` gives the SQLite value back, of the same storage class; a row is
restored (`pgferry restore-rejects`, pgferry.migrate.restore) after its values are fixed in the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from pgferry.sqlite.connect import text_as
from pgferry.sqlite.keyset import Key, Keyset
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident

Record = dict[str, Any]  # column -> encoded value, in the table's column order


def encode_value(kind: str, value: Any) -> Any:
    """The JSON form of a SQLite value of storage class `kind` (typeof()); text may come as bytes."""
    if value is None or kind == "null":
        return None
    if kind == "integer":
        return {"integer": int(value)}
    if kind == "real":
        return {"real": float(value).hex()}
    if kind == "text":
        data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
        try:
            return {"text": data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"text_hex": data.hex()}
    return {"blob": bytes(value).hex()}


def decode_value(encoded: Any) -> tuple[str, Any]:
    """(storage class, Python value) of an encoded value: text_hex comes back as the text's bytes
    (bind it with CAST(? AS TEXT)). Raises ValueError on anything else."""
    if encoded is None:
        return "null", None
    if isinstance(encoded, dict) and len(encoded) == 1:
        ((kind, value),) = encoded.items()
        if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return kind, value
        if kind == "real" and isinstance(value, str):
            return kind, float.fromhex(value)
        if kind == "text" and isinstance(value, str):
            return kind, value
        if kind in ("text_hex", "blob") and isinstance(value, str):
            return kind, bytes.fromhex(value)
    raise ValueError(f"not a pgferry reject value: {json.dumps(encoded)[:80]}")


def typed_items(table: Table) -> list[str]:
    """SELECT items of a whole row: typeof() and the value of every column (read text as bytes)."""
    return [f"typeof({quote_ident(c.name)}), {quote_ident(c.name)}" for c in table.columns]


def record_of(table: Table, values: Sequence[Any]) -> Record:
    """The row from the values of `typed_items` (read with text as bytes: typeof() too)."""

    def kind(i: int) -> str:
        value = values[2 * i]
        return value.decode("ascii") if isinstance(value, bytes) else str(value)

    return {c.name: encode_value(kind(i), values[2 * i + 1]) for i, c in enumerate(table.columns)}


def read_record(conn: sqlite3.Connection, table: Table, keyset: Keyset, key: Key) -> Record | None:
    """The whole row with key `key` (values as the copy read them), in the connection's snapshot."""
    where = " AND ".join(f"{k} = ?" for k in keyset.keys)
    query = f"SELECT {', '.join(typed_items(table))} FROM {quote_ident(table.name)} WHERE {where}"
    with text_as(conn, bytes):
        row = conn.execute(query, list(key)).fetchone()
    return None if row is None else record_of(table, row)


def plain_key(key: Key) -> list[Any]:
    """The key as JSON can hold it: text read as bytes is decoded (bad bytes as \\udcXX escapes)."""
    return [k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k for k in key]


def reject_line(table: str, key: Key, column: str, value: str, problem: str, row: Record | None) -> str:
    entry = {"table": table, "key": plain_key(key), "column": column, "problem": problem, "value": value, "row": row}
    return json.dumps(entry) + "\n"
