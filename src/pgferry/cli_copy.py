"""`pgferry copy` and `pgferry verify`: thin commands over pgferry.migrate."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pgferry.clitools import emit_json, handle_errors, json_option

if TYPE_CHECKING:
    from pgferry.migrate.options import CopyOptions


# How the copy shapes the target (names, types, chunks, workers): `copy` and `migrate start` share them.
SHAPING_OPTIONS = [
    click.option("--schema", default="public", show_default=True, help="Target schema (created when missing)."),
    click.option(
        "--jobs",
        type=click.IntRange(1, 64),
        help="Parallel workers (PostgreSQL connections) for data, index builds and the verify "
        "[default: CPUs + 1, at most 8].",
    ),
    click.option(
        "--cast",
        "cast_file",
        type=click.Path(dir_okay=False),
        help='TOML file overriding types: [columns] "table.column" = "type", [types] "DECLARED" = "type".',
    ),
    click.option("--keep-case", is_flag=True, help="Keep identifiers' case instead of folding plain names."),
    click.option(
        "--chunk-rows",
        type=click.IntRange(1, 10_000_000),
        default=20_000,
        show_default=True,
        help="Rows per chunk: each chunk commits with its checkpoint.",
    ),
    click.option(
        "--full-census",
        is_flag=True,
        help="Type big tables from a census of every row before copying, instead of from a sample "
        "checked row by row as the copy goes (slower; --dry-run always takes the full census).",
    ),
    click.option(
        "--framework",
        type=click.Choice(["auto", "none", "django", "sqlalchemy", "rails"]),
        default="auto",
        show_default=True,
        help="Use the PostgreSQL types this framework gives its fields (Django's numeric, uuid, timestamptz, "
        "...); auto detects it from its migration tables, none uses the generic choices.",
    ),
    click.option(
        "--into-existing",
        is_flag=True,
        help="Fill the tables the target schema already has (made by the application's framework: manage.py "
        "migrate, alembic upgrade head): match tables and columns by name, convert every value to the target "
        "column's type; create, drop and disable nothing. With --dry-run: print the mapping (needs POSTGRES_DSN).",
    ),
    click.option(
        "--truncate-existing",
        is_flag=True,
        help="With --into-existing: empty target tables that already hold rows (Django's migrate fills "
        "django_migrations, django_content_type, auth_permission) in one TRUNCATE first, instead of refusing.",
    ),
    click.option(
        "--partition",
        "partitions",
        multiple=True,
        metavar="TABLE=COLUMN:UNIT",
        help="Make TABLE PARTITION BY RANGE (COLUMN), a date or time column, one partition per month, week or day "
        "for the data's span and --partition-ahead past now, and a DEFAULT partition for NULLs and the rest. "
        "Repeatable. Refused when a primary key or unique constraint lacks COLUMN (see --partition-widen-keys).",
    ),
    click.option(
        "--partition-widen-keys",
        is_flag=True,
        help="Add the partition column to the partitioned tables' primary key and unique constraints instead of "
        "refusing (reported: each then enforces uniqueness together with the column only; foreign keys to the "
        "old key are not carried).",
    ),
    click.option(
        "--partition-ahead",
        type=click.IntRange(0, 1000),
        default=3,
        show_default=True,
        help="Partitions made past the one holding now.",
    ),
]


def shaping_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add SHAPING_OPTIONS to a command (passed as schema, jobs, cast_file, keep_case, chunk_rows,
    full_census, framework, into_existing, truncate_existing, partitions, partition_widen_keys,
    partition_ahead)."""
    for option in reversed(SHAPING_OPTIONS):
        command = option(command)
    return command


def shaped_options(jobs: int | None, cast_file: str | None, **shape: Any) -> CopyOptions:
    """The CopyOptions of SHAPING_OPTIONS' values (and any other CopyOptions field given)."""
    from pgferry.migrate.options import CopyOptions, default_jobs

    return CopyOptions(jobs=jobs or default_jobs(), casts_file=cast_file, **shape)


@click.command("copy")
@click.argument("sqlite_path", type=click.Path(path_type=Path))
@click.argument("postgres_dsn", required=False)
@shaping_options
@click.option("--resume", is_flag=True, help="Finish an interrupted copy from its checkpoints.")
@click.option(
    "--on-error",
    type=click.Choice(["stop", "reject"]),
    default="stop",
    show_default=True,
    help="On a value PostgreSQL cannot hold: stop naming it, or write the row to --reject-file.",
)
@click.option(
    "--reject-file",
    type=click.Path(dir_okay=False),
    help="Where --on-error reject writes whole rows (JSONL; put back with restore-rejects).",
)
@click.option(
    "--native-plan",
    type=click.Path(dir_okay=False),
    help="Carry out a native-schema plan (written by `pgferry advise --native-plan-out`, edited): its partitions "
    "as --partition does, BRIN and pg_trgm indexes built after the data, CHECK value lists, enum types.",
)
@click.option("--dry-run", is_flag=True, help="Print the DDL with a comment on every choice; copy nothing.")
@click.option("--no-verify", is_flag=True, help="Skip the verification that runs after the copy.")
@json_option("the report")
@handle_errors
def copy_command(
    sqlite_path: Path,
    postgres_dsn: str | None,
    schema: str,
    jobs: int | None,
    resume: bool,
    cast_file: str | None,
    on_error: str,
    reject_file: str | None,
    keep_case: bool,
    chunk_rows: int,
    full_census: bool,
    framework: str,
    into_existing: bool,
    truncate_existing: bool,
    partitions: tuple[str, ...],
    partition_widen_keys: bool,
    partition_ahead: int,
    native_plan: str | None,
    dry_run: bool,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Copy every table of SQLITE_PATH into the PostgreSQL database POSTGRES_DSN.

    \b
    The source is opened read-only and read in one snapshot. Types come from the
    declared types and a census of the data (of a sample for tables above 10,000
    rows: every value is checked as it is copied, and a table whose sample missed
    something is re-planned from a full census and copied again). Nothing is
    dropped silently: objects that do not translate are listed in the report. A
    killed copy resumes with --resume. A Django, SQLAlchemy (Alembic) or Rails
    file gets the types its framework uses on PostgreSQL (--framework). With
    --into-existing the copy fills the tables the framework made instead (see
    docs/copy.md). Exit codes: 0 copied (and verified), 1 verification found
    differences or rows were rejected, 2 error.
    """
    from pgferry.migrate.ddl import dry_run_sql
    from pgferry.migrate.run import copy_and_verify
    from pgferry.migrate.source import open_source

    options = shaped_options(
        jobs,
        cast_file,
        schema=schema,
        resume=resume,
        on_error=on_error,
        reject_file=reject_file,
        keep_case=keep_case,
        chunk_rows=chunk_rows,
        full_census=full_census,
        framework=framework,
        into_existing=into_existing,
        truncate_existing=truncate_existing,
        partitions=partitions,
        partition_widen_keys=partition_widen_keys,
        partition_ahead=partition_ahead,
        native_plan=native_plan,
    )
    if dry_run and into_existing:
        from pgferry.migrate.existing import mapping_text
        from pgferry.migrate.run import plan_into_existing

        if not postgres_dsn:
            raise click.UsageError("--dry-run --into-existing reads the target's tables: give POSTGRES_DSN")
        click.echo(mapping_text(plan_into_existing(sqlite_path, postgres_dsn, options)), nl=False)
        return
    if dry_run:
        source = open_source(sqlite_path, options)
        click.echo(dry_run_sql(source.plan, source.schema), nl=False)
        return
    if not postgres_dsn:
        raise click.UsageError("POSTGRES_DSN is required (except with --dry-run)")
    from pgferry.bars import event_bars

    with event_bars(not as_json) as bars:
        job = copy_and_verify(sqlite_path, postgres_dsn, options, verify=not no_verify, events=bars)
    report, verdict = job.copy, job.verify
    if as_json:
        emit_json({**report.as_dict(), "verify": None if verdict is None else verdict.as_dict()})
    else:
        from rich.console import Console

        from pgferry.console import render_copy, render_verify

        console = Console()
        render_copy(report, console)
        if verdict is not None:
            render_verify(verdict, console)
    if not job.identical:
        sys.exit(1)


@click.command("verify")
@click.argument("sqlite_path", type=click.Path(path_type=Path))
@click.argument("postgres_dsn")
@click.option("--schema", default="public", show_default=True, help="Schema the copy went to.")
@click.option("--keep-case", is_flag=True, help="The copy was made with --keep-case.")
@click.option("--cast", "cast_file", type=click.Path(dir_okay=False), help="The --cast file the copy used.")
@click.option("--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="Tables compared at once.")
@json_option()
@handle_errors
def verify_command(
    sqlite_path: Path,
    postgres_dsn: str,
    schema: str,
    keep_case: bool,
    cast_file: str | None,
    jobs: int,
    as_json: bool,
) -> None:
    """Compare SQLITE_PATH with its copy in POSTGRES_DSN: counts, chunk checksums, differing rows.

    Exit 0 when identical, 1 with the differing tables and keys otherwise, 2 on error.
    """
    from pgferry.bars import event_bars
    from pgferry.migrate.verify import verify_copy

    with event_bars(not as_json) as bars:
        report = verify_copy(
            sqlite_path,
            postgres_dsn,
            schema=schema,
            keep_case=keep_case,
            casts_file=cast_file,
            jobs=jobs,
            events=bars,
        )
    if as_json:
        emit_json(report.as_dict())
    else:
        from rich.console import Console

        from pgferry.console import render_verify

        render_verify(report, Console())
    if not report.identical:
        sys.exit(1)


@click.command("restore-rejects")
@click.argument("reject_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("postgres_dsn")
@click.option("--schema", default="public", show_default=True, help="Schema the copy went to.")
@json_option()
@handle_errors
def restore_rejects_command(reject_file: Path, postgres_dsn: str, schema: str, as_json: bool) -> None:
    """Insert the rows of REJECT_FILE (written by copy --on-error reject, fixed by hand) into the copy.

    \b
    Each row is rendered as the copy would have rendered it (the plan stored in
    the target) and written in its own transaction; then the foreign keys the
    rejects left NOT VALID are validated. Exit 0 when every row went in and
    every foreign key is valid, 1 otherwise (the rows and keys are listed), 2 on error.
    """
    from pgferry.migrate.restore import restore_rejects

    report = restore_rejects(reject_file, postgres_dsn, schema)
    if as_json:
        emit_json(report.as_dict())
    else:
        from rich.console import Console

        from pgferry.console import render_restore

        render_restore(report, Console())
    if not report.complete:
        sys.exit(1)
