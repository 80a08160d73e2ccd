"""The route mirrored in PostgreSQL's control schema (`pgferry.route`), read by routers on route
`postgres`, where SQLite no longer sees the writes.

On route `postgres` the router's write transactions begin with `SELECT ... FOR SHARE` of this row:
a rollback (pgferry.capture.rollback) freezes SQLite's row (writers that begin then wait), takes this
one `FOR UPDATE` (which waits for the writers in flight, as BEGIN IMMEDIATE does on SQLite), drains,
sets SQLite's route to `sqlite`, then this row; writers that waited re-read the route and go back to
SQLite. The row is
only consulted while SQLite's row says `postgres`: SQLite's row is the route, this is its echo.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pgferry.migrate.control import CONTROL_SCHEMA
from pgferry.runtime.route.state import RouteState, from_row

TABLE = sql.Identifier(CONTROL_SCHEMA, "route")
_QUALIFIED = f'"{CONTROL_SCHEMA}"."route"'
# No parameters in the router's statements: they run with whichever placeholder style the backend uses.
PRESENT_SQL = f"SELECT to_regclass('{_QUALIFIED}') IS NOT NULL AS present"
CHECK_SQL = f"SELECT route, freeze_until, version, note FROM {_QUALIFIED} WHERE id = 1 FOR SHARE"


def ensure(pg: psycopg.Connection[Any]) -> None:
    pg.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(CONTROL_SCHEMA)))
    pg.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY CHECK (id = 1),"
            " route text NOT NULL CHECK (route IN ('sqlite', 'dual', 'postgres')), freeze_until double precision,"
            " version bigint NOT NULL, changed_at timestamptz NOT NULL DEFAULT now(), note text)"
        ).format(TABLE)
    )


def write(pg: psycopg.Connection[Any], state: RouteState) -> None:
    """Upsert the row (in `pg`'s transaction when it has one, else committed at once)."""
    ensure(pg)
    pg.execute(
        sql.SQL(
            "INSERT INTO {} (id, route, freeze_until, version, note) VALUES (1, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET route = excluded.route, freeze_until = excluded.freeze_until,"
            " version = excluded.version, changed_at = now(), note = excluded.note"
        ).format(TABLE),
        (state.route.value, state.freeze_until, state.version, state.note),
    )


def read(pg: psycopg.Connection[Any]) -> RouteState | None:
    """The mirrored state (None: no mirror)."""
    present = pg.execute(PRESENT_SQL).fetchone()
    if not present or not present[0]:
        return None
    cur = pg.execute(CHECK_SQL.removesuffix(" FOR SHARE"))
    row = cur.fetchone()
    if row is None:
        return None
    names = [d.name for d in cur.description or ()]
    return from_row(dict(zip(names, row, strict=True)))
