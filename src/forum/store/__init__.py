"""The forum's data layer: one repository API over a pgferry.runtime backend, SQLite or PostgreSQL.

    from forum.store import Mode, open_store
    store = open_store("forum.db", Mode.OPTIMIZED)      # Store: .repo, .backend, .db, .mode
    store = open_store("postgresql://forum@db/forum", Mode.OPTIMIZED)   # the database `pgferry copy` made
    store = open_store("forum.db", Mode.OPTIMIZED, postgres="postgresql://forum@db/forum")  # follows the route
    with store.db.hold():
        store.repo.categories()

Layout: `records` (what comes back), `repository` (every read and single-statement write,
backend-agnostic), `statements` (the names of every statement: the forum's statement set),
`dialects` (each engine's module of SQL for that set), `sqlite/queries` and `postgres/queries` (the
dialects), `sqlite/settings` and `postgres/settings` (connection policies), `routed` (a migration's
route: sqlite / dual / postgres behind pgferry's router), `shadow` (how the dialects' answers are
compared on the dual route), `cursors` (page cursors), `errors`, `modes`.
The database side (connections, the writer queue, transactions, statement counts) is pgferry.runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forum.store import dialects
from forum.store.errors import StoreError
from forum.store.modes import Mode
from forum.store.postgres.settings import PostgresSettings
from forum.store.repository import Repository
from forum.store.routed import Route, file_route, open_router
from forum.store.sqlite.settings import SqliteSettings
from forum.store.statements import ForumSql
from pgferry.dsn import is_dsn, redact
from pgferry.errors import UsageError
from pgferry.runtime import Backend, Database
from pgferry.runtime.sqlite import SqliteDatabase
from pgferry.workload.capture import Sink

BACKENDS = ("auto", "sqlite", "postgres")

# what makes a file a forum database: the tables the hot paths read
FORUM_TABLES = frozenset({"users", "user_sessions", "forum_topics", "forum_replies", "wiki_pages", "notifications"})


@dataclass
class Store:
    mode: Mode
    backend: Backend[ForumSql]
    repo: Repository

    @property
    def db(self) -> Database:
        return self.backend.db

    def close(self) -> None:
        self.backend.close()


def backend_of(target: str | Path, backend: str = "auto") -> str:
    """ "sqlite" or "postgres" for `target`: as asked, or (auto) postgres for a postgresql:// URI or a
    libpq key=value string that is not an existing file, sqlite for anything else."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    text = str(target)
    if backend == "postgres" and not is_dsn(text):
        raise UsageError(
            f"{text}: --backend postgres needs a PostgreSQL DSN (postgresql://... or key=value), not a file"
        )
    if backend != "auto":
        return backend
    return "postgres" if not Path(text).is_file() and is_dsn(text) else "sqlite"


def open_store(
    target: str | Path,
    mode: Mode | str,
    capture: Sink | None = None,
    *,
    backend: str = "auto",
    postgres: str | None = None,
    **settings: object,
) -> Store:
    """Open the forum database at `target` (a SQLite file or a PostgreSQL DSN) for `mode`.

    `capture` records every statement (a workload log; SQLite only). Extra keyword arguments override
    the backend's connection settings (forum.store.sqlite.settings, forum.store.postgres.settings,
    forum.store.routed.DualSettings). `postgres`: the PostgreSQL copy of the file; with it (or when the
    file's migration route is not `sqlite`) the store follows the route (forum.store.routed).
    """
    mode = Mode(mode)
    db: Database
    engine = backend_of(target, backend)
    if engine == "sqlite" and (postgres is not None or file_route(target).route is not Route.SQLITE):
        db = _routed(target, mode, backend, postgres, capture, settings)
        where = str(target)
    elif engine == "postgres":
        if postgres is not None:
            raise UsageError("--postgres names the PostgreSQL copy of a SQLite file; the target is PostgreSQL already")
        if capture is not None:
            raise UsageError("--capture records SQLite statements (pgferry's workload log); not on PostgreSQL")
        db = PostgresSettings(**settings).open(str(target))  # type: ignore[arg-type]
        where = redact(str(target))
    else:
        if settings.get("replicas"):
            raise UsageError("--replica needs PostgreSQL: a SQLite file has no streaming replicas")
        settings.pop("replicas", None)
        cfg = SqliteSettings(mode=mode, **settings)  # type: ignore[arg-type]
        db = SqliteDatabase(target, cfg.policy(), capture_sink=capture)
        where = str(db.path)
    try:
        backend = Backend(db, dialects.load(db.dialect))
        repo = Repository(backend)
        with db.hold():
            missing = sorted(FORUM_TABLES - repo.table_names())
    except BaseException:
        db.close()
        raise
    if missing:
        db.close()
        raise StoreError(
            f"{where}: not a forum database (no table {', '.join(missing)}); see `forum seed` (and `pgferry copy`)"
        )
    return Store(mode, backend, repo)


def _routed(
    target: str | Path, mode: Mode, backend: str, dsn: str | None, capture: Sink | None, settings: dict[str, object]
) -> Database:
    route = file_route(target).route
    if backend == "sqlite":
        if route is not Route.SQLITE:
            raise StoreError(
                f"{target}: a migration routes its writes to {route} now; serving SQLite alone would miss them: "
                "serve it with --backend auto --postgres DSN"
            )
        raise UsageError("--postgres follows a migration's route: use it with --backend auto")
    if dsn is None:
        raise StoreError(f"{target}: a migration routes it to {route}: give its PostgreSQL copy with --postgres DSN")
    return open_router(target, mode, dsn, capture, settings)


__all__ = ["BACKENDS", "Database", "Mode", "Repository", "Store", "backend_of", "open_store"]
