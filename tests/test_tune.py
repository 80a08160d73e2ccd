"""pgferry tune on the lending-library app: nothing changes without --apply; --apply makes the plan's
changes one step at a time, measures before/after, and its rollback script restores the index set,
the statistics and the journal mode exactly."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from doctor_app import build_library, run_app
from pgferry.cli import main
from pgferry.errors import UsageError
from pgferry.tune import build_plan, index_set, rollback_script, run_script, tune


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    db = build_library(tmp_path / "library.db", defects=True)
    log = run_app(db, tmp_path / "capture.jsonl", defects=True)
    return db, log


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stat1(path: Path) -> list[tuple] | None:
    conn = sqlite3.connect(path)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return None
        return sorted(conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1").fetchall())
    finally:
        conn.close()


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_without_apply_nothing_changes(library: tuple[Path, Path]) -> None:
    db, log = library
    before = _digest(db)
    result = tune(db, log)
    assert _digest(db) == before
    assert result.applied is None
    kinds = [s.kind for s in result.plan.steps]
    assert kinds.index("create_index") < kinds.index("drop_index") < kinds.index("pragma") < kinds.index("analyze")
    dropped = {s.index for s in result.plan.steps if s.kind == "drop_index"}
    assert "idx_books_author_copy" in dropped and "idx_books_in_print" in dropped
    assert not {"idx_loans_open_by_book", "idx_authors_email_nocase"} & dropped  # unused: only with --only unused_index


def test_apply_then_rollback_restores_everything_exactly(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, log = library
    indexes, stats, mode = index_set(db), _stat1(db), _journal_mode(db)
    script = tmp_path / "rollback.sql"
    result = tune(db, log, apply=True, rollback_path=script)
    assert result.applied is not None and result.applied.ok
    after = {name for _t, name, _sql in index_set(db)}
    created = {s.index for s in result.plan.steps if s.kind == "create_index"}
    dropped = {s.index for s in result.plan.steps if s.kind == "drop_index"}
    assert created <= after and not dropped & after
    assert _journal_mode(db) == "wal" and _stat1(db)
    assert result.before is not None and result.after is not None
    assert set(result.before.timings) == set(result.after.timings)
    assert all(not t.errors for t in result.after.timings.values())
    assert result.after.total_kops < result.before.total_kops  # VM instructions: deterministic work
    assert set(result.insert_cost) >= {"books", "loans"}
    run_script(db, script.read_text())
    assert index_set(db) == indexes
    assert _stat1(db) == stats
    assert _journal_mode(db) == mode


def test_rollback_after_a_partial_apply_is_safe(library: tuple[Path, Path]) -> None:
    db, log = library
    indexes = index_set(db)
    result = tune(db, log)
    conn = sqlite3.connect(db)
    script_text = rollback_script(conn, result.plan)
    conn.close()
    # run only the first half of the steps, as a crash would leave it
    conn = sqlite3.connect(db, isolation_level=None)
    for step in result.plan.steps[: len(result.plan.steps) // 2]:
        for sql in step.sql:
            conn.execute(sql)
    conn.close()
    run_script(db, script_text)
    assert index_set(db) == indexes


def test_rollback_script_is_never_overwritten(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, log = library
    script = tmp_path / "exists.sql"
    script.write_text("-- mine\n")
    with pytest.raises(UsageError, match="exists already"):
        tune(db, log, apply=True, rollback_path=script)
    assert script.read_text() == "-- mine\n"


def test_only_filters_kinds(library: tuple[Path, Path]) -> None:
    db, log = library
    result = tune(db, log, only=["redundant_index"])
    assert {s.kind for s in result.plan.steps} == {"drop_index", "analyze"}
    with_unused = build_plan(result.report, ["unused_index"])
    assert {s.kind for s in with_unused.steps} == {"drop_index", "analyze"}
    assert {s.index for s in with_unused.steps if s.index} == {
        f.index for f in result.report.by_kind("redundant_index") if f.reason == "unused_by_workload"
    }


def test_cli_prints_the_plan_and_changes_nothing(library: tuple[Path, Path]) -> None:
    db, log = library
    before = _digest(db)
    result = CliRunner().invoke(main, ["tune", str(db), "--workload", str(log)])
    assert result.exit_code == 0, result.output
    assert "DROP INDEX" in result.output and "CREATE INDEX" in result.output and "--apply" in result.output
    assert _digest(db) == before
    bad = CliRunner().invoke(main, ["tune", str(db), "--only", "everything"])
    assert bad.exit_code == 2
