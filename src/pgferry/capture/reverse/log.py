"""Reverse capture's objects in PostgreSQL: the changelog `pgferry.reverse_changelog` and, on every
copied table, an AFTER INSERT / UPDATE / DELETE row trigger appending the changed row's key to it.

The key is a jsonb array of each key column's text form (`NEW.col::text`): one column holds keys of
any width and type, and a type's text output reads back through its input function exactly
(`(key->>0)::type`), which is how the reverse applier finds the row again. Typed columns would need
a changelog per key shape. An UPDATE whose key's text changes logs the old key too (it is gone).
A TRUNCATE fires no row trigger: a statement trigger logs the table with a JSON null key instead,
and the applier empties the table in SQLite before writing the batch's rows.

`xid` is the writing transaction (pg_current_xact_id(), for diagnosis: which transaction wrote an
entry); `logged_at` (the transaction's start) bounds the reverse lag in seconds from above.

The triggers are armed by the route: each one logs only while the route mirrored in PostgreSQL
(`pgferry.route`, runtime/route/mirror.py) says `postgres`. So the cutover installs them before its
freeze, where their catalog writes and table locks cost writers nothing, and its flip (one mirror
row, in the transaction that commits the switch) is what arms them: a write on PostgreSQL is logged
exactly when it happens on the route `postgres`. Before that (the forward applier's upserts, a `dual`
route's candidate writes) they return at once; a rollback's flip disarms them in the same way.

`install` and `uninstall` run in the caller's transaction and never commit; install is idempotent
(a cutover retried after a kill installs again: CREATE ... IF NOT EXISTS, CREATE OR REPLACE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgferry.capture.copied import CopiedTable
from pgferry.migrate.control import CONTROL_SCHEMA
from pgferry.runtime.route import mirror

CHANGELOG = sql.Identifier(CONTROL_SCHEMA, "reverse_changelog")
TRIGGER = "_pgferry_reverse"
TRUNCATE_TRIGGER = "_pgferry_reverse_truncate"
FUNCTION_PREFIX = "reverse_log_"
TRUNCATE_FUNCTION = sql.Identifier(CONTROL_SCHEMA, "reverse_log_truncate")  # one for every table


@dataclass(frozen=True)
class Entry:
    seq: int
    table: str  # the PostgreSQL table
    key: list[str] | None  # each key column's text form; None: the table was truncated
    logged_at: float  # epoch s: its transaction's start


def function_name(schema: str, table: str) -> sql.Identifier:
    """The trigger function of one table (a digest: schema and table names can be 63 bytes each)."""
    digest = hashlib.sha256(f"{schema}\x00{table}".encode()).hexdigest()[:24]
    return sql.Identifier(CONTROL_SCHEMA, FUNCTION_PREFIX + digest)


def exists(pg: psycopg.Connection) -> bool:
    row = pg.execute("SELECT to_regclass(%s)", [f"{CONTROL_SCHEMA}.reverse_changelog"]).fetchone()
    return row is not None and row[0] is not None


def _key_array(record: sql.SQL, keys: Sequence[str]) -> sql.Composed:
    values = sql.SQL(", ").join(sql.SQL("{}.{}::text").format(record, sql.Identifier(k)) for k in keys)
    return sql.SQL("jsonb_build_array({})").format(values)


# the first statement of every trigger: nothing is logged unless the mirrored route is postgres
UNARMED = sql.SQL(
    "IF NOT EXISTS (SELECT 1 FROM {} WHERE id = 1 AND route = 'postgres') THEN RETURN NULL; END IF;"
).format(mirror.TABLE)


def _function_body(table: str, keys: Sequence[str]) -> sql.Composed:
    """The row trigger's body; the table named as a literal, since on a partitioned table TG_TABLE_NAME
    is the partition the row lives in."""
    log = sql.SQL("INSERT INTO {} (target_schema, tbl, key) VALUES (TG_TABLE_SCHEMA, {}, {});")
    moved = sql.SQL(" OR ").join(
        sql.SQL("OLD.{0}::text IS DISTINCT FROM NEW.{0}::text").format(sql.Identifier(k)) for k in keys
    )
    return sql.SQL(
        "BEGIN {unarmed} IF TG_OP = 'DELETE' THEN {old}"
        " ELSE {new} IF TG_OP = 'UPDATE' AND ({moved}) THEN {old} END IF; END IF; RETURN NULL; END"
    ).format(
        unarmed=UNARMED,
        old=log.format(CHANGELOG, sql.Literal(table), _key_array(sql.SQL("OLD"), keys)),
        new=log.format(CHANGELOG, sql.Literal(table), _key_array(sql.SQL("NEW"), keys)),
        moved=moved,
    )


def install(pg: psycopg.Connection, schema: str, tables: Sequence[CopiedTable]) -> int:
    """The changelog and a trigger on every table of `tables` (copied into `schema`), in `pg`'s
    transaction, sent as one batch (one round trip, not three per table). They log nothing until the
    mirrored route says postgres (module docstring). Returns the tables given a trigger."""
    mirror.ensure(pg)  # the triggers read it
    parts = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(CONTROL_SCHEMA)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (seq bigserial PRIMARY KEY,"
            " xid xid8 NOT NULL DEFAULT pg_current_xact_id(), logged_at timestamptz NOT NULL DEFAULT now(),"
            " target_schema text NOT NULL, tbl text NOT NULL, key jsonb NOT NULL)"
        ).format(CHANGELOG),
    ]
    truncated = sql.SQL(
        "BEGIN {} INSERT INTO {} (target_schema, tbl, key) VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 'null');"
        " RETURN NULL; END"
    ).format(UNARMED, CHANGELOG)
    parts.append(
        sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}").format(
            TRUNCATE_FUNCTION, sql.Literal(truncated.as_string(pg))
        )
    )
    for table in tables:
        identity = table.identity
        function = function_name(schema, identity.target)
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(identity.target))
        body = _function_body(identity.target, identity.target_keys).as_string(pg)
        parts += [
            sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}").format(
                function, sql.Literal(body)
            ),
            sql.SQL(
                "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(TRIGGER), target, function),
            sql.SQL(
                "CREATE OR REPLACE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(TRUNCATE_TRIGGER), target, TRUNCATE_FUNCTION),
        ]
    pg.execute(sql.SQL("; ").join(parts))
    return len(tables)


def installed_tables(pg: psycopg.Connection, schema: str) -> list[str]:
    """The tables of `schema` that carry the reverse trigger."""
    rows = pg.execute(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = %s AND n.nspname = %s ORDER BY 1",
        [TRIGGER, schema],
    ).fetchall()
    return [r[0] for r in rows]


def missing(pg: psycopg.Connection, schema: str, tables: Sequence[CopiedTable]) -> list[CopiedTable]:
    """The tables of `tables` without the reverse trigger (one catalog query: the cutover's flip asks
    it to find a table a rebuild re-created since the install before the freeze)."""
    installed = set(installed_tables(pg, schema))
    return [t for t in tables if t.identity.target not in installed]


def uninstall(pg: psycopg.Connection, schema: str) -> int:
    """Drop the triggers and functions of `schema` and its entries, in `pg`'s transaction; the
    changelog and the shared function go once no table of any schema has a reverse trigger. Safe to
    run twice. Returns the tables whose triggers were dropped."""
    tables = installed_tables(pg, schema)
    for table in tables:
        for trigger in (TRIGGER, TRUNCATE_TRIGGER):
            pg.execute(
                sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}").format(
                    sql.Identifier(trigger), sql.Identifier(schema), sql.Identifier(table)
                )
            )
        pg.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(function_name(schema, table)))
    forget_schema(pg, schema)
    others = pg.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname IN (%s, %s))", [TRIGGER, TRUNCATE_TRIGGER]
    )
    if others.fetchone() == (False,):
        pg.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(TRUNCATE_FUNCTION))
        if exists(pg) and pg.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(CHANGELOG)).fetchone() == (
            True,
        ):
            pg.execute(sql.SQL("DROP TABLE {}").format(CHANGELOG))
    return len(tables)


def read(pg: psycopg.Connection, schema: str, limit: int) -> list[Entry]:
    """Up to `limit` entries of `schema` visible to `pg`'s snapshot, oldest first (none once a
    rollback removed the changelog)."""
    if not exists(pg):
        return []
    rows = pg.execute(
        sql.SQL(
            "SELECT seq, tbl, key, extract(epoch FROM logged_at) FROM {} WHERE target_schema = %s ORDER BY seq LIMIT %s"
        ).format(CHANGELOG),
        [schema, limit],
    ).fetchall()
    return [Entry(int(seq), str(tbl), None if key is None else list(key), float(at)) for seq, tbl, key, at in rows]


def forget(pg: psycopg.Connection, seqs: Sequence[int]) -> int:
    """Delete applied entries (by seq: an entry committed meanwhile under a lower seq stays)."""
    if not seqs:
        return 0
    return pg.execute(sql.SQL("DELETE FROM {} WHERE seq = ANY(%s)").format(CHANGELOG), [list(seqs)]).rowcount


def forget_schema(pg: psycopg.Connection, schema: str, upto: int | None = None) -> int:
    """Delete `schema`'s entries (up to seq `upto` when given)."""
    if not exists(pg):
        return 0
    where = sql.SQL("target_schema = %s") + (sql.SQL(" AND seq <= %s") if upto is not None else sql.SQL(""))
    params: list[Any] = [schema] if upto is None else [schema, upto]
    return pg.execute(sql.SQL("DELETE FROM {} WHERE ").format(CHANGELOG) + where, params).rowcount


@dataclass(frozen=True)
class Backlog:
    """What is waiting in the reverse changelog for one schema."""

    entries: int
    oldest_s: float | None  # seconds since the oldest entry's transaction began (None: empty)
    newest_seq: int | None
    bytes: int  # the changelog's size on disk, every schema's entries included


def backlog(pg: psycopg.Connection, schema: str) -> Backlog | None:
    """None when reverse capture has no changelog."""
    if not exists(pg):
        return None
    row = pg.execute(
        sql.SQL(
            "SELECT count(*), extract(epoch FROM now() - min(logged_at)), max(seq),"
            " pg_total_relation_size(%s::regclass) FROM {} WHERE target_schema = %s"
        ).format(CHANGELOG),
        [f"{CONTROL_SCHEMA}.reverse_changelog", schema],
    ).fetchone()
    assert row is not None
    count, oldest, newest, size = row
    return Backlog(int(count), None if oldest is None else max(0.0, float(oldest)), newest, int(size))


def lock_name(schema: str) -> str:
    """The advisory lock one reverse applier of `schema` holds per batch (two would race: the one
    with the older snapshot could write its older rows over the newer ones)."""
    return f"pgferry reverse applier:{schema}"


def lock(pg: psycopg.Connection, schema: str, *, transaction: bool = False) -> None:
    """Wait for the lock: for the session (`unlock` releases it), or for `pg`'s transaction."""
    function = sql.SQL("pg_advisory_xact_lock" if transaction else "pg_advisory_lock")
    pg.execute(sql.SQL("SELECT {}(hashtextextended(%s, 0))").format(function), [lock_name(schema)])


def unlock(pg: psycopg.Connection, schema: str) -> None:
    pg.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [lock_name(schema)])
