"""`pgferry migrate` around the applier: writes during the copy, a schema that changes under capture,
tables capture refuses, abort, status, a role without session_replication_role, a killed start."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from capture_util import app, assert_same, caught_up, lag, make_source, started, write
from pgferry.capture import pgstate
from pgferry.capture.applier import SchemaChanged
from pgferry.capture.current import ApplyError
from pgferry.capture.install import install
from pgferry.capture.keys import KeylessTables
from pgferry.capture.migration import abort, follow, start
from pgferry.capture.status import read_status
from pgferry.cli import main
from pgferry.errors import TargetError, UsageError
from pgferry.events import Event
from pgferry.migrate.options import CopyOptions


def control_objects(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [
            n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '\\_pgferry\\_%' ESCAPE '\\'")
        ]


def test_writes_during_the_copy_reach_postgres_after_follow(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    write(
        path,
        [
            (
                "WITH RECURSIVE n(v) AS (SELECT 100 UNION ALL SELECT v + 1 FROM n WHERE v < 3000) "
                "INSERT INTO item (id, email, n) SELECT v, 'bulk' || v, v FROM n",
                (),
            )
        ],
    )
    during: list[int] = []
    lock = threading.Lock()
    writer = app(path)

    def in_the_copy(event: Event) -> None:  # the first copy event: the snapshot is taken, rows are moving
        with lock:
            if event.phase == "copy" and not during:
                for i in range(20):
                    writer.execute("UPDATE item SET note = 'during the copy' WHERE id = ?", (100 + i,))
                    writer.execute("INSERT INTO tag VALUES (?, 'late')", (100 + i,))
                during.append(40)

    stop = threading.Event()
    wrote = [0]

    def keep_writing() -> None:  # a second writer all along: the copy, then the applier's first batches
        conn = app(path)
        for i in range(600):
            if stop.is_set():
                break
            conn.execute("UPDATE item SET n = n + 1 WHERE id = ?", (200 + i % 50,))
            conn.execute("INSERT INTO pair VALUES ('live', ?, 'x')", (f"w{i}",))
            wrote[0] += 2
            stop.wait(0.002)
        conn.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        start(path, pg_dsn, CopyOptions(jobs=2, chunk_rows=400), events=in_the_copy)
    finally:
        stop.set()
        thread.join()
        writer.close()
    assert during and wrote[0] > 0
    caught_up(path, pg_dsn)
    assert_same(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM item WHERE note = 'during the copy'").fetchone() == (20,)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (["ALTER TABLE item ADD COLUMN extra TEXT"], "table 'item': column 'extra' added"),
        (  # a rebuild as Django's and Alembic's migrations make it: create, copy, drop, rename
            [
                "CREATE TABLE pair_new (a TEXT NOT NULL, b TEXT NOT NULL, v TEXT, w INTEGER, PRIMARY KEY (a, b))",
                "INSERT INTO pair_new (a, b, v) SELECT a, b, v FROM pair",
                "DROP TABLE pair",
                "ALTER TABLE pair_new RENAME TO pair",
            ],
            "table 'pair': column 'w' added",
        ),
        (["CREATE TABLE added (id INTEGER PRIMARY KEY)"], "table 'added' was created after capture was installed"),
    ],
    ids=["alter", "rebuild", "new table"],
)
def test_a_schema_change_stops_the_applier_with_what_to_do(
    tmp_path: Path, pg_dsn: str, change: list[str], said: str
) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, [("UPDATE item SET n = 0 WHERE id = 1", ()), *((s, ()) for s in change)])
    with pytest.raises(SchemaChanged) as raised:
        caught_up(path, pg_dsn)
    assert said in str(raised.value) and "pgferry migrate abort" in str(raised.value)
    status = read_status(path, pg_dsn, "public")
    assert status.phase == "failed" and status.last_error is not None and said in status.last_error
    assert status.lag_changes > 0  # nothing after the change was applied
    result = CliRunner().invoke(main, ["migrate", "status", str(path), pg_dsn])
    assert result.exit_code == 1 and "last error" in result.output


def test_analyze_and_vacuum_move_the_schema_version_but_do_not_stop_the_applier(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, [("UPDATE item SET n = 1", ()), ("ANALYZE", ()), ("VACUUM", ()), ("DELETE FROM item WHERE id = 3", ())])
    assert caught_up(path, pg_dsn) > 0
    assert_same(path, pg_dsn)


def test_tables_without_a_usable_key_are_refused_by_name_and_nothing_is_installed(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    write(
        path,
        [
            ("CREATE TABLE loose (x INTEGER, y TEXT)", ()),
            ("CREATE TABLE nullkey (code TEXT PRIMARY KEY, v INTEGER)", ()),
            ("INSERT INTO nullkey VALUES (NULL, 1)", ()),
        ],
    )
    with pytest.raises(KeylessTables) as raised:
        start(path, pg_dsn, CopyOptions(jobs=1))
    message = str(raised.value)
    assert "'loose': no primary key" in message and "'nullkey': its primary key (code) holds NULLs" in message
    assert control_objects(path) == []
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT to_regclass('pgferry.capture_state')").fetchone() == (None,)
    result = CliRunner().invoke(main, ["migrate", "start", str(path), pg_dsn, "--jobs", "1"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "'loose'" in result.output


def test_commands_before_any_start_and_a_schema_taken_by_another_file_say_so(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    runner = CliRunner()
    for command in ("status", "cutover", "verify", "follow"):  # a server no pgferry command has written to
        result = runner.invoke(main, ["migrate", command, str(path), pg_dsn])
        expected = 0 if command == "status" else 2  # status says "not started"; the others refuse
        assert result.exit_code == expected and "Traceback" not in result.output, (command, result.output)
        assert "does not exist" not in result.output, (command, result.output)  # no raw catalog error
    shown = runner.invoke(main, ["migrate", "status", str(path), pg_dsn])
    assert "not started" in shown.output
    started(path, pg_dsn)
    other = make_source(tmp_path / "other.db", without_rowid=False)
    refused = runner.invoke(main, ["migrate", "start", str(other), pg_dsn, "--until-caught-up"])
    assert refused.exit_code == 2 and f"a migration of {path} into schema 'public'" in refused.output
    again = runner.invoke(main, ["migrate", "start", str(path), pg_dsn, "--schema", "elsewhere"])
    assert again.exit_code == 2 and "has change capture installed already, for schema 'public'" in again.output


def test_a_null_key_written_after_install_stops_the_applier_and_verify_with_what_to_do(
    tmp_path: Path, pg_dsn: str
) -> None:
    """A rowid table's TEXT primary key takes a NULL (capture refuses one at install, not after): the
    applier stops on it, and verify says the same instead of failing on how it renders the key."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE code (k TEXT PRIMARY KEY, v INTEGER)")
        conn.execute("INSERT INTO code VALUES ('a', 1)")
    started(path, pg_dsn)
    write(path, [("INSERT INTO code VALUES (NULL, 2)", ()), ("INSERT INTO code VALUES ('b', 3)", ())])
    with pytest.raises(ApplyError, match=r"table 'code': a row with NULL in its primary key \(k\) was written"):
        caught_up(path, pg_dsn)
    verified = CliRunner().invoke(main, ["migrate", "verify", str(path), pg_dsn, "--full"])
    assert verified.exit_code == 2 and "a row with NULL in its primary key (k) is in SQLite" in verified.output
    write(path, [("UPDATE code SET k = 'given' WHERE k IS NULL", ())])  # as the message says
    assert caught_up(path, pg_dsn) > 0
    write(path, [("INSERT INTO code VALUES (NULL, 4)", ()), ("DELETE FROM code WHERE k IS NULL", ())])
    caught_up(path, pg_dsn)  # written and deleted again: nothing to carry
    assert_same(path, pg_dsn)


def test_abort_removes_capture_and_state_and_leaves_the_data(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=True)
    started(path, pg_dsn)
    write(path, [("UPDATE item SET note = 'after' WHERE id < 5", ())])
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT * FROM item ORDER BY id").fetchall()
    assert control_objects(path)
    result = CliRunner().invoke(main, ["migrate", "abort", str(path), pg_dsn, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["triggers_dropped"] == 16
    assert control_objects(path) == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM item ORDER BY id").fetchall() == rows
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone() == (0,)
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT to_regclass('pgferry.capture_state')").fetchone() == (None,)
        assert pg.execute("SELECT count(*) FROM pgferry.copy_state").fetchone() == (0,)
    assert abort(path, pg_dsn).postgres_state is False  # a second abort is harmless
    start(path, pg_dsn, CopyOptions(jobs=1, schema="again"))  # and a new start works


def test_status_reports_lag_rate_and_sizes(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    writer = app(path)  # an open connection keeps the WAL file (the last one to close removes it)
    writer.execute("UPDATE item SET n = n + 1 WHERE id <= 5")
    status = read_status(path, pg_dsn, "public")
    writer.close()
    assert (status.phase, status.lag_changes, status.captured_tables) == ("stopped", 5, 4)
    assert status.lag_seconds is not None and status.lag_seconds >= 0 and status.journal_mode == "wal"
    assert status.changelog_entries >= 5 and status.wal_bytes > 0 and status.mode == "replica"
    caught_up(path, pg_dsn)
    result = CliRunner().invoke(main, ["migrate", "status", str(path), pg_dsn, "--json"])
    shown = json.loads(result.output)
    assert result.exit_code == 0 and shown["lag_changes"] == 0 and shown["lag_seconds"] == 0.0
    assert shown["applied_changes"] >= 5 and shown["applied_per_s"] is not None
    password = str(psycopg.conninfo.conninfo_to_dict(pg_dsn)["password"])
    assert password not in result.output  # the target is redacted


def test_without_session_replication_role_parents_go_first(tmp_path: Path, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("DROP ROLE IF EXISTS pgferry_plain")
        pg.execute("CREATE ROLE pgferry_plain LOGIN PASSWORD 'plain'")
        database = pg.info.dbname
        pg.execute(sql.SQL("GRANT ALL ON DATABASE {} TO pgferry_plain").format(sql.Identifier(database)))
        pg.execute("GRANT ALL ON SCHEMA public TO pgferry_plain")
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    plain = psycopg.conninfo.make_conninfo(**{**info, "user": "pgferry_plain", "password": "plain"})
    path = make_source(tmp_path / "app.db", without_rowid=False)
    try:
        started(path, plain)
        write(
            path,
            [
                ("INSERT INTO tag VALUES (1, 'before its parent changes')", ()),
                ("INSERT INTO item VALUES (900, 'p900', 1, NULL, NULL)", ()),
                ("INSERT INTO tag VALUES (900, 'child')", ()),  # the child comes after its parent
                ("DELETE FROM tag WHERE item_id = 2", ()),
                ("DELETE FROM item WHERE id = 2", ()),
            ],
            ("foreign_keys = ON",),
        )
        caught_up(path, plain)
        assert_same(path, plain)
        assert read_status(path, plain, "public").mode == "ordered"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as pg:
            pg.execute("REASSIGN OWNED BY pgferry_plain TO CURRENT_USER")
            pg.execute("DROP OWNED BY pgferry_plain")
            pg.execute("DROP ROLE pgferry_plain")


def test_a_value_that_no_longer_fits_its_type_stops_the_applier(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "app.db"
    write(
        path,
        [
            ("CREATE TABLE ev (id INTEGER PRIMARY KEY, at TIMESTAMP)", ()),
            ("INSERT INTO ev VALUES (1, '2024-01-01 10:00:00')", ()),
        ],
    )
    started(path, pg_dsn)
    write(path, [("INSERT INTO ev VALUES (2, 'now')", ())])  # PostgreSQL would read it as the current time
    with pytest.raises(ApplyError) as raised:
        caught_up(path, pg_dsn)
    assert "refused a changed row" in str(raised.value)
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM ev").fetchone() == (1,)
    write(path, [("UPDATE ev SET at = '2024-01-02 00:00:00' WHERE id = 2", ())])
    caught_up(path, pg_dsn)  # fixed in SQLite: the applier goes on
    assert_same(path, pg_dsn)


def test_a_start_killed_before_its_copy_is_finished_by_follow(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    with psycopg.connect(pg_dsn, autocommit=True) as pg, pg.transaction():  # killed right after its first write
        pgstate.begin(pg, "public", str(path), {"jobs": 1})
    with pytest.raises(UsageError, match="follow"):
        start(path, pg_dsn, CopyOptions(jobs=1))
    write(path, [("UPDATE item SET n = -1 WHERE id = 1", ())])
    report = follow(path, pg_dsn)
    assert [k.table for k in report.keys] == ["blobkey", "item", "pair", "tag"] and report.copy is not None
    assert_same(path, pg_dsn)
    other = make_source(tmp_path / "other.db", without_rowid=True)  # killed after installing, before copying
    install(other, "second")
    with psycopg.connect(pg_dsn, autocommit=True) as pg, pg.transaction():
        pgstate.begin(pg, "second", str(other), {"jobs": 1, "schema": "second"})
        pgstate.set_phase(pg, "second", "copying")
    write(other, [("DELETE FROM item WHERE id = 2", ())])
    assert follow(other, pg_dsn).copy is not None
    assert read_status(other, pg_dsn, "second").lag_changes == 0


def test_a_nocase_key_whose_case_changes_is_carried(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "app.db"
    write(
        path,
        [
            ("CREATE TABLE word (w TEXT COLLATE NOCASE PRIMARY KEY, n INTEGER) WITHOUT ROWID", ()),
            ("INSERT INTO word VALUES ('alpha', 1), ('beta', 2)", ()),
        ],
    )
    started(path, pg_dsn)
    write(path, [("UPDATE word SET w = 'ALPHA' WHERE w = 'alpha'", ()), ("DELETE FROM word WHERE w = 'BETA'", ())])
    caught_up(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT w::text, n FROM word").fetchall() == [("ALPHA", 1)]
    assert_same(path, pg_dsn)


def test_follow_stops_cleanly_on_sigterm_and_a_non_empty_target_is_refused(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    command = [sys.executable, "-m", "pgferry", "migrate", "follow", str(path), pg_dsn, "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(200):  # until its heartbeat says it follows (bounded: 20 s)
            if read_status(path, pg_dsn, "public").applier_running:
                break
            time.sleep(0.1)
        write(path, [("UPDATE item SET n = 7 WHERE id = 7", ())])
        for _ in range(200):
            if lag(path, pg_dsn) == 0:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["applied"] == 1 and read_status(path, pg_dsn, "public").phase == "stopped"
    assert_same(path, pg_dsn)
    other = make_source(tmp_path / "other.db", without_rowid=False)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA taken")
        pg.execute("CREATE TABLE taken.app (id int)")
    with pytest.raises(TargetError, match="not empty"):
        start(other, pg_dsn, CopyOptions(jobs=1, schema="taken"))
    assert control_objects(other) == []


def test_a_table_dropped_while_nobody_follows_is_said_when_follow_starts(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, [("DROP TABLE blobkey", ())])
    with pytest.raises(SchemaChanged, match="table 'blobkey' was dropped"):
        caught_up(path, pg_dsn)
    assert read_status(path, pg_dsn, "public").phase == "failed"


def test_start_switches_a_rollback_journal_file_to_wal_unless_told_not_to(tmp_path: Path, pg_dsn: str) -> None:
    def journal(path: Path) -> str:
        with sqlite3.connect(path) as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    kept = tmp_path / "kept.db"
    with sqlite3.connect(kept) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO t VALUES (1, 'a')")
    switched = tmp_path / "switched.db"
    switched.write_bytes(kept.read_bytes())
    report = start(kept, pg_dsn, CopyOptions(schema="kept", jobs=1), wal=False)
    assert report.journal is not None and report.journal.after == "delete" and "writers wait" in report.journal.note
    assert journal(kept) == "delete"
    result = CliRunner().invoke(
        main, ["migrate", "start", str(switched), pg_dsn, "--schema", "switched", "--until-caught-up", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["journal"]
    assert (found["before"], found["after"]) == ("delete", "wal") and found["took_ms"] is not None
    assert journal(switched) == "wal"
