"""pgferry doctor on a small lending-library app (tests/doctor_app.py): planted defects are found with
the right reasons and evidence, a well-built version of the same app gets no index findings, and the
database is never written."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from doctor_app import ADDRESS, PLANTED, PREFS, SOCIAL, build_library, run_app
from pgferry.cli import main
from pgferry.doctor import Report, diagnose
from pgferry.split.apply import apply_split
from pgferry.split.plan import SplitPlan, load_plan


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("library")
    db = build_library(base / "library.db", defects=True)
    log = run_app(db, base / "capture.jsonl", defects=True)
    return db, log


@pytest.fixture(scope="module")
def report(library: tuple[Path, Path]) -> Report:
    db, log = library
    return diagnose(db, log)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("clean")
    db = build_library(base / "clean.db", defects=False)
    log = run_app(db, base / "capture.jsonl", defects=False)
    return db, log


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_planted_redundant_indexes_have_the_right_reasons(report: Report) -> None:
    found = {f.index: f.reason for f in report.by_kind("redundant_index")}
    for name, reason in PLANTED.items():
        if reason is None:
            assert found.get(name) in (None, "unused_by_workload"), name
        else:
            assert found.get(name) == reason, name
    by_name = {f.index: f for f in report.by_kind("redundant_index")}
    assert by_name["idx_books_author_copy"].evidence["covered_by"] == "idx_books_author"
    assert by_name["idx_loans_member"].evidence["covered_by"] == "idx_loans_member_date"
    assert by_name["idx_books_id"].fix.sql == ['DROP INDEX "idx_books_id"']
    assert by_name["idx_books_id"].fix.reverse_sql == ['CREATE INDEX "idx_books_id" ON "books" ("id")']


def test_redundant_evidence_carries_measured_write_cost(report: Report) -> None:
    finding = next(f for f in report.by_kind("redundant_index") if f.index == "idx_books_author_copy")
    cost = finding.evidence["write_cost"]
    assert cost["inserts"] > 0
    assert set(cost["ms_per_1000_inserts"]) == {"all_indexes", "without_redundant"}
    assert cost["write_amplification"] > 0


def test_unused_indexes_are_never_applied_by_default(report: Report) -> None:
    unused = [f for f in report.by_kind("redundant_index") if f.reason == "unused_by_workload"]
    assert unused
    assert all(not f.fix.auto and f.severity == "low" for f in unused)


def test_missing_indexes_are_verified_by_the_planner(report: Report) -> None:
    missing = {f.table: f for f in report.by_kind("missing_index")}
    keys = {tuple(c.split()[0].strip('"') for c in f.columns) for f in report.by_kind("missing_index")}
    assert ("genre", "published_at") in keys
    assert ("isbn",) in keys
    finding = missing["books"]
    statement = finding.evidence["statements"][0]
    assert any(line.startswith("SCAN books") for line in statement["plan_before"])
    assert any(
        f"USING INDEX {finding.index}" in line or f"COVERING INDEX {finding.index}" in line
        for line in statement["plan_after"]
    )
    assert statement["estimated_rows_after"] < statement["estimated_rows_before"]
    assert finding.fix.sql[0].startswith(f'CREATE INDEX "{finding.index}" ON "books"')


def test_n_plus_one_names_the_loop_its_site_and_parent(report: Report) -> None:
    (finding,) = report.by_kind("n_plus_one")
    ev = finding.evidence
    assert ev["statement"] == "SELECT handle FROM members WHERE id = ?"
    assert "book_page" in ev["call_site"]
    assert ev["parent"]["statement"] == "SELECT id, member_id FROM loans WHERE book_id = ?"
    assert "book_page" in ev["parent"]["call_site"]
    assert ev["per_request"]["max"] >= 5 and ev["count"] >= 5 * ev["requests"]
    assert "IN (" in finding.fix.sql[0]


def test_missing_transaction_is_the_lend_request_only(report: Report) -> None:
    (finding,) = report.by_kind("missing_transaction")
    statements = [w["statement"] for w in finding.evidence["writes"]]
    assert statements[0].startswith("INSERT INTO loans")
    assert any(s.startswith("UPDATE books") for s in statements)
    assert all("lend" in w["call_site"] for w in finding.evidence["writes"])
    assert not any("returned_at" in s for s in statements)  # give_back runs in BEGIN IMMEDIATE ... COMMIT
    assert finding.fix.sql[0] == "BEGIN IMMEDIATE"


def test_wide_members_table_splits_into_its_families(report: Report) -> None:
    (finding,) = report.by_kind("wide_table")
    assert finding.table == "members"
    families = {tuple(f["columns"]): f for f in finding.evidence["families"]}
    assert set(families) == {ADDRESS, tuple(f"{s}_url" for s in SOCIAL), PREFS}
    assert families[tuple(f"{s}_url" for s in SOCIAL)]["proposal"] == "key_value"
    assert families[ADDRESS]["proposal"] == "side"
    plan = finding.fix.plan
    assert {"id", "handle", "joined_at", "points"} <= set(plan["core_columns"])
    moved = [c for t in plan["side"] + plan["key_value"] for c in t["columns"]]
    assert sorted(moved + plan["core_columns"]) == sorted(finding.evidence["null_ratio"])
    assert 0 < finding.evidence["null_ratio"]["street"] < 1


def test_wide_table_plan_is_accepted_by_split(library: tuple[Path, Path], report: Report, tmp_path: Path) -> None:
    db, _log = library
    copy = tmp_path / "split.db"
    copy.write_bytes(db.read_bytes())
    (finding,) = report.by_kind("wide_table")
    plan = SplitPlan.from_dict(finding.fix.plan)
    apply_split(copy, plan, measure=False)
    conn = sqlite3.connect(copy)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    handles = conn.execute("SELECT count(*), count(github_url) FROM members").fetchone()
    conn.close()
    assert {plan.core_table, *(f.table for f in plan.families)} <= names
    assert handles[0] == 1500 and handles[1] > 0  # the old name is now a view that reads the split tables


def test_settings_findings(report: Report) -> None:
    titles = " | ".join(f.title for f in report.by_kind("pragma"))
    assert "WAL2" in titles
    assert "journal_mode is delete" in titles
    assert "no sqlite_stat1" in titles
    wal = next(f for f in report.by_kind("pragma") if f.fix and f.fix.sql == ["PRAGMA journal_mode = WAL"])
    assert wal.fix.reverse_sql == ["PRAGMA journal_mode = DELETE"] and wal.fix.auto


def test_growth_is_forecast_from_detected_time_columns(library: tuple[Path, Path]) -> None:
    db, _log = library
    report = diagnose(db, size_limit=64 * 2**20, measure_writes=False)
    (growth,) = report.by_kind("growth")
    ev = growth.evidence
    assert ev["clocks"]["loans"]["column"] == "loaned_at"
    assert ev["clocks"]["books"]["column"] == "published_at"
    assert ev["bytes_per_day"] > 0
    low, high = ev["bytes_per_day_95"]
    assert low <= ev["bytes_per_day"] <= high
    assert ev["limit_source"] == "--size-limit" and ev["limit_bytes"] == 64 * 2**20
    assert ev["days_to_limit"] > 0
    assert report.charts["growth"]["series"] and report.charts["growth"]["forecast"]


def test_clean_database_gets_no_index_findings(clean: tuple[Path, Path]) -> None:
    db, log = clean
    report = diagnose(db, log)
    assert report.by_kind("missing_index") == []
    assert report.by_kind("redundant_index") == []
    assert report.by_kind("n_plus_one") == [] and report.by_kind("missing_transaction") == []
    assert report.by_kind("wide_table") == []


def test_doctor_never_writes_to_the_database(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, log = library
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    before = _digest(copy)
    diagnose(copy, log)
    assert _digest(copy) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db"]


def test_doctor_waits_for_a_writer_holding_the_lock(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, _log = library
    copy = tmp_path / "live.db"
    copy.write_bytes(db.read_bytes())
    writer = sqlite3.connect(copy, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    released = threading.Event()

    def release() -> None:
        time.sleep(0.5)
        writer.execute("COMMIT")
        released.set()

    thread = threading.Thread(target=release)
    thread.start()
    try:
        report = diagnose(copy, measure_writes=False)
    finally:
        thread.join()
        writer.close()
    assert released.is_set()
    assert report.by_kind("redundant_index")


def test_keys_and_integrity(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);
        CREATE TABLE log (at TEXT, message TEXT);
        CREATE INDEX log_at ON log (at);
        """
    )
    conn.executemany("INSERT INTO log VALUES (?, ?)", [(f"2024-01-{d:02d}", "x" * 50) for d in range(1, 29)] * 40)
    conn.commit()
    conn.close()
    report = diagnose(db)
    (fk,) = report.by_kind("fk_without_index")
    assert (fk.table, fk.columns) == ("child", ["parent_id"])
    assert fk.fix.sql == ['CREATE INDEX "idx_child_parent_id" ON "child" ("parent_id")']
    (no_pk,) = report.by_kind("no_primary_key")
    assert no_pk.table == "log"
    assert report.by_kind("integrity") == []
    # corrupt the index's root page: quick_check must say so, the rest still runs
    root = sqlite3.connect(db).execute("SELECT rootpage FROM sqlite_master WHERE name = 'log_at'").fetchone()[0]
    data = bytearray(db.read_bytes())
    page = 4096
    data[(root - 1) * page + 100 : root * page] = b"\xff" * (page - 100)
    db.write_bytes(bytes(data))
    report = diagnose(db, measure_writes=False)
    (integrity,) = report.by_kind("integrity")
    assert integrity.severity == "high" and integrity.evidence["quick_check"]


def test_cli_json_is_one_object(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, log = library
    html = tmp_path / "report.html"
    plans = tmp_path / "plans"
    result = CliRunner().invoke(
        main, ["doctor", str(db), "--workload", str(log), "--json", "--html", str(html), "--split-plans", str(plans)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["database"] == str(db)
    kinds = {f["kind"] for f in data["findings"]}
    assert {"missing_index", "redundant_index", "wide_table", "n_plus_one", "missing_transaction", "pragma"} <= kinds
    page = html.read_text()
    assert page.count("<svg") >= 3 and "<script" not in page and "http" not in page.split("<body>")[0]
    plan = load_plan(plans / "members.split.toml")
    assert plan.table == "members" and plan.families


def test_cli_text_report(library: tuple[Path, Path]) -> None:
    db, log = library
    result = CliRunner().invoke(main, ["doctor", str(db), "--workload", str(log)])
    assert result.exit_code == 0, result.output
    assert "missing_index" in result.output and "exact_duplicate" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["doctor", "/nonexistent/x.db"], "no such file"),
        (["doctor", "{db}", "--size-limit", "lots"], "--size-limit"),
        (["doctor", "{db}", "--workload", "/nonexistent/w.jsonl"], "w.jsonl"),
        (["doctor", "{text}"], "not a SQLite database"),
    ],
)
def test_cli_errors_are_one_line(library: tuple[Path, Path], tmp_path: Path, args: list[str], message: str) -> None:
    db, _log = library
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    argv = [a.format(db=db, text=text) for a in args]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]


def test_columns_have_one_shape_in_every_finding(library: tuple[Path, Path], report: Report) -> None:
    """`columns` is always a list of bare column names as the table declares them (an expression key
    as its SQL text): never quoted SQL. The SQL form of a proposed index's keys is in evidence.key_sql."""
    db, _log = library
    conn = sqlite3.connect(db)
    declared = {
        t: {r[1] for r in conn.execute("SELECT * FROM pragma_table_xinfo(?)", (t,))}
        for (t,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    }
    conn.close()
    with_columns = [f for f in report.to_dict()["findings"] if "columns" in f]
    assert {f["kind"] for f in with_columns} >= {"missing_index", "redundant_index", "wide_table"}
    for finding in with_columns:
        for column in finding["columns"]:
            assert isinstance(column, str) and '"' not in column, finding
            assert column in declared[finding["table"]] or "(" in column, (finding["kind"], column)
    for finding in report.by_kind("missing_index"):
        assert len(finding.evidence["key_sql"]) == len(finding.columns or [])
        assert all(k.startswith('"') for k in finding.evidence["key_sql"] if "(" not in k)
