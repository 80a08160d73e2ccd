"""Rich renderings of pgferry's reports, shared by the `pgferry` and `forum` commands (the library
returns data; this is how a terminal shows it)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pgferry.capture.keys import CaptureKey
from pgferry.capture.liveverify import PassReport
from pgferry.capture.status import MigrationStatus
from pgferry.capture.verifystate import KINDS
from pgferry.migrate.chunked import HeldBack
from pgferry.migrate.fkeys import UnvalidatedKey
from pgferry.migrate.report import CopyReport
from pgferry.migrate.restore import RestoreReport
from pgferry.migrate.verify import VerifyReport


def render_copy(report: CopyReport, console: Console) -> None:
    """What was copied, how fast, which types differ from the declared ones, what was not carried."""
    rate = f"{report.rows / report.seconds:,.0f}" if report.seconds else "-"
    console.print(
        f"copied {report.rows:,} rows from {escape(report.source)} to {escape(report.target)} "
        f"(schema {report.schema}) in {report.seconds:.2f} s, {rate} rows/s"
    )
    console.print("phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in report.phases.items()))
    console.print(f"snapshot: {report.snapshot}")
    framework = report.plan.framework if report.plan is not None else None
    if framework:
        console.print(f"framework: {framework['name']} ({framework['evidence']}): the types it uses on PostgreSQL")
    for line in report.notes:
        console.print(f"into existing tables: {escape(line)}")
    notes = [c for c in report.choices if c["note"]]
    if notes:
        console.print("[yellow]type choices that differ from the declared type:[/yellow]")
        for c in notes:
            console.print(f"  {escape(c['table'])}.{escape(c['column'])} -> {c['type']}: {escape(c['note'])}")
    for rename in report.renamed:
        owner = f"{escape(rename.table)}." if rename.table else ""
        why = f": {escape(rename.reason)}" if rename.reason else ""
        console.print(
            f"[yellow]renamed[/yellow] {rename.kind} {owner}{escape(rename.source)} -> {escape(rename.target)}{why}"
        )
    for replan in report.replanned:
        what = ", ".join(replan.changes) if replan.changes else "the full census kept the sampled types"
        console.print(
            f"[yellow]re-planned[/yellow] {escape(replan.table)} (its sample missed a value: "
            f"{escape(replan.refused)}): {escape(what)}"
        )
    for item in report.skipped + report.not_carried:
        console.print(f"[yellow]not carried[/yellow] {item.kind} {escape(item.name)}: {escape(item.reason)}")
    if report.rejected:
        console.print(
            f"[red]{report.rejected} rows rejected[/red] (whole rows in the reject file; fix them there, then "
            "`pgferry restore-rejects FILE DSN`): the copy is not identical"
        )
    render_unvalidated(report.unvalidated, console)


def render_held_back(held: HeldBack, console: Console) -> None:
    """The UNIQUE indexes and foreign keys a chunked copy left for catch-up, built once it caught up."""
    console.print(
        f"caught up: built the {held.built} UNIQUE indexes and foreign keys the copy held back "
        "(rows read at different instants may break them until catch-up)"
    )
    for item in held.skipped:
        console.print(f"[yellow]not carried[/yellow] {item.kind} {escape(item.name)}: {escape(item.reason)}")
    render_unvalidated(held.unvalidated, console)


def render_unvalidated(keys: list[UnvalidatedKey], console: Console) -> None:
    """Foreign keys added NOT VALID: which child rows violate them, and what to run once they are fixed."""
    for key in keys:
        console.print(
            f"[yellow]foreign key {escape(key.constraint)} added NOT VALID[/yellow]: {key.rows} rows of "
            f"{escape(key.table)} point at no row of {escape(key.references)} "
            f"({escape(', '.join(key.key_columns))}: {escape(str(key.keys))}); new writes are checked; "
            f"after fixing them run: {escape(key.validate_sql)}"
        )


def render_restore(report: RestoreReport, console: Console) -> None:
    """Rows restored per table, rows still refused, foreign keys validated or still violated."""
    for table, rows in report.restored.items():
        console.print(f"restored {rows} rows into {escape(table)}")
    for item in report.failed:
        console.print(
            f"[red]not restored[/red] line {item['line']}, table {escape(item['table'])}, key "
            f"{escape(str(item['key']))}: {escape(item['problem'])}"
        )
    for name in report.validated:
        console.print(f"[green]validated[/green] foreign key {escape(name)}")
    render_unvalidated(report.violated, console)


def render_verify(report: VerifyReport, console: Console) -> None:
    """One row per table: counts, chunks compared, identical or the differing keys."""

    table = Table(title=f"verify {escape(report.source)} -> {escape(report.target)} (schema {report.schema})")
    for name in ("table", "source rows", "target rows", "chunks", "result"):
        table.add_column(name, justify="right" if "rows" in name or name == "chunks" else "left")
    for t in report.tables:
        result = (
            "[green]identical[/green]"
            if t.identical
            else (
                f"[red]differs[/red] missing={t.missing_in_target} extra={t.extra_in_target} "
                f"keys={escape(str(t.differing_keys[:5]))}"
                + (f" columns={escape(', '.join(sorted(t.differing_columns)))}" if t.differing_columns else "")
            )
        )
        table.add_row(escape(t.table), f"{t.source_rows:,}", f"{t.target_rows:,}", str(t.chunks), result)
    console.print(table)


def render_live_verify(report: PassReport, console: Console) -> None:
    """A `migrate verify` pass: what it compared, then each failure that outlived the lag."""
    verdict = "[green]identical[/green]" if report.identical else "[red]differences[/red]"
    console.print(
        f"migrate verify ({report.mode}) {escape(report.source)} -> {escape(report.target)} "
        f"(schema {escape(report.schema)}): {verdict}; {report.keys_checked:,} keys compared"
        + (f" and {report.chunks:,} chunks" if report.chunks else "")
        + f", {report.seen} differences met, {report.cleared} cleared"
    )
    for failure in report.failures:
        columns = f" (columns {escape(', '.join(failure.columns))})" if failure.columns else ""
        console.print(
            f"[red]{escape(failure.table)}[/red] key {escape(str(list(failure.key)))}: "
            f"{KINDS[failure.kind]}{columns}, first seen {failure.first_seen:%H:%M:%S}"
        )
    if report.unsettled:
        console.print(
            f"[yellow]{len(report.unsettled)} differences not settled[/yellow]: the applier has not passed the "
            "changes seen with them; run `pgferry migrate follow` and verify again"
        )


def render_captured(keys: list[CaptureKey], console: Console) -> None:
    """The key change capture logs for each table."""
    for key in keys:
        console.print(f"captured {escape(key.table)} by {escape(key.how)}")


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def render_migration(status: MigrationStatus, console: Console) -> None:
    """Phase, lag, throughput and sizes of a live migration, one line each."""
    running = "applier running" if status.applier_running else "applier not running"
    console.print(
        f"migration {escape(status.source)} -> {escape(status.target)} (schema {escape(status.schema)}): "
        f"[bold]{status.phase}[/bold], {running}" + (f", {status.mode} mode" if status.mode else "")
    )
    lag_s = "-" if status.lag_seconds is None else f"{status.lag_seconds:.1f} s"
    rate = "-" if status.applied_per_s is None else f"{status.applied_per_s:,.0f}/s"
    console.print(
        f"lag: {status.lag_changes:,} changes, at most {lag_s}; applied {status.applied_changes:,} changes ({rate}); "
        f"position {_or_dash(status.applied_seq)} of {status.newest_seq} (watermark {_or_dash(status.watermark)})"
    )
    console.print(
        f"changelog: {status.changelog_entries:,} entries; {status.captured_tables} tables captured; "
        f"journal mode {status.journal_mode}, WAL {status.wal_bytes:,} bytes"
    )
    verify = status.verify
    if verify is not None:
        last = "never" if verify.last_pass is None else f"{verify.last_pass:%Y-%m-%d %H:%M:%S} ({verify.mode})"
        console.print(
            f"verify: last pass {last}, {verify.keys_checked:,} keys checked in {verify.passes} passes; "
            f"{verify.open_failures} open failures, {verify.suspects} waiting out the lag"
        )
    for table, note in (status.rebuilt or {}).items():
        rows = f", {note['rows']:,} rows copied again" if "rows" in note else ""
        console.print(
            f"table {escape(table)} rebuilt under capture: {escape(str(note.get('state')))}{rows} ({note.get('at')})"
        )
    towards = "PostgreSQL -> SQLite" if status.direction == "reverse" else "SQLite -> PostgreSQL"
    console.print(f"route: [bold]{status.route}[/bold], following {towards}")
    if status.reverse_lag_changes is not None:
        reverse_s = "-" if status.reverse_lag_seconds is None else f"{status.reverse_lag_seconds:.1f} s"
        console.print(
            f"reverse: {status.reverse_lag_changes:,} changes not yet in SQLite, at most {reverse_s}; "
            f"reverse changelog {status.reverse_changelog_bytes or 0:,} bytes"
        )
    if status.strays is not None and status.strays.count:
        console.print(
            f"[red]stray writes[/red]: {escape(status.strays.describe())} committed to SQLite since the cutover; "
            "their rows are in SQLite only (`pgferry migrate rollback` carries them to PostgreSQL)"
        )
    if status.constraints == "pending":
        console.print(
            "constraints: the copy's UNIQUE indexes and foreign keys are built once following has caught up "
            "(`pgferry migrate follow` does it); a cutover waits for them"
        )
    if status.rollback_unfinished:
        console.print("[red]a rollback was killed after its flip[/red]: run `pgferry migrate rollback` again")
    if status.last_error:
        console.print(f"[red]last error[/red]: {escape(status.last_error)}")
