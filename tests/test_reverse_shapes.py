"""After a cutover every write shape made on PostgreSQL comes back into SQLite: the reverse applier
leaves SQLite holding exactly what the copy would make of PostgreSQL's rows (pgferry's verify says
identical). Each case runs on rowid and on WITHOUT ROWID tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from capture_util import Statement, assert_same
from reverse_fixtures import cut_over, pg_write, reverse_caught_up, reverse_entries

CASES: dict[str, tuple[list[Statement], bool]] = {  # (statements, in one transaction)
    "insert": (
        [
            ("INSERT INTO item VALUES (101, 'n101', 1, 'new', '\\x01')", ()),
            ("INSERT INTO tag VALUES (101, 'x')", ()),
            ("INSERT INTO pair VALUES ('new', 'row', 'v')", ()),
        ],
        False,
    ),
    "update": ([("UPDATE item SET n = n * 2, note = note || '!' WHERE id <= 10", ())], False),
    "update of the key": (
        [
            ("UPDATE item SET id = id + 1000 WHERE id IN (3, 4)", ()),  # tag follows: ON UPDATE CASCADE
            ("UPDATE pair SET b = b || '-moved' WHERE a = 'a1'", ()),
            ("UPDATE tag SET name = 'renamed' WHERE item_id = 5 AND name = 't'", ()),
        ],
        False,
    ),
    "delete": ([("DELETE FROM item WHERE id % 3 = 0", ()), ("DELETE FROM pair WHERE a = 'a2'", ())], False),
    "delete without where": ([("DELETE FROM tag", ()), ("DELETE FROM pair", ()), ("DELETE FROM thing", ())], False),
    "truncate": (
        [
            ("TRUNCATE pair", ()),
            ("INSERT INTO pair VALUES ('after', 'truncate', 'v')", ()),
            ("TRUNCATE item CASCADE", ()),  # tag too
            ("INSERT INTO item VALUES (1, 'back', 1, NULL, NULL)", ()),
        ],
        False,
    ),
    "upsert": (
        [
            (
                "INSERT INTO item (id, email, n) VALUES (5, 'e5', 50), (300, 'n300', 1)"
                " ON CONFLICT (id) DO UPDATE SET n = excluded.n",
                (),
            ),
            ("INSERT INTO pair VALUES ('a1', 'b1', 'new') ON CONFLICT (a, b) DO UPDATE SET v = excluded.v", ()),
        ],
        False,
    ),
    "NULL and back": (
        [
            ("UPDATE item SET note = NULL, data = NULL WHERE id = 1", ()),
            ("UPDATE item SET note = 'was NULL', data = '\\x00' WHERE id = 4", ()),
            ("UPDATE thing SET flag = NULL, price = NULL, created = NULL, meta = NULL WHERE id = 1", ()),
            ("UPDATE thing SET flag = true, price = 7, meta = '[]' WHERE id = 1", ()),
        ],
        False,
    ),
    "BLOBs": (
        [
            ("UPDATE item SET data = '\\x' WHERE id = 1", ()),
            ("UPDATE item SET data = %s WHERE id = 2", (bytes(range(256)),)),
            ("INSERT INTO blobkey VALUES ('\\x', 1), ('\\x00', 2), ('\\xff00', 3)", ()),
            ("UPDATE blobkey SET k = '\\xabcd' WHERE k = '\\x0102'", ()),
            ("DELETE FROM blobkey WHERE k = '\\x0304'", ()),
        ],
        False,
    ),
    "booleans, timestamps, numbers, JSON": (
        [
            ("UPDATE thing SET flag = NOT flag, created = created + interval '1 day 2 hours'", ()),
            ("UPDATE thing SET price = 12.50, ratio = -0.001, day = '1999-12-31' WHERE id = 2", ()),
            ('UPDATE thing SET meta = \'{"b": [1, 2.5, null], "a": "é"}\' WHERE id = 3', ()),
            ("UPDATE thing SET seen_at = seen_at + interval '90 seconds' WHERE id = 4", ()),  # epoch seconds
            (
                "INSERT INTO thing VALUES (9, false, 1e3, 1e-10, '2030-06-01 00:00:00.25', '2030-06-01', '{}',"
                " '2030-01-01 00:00:00+00')",
                (),
            ),
        ],
        False,
    ),
    "foreign-key cascades": (
        [("DELETE FROM item WHERE id = 2", ()), ("UPDATE item SET id = 2000 WHERE id = 12", ())],
        False,
    ),
    "composite TEXT keys": (
        [
            ("INSERT INTO pair VALUES (%s, %s, 'x'), ('a,b', %s, NULL)", ("é", 'ü"q', "line\nbreak")),
            ("UPDATE pair SET a = 'A1' WHERE a = 'a1'", ()),
            ("DELETE FROM pair WHERE a = 'a3' AND b = 'b3'", ()),
        ],
        False,
    ),
    "unique values swapped in one transaction": (
        [
            ("UPDATE item SET email = 'tmp' WHERE id = 10", ()),
            ("UPDATE item SET email = 'e10' WHERE id = 11", ()),
            ("UPDATE item SET email = 'e11' WHERE id = 10", ()),
        ],
        True,
    ),
    "a key deleted and inserted again": (
        [("DELETE FROM item WHERE id = 7", ()), ("INSERT INTO item VALUES (7, 'e7', 77, 'again', NULL)", ())],
        True,
    ),
}


@pytest.mark.parametrize("without_rowid", [False, True], ids=["rowid", "without_rowid"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_write_shape_on_postgres_comes_back_into_sqlite(
    tmp_path: Path, pg_dsn: str, case: str, without_rowid: bool
) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn, without_rowid)
    statements, one_transaction = CASES[case]
    pg_write(pg_dsn, statements, one_transaction)
    assert reverse_entries(pg_dsn) > 0  # the reverse triggers logged them
    assert reverse_caught_up(path, pg_dsn) > 0
    assert reverse_entries(pg_dsn) == 0  # applied entries are deleted
    assert_same(path, pg_dsn)
    assert reverse_caught_up(path, pg_dsn) == 0  # nothing left: running again changes nothing


def test_converted_values_come_back_in_the_form_sqlite_had(tmp_path: Path, pg_dsn: str) -> None:
    """boolean -> 0/1, timestamp -> its text, timestamptz of epoch seconds -> the integer, jsonb -> text."""
    path = cut_over(tmp_path / "app.db", pg_dsn)
    pg_write(
        pg_dsn,
        [
            (
                "INSERT INTO thing VALUES (9, true, 12.5, 0.25, '2030-06-01 00:00:00.25', '2030-06-01',"
                " '{\"a\": [1]}', '2030-01-01 00:00:00+00')",
                (),
            )
        ],
    )
    reverse_caught_up(path, pg_dsn)
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT flag, typeof(flag), created, seen_at, typeof(seen_at), json_extract(meta, '$.a[0]')"
            " FROM thing WHERE id = 9"
        ).fetchone()
    assert row == (1, "integer", "2030-06-01 00:00:00.250000", 1_893_456_000, "integer", 1)  # microseconds, as reversed
