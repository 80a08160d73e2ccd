"""The forum's data layer: one repository API over a pgferry.runtime backend (SQLite today).

    from forum.store import Mode, open_store
    store = open_store("forum.db", Mode.OPTIMIZED)      # Store: .repo, .backend, .db, .mode
    with store.db.hold():
        store.repo.categories()

Layout: `records` (what comes back), `repository` (every read and single-statement write,
backend-agnostic), `statements` (the names of every statement: the forum's statement set),
`dialects` (each engine's module of SQL for that set), `sqlite/queries` (the SQLite dialect),
`sqlite/settings` (each mode's connection policy), `cursors` (page cursors), `errors`, `modes`.
The database side (connections, the writer queue, transactions, statement counts) is pgferry.runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forum.store import dialects
from forum.store.errors import StoreError
from forum.store.modes import Mode
from forum.store.repository import Repository
from forum.store.sqlite.settings import SqliteSettings
from forum.store.statements import ForumSql
from pgferry.runtime import Backend, Database
from pgferry.runtime.sqlite import SqliteDatabase
from pgferry.workload.capture import Sink

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


def open_store(path: str | Path, mode: Mode | str, capture: Sink | None = None, **settings: object) -> Store:
    """Open the forum database at `path` for `mode`; `capture` records every statement (workload log).

    Extra keyword arguments override the mode's connection settings (pool_size, busy_timeout_ms...,
    see forum.store.sqlite.settings).
    """
    mode = Mode(mode)
    cfg = SqliteSettings(mode=mode, **settings)  # type: ignore[arg-type]
    db = SqliteDatabase(path, cfg.policy(), capture_sink=capture)
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
        raise StoreError(f"{db.path}: not a forum database (no table {', '.join(missing)}); see `forum seed`")
    return Store(mode, backend, repo)


__all__ = ["Database", "Mode", "Repository", "Store", "open_store"]
