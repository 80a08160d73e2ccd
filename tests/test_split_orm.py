"""A split that ORMs survive: Django's create/save/update/delete/bulk_create on the split table report
what they report on the unsplit table (pks, rowcounts), the new tables follow, and contract and
revert give the file back exactly."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from apps.runner import run, seeded
from pgferry.cli import main
from pgferry.doctor.diagnose import diagnose
from pgferry.events import Listener
from pgferry.split import apply as apply_mod
from pgferry.split.checks import out_of_step
from pgferry.split.ddl import Script
from pgferry.split.layout import Layout
from pgferry.split.plan import Family, SplitError, SplitPlan
from pgferry.split.record import find_record
from pgferry.split.revert import original_table
from split_util import snapshot


def _split(db: Path, *args: str) -> dict:
    result = CliRunner().invoke(main, ["split", str(db), "wide_member", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _in_step(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        record = find_record(conn, "wide_member")
        assert record is not None
        return out_of_step(conn, Layout.of(original_table(record), SplitPlan.from_dict(record.plan)))
    finally:
        conn.close()


def test_django_orm_on_the_split_table_behaves_as_unsplit(tmp_path: Path) -> None:
    app, db = seeded("django_wide", tmp_path, "split.db")
    reference = tmp_path / "unsplit.db"
    shutil.copyfile(db, reference)
    report = _split(db, "--auto", "--apply", "--no-measure")
    moved = {c for f in report["plan"]["side"] + report["plan"]["key_value"] for c in f["columns"]}
    assert {"bio", "location", "website"} <= moved, report["plan"]
    split_out = json.loads(run(app, "orm", f"sqlite:{db}"))
    unsplit_out = json.loads(run(app, "orm", f"sqlite:{reference}"))
    assert split_out == unsplit_out
    assert split_out["create_pk"] == 41 and split_out["bulk_pks"] == [42, 43, 44] and split_out["update"] == 5
    assert _in_step(db) == 0

    # code moved to the new tables writes them; the table follows
    side = next(f["table"] for f in report["plan"]["side"] if "bio" in f["columns"])
    with sqlite3.connect(db) as conn, sqlite3.connect(reference) as ref:
        cursor = conn.execute(f'UPDATE "{side}" SET bio = ? WHERE id = 9', ("from new code",))
        assert cursor.rowcount == 1
        ref.execute("UPDATE wide_member SET bio = ? WHERE id = 9", ("from new code",))
        assert conn.execute("SELECT bio FROM wide_member WHERE id = 9").fetchone() == ("from new code",)
    assert _in_step(db) == 0

    contract = tmp_path / "contract.db"
    shutil.copyfile(db, contract)
    result = CliRunner().invoke(main, ["split", str(contract), "wide_member", "--contract", "--json"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(contract) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(wide_member)")}
        assert not columns & moved and {"id", "username", "email", "logins"} <= columns
    _split(contract, "--revert")
    assert snapshot(contract) == snapshot(reference)
    _split(db, "--revert")
    assert snapshot(db) == snapshot(reference)


def test_sqlalchemy_orm_on_the_split_table_behaves_as_unsplit(tmp_path: Path) -> None:
    """SQLAlchemy checks every flushed UPDATE's rowcount (StaleDataError) and reads new ids through
    RETURNING: through a view both failed; on the expand/contract split they match the unsplit table."""
    app, db = seeded("sqla_wide", tmp_path, "split.db")
    reference = tmp_path / "unsplit.db"
    shutil.copyfile(db, reference)
    report = _split(db, "--auto", "--apply", "--no-measure")
    moved = {c for f in report["plan"]["side"] + report["plan"]["key_value"] for c in f["columns"]}
    assert {"bio", "location"} <= moved, report["plan"]
    split_out = json.loads(run(app, "orm", f"sqlite:{db}"))
    assert split_out == json.loads(run(app, "orm", f"sqlite:{reference}"))
    assert split_out["create_pk"] == 41 and split_out["bulk_pks"] == [42, 43, 44] and split_out["update_none"] == 0
    assert _in_step(db) == 0
    _split(db, "--revert")
    assert snapshot(db) == snapshot(reference)


def test_apply_failure_leaves_the_file_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """apply runs in one transaction: a failure after every statement of the split ran (here a
    statement on a missing table, on the real file) rolls all of it back."""
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(i, "a", "b" if i % 2 else None, "c") for i in range(9)])
    before = snapshot(db)
    plan = SplitPlan("t", ["id"], "t", ["id", "a"], [Family("side", "t_bc", ["b", "c"])])
    real = apply_mod.run_steps

    def then_fail(conn: sqlite3.Connection, script: Script, events: Listener, task: str) -> None:
        real(conn, script, events, task)
        assert conn.execute("SELECT count(*) FROM t_bc").fetchone() == (9,)  # the split did happen
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(apply_mod, "run_steps", then_fail)
    with pytest.raises(SplitError, match="no such table"):
        apply_mod.apply_split(db, plan, measure=False)
    assert snapshot(db) == before


def test_contract_refuses_while_the_workload_still_uses_moved_columns(tmp_path: Path) -> None:
    """--contract with a captured workload: a statement that still reads a moved column (or SELECT *)
    stops it, naming the statement; --force goes on; a workload on the core columns only lets it through."""
    _app, db = seeded("django_wide", tmp_path, "split.db")
    _split(db, "--auto", "--apply", "--no-measure")
    old_code = tmp_path / "old.jsonl"
    old_code.write_text(
        json.dumps({"sql": "SELECT username, bio FROM wide_member WHERE id = ?", "params": [1], "ms": 0.1}) + "\n"
    )
    new_code = tmp_path / "new.jsonl"
    new_code.write_text(
        json.dumps({"sql": "SELECT username, logins FROM wide_member WHERE id = ?", "params": [1], "ms": 0.1}) + "\n"
    )
    refused = CliRunner().invoke(main, ["split", str(db), "wide_member", "--contract", "--workload", str(old_code)])
    assert refused.exit_code != 0 and "bio" in refused.output, refused.output
    with sqlite3.connect(db) as conn:
        assert "bio" in {r[1] for r in conn.execute("PRAGMA table_info(wide_member)")}  # nothing changed
    forced = tmp_path / "forced.db"
    shutil.copyfile(db, forced)
    result = CliRunner().invoke(
        main, ["split", str(forced), "wide_member", "--contract", "--workload", str(old_code), "--force"]
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["split", str(db), "wide_member", "--contract", "--workload", str(new_code)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        assert "bio" not in {r[1] for r in conn.execute("PRAGMA table_info(wide_member)")}


def test_a_migration_that_rebuilds_the_table_runs_between_pause_and_repair(tmp_path: Path) -> None:
    """Django's AlterField rebuilds the table on SQLite. While the new tables' triggers write to it, the
    rebuild fails (SQLite checks their bodies when the copy is renamed into place) and rolls back; between
    --pause and --repair it runs, after which the ORM's writes keep both sides in step and revert is exact.
    Once a write went to one side only, --repair refuses (it cannot tell which side is right)."""
    app, db = seeded("django_wide", tmp_path, "split.db")
    reference = tmp_path / "unsplit.db"
    shutil.copyfile(db, reference)
    _split(db, "--auto", "--apply", "--no-measure")
    before = snapshot(db)
    with pytest.raises(AssertionError, match="error in trigger"):
        run(app, "remake", f"sqlite:{db}")
    assert snapshot(db) == before  # the migration rolled back
    assert len(_split(db, "--pause")["dropped"]) == 3 * (1 + len(_in_families(db)))
    for path in (db, reference):
        assert run(app, "remake", f"sqlite:{path}").strip() == "ok"
    drifted = tmp_path / "drifted.db"
    shutil.copyfile(db, drifted)
    [finding] = [f for f in diagnose(db, check_integrity=False).findings if f.kind == "split_sync"]
    assert finding.evidence["rows_out_of_step"] == 0 and "--repair" in finding.fix.description  # type: ignore[union-attr]

    assert _split(db, "--repair")["reinstalled"]
    assert not [f for f in diagnose(db, check_integrity=False).findings if f.kind == "split_sync"]
    assert _split(db, "--repair")["reinstalled"] == []
    assert json.loads(run(app, "orm", f"sqlite:{db}")) == json.loads(run(app, "orm", f"sqlite:{reference}"))
    assert _in_step(db) == 0
    _split(db, "--revert")
    assert snapshot(db) == snapshot(reference)

    run(app, "touch", f"sqlite:{drifted}")
    [finding] = [f for f in diagnose(drifted, check_integrity=False).findings if f.kind == "split_sync"]
    assert finding.evidence["rows_out_of_step"] == 1 and "--from table" in finding.fix.description  # type: ignore[union-attr]
    before = snapshot(drifted)
    result = CliRunner().invoke(main, ["split", str(drifted), "wide_member", "--repair"])
    assert result.exit_code != 0 and "differ from the new tables" in result.output, result.output
    assert snapshot(drifted) == before
    # old code's write is the right one: the new tables take it, and the ORM goes on as on the unsplit file
    assert _split(drifted, "--repair", "--from", "table")["reconciled"] == 1
    assert _in_step(drifted) == 0
    assert not [f for f in diagnose(drifted, check_integrity=False).findings if f.kind == "split_sync"]
    with sqlite3.connect(drifted) as conn:
        side = next(f for f in _in_families(drifted) if "bio" in _columns(conn, f))
        [(bio,)] = conn.execute(
            f'SELECT s.bio FROM "{side}" s JOIN wide_member w ON w.id = s.id WHERE w.username = ?', ("m3",)
        ).fetchall()
    assert bio == "written while the triggers were gone"


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}


def _in_families(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        record = find_record(conn, "wide_member")
        assert record is not None
        return [f.table for f in SplitPlan.from_dict(record.plan).families]


def test_new_code_writes_the_side_table_through_its_own_django_model(tmp_path: Path) -> None:
    """save(), update() and create() on a model of the new table reach the wide table, as old code sees it."""
    from pgferry.split.apply import apply_split

    app, db = seeded("django_wide", tmp_path, "split.db")
    core = ["id", "username", "email", "logins", "github", "mastodon", "discord"]
    family = Family("side", "wide_member_profile", ["bio", "location", "website"])
    apply_split(db, SplitPlan("wide_member", ["id"], "wide_member", core, [family]), measure=False)
    out = json.loads(run(app, "side", f"sqlite:{db}"))
    assert out["side_update"] == 2
    assert out["member_view"] == [["via side", "Side"], ["bio 6", "Side"], ["created via side", None]]
    assert out["after_delete"] == [None, None]  # the member's profile is gone, the member stays
    assert _in_step(db) == 0
