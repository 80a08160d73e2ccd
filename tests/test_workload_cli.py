"""`pgferry workload summary`: table, --json, --top and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.workload import Statement


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "capture.jsonl"
    lines = [
        Statement(
            sql=f"SELECT * FROM users WHERE id = {i}", ms=2.0, request=f"r{i}", site="app.views:profile:12"
        ).to_line()
        for i in range(30)
    ]
    lines += [
        Statement(sql=f"SELECT * FROM forum_topics WHERE id IN ({i}, {i + 1})", ms=0.5).to_line() for i in range(10)
    ]
    lines += [Statement(sql="UPDATE users SET last_seen = ? WHERE id = ?", params=[1, 2], ms=100.0).to_line()]
    path.write_bytes(b"".join(lines))
    return path


def test_summary_table(log: Path) -> None:
    result = CliRunner().invoke(main, ["workload", "summary", str(log)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.splitlines()[0] == f"{log}: 41 statements, 3 fingerprints"
    assert "UPDATE users SET last_seen = ? WHERE id = ?" in out
    assert "app.views:profile:12" in out
    # ordered by total time: the UPDATE (100 ms) before the users SELECT (60 ms) before topics (5 ms)
    assert out.index("UPDATE users") < out.index("FROM users") < out.index("forum_topics")


def test_summary_json_is_one_object(log: Path) -> None:
    result = CliRunner().invoke(main, ["workload", "summary", str(log), "--json", "--top", "2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["file"] == str(log)
    assert payload["statements"] == 41
    assert payload["distinct_fingerprints"] == 3
    assert [f["text"] for f in payload["fingerprints"]] == [
        "UPDATE users SET last_seen = ? WHERE id = ?",
        "SELECT * FROM users WHERE id = ?",
    ]
    users = payload["fingerprints"][1]
    assert (users["calls"], users["total_ms"], users["requests"]) == (30, 60.0, 30)
    assert users["top_sites"] == [{"site": "app.views:profile:12", "calls": 30}]
    assert len(users["id"]) == 16


def test_summary_of_a_sql_file(tmp_path: Path) -> None:
    script = tmp_path / "queries.sql"
    script.write_text("SELECT 1; SELECT 2;\n-- c\nSELECT 'a;b';\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["workload", "summary", str(script), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["statements"] == 3
    assert payload["fingerprints"][0]["calls"] == 3 and payload["fingerprints"][0]["mean_ms"] is None


def test_missing_file_is_one_line_and_non_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["workload", "summary", str(tmp_path / "nope.jsonl")])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [f"Error: workload file not found: {tmp_path / 'nope.jsonl'}"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_malformed_line_is_one_line_and_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sql": "SELECT 1", "ms": 1}\n{"sql": \n{"sql": "SELECT 2"}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["workload", "summary", str(bad), "--json"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}, line 2: not valid JSON")


def test_summary_table_top_and_narrow_terminal(log: Path) -> None:
    result = CliRunner().invoke(main, ["workload", "summary", str(log), "--top", "1"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{log}: 41 statements, 3 fingerprints (top 1 by total time)"
    assert "forum_topics" not in result.output
