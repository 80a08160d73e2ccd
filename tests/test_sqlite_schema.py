"""Schema introspection on odd but legal SQLite schemas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pgferry.errors import SourceError
from pgferry.sqlite.connect import open_readonly
from pgferry.sqlite.schema import read_schema

ODD_SCHEMA = """
CREATE TABLE "Order Items" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    "select" TEXT COLLATE NOCASE NOT NULL DEFAULT 'x',
    ts TEXT DEFAULT (strftime('%s', 'now')),
    price REAL CHECK (price >= 0),
    doubled REAL GENERATED ALWAYS AS (price * 2) STORED,
    parent_a INTEGER, parent_b TEXT,
    CONSTRAINT name_len CHECK (length("select") < 100),
    UNIQUE ("select", ts),
    FOREIGN KEY (parent_a, parent_b) REFERENCES parent (a, b) ON DELETE CASCADE ON UPDATE SET NULL
);
CREATE TABLE parent (a INTEGER, b TEXT COLLATE NOCASE CHECK (b <> ''), PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE strict_t (k INT PRIMARY KEY, v ANY) STRICT;
CREATE INDEX "idx odd" ON "Order Items" (lower("select") DESC, price) WHERE price > 10;
CREATE INDEX idx_nocase ON "Order Items" (ts COLLATE NOCASE);
CREATE VIEW v AS SELECT id FROM "Order Items";
CREATE TRIGGER trg AFTER INSERT ON parent BEGIN SELECT 1; END;
CREATE VIRTUAL TABLE docs USING fts5(body);
"""


@pytest.fixture
def odd_db(tmp_path: Path) -> Path:
    path = tmp_path / "odd.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(ODD_SCHEMA)
        conn.execute("ANALYZE")
    return path


def test_reads_tables_columns_and_constraints(odd_db: Path) -> None:
    schema = read_schema(open_readonly(odd_db))
    assert sorted(t.name for t in schema.tables) == ["Order Items", "parent", "strict_t"]
    items = schema.table("Order Items")
    assert items.rowid_alias == "id" and items.autoincrement and not items.without_rowid
    select = items.column("select")
    assert (select.notnull, select.default, select.collation) == (True, "'x'", "NOCASE")
    assert items.column("ts").default == "strftime('%s', 'now')"
    assert items.column("price").checks and "price >= 0" in items.column("price").checks[0]
    doubled = items.column("doubled")
    assert doubled.generated == "STORED" and doubled.generated_expr is not None
    assert any("LENGTH" in c.upper() for c in items.checks)
    (fk,) = items.foreign_keys
    assert (fk.columns, fk.ref_table, fk.ref_columns) == (("parent_a", "parent_b"), "parent", ("a", "b"))
    assert (fk.on_delete, fk.on_update) == ("CASCADE", "SET NULL")
    parent = schema.table("parent")
    assert parent.without_rowid and parent.primary_key == ("a", "b") and parent.rowid_alias is None
    assert parent.column("b").collation == "NOCASE" and parent.column("b").checks
    assert not parent.parse_warnings
    assert schema.table("strict_t").strict


def test_reads_index_details(odd_db: Path) -> None:
    items = read_schema(open_readonly(odd_db)).table("Order Items")
    by_name = {index.name: index for index in items.indexes}
    odd = by_name["idx odd"]
    assert odd.where is not None and "price > 10" in odd.where
    assert odd.columns[0].name is None and odd.columns[0].desc and "LOWER" in odd.columns[0].expression.upper()
    assert odd.columns[1].name == "price" and not odd.columns[1].desc
    assert by_name["idx_nocase"].columns[0].collation == "NOCASE"
    unique = [index for index in items.indexes if index.origin == "u"]
    assert len(unique) == 1 and unique[0].column_names == ("select", "ts")


def test_separates_views_triggers_virtual_and_internal(odd_db: Path) -> None:
    schema = read_schema(open_readonly(odd_db))
    assert [v.name for v in schema.views] == ["v"]
    assert [(t.name, t.table) for t in schema.triggers] == [("trg", "parent")]
    assert [v.name for v in schema.virtual_tables] == ["docs"]
    assert "sqlite_stat1" in schema.internal_tables and "sqlite_sequence" in schema.internal_tables
    assert {"docs_data", "docs_idx", "docs_config"} <= set(schema.internal_tables)
    assert not any(t.name.startswith("docs_") for t in schema.tables)


def test_readonly_connection_cannot_write(odd_db: Path) -> None:
    conn = open_readonly(odd_db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("CREATE TABLE nope (x)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"hello world, not a database", "not a SQLite database"),
        ("dir", "is a directory"),
    ],
)
def test_bad_sources_give_one_clear_error(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "src.db"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        open_readonly(path)


def test_corrupt_file_is_a_source_error(tmp_path: Path, odd_db: Path) -> None:
    data = bytearray(odd_db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # trash the schema page after the header
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="cannot read"):
        read_schema(open_readonly(bad))
