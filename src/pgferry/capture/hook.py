"""The cutover's hook: a command that points an application that does not use pgferry.runtime at
PostgreSQL, run after PostgreSQL took the route and before SQLite's commit (docs/migrate.md, "Cutover")."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path


def _hook_stdout() -> int | None:
    """The hook writes to this process's stderr: stdout is the command's report (`--json` stays parseable)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def run_hook(command: str, path: Path, dsn: str, schema: str, timeout_s: float) -> str | None:
    """Run `command` with PGFERRY_SQLITE, PGFERRY_DSN and PGFERRY_SCHEMA set; why it failed, or None."""
    env = {**os.environ, "PGFERRY_SQLITE": str(path), "PGFERRY_DSN": dsn, "PGFERRY_SCHEMA": schema}
    try:
        done = subprocess.run(command, shell=True, env=env, timeout=timeout_s, check=False, stdout=_hook_stdout())
    except subprocess.TimeoutExpired:
        return f"the hook ran longer than {timeout_s:g} s"
    return f"the hook exited with {done.returncode}" if done.returncode != 0 else None
