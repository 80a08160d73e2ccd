"""`forum serve`: open the database (a SQLite file or PostgreSQL) in a mode, build the app, run uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from forum.services import Forum
from forum.store import Mode, backend_of
from forum.web.app import create_app
from forum.web.capture import RedactingSink
from pgferry.dsn import redact
from pgferry.errors import UsageError

log = logging.getLogger("forum.web")


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
    postgres: str | None = None,
    dual: dict[str, object] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; the database and the capture file are closed on the way out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = backend_of(database, backend)
    overrides: dict[str, object] = {}
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
    if postgres is not None:  # follow the file's migration route (forum.store.routed)
        overrides.update(postgres=postgres, **(dual or {}))
    if capture is not None and engine == "postgres":
        raise UsageError("--capture records SQLite statements (pgferry's workload log); not on PostgreSQL")
    sink = RedactingSink(capture) if capture is not None else None
    forum = Forum.open(database, mode, capture=sink, backend=backend, **overrides)
    try:
        settings = forum.store.db.settings()
        where = redact(str(database))
        log.info("forum %s mode on %s: %s", forum.mode, where, ", ".join(f"{k}={v}" for k, v in settings.items()))
        if capture is not None:
            log.info("capturing every statement to %s", capture)
        config = uvicorn.Config(
            create_app(forum), host=host, port=port, access_log=access_log, log_level="info", lifespan="off"
        )
        try:
            uvicorn.Server(config).run()
        except KeyboardInterrupt:  # uvicorn shuts down cleanly, then re-raises the signal it caught
            log.info("stopped")
    finally:
        forum.close()
        if sink is not None:
            sink.close()
