"""What the doctor says must be true of the file and the workload it read: an index a plan uses is not
"unused", a driver default is not reported as a fact, no repair of rows that do not exist, no drop
that measured slower, growth advice about this database's tables, and foreign keys keep the index
they need. Fixtures are SQLite files built here; workloads are Statements in the qmark style."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

from forum.seed.schema import TABLES
from pgferry.doctor import diagnose
from pgferry.doctor.writecost import InsertCost
from pgferry.workload import Statement

SRC = Path(__file__).resolve().parents[1] / "src" / "pgferry"
_INDEX_IN_PLAN = re.compile(r"USING (?:COVERING )?INDEX (\S+)")


def _db(path: Path, script: str, rows: list[tuple[str, list[tuple[object, ...]]]] = ()) -> Path:  # type: ignore[assignment]
    conn = sqlite3.connect(path)
    conn.executescript(script)
    for sql, values in rows:
        conn.executemany(sql, values)
    conn.commit()
    conn.close()
    return path


def test_an_index_in_a_plan_before_is_never_called_unused(tmp_path: Path) -> None:
    """ix_a serves the statement now; the proposed (b, a) index would serve it better. The unused claim
    is read from the same plans the missing-index finding shows, so ix_a is not "used by none"."""
    db = _db(
        tmp_path / "t.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INT, b INT, c TEXT); CREATE INDEX ix_a ON t (a)",
        [("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", [(i % 50, i, f"row {i}") for i in range(5000)])],
    )
    workload = [Statement("SELECT c FROM t WHERE a = ? AND b = ?", [i % 50, i], ms=1.0) for i in range(40)]
    report = diagnose(db, workload, measure_writes=False)
    missing = report.by_kind("missing_index")
    assert missing, "the (b) lookup needs an index"
    in_plans = {
        m.group(1)
        for f in missing
        for s in f.evidence["statements"]
        for line in s["plan_before"]
        for m in [_INDEX_IN_PLAN.search(line)]
        if m
    }
    assert "ix_a" in in_plans
    unused = {f.index for f in report.by_kind("redundant_index") if f.reason == "unused_by_workload"}
    assert not in_plans & unused


def test_no_busy_timeout_in_the_log_is_reported_with_the_driver_default(tmp_path: Path) -> None:
    db = _db(tmp_path / "t.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    report = diagnose(db, [Statement("SELECT v FROM t WHERE id = ?", [1], ms=0.1)], measure_writes=False)
    (busy,) = [f for f in report.by_kind("pragma") if f.evidence.get("setting") == "busy_timeout"]
    assert "5 s" in busy.title and "timeout=5.0" in busy.title
    assert not busy.title.startswith("no busy_timeout seen") and "fails at once" not in busy.title
    assert busy.severity == "low"  # nothing failed


def test_foreign_key_repair_is_advised_only_for_rows_that_violate(tmp_path: Path) -> None:
    script = "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (id INTEGER PRIMARY KEY, p INT REFERENCES p (id))"
    clean = _db(tmp_path / "clean.db", script + "; INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1)")
    dirty = _db(tmp_path / "dirty.db", script + "; INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 9)")

    def fk(path: Path) -> str:
        (finding,) = [f for f in diagnose(path).by_kind("pragma") if f.evidence.get("setting") == "foreign_keys"]
        assert finding.fix is not None
        return finding.title + " | " + finding.fix.description

    assert "orphan" not in fk(clean) and "no row violates" in fk(clean)
    assert "orphan" in fk(dirty) and "1 rows violate" in fk(dirty)


def test_no_drop_on_write_cost_when_dropping_measured_slower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The measurement is replaced (inserts doing less work WITH the indexes); the database is real.
    A low-selectivity index, whose only case is its write cost, is then not flagged; an exact
    duplicate still is, and its fix does not promise faster writes."""
    db = _db(
        tmp_path / "t.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, flag INT, v TEXT); CREATE INDEX ix_flag ON t (flag); "
        "CREATE INDEX ix_v ON t (v); CREATE INDEX ix_v_again ON t (v)",
        [("INSERT INTO t (flag, v) VALUES (?, ?)", [(i % 2, f"v{i}") for i in range(3000)])],
    )

    def slower_without(_stats: object, table: object, index_sets: dict[str, object], **_kw: object) -> InsertCost:
        return InsertCost(
            "t",
            100,
            1000,
            {"all_indexes": 9.0, "without_redundant": 10.0},
            {"all_indexes": 90.0, "without_redundant": 100.0},
        )

    monkeypatch.setattr("pgferry.doctor.indexes.measure_insert_cost", slower_without)
    report = diagnose(db)
    found = {f.index: f for f in report.by_kind("redundant_index")}
    assert "ix_flag" not in found and any("ix_flag" in n and "no faster" in n for n in report.notes)
    dup = found["ix_v_again"]
    assert dup.reason == "exact_duplicate" and dup.fix is not None and "no faster" in dup.fix.description
    assert dup.evidence["write_cost"]["write_amplification"] == 0.9


def test_growth_advice_names_this_databases_tables(tmp_path: Path) -> None:
    rows = [(f"2026-{1 + i // 100:02d}-{1 + (i // 4) % 25:02d} 12:00:00", "x" * 200) for i in range(1000)]
    db = _db(
        tmp_path / "t.db",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, body TEXT)",
        [("INSERT INTO events (created_at, body) VALUES (?, ?)", sorted(rows))],
    )
    (growth,) = diagnose(db).by_kind("growth")
    assert growth.fix is not None and "events" in growth.fix.description
    forum_names = {t.name for t in TABLES} | {"activity", "notifications", "sessions"}
    assert not [n for n in forum_names if re.search(rf"\b{n}\b", growth.fix.description)]


def test_pgferry_names_no_forum_table_in_what_it_says() -> None:
    """pgferry works on any SQLite file: no string it can show (docstrings aside) names the forum's tables."""
    forum_names = {t.name for t in TABLES}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                words = set(re.findall(r"[a-z_]+", node.value))
                found += [(path.name, name) for name in forum_names & words]
    assert not found


def test_an_index_a_foreign_key_needs_is_never_low_selectivity(tmp_path: Path) -> None:
    """One parent, 30 children: the index has one distinct value, and it is still how a parent's delete
    finds its children. Flagging it would make the next run ask for it back (fk_without_index)."""
    db = _db(
        tmp_path / "t.db",
        "CREATE TABLE p (id INTEGER PRIMARY KEY); "
        "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INT REFERENCES p (id), kind INT); "
        "CREATE INDEX ix_c_p ON c (p_id); CREATE INDEX ix_c_kind ON c (kind); INSERT INTO p VALUES (1)",
        [("INSERT INTO c (p_id, kind) VALUES (1, ?)", [(i % 2,) for i in range(30)])],
    )
    low = {f.index for f in diagnose(db, measure_writes=False).by_kind("redundant_index")}
    assert "ix_c_p" not in low and "ix_c_kind" in low


def test_a_flag_index_is_dropped_unasked_only_when_a_workload_shows_no_query_needs_it(tmp_path: Path) -> None:
    """Two values in 3,000 rows say nothing of the queries: one looking up the rare value gains from the
    index. Without a workload the drop is advice; with one whose statements were planned without it, tune's."""
    db = _db(
        tmp_path / "t.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, flag INT, v TEXT); CREATE INDEX ix_flag ON t (flag)",
        [("INSERT INTO t (flag, v) VALUES (?, ?)", [(int(i % 500 == 0), f"v{i}") for i in range(3000)])],
    )
    (alone,) = [f for f in diagnose(db, measure_writes=False).by_kind("redundant_index") if f.index == "ix_flag"]
    assert alone.reason == "low_selectivity" and alone.fix is not None and not alone.fix.auto
    assert "--workload" in alone.fix.description and "checked_against_workload" not in alone.evidence
    workload = [Statement("SELECT v FROM t WHERE id = ?", [i], ms=0.1) for i in range(20)]
    (checked,) = [
        f for f in diagnose(db, workload, measure_writes=False).by_kind("redundant_index") if f.index == "ix_flag"
    ]
    assert checked.reason == "low_selectivity" and checked.fix is not None and checked.fix.auto
    assert checked.evidence["checked_against_workload"] is True
