"""A schema change under capture: a table rebuilt with the same columns (by hand, by Django's AlterField)
is taken up (capture reinstalled, the table copied again, verified) while the application writes; an
index changes nothing; a change of columns stops the applier saying exactly what changed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from apps.runner import run, seeded
from capture_util import app, assert_same, caught_up, lag, make_source, started, write
from pgferry.capture import rebuild
from pgferry.capture.applier import Rebuilt, SchemaChanged
from pgferry.capture.changelog import read_registry
from pgferry.capture.current import ApplyError
from pgferry.capture.liveverify import PassReport, verify_live
from pgferry.capture.migration import Follow, follow, start
from pgferry.cli import main
from pgferry.killpoints import ENV
from pgferry.migrate.options import CopyOptions

SHAPES = [pytest.param(False, id="rowid"), pytest.param(True, id="without_rowid")]


def rebuild_pair(path: Path, without_rowid: bool) -> None:
    """sqlite-utils transform's way, in one transaction: create, copy, drop, rename (same columns,
    another text for the table, and the capture triggers dropped with the old table)."""
    tail = " WITHOUT ROWID" if without_rowid else ""
    conn = app(path)
    conn.executescript(
        "BEGIN;"
        f'CREATE TABLE "pair_new" ("a" TEXT NOT NULL, "b" TEXT NOT NULL, "v" TEXT, PRIMARY KEY ("a", "b")){tail};'
        'INSERT INTO "pair_new" SELECT a, b, v FROM pair;'
        "DROP TABLE pair;"
        'ALTER TABLE "pair_new" RENAME TO "pair";'
        "COMMIT;"
    )
    conn.close()


def capture_triggers(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name LIKE '_pgferry%'"
        return int(conn.execute(sql, (table,)).fetchone()[0])


def full(path: Path, dsn: str) -> PassReport:
    return verify_live(path, dsn, "public", full=True, grace=0, wait_s=5)


@pytest.mark.parametrize("without_rowid", SHAPES)
def test_a_table_rebuilt_with_the_same_columns_is_taken_up(tmp_path: Path, pg_dsn: str, without_rowid: bool) -> None:
    path = make_source(tmp_path / "app.db", without_rowid)
    started(path, pg_dsn)
    write(path, [("UPDATE pair SET v = 'before' WHERE b = 'b1'", ()), ("INSERT INTO pair VALUES ('x', 'y', 'z')", ())])
    rebuild_pair(path, without_rowid)
    assert capture_triggers(path, "pair") == 0
    write(  # nobody logs these: the rebuild dropped the triggers
        path,
        [
            ("UPDATE pair SET v = 'unlogged' WHERE b = 'b2'", ()),
            ("DELETE FROM pair WHERE b = 'b3'", ()),
            ("INSERT INTO pair VALUES ('new', 'row', 'unlogged')", ()),
            ("UPDATE item SET n = 77 WHERE id = 5", ()),  # another table: logged as ever
        ],
    )
    seen: list[tuple[Rebuilt, PassReport]] = []
    follow(path, pg_dsn, how=Follow(until_caught_up=True, on_rebuild=lambda r, v: seen.append((r, v))))
    [(rebuilt, verified)] = seen
    assert rebuilt.table == "pair" and rebuilt.rows == 21 and verified.identical
    assert capture_triggers(path, "pair") == 4
    write(path, [("UPDATE pair SET v = 'after' WHERE b = 'b4'", ()), ("DELETE FROM pair WHERE a = 'x'", ())])
    assert caught_up(path, pg_dsn) == 2  # logged again
    assert full(path, pg_dsn).identical
    assert_same(path, pg_dsn)
    with sqlite3.connect(path) as conn:
        notes = rebuild.notes(conn)
    assert notes["pair"]["state"] == "recopied" and notes["pair"]["rows"] == 21
    shown = CliRunner().invoke(main, ["migrate", "status", str(path), pg_dsn])
    assert "table pair rebuilt under capture: recopied, 21 rows copied again" in " ".join(shown.output.split())


def test_a_rebuild_while_a_writer_keeps_writing(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    stop, rebuilt = threading.Event(), threading.Event()
    wrote = [0]

    def keep_writing() -> None:
        conn = app(path)
        for i in range(4000):  # bounded; stopped once the applier took the rebuild up and caught up
            if stop.is_set():
                break
            conn.execute("INSERT OR REPLACE INTO pair VALUES ('w', ?, ?)", (f"k{i % 50}", str(i)))
            conn.execute("UPDATE item SET n = ? WHERE id = ?", (i, 1 + i % 20))
            wrote[0] += 1
            if i == 200:
                rebuild_pair(path, without_rowid=False)
                rebuilt.set()
            stop.wait(0.001)
        conn.close()

    following = threading.Event()
    seen: list[Rebuilt] = []
    applier = threading.Thread(
        target=lambda: follow(path, pg_dsn, how=Follow(stop=following, on_rebuild=lambda r, v: seen.append(r)))
    )
    writer = threading.Thread(target=keep_writing)
    applier.start()
    writer.start()
    try:
        assert rebuilt.wait(60)
        for _ in range(600):  # until the applier took it up (bounded)
            if seen:
                break
            following.wait(0.05)
    finally:
        stop.set()
        writer.join()
        following.set()
        applier.join()
    assert [r.table for r in seen] == ["pair"] and wrote[0] > 200
    caught_up(path, pg_dsn)
    assert full(path, pg_dsn).identical
    assert_same(path, pg_dsn)


@pytest.mark.parametrize("point", ["rebuild:before_recopy", "rebuild:after_recopy"])
def test_an_applier_killed_while_taking_up_a_rebuild_finishes_it_when_resumed(
    tmp_path: Path, pg_dsn: str, point: str
) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=True)
    started(path, pg_dsn)
    rebuild_pair(path, without_rowid=True)
    write(path, [("UPDATE pair SET v = 'unlogged' WHERE b = 'b2'", ()), ("DELETE FROM pair WHERE b = 'b9'", ())])
    command = [sys.executable, "-m", "pgferry", "migrate", "follow", str(path), pg_dsn, "--until-caught-up"]
    killed = subprocess.run(command, env={**os.environ, ENV: point}, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with sqlite3.connect(path) as conn:
        assert rebuild.pending(conn) == ["pair"]  # the mark says the re-copy is not recorded as done
    write(path, [("UPDATE pair SET v = 'logged' WHERE b = 'b3'", ())])  # the triggers are back
    resumed = subprocess.run(
        command, env={k: v for k, v in os.environ.items() if k != ENV}, capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert full(path, pg_dsn).identical
    with sqlite3.connect(path) as conn:
        assert rebuild.pending(conn) == []


def test_a_kill_between_reinstall_and_recopy_copies_the_table_at_the_next_start(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    rebuild_pair(path, without_rowid=False)
    write(path, [("UPDATE pair SET v = 'unlogged' WHERE b = 'b2'", ())])
    conn = sqlite3.connect(path, isolation_level=None)
    try:  # what an applier killed after step 1 leaves: triggers back, schema version recorded, marker
        [change] = rebuild.changes(conn, read_registry(conn))
        assert change.same and change.triggers_gone
        rebuild.reinstall(conn, change)
        assert rebuild.pending(conn) == ["pair"]
    finally:
        conn.close()
    shown = CliRunner().invoke(main, ["migrate", "follow", str(path), pg_dsn, "--until-caught-up"])
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "table pair was rebuilt in SQLite: capture reinstalled, 20 rows copied again, verified: identical" in said
    assert full(path, pg_dsn).identical  # 'unlogged' reached PostgreSQL through the re-copy
    with sqlite3.connect(path) as conn:
        assert rebuild.pending(conn) == []


def test_an_index_added_or_dropped_changes_nothing(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    seen: list[Rebuilt] = []
    write(path, [("CREATE INDEX pair_v ON pair (v)", ()), ("UPDATE pair SET v = 'x' WHERE b = 'b1'", ())])
    follow(path, pg_dsn, how=Follow(until_caught_up=True, on_rebuild=lambda r, v: seen.append(r)))
    write(path, [("DROP INDEX pair_v", ()), ("UPDATE pair SET v = 'y' WHERE b = 'b2'", ())])
    follow(path, pg_dsn, how=Follow(until_caught_up=True, on_rebuild=lambda r, v: seen.append(r)))
    assert seen == [] and lag(path, pg_dsn) == 0
    assert_same(path, pg_dsn)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("ALTER TABLE pair DROP COLUMN v", "table 'pair': column 'v' dropped"),
        ("ALTER TABLE pair RENAME COLUMN v TO w", "table 'pair': column 'w' added, column 'v' dropped"),
    ],
    ids=["drop column", "rename column"],
)
def test_a_change_of_columns_stops_saying_what_changed(tmp_path: Path, pg_dsn: str, change: str, said: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, [(change, ())])
    with pytest.raises(SchemaChanged, match=said):
        caught_up(path, pg_dsn)


def _django_writes(path: Path, tag: str) -> None:
    write(
        path,
        [
            (f"UPDATE shop_customer SET name = '{tag}' WHERE id = 3", ()),
            ("INSERT INTO shop_customer (name, email, city) VALUES (?, ?, ?)", (tag, f"{tag}@x", "c")),
            ("DELETE FROM shop_orderline WHERE id = (SELECT min(id) FROM shop_orderline)", ()),
        ],
    )


def test_django_alter_field_rebuild_is_taken_up_and_a_retyping_one_stops(tmp_path: Path, pg_dsn: str) -> None:
    project, db = seeded("django_shop", tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    start(db, pg_dsn, CopyOptions(jobs=1))
    _django_writes(db, "before")
    assert run(project, "allow_null", f"sqlite:{db}").strip() == "ok"  # AlterField(null=True): a rebuild
    _django_writes(db, "between")  # shop_customer's triggers are gone: not logged
    seen: list[Rebuilt] = []
    follow(db, pg_dsn, how=Follow(until_caught_up=True, on_rebuild=lambda r, v: seen.append(r)))
    assert [r.table for r in seen] == ["shop_customer"]
    assert "column 'city' is no longer NOT NULL" in seen[0].changed
    _django_writes(db, "after")
    write(db, [("UPDATE shop_customer SET city = NULL WHERE id = 4", ())])
    with pytest.raises(ApplyError, match="shop_customer"):  # the copy planned city NOT NULL: stopped, not lost
        caught_up(db, pg_dsn)
    write(db, [("UPDATE shop_customer SET city = 'back' WHERE id = 4", ())])
    caught_up(db, pg_dsn)
    assert full(db, pg_dsn).identical
    assert run(project, "remake", f"sqlite:{db}").strip() == "ok"  # max_length + 1: the declared type changes
    with pytest.raises(SchemaChanged, match=r"column 'name' retyped from varchar\(100\) to varchar\(101\)"):
        caught_up(db, pg_dsn)
