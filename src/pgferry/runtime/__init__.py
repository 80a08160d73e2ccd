"""What applications run with: a database protocol, typed statement sets per dialect, backends that
keep a database and its dialect together, per-request statement counts, and the SQLite backend.

    from pgferry.runtime import Backend, Dialect, Statements
    from pgferry.runtime.sqlite import SqliteDatabase, SqlitePolicy

    db = SqliteDatabase("app.db", SqlitePolicy(journal_modes=("wal",)))
    backend = Backend(db, Dialect.load("sqlite", AppSql, app_sqlite_queries))
    backend.db.one(backend.sql.USER_GET, (1,))

Layout: `database` (the protocol), `dialect` (statement sets and dialects), `backend` (the pair),
`querystats` (Server-Timing counts), `errors`, `sqlite/` (the SQLite backend), `postgres/` (the
PostgreSQL backend: psycopg_pool, PgBouncer mode; `postgres/replicas/`: reads on replicas with
read-your-writes; docs/runtime.md). A router (sqlite / dual / postgres) will be one more `Database`.
"""

from __future__ import annotations

from pgferry.runtime.backend import Backend
from pgferry.runtime.database import Database, Params, Row
from pgferry.runtime.dialect import Dialect, Statements
from pgferry.runtime.errors import DialectError, Unavailable

__all__ = ["Backend", "Database", "Dialect", "DialectError", "Params", "Row", "Statements", "Unavailable"]
