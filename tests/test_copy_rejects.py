"""--on-error reject loses nothing: the reject file holds each row whole (every storage class exactly),
`pgferry restore-rejects` puts fixed rows back, and a rejected parent keeps its foreign keys (NOT VALID)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.rejects import decode_value, encode_value
from pgferry.migrate.restore import restore_rejects
from pgferry.migrate.run import copy_and_verify, copy_database

# n is cast to integer: the text in row 2 is refused, and its row rejected with every other value in it.
SOURCE_ROWS: list[tuple[Any, ...]] = [
    (1, 1, 0.5, "plain", b"\x00\x01", None),
    (2, "not a number", -1.7976931348623157e308, 'é "quoted", comma\nline', b"\xff\x00z", None),
    (3, 3, 0.1, "", b"", 2**62),
    (4, "also bad", math.inf, "🚀\x00nul", None, -(2**63)),
    (5, 5, 1e-320, "tail", b"x", 7),
]


def source_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n ANY, r REAL, s TEXT, b BLOB, z INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", SOURCE_ROWS)
    conn.close()
    return path


def casts(tmp_path: Path, entries: str) -> str:
    path = tmp_path / "casts.toml"
    path.write_text(f"[columns]\n{entries}\n")
    return str(path)


def typed_rows(path: Path, table: str, keys: list[int]) -> dict[int, list[tuple[str, Any]]]:
    """Each row as (storage class, value) pairs, text as its bytes."""
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    names = [r[1].decode() for r in conn.execute(f"PRAGMA table_info({table})")]
    items = ", ".join(f"typeof({n}), {n}" for n in names)
    out = {}
    for key in keys:
        row = conn.execute(f"SELECT {items} FROM {table} WHERE rowid = ?", [key]).fetchone()
        out[key] = [(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    conn.close()
    return {k: [(kind.decode(), v) for kind, v in pairs] for k, pairs in out.items()}


def from_record(record: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for encoded in record.values():
        kind, value = decode_value(encoded)
        out.append(("text" if kind == "text_hex" else kind, value.encode() if kind == "text" else value))
    return out


def same(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> bool:
    """Equal values of equal storage classes (a REAL compared by its bits: nan, -0.0)."""

    def key(pair: tuple[str, Any]) -> Any:
        kind, value = pair
        return (kind, value.hex() if isinstance(value, float) else value, type(value))

    return [key(p) for p in a] == [key(p) for p in b]


def test_a_rejected_row_reads_back_exactly_for_every_storage_class(tmp_path: Path, pg_dsn: str) -> None:
    path = source_db(tmp_path / "s.db")
    rejects = tmp_path / "rejects.jsonl"
    options = CopyOptions(
        jobs=1, on_error="reject", reject_file=str(rejects), casts_file=casts(tmp_path, '"t.n" = "integer"')
    )
    job = copy_and_verify(path, pg_dsn, options)
    assert job.copy.rejected == 2 and not job.identical
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["table"], r["key"], r["column"]) for r in records] == [("t", [2], "n"), ("t", [4], "n")]
    assert all("integer" in r["problem"] for r in records)
    source = typed_rows(path, "t", [2, 4])
    for record in records:
        assert list(record["row"]) == ["id", "n", "r", "s", "b", "z"]
        assert same(from_record(record["row"]), source[record["key"][0]])
    assert records[1]["row"]["r"] == {"real": "inf"} and records[0]["row"]["b"] == {"blob": "ff007a"}


@pytest.mark.parametrize(
    "value",
    [None, 0, -(2**63), 2**63 - 1, 0.1, -0.0, math.inf, -math.inf, 5e-324, "", "é\x00", b"", b"\x00\xff"],
)
def test_encoding_round_trips(value: Any) -> None:
    kind = {type(None): "null", int: "integer", float: "real", str: "text", bytes: "blob"}[type(value)]
    back_kind, back = decode_value(json.loads(json.dumps(encode_value(kind, value))))
    assert back_kind == kind and type(back) is type(value)
    assert (back.hex() if isinstance(back, float) else back) == (value.hex() if isinstance(value, float) else value)
    assert math.isnan(decode_value(encode_value("real", math.nan))[1])


def test_fixed_rejects_are_restored_through_the_copys_rendering(tmp_path: Path, pg_dsn: str) -> None:
    path = source_db(tmp_path / "s.db")
    rejects = tmp_path / "rejects.jsonl"
    options = CopyOptions(
        jobs=1, on_error="reject", reject_file=str(rejects), casts_file=casts(tmp_path, '"t.n" = "integer"')
    )
    copy_database(path, pg_dsn, options)
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    records[0]["row"]["n"] = {"integer": 2}  # fixed; row 4 is left as it was
    rejects.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = CliRunner().invoke(main, ["restore-rejects", str(rejects), pg_dsn, "--json"])
    assert result.exit_code == 1, result.output  # row 4 is still refused
    report = json.loads(result.output)
    assert report["restored"] == {"t": 1}
    assert [(f["line"], f["key"]) for f in report["failed"]] == [(2, [4])]
    assert "integer" in report["failed"][0]["problem"]
    with psycopg.connect(pg_dsn) as pg:
        row = pg.execute("SELECT n, r, s, b, z FROM t WHERE id = 2").fetchone()
    # s holds a NUL byte in row 4: bytea, the UTF-8 bytes of each text
    assert row == (2, -1.7976931348623157e308, 'é "quoted", comma\nline'.encode(), b"\xff\x00z", None)


FAMILY = """
CREATE TABLE users (id INTEGER PRIMARY KEY, age INTEGER);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), title TEXT);
CREATE TABLE likes (user_id INTEGER, post_id INTEGER, PRIMARY KEY (user_id, post_id),
    FOREIGN KEY (user_id) REFERENCES users (id), FOREIGN KEY (post_id) REFERENCES posts (id)) WITHOUT ROWID;
"""


def family_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(FAMILY)
        conn.executemany("INSERT INTO users VALUES (?, ?)", [(1, 30), (2, "unknown"), (3, 40)])
        conn.executemany(
            "INSERT INTO posts VALUES (?, ?, ?)", [(10, 1, "a"), (11, 2, "b"), (12, 2, "c"), (13, None, "d")]
        )
        conn.executemany("INSERT INTO likes VALUES (?, ?)", [(1, 10), (2, 10), (3, 11)])
    conn.close()
    return path


def test_a_rejected_parent_keeps_its_foreign_keys_not_valid(tmp_path: Path, pg_dsn: str) -> None:
    path = family_db(tmp_path / "f.db")
    rejects = tmp_path / "rejects.jsonl"
    cast = casts(tmp_path, '"users.age" = "integer"')
    result = CliRunner().invoke(
        main, ["copy", str(path), pg_dsn, "--jobs", "1", "--cast", cast, "--on-error", "reject",
               "--reject-file", str(rejects), "--no-verify", "--json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # not identical, even without the verify
    report = json.loads(result.output)
    assert report["rejected"] == 1 and not [s for s in report["skipped"] if s["kind"] == "foreign_key"]
    found = {(u["table"], u["references"]): u for u in report["unvalidated_foreign_keys"]}
    assert set(found) == {("posts", "users"), ("likes", "users")}
    posts = found[("posts", "users")]
    assert (posts["rows"], posts["keys"], posts["key_columns"]) == (2, [[11], [12]], ["id"])
    assert posts["validate_sql"].startswith('ALTER TABLE "public"."posts" VALIDATE CONSTRAINT ')
    assert found[("likes", "users")]["keys"] == [[2, 10]]
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        states = pg.execute(
            "SELECT conrelid::regclass::text, convalidated FROM pg_constraint WHERE contype = 'f'"
        ).fetchall()
        assert sorted(states) == [("likes", False), ("likes", True), ("posts", False)]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # new writes are checked
            pg.execute("INSERT INTO posts VALUES (99, 77, 'orphan')")
    # fix the rejected parent, restore it: the foreign keys validate
    record = json.loads(rejects.read_text())
    assert record["row"] == {"id": {"integer": 2}, "age": {"text": "unknown"}}
    record["row"]["age"] = None
    rejects.write_text(json.dumps(record) + "\n")
    restored = restore_rejects(rejects, pg_dsn)
    assert restored.complete and restored.restored == {"users": 1}
    assert sorted(restored.validated) == [
        f"likes.{found[('likes', 'users')]['constraint']}",
        f"posts.{posts['constraint']}",
    ]
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").fetchone() == (
            0,
        )


def test_orphans_in_the_source_keep_the_constraint_and_are_named(tmp_path: Path, pg_dsn: str) -> None:
    path = family_db(tmp_path / "o.db")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE users SET age = 20 WHERE id = 2")
        conn.execute("INSERT INTO posts VALUES (14, 9, 'orphan')")
    conn.close()
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=2))
    assert job.identical  # the data is the source's; the report names the orphans
    [unvalidated] = job.copy.unvalidated
    assert (unvalidated.table, unvalidated.rows, unvalidated.keys) == ("posts", 1, [[14]])
    # a resumed run finds the constraint it added NOT VALID and reports it again
    from pgferry.migrate.fkeys import add_foreign_key

    assert job.copy.plan is not None
    step = next(s for s in job.copy.plan.steps if s.kind == "foreign_key" and s.table == "posts")
    from psycopg_pool import ConnectionPool

    with ConnectionPool(pg_dsn, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        again = add_foreign_key(pool, step, "public", "posts")
    assert again == unvalidated
