"""`pgferry migrate cutover / rollback / finish / metrics`: the commands that switch the route and end a
migration, thin over pgferry.capture (the group and the other commands: pgferry.cli_migrate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pgferry.cli_migrate_common import databases, lock_timeout_option, max_lag_option, schema_option, stopping
from pgferry.clitools import emit_json, handle_errors, json_option


@click.command("cutover")
@databases
@schema_option
@max_lag_option("Refuse an attempt while the applier is more seconds behind than this.")
@lock_timeout_option(
    "Seconds from the freeze to the commit: taking the lock, draining and flipping must fit, or the "
    "attempt is undone and writers go on SQLite."
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


@click.command("finish")
@databases
@schema_option
@click.option(
    "--discard-stray-writes",
    is_flag=True,
    help="Finish even though writes were committed to SQLite after the cutover (their rows stay in SQLite only).",
)
@json_option()
@handle_errors
def finish_command(
    sqlite_path: Path, postgres_dsn: str, schema: str | None, discard_stray_writes: bool, as_json: bool
) -> None:
    """End a migration that was cut over: remove capture from SQLITE_PATH and the migration's state
    from POSTGRES_DSN.

    The route stays postgres (an application on pgferry.runtime keeps writing to PostgreSQL); the
    tables and rows on both sides are not touched. After this there is no rollback. Refused (exit
    2) while SQLite holds writes committed after the cutover, unless --discard-stray-writes.
    """
    from pgferry.capture.finish import finish

    report = finish(sqlite_path, postgres_dsn, schema, discard_stray_writes)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"finished: removed {report.sqlite.triggers} capture triggers and "
        f"{', '.join(report.sqlite.tables) or 'no tables'} from {report.source}; PostgreSQL state for schema "
        f"{report.schema!r} " + ("removed" if report.postgres_state else "was not there") + "; the route stays postgres"
    )
    if report.stray_writes_discarded:
        click.echo(
            f"warning: {report.stray_writes_discarded:,} writes committed to SQLite after the cutover were left in "
            "SQLite only (--discard-stray-writes)",
            err=True,
        )


@click.command("metrics")
@databases
@schema_option
@click.option("--port", type=click.IntRange(0, 65535), default=9187, show_default=True, help="Port on 127.0.0.1.")
@handle_errors
def metrics_command(sqlite_path: Path, postgres_dsn: str, schema: str | None, port: int) -> None:
    """Serve the migration's state as Prometheus metrics on http://127.0.0.1:PORT/metrics until Ctrl-C.

    Each scrape reads both databases (phase, route, lag, apply rate, changelog and WAL size, verify
    failures, cutover attempts by outcome and the last one's phases); see docs/migrate.md.
    """
    from pgferry.capture.metrics import serve_metrics
    from pgferry.capture.migration import install_schema

    server = serve_metrics(sqlite_path, postgres_dsn, install_schema(sqlite_path, schema), port)
    click.echo(f"metrics at {server.url}; Ctrl-C stops")
    with stopping() as (stop, following):
        following()
        stop.wait()
    server.stop()


@click.command("rollback")
@databases
@schema_option
@lock_timeout_option("Seconds to wait for PostgreSQL's writers in flight to finish; past it, nothing changes.")
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
    from pgferry.capture.strays import Strays

    report = rollback(sqlite_path, postgres_dsn, schema, lock_timeout_s)
    if as_json:
        emit_json(report.as_dict())
        return
    done = "finished the rollback killed after its flip" if report.resumed else "rolled back"
    click.echo(
        f"{done}: the route is sqlite; {report.applied_before + report.drained:,} PostgreSQL changes written into "
        f"{report.source} ({report.drained:,} under the lock); writers paused {report.pause_s * 1000:.0f} ms"
    )
    if report.marks_raised:
        raised = ", ".join(f"{name} to {mark:,}" for name, mark in report.marks_raised.items())
        click.echo(f"AUTOINCREMENT marks raised to the ids PostgreSQL gave (SQLite never gives them again): {raised}")
    if report.late_entries:
        click.echo(
            f"warning: {report.late_entries:,} changes were written on PostgreSQL after the flip by something not "
            "following the route; they are not in SQLite",
            err=True,
        )
    if report.strays:
        strays = Strays.from_dict(report.strays)
        click.echo(
            f"stray writes: {strays.describe()} committed to SQLite after the cutover; "
            "`pgferry migrate follow` carries their rows to PostgreSQL"
        )
    if not report.reverse_removed:
        click.echo("reverse capture is still installed (its tables were busy): run `pgferry migrate rollback` again")
    click.echo("`pgferry migrate follow` carries SQLite's changes to PostgreSQL again")
