"""`forum serve`: open the database (a SQLite file or PostgreSQL) in a mode, build the app, run uvicorn.

With `workers` above 1, uvicorn's own supervisor runs that many server processes on one listening
socket: one Python process is CPU-bound near 180 requests/s here. Each worker builds its app with
`worker_app` (uvicorn's app factory, pickled to it with the options the parent checked) and opens
its own store: SQLite connections or a PostgreSQL pool per process. Their metrics go to a throwaway
directory the parent makes (prometheus_client's multiprocess mode), so /metrics in any worker shows
the sum of all of them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from forum.services import Forum
from forum.store import Mode, backend_of
from forum.web.app import create_app
from forum.web.capture import RedactingSink
from forum.web.supervisor import Supervisor
from pgferry.dsn import redact
from pgferry.errors import UsageError
from pgferry.runtime.cache import Cache, CachePolicy
from pgferry.runtime.multiprocess import metrics_dir
from pgferry.runtime.postgres.replicas import ReplicaPolicy

log = logging.getLogger("forum.web")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class Opener:
    """How every process opens the forum: the CLI's options, checked once in the parent."""

    database: str
    mode: str
    engine: str
    backend: str = "auto"  # as asked: `auto` lets a routed file follow its migration route
    capture: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    cache: bool = False  # L1 in each process (and L3 on PostgreSQL)
    redis: str | None = None  # L2, and invalidations across processes
    stats_every_s: float = 30.0

    def open(self) -> tuple[Forum, RedactingSink | None]:
        """The forum and its capture sink; several processes may append to one capture file (one
        write(2) per line on an O_APPEND descriptor: lines never interleave)."""
        sink = RedactingSink(self.capture) if self.capture is not None else None
        cache = Cache(self.redis, CachePolicy(namespace="forum")) if self.cache or self.redis else None
        try:
            forum = Forum.open(
                self.database,
                self.mode,
                capture=sink,
                backend=self.backend,
                cache=cache,
                stats_every_s=self.stats_every_s,
                **self.overrides,
            )
            return forum, sink
        except BaseException:
            if sink is not None:
                sink.close()
            if cache is not None:
                cache.close()
            raise


def opener_for(
    database: str | Path,
    mode: Mode | str,
    *,
    capture: str | Path | None = None,
    busy_timeout_ms: int | None = None,
    backend: str = "auto",
    pool_size: int | None = None,
    pgbouncer: bool = False,
    replicas: Sequence[str] = (),
    max_lag_s: float | None = None,
    postgres: str | None = None,
    dual: dict[str, object] | None = None,
    cache: bool = False,
    redis: str | None = None,
    stats_every_s: float = 30.0,
) -> Opener:
    """The CLI's options as an Opener, refusing the combinations that make no sense."""
    engine = backend_of(database, backend)
    overrides: dict[str, Any] = {}
    if busy_timeout_ms is not None:
        if engine == "postgres":
            raise UsageError(
                "--busy-timeout-ms is SQLite's; PostgreSQL waits are bounded by the pool and statement_timeout"
            )
        overrides["legacy_busy_timeout_ms" if str(mode) == "legacy" else "busy_timeout_ms"] = busy_timeout_ms
    if pool_size is not None:
        overrides["pool_max" if engine == "postgres" or postgres is not None else "pool_size"] = pool_size
    if pgbouncer:
        if engine != "postgres":
            raise UsageError("--pgbouncer is for a PostgreSQL DSN (PgBouncer's), not a SQLite file")
        overrides["pgbouncer"] = True
    if replicas:
        if engine != "postgres":
            raise UsageError("--replica needs PostgreSQL: a SQLite file has no streaming replicas")
        overrides["replicas"] = tuple(replicas)
    if max_lag_s is not None:
        if not replicas:
            raise UsageError("--max-lag bounds the replicas' lag: give --replica too")
        try:
            ReplicaPolicy(max_lag_s=max_lag_s)
        except ValueError as exc:
            raise UsageError(f"--max-lag: {exc}") from None
        overrides["max_lag_s"] = max_lag_s
    if postgres is not None:  # follow the file's migration route (forum.store.routed)
        overrides.update(postgres=postgres, **(dual or {}))
    if capture is not None and engine == "postgres":
        raise UsageError("--capture records SQLite statements (pgferry's workload log); not on PostgreSQL")
    capture_path = str(capture) if capture is not None else None
    if redis is not None and not redis.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"--redis takes a redis://, rediss:// or unix:// URL, not {redact(redis)!r}")
    return Opener(str(database), str(Mode(mode)), engine, backend, capture_path, overrides, cache, redis, stats_every_s)


def serve(
    database: str | Path,
    mode: Mode | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    capture: str | Path | None = None,
    access_log: bool = False,
    busy_timeout_ms: int | None = None,
    backend: str = "auto",
    pool_size: int | None = None,
    pgbouncer: bool = False,
    replicas: Sequence[str] = (),
    max_lag_s: float | None = None,
    workers: int = 1,
    postgres: str | None = None,
    dual: dict[str, object] | None = None,
    cache: bool = False,
    redis: str | None = None,
    stats_every_s: float = 30.0,
) -> None:
    """Serve until SIGINT/SIGTERM; the database and the capture file are closed on the way out (in
    every worker: the parent passes the signal on and waits for them)."""
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    opener = opener_for(
        database,
        mode,
        capture=capture,
        busy_timeout_ms=busy_timeout_ms,
        backend=backend,
        pool_size=pool_size,
        pgbouncer=pgbouncer,
        replicas=replicas,
        max_lag_s=max_lag_s,
        postgres=postgres,
        dual=dual,
        cache=cache,
        redis=redis,
        stats_every_s=stats_every_s,
    )
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if cache and redis is None and workers > 1:
        raise UsageError(
            "--cache without --redis keeps each worker's invalidations to itself: with --workers above 1 one "
            "process would serve what another changed; give --redis URL"
        )
    forum, sink = opener.open()  # with several workers: the check that fails here, once, as one line
    try:
        settings = forum.store.db.settings()
        log.info(
            "forum %s mode on %s: %s",
            forum.mode,
            redact(opener.database),
            ", ".join(f"{k}={v}" for k, v in settings.items()),
        )
        if capture is not None:
            log.info("capturing every statement to %s", capture)
        if workers == 1:
            config = uvicorn.Config(
                create_app(forum), host=host, port=port, access_log=access_log, log_level="info", lifespan="off"
            )
            previous = signal.signal(signal.SIGTERM, _interrupt)
            try:
                uvicorn.Server(config).run()
            except KeyboardInterrupt:  # uvicorn shuts down cleanly, then re-raises the signal it caught
                log.info("stopped")
            finally:
                signal.signal(signal.SIGTERM, previous)
    finally:
        forum.close()
        if sink is not None:
            sink.close()
    if workers > 1:
        _describe_workers(opener, workers, settings)
        _run_workers(opener, host, port, access_log, workers)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as SIGINT: uvicorn re-raises the signal it shut down on, and SIGTERM's default action
    would end the process before the database and the capture file are closed."""
    raise KeyboardInterrupt


def _describe_workers(opener: Opener, workers: int, settings: dict[str, object]) -> None:
    if opener.engine == "postgres":
        per = settings.get("pool_max", "?")
        total = per * workers if isinstance(per, int) else "?"
        log.info("%d workers, each with its own pool of up to %s connections: up to %s in all", workers, per, total)
    elif opener.mode == "legacy":
        log.info("%d workers, each with its own fixed pool of %s connections", workers, settings.get("pool_size", "?"))
    else:
        log.info("%d workers; the writer queue is per process, between processes busy_timeout waits", workers)


def _run_workers(opener: Opener, host: str, port: int, access_log: bool, workers: int) -> None:
    config = uvicorn.Config(
        functools.partial(worker_app, opener),  # pickled to each worker process with the Config
        factory=True,
        workers=workers,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        lifespan="on",
    )
    sock = listening_socket(config)
    try:
        with metrics_dir() as path:  # before the first worker starts: prometheus_client reads it at import
            log.info("the workers' metrics are summed from %s (removed at exit)", path)
            Supervisor(config, [sock], path).run()
    finally:
        sock.close()
    log.info("stopped")


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """uvicorn's bound socket for its workers, re-wrapped so that Linux reports its protocol.

    uvicorn's says 0, and asyncio sets TCP_NODELAY on accepted connections only for IPPROTO_TCP: without
    it every keep-alive response waits about 40 ms for the client's delayed ACK (uvicorn issue #3149).
    """
    return socket.socket(fileno=config.bind_socket().detach())


def worker_app(opener: Opener) -> FastAPI:
    """The app of one worker process (uvicorn calls it in each): its own forum, closed at shutdown."""
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    forum, sink = opener.open()
    app = create_app(forum)
    pid = os.getpid()
    log.info("worker %d: forum %s mode on %s", pid, forum.mode, redact(opener.database))

    @contextlib.asynccontextmanager
    async def closing(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.state.metrics.close()
            forum.close()
            if sink is not None:
                sink.close()
            log.info("worker %d stopped", pid)

    app.router.lifespan_context = closing
    return app
