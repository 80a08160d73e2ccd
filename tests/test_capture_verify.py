"""`pgferry migrate verify` while writes run: every kind of difference caught (edits, deletes, swapped
values, type coercions, rogue writes to the target), writes that bypass the triggers found by a full
pass, nothing reported while a change is only in flight, and the cutover's check of keys under the lock."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from capture_util import app, assert_same, caught_up, make_source, started, write
from pgferry.capture.liveverify import LiveVerifier, PassReport, verify_live
from pgferry.capture.migration import Follow, abort, follow
from pgferry.capture.status import read_status
from pgferry.cli import main

SHAPES = [pytest.param(False, id="rowid"), pytest.param(True, id="without_rowid")]


def found(report: PassReport) -> set[tuple[str, tuple[object, ...], str]]:
    return {(f.table, f.key, f.kind) for f in report.failures}


def verified(path: Path, dsn: str, full: bool = True) -> PassReport:
    return verify_live(path, dsn, "public", full=full, grace=0, wait_s=5, chunk_rows=7)


def rogue(dsn: str, statement: str, params: tuple[object, ...] = ()) -> None:
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(statement, params)


@pytest.mark.parametrize("without_rowid", SHAPES)
def test_rogue_writes_to_the_target_are_found_with_their_kind(tmp_path: Path, pg_dsn: str, without_rowid: bool) -> None:
    path = make_source(tmp_path / "app.db", without_rowid)
    started(path, pg_dsn)
    write(path, [("UPDATE item SET note = '007' WHERE id = 9", ())])
    caught_up(path, pg_dsn)
    assert verified(path, pg_dsn).identical
    rogue(pg_dsn, "INSERT INTO item (id, email, n) VALUES (99, 'rogue', 1)")  # extra in target
    rogue(pg_dsn, "UPDATE item SET n = n + 1000 WHERE id = 3")  # differs
    rogue(pg_dsn, "UPDATE pair SET v = CASE b WHEN 'b5' THEN 'v6' ELSE 'v5' END WHERE b IN ('b5', 'b6')")  # swapped
    rogue(pg_dsn, "UPDATE item SET note = '7' WHERE id = 9")  # '007' coerced through a number
    rogue(pg_dsn, "DELETE FROM tag WHERE item_id = 4 AND name = 'u'")  # missing in target
    rogue(pg_dsn, "UPDATE blobkey SET v = -1 WHERE k = %s", (bytes([2, 3]),))
    report = verified(path, pg_dsn)
    assert found(report) == {
        ("item", (99,), "extra"),
        ("item", (3,), "differs"),
        ("pair", ("a1", "b5"), "differs"),
        ("pair", ("a2", "b6"), "differs"),
        ("item", (9,), "differs"),
        ("tag", (4, "u"), "missing"),
        ("blobkey", (bytes([2, 3]),), "differs"),
    }
    columns = {(f.table, f.key): f.columns for f in report.failures}
    assert columns[("item", (3,))] == ("n",) and columns[("item", (9,))] == ("note",)
    assert columns[("pair", ("a1", "b5"))] == ("v",)
    # the application writes those rows again: the applier makes them equal, the next pass clears them
    write(
        path,
        [
            ("UPDATE item SET n = n WHERE id IN (3, 9)", ()),
            ("INSERT INTO item (id, email, n) VALUES (99, 'real', 2)", ()),
            ("UPDATE pair SET v = v WHERE b IN ('b5', 'b6')", ()),
            ("UPDATE tag SET name = name WHERE item_id = 4", ()),
            ("UPDATE blobkey SET v = v", ()),
        ],
    )
    caught_up(path, pg_dsn)
    again = verified(path, pg_dsn, full=False)
    assert again.identical and again.cleared == 7
    assert read_status(path, pg_dsn, "public").verify.open_failures == 0  # type: ignore[union-attr]


def test_incremental_blob_io_bypasses_the_triggers_and_a_full_pass_finds_it(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    conn = app(path)
    with conn.blobopen("item", "data", 5) as blob:  # rowid tables only: WITHOUT ROWID has no blob handles
        blob.write(b"\x07\x07\x07")
    conn.close()
    assert caught_up(path, pg_dsn) == 0  # no trigger fired: the changelog never heard of it
    assert verified(path, pg_dsn, full=False).identical  # nor do the changed keys: only a full pass can see it
    report = verified(path, pg_dsn)
    assert found(report) == {("item", (5,), "differs")}
    assert report.failures[0].columns == ("data",)


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command-line shell is not installed")
@pytest.mark.parametrize("without_rowid", SHAPES)
def test_a_connection_with_triggers_off_is_found_by_a_full_pass(
    tmp_path: Path, pg_dsn: str, without_rowid: bool
) -> None:
    path = make_source(tmp_path / "app.db", without_rowid)
    started(path, pg_dsn)
    script = (
        ".dbconfig enable_trigger off\n"
        "UPDATE item SET note = 'behind its back' WHERE id = 6;\n"
        "DELETE FROM pair WHERE a = 'a3' AND b = 'b7';\n"
        "INSERT INTO blobkey VALUES (x'ffff', 0);\n"
    )
    subprocess.run(["sqlite3", str(path)], input=script, text=True, check=True, capture_output=True)
    assert caught_up(path, pg_dsn) == 0
    report = verified(path, pg_dsn)
    assert found(report) == {
        ("item", (6,), "differs"),
        ("pair", ("a3", "b7"), "extra"),
        ("blobkey", (b"\xff\xff",), "missing"),
    }


def test_a_change_in_flight_is_not_reported_and_settles_once_applied(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, [("UPDATE item SET n = 500 WHERE id = 2", ()), ("DELETE FROM tag WHERE item_id = 3", ())])
    report = verify_live(path, pg_dsn, "public", full=True, grace=0, wait_s=0.5)  # nobody applies them
    assert not report.failures
    assert {(f.table, f.key) for f in report.unsettled} == {("item", (2,)), ("tag", (3, "t")), ("tag", (3, "u"))}
    caught_up(path, pg_dsn)
    settled = verified(path, pg_dsn, full=False)
    assert settled.identical and settled.cleared == 3


def test_no_false_alarm_while_a_writer_writes_during_a_full_pass(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    stop = threading.Event()
    wrote = [0]

    def keep_writing() -> None:
        conn = app(path)
        for i in range(3000):  # bounded: stopped once the pass is over
            if stop.is_set():
                break
            conn.execute("UPDATE item SET n = n + 1, note = ? WHERE id = ?", (f"w{i}", 1 + i % 20))
            conn.execute("INSERT OR REPLACE INTO pair VALUES ('w', ?, ?)", (f"k{i % 30}", str(i)))
            if i % 7 == 0:
                conn.execute("DELETE FROM tag WHERE item_id = ? AND name = 't'", (1 + i % 20,))
                conn.execute("INSERT OR IGNORE INTO tag VALUES (?, 't')", (1 + (i + 3) % 20,))
            wrote[0] += 1
            stop.wait(0.001)
        conn.close()

    following = threading.Event()
    applier = threading.Thread(target=lambda: follow(path, pg_dsn, how=Follow(stop=following)))
    writer = threading.Thread(target=keep_writing)
    applier.start()
    writer.start()
    try:
        reports = [verify_live(path, pg_dsn, "public", full=True, grace=0.2, wait_s=20, chunk_rows=4) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
        following.set()
        applier.join()
    assert wrote[0] > 0
    for report in reports:
        assert not report.failures and not report.unsettled, report.as_dict()
        assert report.chunks > 0
    caught_up(path, pg_dsn)
    assert_same(path, pg_dsn)


def test_verify_now_under_the_write_lock(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=True)
    started(path, pg_dsn)
    write(path, [("UPDATE pair SET v = 'changed' WHERE b = 'b1'", ()), ("DELETE FROM blobkey WHERE v = 4", ())])
    caught_up(path, pg_dsn)
    rogue(pg_dsn, "UPDATE pair SET v = 'rogue' WHERE b = 'b2'")
    verifier = LiveVerifier(path, pg_dsn, "public")
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # the cutover's critical section: no writer, nothing in flight
        assert verifier.verify_now(lock) == []  # the keys the applier changed: equal
        differences = verifier.verify_now(lock, {"pair": [("a1", "b1"), ("a2", "b2")], "blobkey": [(bytes([4, 5]),)]})
        lock.execute("COMMIT")
    finally:
        lock.close()
        verifier.close()
    assert [(d.table, d.key, d.kind, d.columns) for d in differences] == [("pair", ("a2", "b2"), "differs", ("v",))]


def test_migrate_verify_command_exit_codes_and_status(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    runner = CliRunner()
    args = ["migrate", "verify", str(path), pg_dsn, "--grace", "0", "--wait", "2"]
    clean = runner.invoke(main, [*args, "--full"])
    assert clean.exit_code == 0, clean.output
    assert "identical" in clean.output
    rogue(pg_dsn, "DELETE FROM pair WHERE b = 'b12'")
    failed = runner.invoke(main, [*args, "--full", "--json"])
    assert failed.exit_code == 1, failed.output
    body = json.loads(failed.output)
    assert [(f["table"], f["key"], f["kind"]) for f in body["failures"]] == [
        ("pair", ["a0", "b12"], "missing in target")
    ]
    status = runner.invoke(main, ["migrate", "status", str(path), pg_dsn])
    assert "1 open failures" in " ".join(status.output.split()), status.output
    as_json = json.loads(runner.invoke(main, ["migrate", "status", str(path), pg_dsn, "--json"]).output)
    assert as_json["verify"]["open_failures"] == 1 and as_json["verify"]["mode"] == "full"
    write(path, [("UPDATE item SET n = 1000 WHERE id = 1", ())])  # in flight: no applier runs
    rogue(pg_dsn, "INSERT INTO pair VALUES ('a0', 'b12', 'v12')")  # and the failure repaired
    unsettled = runner.invoke(main, [*args[:-1], "0", "--full"])
    assert unsettled.exit_code == 2, unsettled.output
    assert "not settled" in " ".join(unsettled.output.split())
    gone = runner.invoke(main, ["migrate", "verify", str(tmp_path / "nope.db"), pg_dsn])
    assert gone.exit_code == 2 and "Traceback" not in gone.output


def test_follow_verifies_the_changed_keys_every_n_batches(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:  # a trigger on the target that fires even for the applier
        pg.execute(
            "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.n := NEW.n + 1; RETURN NEW; END $$"
        )
        pg.execute("CREATE TRIGGER bump BEFORE UPDATE ON item FOR EACH ROW WHEN (NEW.id = 3) EXECUTE FUNCTION bump()")
        pg.execute("ALTER TABLE item ENABLE ALWAYS TRIGGER bump")
    write(path, [(f"UPDATE item SET note = 'x{i}' WHERE id = {i}", ()) for i in range(1, 8)])
    passes: list[PassReport] = []
    how = Follow(until_caught_up=True, batch_entries=2, verify_every=2, grace=0, on_verify=passes.append)
    follow(path, pg_dsn, how=how)
    assert len(passes) == 2  # after batches 2 and 4 (7 entries, batches of 2): then caught up with none since
    assert [p.upto for p in passes] == [4, 7] and [p.seen for p in passes] == [1, 1]
    assert passes[0].keys_checked == 4 and passes[1].keys_checked == 4  # keys 5-7, and the suspect again
    assert not passes[0].failures and passes[0].unsettled  # seen with changes the applier had not passed
    assert [f.key for f in passes[1].failures] == [(3,)]  # the applier passed them: confirmed
    report = verified(path, pg_dsn, full=False)
    assert found(report) == {("item", (3,), "differs")} and report.failures[0].columns == ("n",)
    state = read_status(path, pg_dsn, "public").verify
    assert state is not None and state.verified_seq == 7 and state.open_failures == 1


def test_abort_removes_the_verify_state(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, [("UPDATE item SET n = 5 WHERE id = 1", ())])
    caught_up(path, pg_dsn)  # a batch recorded
    rogue(pg_dsn, "UPDATE item SET n = 6 WHERE id = 2")
    assert verified(path, pg_dsn).failures  # a failure stored
    abort(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        for table in ("verify_batches", "verify_failures", "verify_state"):
            assert pg.execute(f"SELECT count(*) FROM pgferry.{table}").fetchone() == (0,), table
