"""Stray writes on real SQLite and PostgreSQL: a write committed to SQLite directly (sqlite3, as an
application thread the cutover's hook did not reach would) after a cutover is kept by the reverse
applier's batches, reported by status, follow and its metric, carried to PostgreSQL by a rollback,
and refused by finish unless --discard-stray-writes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from capture_util import assert_same, caught_up, follow_serving_metrics
from pgferry.capture.finish import finish
from pgferry.capture.rollback import rollback
from pgferry.capture.strays import Stray, Strays, read_strays
from pgferry.cli import main
from pgferry.errors import UsageError
from reverse_fixtures import cut_over, pg_write, reverse_caught_up

DEADLINE_S = 60.0


def stray_write(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    """What a stray application thread does after the cutover: commit to SQLite, not to PostgreSQL."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(statement, params)
    finally:
        conn.close()


def entries_above_cutover(path: Path, dsn: str) -> list[tuple[int, int]]:
    """(seq, k1) of the forward changelog's entries above the cutover's position, read directly."""
    with psycopg.connect(dsn) as pg:
        row = pg.execute("SELECT applied_seq FROM pgferry.capture_state").fetchone()
    assert row is not None
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT seq, k1 FROM _pgferry_changelog WHERE seq > ? ORDER BY seq", row).fetchall()


def pg_item(dsn: str, id_: int) -> tuple[object, ...] | None:
    with psycopg.connect(dsn) as pg:
        return pg.execute("SELECT id, n, note FROM item WHERE id = %s", [id_]).fetchone()


def sqlite_item(path: Path, id_: int) -> tuple[object, ...] | None:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, n, note FROM item WHERE id = ?", (id_,)).fetchone()


def test_a_stray_write_outlives_the_reverse_batches_and_the_rollback_carries_it(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    stray_write(path, "UPDATE item SET note = 'stray' WHERE id = 3")
    pg_write(pg_dsn, [("UPDATE item SET n = n + 100 WHERE id BETWEEN 10 AND 12", ())])
    assert reverse_caught_up(path, pg_dsn, batch_entries=1) == 3  # three batches, each pruning its own entries
    assert [k for _seq, k in entries_above_cutover(path, pg_dsn)] == [3]  # (a): the stray's entry, only it

    result = CliRunner().invoke(main, ["migrate", "status", str(path), pg_dsn, "--json"])
    assert result.exit_code == 0, result.output
    strays = json.loads(result.output)["strays"]  # (b)
    assert strays["count"] == 1 and [(s["table"], s["key"]) for s in strays["first"]] == [("item", {"id": 3})]
    text = CliRunner().invoke(main, ["migrate", "status", str(path), pg_dsn])
    assert "1 stray write (item (id=3))" in text.output
    assert pg_item(pg_dsn, 3) != sqlite_item(path, 3)  # the stray row is in SQLite only

    pg_write(pg_dsn, [("UPDATE item SET n = n + 100 WHERE id = 13", ())])
    stray_write(path, "DELETE FROM tag WHERE item_id = 5 AND name = 't'")
    report = rollback(path, pg_dsn)  # (d): its drain keeps the strays too, and names them
    assert report.strays is not None and report.strays["count"] == 2
    assert [(s["table"], s["key"]) for s in report.strays["first"]] == [
        ("item", {"id": 3}),
        ("tag", {"item_id": 5, "name": "t"}),
    ]
    assert caught_up(path, pg_dsn) == 2  # the forward applier starts just below the first stray
    assert pg_item(pg_dsn, 3) == sqlite_item(path, 3) == (3, 3, "stray")
    assert pg_item(pg_dsn, 13) == sqlite_item(path, 13) == (13, 113, "note 13")
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM tag WHERE item_id = 5").fetchone() == (1,)
    assert_same(path, pg_dsn)  # verify passes: counts, checksums and rows equal


def test_a_reverse_batch_writing_over_a_stray_key_is_noted(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    for id_ in (3, 4, 5):
        stray_write(path, "UPDATE item SET note = 'stray' WHERE id = ?", (id_,))
    pg_write(pg_dsn, [("UPDATE item SET n = 99 WHERE id = 3", ()), ("DELETE FROM item WHERE id = 5", ())])
    assert reverse_caught_up(path, pg_dsn) == 4  # item 3, item 5 and its two tags (ON DELETE CASCADE)
    strays = read_strays(path, pg_dsn, "public")
    assert [(s.key, s.overwritten) for s in strays.first] == [({"id": 3}, True), ({"id": 4}, False), ({"id": 5}, True)]
    assert "item (id=3, overwritten by PostgreSQL's row)" in strays.describe()
    assert sqlite_item(path, 3) == (3, 99, "note 3") and sqlite_item(path, 5) is None  # PostgreSQL's rows
    report = rollback(path, pg_dsn)
    assert report.strays is not None and [s["overwritten"] for s in report.strays["first"]] == [True, False, True]
    assert caught_up(path, pg_dsn) == 3
    assert pg_item(pg_dsn, 4) == (4, 4, "stray")
    assert_same(path, pg_dsn)
    with sqlite3.connect(path) as conn:  # the note went with the flip
        assert conn.execute("SELECT count(*) FROM _pgferry_migrate WHERE name = 'strays_overwritten'").fetchone() == (
            0,
        )


def test_a_rollback_killed_after_its_flip_still_carries_the_strays(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    stray_write(path, "UPDATE item SET note = 'stray' WHERE id = 7")
    pg_write(pg_dsn, [("UPDATE item SET n = 0 WHERE id = 8", ())])
    env = {**os.environ, "PGFERRY_KILL_AT": "rollback:after_flip"}
    killed = subprocess.run(
        [sys.executable, "-m", "pgferry", "migrate", "rollback", str(path), pg_dsn], env=env, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    report = rollback(path, pg_dsn)
    assert report.resumed and report.strays is not None and report.strays["first"][0]["key"] == {"id": 7}
    assert caught_up(path, pg_dsn) == 1
    assert pg_item(pg_dsn, 7) == (7, 7, "stray")
    assert_same(path, pg_dsn)


def test_finish_refuses_while_strays_exist_and_the_flag_finishes(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    stray_write(path, "INSERT INTO pair VALUES ('sa', 'sb', 'stray')")
    with pytest.raises(UsageError, match=r"1 stray write \(pair \(a='sa', b='sb'\)\).*in SQLite only"):
        finish(path, pg_dsn)
    refused = CliRunner().invoke(main, ["migrate", "finish", str(path), pg_dsn])
    assert refused.exit_code == 2 and "--discard-stray-writes" in refused.output and "Traceback" not in refused.output
    assert read_strays(path, pg_dsn, "public").count == 1  # nothing was removed
    done = CliRunner().invoke(main, ["migrate", "finish", str(path), pg_dsn, "--discard-stray-writes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["stray_writes_discarded"] == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v FROM pair WHERE a = 'sa'").fetchone() == ("stray",)  # left in SQLite only


def test_follow_warns_once_per_stray_and_its_metric_counts_them(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    stray_write(path, "UPDATE item SET note = 'stray' WHERE id = 4")
    stray_write(path, "UPDATE item SET note = 'stray again' WHERE id = 4")
    stray_write(path, "UPDATE item SET note = 'overwritten' WHERE id = 6")
    pg_write(pg_dsn, [("UPDATE item SET n = 60 WHERE id = 6", ())])  # the follower's first batch writes over it
    follower, url = follow_serving_metrics(path, pg_dsn)
    try:
        pg_write(pg_dsn, [("UPDATE item SET n = 50 WHERE id = 9", ())])
        deadline = time.monotonic() + DEADLINE_S
        while True:  # (c): until the reverse applier has applied PostgreSQL's change; the strays stay counted
            text = httpx.get(url, timeout=10).text
            if 'pgferry_migration_reverse_lag_changes{schema="public"} 0.0' in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        assert 'pgferry_migration_stray_sqlite_writes{schema="public"} 3.0' in text
    finally:
        follower.send_signal(signal.SIGTERM)
        _, err = follower.communicate(timeout=DEADLINE_S)
    assert follower.returncode == 0, err
    warnings = [line for line in err.splitlines() if "stray write" in line]
    assert len(warnings) == 3, err  # once each
    assert sum("item (id=4)" in w and "in SQLite only" in w for w in warnings) == 2, err
    assert sum("item (id=6, overwritten by PostgreSQL's row)" in w for w in warnings) == 1, err
    assert "stray again" not in err and "'overwritten'" not in err  # the key, never the row's values
    assert sqlite_item(path, 9) == (9, 50, "note 9")


def test_strays_kept_as_a_record_describe_themselves_as_they_did() -> None:
    """A rollback keeps its strays as JSON (its record, its report); the CLI describes them from that."""
    strays = Strays(12, (Stray(40, "item", {"id": 7}), Stray(41, "pair", {"a": "sa", "b": "sb"}, overwritten=True)))
    kept = Strays.from_dict(json.loads(json.dumps(strays.as_dict())))
    assert kept == strays
    assert (
        kept.describe() == "12 stray writes (item (id=7), pair (a='sa', b='sb', overwritten by PostgreSQL's row), ...)"
    )
