"""`pgferry advise DSN`: a thin command over pgferry.advise."""

from __future__ import annotations

from typing import Any

import click

from pgferry.clitools import emit_json, handle_errors, json_option

MIN_ROWS_HELP = "Native schema: propose partitions only for tables of this many rows or more."


@click.command("advise")
@click.argument("postgres_dsn")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=200,
    show_default=True,
    help="Statements to consider, by total time.",
)
@click.option("--min-calls", type=click.IntRange(1), default=1, show_default=True, help="Leave out rarer statements.")
@click.option(
    "--measure",
    is_flag=True,
    help="Also build each proposed index for real (in the same rolled-back transaction) and time the statements "
    "it helps without and with it; writes to its table wait while it builds: use a copy or a quiet hour.",
)
@click.option("--min-rows", type=click.IntRange(1), default=10_000, show_default=True, help=MIN_ROWS_HELP)
@click.option(
    "--native-plan-out",
    type=click.Path(dir_okay=False),
    help="Write the native-schema proposals to FILE (TOML) to edit, then `pgferry copy --native-plan FILE`.",
)
@json_option("the advice")
@handle_errors
def advise_command(
    postgres_dsn: str,
    limit: int,
    min_calls: int,
    measure: bool,
    min_rows: int,
    native_plan_out: str | None,
    as_json: bool,
) -> None:
    """Index advice for the PostgreSQL database at POSTGRES_DSN, from its own workload.

    \b
    Reads pg_stat_statements (it must be in shared_preload_libraries), plans
    each statement without and with every candidate index through HypoPG
    (hypothetical indexes: nothing is built), and proposes the indexes that
    save the most time net of what they cost the workload's writes, with the
    reason for every statement none helps. Also duplicate, prefix-covered and
    unused indexes, and PostgreSQL-native schema proposals from pg_stats and
    the workload: range partitions by time, BRIN, pg_trgm indexes, CHECK or
    enum value lists, each with its evidence and cost. Everything runs in one transaction that is rolled back, so
    a DSN through PgBouncer works too. Exit 0; 2 on an error.
    """
    from pgferry.advise.advisor import advise
    from pgferry.advise.native import NativeOptions
    from pgferry.pg.connect import connect

    with connect(postgres_dsn) as pg:
        report = advise(pg, limit, min_calls, measure, NativeOptions(min_rows=min_rows))
    if native_plan_out:
        from pgferry.advise.native_plan_out import native_plan

        native_plan(report.native).dump(native_plan_out)
    if as_json:
        emit_json(report.as_dict())
        return
    render(report)


def render(report: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"{report.statements} statements from pg_stat_statements")
    if report.proposals:
        table = Table(title="proposed indexes", title_justify="left")
        for column in ("index", "statements", "saved ms", "write cost ms", "net ms", "size"):
            table.add_column(column, justify="left" if column == "index" else "right")
        for p in report.proposals:
            size = "-" if p.estimated_bytes is None else f"{p.estimated_bytes / 1024:,.0f} KiB"
            figures = (f"{p.saved_ms:,.1f}", f"{p.write_cost_ms:,.1f}", f"{p.net_ms:,.1f}", size)
            table.add_row(escape(p.definition), str(len(p.helps)), *figures)
        console.print(table)
        for p in report.proposals:
            for h in p.helps:
                measured = ""
                if h.measured_before_ms is not None and h.measured_after_ms is not None:
                    measured = f"; measured {h.measured_before_ms:.2f} -> {h.measured_after_ms:.2f} ms"
                console.print(
                    f"  {escape(p.table)}: {escape(h.query[:80])}: cost {h.cost_before:,.0f} -> {h.cost_after:,.0f}"
                    f" ({h.saving:.0%}){measured}"
                )
    else:
        console.print("no index proposed")
    for finding in report.existing:
        by = f" (by {finding.by})" if finding.by else ""
        console.print(
            f"{finding.kind} index {escape(finding.index)} on {escape(finding.table)}{by}: {finding.drop_sql}"
        )
    for item in report.not_helped:
        console.print(f"not helped: {escape(item.query[:100])}: {escape(item.reason)}")
    for note in report.notes:
        console.print(f"note: {note}")
    render_native(console, report.native)


def render_native(console: Any, native: Any) -> None:
    """The native-schema section: each proposal with what carries it out and its cost, then the refusals."""
    from rich.markup import escape

    from pgferry.advise.native_plan_out import REFUSED

    console.print("[bold]PostgreSQL-native schema[/bold]")
    if not native.proposals:
        console.print("  nothing proposed")
    for p in native.proposals:
        console.print(f"  {p.kind} {escape(p.table)}.{escape(p.column)}: {escape(p.summary)}")
        for line in p.sql:
            console.print(f"    {escape(line)}", soft_wrap=True)
        for cost in p.cost:
            console.print(f"    cost: {escape(cost)}")
    for r in native.refused:
        column = f" ({escape(r.column)})" if r.column else ""
        console.print(f"  {REFUSED.get(r.kind, r.kind)}: {escape(r.table)}{column}: {escape('; '.join(r.reasons))}")
