"""The control schema in the target: copy checkpoints that make a killed copy resumable.

Each chunk's COPY and its checkpoint update commit in one PostgreSQL transaction, so after a
`kill -9` at any point the checkpoint names exactly the last key that is in the target: resuming
from it neither loses nor duplicates a row.

Keys are stored in jsonb, which holds no bytes, no NaN or infinity, no -0.0 and no NUL in a string,
and reads a float back as whatever its digits say (1e308 as an integer): each key value is stored
tagged with its SQLite storage class (`encode_key`), so a resume seeks from exactly the key it left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

CONTROL_SCHEMA = "pgferry"


@dataclass(frozen=True)
class Checkpoint:
    table: str
    part: int
    last_key: list[Any] | None  # exclusive lower bound of what is still to copy
    upper_key: list[Any] | None  # inclusive upper bound of this part (None: to the end)
    rows: int
    done: bool


def _encode_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return {"blob": bytes(value).hex()}
    if isinstance(value, float):
        return {"real": value.hex()}
    if isinstance(value, int):  # bool included: SQLite stores it as an integer
        return {"integer": str(int(value))}
    text = str(value)
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        return {"text_utf8": text.encode("utf-8", "surrogateescape").hex()}
    return {"text": text}


def _decode_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # a checkpoint written before keys were tagged
    [(kind, data)] = value.items()
    if kind == "blob":
        return bytes.fromhex(data)
    if kind == "real":
        return float.fromhex(data)
    if kind == "integer":
        return int(data)
    if kind == "text_utf8":
        return bytes.fromhex(data).decode("utf-8", "surrogateescape")
    return str(data)


def encode_key(key: list[Any] | None) -> str:
    """JSON text of a key, every value tagged with its storage class so it reads back exactly."""
    return json.dumps(None if key is None else [_encode_value(v) for v in key])


def decode_key(data: Any) -> list[Any] | None:
    """The key `encode_key` stored (jsonb as psycopg returns it)."""
    return None if data is None else [_decode_value(v) for v in data]


def ensure_control_schema(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(CONTROL_SCHEMA)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.copy_progress ("
            " target_schema text NOT NULL, source_table text NOT NULL, part int NOT NULL,"
            " last_key jsonb, upper_key jsonb, rows bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false,"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (target_schema, source_table, part))"
        ).format(sql.Identifier(CONTROL_SCHEMA))
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.copy_state ("
            " target_schema text PRIMARY KEY, source text NOT NULL, phase text NOT NULL,"
            " started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(CONTROL_SCHEMA))
    )
    conn.execute(
        sql.SQL("ALTER TABLE {}.copy_state ADD COLUMN IF NOT EXISTS plan jsonb").format(sql.Identifier(CONTROL_SCHEMA))
    )


def save_plan(conn: psycopg.Connection, schema: str, plan: dict[str, Any]) -> None:
    """Keep the plan the tables were made from: a resume or a verify then renders values the same way,
    whatever a new census of a changed source would say (and skips that census)."""
    conn.execute(
        sql.SQL("UPDATE {}.copy_state SET plan = %s WHERE target_schema = %s").format(sql.Identifier(CONTROL_SCHEMA)),
        [json.dumps(plan), schema],
    )


def has_control_table(conn: psycopg.Connection, name: str) -> bool:
    """The control schema holds table `name` (a reader before anything made it finds none)."""
    row = conn.execute("SELECT to_regclass(%s)", [f"{CONTROL_SCHEMA}.{name}"]).fetchone()
    return row is not None and row[0] is not None


def read_plan(conn: psycopg.Connection, schema: str) -> dict[str, Any] | None:
    """The stored plan of the copy into `schema`, or None (no control schema, no copy, or an older copy)."""
    if not has_control_table(conn, "copy_state"):
        return None
    row = conn.execute(
        sql.SQL("SELECT plan FROM {}.copy_state WHERE target_schema = %s").format(sql.Identifier(CONTROL_SCHEMA)),
        [schema],
    ).fetchone()
    return None if row is None or row[0] is None else dict(row[0])


def read_phase(conn: psycopg.Connection, schema: str) -> str | None:
    """The copy's phase into `schema`, or None (no control schema, or no copy into it)."""
    if not has_control_table(conn, "copy_state"):
        return None
    row = conn.execute(
        sql.SQL("SELECT phase FROM {}.copy_state WHERE target_schema = %s").format(sql.Identifier(CONTROL_SCHEMA)),
        [schema],
    ).fetchone()
    return None if row is None else str(row[0])


def set_phase(conn: psycopg.Connection, schema: str, source: str, phase: str) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.copy_state (target_schema, source, phase) VALUES (%s, %s, %s) "
            "ON CONFLICT (target_schema) DO UPDATE SET phase = EXCLUDED.phase, updated_at = now()"
        ).format(sql.Identifier(CONTROL_SCHEMA)),
        [schema, source, phase],
    )


def read_checkpoints(conn: psycopg.Connection, schema: str) -> dict[tuple[str, int], Checkpoint]:
    rows = conn.execute(
        sql.SQL(
            "SELECT source_table, part, last_key, upper_key, rows, done FROM {}.copy_progress WHERE target_schema = %s"
        ).format(sql.Identifier(CONTROL_SCHEMA)),
        [schema],
    ).fetchall()
    return {(r[0], r[1]): Checkpoint(r[0], r[1], decode_key(r[2]), decode_key(r[3]), r[4], r[5]) for r in rows}


def save_checkpoint(conn: psycopg.Connection, schema: str, checkpoint: Checkpoint) -> None:
    """Record progress; call inside the transaction that copied the chunk."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.copy_progress (target_schema, source_table, part, last_key, upper_key, rows, done) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (target_schema, source_table, part) DO UPDATE SET "
            "last_key = EXCLUDED.last_key, rows = EXCLUDED.rows, done = EXCLUDED.done, updated_at = now()"
        ).format(sql.Identifier(CONTROL_SCHEMA)),
        [
            schema,
            checkpoint.table,
            checkpoint.part,
            encode_key(checkpoint.last_key),
            encode_key(checkpoint.upper_key),
            checkpoint.rows,
            checkpoint.done,
        ],
    )
