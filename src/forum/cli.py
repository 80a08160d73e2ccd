"""The `forum` command: the reference community platform pgferry is built and measured on.

Thin: each command parses its options, makes one library call and renders the result (rich text,
or one JSON object with --json). Library errors become one line, `Error: ...`, and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from forum import __version__
from forum.render import print_comparison, print_live, print_traffic
from pgferry.bars import event_bars
from pgferry.clitools import emit_json, handle_errors, json_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forum")
def main() -> None:
    """forum: a community platform (users, forum, wiki, sessions, notifications) on SQLite.

    \b
    It is pgferry's demo and workload: `forum seed` writes a legacy database with
    the defects of the migration plan (missing and redundant indexes, a 42-column
    users table, text timestamps, JSON as text) at any scale.
    """


@main.command()
@click.option(
    "--scale",
    default="1",
    show_default=True,
    metavar="S",
    help="Size: 1 is about 1,000,000 rows (600,000 replies); more than 0, at most 100.",
)
@click.option(
    "--seed",
    "seed_text",
    default="42",
    show_default=True,
    metavar="N",
    help="Random seed. The same scale and seed give the same database (identical .dump).",
)
@click.option("--out", metavar="PATH", help="Database file to write (refused if it exists, unless --force).")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option(
    "--describe",
    is_flag=True,
    help="List the planted defects; with --out, after seeding, with the database as read back.",
)
@json_option()
@handle_errors
def seed(scale: str, seed_text: str, out: str | None, force: bool, describe: bool, as_json: bool) -> None:
    """Write a legacy forum SQLite database with the migration plan's defects planted.

    \b
    Examples:
      forum seed --scale 0.1 --seed 42 --out forum.db      about 100,000 rows
      forum seed --describe --scale 0.1                    what it plants, without writing
      forum seed --scale 0.1 --out forum.db --force --describe --json
    """
    from forum import seed as lib

    size, seed_value = lib.parse_scale(scale), lib.parse_seed(seed_text)
    if out is None and not describe:
        raise click.ClickException("nothing to do: give --out PATH to write a database, or --describe")
    payload: dict[str, Any] = {}
    console = Console()
    if out is not None:
        with event_bars() as bars:
            report = lib.generate(out, size, seed_value, force=force, events=bars)
        payload["report"] = {
            **asdict(report),
            "total_rows": report.total_rows,
            "rows_per_second": round(report.rows_per_second),
        }
        if not as_json:
            _print_report(console, report)
    if describe:
        defects = lib.describe(size)
        payload["redundant_indexes"] = lib.defect_counts(defects)
        payload["defects"] = [asdict(d) for d in defects]
        if out is not None:
            summary = lib.summarize(out)
            payload["database"] = asdict(summary)
            if not as_json:
                _print_summary(console, summary)
        if not as_json:
            _print_defects(console, defects, lib.defect_counts(defects))
    if as_json:
        emit_json(payload)


def _print_report(console: Console, report: Any) -> None:
    console.print(
        f"Wrote {report.path}: {report.total_rows:,} rows in {len(report.rows)} tables, "
        f"{report.indexes} indexes, {report.bytes / 2**20:.1f} MiB in {report.seconds:.1f} s "
        f"({report.rows_per_second:,.0f} rows/s), scale {report.scale:g}, seed {report.seed}",
        highlight=False,
    )


def _print_summary(console: Console, summary: Any) -> None:
    console.print(f"[b]{summary.path}[/b], as read back from the file:")
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.tables.items():
        table.add_row(name, f"{rows:,}")
    table.add_row("[b]total[/b]", f"[b]{summary.total_rows:,}[/b]")
    console.print(table)
    console.print(
        f"{summary.indexes} indexes (+{summary.automatic_indexes} automatic), journal_mode={summary.journal_mode}, "
        f"sqlite_stat1 {'present' if summary.has_statistics else 'absent'}, users has {summary.users_columns} columns, "
        f"{summary.bytes / 2**20:.1f} MiB",
        highlight=False,
    )


def _print_defects(console: Console, defects: list[Any], counts: dict[str, int]) -> None:
    redundant = [d for d in defects if d.kind == "redundant_index"]
    table = Table(title=f"Planted: {len(redundant)} redundant indexes", title_justify="left")
    for column, justify in (
        ("category", "left"),
        ("count", "right"),
        ("for example", "left"),
        ("redundant with", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for category, count in counts.items():
        example = next(d for d in redundant if d.category == category)
        table.add_row(category, str(count), example.name, example.detail)
    console.print(table)
    missing = Table(title="Missing: the plan's Day 1-2 indexes (no index leads like them)", title_justify="left")
    for column in ("index", "table", "columns"):
        missing.add_column(column)
    for d in defects:
        if d.kind == "missing_index":
            missing.add_row(d.name, d.table, ", ".join(d.columns))
    console.print(missing)
    wide = next(d for d in defects if d.kind == "wide_table")
    families = Table(title=f"users: {wide.detail}", title_justify="left")
    families.add_column("family")
    families.add_column("columns")
    families.add_column("filled")
    for d in defects:
        if d.kind == "column_family":
            families.add_row(d.name, ", ".join(d.columns), d.detail.split(";")[0])
    console.print(families)
    other = Table(title="Storage and schema habits", title_justify="left")
    other.add_column("defect")
    other.add_column("detail")
    for d in defects:
        if d.kind not in ("redundant_index", "missing_index", "wide_table", "column_family"):
            other.add_row(d.kind + (f" ({d.table})" if d.table else ""), d.detail)
    console.print(other)


@main.command()
@click.argument("database", metavar="DB_OR_DSN")
@click.option(
    "--backend",
    type=click.Choice(["auto", "sqlite", "postgres"]),
    default="auto",
    show_default=True,
    help="auto: a postgresql:// DSN or a libpq key=value string is PostgreSQL, anything else a SQLite file "
    "(with --postgres: the file's migration route, sqlite / dual / postgres, is followed).",
)
@click.option(
    "--postgres",
    metavar="DSN",
    default=None,
    help="The PostgreSQL copy of the SQLite file: serve through pgferry's router, following the file's "
    "migration route (dual: SQLite answers, PostgreSQL runs every write and shadows reads).",
)
@click.option(
    "--shadow-sample",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Route dual: the share of reads also run on PostgreSQL and compared.",
)
@click.option(
    "--candidate-budget-ms",
    type=click.IntRange(1, 60_000),
    default=100,
    show_default=True,
    help="Route dual: PostgreSQL's time per statement (statement_timeout, pool wait); past it, recorded and skipped.",
)
@click.option(
    "--discrepancies",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help="Route dual: append every discrepancy (mismatch, candidate error or timeout) to FILE as JSON lines.",
)
@click.option(
    "--pool-size",
    type=click.IntRange(1, 1000),
    default=None,
    help="PostgreSQL: connections in the pool (default 20); SQLite legacy mode: the fixed pool (default 15).",
)
@click.option(
    "--pgbouncer",
    is_flag=True,
    help="PostgreSQL: the DSN is a PgBouncer in transaction pooling (1.18): no prepared statements, session "
    "state (SET, LISTEN, advisory locks) refused; set statement_timeout on the role or database.",
)
@click.option(
    "--replica",
    "replicas",
    multiple=True,
    metavar="DSN",
    help="PostgreSQL: a streaming replica of DB_OR_DSN for reads within the --max-lag bound (repeatable); "
    "a client reads its own writes (the db_position cookie).",
)
@click.option(
    "--max-lag",
    "max_lag_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="S",
    help="With --replica: a replica further behind than this many seconds (by its heartbeat) serves no reads "
    "[default: 5].",
)
@click.option(
    "--mode",
    type=click.Choice(["legacy", "optimized"]),
    default="optimized",
    show_default=True,
    help="legacy: N+1 topic view, no transactions, OFFSET pages, rollback journal, no busy timeout. "
    "optimized: one-query topic view, BEGIN IMMEDIATE transactions, keyset pages, WAL per-thread connections.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--capture",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Append every SQL statement to FILE (workload log: request id, call site; secrets redacted).",
)
@click.option("--access-log", is_flag=True, help="Log every request (off by default: it costs throughput).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes on one port, each with its own connections (--pool-size is per worker); "
    "with --capture they all append to FILE.",
)
@click.option(
    "--busy-timeout-ms",
    type=click.IntRange(0, 600_000),
    default=None,
    help="Override the mode's busy timeout (legacy: 0, optimized: 10000), to measure what it alone changes.",
)
@click.option(
    "--cache",
    "cache",
    is_flag=True,
    help="Cache the topic list, topic view, category stats and wiki pages in each process (L1; with one worker: "
    "its invalidations reach only its own process). On PostgreSQL the category stats come from the forum_stats "
    "materialized view (L3).",
)
@click.option(
    "--redis",
    metavar="URL",
    default=None,
    help="Redis for the shared cache level (L2) and invalidations across processes (implies --cache): "
    "redis://127.0.0.1:6379/0. Redis down: served from the database.",
)
@click.option(
    "--stats-refresh-s",
    type=click.FloatRange(0.1, 86_400),
    default=30.0,
    show_default=True,
    help="With the caches on PostgreSQL: how often each process refreshes the forum_stats view.",
)
@handle_errors
def serve(
    database: str,
    backend: str,
    pool_size: int | None,
    pgbouncer: bool,
    replicas: tuple[str, ...],
    max_lag_s: float | None,
    mode: str,
    host: str,
    port: int,
    capture: str | None,
    access_log: bool,
    workers: int,
    busy_timeout_ms: int | None,
    postgres: str | None,
    shadow_sample: float,
    candidate_budget_ms: int,
    discrepancies: str | None,
    cache: bool,
    redis: str | None,
    stats_refresh_s: float,
) -> None:
    """Serve the forum's HTTP API on a database made by `forum seed`, or on the PostgreSQL
    database `pgferry copy` made of it.

    \b
    OpenAPI at /openapi.json (docs at /docs), health at /healthz, Prometheus metrics at
    /metrics (with --workers: the sum of all the workers, whichever answers). Every response
    carries Server-Timing: db;desc="queries=N";dur=MS.

    \b
    Examples:
      forum serve forum.db --mode legacy --port 8001
      forum serve forum.db --mode optimized --capture workload.jsonl
      forum serve postgresql://forum@127.0.0.1/forum --pool-size 20
      forum serve postgresql://forum@127.0.0.1:6432/forum --pgbouncer
      forum serve postgresql://forum@db1/forum --replica postgresql://forum@db2/forum
      forum serve forum.db --postgres postgresql://forum@127.0.0.1/forum --discrepancies dual.jsonl
      forum serve forum.db --workers 2                     two processes (/healthz names its pid)
      forum serve postgresql://forum@127.0.0.1/forum --workers 2 --redis redis://127.0.0.1:6379/0
    """
    from forum.web.serve import serve as run

    run(
        database,
        mode,
        host=host,
        port=port,
        capture=capture,
        access_log=access_log,
        busy_timeout_ms=busy_timeout_ms,
        backend=backend,
        pool_size=pool_size,
        pgbouncer=pgbouncer,
        replicas=replicas,
        max_lag_s=max_lag_s,
        postgres=postgres,
        dual={
            "shadow_sample": shadow_sample,
            "candidate_budget_ms": candidate_budget_ms,
            "discrepancy_log": discrepancies,
        },
        workers=workers,
        cache=cache,
        redis=redis,
        stats_every_s=stats_refresh_s,
    )


@main.command()
@click.option("--url", required=True, metavar="URL", help="The forum to load, on loopback: http://127.0.0.1:PORT.")
@click.option("--users", type=click.IntRange(1, 1000), default=10, show_default=True, help="Concurrent users.")
@click.option(
    "--duration",
    type=click.FloatRange(0, 3600, min_open=True),
    default=10.0,
    show_default=True,
    metavar="S",
    help="Seconds of measured load (sign-up before it is not counted).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of each user's choices.")
@click.option(
    "--think-ms",
    type=click.FloatRange(0, 60_000),
    default=0.0,
    show_default=True,
    help="Mean pause between a user's requests (exponential); 0 for a closed loop at full speed.",
)
@click.option("--max-requests", type=click.IntRange(1), default=None, help="Stop after this many requests in all.")
@click.option(
    "--timeline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every request to FILE as JSON lines (at, endpoint, ms, status): to see a cutover's pause.",
)
@json_option()
@handle_errors
def traffic(
    url: str,
    users: int,
    duration: float,
    seed: int,
    think_ms: float,
    max_requests: int | None,
    timeline: Path | None,
    as_json: bool,
) -> None:
    """Simulate forum users against a running `forum serve` and report throughput and latency.

    \b
    Each user signs up, then loops over a realistic mix: mostly topic views and
    lists (Zipf popularity), some replies, new topics, wiki reads and edits,
    notification checks. Statements per request come from the Server-Timing header.

    \b
    Examples:
      forum traffic --url http://127.0.0.1:8000 --users 50 --duration 15
      forum traffic --url http://127.0.0.1:8000 --users 10 --duration 5 --seed 7 --json
    """
    from forum.traffic import TrafficOptions, run_traffic

    opts = TrafficOptions(users, duration, seed, think_ms=think_ms, max_requests=max_requests, timeline=bool(timeline))
    ran = run_traffic(url, opts)
    if timeline is not None:
        timeline.write_text("".join(json.dumps(sample.to_dict()) + "\n" for sample in ran.timeline or ()))
    report = ran.to_dict()
    if as_json:
        emit_json(report)
    else:
        print_traffic(Console(), report)


@main.command()
@click.option("--scale", default="0.1", show_default=True, metavar="S", help="Size of the seeded database.")
@click.option("--seed", "seed_text", default="42", show_default=True, metavar="N", help="Random seed.")
@click.option(
    "--db",
    "database",
    default="demo/forum-legacy.db",
    show_default=True,
    metavar="PATH",
    help="Where the legacy database is written (overwritten).",
)
@click.option("--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="Copy workers.")
@click.option(
    "--traffic-users",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Simulated users in the traffic burst.",
)
@click.option(
    "--traffic-seconds",
    type=click.FloatRange(0, 600),
    default=4.0,
    show_default=True,
    help="Seconds of traffic per mode (0: skip the burst).",
)
@handle_errors
def demo(scale: str, seed_text: str, database: str, jobs: int, traffic_users: int, traffic_seconds: float) -> None:
    """Seed a legacy database, show its defects, copy it to PostgreSQL with pgferry, verify the copy,
    then serve the forum on it in legacy and optimized mode under the same traffic burst.

    \b
    Uses PGFERRY_DSN when set (into a new schema, forum_demo_<time>); otherwise a
    throwaway PostgreSQL cluster on 127.0.0.1 is started for the run and removed.
    The traffic runs on copies: the seeded file stays as seeded.
    """
    from pathlib import Path

    from forum import seed as lib
    from forum.demo import run_demo
    from pgferry.console import render_copy, render_verify

    console = Console()

    def up(what: str, url: str) -> None:  # printed while it is up: open it, or point Prometheus at it
        console.print(f"{what} at {url} (while this step runs)", soft_wrap=True, highlight=False, markup=False)

    result = run_demo(
        Path(database),
        lib.parse_scale(scale),
        lib.parse_seed(seed_text),
        jobs=jobs,
        traffic_users=traffic_users,
        traffic_seconds=traffic_seconds,
        on_up=up,
    )
    console.rule("1. the legacy database")
    _print_report(console, result.seed)
    _print_summary(console, lib.summarize(database))
    defects = lib.describe(result.seed.scale)
    _print_defects(console, defects, lib.defect_counts(defects))
    console.rule(f"2. pgferry copy -> {result.target}")
    render_copy(result.copy, console)
    console.rule("3. pgferry verify")
    render_verify(result.verify, console)
    if result.traffic:
        console.rule(f"4. the forum under traffic: {traffic_users} users, {traffic_seconds:g} s per mode")
        for mode, report in result.traffic.items():
            print_traffic(console, report, title=f"forum serve --mode {mode}")
        print_comparison(console, result.traffic["legacy"], result.traffic["optimized"])
    if result.on_postgres:
        console.rule(f"5. the forum on the PostgreSQL copy: {traffic_users} users, {traffic_seconds:g} s each")
        for setup, report in result.on_postgres.items():
            print_traffic(console, report, title=f"forum serve on {setup}")
    if result.live is not None:
        console.rule(f"6. a live migration: forum serve --postgres under {traffic_users} users")
        print_live(console, result.live)
    if not result.verify.identical or (result.live is not None and result.live.errors):
        sys.exit(1)
