"""Helpers shared by the command-line front ends (pgferry's and the forum's): one error shape, one JSON shape."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from pgferry.errors import PgferryError


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

    return wrapper


def emit_json(payload: Any) -> None:
    """Print exactly one JSON object on stdout (for scripts)."""
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))
