"""Run a framework test project's steps in a subprocess (a framework configures itself once per
process), against a SQLite file or a PostgreSQL DSN."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

APPS = Path(__file__).parent


def project(name: str, into: Path) -> Path:
    """A copy of the project `name` under `into`, so a test can add the next migration to it."""
    target = into / name
    shutil.copytree(APPS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def run(
    project_dir: Path, step: str, database: str, timeout: float = 120, script: str = "run.py", **env_vars: str
) -> str:
    """Run `SCRIPT STEP` of the project (run.py by default) with PGFERRY_TEST_DB=database (and `env_vars`);
    its stdout, or an AssertionError with its output when it fails."""
    env = {**os.environ, "PGFERRY_TEST_DB": database, "PYTHONDONTWRITEBYTECODE": "1", **env_vars}
    done = subprocess.run(
        [sys.executable, script, step], cwd=project_dir, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{project_dir.name} {step} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def seeded(name: str, into: Path, db_name: str = "app.db", **env_vars: str) -> tuple[Path, Path]:
    """A copy of project `name` under `into` and the SQLite file its `seed` step wrote."""
    app = project(name, into)
    db = into / db_name
    run(app, "seed", f"sqlite:{db}", **env_vars)
    return app, db
