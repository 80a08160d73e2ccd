"""Helpers shared by the command-line front ends (pgferry's and the forum's): one error shape, one JSON shape."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from pgferry.errors import PgferryError

DRIVERS = {"sqlite3": "SQLite", "psycopg": "PostgreSQL", "psycopg_pool": "PostgreSQL"}


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a PgferryError into one line, `Error: <message>`, and the error's exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PgferryError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"Error: {message}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            # Last resort for database errors no layer above turned into a PgferryError (a corrupt page
            # met deep inside a command, a server that went away): one line, not a traceback.
            origin = type(exc).__module__.split(".")[0]
            if origin not in DRIVERS:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"Error: {DRIVERS[origin]} said: {first}", err=True)
            sys.exit(2)

    return wrapper


def json_option(what: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The `--json` flag every command has (passed as `as_json`); `what` says what the object holds."""
    holds = f" ({what})" if what else ""
    return click.option("--json", "as_json", is_flag=True, help=f"Print one JSON object{holds} instead of text.")


def emit_json(payload: Any) -> None:
    """Print exactly one JSON object on stdout (for scripts)."""
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))
