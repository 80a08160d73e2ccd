"""The router's background work: the heartbeat on the primary, and one prober per replica.

Each thread has a connection of its own (not one of the application's pooled connections: a busy pool
must not stop the heartbeat or make a replica look down), reconnects only on its own schedule, and
stops when the router closes. A replica that failed is probed again after `check_s`, doubling up to
`retry_max_s`: while it is down no read tries it, so its return costs one probe, not a retry storm.
Before a replica that was down serves again, its pool's idle connections are tested and the broken
ones replaced (the outage broke them; a read must not be the one to find out).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from pgferry.dsn import redact
from pgferry.runtime.postgres.database import PostgresDatabase
from pgferry.runtime.postgres.replicas import heartbeat
from pgferry.runtime.postgres.replicas.health import ReplicaHealth
from pgferry.runtime.postgres.replicas.lsn import format_lsn
from pgferry.runtime.postgres.replicas.policy import ReplicaPolicy

log = logging.getLogger("pgferry.runtime")
T = TypeVar("T")
STOP_WAIT_S = 5.0  # longer than a probe takes unless the network hangs (then connect/tcp timeouts end it)


def one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return redact(text or type(exc).__name__)[:300]


class Link:
    """One dedicated connection to a server, opened when needed and dropped after any error."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.dsn = db.dsn
        self.kwargs: dict[str, Any] = {
            **db.policy.connect_kwargs(db.dsn),
            "application_name": "pgferry-replica-monitor",
        }
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.dsn, **self.kwargs)
            try:
                return work(self._conn)
            except psycopg.Error:
                self._conn.close()
                self._conn = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Monitor:
    def __init__(
        self,
        primary: PostgresDatabase,
        replicas: Sequence[tuple[PostgresDatabase, ReplicaHealth]],
        policy: ReplicaPolicy,
    ) -> None:
        self.policy = policy
        self.primary_lsn: int | None = None  # at the last heartbeat
        self.beat_error: str | None = None
        self.beats = 0
        self._beat_link = Link(primary)
        self._probes = [(Link(db), db, health) for db, health in replicas]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def beat(self) -> None:
        """Write the heartbeat once; a failure is kept (and logged when it is new), never raised."""
        try:
            self.primary_lsn = self._beat_link.run(lambda conn: heartbeat.beat(conn, self.policy.heartbeat_key))
        except psycopg.Error as exc:
            error = one_line(exc)
            if error != self.beat_error:
                log.warning("replica heartbeat: cannot write it on the primary (%s); replicas will look behind", error)
            self.beat_error = error
            return
        self.beats += 1
        self.beat_error = None

    def probe(self, index: int) -> None:
        """Read one replica's lag and replay position now."""
        link, db, health = self._probes[index]
        was_up = health.state.up
        try:
            reading = link.run(lambda conn: heartbeat.probe(conn, self.policy.heartbeat_key))
            if not was_up:
                db.check_pool()
        except psycopg.Error as exc:
            health.failed(one_line(exc), time.monotonic())
            if was_up:
                log.warning("replica %s is down (%s): its reads go to the primary", health.name, health.state.error)
            return
        health.observed(reading, time.monotonic())
        if not was_up:
            replay = "nothing" if reading.replay_lsn is None else format_lsn(reading.replay_lsn)
            log.info("replica %s is up (replayed up to %s)", health.name, replay)

    def check_now(self) -> None:
        """One heartbeat and one probe of every replica, in the caller's thread."""
        self.beat()
        for index in range(len(self._probes)):
            self.probe(index)

    def start(self) -> None:
        self.check_now()
        loops: list[tuple[Callable[..., None], tuple[Any, ...]]] = [(self._beat_loop, ())]
        loops += [(self._probe_loop, (index,)) for index in range(len(self._probes))]
        for target, args in loops:
            thread = threading.Thread(target=target, args=args, daemon=True, name="pgferry-replica-monitor")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads (each closes its connection); a thread stuck on the network is left to its
        own timeouts (daemon threads: it cannot hold the process)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=STOP_WAIT_S)
        if not self._threads:
            for link in (self._beat_link, *(link for link, _db, _health in self._probes)):
                link.close()

    def _beat_loop(self) -> None:
        try:
            while not self._stop.wait(self.policy.heartbeat_s):
                self.beat()
        finally:
            self._beat_link.close()

    def _probe_loop(self, index: int) -> None:
        link, _db, health = self._probes[index]
        try:
            while not self._stop.wait(max(0.0, health.state.next_check - time.monotonic())):
                self.probe(index)
        finally:
            link.close()
