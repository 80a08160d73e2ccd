"""Split the forum's `users` table on the scale-1 database: bytes and read times before and after.

Works on a copy of the database (the source is never touched): `pgferry.split.propose` then
`apply_split`, which measures the table and its indexes (dbstat) and times reads before and after in
the same run, so every figure is a ratio against its own baseline. Two sets of reads: the library's
representative ones (no workload) and a small synthetic workload of statements a forum runs on users
(login lookup by username, profile by id, newest members); then --revert, timed and checked.

    .venv/bin/forum seed --scale 1 --seed 42 --out /tmp/forum1.db   # about 5 s; reused when present
    .venv/bin/python bench/split_forum.py --db /tmp/forum1.db
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from pgferry.split import propose
from pgferry.split.apply import apply_split
from pgferry.split.revert import revert_split
from pgferry.workload import Statement


def workload(db: Path) -> list[Statement]:
    """Hot reads a forum runs on users, with parameters taken from the data."""
    conn = sqlite3.connect(db)
    try:
        name, uid = conn.execute("SELECT username, id FROM users WHERE id = (SELECT max(id) / 2 FROM users)").fetchone()
    finally:
        conn.close()
    login = Statement("SELECT id, password_hash, status FROM users WHERE username = ?", [name], ms=0.05)
    profile = Statement("SELECT * FROM users WHERE id = ?", [uid], ms=0.04)
    newest = Statement("SELECT id, username, created_at FROM users ORDER BY created_at DESC LIMIT 50", None, ms=0.3)
    active = Statement("SELECT count(*) FROM users WHERE status = ? AND email_verified = 1", ["active"], ms=2.0)
    return [login] * 50 + [profile] * 30 + [newest] * 10 + [active] * 5


def run(db: Path, hot: bool) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        copy = Path(tmp) / "forum.db"
        shutil.copyfile(db, copy)
        statements = workload(copy) if hot else None
        plan = propose(copy, "users", workload=statements)
        report = apply_split(copy, plan)
        reverted = revert_split(copy, "users")
        out = report.to_dict()
        return {
            "reads": "workload" if hot else "representative",
            "rows": out["rows"],
            "split_seconds": out["seconds"],
            "revert_seconds": round(reverted.seconds, 3),
            "size": {k: out["size"][k]["total_bytes"] for k in ("before", "after")} | {"ratio": out["size"]["ratio"]},
            "core_table_bytes": out["size"]["after"]["objects"]["users_core"],
            "old_table_bytes": out["size"]["before"]["objects"]["users"],
            "tables": out["rows_per_table"],
            "reads_ms": out["reads"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/forum1.db"))
    args = parser.parse_args()
    if not args.db.exists():
        forum = Path(sys.executable).with_name("forum")
        subprocess.run([str(forum), "seed", "--scale", "1", "--seed", "42", "--out", str(args.db)], check=True)
    for hot in (False, True):
        print(json.dumps(run(args.db, hot), indent=1))


if __name__ == "__main__":
    main()
