"""`pgferry workload`: read captured workloads (statements an application ran, with timings)."""

from __future__ import annotations

from typing import Any

import click

from pgferry.clitools import emit_json, handle_errors, json_option


@click.group()
def workload() -> None:
    """Read captured workloads: statements an application ran, with timings."""


@workload.command("summary")
@click.argument("file", type=click.Path(path_type=str))
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Show the N fingerprints with the most total time (0: all).",
)
@click.option(
    "--dialect",
    type=click.Choice(["sqlite", "postgres"]),
    default="sqlite",
    show_default=True,
    help="SQL dialect the statements are written in.",
)
@json_option()
@handle_errors
def workload_summary(file: str, top: int, dialect: str, as_json: bool) -> None:
    """Group the statements in FILE (.jsonl, .jsonl.gz or .sql) by fingerprint, most total time first."""
    from pgferry.workload import read_workload, summarize

    stats = summarize(read_workload(file), dialect=dialect)
    total_statements = sum(s.calls for s in stats)
    shown = stats[:top] if top else stats
    if as_json:
        emit_json(
            {
                "file": file,
                "statements": total_statements,
                "distinct_fingerprints": len(stats),
                "fingerprints": [s.to_dict() for s in shown],
            }
        )
        return
    _print_summary_table(file, total_statements, stats, shown)


def _print_summary_table(file: str, total: int, stats: list[Any], shown: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f}"

    console = Console()
    header = f"{file}: {total:,} statements, {len(stats):,} fingerprints"
    if len(shown) < len(stats):
        header += f" (top {len(shown)} by total time)"
    console.print(escape(header), soft_wrap=True)
    if not shown:
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    table.add_column("calls", justify="right")
    table.add_column("total ms", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("req", justify="right")
    table.add_column("statement / top site", overflow="fold")
    for s in shown:
        text = s.text if len(s.text) <= 160 else s.text[:157] + "..."
        site = f"\n[dim]{escape(s.top_sites[0][0])}[/dim]" if s.top_sites else ""
        table.add_row(
            s.id,
            f"{s.calls:,}",
            ms(s.total_ms if s.timed_calls else None),
            ms(s.mean_ms),
            ms(s.p95_ms),
            f"{s.requests:,}",
            escape(text) + site,
        )
    console.print(table)
