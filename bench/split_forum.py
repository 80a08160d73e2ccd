"""Split the forum's `users` table on the scale-1 database: bytes, read times and write cost.

Works on a copy of the database (the source is never touched): `pgferry.split.propose` then
`apply_split`, which measures the table and its indexes (dbstat) and times reads before and after in
the same run, so every figure is a ratio against its own baseline. Two sets of reads: the library's
representative ones (no workload) and a small synthetic workload of statements a forum runs on users
(login lookup by username, profile by id, newest members). Then the write cost of the transition (the
expand stage, where triggers keep the wide table and its side tables in step): single-row UPDATEs of a
moved column, of a core column, and INSERTs, each timed on the unsplit copy and on the split one in
the same run, alternating, as a ratio; then --revert, timed.

    .venv/bin/forum seed --scale 1 --seed 42 --out /tmp/forum1.db   # about 5 s; reused when present
    .venv/bin/python bench/split_forum.py --db /tmp/forum1.db
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
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


WRITES = 2_000  # per kind and side, in rounds of ROUND, alternating sides
ROUND = 200


def _write_kinds(
    conn: sqlite3.Connection, moved: str, core: str, tag: str
) -> dict[str, tuple[str, list[list[object]]]]:
    """Three write shapes an application runs on users, with their parameters (ids from the data)."""
    low, high = conn.execute("SELECT min(id), max(id) FROM users").fetchone()
    ids = [low + (i * 7919) % (high - low + 1) for i in range(WRITES)]
    columns = [r[1] for r in conn.execute("SELECT * FROM pragma_table_info('users')") if r[3] and r[1] != "id"]
    sample = conn.execute(f"SELECT {', '.join(columns)} FROM users LIMIT 1").fetchone()  # NOT NULL columns
    unique = {
        r[2]
        for i in conn.execute("PRAGMA index_list('users')")
        if i[2]
        for r in conn.execute(f"PRAGMA index_info('{i[1]}')")
    }
    marks = ", ".join("?" * len(columns))
    inserts = [
        [f"bench-{tag}{i}-{v}" if c in unique else v for c, v in zip(columns, sample, strict=True)]
        for i in range(WRITES)
    ]
    return {
        "update_moved": (f'UPDATE users SET "{moved}" = ? WHERE id = ?', [[f"v{i}", uid] for i, uid in enumerate(ids)]),
        "update_core": (f'UPDATE users SET "{core}" = "{core}" WHERE id = ?', [[uid] for uid in ids]),
        "insert": (f"INSERT INTO users ({', '.join(columns)}) VALUES ({marks})", inserts),
    }


def write_cost(plain: Path, split: Path, moved: str, core: str, batched: bool) -> dict[str, dict[str, float]]:
    """Median microseconds per write on the unsplit and the split file, rounds alternating between them,
    and their ratio: each write its own transaction (as an application's autocommit writes: the commit's
    fsync dominates), or `batched`, a round in one transaction (the triggers' own CPU cost shows)."""
    conns = {name: sqlite3.connect(path, isolation_level=None) for name, path in (("plain", plain), ("split", split))}
    kinds = _write_kinds(conns["plain"], moved, core, "b" if batched else "a")
    out = {}
    for kind, (statement, params) in kinds.items():
        times: dict[str, list[float]] = {"plain": [], "split": []}
        for start in range(0, WRITES, ROUND):
            for name, conn in conns.items():
                if batched:
                    conn.execute("BEGIN")
                for row in params[start : start + ROUND]:
                    t0 = time.perf_counter()
                    conn.execute(statement, row)
                    times[name].append(time.perf_counter() - t0)
                if batched:
                    conn.execute("COMMIT")
        plain_us, split_us = (statistics.median(times[n]) * 1e6 for n in ("plain", "split"))
        out[kind] = {
            "plain_us": round(plain_us, 1),
            "split_us": round(split_us, 1),
            "ratio": round(split_us / plain_us, 2),
        }
    for conn in conns.values():
        conn.close()
    return out


def run(db: Path, hot: bool) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        copy, plain = Path(tmp) / "forum.db", Path(tmp) / "plain.db"
        shutil.copyfile(db, copy)
        statements = workload(copy) if hot else None
        plan = propose(copy, "users", workload=statements)
        report = apply_split(copy, plan)
        out = report.to_dict()
        result = {
            "reads": "workload" if hot else "representative",
            "rows": out["rows"],
            "split_seconds": out["seconds"],
            "size": {k: out["size"][k]["total_bytes"] for k in ("before", "after")} | {"ratio": out["size"]["ratio"]},
            "tables": out["rows_per_table"],
            "reads_ms": out["reads"],
        }
        if not hot:  # the write cost once: it does not depend on the reads the plan was made for
            shutil.copyfile(db, plain)
            moved = plan.families[0].columns[0]
            core = next(c for c in plan.core_columns if c not in plan.key)
            result["writes"] = {"moved_column": moved, "core_column": core}
            for batched in (False, True):
                key = "in_one_transaction" if batched else "autocommit"
                result["writes"][key] = write_cost(plain, copy, moved, core, batched)
        reverted = revert_split(copy, "users")
        result["revert_seconds"] = round(reverted.seconds, 3)
        return result


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
