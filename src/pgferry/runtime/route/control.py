"""The route in the SQLite file: one row of the control table `_pgferry_route`, and the writer side
(`freeze`, `set_route`, `thaw`) that a cutover or a rollback calls.

The router reads the row right after its BEGIN IMMEDIATE, so a switch made under the write lock is
seen by every writer that waited for that lock. The order a cutover follows (issue 16, DESIGN.md:
announce the freeze through the route first, then lock):

    freeze(conn, seconds=5)                     # new writers wait instead of queuing for the lock
    with atomic(conn):                          # BEGIN IMMEDIATE: writers in flight finish first
        ...drain the changelog...
        set_route(conn, Route.POSTGRES, pg=pg)  # the flip, committed with the lock
    # on failure instead: thaw(conn): writers go on where they were

Each call writes in the caller's transaction when there is one (then it commits with it), else in
a BEGIN IMMEDIATE of its own. `pg` mirrors the row into PostgreSQL's control schema (route.mirror),
which is how routers on route `postgres` notice a rollback.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

import psycopg

from pgferry.runtime.route import mirror
from pgferry.runtime.route.state import UNSET, Route, RouteState, from_row
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.control import ControlTable

ROUTE_TABLE = ControlTable(
    "_pgferry_route",
    (
        ("id", "INTEGER PRIMARY KEY CHECK (id = 1)"),
        ("route", "TEXT NOT NULL CHECK (route IN ('sqlite', 'dual', 'postgres'))"),
        ("freeze_until", "REAL"),
        ("version", "INTEGER NOT NULL"),
        ("changed_at", "TEXT NOT NULL"),
        ("note", "TEXT"),
    ),
    key="id",
)
# the router's read, on its own connection inside its write transaction (a file without the table: SQLite)
SELECT_SQL = 'SELECT route, freeze_until, version, note FROM "_pgferry_route" WHERE id = 1'


def state_of(row: Mapping[str, Any] | None) -> RouteState:
    """The state a SELECT_SQL row holds (none: the route was never set)."""
    return from_row(row) or UNSET


def is_missing_table(exc: BaseException) -> bool:
    """SELECT_SQL on a file that has no route table (never set: the route is SQLite)."""
    return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc) and ROUTE_TABLE.name in str(exc)


def read_route(conn: sqlite3.Connection) -> RouteState:
    """The route in force on `conn` (inside its transaction, if it is in one)."""
    try:
        cur = conn.execute(SELECT_SQL)
    except sqlite3.OperationalError as exc:
        if is_missing_table(exc):
            return UNSET
        raise
    row = cur.fetchone()
    return UNSET if row is None else state_of(dict(zip(("route", "freeze_until", "version", "note"), row, strict=True)))


def _write(
    conn: sqlite3.Connection, route: Route, freeze_until: float | None, note: str | None, pg: psycopg.Connection | None
) -> RouteState:
    with atomic(conn, what="setting the migration's route"):
        state = RouteState(route, freeze_until, read_route(conn).version + 1, note)
        ROUTE_TABLE.write(
            conn,
            {
                "id": 1,
                "route": route.value,
                "freeze_until": freeze_until,
                "version": state.version,
                "changed_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "note": note,
            },
            replace=True,
        )
        if pg is not None:
            mirror.write(pg, state)
    return state


def set_route(
    conn: sqlite3.Connection, route: Route | str, *, note: str | None = None, pg: psycopg.Connection | None = None
) -> RouteState:
    """Set the route and end any freeze. Writers that were waiting (on the freeze or on the lock)
    see it as soon as it commits. `pg` mirrors it into PostgreSQL at once (before this commits)."""
    return _write(conn, Route.parse(route), None, note, pg)


def freeze(
    conn: sqlite3.Connection, seconds: float, *, note: str | None = None, pg: psycopg.Connection | None = None
) -> RouteState:
    """Announce a switch: writers that begin from now wait (each up to its router's `freeze_wait_s`)
    instead of taking the write lock. The freeze lapses after `seconds` by itself."""
    if not 0 < seconds <= 600:
        raise ValueError(f"a freeze lasts more than 0 and at most 600 s, not {seconds}")
    return _write(conn, read_route(conn).route, time.time() + seconds, note, pg)


def thaw(conn: sqlite3.Connection, *, note: str | None = None, pg: psycopg.Connection | None = None) -> RouteState:
    """End a freeze without switching (a cutover that gave up): writers go on where they were."""
    return _write(conn, read_route(conn).route, None, note, pg)
