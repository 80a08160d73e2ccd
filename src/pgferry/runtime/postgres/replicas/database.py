"""`ReplicaDatabase`: the Database protocol over a primary and its streaming replicas.

Where each statement goes:
- a write (`run()`, or a statement that is not plainly a read), a transaction, and every read after a
  write in the same unit of work (`hold()` block): the primary. So does every read inside
  `on_primary()`, for a unit that reads what it is about to write.
- any other read: a replica that is up, within `max_lag_s`, and has replayed the session's position
  (read-your-writes); else the primary. A unit of work reads from one target throughout.
- a read a replica fails (connection lost, no free connection, a recovery conflict): the primary,
  unseen by the caller; a lost connection marks the replica down until its prober sees it back.

After a unit of work that wrote, the session's position becomes the primary's WAL insert position,
read after the commit on the same connection (GitLab's load balancer does the same). The insert
position, not pg_current_wal_lsn(): with synchronous_commit off the write position can still be
before the commit record. One statement more per unit that writes; reads add none (the replay
positions compared come from the prober, at most `check_s` old: older only ever means "not yet").
Outside every `session()` block, the position is this process's own: any write it made holds its
reads on the primary until a replica has replayed it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from pgferry.runtime.database import Fetch, Params, Statements
from pgferry.runtime.errors import Unavailable
from pgferry.runtime.postgres.database import PostgresDatabase
from pgferry.runtime.postgres.replicas.classify import reads_only
from pgferry.runtime.postgres.replicas.health import REFUSALS, ReplicaHealth
from pgferry.runtime.postgres.replicas.lsn import format_lsn, parse_lsn
from pgferry.runtime.postgres.replicas.monitor import Monitor, one_line
from pgferry.runtime.postgres.replicas.policy import ReplicaPolicy
from pgferry.runtime.postgres.replicas.session import Session, current, pinned, session
from pgferry.runtime.postgres.replicas.stats import RouteStats

log = logging.getLogger("pgferry.runtime")

POSITION_SQL = "SELECT pg_current_wal_insert_lsn()::text AS lsn"
PRIMARY = "primary"


class Unit:
    """One hold() block of one thread: the connections it holds, where its reads go, whether it wrote."""

    def __init__(self) -> None:
        self.holds: dict[int, contextlib.ExitStack] = {}
        self.reader: PostgresDatabase | None = None
        self.reader_index: int | None = None  # None: the primary
        self.because: str | None = None  # why the primary, when it is
        self.wrote = False
        self.depth = 0  # transaction() nesting


class ReplicaDatabase(Statements):
    """Reads on replicas within a lag bound, with read-your-writes; everything else on the primary.

    Owns the databases it is given: close() closes them.
    """

    def __init__(
        self,
        primary: PostgresDatabase,
        replicas: Sequence[PostgresDatabase],
        policy: ReplicaPolicy | None = None,
        *,
        names: Sequence[str] | None = None,
    ) -> None:
        names = list(names) if names is not None else [f"replica-{i}" for i in range(1, len(replicas) + 1)]
        if not replicas or len(names) != len(replicas) or len(set(names)) != len(names) or PRIMARY in names:
            raise ValueError(f"need one or more replicas, each with its own name (not {PRIMARY!r}): {names}")
        self.primary = primary
        self.replicas = list(replicas)
        self.policy = policy or ReplicaPolicy()
        self.health = [ReplicaHealth(name, self.policy) for name in names]
        self.stats = RouteStats()
        self._own = Session()
        self._local = threading.local()
        self._turn = itertools.count()
        self._writes_found: set[str] = set()  # reads by their text that a replica refused as writes
        self._closed = False
        self._monitor = Monitor(primary, list(zip(self.replicas, self.health, strict=True)), self.policy)
        self._monitor.start()

    @property
    def dialect(self) -> str:
        return "postgresql"

    # --- sessions ----------------------------------------------------------------------------------

    def session(self, token: str | None = None) -> AbstractContextManager[Session]:
        """Statements in this block belong to the session whose position `token` is (see `position()`)."""
        return session(token)

    def position(self) -> str | None:
        """This session's position as opaque text to hand the client (None while it has not written)."""
        return (current() or self._own).token()

    # --- units of work -----------------------------------------------------------------------------

    def _unit(self) -> Unit | None:
        unit: Unit | None = getattr(self._local, "unit", None)
        return unit

    def _enter(self, unit: Unit, db: PostgresDatabase) -> None:
        """Hold a connection of `db` for the rest of the unit (once)."""
        if id(db) not in unit.holds:
            stack = contextlib.ExitStack()
            stack.enter_context(db.hold())
            unit.holds[id(db)] = stack

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """One unit of work: connections are taken as its statements need them and kept to its end."""
        if self._unit() is not None:
            yield
            return
        unit = Unit()
        self._local.unit = unit
        try:
            yield
        finally:
            try:
                if unit.wrote:  # failed or not: what it wrote before failing is written
                    self._record_position()
            finally:
                self._local.unit = None
                with contextlib.ExitStack() as holds:
                    for stack in unit.holds.values():
                        holds.enter_context(stack)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT on the primary (nested: a savepoint); reads inside it read the primary."""
        with self.hold():
            unit = self._unit()
            assert unit is not None
            unit.wrote = True
            self._enter(unit, self.primary)
            unit.depth += 1
            try:
                with self.primary.transaction():
                    yield
            finally:
                unit.depth -= 1

    def _record_position(self) -> None:
        """The primary's position after the unit's writes, into the session (on the unit's connection)."""
        try:
            row = self.primary.one(POSITION_SQL)
        except (Unavailable, psycopg.Error) as exc:
            self.stats.position_lost()
            log.warning("read-your-writes: the primary's position after a write is unknown (%s)", one_line(exc))
            return
        (current() or self._own).advance(parse_lsn(row["lsn"]))

    # --- statements --------------------------------------------------------------------------------

    def fetch(self, sql: str, params: Params, what: Fetch) -> Any:
        unit = self._unit()
        if unit is None:
            with self.hold():
                return self.fetch(sql, params, what)
        if what == "run" or sql in self._writes_found or not reads_only(sql):
            return self._write(unit, sql, params, what)
        return self._read(unit, sql, params, what)

    def _write(self, unit: Unit, sql: str, params: Params, what: Fetch) -> Any:
        unit.wrote = True
        self.stats.wrote()
        self._enter(unit, self.primary)
        return self.primary.fetch(sql, params, what)

    def _read(self, unit: Unit, sql: str, params: Params, what: Fetch) -> Any:
        because = "transaction" if unit.depth else "after_write" if unit.wrote else "pinned" if pinned() else None
        if because is None:
            self._choose_reader(unit)
            because = unit.because
        index = unit.reader_index
        if because is not None or index is None:
            self._enter(unit, self.primary)
            rows = self.primary.fetch(sql, params, what)
            self.stats.read(PRIMARY, because)
            return rows
        replica = self.replicas[index]
        try:
            self._enter(unit, replica)
            rows = replica.fetch(sql, params, what)
        except Unavailable as exc:
            if exc.kind == "statement_timeout":  # the same statement would time out on the primary too
                raise
            self._fall_back(unit, index, exc)
            return self._read(unit, sql, params, what)
        except psycopg.errors.ReadOnlySqlTransaction:  # it writes after all (a function): the primary's
            self._writes_found.add(sql)
            return self._write(unit, sql, params, what)
        self.stats.read(self.health[index].name)
        return rows

    def _choose_reader(self, unit: Unit) -> None:
        """The unit's reader, once: a replica that may serve this session, round robin, else the primary."""
        if unit.reader is not None:
            return
        position = (current() or self._own).position
        now = time.monotonic()
        refusals = {i: health.refuses(now, position) for i, health in enumerate(self.health)}
        usable = [i for i, why in refusals.items() if why is None]
        if usable:
            unit.reader_index = usable[next(self._turn) % len(usable)]
            unit.reader = self.replicas[unit.reader_index]
            return
        unit.reader, unit.reader_index = self.primary, None
        unit.because = min((why for why in refusals.values() if why), key=REFUSALS.index)

    def _fall_back(self, unit: Unit, index: int, exc: Unavailable) -> None:
        """The replica failed this unit's read: the rest of the unit reads the primary."""
        self.stats.fell_back(exc.kind)
        if exc.kind == "connection_lost":
            self.health[index].failed(one_line(exc), time.monotonic())
        stack = unit.holds.pop(id(self.replicas[index]), None)
        if stack is not None:
            with contextlib.suppress(psycopg.Error):
                stack.close()
        unit.reader, unit.reader_index, unit.because = self.primary, None, "fallback"

    # --- what is in force ----------------------------------------------------------------------------

    def replica_stats(self) -> dict[str, Any]:
        """The policy, the heartbeat, each replica's lag and health, and where reads went."""
        now = time.monotonic()
        primary_lsn = self._monitor.primary_lsn
        return {
            **self.policy.describe(),
            "heartbeat": {
                "primary_lsn": None if primary_lsn is None else format_lsn(primary_lsn),
                "beats": self._monitor.beats,
                "error": self._monitor.beat_error,
            },
            "replicas": [
                {**health.snapshot(now, primary_lsn), "pool": db.pool_stats()}
                for health, db in zip(self.health, self.replicas, strict=True)
            ],
            **self.stats.snapshot(),
        }

    def check_replicas(self) -> dict[str, Any]:
        """Write a heartbeat and read every replica now (instead of at their next turn); `replica_stats()`."""
        self._monitor.check_now()
        return self.replica_stats()

    def settings(self) -> dict[str, Any]:
        return {**self.primary.settings(), "replicas": self.replica_stats()}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._monitor.stop()
        finally:
            for db in (*self.replicas, self.primary):
                db.close()
