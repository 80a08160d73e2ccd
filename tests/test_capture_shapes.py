"""Every write shape an application can make is captured and applied: after catch-up PostgreSQL holds
exactly SQLite's rows. Each case runs on rowid tables and on WITHOUT ROWID tables, as SQLite's session
extension tests do."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture_util import Statement, assert_same, caught_up, lag, make_source, started, write

CASES: dict[str, tuple[list[Statement], tuple[str, ...]]] = {
    "insert": (
        [
            ("INSERT INTO item VALUES (101, 'n101', 1, 'new', x'01')", ()),
            ("INSERT INTO tag VALUES (101, 'x')", ()),
            ("INSERT INTO pair VALUES ('new', 'row', 'v')", ()),
        ],
        (),
    ),
    "update": ([("UPDATE item SET n = n * 2, note = note || '!' WHERE id <= 10", ())], ()),
    "update of the key": (
        [
            ("UPDATE item SET id = id + 1000 WHERE id IN (3, 4)", ()),
            ("UPDATE pair SET b = b || '-moved' WHERE a = 'a1'", ()),
            ("UPDATE tag SET name = 'renamed' WHERE item_id = 5 AND name = 't'", ()),
        ],
        (),
    ),
    "delete": (
        [("DELETE FROM item WHERE id % 3 = 0", ()), ("DELETE FROM pair WHERE a = 'a2'", ())],
        (),
    ),
    "delete without where": ([("DELETE FROM tag", ()), ("DELETE FROM pair", ())], ()),
    "upsert": (
        [
            (
                "INSERT INTO item (id, email, n) VALUES (5, 'e5', 50), (300, 'n300', 1) ON CONFLICT (id) "
                "DO UPDATE SET n = excluded.n",
                (),
            ),
            ("INSERT INTO pair VALUES ('a1', 'b1', 'new') ON CONFLICT (a, b) DO UPDATE SET v = excluded.v", ()),
        ],
        (),
    ),
    "replace on the same key": (
        [("INSERT OR REPLACE INTO item VALUES (6, 'e6', 66, 'replaced', NULL)", ())],
        (),
    ),
    "replace evicting another key": (  # recursive_triggers off: the evicted rows fire no DELETE trigger
        [
            ("INSERT OR REPLACE INTO item VALUES (400, 'e7', 0, 'took e7', NULL)", ()),
            ("UPDATE OR REPLACE item SET email = 'e9' WHERE id = 8", ()),
        ],
        ("recursive_triggers = OFF",),
    ),
    "insert or ignore": (
        [("INSERT OR IGNORE INTO item VALUES (1, 'dup', 0, NULL, NULL), (500, 'n500', 5, NULL, NULL)", ())],
        (),
    ),
    "foreign-key cascades": (
        [("DELETE FROM item WHERE id = 2", ()), ("UPDATE item SET id = 2000 WHERE id = 12", ())],
        ("foreign_keys = ON",),
    ),
    "NULL and back": (
        [
            ("UPDATE item SET note = NULL, data = NULL WHERE id = 1", ()),
            ("UPDATE item SET note = 'was NULL', data = x'00' WHERE id = 4", ()),
            ("UPDATE pair SET v = NULL WHERE a = 'a3'", ()),
        ],
        (),
    ),
    "BLOBs": (
        [
            ("UPDATE item SET data = x'' WHERE id = 1", ()),
            ("UPDATE item SET data = ? WHERE id = 2", (bytes(range(256)),)),
            ("INSERT INTO blobkey VALUES (x'', 1), (x'00', 2), (x'ff00', 3)", ()),
            ("UPDATE blobkey SET k = x'abcd' WHERE k = x'0102'", ()),
            ("DELETE FROM blobkey WHERE k = x'0304'", ()),
        ],
        (),
    ),
    "composite TEXT keys": (
        [
            ("INSERT INTO pair VALUES (?, ?, 'x'), ('a,b', ?, NULL)", ("é", 'ü"q', "line\nbreak")),
            ("UPDATE pair SET a = 'A1' WHERE a = 'a1'", ()),
            ("DELETE FROM pair WHERE a = 'a3' AND b = 'b3'", ()),
        ],
        (),
    ),
    "unique values swapped": (  # each row's new value is held by the other one in PostgreSQL
        [
            ("UPDATE item SET email = 'tmp' WHERE id = 10", ()),
            ("UPDATE item SET email = 'e10' WHERE id = 11", ()),
            ("UPDATE item SET email = 'e11' WHERE id = 10", ()),
        ],
        (),
    ),
}


@pytest.mark.parametrize("without_rowid", [False, True], ids=["rowid", "without_rowid"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_write_shape_reaches_postgres(tmp_path: Path, pg_dsn: str, case: str, without_rowid: bool) -> None:
    path = make_source(tmp_path / "app.db", without_rowid)
    started(path, pg_dsn)
    statements, pragmas = CASES[case]
    write(path, statements, pragmas)
    assert lag(path, pg_dsn) > 0  # the applier, not the copy, carries these writes
    assert caught_up(path, pg_dsn) > 0
    assert lag(path, pg_dsn) == 0
    assert_same(path, pg_dsn)
