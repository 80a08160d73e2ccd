"""`pgferry migrate finish`: the end of a migration that was cut over. The capture triggers, the
changelog and the install record leave the SQLite file, and the migration's state (capture state,
the copy's checkpoints and plan, the cutover log) and reverse capture (its triggers and changelog,
pgferry.capture.reverse) leave PostgreSQL; the application's tables and rows on both sides stay as
they are.

The route stays: SQLite's row and its mirror in PostgreSQL both say `postgres`, and an application
still running on `pgferry.runtime`'s router keeps writing to PostgreSQL (without the row it would
read "sqlite" and go back). After `finish` there is no rollback: the changes made on PostgreSQL
since are no longer kept for SQLite.
"""

from __future__ import annotations

from pathlib import Path

from pgferry.capture import pgstate, reverse
from pgferry.capture.install import uninstall
from pgferry.capture.migration import RemovalReport, install_schema
from pgferry.capture.strays import read_strays
from pgferry.errors import UsageError
from pgferry.pg.connect import connect
from pgferry.runtime.route import Route, read_route
from pgferry.sqlite.connect import check_sqlite_file, open_readonly


def finish(path: str | Path, dsn: str, schema: str | None = None, discard_stray_writes: bool = False) -> RemovalReport:
    """Remove the migration's machinery from both sides after a cutover (safe to run twice). Refused
    while SQLite holds stray writes (pgferry.capture.strays) unless `discard_stray_writes`."""
    path = check_sqlite_file(path)
    schema = install_schema(path, schema)
    conn = open_readonly(path)
    try:
        route = read_route(conn).route
    finally:
        conn.close()
    if route is not Route.POSTGRES:
        raise UsageError(
            f"the route of {path} is {route.value}: `finish` ends a migration after its cutover; "
            "`pgferry migrate abort` removes one that was not cut over"
        )
    strays = read_strays(path, dsn, schema)
    if strays.count and not discard_stray_writes:
        raise UsageError(
            f"{path}: SQLite holds {strays.describe()}, committed after the cutover by something that still "
            "writes to it; their rows are in SQLite only, not in PostgreSQL, and finish would drop the changelog "
            "that names them. `pgferry migrate rollback` carries them to PostgreSQL (then cut over again), or "
            "copy them yourself; `pgferry migrate finish --discard-stray-writes` finishes anyway and leaves "
            "them in SQLite only"
        )
    with connect(dsn) as pg:
        holder = pgstate.applier_pid(pg, pgstate.applier_lock_key(schema))
        if holder is not None:
            raise UsageError(f"a `pgferry migrate follow` is running (PostgreSQL backend pid {holder}); stop it first")
        with pg.transaction():
            found = pgstate.remove(pg, schema)
            reverse.uninstall(pg, schema)  # no rollback from here: PostgreSQL's changes are no longer kept
    return RemovalReport(str(path), schema, uninstall(path), found, strays.count)
