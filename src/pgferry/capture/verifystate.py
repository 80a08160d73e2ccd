"""Verification's state in PostgreSQL's control schema: the keys the applier changed, the differences
found, and the last pass.

- `verify_batches` (target schema, seq, table number, keys as JSON): the applier adds the distinct
  keys of every batch in the batch's own transaction (`record_batch`, one INSERT ... SELECT from its
  staging tables per table), so a key is listed exactly when its change is in PostgreSQL; the
  continuous pass takes them and deletes what it took. Until a pass does, they add up: a few bytes
  per change.
- `verify_failures` (target schema, table, key, kind, columns, first/last seen, due): a difference is
  a suspect until the applier's position has passed `due_seq` (the changelog head when it was seen)
  and `due_at` has come; still there then, it is confirmed (reported). Equal again: deleted.
- `verify_state`: one row per target schema, what the last pass did.

Keys in `verify_failures` are the SQLite values, as JSON that keeps every storage class apart
(`encode_key`): 1, 1.0, '1' and x'31' are different keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from pgferry.capture.target import TargetTable
from pgferry.migrate.control import CONTROL_SCHEMA, ensure_control_schema, has_control_table

KEYS = sql.Identifier(CONTROL_SCHEMA, "verify_batches")
FAILURES = sql.Identifier(CONTROL_SCHEMA, "verify_failures")
STATE = sql.Identifier(CONTROL_SCHEMA, "verify_state")
KINDS = {"differs": "differs", "missing": "missing in target", "extra": "extra in target"}
Key = tuple[Any, ...]


def encode_key(key: Sequence[Any]) -> str:
    """JSON of a SQLite key; bytes as {"x": hex}, floats as {"f": repr} (JSON would merge 1 and 1.0)."""

    def one(value: Any) -> Any:
        if isinstance(value, bytes):
            return {"x": value.hex()}
        if isinstance(value, float):
            return {"f": repr(value)}
        return value

    return json.dumps([one(v) for v in key], ensure_ascii=False)


def decode_key(text: str) -> Key:
    def one(value: Any) -> Any:
        if isinstance(value, dict):
            return bytes.fromhex(value["x"]) if "x" in value else float(value["f"])
        return value

    return tuple(one(v) for v in json.loads(text))


def ensure(pg: psycopg.Connection) -> None:
    ensure_control_schema(pg)
    pg.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target_schema text NOT NULL, seq bigint NOT NULL, tbl integer NOT NULL,"
            " keys jsonb NOT NULL, PRIMARY KEY (target_schema, seq, tbl))"
        ).format(KEYS)
    )
    pg.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target_schema text NOT NULL, tbl text NOT NULL, key text NOT NULL,"
            " kind text NOT NULL, columns text[] NOT NULL DEFAULT '{{}}',"
            " first_seen timestamptz NOT NULL DEFAULT now(), last_seen timestamptz NOT NULL DEFAULT now(),"
            " due_seq bigint NOT NULL, due_at double precision NOT NULL,"
            " confirmed boolean NOT NULL DEFAULT false, PRIMARY KEY (target_schema, tbl, key))"
        ).format(FAILURES)
    )
    pg.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target_schema text PRIMARY KEY, last_pass timestamptz, mode text,"
            " keys_checked bigint NOT NULL DEFAULT 0, passes bigint NOT NULL DEFAULT 0, last_full timestamptz,"
            " verified_seq bigint)"
        ).format(STATE)
    )


def exists(pg: psycopg.Connection) -> bool:
    return has_control_table(pg, "verify_failures")


# --- the applier's side ----------------------------------------------------------------------------


def record_batch(pg: psycopg.Connection, target: TargetTable, seq: int) -> None:
    """Inside the batch's transaction: the keys staged for upsert or delete, one row per table and
    batch (a JSON array of keys; a row per key cost about as much as the batch's own upsert). A key
    staged twice (after a unique conflict) is listed twice: readers take DISTINCT."""
    names = sql.SQL(", ").join(sql.Identifier(k) for k in target.keys)
    pg.execute(
        sql.SQL(
            "INSERT INTO {} (target_schema, seq, tbl, keys) SELECT %s, %s, %s, jsonb_agg(jsonb_build_array({}))"
            " FROM (SELECT {} FROM {} UNION ALL SELECT {} FROM {}) AS s HAVING count(*) > 0"
            " ON CONFLICT (target_schema, seq, tbl) DO UPDATE SET keys = EXCLUDED.keys"
        ).format(KEYS, names, names, target.stage, names, target.gone),
        [target.schema, seq, target.number],
    )


# --- the verifier's side ---------------------------------------------------------------------------


def recorded(pg: psycopg.Connection, schema: str, number: int, types: Sequence[str], after: int = -1) -> list[Key]:
    """The distinct keys of table `number` recorded by batches above entry `after`, as typed
    PostgreSQL values (`types`: the key columns' types, as format_type spells them)."""
    typed = sql.SQL(", ").join(
        sql.SQL("(e.value ->> {})::{}").format(sql.Literal(i), sql.SQL(t)) for i, t in enumerate(types)
    )
    query = sql.SQL(
        "SELECT DISTINCT {} FROM {} AS b CROSS JOIN LATERAL jsonb_array_elements(b.keys) AS e"
        " WHERE b.target_schema = %s AND b.tbl = %s AND b.seq > %s"
    ).format(typed, KEYS)
    return [tuple(row) for row in pg.execute(query, [schema, number, after]).fetchall()]


def forget_recorded(pg: psycopg.Connection, schema: str, upto: int) -> int:
    """Drop the batches recorded up to entry `upto` (a pass compared their keys); later ones stay."""
    query = sql.SQL("DELETE FROM {} WHERE target_schema = %s AND seq <= %s").format(KEYS)
    return pg.execute(query, [schema, upto]).rowcount


@dataclass(frozen=True)
class Failure:
    table: str
    key: Key
    kind: str  # differs / missing / extra (KINDS says it in words)
    columns: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    due_seq: int
    due_at: float
    confirmed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": [v.hex() if isinstance(v, bytes) else v for v in self.key],
            "kind": KINDS[self.kind],
            "columns": list(self.columns),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "confirmed": self.confirmed,
        }


def failures(pg: psycopg.Connection, schema: str, table: str | None = None) -> list[Failure]:
    if not exists(pg):
        return []
    where = sql.SQL(" AND tbl = %s") if table is not None else sql.SQL("")
    query = sql.SQL(
        "SELECT tbl, key, kind, columns, first_seen, last_seen, due_seq, due_at, confirmed FROM {}"
        " WHERE target_schema = %s{} ORDER BY tbl, first_seen, key"
    ).format(FAILURES, where)
    params = [schema] if table is None else [schema, table]
    return [
        Failure(r[0], decode_key(r[1]), r[2], tuple(r[3]), r[4], r[5], r[6], r[7], r[8])
        for r in pg.execute(query, params).fetchall()
    ]


def save_failure(pg: psycopg.Connection, schema: str, failure: Failure) -> None:
    pg.execute(
        sql.SQL(
            "INSERT INTO {} (target_schema, tbl, key, kind, columns, due_seq, due_at, confirmed)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (target_schema, tbl, key) DO UPDATE SET"
            " kind = EXCLUDED.kind, columns = EXCLUDED.columns, last_seen = now(), due_seq = EXCLUDED.due_seq,"
            " due_at = EXCLUDED.due_at, confirmed = EXCLUDED.confirmed"
        ).format(FAILURES),
        [
            schema,
            failure.table,
            encode_key(failure.key),
            failure.kind,
            list(failure.columns),
            failure.due_seq,
            failure.due_at,
            failure.confirmed,
        ],
    )


def clear_failures(pg: psycopg.Connection, schema: str, table: str, keys: Sequence[Key]) -> int:
    """Delete the failures of `keys` (they compared equal)."""
    if not keys:
        return 0
    query = sql.SQL("DELETE FROM {} WHERE target_schema = %s AND tbl = %s AND key = ANY(%s)").format(FAILURES)
    return pg.execute(query, [schema, table, [encode_key(k) for k in keys]]).rowcount


def clear_table(pg: psycopg.Connection, schema: str, table: str) -> None:
    """Forget a table's failures (it was copied again)."""
    if exists(pg):
        pg.execute(sql.SQL("DELETE FROM {} WHERE target_schema = %s AND tbl = %s").format(FAILURES), [schema, table])


@dataclass(frozen=True)
class VerifyState:
    last_pass: datetime | None
    mode: str | None
    keys_checked: int
    passes: int
    last_full: datetime | None
    verified_seq: int | None  # every change up to this changelog entry was compared by a pass
    open_failures: int  # confirmed: they outlived the lag
    suspects: int  # seen, waiting for the applier and the grace

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_pass": None if self.last_pass is None else self.last_pass.isoformat(),
            "mode": self.mode,
            "keys_checked": self.keys_checked,
            "passes": self.passes,
            "last_full": None if self.last_full is None else self.last_full.isoformat(),
            "verified_seq": self.verified_seq,
            "open_failures": self.open_failures,
            "suspects": self.suspects,
        }


def note_pass(pg: psycopg.Connection, schema: str, mode: str, keys: int, upto: int) -> None:
    """A pass is over: every change up to entry `upto` was compared (the failures say what differed)."""
    pg.execute(
        sql.SQL(
            "INSERT INTO {} (target_schema, last_pass, mode, keys_checked, passes, last_full, verified_seq)"
            " VALUES (%s, now(), %s, %s, 1, CASE WHEN %s THEN now() END, %s) ON CONFLICT (target_schema) DO UPDATE"
            " SET last_pass = now(), mode = EXCLUDED.mode, keys_checked = {}.keys_checked + EXCLUDED.keys_checked,"
            " passes = {}.passes + 1, last_full = coalesce(EXCLUDED.last_full, {}.last_full),"
            " verified_seq = EXCLUDED.verified_seq"
        ).format(STATE, STATE, STATE, STATE),
        [schema, mode, keys, mode == "full", upto],
    )


def read_state(pg: psycopg.Connection, schema: str) -> VerifyState | None:
    if not exists(pg):
        return None
    row = pg.execute(
        sql.SQL(
            "SELECT last_pass, mode, keys_checked, passes, last_full, verified_seq FROM {} WHERE target_schema = %s"
        ).format(STATE),
        [schema],
    ).fetchone()
    counts = pg.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE confirmed), count(*) FILTER (WHERE NOT confirmed) FROM {}"
            " WHERE target_schema = %s"
        ).format(FAILURES),
        [schema],
    ).fetchone()
    assert counts is not None
    if row is None and counts == (0, 0):
        return None
    last_pass, mode, keys, passes, full, upto = row if row is not None else (None, None, 0, 0, None, None)
    return VerifyState(last_pass, mode, int(keys), int(passes), full, upto, int(counts[0]), int(counts[1]))
