"""L3: a materialized view an application reads instead of aggregating on every request, refreshed
CONCURRENTLY (readers keep reading the old contents meanwhile) on a schedule and on demand, its age kept.

    view = MaterializedView("shop_stats", "SELECT sku, count(*) AS orders FROM orders GROUP BY sku", ("sku",))
    ensure(db, view)                       # the view, its unique index, its row in pgferry.matview_refresh
    refresh(db, view)                      # REFRESH ... CONCURRENTLY; False when another process was at it
    age_s(db, view)                        # seconds since the last refresh
    with Refresher(db, view, every_s=30):  # a background thread refreshing it
        ...

`REFRESH MATERIALIZED VIEW CONCURRENTLY` needs a unique index on the view (without one it fails), so
`unique` is required. Refreshes of one view are serialised with a transaction advisory lock, tried,
not waited for: of several processes' refreshers, one refreshes and the others skip that round.
`db` is a pgferry.runtime PostgreSQL database with `$1` placeholders (PostgresDatabase's default);
through PgBouncer in transaction pooling too (everything is one transaction).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pgferry.migrate.control import CONTROL_SCHEMA
from pgferry.runtime.database import Database
from pgferry.sqltext import quote_ident

log = logging.getLogger("pgferry.pg.matview")

_TABLE = f"{quote_ident(CONTROL_SCHEMA)}.{quote_ident('matview_refresh')}"
_STAMP = (
    f"INSERT INTO {_TABLE} (name, refreshed_at, refreshes) VALUES ($1, clock_timestamp(), 1)"
    " ON CONFLICT (name) DO UPDATE SET refreshed_at = excluded.refreshed_at,"
    f" refreshes = {_TABLE}.refreshes + 1"
)
_AGE = f"SELECT extract(epoch FROM clock_timestamp() - refreshed_at)::float8 AS age FROM {_TABLE} WHERE name = $1"


@dataclass(frozen=True)
class MaterializedView:
    name: str
    query: str  # the SELECT that defines it
    unique: tuple[str, ...]  # the columns of the unique index REFRESH ... CONCURRENTLY needs
    schema: str | None = None  # None: the first schema of the search_path

    def __post_init__(self) -> None:
        if not self.unique:
            raise ValueError(
                f"{self.name}: REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index: name its columns"
            )

    @property
    def qualified(self) -> str:
        return quote_ident(self.name) if self.schema is None else f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def key(self) -> str:
        """Its name in pgferry.matview_refresh."""
        return self.name if self.schema is None else f"{self.schema}.{self.name}"


def ensure(db: Database, view: MaterializedView) -> None:
    """Create the view (populated), its unique index and its refresh row, each only when missing."""
    index = quote_ident(f"{view.name}_unique")
    columns = ", ".join(quote_ident(c) for c in view.unique)
    with db.transaction():
        db.one("SELECT pg_advisory_xact_lock(hashtext($1)) AS locked", (f"pgferry.matview:{view.key}",))
        db.run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(CONTROL_SCHEMA)}")
        db.run(
            f"CREATE TABLE IF NOT EXISTS {_TABLE} (name text PRIMARY KEY, refreshed_at timestamptz NOT NULL,"
            " refreshes bigint NOT NULL DEFAULT 0)"
        )
        created = db.one("SELECT to_regclass($1) IS NULL AS missing", (view.qualified,))["missing"]
        db.run(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view.qualified} AS {view.query}")
        db.run(f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {view.qualified} ({columns})")
        if created:
            db.run(_STAMP, (view.key,))


def refresh(db: Database, view: MaterializedView, wait: bool = False) -> bool:
    """REFRESH ... CONCURRENTLY and its new age, in one transaction; False (nothing done) when another
    refresh of this view (any process) is running, unless `wait`: then after it, so the view holds
    everything committed before the call (an on-demand refresh)."""
    with db.transaction():
        if wait:
            db.one("SELECT pg_advisory_xact_lock(hashtext($1)) AS got", (f"pgferry.matview:{view.key}",))
        else:
            got = db.one("SELECT pg_try_advisory_xact_lock(hashtext($1)) AS got", (f"pgferry.matview:{view.key}",))
            if not got["got"]:
                return False
        db.run(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view.qualified}")
        db.run(_STAMP, (view.key,))
    return True


def age_s(db: Database, view: MaterializedView) -> float | None:
    """Seconds since the view was last refreshed (or made); None when pgferry never made it."""
    row = db.one(_AGE, (view.key,))
    return None if row is None else float(row["age"])


class Refresher:
    """A daemon thread refreshing `view` every `every_s` seconds until `stop()`; a failed refresh is
    logged and counted, and the next round tries again."""

    def __init__(
        self, db: Database, view: MaterializedView, every_s: float, on_refresh: Callable[[], None] | None = None
    ) -> None:
        """`on_refresh` runs after each refresh this refresher made (a cache invalidating what it read)."""
        if every_s <= 0:
            raise ValueError("every_s must be above 0")
        self.db, self.view, self.every_s, self.on_refresh = db, view, every_s, on_refresh
        self.refreshes = 0
        self.skipped = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"refresh-{view.name}", daemon=True)

    def start(self) -> Refresher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.now(wait=False)  # on schedule: skipped when another process is refreshing it already

    def now(self, wait: bool = True) -> bool:
        """Refresh now (on demand: after a refresh in flight, if any, unless not `wait`); True when
        this call refreshed it."""
        try:
            done = refresh(self.db, self.view, wait)
        except Exception as exc:  # the database down, a timeout: the next round tries again
            self.failures += 1
            self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("refreshing %s failed: %s", self.view.key, self.last_error)
            return False
        if done:
            self.refreshes += 1
            if self.on_refresh is not None:
                self.on_refresh()
        else:
            self.skipped += 1
        return done

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def stats(self) -> dict[str, object]:
        return {
            "view": self.view.key,
            "every_s": self.every_s,
            "refreshes": self.refreshes,
            "skipped": self.skipped,
            "failures": self.failures,
            "last_error": self.last_error,
        }

    def __enter__(self) -> Refresher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
