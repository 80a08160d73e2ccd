"""Progress bars on a terminal's stderr, drawn from pgferry.events: the one listener every command
(copy, verify, doctor, tune, split, the forum's seed) shows its long work through."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from pgferry.events import Event, Listener, no_events


class EventBars:
    """A bar per (phase, task). Counts in rows show a rate and stay until the end; other units
    (steps, parts) are put away when their task finishes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.started: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        key = (event.phase, event.task)
        with self.lock:
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(label(event), total=event.total, rate="")
                self.started[key] = time.perf_counter()
            task, started = self.tasks[key], self.started[key]
        rate = ""
        if event.unit == "rows":
            rate = f"{event.done / max(time.perf_counter() - started, 1e-6):,.0f} rows/s"
        visible = event.unit == "rows" or not event.finished
        self.progress.update(
            task, completed=event.done, total=event.total, rate=rate, visible=visible, description=label(event)
        )


def label(event: Event) -> str:
    """`phase task`, with what the task is doing now when the producer says."""
    text = f"[dim]{escape(event.phase)}[/dim] {escape(event.task)}" if event.task != event.phase else event.phase
    return text + (f" [dim]{escape(event.detail[:60])}[/dim]" if event.detail else "")


@contextmanager
def event_bars(enabled: bool = True) -> Iterator[Listener]:
    """The bars' listener while the block runs, or None when disabled or stderr is not a terminal
    (scripts and --json output get no escape codes)."""
    console = Console(stderr=True)
    if not enabled or not sys.stderr.isatty():
        yield no_events
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield EventBars(progress)
