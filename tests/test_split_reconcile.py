"""`split --repair --from table|new`: after writes reached one side only (triggers paused or dropped), the
caller names the side that is right; the other is rewritten from it and the triggers go back, in one
transaction. Refusals change nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.split.apply import apply_split
from pgferry.split.checks import out_of_step
from pgferry.split.layout import Layout
from pgferry.split.plan import Family, SplitPlan
from pgferry.split.record import find_record
from pgferry.split.repair import pause_split
from pgferry.split.revert import original_table
from split_util import snapshot

PLAN = SplitPlan(
    "t",
    ["id"],
    "t",
    ["id", "a"],
    [Family("side", "t_side", ["b", "c"]), Family("key_value", "t_kv", ["d", "e"])],
)


@pytest.fixture
def paused(tmp_path: Path) -> Path:
    """A split table with its sync triggers paused, both sides still equal."""
    db = tmp_path / "r.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, c INT, d TEXT, e TEXT)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
            [(i, f"a{i}", f"b{i}" if i % 2 else None, i, f"d{i}" if i % 3 else None, "e") for i in range(1, 9)],
        )
    apply_split(db, PLAN, measure=False)
    pause_split(db, "t")
    return db


def _repair(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["split", str(db), "t", "--repair", *args])
    return result.exit_code, result.output


def _drift(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        record = find_record(conn, "t")
        assert record is not None
        return out_of_step(conn, Layout.of(original_table(record), SplitPlan.from_dict(record.plan)))


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_the_table_wins(paused: Path) -> None:
    with sqlite3.connect(paused) as conn:  # old code wrote the table while the triggers were paused
        conn.execute("UPDATE t SET b = 'new', d = NULL, e = 'E' WHERE id = 3")
        conn.execute("UPDATE t SET c = NULL, b = NULL WHERE id = 5")
        conn.execute("INSERT INTO t VALUES (20, 'a20', 'b20', 20, 'd20', NULL)")
        conn.execute("DELETE FROM t WHERE id = 1")
    assert _drift(paused) == 3  # id 20 and id 1 are rows one side lacks, not cells that differ
    code, out = _repair(paused)
    assert code == 2 and "--from table" in out, out

    code, out = _repair(paused, "--from", "table", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["from"] == "table" and report["reconciled"] == 3 and len(report["reinstalled"]) == 9
    assert _drift(paused) == 0
    wide = _rows(paused, "SELECT id, b, c FROM t WHERE b IS NOT NULL OR c IS NOT NULL ORDER BY id")
    assert _rows(paused, "SELECT id, b, c FROM t_side ORDER BY id") == wide
    assert (1,) not in _rows(paused, "SELECT id FROM t_side") and (20,) in _rows(paused, "SELECT id FROM t_kv")
    assert _rows(paused, "SELECT name, value FROM t_kv WHERE id = 3 ORDER BY name") == [("e", "E")]
    with sqlite3.connect(paused) as conn:  # the triggers are back: a write follows to the new tables
        conn.execute("UPDATE t SET b = 'after' WHERE id = 4")
    assert _rows(paused, "SELECT b FROM t_side WHERE id = 4") == [("after",)]
    assert _drift(paused) == 0


def test_the_new_tables_win(paused: Path) -> None:
    with sqlite3.connect(paused) as conn:  # new code wrote the new tables while the triggers were paused
        conn.execute("UPDATE t_side SET b = 'moved' WHERE id = 3")
        conn.execute("DELETE FROM t_side WHERE id = 5")
        conn.execute("INSERT INTO t_kv (id, name, value) VALUES (6, 'd', 'kv6')")
        conn.execute("DELETE FROM t_kv WHERE id = 2 AND name = 'e'")
    assert _drift(paused) == 4
    code, out = _repair(paused, "--from", "new")
    assert code == 0 and "4 row(s) of t took the values of the new tables" in out, out
    assert _drift(paused) == 0
    assert _rows(paused, "SELECT b, c, d, e FROM t WHERE id IN (2, 3, 5, 6) ORDER BY id") == [
        (None, 2, "d2", None),
        ("moved", 3, None, "e"),
        (None, None, "d5", "e"),
        (None, 6, "kv6", "e"),
    ]
    assert _rows(paused, "SELECT a FROM t WHERE id = 5") == [("a5",)]  # core columns are untouched


def test_refusals_change_nothing(paused: Path) -> None:
    with sqlite3.connect(paused) as conn:
        conn.execute("INSERT INTO t_side (id, b) VALUES (99, 'orphan')")  # a row the table lacks
        conn.execute("UPDATE t_side SET b = 'x' WHERE id = 3")
    before = snapshot(paused)
    code, out = _repair(paused, "--from", "new")
    assert code == 2 and "would be lost" in out, out
    assert snapshot(paused) == before
    result = CliRunner().invoke(main, ["split", str(paused), "t", "--from", "new"])
    assert result.exit_code == 2 and "--from goes with --repair" in result.output
    result = CliRunner().invoke(main, ["split", str(paused), "t", "--repair", "--from", "both"])
    assert result.exit_code == 2 and "'both' is not one of" in result.output
    assert snapshot(paused) == before


def test_nothing_to_reconcile_is_a_plain_repair(paused: Path) -> None:
    code, out = _repair(paused, "--from", "new")
    assert code == 0 and "re-created 9 sync triggers of t" in out and "took the values" not in out, out
    code, out = _repair(paused, "--from", "table")
    assert code == 0 and "nothing to do" in out, out


def test_contract_refuses_only_views_that_break(tmp_path: Path) -> None:
    """A view reading another table's column named like a moved one is no reason to refuse; a view that
    reads the moved column from the split table is, and the refusal changes nothing."""
    db = tmp_path / "v.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);
            CREATE TABLE o (id INTEGER PRIMARY KEY, b TEXT);
            CREATE VIEW reads_other AS SELECT t.id, o.b FROM t JOIN o ON o.id = t.id;
            CREATE VIEW reads_moved AS SELECT id, b FROM t;
            INSERT INTO t VALUES (1, 'a', 'b');
            """
        )
    apply_split(db, SplitPlan("t", ["id"], "t", ["id", "a"], [Family("side", "t_side", ["b"])]), measure=False)
    before = snapshot(db)
    result = CliRunner().invoke(main, ["split", str(db), "t", "--contract"])
    assert result.exit_code == 2 and "view 'reads_moved' would break (no such column: b)" in result.output
    assert snapshot(db) == before
    with sqlite3.connect(db) as conn:
        conn.execute("DROP VIEW reads_moved")
    result = CliRunner().invoke(main, ["split", str(db), "t", "--contract", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["removed_columns"] == ["b"]
    assert _rows(db, "SELECT * FROM reads_other") == []
