"""`pgferry split`: a thin command over pgferry.split (propose, preview, apply, revert)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from pgferry.clitools import emit_json, handle_errors, json_option
from pgferry.errors import UsageError

if TYPE_CHECKING:  # the library (numpy among its imports) and rich's tables and bars load when `split` runs
    from pgferry.split import SplitPlan
    from pgferry.split.report import ContractReport, RevertReport, SplitReport


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:,.2f} MiB"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.3f}"


@click.command("split")
@click.argument("db", type=click.Path(path_type=Path))
@click.argument("table")
@click.option("--auto", "auto", is_flag=True, help="Propose the plan from the data (the default without --plan).")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this plan file (TOML, or JSON for .json) instead of proposing one.",
)
@click.option(
    "--workload",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Captured workload (.jsonl or .sql): its hot statements keep their columns in the core and are timed.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan to FILE to edit it.")
@click.option("--apply", "do_apply", is_flag=True, help="Carry out the split (one transaction; recorded for --revert).")
@click.option("--revert", "do_revert", is_flag=True, help="Undo a split from either stage, keeping writes made since.")
@click.option(
    "--contract",
    "do_contract",
    is_flag=True,
    help="Remove the moved columns from TABLE once no code uses them (checked against --workload).",
)
@click.option("--force", is_flag=True, help="With --contract: go on although workload statements use moved columns.")
@click.option(
    "--pause",
    "do_pause",
    is_flag=True,
    help="Drop the sync triggers before a migration that rebuilds TABLE (it fails on them); then --repair.",
)
@click.option(
    "--repair",
    "do_repair",
    is_flag=True,
    help="Re-create the sync triggers a --pause or a table rebuild removed, while both sides agree.",
)
@click.option(
    "--from",
    "winner",
    type=click.Choice(["table", "new"]),
    help="With --repair, when the sides differ: whose values win, TABLE's (`table`) or the new tables' (`new`).",
)
@click.option("--no-measure", is_flag=True, help="With --apply: skip the size and read-time measurements.")
@json_option()
@handle_errors
def split_command(
    db: Path,
    table: str,
    auto: bool,
    plan_file: Path | None,
    workload: Path | None,
    out: Path | None,
    do_apply: bool,
    do_revert: bool,
    do_contract: bool,
    do_pause: bool,
    do_repair: bool,
    winner: str | None,
    force: bool,
    no_measure: bool,
    as_json: bool,
) -> None:
    """Split the wide TABLE of the SQLite database DB into a core table and side tables.

    \b
    Without --apply it prints the plan and the SQL it would run, and changes nothing.
    --apply is the expand step: TABLE stays as it is, the new tables are created
    and triggers keep both in step both ways, so unchanged code (ORMs included)
    and code moved to the new tables both work. --contract later removes the moved
    columns from TABLE; --revert restores the original table exactly from either
    stage. Exit codes: 0 done, 2 refused or failed (nothing changed).

    \b
    Examples:
      pgferry split app.db users --out users-split.toml      # propose, save to edit
      pgferry split app.db users --plan users-split.toml --apply
      pgferry split app.db users --contract --workload after-deploy.jsonl
      pgferry split app.db users --revert
    """
    from pgferry.bars import event_bars
    from pgferry.split import load_plan, propose
    from pgferry.split.apply import apply_split, preview
    from pgferry.split.contract import contract_split
    from pgferry.split.revert import revert_split
    from pgferry.split.sqltext import fold

    if winner is not None and not do_repair:
        raise UsageError("--from goes with --repair")
    if force and not do_contract:
        raise UsageError("--force goes with --contract")
    if do_repair or do_pause:
        if plan_file or auto or do_apply or out or do_revert or do_contract or (do_repair and do_pause):
            raise UsageError("--pause and --repair take no --plan, --auto, --apply, --out, --revert or --contract")
        from pgferry.split.repair import Side, pause_split, repair_split

        done = pause_split(db, table) if do_pause else repair_split(db, table, cast("Side | None", winner))
        if as_json:
            emit_json(done.to_dict())
            return
        if do_pause:
            click.echo(f"dropped {len(done.dropped)} sync triggers of {done.table}: run the migration, then --repair")
            return
        if done.reconciled:
            side = done.table if done.winner == "table" else "the new tables"
            click.echo(f"{done.reconciled} row(s) of {done.table} took the values of {side}")
        if done.reinstalled:
            click.echo(f"re-created {len(done.reinstalled)} sync triggers of {done.table}")
        elif not done.reconciled:
            click.echo(f"every sync trigger of {done.table} is in place and the sides agree: nothing to do")
        return
    if do_contract:
        if plan_file or auto or do_apply or out or do_revert:
            raise UsageError("--contract takes no --plan, --auto, --apply, --out or --revert")
        with event_bars(not as_json) as bars:
            contracted = contract_split(db, table, workload=workload, force=force, events=bars)
        _render_contract(contracted, as_json)
        return
    if do_revert:
        if plan_file or auto or do_apply or out:
            raise UsageError("--revert takes no --plan, --auto, --apply or --out")
        with event_bars(not as_json) as bars:
            reverted = revert_split(db, table, events=bars)
        _render_revert(reverted, as_json)
        return
    if plan_file and auto:
        raise UsageError("use --auto or --plan FILE, not both")
    if plan_file:
        plan = load_plan(plan_file)
        if fold(plan.table) != fold(table):
            raise UsageError(f"the plan {plan_file} is for table {plan.table!r}, not {table!r}")
    else:
        plan = propose(db, table, workload=workload)
    if out:
        plan.dump(out)
    if do_apply:
        with event_bars(not as_json) as bars:
            report = apply_split(db, plan, workload=workload, measure=not no_measure, events=bars)
        _render_report(report, as_json)
        return
    script = preview(db, plan)
    if as_json:
        emit_json(
            {
                "database": str(db),
                "table": plan.table,
                "applied": False,
                "plan": plan.to_dict(),
                "profile": plan.profile.to_dict() if plan.profile is not None else None,
                "hot_statements": [h.to_dict() for h in plan.hot],
                "kept_indexes": script.kept_indexes,
                "dropped_indexes": script.dropped_indexes,
                "rebuilt_tables": [c.table.name for c in script.children],
                "sql": [{"purpose": s.purpose, "sql": s.sql} for s in script.steps],
            }
        )
        return
    _render_preview(plan, script.sql(), out)


def _render_preview(plan: SplitPlan, sql: str, out: Path | None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    console.print(f"[bold]Plan for {escape(plan.table)}[/bold]" + (f" (written to {escape(str(out))})" if out else ""))
    console.print(escape(plan.dump(fmt="toml")), soft_wrap=True, highlight=False)
    console.print("[bold]SQL that --apply would run, in one transaction[/bold]")
    console.print(escape(sql), soft_wrap=True, highlight=False)
    console.print("Nothing was changed. Add --apply to split, or --out FILE to edit the plan first.")


def _render_report(report: SplitReport, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if as_json:
        emit_json(report.to_dict())
        return
    console = Console()
    console.print(
        f"split {escape(report.table)} ({report.rows:,} rows) in {report.seconds:.2f} s; "
        f"the table is unchanged and kept in step with the new tables; when no code uses the moved columns: "
        f"pgferry split {escape(report.database)} {escape(report.table)} --contract; undo with --revert"
    )
    tables = Table(title="new tables")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, rows in report.rows_per_table.items():
        tables.add_row(escape(name), f"{rows:,}")
    console.print(tables)
    if report.size_before and report.size_after:
        b, a = report.size_before.total, report.size_after.total
        console.print(
            f"table + indexes: {_mib(b)} before, {_mib(a)} after ({a / b:.2f}x, {report.size_after.method}); "
            "the file keeps its size until VACUUM"
        )
    if report.reads:
        reads = Table(title="reads (median ms per execution)")
        for name in ("read", "before", "after: core", "after: view", "core speed-up"):
            reads.add_column(name, justify="left" if name == "read" else "right")
        for r in report.reads:
            speed = f"{r.before_ms / r.core_ms:.2f}x" if r.before_ms and r.core_ms else "-"
            reads.add_row(escape(r.label), _ms(r.before_ms), _ms(r.core_ms), _ms(r.view_ms), speed)
        console.print(reads)
    if report.dropped_indexes:
        console.print(f"indexes not kept (they span tables): {escape(', '.join(report.dropped_indexes))}")
    if report.rebuilt_tables:
        console.print(f"foreign keys re-pointed (tables rebuilt): {escape(', '.join(report.rebuilt_tables))}")
    if report.preexisting_fk_violations:
        console.print(f"[yellow]{report.preexisting_fk_violations} foreign key violations existed before[/yellow]")
    for note in report.notes:
        console.print(f"[yellow]note[/yellow] {escape(note)}")


def _render_revert(report: RevertReport, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    if as_json:
        emit_json(report.to_dict())
        return
    console = Console()
    console.print(
        f"reverted {escape(report.table)}: {report.rows:,} rows, {len(report.restored_indexes)} indexes restored, "
        f"dropped {escape(', '.join(report.dropped_tables))} in {report.seconds:.2f} s"
    )
    if report.rebuilt_tables:
        console.print(f"table rebuilt with its original definition: {escape(', '.join(report.rebuilt_tables))}")


def _render_contract(report: ContractReport, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    if as_json:
        emit_json(report.to_dict())
        return
    console = Console()
    console.print(
        f"contracted {escape(report.table)} ({report.rows:,} rows): removed "
        f"{escape(', '.join(report.removed_columns))} in {report.seconds:.2f} s; undo with --revert"
    )
    if report.moved_indexes:
        console.print(f"indexes moved to side tables: {escape(', '.join(report.moved_indexes))}")
    if report.dropped_indexes:
        console.print(f"indexes not kept (they span tables): {escape(', '.join(report.dropped_indexes))}")
    if report.forced:
        n = len(report.workload_users)
        console.print(f"[yellow]forced: {n} workload statement(s) still use moved columns[/yellow]")
