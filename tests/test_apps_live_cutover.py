"""A Django application that knows nothing of pgferry moves from SQLite to PostgreSQL through a live
migration and a maintenance cutover (`migrate cutover --hook`), writing all along: the hook points it
at PostgreSQL while SQLite's write lock is held, and every write it acknowledged, on either side, is on
PostgreSQL once with its value; Django reads everything back there and goes on creating objects."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from apps.runner import run, seeded

AFTER = 60  # writes on PostgreSQL once switched, then the application stops


def pgferry(*args: str) -> dict[str, Any]:
    """Run `pgferry ARGS --json` as a user would; its report."""
    done = subprocess.run(
        [sys.executable, "-m", "pgferry", *args, "--json"], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"pgferry {args[:2]} failed:\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def acknowledged(acks: Path, at_least: int, writer: subprocess.Popen[str]) -> None:
    """Wait (bounded) until the application acknowledged `at_least` writes."""
    for _ in range(3000):
        if acks.exists() and len(acks.read_text().splitlines()) >= at_least:
            return
        assert writer.poll() is None, writer.communicate()
        time.sleep(0.01)
    raise AssertionError(f"fewer than {at_least} writes in 30 s")


def test_a_django_app_is_switched_by_the_hook_and_loses_no_acknowledged_write(tmp_path: Path, pg_dsn: str) -> None:
    project, db = seeded("django_shop", tmp_path)
    acks, switch, switched, seen = (tmp_path / n for n in ("acks.jsonl", "switch", "switched", "hook.json"))
    env = {**os.environ, "PGFERRY_TEST_DB": f"sqlite:{db}", "PYTHONDONTWRITEBYTECODE": "1"}
    writer = subprocess.Popen(
        [sys.executable, "live.py", "write", str(acks), str(switch), str(switched), str(AFTER)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        acknowledged(acks, 20, writer)  # writing on SQLite before the migration starts
        pgferry("migrate", "start", str(db), pg_dsn, "--until-caught-up")
        acknowledged(acks, len(acks.read_text().splitlines()) + 20, writer)  # and while it is captured
        hook = " ".join(
            shlex.quote(a) for a in (sys.executable, str(project / "hook.py"), str(switch), str(switched), str(seen))
        )
        report = pgferry("migrate", "cutover", str(db), pg_dsn, "--hook", hook)
        out, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0 and out.strip() == "ok", err
    assert report["cut_over"] and report["attempts"][-1]["outcome"] == "cut_over", report
    assert "hook" in report["attempts"][-1]["phases"] and report["sequences"] >= 3
    assert json.loads(seen.read_text()) == {"lock_held": True, "schema": "public"}  # switched under the lock

    lines = [json.loads(line) for line in acks.read_text().splitlines()]
    done = [a for a in lines if "failed" not in a]
    assert [a["i"] for a in done] == list(range(len(done)))  # a failed write was done again, under its number
    sides = [a["db"] for a in done]
    assert sides == sorted(sides, key=["sqlite", "postgres"].index) and sides.count("postgres") == AFTER
    assert sides.count("sqlite") >= 40
    for failed in (a for a in lines if "failed" in a):
        assert "locked" in failed["failed"], failed  # nothing but SQLite's lock made a write fail

    with psycopg.connect(pg_dsn) as pg:
        names = dict(pg.execute("SELECT id, name FROM shop_customer").fetchall())
        orders = {o: (c, t) for o, c, t in pg.execute("SELECT id, customer_id, total FROM shop_order").fetchall()}
    created = {a["name"]: a["id"] for a in done if a["op"] != "update"}
    live = {name: i for i, name in names.items() if name.startswith("live ")}
    assert live == created  # each acknowledged create once, with its id; nothing else
    last = {a["id"]: a["name"] for a in done if a["op"] == "update"}
    assert {i: names[i] for i in last} == last  # the last acknowledged update of each customer
    assert all(orders[a["order"]] == (a["id"], a["total"]) for a in done if a["op"] == "checkout")

    assert run(project, "readback", pg_dsn, script="live.py", PGFERRY_TEST_ACKS=str(acks)).strip() == "ok"
    status = pgferry("migrate", "status", str(db), pg_dsn)
    assert status["route"] == "postgres"
