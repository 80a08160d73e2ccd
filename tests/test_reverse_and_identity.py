"""What rollback and catch-up will stand on, tried on a real copy: each converter's reverse gives back
a SQLite value that equals the original (so rows written on PostgreSQL after the cutover can go back
to SQLite), and a row identity's upsert and delete are idempotent, keyed like the target."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
from psycopg import sql

from pgferry.migrate.converters import converter_for
from pgferry.migrate.identity import row_identity
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.sqlite.schema import read_schema
from pgferry.sqltext import quote_ident


def source_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE thing (id INTEGER PRIMARY KEY, name TEXT, flag BOOLEAN, price NUMERIC, ratio REAL,"
            " raw BLOB, created DATETIME, day DATE, meta JSON, big INTEGER, seen_at INTEGER)"
        )
        rows = [
            (1, "a", 1, 10, 0.5, b"\x00\xff", "2024-01-02 03:04:05", "2024-01-02", '{"a": 1}', 2**40, 1_700_000_000),
            (2, "it's", 0, 12.25, -1e-3, b"", "2024-12-31 23:59:59", "1999-12-31", "[1, 2]", -5, 1_600_000_000),
            (3, None, None, None, None, None, None, None, None, None, None),
        ]
        conn.executemany("INSERT INTO thing VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("CREATE TABLE tag (thing_id INTEGER, label TEXT, PRIMARY KEY (thing_id, label))")
        conn.executemany("INSERT INTO tag VALUES (?, ?)", [(1, "x"), (1, "y"), (2, "x")])
    return path


def test_every_converter_reverses_to_the_original_sqlite_value(tmp_path: Path, pg_dsn: str) -> None:
    path = source_db(tmp_path / "s.db")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    assert report.plan is not None
    table_plan = report.plan.table("thing")
    used = {converter_for(c).name for c in table_plan.columns}
    assert len(used) >= 6, used  # the table exercises many converters, not one
    names = [c.source for c in table_plan.columns]
    with sqlite3.connect(path) as conn:
        original = conn.execute(f"SELECT {', '.join(map(quote_ident, names))} FROM thing ORDER BY id").fetchall()
    with psycopg.connect(pg_dsn) as pg:
        query = sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
            sql.SQL(", ").join(sql.Identifier(c.target) for c in table_plan.columns), sql.Identifier(table_plan.target)
        )
        copied = pg.execute(query).fetchall()
    reversed_rows = [
        tuple(
            None if value is None else converter_for(column).reverse(value)
            for column, value in zip(table_plan.columns, row, strict=True)
        )
        for row in copied
    ]
    # Back into SQLite under the original declaration (its affinity applies, as it will on rollback).
    with sqlite3.connect(path) as conn:
        create = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'thing'").fetchone()[0]
    back = sqlite3.connect(":memory:")
    back.execute(create)
    marks = ", ".join("?" * len(names))
    back.executemany(f"INSERT INTO thing ({', '.join(map(quote_ident, names))}) VALUES ({marks})", reversed_rows)
    again = back.execute(f"SELECT {', '.join(map(quote_ident, names))} FROM thing ORDER BY id").fetchall()
    for before, after in zip(original, again, strict=True):
        for name, value, returned in zip(names, before, after, strict=True):
            assert (value, type(value)) == (returned, type(returned)), (name, value, returned)


def test_upsert_and_delete_by_the_target_key_are_idempotent(tmp_path: Path, pg_dsn: str) -> None:
    path = source_db(tmp_path / "k.db")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    assert report.plan is not None
    with sqlite3.connect(path) as conn:
        schema = read_schema(conn)
    tag = row_identity(schema.table("tag"), report.plan.table("tag"))
    thing = row_identity(schema.table("thing"), report.plan.table("thing"))
    assert tag.upsertable and tag.target_keys == ("thing_id", "label")
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        for _ in range(2):  # catch-up may replay a change: twice is once
            pg.execute(tag.upsert_sql("public"), (2, "y"))  # all columns are key columns: DO NOTHING
            values = [None] * len(thing.columns)
            values[0], values[1] = 2, "renamed"
            pg.execute(thing.upsert_sql("public"), values)
        assert pg.execute("SELECT count(*) FROM tag WHERE thing_id = 2").fetchone() == (2,)
        assert pg.execute("SELECT name, price FROM thing WHERE id = 2").fetchone() == ("renamed", None)
        assert pg.execute("SELECT count(*) FROM thing").fetchone() == (3,)
        for _ in range(2):
            pg.execute(tag.delete_sql("public"), (1, "x"))
        assert pg.execute("SELECT label FROM tag WHERE thing_id = 1").fetchall() == [("y",)]
