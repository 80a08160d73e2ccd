"""Reading workloads: JSON Lines (plain and gzip), .sql scripts, and the parameter encoding."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from pgferry.errors import PgferryError, WorkloadError
from pgferry.workload import (
    SqlSplitter,
    Statement,
    decode_value,
    detect_format,
    encode_value,
    read_workload,
    split_sql,
)

# --- JSON Lines -----------------------------------------------------------------------------------


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_all_fields_and_tolerated_extras(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "w.jsonl",
        [
            json.dumps(
                {
                    "sql": "SELECT * FROM users WHERE id = ?",
                    "params": [7],
                    "ms": 1.25,
                    "request": "r1",
                    "site": "app.views:show:42",
                    "at": "2024-05-01T12:00:00.5+00:00",
                    "future_field": {"ignored": True},
                }
            ),
            "",
            "   ",
            json.dumps({"sql": "SELECT 1", "ms": 0}),
            json.dumps({"sql": "SELECT :a", "params": {"a": "x"}, "at": "2024-05-01T12:00:00Z"}),
            json.dumps(
                {"sql": "UPDATE t SET v = ?", "params": [[1], [2]], "many": 2, "ms": 3, "error": "IntegrityError"}
            ),
        ],
    )
    first, second, third, fourth = read_workload(path)
    assert first == Statement(
        sql="SELECT * FROM users WHERE id = ?",
        params=[7],
        ms=1.25,
        request="r1",
        site="app.views:show:42",
        at=dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=dt.UTC),
    )
    assert second == Statement(sql="SELECT 1", ms=0.0)
    assert third.params == {"a": "x"} and third.ms is None
    assert third.at == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert fourth.many == 2 and fourth.error == "IntegrityError" and fourth.params == [[1], [2]]


def test_jsonl_naive_timestamp_is_read_as_utc(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "w.jsonl", ['{"sql": "SELECT 1", "ms": 1, "at": "2024-05-01T12:00:00"}'])
    (stmt,) = read_workload(path)
    assert stmt.at == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"sql": "SELECT 1", "ms": 1', "line 3: not valid JSON"),
        ('["SELECT 1"]', "line 3: expected a JSON object"),
        ('{"ms": 1}', 'line 3: "sql" is missing'),
        ('{"sql": 5}', 'line 3: "sql" is missing or not a string'),
        ('{"sql": "SELECT 1", "ms": "fast"}', 'line 3: "ms" must be a number'),
        ('{"sql": "SELECT 1", "ms": -1}', 'line 3: "ms" must be a number'),
        ('{"sql": "SELECT 1", "params": "x"}', 'line 3: "params" must be a list'),
        ('{"sql": "SELECT 1", "at": "yesterday"}', 'line 3: "at" is not ISO-8601'),
        ('{"sql": "SELECT 1", "request": 5}', 'line 3: "request" must be a string'),
        ('{"sql": "SELECT ?", "params": [{"$bytes": "!!"}]}', "line 3: bad \\$bytes value"),
    ],
)
def test_jsonl_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write_lines(
        tmp_path / "bad.jsonl", ['{"sql": "SELECT 1", "ms": 1}', "", line, '{"sql": "SELECT 2", "ms": 1}']
    )
    statements = read_workload(path)
    assert next(statements).sql == "SELECT 1"  # streaming: earlier lines are yielded first
    with pytest.raises(WorkloadError, match=message) as info:
        list(statements)
    assert str(path) in str(info.value)
    assert isinstance(info.value, PgferryError)


def test_jsonl_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"sql": "SELECT 1"}\n{"sql": "SELECT \xff"}\n')
    with pytest.raises(WorkloadError, match="line 2: not valid JSON"):
        list(read_workload(path))


def test_jsonl_last_line_cut_by_a_crash_is_skipped_unless_strict(tmp_path: Path) -> None:
    path = tmp_path / "crashed.jsonl"
    path.write_text('{"sql": "SELECT 1", "ms": 1}\n{"sql": "SELECT 2", "m', encoding="utf-8")
    assert [s.sql for s in read_workload(path)] == ["SELECT 1"]
    with pytest.raises(WorkloadError, match="line 2"):
        list(read_workload(path, strict=True))


def test_jsonl_gzip(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(1000):
            f.write(json.dumps({"sql": f"SELECT {i}", "ms": 0.1}) + "\n")
    statements = list(read_workload(path))
    assert len(statements) == 1000 and statements[-1].sql == "SELECT 999"


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl.gz"
    data = gzip.compress(b"".join(b'{"sql": "SELECT %d", "ms": 1}\n' % i for i in range(5000)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkloadError, match="cannot read workload file"):
        list(read_workload(path))


def test_missing_file_and_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"workload file not found: .*nope\.jsonl"):
        read_workload(tmp_path / "nope.jsonl")
    with pytest.raises(WorkloadError, match="is a directory"):
        read_workload(tmp_path)


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "a.sql") == "sql"
    assert detect_format(tmp_path / "a.SQL.gz") == "sql"
    assert detect_format(tmp_path / "a.jsonl") == "jsonl"
    assert detect_format(tmp_path / "a.ndjson.gz") == "jsonl"
    sniff_json = tmp_path / "capture.txt"
    sniff_json.write_text('\n  {"sql": "SELECT 1"}\n', encoding="utf-8")
    sniff_sql = tmp_path / "script.txt"
    sniff_sql.write_text("SELECT 1; SELECT 2;", encoding="utf-8")
    assert detect_format(sniff_json) == "jsonl"
    assert [s.sql for s in read_workload(sniff_sql)] == ["SELECT 1", "SELECT 2"]


def test_reader_streams_without_reading_everything_first(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"sql": "SELECT 1"}\n' + "not json\n", encoding="utf-8")
    statements = read_workload(path)
    assert next(statements).sql == "SELECT 1"  # the bad line 2 is not read yet


# --- .sql files -----------------------------------------------------------------------------------

SCRIPT = """\
-- a comment; with a semicolon
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT);
INSERT INTO t (name, note) VALUES ('semi;colon', 'it''s; fine');
INSERT INTO t (name, note) VALUES ("dq;ident", '-- not a comment');  /* block; comment */
INSERT INTO t (name, note) VALUES ('multi
line; string', 'x');
CREATE TRIGGER t_ai AFTER INSERT ON t
BEGIN
  UPDATE t SET note = CASE WHEN new.name = 'a;b' THEN 'x' ELSE 'y' END WHERE id = new.id;
  INSERT INTO t (name, note) SELECT 'audit', 'end;' WHERE new.name = 'never';
END;
CREATE TEMP TRIGGER t_bd BEFORE DELETE ON t BEGIN SELECT 1; END;
SELECT [weird;name] FROM (SELECT 1 AS [weird;name]);
;;
SELECT count(*) FROM t -- no final semicolon
"""


def test_sql_file_splits_around_strings_comments_and_trigger_bodies(tmp_path: Path) -> None:
    path = tmp_path / "script.sql"
    path.write_text(SCRIPT, encoding="utf-8")
    statements = [s.sql for s in read_workload(path)]
    assert len(statements) == 8
    assert statements[0] == "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT)"
    assert statements[1] == "INSERT INTO t (name, note) VALUES ('semi;colon', 'it''s; fine')"
    assert statements[2] == "INSERT INTO t (name, note) VALUES (\"dq;ident\", '-- not a comment')"
    assert statements[3].endswith("line; string', 'x')")
    assert statements[4].startswith("CREATE TRIGGER t_ai") and statements[4].endswith("END")
    assert statements[5] == "CREATE TEMP TRIGGER t_bd BEFORE DELETE ON t BEGIN SELECT 1; END"
    assert statements[7] == "SELECT count(*) FROM t"
    assert all(s.ms is None and s.params is None for s in read_workload(path))
    # the split agrees with SQLite: every piece is one complete statement that runs
    db = sqlite3.connect(":memory:")
    for sql in statements:
        assert sqlite3.complete_statement(sql + ";"), sql
        db.execute(sql)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_sql_split_is_the_same_whatever_the_chunking() -> None:
    whole = split_sql(SCRIPT)
    for size in (1, 2, 3, 7, 64):
        splitter = SqlSplitter()
        pieces: list[str] = []
        for i in range(0, len(SCRIPT), size):
            pieces.extend(splitter.feed(SCRIPT[i : i + size]))
        pieces.extend(splitter.finish())
        assert pieces == whole, size


def test_sql_postgres_dollar_quotes_and_e_strings() -> None:
    script = (
        "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\n"
        "SELECT $$a;b$$, E'it\\'s;', 1;\n"
        "SELECT x::int FROM t;"
    )
    assert split_sql(script) == [
        "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql",
        "SELECT $$a;b$$, E'it\\'s;', 1",
        "SELECT x::int FROM t",
    ]


def test_sql_unterminated_string_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.sql"
    path.write_text("SELECT 1;\nSELECT 2;\nSELECT 'oops;\nSELECT 3;\n", encoding="utf-8")
    statements = read_workload(path)
    with pytest.raises(WorkloadError, match=r"bad\.sql, line 3: unterminated"):
        list(statements)


def test_sql_gzip(tmp_path: Path) -> None:
    path = tmp_path / "dump.sql.gz"
    path.write_bytes(gzip.compress(SCRIPT.encode()))
    assert len(list(read_workload(path))) == 8


# --- parameter encoding ---------------------------------------------------------------------------

ROUND_TRIP = [
    b"\x00\x01\xfe\xff",
    bytearray(b"ba"),
    float("inf"),
    float("-inf"),
    dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 1, 12, 30, 15),
    dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.date(1999, 12, 31),
    dt.time(23, 59, 1, 5),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    Decimal("1.10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "plain ünïcode 🚀",
    10**30,
    -0.0,
    1e-300,
    True,
    None,
    [1, [b"x", {"k": dt.date(2020, 1, 1)}]],
    {"$bytes": "looks like a tag but is a dict"},
    {"a": 1, "$b": 2},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_encoding_round_trips_through_a_log_line(tmp_path: Path, value: object) -> None:
    stmt = Statement(sql="SELECT ?", params=[value], ms=1.0)
    path = tmp_path / "w.jsonl"
    path.write_bytes(stmt.to_line())
    json.loads(path.read_text(encoding="utf-8"))  # plain JSON: no NaN/Infinity tokens
    (back,) = read_workload(path)
    expected = bytes(value) if isinstance(value, bytearray) else value
    assert back.params == [expected]
    assert type(back.params[0]) is type(expected)


def test_nan_round_trips() -> None:
    encoded = encode_value([float("nan")])
    assert encoded == [{"$float": "nan"}]
    assert math.isnan(decode_value(json.loads(json.dumps(encoded)))[0])


def test_unknown_types_are_kept_as_their_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing(1)"

    assert encode_value([Thing()]) == [{"$repr": "Thing(1)"}]
    assert decode_value([{"$repr": "Thing(1)"}]) == ["Thing(1)"]


def test_tuples_become_lists_and_lone_surrogates_stay_valid_utf8() -> None:
    line = Statement(sql="SELECT ?", params=[(1, 2), "bad \udcff"], ms=1).to_line()
    line.decode("utf-8")
    data = json.loads(line)
    assert data["params"] == [[1, 2], "bad \udcff"]
