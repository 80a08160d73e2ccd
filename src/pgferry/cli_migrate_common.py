"""What every `pgferry migrate` command declares the same way: the two databases, --schema, --max-lag,
--lock-timeout, and the stop that SIGINT / SIGTERM ask for."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

schema_option = click.option(
    "--schema", help="Target schema of the migration [default: the one `start` recorded in the SQLite file]."
)


def max_lag_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--max-lag S (seconds the applier may be behind), as `cutover` and `status --serve` take it."""
    return click.option(
        "--max-lag", "max_lag_s", type=click.FloatRange(min=0), default=1.0, show_default=True, help=help_text
    )


def lock_timeout_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--lock-timeout S (at most a minute), as `cutover` and `rollback` take it."""
    return click.option(
        "--lock-timeout",
        "lock_timeout_s",
        type=click.FloatRange(min=0.05, max=60),
        default=3.0,
        show_default=True,
        help=help_text,
    )


@contextmanager
def stopping() -> Iterator[tuple[threading.Event, Callable[[], None]]]:
    """A stop event set by SIGINT or SIGTERM once following; before that (during the copy) they stop
    at once, and `follow` resumes the copy from its checkpoints."""
    stop = threading.Event()
    following = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if not following.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop, following.set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def databases(command: Callable[..., Any]) -> Callable[..., Any]:
    """SQLITE_PATH and POSTGRES_DSN, the arguments of every migrate command."""
    return click.argument("sqlite_path", type=click.Path(path_type=Path))(click.argument("postgres_dsn")(command))
