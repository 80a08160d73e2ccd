"""`pgferry migrate` and its `start / follow / status / verify / abort` commands: thin over pgferry.capture.
The commands that switch the route and end a migration (cutover, rollback, finish, metrics) are in
pgferry.cli_switch; what they all declare the same way in pgferry.cli_migrate_common."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pgferry.cli_copy import shaped_options, shaping_options
from pgferry.cli_migrate_common import databases, max_lag_option, schema_option, stopping
from pgferry.cli_switch import cutover_command, finish_command, metrics_command, rollback_command
from pgferry.clitools import emit_json, handle_errors, json_option

if TYPE_CHECKING:
    from pgferry.capture.applier import Batch, Rebuilt
    from pgferry.capture.liveverify import PassReport
    from pgferry.capture.migration import Follow, FollowReport
    from pgferry.capture.reverse import ReverseBatch
    from pgferry.capture.strays import Stray
    from pgferry.events import Listener

PROGRESS_EVERY_S = 5.0

until_option = click.option(
    "--until-caught-up",
    is_flag=True,
    help="Stop once caught up (a batch applied every change there was when it began; writes may go on),"
    " instead of following on.",
)
metrics_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve the migration's Prometheus metrics on http://127.0.0.1:PORT/metrics while it follows "
    "(0: a free port; the URL is printed on stderr). The same metrics as `migrate metrics`.",
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
    status    phase, lag, throughput, changelog and WAL size, verify state, last error
    verify    compare both sides while writes run; differences reported once they outlive the lag
    cutover   switch the route to PostgreSQL while the application writes
    rollback  after a cutover: back to SQLite, losing nothing written on PostgreSQL
    finish    after a cutover: remove capture and state from both sides
    metrics   serve the migration's state as Prometheus metrics
    abort     remove capture and the migration's state from both sides
    See docs/migrate.md.
    """


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
    as_json: bool,
    until_caught_up: bool,
    batch_entries: int,
    call: Callable[[Listener, Follow], FollowReport],
    verify_every: int = 0,
    grace: float = 5.0,
    metrics: tuple[Path, str, str | None, int | None] = (Path(), "", None, None),
) -> None:
    """`call` (start or follow) with progress bars, signals that stop it, and its report rendered;
    `metrics` (file, DSN, schema, --metrics-port) served meanwhile when a port is given."""
    from pgferry.bars import event_bars
    from pgferry.capture.migration import Follow

    with stopping() as (stop, following), _serving_metrics(*metrics), event_bars(not as_json) as bars:
        progress = _progress(as_json, following)
        how = Follow(
            stop,
            until_caught_up,
            progress,
            batch_entries,
            verify_every,
            grace,
            _verified(as_json),
            _rebuilt(as_json),
            on_stray=_stray_warning,
        )
        report = call(bars, how)
    _finish(report, as_json)


def _stray_warning(stray: Stray) -> None:
    """Once per stray write `follow` sees, and once more if a batch overwrites it (its table and key,
    not the row's values), on stderr."""
    if stray.overwritten:
        click.echo(
            f"warning: the stray write {stray.describe()} (changelog seq {stray.seq}) was overwritten: PostgreSQL "
            "changed the same key, and its row is in SQLite now; the stray value is gone",
            err=True,
        )
        return
    click.echo(
        f"warning: a write was committed to SQLite after the cutover (stray write, changelog seq {stray.seq}): "
        f"{stray.describe()}; its row is in SQLite only (`pgferry migrate status` lists them, a rollback carries "
        "them to PostgreSQL, `finish` refuses while there are any)",
        err=True,
    )


@contextlib.contextmanager
def _serving_metrics(path: Path, dsn: str, schema: str | None, port: int | None) -> Iterator[None]:
    if port is None:
        yield
        return
    from pgferry.capture.metrics import serve_metrics
    from pgferry.capture.migration import install_schema

    server = serve_metrics(path, dsn, install_schema(path, schema), port)
    click.echo(f"metrics at {server.url}", err=True)
    try:
        yield
    finally:
        server.stop()


def _rebuilt(as_json: bool) -> Callable[[Rebuilt, PassReport], None]:
    """A table rebuilt in SQLite and taken up again: one line, always (it is rare and it matters)."""

    def on_rebuild(rebuilt: Rebuilt, report: PassReport) -> None:
        if as_json:
            return
        also = (
            f"; PostgreSQL keeps the copy's definition although {', '.join(rebuilt.changed)}" if rebuilt.changed else ""
        )
        verdict = (
            "identical"
            if report.identical
            else f"{len(report.failures)} differences, {len(report.unsettled)} still in flight"
        )
        click.echo(
            f"table {rebuilt.table} was rebuilt in SQLite: capture reinstalled, {rebuilt.rows:,} rows copied "
            f"again, verified: {verdict}{also}"
        )

    return on_rebuild


def _verified(as_json: bool) -> Callable[[PassReport], None]:
    """After each verify pass of `follow --verify-every`: a line when something differs, or every few seconds."""
    seen = {"at": 0.0, "failures": 0}

    def on_verify(report: PassReport) -> None:
        now = time.monotonic()
        failures = len(report.failures)
        if as_json or (failures == seen["failures"] and now - seen["at"] < PROGRESS_EVERY_S):
            return
        click.echo(
            f"verify: changes up to entry {report.upto} compared ({report.keys_checked:,} keys); "
            f"{failures} failures outlived the lag, {len(report.unsettled)} waiting"
        )
        seen.update(at=now, failures=failures)

    return on_verify


def _finish(report: FollowReport, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
        return
    from rich.console import Console

    from pgferry.console import render_captured, render_copy, render_held_back

    console = Console()
    if report.journal is not None:
        console.print(f"journal mode: {report.journal.note}")
    render_captured(report.keys, console)
    if report.copy is not None:
        render_copy(report.copy, console)
    if report.constraints is not None:
        render_held_back(report.constraints, console)
    console.print(f"stopped after applying {report.applied:,} changes; `pgferry migrate follow` goes on")


def _following(command: Callable[..., Any]) -> Callable[..., Any]:
    """--until-caught-up, --batch, --metrics-port and --json of the commands that follow (start, follow)."""
    return until_option(batch_option(metrics_option(json_option("the report, when it stops")(handle_errors(command)))))


@migrate.command("start")
@databases
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
    metrics_port: int | None,
    as_json: bool,
    **shape: Any,
) -> None:
    """Install change capture on SQLITE_PATH, copy it into POSTGRES_DSN, then follow its changes.

    \b
    Every table needs a primary key (tables without one are named, and nothing
    is installed). Capture is triggers appending each changed row's key to a
    changelog in the file; the copy reads the changelog's position (the
    watermark) and then each chunk in a short read transaction of its own, and
    the applier upserts the current row of every key changed since into
    PostgreSQL, until Ctrl-C / SIGTERM (or --until-caught-up). Killed at any point, `pgferry migrate follow` goes on.
    A file in rollback-journal mode is switched to WAL first (reported).
    """
    from pgferry.capture.migration import start

    options = shaped_options(jobs, cast_file, **shape)
    _run(
        as_json,
        until_caught_up,
        batch_entries,
        lambda events, how: start(sqlite_path, postgres_dsn, options, events, how, wal=not keep_journal_mode),
        metrics=(sqlite_path, postgres_dsn, options.schema, metrics_port),
    )


grace_option = click.option(
    "--grace",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds a difference must outlive (besides the applier passing it) before it is reported.",
)


@migrate.command("follow")
@databases
@schema_option
@click.option(
    "--verify-every",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Compare the changed keys after every N batches and whenever caught up (0: never); see `migrate verify`.",
)
@grace_option
@_following
def follow_command(
    sqlite_path: Path,
    postgres_dsn: str,
    schema: str | None,
    verify_every: int,
    grace: float,
    until_caught_up: bool,
    batch_entries: int,
    metrics_port: int | None,
    as_json: bool,
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
        verify_every,
        grace,
        metrics=(sqlite_path, postgres_dsn, schema, metrics_port),
    )


@migrate.command("status")
@databases
@schema_option
@click.option(
    "--serve",
    "serve_port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Serve a live dashboard on http://127.0.0.1:PORT/ (phase, route, lag and apply-rate charts, verify "
    "state, sizes, whether a cutover may start now) until Ctrl-C; /metrics for Prometheus.",
)
@max_lag_option("With --serve: the lag above which the dashboard says a cutover may not start.")
@click.option(
    "--watch",
    "watch_s",
    type=click.FloatRange(min=0.2),
    default=None,
    metavar="S",
    help="Print the status again every S seconds until Ctrl-C (with --json: one object per line).",
)
@json_option()
@handle_errors
def status_command(
    sqlite_path: Path,
    postgres_dsn: str,
    schema: str | None,
    serve_port: int | None,
    max_lag_s: float,
    watch_s: float | None,
    as_json: bool,
) -> None:
    """Phase, route, lag (changes and seconds), changes applied per second, changelog and WAL size,
    verify state, last error.

    Exit 0, or 1 when the applier stopped on an error (phase failed).
    """
    from pgferry.capture.migration import install_schema
    from pgferry.capture.status import read_status

    if serve_port is not None:
        from pgferry.capture.dashboard import Dashboard

        board = Dashboard(
            sqlite_path, postgres_dsn, install_schema(sqlite_path, schema), serve_port, max_lag_s=max_lag_s
        )
        board.start()
        try:
            with stopping() as (stop, following):
                following()  # Ctrl-C (or SIGTERM) stops it from here on: say where it is only now
                click.echo(f"dashboard at {board.url} (metrics at {board.url}metrics); Ctrl-C stops")
                stop.wait()
        finally:
            board.stop()
        return
    target = install_schema(sqlite_path, schema)
    if watch_s is not None:
        with stopping() as (stop, following):
            following()
            while not stop.is_set():
                status = read_status(sqlite_path, postgres_dsn, target)
                if as_json:
                    click.echo(json.dumps(status.as_dict(), default=str))  # one object per line
                else:
                    _print_status(status, as_json)
                stop.wait(watch_s)
        return
    status = read_status(sqlite_path, postgres_dsn, target)
    _print_status(status, as_json)
    if status.phase == "failed":
        sys.exit(1)


def _print_status(status: Any, as_json: bool) -> None:
    if as_json:
        emit_json(status.as_dict())
        return
    from rich.console import Console

    from pgferry.console import render_migration

    render_migration(status, Console())


@migrate.command("verify")
@databases
@schema_option
@click.option("--full", is_flag=True, help="Compare every row, table by table in chunks, not only the changed keys.")
@grace_option
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the applier to pass the differences seen, before calling them unsettled.",
)
@json_option()
@handle_errors
def verify_command(
    sqlite_path: Path, postgres_dsn: str, schema: str | None, full: bool, grace: float, wait_s: float, as_json: bool
) -> None:
    """Compare SQLITE_PATH with its copy in POSTGRES_DSN while the application writes.

    \b
    Compares the keys the applier changed since the last pass (with --full:
    every row, in chunks, each its own short SQLite read). A difference is
    reported only once the applier has passed the changes seen with it and
    --grace seconds went by; one that compares equal again is cleared.
    Exit 0 when identical, 1 with failures that outlived the lag, 2 on error
    (or when differences could not be settled: the applier is not following).
    """
    from pgferry.capture.liveverify import verify_live
    from pgferry.capture.migration import install_schema

    report = verify_live(
        sqlite_path, postgres_dsn, install_schema(sqlite_path, schema), full=full, grace=grace, wait_s=wait_s
    )
    if as_json:
        emit_json(report.as_dict())
    else:
        from rich.console import Console

        from pgferry.console import render_live_verify

        render_live_verify(report, Console())
    if report.failures:
        sys.exit(1)
    if report.unsettled:
        sys.exit(2)


@migrate.command("abort")
@databases
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


for command in (cutover_command, rollback_command, finish_command, metrics_command):
    migrate.add_command(command)
