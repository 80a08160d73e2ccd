"""A hot lookup is not drowned by slow commits: on a slow or busy disk every autocommit INSERT takes
hundreds of milliseconds that no index shortens, and the missing index of a lookup that takes a
thousandth of that time in all is still proposed (its share is of the statements an index could serve)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from pgferry.doctor import diagnose


def test_a_missing_index_is_proposed_however_slow_the_writes_were(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, code TEXT NOT NULL, n INTEGER)")
        conn.executemany("INSERT INTO item (code, n) VALUES (?, ?)", [(f"c{i:05}", i) for i in range(5000)])
    lines = [
        {"sql": "SELECT * FROM item WHERE code = ?", "params": [f"c{i * 7 % 5000:05}"], "ms": 0.05} for i in range(200)
    ]
    lines += [
        {"sql": "INSERT INTO item (code, n) VALUES (?, ?)", "params": [f"new{i}", i], "ms": 400.0} for i in range(50)
    ]
    log = tmp_path / "capture.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    found = diagnose(db, log).by_kind("missing_index")
    assert [(f.table, [c.split()[0].strip('"') for c in f.columns]) for f in found] == [("item", ["code"])]
