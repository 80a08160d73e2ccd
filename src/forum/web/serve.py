"""`forum serve`: open the database in a mode, build the app, run uvicorn until stopped."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from forum.services import Forum
from forum.store import Mode
from forum.web.app import create_app
from forum.web.capture import RedactingSink

log = logging.getLogger("forum.web")


def serve(
    database: str | Path,
    mode: Mode | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    capture: str | Path | None = None,
    access_log: bool = False,
    busy_timeout_ms: int | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; the database and the capture file are closed on the way out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sink = RedactingSink(capture) if capture is not None else None
    overrides: dict[str, object] = {}
    if busy_timeout_ms is not None:
        overrides["legacy_busy_timeout_ms" if str(mode) == "legacy" else "busy_timeout_ms"] = busy_timeout_ms
    forum = Forum.open(database, mode, capture=sink, **overrides)
    try:
        settings = forum.store.db.settings()
        log.info("forum %s mode on %s: %s", forum.mode, database, ", ".join(f"{k}={v}" for k, v in settings.items()))
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
