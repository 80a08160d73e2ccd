"""How a SQLite database is opened and shared: the knobs, with nothing application-specific in them.

Two shapes cover what applications do: a fixed pool shared by threads (`pool_size`), where a
request waits for a free connection; or one connection per thread (`pool_size=None`), since sqlite3
connections are cheap and a thread then never waits for another's. Either way SQLite allows one
writer at a time: more connections add no write capacity, WAL, short write transactions and
busy_timeout do (see DESIGN.md, Facts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[a-z_]+$")
_VALUE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class SqlitePolicy:
    """What every connection is opened with and how connections are shared.

    `journal_modes` are tried in order and the first one SQLite reads back is kept (ask for WAL2,
    fall back to WAL: released SQLite ignores WAL2 without a word). `pragmas` run on every new
    connection after busy_timeout. `writer_queue` makes writers wait on an in-process lock before
    BEGIN IMMEDIATE: SQLite's busy handler sleeps and polls with growing back-off, so many threads
    waiting on it miss the lock's free moments; a queue hands it over at once (per process:
    busy_timeout still covers other processes). Its wait is bounded by busy_timeout_ms.
    """

    journal_modes: tuple[str, ...] = ("wal",)
    busy_timeout_ms: int = 10_000
    pragmas: Mapping[str, str | int] = field(default_factory=dict)
    pool_size: int | None = None  # None: one connection per thread
    pool_wait_s: float = 5.0  # pool only: how long a unit of work waits for a free connection
    writer_queue: bool = True
    optimize_on_close: bool = True  # PRAGMA optimize before closing, as SQLite advises
    setup_busy_timeout_ms: int = 10_000  # setting the journal mode at start-up waits this long for a lock

    def __post_init__(self) -> None:
        # pragmas are spliced into the statement text (PRAGMA takes no parameters): admit names and words only
        for name, value in self.pragmas.items():
            if not _NAME.match(name) or not (isinstance(value, int) or _VALUE.match(str(value))):
                raise ValueError(f"pragma {name} = {value!r}: only a name and a number or word are accepted")
        for mode in self.journal_modes:
            if not _VALUE.match(mode):
                raise ValueError(f"journal mode {mode!r} is not a word")
        if not self.journal_modes:
            raise ValueError("journal_modes: name at least one journal mode")
        if self.pool_size is not None and self.pool_size < 1:
            raise ValueError(
                f"pool_size must be at least 1 (or None for one connection per thread), not {self.pool_size}"
            )

    def describe(self) -> dict[str, Any]:
        """How connections are shared, for `Database.settings()` (the pragmas are read back, not listed here)."""
        out: dict[str, Any] = {"connections": "per_thread" if self.pool_size is None else "pool"}
        if self.pool_size is not None:
            out.update(pool_size=self.pool_size, pool_wait_s=self.pool_wait_s)
        out.update(writer_queue=self.writer_queue, journal_modes_asked=list(self.journal_modes))
        return out
