"""How the forum's commands print their reports (rich text): a traffic run, two modes compared, a
live migration. The commands themselves are in forum.cli."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_comparison(console: Console, legacy: dict[str, Any], optimized: dict[str, Any]) -> None:
    """One line per figure: legacy, optimized, and how they compare."""
    table = Table(title="legacy vs optimized", title_justify="left")
    for column in ("", "legacy", "optimized", "optimized vs legacy"):
        table.add_column(column, justify="left" if not column else "right")

    def ratio(a: float, b: float) -> str:
        return f"{b / a:.2f}x" if a else "-"

    lv, ov = legacy["by_endpoint"].get("topic_view", {}), optimized["by_endpoint"].get("topic_view", {})
    rows = [
        ("requests/s", legacy["throughput_rps"], optimized["throughput_rps"], "{:,.1f}"),
        ("p95 latency, ms", legacy["latency_ms"]["p95"], optimized["latency_ms"]["p95"], "{:,.1f}"),
        ("errors", legacy["errors"], optimized["errors"], "{:,}"),
        ("statements per topic view", lv.get("queries_per_request", 0), ov.get("queries_per_request", 0), "{:.1f}"),
    ]
    for name, a, b, fmt in rows:
        table.add_row(name, fmt.format(a), fmt.format(b), ratio(a, b))
    console.print(table)
    errors = ", ".join(f"{k}: {v}" for k, v in legacy["errors_by_status"].items()) or "none"
    console.print(f"legacy errors by status: {errors}", highlight=False)


def print_traffic(console: Console, report: dict[str, Any], title: str | None = None) -> None:
    """A traffic report as a table: one row per endpoint, then the totals."""
    table = Table(title=title, title_justify="left")
    for column in ("endpoint", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "queries/req"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")

    def row(name: str, part: dict[str, Any], style: str = "") -> None:
        lat = part["latency_ms"]
        table.add_row(
            name,
            f"{part['requests']:,}",
            f"{part['errors']:,}",
            f"{lat['p50']:.1f}",
            f"{lat['p95']:.1f}",
            f"{lat['p99']:.1f}",
            f"{part['queries_per_request']:.1f}",
            style=style,
        )

    for name, part in report["by_endpoint"].items():
        row(name, part)
    row("all", report, style="bold")
    console.print(table)
    errors = ", ".join(f"{k}: {v}" for k, v in report["errors_by_status"].items()) or "none"
    console.print(
        f"{report['users']} users, {report['duration_s']:g} s: {report['throughput_rps']:,.1f} requests/s, "
        f"errors {errors}",
        highlight=False,
    )
    if "cache" in report:  # what the caches served, per level (pgferry.runtime.cache)
        rates = report["cache"]["hit_rate"]
        shown = ", ".join(f"{level} {rate:.0%}" for level, rate in rates.items() if rate is not None)
        workers = report["cache"]["workers"]
        console.print(f"cache hit rate ({workers} workers, from cold): {shown or 'no lookups'}", highlight=False)
    if "reads" in report:  # where the traffic's reads went: the replica, or the primary
        where = ", ".join(f"{target} {n:,}" for target, n in sorted(report["reads"].items()))
        console.print(f"reads: {where or 'none'}", highlight=False)


def print_live(console: Console, run: Any) -> None:
    """The live migration's steps, what writers waited, and the errors users saw (none, or each)."""
    from pgferry.cli_switch import render_attempt

    console.print(f"pgferry migrate start: copied while users wrote in {run.copy_s:.1f} s, then followed")
    for switch in run.switches:
        for attempt in switch.attempts:
            console.print(f"pgferry migrate {switch.step}: {render_attempt(attempt)}")
        if switch.step == "rollback":
            detail = switch.detail
            console.print(
                f"pgferry migrate rollback: writers paused {detail['pause_s'] * 1000:.1f} ms; "
                f"{detail['drained']:,} changes drained under the lock, {detail['applied_before']:,} before it"
            )
    pauses = run.writer_pauses
    if pauses.get("count"):
        console.print(
            f"writers that waited: {pauses['count']}, p50 {pauses['p50_ms']:.1f} ms, p99 {pauses['p99_ms']:.1f} ms, "
            f"max {pauses['max_ms']:.1f} ms"
        )
        histogram = pauses.get("histogram_ms", {})
        console.print("  pause histogram (ms): " + ", ".join(f"{bucket}: {n}" for bucket, n in histogram.items()))
    console.print(f"{run.traffic.requests:,} requests, {len(run.errors)} errors; the forum's route is now {run.route}")
    for sample in run.errors[:5]:
        console.print(f"  error: {sample.endpoint} -> {sample.status} after {sample.ms:.0f} ms")
    lost = run.not_as_acknowledged
    console.print(
        f"{run.acknowledged:,} acknowledged writes read back: "
        + ("every one as acknowledged" if not lost else f"{len(lost):,} not as acknowledged")
    )
    for problem in lost[:5]:
        console.print(f"  [red]{problem}[/red]")
    sides = {True: "identical", False: "[red]different[/red]", None: "not compared"}[run.identical]
    console.print(f"SQLite and PostgreSQL once the traffic stopped: {sides}")
