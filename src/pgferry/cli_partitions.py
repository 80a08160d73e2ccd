"""`pgferry partitions ensure DSN`: a thin command over pgferry.pg.partitions."""

from __future__ import annotations

import sys
from typing import Any

import click

from pgferry.clitools import emit_json, handle_errors, json_option


@click.group("partitions")
def partitions() -> None:
    """Keep the partitions of the tables `pgferry copy --partition` made ahead of time."""


@partitions.command("ensure")
@click.argument("postgres_dsn")
@click.option(
    "--ahead",
    type=click.IntRange(0, 1000),
    default=3,
    show_default=True,
    help="Partitions kept past the one holding now.",
)
@click.option("--schema", help="Only the tables of this schema [default: every schema].")
@click.option(
    "--lock-timeout",
    type=click.FloatRange(0.1, 600),
    default=5.0,
    show_default=True,
    help="Seconds one partition's CREATE TABLE waits for the table's lock before it is left for the next run.",
)
@json_option("the report")
@handle_errors
def ensure_command(postgres_dsn: str, ahead: int, schema: str | None, lock_timeout: float, as_json: bool) -> None:
    """Create the missing partitions of the tables pgferry partitioned, through AHEAD past now.

    \b
    Finds the tables by the COMMENT the copy put on them; others (pg_partman's
    too) are left alone. Idempotent: run it from cron. A partition whose range
    already holds rows in the DEFAULT partition is not created and is reported
    (its range, the rows' count, lowest and highest): rows are never moved
    silently. Exit 0 when every partition is there, 1 when some could not be
    made, 2 on an error.
    """
    from pgferry.pg.partitions import ensure_partitions

    report = ensure_partitions(postgres_dsn, ahead, schema, lock_timeout_s=lock_timeout)
    if as_json:
        emit_json(report.as_dict())
    else:
        render(report)
    if not report.complete:
        sys.exit(1)


def render(report: Any) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if not report.tables:
        console.print("no table partitioned by pgferry copy --partition")
    for table in report.tables:
        made = ", ".join(table.created) if table.created else "none (all there)"
        head = f"{table.schema}.{table.table} by {table.unit} on {table.column}: {table.partitions} partitions"
        console.print(escape(f"{head}; created {made}"))
        for blocked in table.blocked:
            if not blocked.partition:
                console.print(escape(f"  NOT CHECKED: {blocked.reason}"))
                continue
            rows = f": {blocked.rows} rows, {blocked.lowest} to {blocked.highest}" if blocked.rows else ""
            line = f"  NOT CREATED {blocked.partition} [{blocked.low}, {blocked.high}){rows}: {blocked.reason}"
            console.print(escape(line))
