"""`pgferry doctor` and `pgferry tune`: thin adapters over pgferry.doctor and pgferry.tune."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from pgferry.clitools import emit_json, handle_errors, json_option
from pgferry.errors import UsageError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(text: str | None) -> int | None:
    """'2GB', '2 GiB', '500MiB', '1000000' -> bytes (GB = 10^9, GiB = 2^30)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise UsageError(f"--size-limit {text!r}: expected a size such as 2GB, 500MiB or 1000000 (bytes)")
    return int(Decimal(m.group(1)) * _UNITS[m.group(2).lower()])  # exact: no float rounding of big sizes


def _workload_option(func: Any) -> Any:
    return click.option(
        "--workload",
        "workload",
        type=click.Path(path_type=str),
        help="A captured workload (JSON Lines or .sql, see docs/workload-format.md) to judge the database against.",
    )(func)


@click.command("doctor")
@click.argument("db", type=click.Path(path_type=str))
@_workload_option
@click.option("--size-limit", help="Size the growth forecast counts down to (2GB, 500MiB; default: free disk space).")
@json_option("database, findings, ...")
@click.option("--html", "html_file", type=click.Path(path_type=str), help="Also write a one-page HTML report here.")
@click.option(
    "--split-plans",
    "plans_dir",
    type=click.Path(path_type=str),
    help="Write each wide table's split plan as DIR/<table>.split.toml (for `pgferry split --plan`).",
)
@click.option(
    "--postgres",
    "postgres_dsn",
    metavar="DSN",
    help="The migrated database: add `pgferry advise` on it to the report (its own section in --html, `postgres` "
    "in --json), with the statements whose fingerprint both workloads have side by side.",
)
@handle_errors
def doctor_command(
    db: str,
    workload: str | None,
    size_limit: str | None,
    as_json: bool,
    html_file: str | None,
    plans_dir: str | None,
    postgres_dsn: str | None,
) -> None:
    """Diagnose the SQLite database DB: indexes, wide tables, N+1 loops, transactions, settings, growth.

    \b
    The database is opened read-only and never changed. With --workload, index
    advice is checked by SQLite's planner against the statements the application
    really runs. Fix what it finds with `pgferry tune`.
    """
    from pgferry.doctor import diagnose
    from pgferry.doctor.html import render_html

    limit = parse_size(size_limit)
    from pgferry.bars import event_bars

    with event_bars() as bars:
        report = diagnose(db, workload, size_limit=limit, events=bars)
    advice = _advice(postgres_dsn) if postgres_dsn else None
    if html_file:
        Path(html_file).write_text(render_html(report, advice), encoding="utf-8")
    if plans_dir:
        _write_plans(report, Path(plans_dir))
    if as_json:
        emit_json({**report.to_dict(), **({"postgres": advice} if advice is not None else {})})
        return
    _print_report(report, html_file)
    if advice is not None:
        click.echo(
            f"PostgreSQL: {len(advice['proposals'])} indexes proposed, {len(advice['existing'])} to drop, "
            f"{len(advice['not_helped'])} statements no index helps (`pgferry advise` shows them)"
        )


def _advice(dsn: str) -> dict[str, Any]:
    from pgferry.advise.advisor import advise
    from pgferry.pg.connect import connect

    with connect(dsn) as pg:
        return advise(pg).as_dict()


def _write_plans(report: Any, directory: Path) -> None:
    """Each wide table's proposal in split's own plan format (TOML), ready for `pgferry split --plan`."""
    from pgferry.split.plan import SplitPlan

    directory.mkdir(parents=True, exist_ok=True)
    for finding in report.by_kind("wide_table"):
        if finding.fix is not None and finding.fix.plan is not None:
            SplitPlan.from_dict(finding.fix.plan).dump(directory / f"{finding.table}.split.toml")


def _print_report(report: Any, html_file: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    data = report.to_dict()
    head = (
        f"{data['database']}: {data['size_bytes'] / 2**20:,.1f} MiB, {data['tables']} tables, {data['indexes']} indexes"
    )
    if data["workload"]:
        w = data["workload"]
        head += f"; workload {w['statements']:,} statements, {w['fingerprints']:,} fingerprints"
    console.print(escape(head), soft_wrap=True)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(data["counts"].items())) or "no findings"
    console.print(f"[bold]{escape(counts)}[/bold]")
    table = Table(show_lines=False)
    for column in ("sev", "kind", "finding", "fix"):
        table.add_column(column, overflow="fold")
    redundant = [f for f in report.findings if f.kind == "redundant_index"]
    for f in report.findings:
        if f.kind == "redundant_index":
            continue
        fix = f.fix.description if f.fix else ""
        if f.fix and f.fix.sql and f.kind in ("missing_index", "fk_without_index", "pragma"):
            fix = "; ".join(f.fix.sql)
        table.add_row(f.severity, f.kind, escape(f.title), escape(fix[:300]))
    if redundant:
        reasons = Counter(f.reason for f in redundant)
        for reason, n in reasons.most_common():
            names = [f.index for f in redundant if f.reason == reason]
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            fix = "DROP INDEX each (see --json)"
            if report.framework is not None:
                fix = f"drop each in the {report.framework} models, not in the file (see --json)"
            table.add_row("", "redundant_index", escape(f"{n} {reason}: {shown}"), fix)
    console.print(table)
    if data["workload"]:
        _print_unusable(console, data["workload"]["unusable"], "of the workload's statements were not used")
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/dim]", soft_wrap=True)
    if html_file:
        console.print(f"HTML report: {escape(html_file)}")


@click.command("tune")
@click.argument("db", type=click.Path(path_type=str))
@_workload_option
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(["missing_index", "redundant_index", "unused_index", "fk_without_index", "pragma"]),
    help="Fix only these kinds (repeatable). Default: missing_index, redundant_index, pragma.",
)
@click.option("--apply", "do_apply", is_flag=True, help="Make the changes. Without it the plan is only printed.")
@click.option(
    "--rollback-script",
    type=click.Path(path_type=str),
    help="Where to write the SQL that undoes the changes (default: DB.rollback-<time>.sql).",
)
@json_option()
@handle_errors
def tune_command(
    db: str, workload: str | None, only: tuple[str, ...], do_apply: bool, rollback_script: str | None, as_json: bool
) -> None:
    """Fix what `pgferry doctor` finds in DB: create missing indexes, drop redundant ones, set WAL, ANALYZE.

    \b
    Without --apply nothing is changed: the plan is printed. With --apply the
    rollback script is written first, each step runs in its own short
    transaction, and the workload (if given) is replayed before and after on
    the same file to show what the change bought.
    """
    from pgferry.bars import event_bars
    from pgferry.tune import tune

    with event_bars() as bars:
        result = tune(db, workload, only=list(only) or None, apply=do_apply, rollback_path=rollback_script, events=bars)
    if as_json:
        emit_json(result.to_dict())
        return
    _print_tune(result, do_apply)


def _print_unusable(console: Any, entries: list[dict[str, Any]], what: str) -> None:
    """`N <what>:` then one line per reason with its count and an example."""
    from rich.markup import escape

    total = sum(e["statements"] for e in entries)
    if not total:
        return
    console.print(escape(f"{total:,} {what}:"), soft_wrap=True)
    for entry in entries:
        example = entry["examples"][0] if entry["examples"] else None
        shown = ""
        if example is not None:
            shown = f"; e.g. {' '.join(example['sql'].split())[:120]}"
            shown += f" ({example['detail']})" if example.get("detail") else ""
        console.print(escape(f"  {entry['statements']:,} {entry['reason']}{shown}"), soft_wrap=True)


def _print_tune(result: Any, applied: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    plan = result.plan
    kinds = Counter(s.kind for s in plan.steps)
    console.print(
        escape(f"{plan.database}: {len(plan.steps)} steps ({', '.join(f'{n} {k}' for k, n in kinds.items())})"),
        soft_wrap=True,
    )
    if result.report.workload:
        _print_unusable(console, result.report.workload["unusable"], "of the workload's statements were not used")
    if not applied:
        for step in plan.steps:
            console.print(escape("; ".join(step.sql) + ";"), soft_wrap=True)
        console.print("[dim]Nothing changed. Run again with --apply to make these changes.[/dim]")
        return
    if result.applied is None:
        console.print("Nothing to do.")
        return
    a = result.applied.to_dict()
    console.print(
        escape(
            f"applied: {'ok' if a['ok'] else 'STOPPED at a failed step'}; longest lock held "
            f"{a['longest_lock_ms']:,.1f} ms; rollback script: {a['rollback_script']}"
        ),
        soft_wrap=True,
    )
    for step in a["steps"]:
        if not step["ok"]:
            console.print(escape(f"failed: {step['description']}: {step['error']}"), soft_wrap=True)
    if result.before is not None and result.after is not None:
        speedup = f" ({result.speedup:,.1f}x)" if result.speedup is not None else ""
        console.print(
            escape(
                f"workload replay: {len(result.before.timings):,} statement shapes, {result.before.total_ms:,.1f} ms "
                f"before, {result.after.total_ms:,.1f} ms after{speedup}"
            )
        )
        _print_unusable(console, result.before.unusable.to_dict(), "statements were not replayed")
    for table, cost in result.insert_cost.items():
        console.print(escape(f"insert cost {table}: {cost['before']:.2f} -> {cost['after']:.2f} ms per 1,000 rows"))
