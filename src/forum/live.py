"""A live migration of the forum, as a user runs one: `forum serve FILE --postgres DSN` under `forum
traffic`, `pgferry migrate start` while the users write (the copy, then following), then the route's
switches (`pgferry migrate cutover`, `rollback`, `cutover` again) while the traffic goes on. The demo shows it and
bench/cutover_pause.py measures it.

What was written: every write the users were answered 2xx for is read back through the API once
the steps are done (forum.traffic.acks), and SQLite, kept up by the reverse applier while the route
is `postgres`, is compared with PostgreSQL (`pgferry verify`) once the traffic stopped.

What users saw comes from the traffic's timeline (every request: when, what, how long, its status):
the requests in flight while a switch's freeze was up against all the others, and every error; and
from the server's router (`/healthz`: database.router.pauses), the pause each waiting write
transaction saw, from asking for its transaction to having it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from psycopg.conninfo import make_conninfo

from forum.traffic import TrafficOptions, run_traffic
from forum.traffic.acks import Acknowledged, read_back_sync
from forum.traffic.mix import WRITES
from forum.traffic.stats import Sample, TrafficReport, latency_summary
from forum.web.process import running_server
from pgferry.capture.cutover import CutoverOptions, cutover
from pgferry.capture.cutover_log import Attempt
from pgferry.capture.dashboard import Dashboard
from pgferry.capture.migration import CAUGHT_UP, Follow, follow, start
from pgferry.capture.rollback import rollback
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.verify import verify_copy

# Told (what, url) of each web page a step serves, while it is up: the demo prints where they are.
OnUp = Callable[[str, str], None]


def in_schema(dsn: str, schema: str) -> str:
    """`dsn` with `schema` first on the search path (the forum's statements name no schema)."""
    return dsn if schema == "public" else make_conninfo(dsn, options=f"-c search_path={schema}")


WARM_UP_S = 2.0  # users sign up and write before the migration starts
LONGEST_S = 3600.0  # the traffic's duration; it is stopped when the steps are done


def _summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), **latency_summary(values), "max": round(max(values, default=0.0), 2)}


@dataclass
class Switch:
    """One step of the route (a cutover or a rollback) and what writers saw of it."""

    step: str
    started_at: float  # epoch s: the command began
    ended_at: float
    pause_s: float | None  # the freeze to the flip's commit, as the command measured it
    attempts: list[Attempt] = field(default_factory=list)  # a cutover's
    detail: dict[str, Any] = field(default_factory=dict)  # a rollback's report

    @property
    def window(self) -> tuple[float, float]:
        """When writers could have waited: the last attempt's freeze to its commit for a cutover, the
        whole command for a rollback (its report has the pause, not when it began)."""
        last = self.attempts[-1] if self.attempts else None
        if last is not None and last.frozen_at is not None and last.pause_s is not None:
            return last.frozen_at, last.frozen_at + last.pause_s
        return self.started_at, self.ended_at

    def as_dict(self) -> dict[str, Any]:
        attempts = [a.__dict__ for a in self.attempts]
        return {"step": self.step, "pause_s": self.pause_s, "attempts": attempts, "detail": self.detail}


def run_step(step: str, path: Path, dsn: str, options: CutoverOptions | None) -> Switch:
    """`pgferry migrate cutover` or `rollback` as a library call, timed."""
    began = time.time()
    if step == "cutover":
        report = cutover(path, dsn, options=options)
        last = report.attempts[-1] if report.attempts else None
        return Switch(step, began, time.time(), None if last is None else last.pause_s, report.attempts)
    if step == "rollback":
        back = rollback(path, dsn)
        return Switch(step, began, time.time(), back.pause_s, detail=back.as_dict())
    raise ValueError(f"unknown step {step!r}: cutover or rollback")


@dataclass
class LiveRun:
    copy_s: float
    switches: list[Switch]
    traffic: TrafficReport
    writer_pauses: dict[str, Any]  # the router's, from /healthz
    route: str  # at the end
    errors: list[Sample] = field(default_factory=list)
    acknowledged: int = 0  # writes answered 2xx, each read back
    not_as_acknowledged: list[str] = field(default_factory=list)  # those that did not read back as written
    identical: bool | None = None  # SQLite and PostgreSQL once the traffic stopped (None: not compared)
    server_errors: list[str] = field(default_factory=list)  # the server log's tracebacks and error lines

    def latency_ms(self) -> dict[str, dict[str, dict[str, float]]]:
        """Writes and reads in flight during a freeze against every other request, in ms."""
        windows = [s.window for s in self.switches]
        parts: dict[str, dict[str, list[float]]] = {k: {"during": [], "else": []} for k in ("writes", "reads")}
        for sample in self.traffic.timeline or ():
            end = sample.at + sample.ms / 1000
            during = any(sample.at <= last and end >= first for first, last in windows)
            parts["writes" if sample.endpoint in WRITES else "reads"]["during" if during else "else"].append(sample.ms)
        return {kind: {part: _summary(v) for part, v in sides.items()} for kind, sides in parts.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "copy_s": round(self.copy_s, 2),
            "switches": [s.as_dict() for s in self.switches],
            "requests": self.traffic.requests,
            "errors": len(self.errors),
            "error_samples": [e.to_dict() for e in self.errors[:5]],
            "latency_ms": self.latency_ms(),
            "writer_pauses": self.writer_pauses,
            "route": self.route,
            "acknowledged_writes": self.acknowledged,
            "not_as_acknowledged": self.not_as_acknowledged[:20],
            "sides_identical": self.identical,
            "server_errors": self.server_errors[:20],
        }


def log_errors(log: str, context: int = 12) -> list[str]:
    """The server log's tracebacks (each with the lines after it) and ERROR lines, for the report."""
    lines = log.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            found.append("\n".join(lines[i : i + context]))
        elif "ERROR" in line and not line.startswith(" "):
            found.append(line)
    return found


def live_migration(
    path: Path,
    dsn: str,
    *,
    schema: str = "public",
    users: int = 50,
    seed: int = 42,
    steps: tuple[str, ...] = ("cutover",),
    gap_s: float = 5.0,
    options: CutoverOptions | None = None,
    on_up: OnUp | None = None,
) -> LiveRun:
    """Serve `path` (a forum file) under `users`, migrate it live into `schema` (empty) at `dsn`, then
    take `steps` `gap_s` apart, and `gap_s` more of traffic after the last. With `on_up`, the migration
    dashboard (`pgferry migrate status --serve`) runs on a free loopback port from the end of the copy
    to the end, and `on_up` is told where it and the forum's /metrics are."""
    dsn = in_schema(dsn, schema)
    with running_server(path, "optimized", extra_args=("--postgres", dsn)) as server:
        if on_up is not None:
            on_up("forum serve --postgres: metrics", f"{server.url}/metrics")
        stop_traffic, stop_following = threading.Event(), threading.Event()
        result: dict[str, TrafficReport] = {}
        opts = TrafficOptions(users, LONGEST_S, seed, timeline=True, acknowledge=True)
        loader = threading.Thread(target=lambda: result.update(report=run_traffic(server.url, opts, stop_traffic)))
        loader.start()
        follower: threading.Thread | None = None
        board: Dashboard | None = None
        try:
            time.sleep(WARM_UP_S)
            began = time.monotonic()
            start(path, dsn, CopyOptions(schema=schema, jobs=1))  # the copy while the users write, then caught up
            copy_s = time.monotonic() - began
            if on_up is not None:
                board = Dashboard(path, dsn, schema).start()
                on_up("pgferry migrate status --serve: dashboard", board.url)
            follower = threading.Thread(target=follow, args=(path, dsn), kwargs={"how": Follow(stop_following)})
            follower.start()
            switches = []
            for step in steps:
                time.sleep(gap_s)
                switches.append(run_step(step, path, dsn, options))
            time.sleep(gap_s)
            health = httpx.get(f"{server.url}/healthz", timeout=10).json()
            stop_traffic.set()
            loader.join(60)
            acknowledged = result["report"].acknowledged or Acknowledged()
            problems = read_back_sync(server.url, acknowledged)
        finally:
            stop_traffic.set()
            stop_following.set()
            loader.join(60)
            if follower is not None:
                follower.join(60)
            if board is not None:
                board.stop()
    server_errors = log_errors(server.log())
    follow(path, dsn, how=CAUGHT_UP)  # whichever direction the route calls for, caught up
    identical = verify_copy(path, dsn, schema).identical
    traffic = result["report"]
    errors = [s for s in traffic.timeline or () if not isinstance(s.status, int) or s.status >= 400]
    database = health.get("database", {})
    pauses, route = database.get("router", {}).get("pauses", {}), database.get("route")
    return LiveRun(
        copy_s, switches, traffic, pauses, route, errors, acknowledged.writes, problems, identical, server_errors
    )
