"""The `pgferry` command: a thin adapter over the library.

Each command parses its options, makes one library call and renders the result (text, or one JSON
object with --json). Library errors (PgferryError) become one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from pgferry import __version__
from pgferry.errors import PgferryError


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a PgferryError into `Error: <message>` and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PgferryError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def emit_json(payload: Any) -> None:
    """Print exactly one JSON object on stdout (for scripts)."""
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgferry")
def main() -> None:
    """pgferry: take an application off a struggling SQLite database and onto PostgreSQL.

    \b
    Commands work on any SQLite file. The workload commands read a log of the
    statements an application ran (JSON Lines, see docs/workload-format.md, or a
    plain .sql file) and group them by fingerprint.
    """


@main.group()
def workload() -> None:
    """Read captured workloads: statements an application ran, with timings."""
