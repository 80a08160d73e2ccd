"""`pgferry migrate start / follow / status / abort / rollback`: thin commands over pgferry.capture."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from pgferry.cli_copy import shaped_options, shaping_options
from pgferry.clitools import emit_json, handle_errors, json_option

if TYPE_CHECKING:
    from pgferry.capture.applier import Batch
    from pgferry.capture.migration import Follow, FollowReport
    from pgferry.capture.reverse import ReverseBatch
    from pgferry.events import Listener

PROGRESS_EVERY_S = 5.0

schema_option = click.option(
    "--schema", help="Target schema of the migration [default: the one `start` recorded in the SQLite file]."
)
until_option = click.option(
    "--until-caught-up", is_flag=True, help="Stop once every change is applied, instead of following on."
)
batch_option = click.option(
    "--batch",
    "batch_entries",
    type=click.IntRange(1, 100_000),
    default=2_000,
    show_default=True,
    help="Changelog entries per batch: each batch commits with the applier's position.",
)


@click.group("migrate")
def migrate() -> None:
    """Move a running application's SQLite database to PostgreSQL: capture, copy, catch up.

    \b
    start     install change capture, copy with a watermark, then follow
    follow    go on following (after a stop, a kill, or a start that was killed);
              after a cutover, PostgreSQL's changes back into SQLite
    status    phase, lag, throughput, changelog and WAL size, last error
    cutover   switch the route to PostgreSQL while the application writes
    abort     remove capture and the migration's state from both sides
    rollback  after a cutover: back to SQLite, losing nothing written on PostgreSQL
    See docs/migrate.md.
    """


@contextmanager
def _stopping() -> Iterator[tuple[threading.Event, Callable[[], None]]]:
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


def _progress(as_json: bool, following: Callable[[], None]) -> Callable[[Batch | ReverseBatch | None], None]:
    """Called after every batch (None: nothing to apply): a line every few seconds in text mode."""
    seen = {"at": time.monotonic(), "entries": 0, "lag": 0.0}

    def on_batch(batch: Batch | ReverseBatch | None) -> None:
        following()
        if batch is not None:
            seen["entries"] += batch.entries
            seen["lag"] = max(seen["lag"], batch.lag_s)
        now = time.monotonic()
        if as_json or now - seen["at"] < PROGRESS_EVERY_S:
            return
        rate = seen["entries"] / (now - seen["at"])
        click.echo(f"following: {seen['entries']:,} changes applied ({rate:,.0f}/s), lag at most {seen['lag']:.2f} s")
        seen.update(at=now, entries=0, lag=0.0)

    return on_batch


def _run(
    as_json: bool, until_caught_up: bool, batch_entries: int, call: Callable[[Listener, Follow], FollowReport]
) -> None:
    """`call` (start or follow) with progress bars, signals that stop it, and its report rendered."""
    from pgferry.bars import event_bars
    from pgferry.capture.migration import Follow

    with _stopping() as (stop, following), event_bars(not as_json) as bars:
        report = call(bars, Follow(stop, until_caught_up, _progress(as_json, following), batch_entries))
    _finish(report, as_json)


def _finish(report: FollowReport, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
        return
    from rich.console import Console

    from pgferry.console import render_captured, render_copy

    console = Console()
    if report.journal is not None:
        console.print(f"journal mode: {report.journal.note}")
    render_captured(report.keys, console)
    if report.copy is not None:
        render_copy(report.copy, console)
    console.print(f"stopped after applying {report.applied:,} changes; `pgferry migrate follow` goes on")


def _databases(command: Callable[..., Any]) -> Callable[..., Any]:
    """SQLITE_PATH and POSTGRES_DSN, the arguments of every migrate command."""
    return click.argument("sqlite_path", type=click.Path(path_type=Path))(click.argument("postgres_dsn")(command))


def _following(command: Callable[..., Any]) -> Callable[..., Any]:
    """--until-caught-up, --batch and --json of the commands that follow (start, follow)."""
    return until_option(batch_option(json_option("the report, when it stops")(handle_errors(command))))


@migrate.command("start")
@_databases
@shaping_options
@click.option(
    "--keep-journal-mode",
    is_flag=True,
    help="Leave a rollback-journal file as it is (by default it is switched to WAL first: in rollback-journal "
    "mode the copy's snapshot blocks every writer's commit while it reads).",
)
@_following
def start_command(
    sqlite_path: Path,
    postgres_dsn: str,
    jobs: int | None,
    cast_file: str | None,
    keep_journal_mode: bool,
    until_caught_up: bool,
    batch_entries: int,
    as_json: bool,
    **shape: Any,
) -> None:
    """Install change capture on SQLITE_PATH, copy it into POSTGRES_DSN, then follow its changes.

    \b
    Every table needs a primary key (tables without one are named, and nothing
    is installed). Capture is triggers appending each changed row's key to a
    changelog in the file; the copy reads every table in one snapshot together
    with the changelog's position, then the applier upserts the current row of
    every changed key into PostgreSQL, until Ctrl-C / SIGTERM (or
    --until-caught-up). Killed at any point, `pgferry migrate follow` goes on.
    A file in rollback-journal mode is switched to WAL first (reported).
    """
    from pgferry.capture.migration import start

    options = shaped_options(jobs, cast_file, **shape)
    _run(
        as_json,
        until_caught_up,
        batch_entries,
        lambda events, how: start(sqlite_path, postgres_dsn, options, events, how, wal=not keep_journal_mode),
    )


@migrate.command("follow")
@_databases
@schema_option
@_following
def follow_command(
    sqlite_path: Path, postgres_dsn: str, schema: str | None, until_caught_up: bool, batch_entries: int, as_json: bool
) -> None:
    """Go on applying SQLITE_PATH's changes to POSTGRES_DSN where the migration stands.

    Installs capture or finishes the copy first when a `start` was killed before it did. While the
    route is postgres (after a cutover) it applies PostgreSQL's changes back into SQLite instead, and
    switches direction when a cutover or a rollback flips the route.
    """
    from pgferry.capture.migration import follow

    _run(
        as_json,
        until_caught_up,
        batch_entries,
        lambda events, how: follow(sqlite_path, postgres_dsn, schema, events, how),
    )


@migrate.command("status")
@_databases
@schema_option
@json_option()
@handle_errors
def status_command(sqlite_path: Path, postgres_dsn: str, schema: str | None, as_json: bool) -> None:
    """Phase, lag (changes and seconds), changes applied per second, changelog and WAL size, last error.

    Exit 0, or 1 when the applier stopped on an error (phase failed).
    """
    from pgferry.capture.migration import install_schema
    from pgferry.capture.status import read_status

    status = read_status(sqlite_path, postgres_dsn, install_schema(sqlite_path, schema))
    if as_json:
        emit_json(status.as_dict())
    else:
        from rich.console import Console

        from pgferry.console import render_migration

        render_migration(status, Console())
    if status.phase == "failed":
        sys.exit(1)


@migrate.command("abort")
@_databases
@schema_option
@json_option()
@handle_errors
def abort_command(sqlite_path: Path, postgres_dsn: str, schema: str | None, as_json: bool) -> None:
    """Remove capture (triggers, changelog) from SQLITE_PATH and the migration's state from POSTGRES_DSN.

    The application's tables and rows are not touched, nor are the tables copied into PostgreSQL
    (drop the schema to start over into it).
    """
    from pgferry.capture.migration import abort

    report = abort(sqlite_path, postgres_dsn, schema)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"removed {report.sqlite.triggers} capture triggers and {', '.join(report.sqlite.tables) or 'no tables'} "
        f"from {report.source}; PostgreSQL state for schema {report.schema!r} "
        + ("removed" if report.postgres_state else "was not there")
    )


@migrate.command("cutover")
@_databases
@schema_option
@click.option(
    "--max-lag",
    "max_lag_s",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Refuse an attempt while the applier is more seconds behind than this.",
)
@click.option(
    "--lock-timeout",
    "lock_timeout_s",
    type=click.FloatRange(min=0.05, max=60),
    default=3.0,
    show_default=True,
    help="Seconds from the freeze to the commit: taking the lock, draining and flipping must fit, or the "
    "attempt is undone and writers go on SQLite.",
)
@click.option("--attempts", type=click.IntRange(1, 100), default=5, show_default=True, help="Attempts in all.")
@click.option(
    "--backoff",
    "backoff_s",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between attempts, doubled after each (at most 30).",
)
@click.option(
    "--postpone-file",
    type=click.Path(path_type=Path),
    help="While this file exists no attempt starts (remove it to let the cutover go on).",
)
@click.option(
    "--hook",
    help="Maintenance cutover for an application that does not use pgferry.runtime: a shell command run "
    "with SQLite's write lock held after PostgreSQL took the route (it points the application at PostgreSQL; "
    "PGFERRY_SQLITE, PGFERRY_DSN, PGFERRY_SCHEMA are set). A failing hook undoes the attempt.",
)
@click.option(
    "--hook-timeout",
    "hook_timeout_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds the hook may run.",
)
@click.option("--dry-run", is_flag=True, help="Print the steps an attempt takes; change nothing.")
@json_option("the report")
@handle_errors
def cutover_command(
    sqlite_path: Path,
    postgres_dsn: str,
    schema: str | None,
    as_json: bool,
    postpone_file: Path | None,
    hook: str | None,
    dry_run: bool,
    **timing: Any,
) -> None:
    """Switch the application from SQLITE_PATH to POSTGRES_DSN while it writes.

    \b
    The route announces a freeze (writers using pgferry.runtime wait), SQLite's
    write lock is taken, the changelog drained, sequences set, and the route
    flipped in both databases: the writers that waited go on PostgreSQL. An
    attempt that outlives --lock-timeout is undone (writers go on SQLite) and
    retried. Exit 0 on the route postgres (also when it was already), 1 when
    every attempt was undone. `pgferry migrate rollback` goes back.
    """
    from pgferry.capture.cutover import CutoverOptions, cutover

    options = CutoverOptions(postpone_file=postpone_file, hook=hook, dry_run=dry_run, **timing)

    def told(attempt: Any) -> None:
        if not as_json:
            click.echo(render_attempt(attempt))

    report = cutover(
        sqlite_path, postgres_dsn, schema, options, on_attempt=told, on_wait=None if as_json else click.echo
    )
    if as_json:
        emit_json(report.as_dict())
        return
    if report.already:
        click.echo(f"the route of {report.source} is postgres already: nothing to do")
    elif report.dry_run:
        click.echo(f"cutover of {report.source} into {report.target}, schema {report.schema!r} (dry run):")
        for number, step in enumerate(report.steps, 1):
            click.echo(f"  {number}. {step}")
    else:
        click.echo(
            f"cut over: the route is postgres; {report.sequences} sequences set; `pgferry migrate rollback` goes back"
        )


def render_attempt(attempt: Any) -> str:
    """One line per attempt: outcome, pause, the phases' times."""
    phases = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in attempt.phases.items())
    pause = "" if attempt.pause_s is None else f", writers paused {attempt.pause_s * 1000:.1f} ms"
    tail = f": {attempt.message}" if attempt.message else ""
    return f"attempt {attempt.number}: {attempt.outcome}{pause} ({phases}; {attempt.drained} entries drained){tail}"


@migrate.command("rollback")
@_databases
@schema_option
@click.option(
    "--lock-timeout",
    "lock_timeout_s",
    type=click.FloatRange(0.001, 60),
    default=3.0,
    show_default=True,
    help="Seconds to wait for PostgreSQL's writers in flight to finish; past it, nothing changes.",
)
@json_option()
@handle_errors
def rollback_command(
    sqlite_path: Path, postgres_dsn: str, schema: str | None, lock_timeout_s: float, as_json: bool
) -> None:
    """Go back from PostgreSQL to SQLite after a cutover, losing nothing written on PostgreSQL.

    \b
    Catches up with PostgreSQL's changes, freezes the route (writers wait),
    waits for the writers in flight on PostgreSQL (--lock-timeout), writes the
    last changes into SQLite and sets the route to sqlite in one SQLite
    transaction; writers go on on SQLite. Then reverse capture is removed and
    `pgferry migrate follow` carries SQLite's changes forward again. On a
    timeout nothing changes (exit 2); killed, run it again.
    """
    from pgferry.capture.rollback import rollback

    report = rollback(sqlite_path, postgres_dsn, schema, lock_timeout_s)
    if as_json:
        emit_json(report.as_dict())
        return
    done = "finished the rollback killed after its flip" if report.resumed else "rolled back"
    click.echo(
        f"{done}: the route is sqlite; {report.applied_before + report.drained:,} PostgreSQL changes written into "
        f"{report.source} ({report.drained:,} under the lock); writers paused {report.pause_s * 1000:.0f} ms"
    )
    if report.late_entries:
        click.echo(
            f"warning: {report.late_entries:,} changes were written on PostgreSQL after the flip by something not "
            "following the route; they are not in SQLite",
            err=True,
        )
    if not report.reverse_removed:
        click.echo("reverse capture is still installed (its tables were busy): run `pgferry migrate rollback` again")
    click.echo("`pgferry migrate follow` carries SQLite's changes to PostgreSQL again")
