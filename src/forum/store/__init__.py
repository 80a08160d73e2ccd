"""The forum's data layer: one repository API over a backend (SQLite today, PostgreSQL later).

    from forum.store import Mode, open_store
    store = open_store("forum.db", Mode.OPTIMIZED)      # Store: .repo, .db, .mode
    with store.db.hold():
        store.repo.categories()

Layout: `records` (what comes back), `repository` (every read and single-statement write,
backend-agnostic), `database` (what a backend provides), `sqlite/queries` (every SQL statement for
SQLite), `sqlite/database` (connections per mode, counting, errors), `cursors` (page cursors),
`querystats` (per-request statement counts for Server-Timing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forum.store.database import Database
from forum.store.modes import Mode
from forum.store.repository import Repository
from pgferry.workload.capture import Sink


@dataclass
class Store:
    mode: Mode
    db: Database
    repo: Repository

    def close(self) -> None:
        self.db.close()


def open_store(path: str | Path, mode: Mode | str, capture: Sink | None = None, **settings: object) -> Store:
    """Open the forum database at `path` for `mode`; `capture` records every statement (workload log).

    Extra keyword arguments override the mode's connection settings (pool_size, busy_timeout_ms...).
    """
    from forum.store.sqlite import queries
    from forum.store.sqlite.database import SqliteDatabase, SqliteSettings

    mode = Mode(mode)
    cfg = SqliteSettings(mode=mode, **settings)  # type: ignore[arg-type]
    db = SqliteDatabase(path, cfg, capture_sink=capture)
    return Store(mode, db, Repository(db, queries))


__all__ = ["Database", "Mode", "Repository", "Store", "open_store"]
