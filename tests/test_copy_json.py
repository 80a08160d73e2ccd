"""JSON columns as frameworks write them: scalars in columns that say they hold JSON (SQLAlchemy's `JSON`,
Django's JSONField CHECK), and the escape \\u0000, which jsonb cannot hold (json keeps the text as is)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify, copy_database
from pgferry.migrate.verify import verify_copy
from pgferry.sqlite.census import json_declaration, take_census
from pgferry.sqlite.schema import read_schema

DJANGO = (
    'CREATE TABLE "app_item" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"data" text NOT NULL CHECK ((JSON_VALID("data") OR "data" IS NULL)))'
)


def build(path: Path, ddl: str, rows: list[tuple[object, ...]]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        marks = ", ".join("?" * len(rows[0]))
        conn.executemany(
            f"INSERT INTO t VALUES ({marks})" if "app_item" not in ddl else f"INSERT INTO app_item VALUES ({marks})",
            rows,
        )
    conn.close()
    return path


def types_of(dsn: str, table: str) -> dict[str, str]:
    with psycopg.connect(dsn) as pg:
        rows = pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", [table]
        ).fetchall()
    return dict(rows)


def test_json_declarations_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with sqlite3.connect(path) as conn:
        conn.execute(DJANGO)
        conn.execute(
            'CREATE TABLE t (a JSON, b TEXT CHECK (json_valid(b)), "c d" TEXT CHECK (JSON_VALID(`c d`)), '
            "e TEXT CHECK (json_valid(e2)), e2 TEXT, f TEXT, CHECK (json_valid([f])))"
        )
        schema = read_schema(conn)
    conn.close()
    t = schema.table("t")
    found = {c.name: json_declaration(t, c.name) for c in t.columns}
    assert found == {
        "a": "declared JSON",
        "b": "a CHECK calls json_valid() on it",
        "c d": "a CHECK calls json_valid() on it",
        "e": None,  # the CHECK is on another column
        "e2": "a CHECK calls json_valid() on it",
        "f": "a CHECK calls json_valid() on it",
    }
    assert json_declaration(schema.table("app_item"), "data") == "a CHECK calls json_valid() on it"


def test_django_json_field_with_scalars_becomes_jsonb(tmp_path: Path, pg_dsn: str) -> None:
    values = ["null", "5", '"abc"', '{"b": 1, "a": [true, null]}', "[1, 2.50]", "false", "1e+20"]
    path = build(tmp_path / "dj.db", DJANGO, [(i, v) for i, v in enumerate(values, start=1)])
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=1))
    assert job.identical
    assert types_of(pg_dsn, "app_item")["data"] == "jsonb"
    (choice,) = [c for c in job.copy.choices if c["column"] == "data"]
    assert "CHECK calls json_valid()" in choice["reason"]
    with psycopg.connect(pg_dsn) as pg:
        got = [r[0] for r in pg.execute("SELECT data::text FROM app_item ORDER BY id")]
    assert got == ["null", "5", '"abc"', '{"a": [true, null], "b": 1}', "[1, 2.50]", "false", "100000000000000000000"]


def test_sqlalchemy_json_with_numbers_stored_as_numbers(tmp_path: Path, pg_dsn: str) -> None:
    # JSON has NUMERIC affinity: SQLAlchemy's '5' and '1.5' are stored as an integer and a REAL.
    rows = [(1, "null"), (2, "5"), (3, "1.5"), (4, '"s"'), (5, '{"k": 0.1}'), (6, None), (7, "-0.0"), (8, "1e300")]
    path = build(tmp_path / "sa.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, doc JSON)", rows)
    with sqlite3.connect(path) as conn:
        kinds = [r[0] for r in conn.execute("SELECT typeof(doc) FROM t ORDER BY id")]
    conn.close()
    assert kinds == ["text", "integer", "real", "text", "text", "null", "integer", "real"]
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=1))
    assert job.identical
    assert types_of(pg_dsn, "t")["doc"] == "jsonb"
    with psycopg.connect(pg_dsn) as pg:
        got = [r[0] for r in pg.execute("SELECT doc::text FROM t ORDER BY id")]
    assert got[:6] == ["null", "5", "1.5", '"s"', '{"k": 0.1}', None]
    # verify sees a changed number, a JSON null turned into SQL NULL, and a string turned into a number
    for change in ("doc = '6'::jsonb WHERE id = 2", "doc = NULL WHERE id = 1", "doc = '5'::jsonb WHERE id = 4"):
        with psycopg.connect(pg_dsn, autocommit=True) as pg:
            pg.execute(f"UPDATE t SET {change}")
    [verdict] = verify_copy(path, pg_dsn).tables
    assert verdict.differing_keys == [[1], [2], [4]]


def test_a_json_declaration_with_text_that_is_not_json_stays_text(tmp_path: Path, pg_dsn: str) -> None:
    path = build(tmp_path / "bad.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, doc JSON)", [(1, "null"), (2, "nope")])
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=1))
    assert job.identical and types_of(pg_dsn, "t")["doc"] == "text"


def test_text_json_without_a_declaration_keeps_todays_rule(tmp_path: Path) -> None:
    path = build(tmp_path / "plain.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT)", [(1, "5"), (2, "null")])
    with sqlite3.connect(path) as conn:
        census = take_census(conn, read_schema(conn).table("t")).column("doc")
    conn.close()
    assert not census.texts_json and not census.values_json  # scalars only count where JSON is declared


NUL_DOCS = ['{"a": "x\\u0000y"}', '{"b":  1}', '[ "\\u0000" ]', None]


def test_nul_escape_goes_to_json_and_keeps_the_text(tmp_path: Path, pg_dsn: str) -> None:
    path = build(tmp_path / "nul.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT)", list(enumerate(NUL_DOCS, 1)))
    with sqlite3.connect(path) as conn:
        census = take_census(conn, read_schema(conn).table("t")).column("doc")
    conn.close()
    assert census.texts_json and census.json_nul_escapes == 2
    job = copy_and_verify(path, pg_dsn, CopyOptions(jobs=1))
    assert job.identical
    assert types_of(pg_dsn, "t")["doc"] == "json"
    (choice,) = [c for c in job.copy.choices if c["column"] == "doc"]
    assert "\\u0000" in choice["note"] and "jsonb cannot hold" in choice["note"]
    with psycopg.connect(pg_dsn) as pg:
        assert [r[0] for r in pg.execute("SELECT doc::text FROM t ORDER BY id")] == NUL_DOCS
        assert pg.execute("SELECT doc ->> 'b' FROM t WHERE id = 2").fetchone() == ("1",)
    # json has no canonical form: verify compares the text, so respacing is a difference
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("""UPDATE t SET doc = '{"b": 1}' WHERE id = 2""")
    [verdict] = verify_copy(path, pg_dsn).tables
    assert verdict.differing_keys == [[2]]


@pytest.mark.parametrize("declared", ["TEXT", "JSON"])
def test_a_nul_escape_the_sample_missed_replans_the_table(tmp_path: Path, pg_dsn: str, declared: str) -> None:
    rows: list[tuple[object, ...]] = [(i, f'{{"n": {i}}}') for i in range(1, 20_001)]
    rows[6999] = (7000, '{"n": "\\u0000"}')  # outside the sample's windows
    path = build(tmp_path / "big.db", f"CREATE TABLE t (id INTEGER PRIMARY KEY, doc {declared})", rows)
    report = copy_database(path, pg_dsn, CopyOptions(jobs=2))
    assert [r.table for r in report.replanned] == ["t"]
    assert types_of(pg_dsn, "t")["doc"] == "json"
    assert verify_copy(path, pg_dsn, plan=report.plan).identical
