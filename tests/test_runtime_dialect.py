"""pgferry.runtime's statement sets, dialects and backends, without any application."""

from __future__ import annotations

import sqlite3
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgferry.runtime import Backend, Dialect, DialectError, Statements
from pgferry.runtime.sqlite import SqliteDatabase, SqlitePolicy


@dataclass(frozen=True)
class NoteSql(Statements):
    NOTE_GET: str
    NOTE_INSERT: str
    NOTE_DELETE: str


def module(name: str, **constants: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    vars(mod).update(constants)
    return mod


SQLITE = module(
    "notes_sqlite",
    NOTE_GET="SELECT id, body FROM notes WHERE id = ?",
    NOTE_INSERT="INSERT INTO notes (body) VALUES (?) RETURNING id",
    NOTE_DELETE="DELETE FROM notes WHERE id = ?",
    _FRAGMENT="id, body",  # helpers beside the statements are not statements
)


def test_a_dialect_with_every_statement_loads_in_declaration_order() -> None:
    dialect = Dialect.load("sqlite", NoteSql, SQLITE)
    assert dialect.name == "sqlite" and dialect.sql.NOTE_GET == SQLITE.NOTE_GET
    assert NoteSql.names() == ("NOTE_GET", "NOTE_INSERT", "NOTE_DELETE")


def test_a_dialect_missing_a_statement_is_refused_naming_it() -> None:
    partial = module("notes_postgresql", NOTE_GET="SELECT id, body FROM notes WHERE id = %s")
    with pytest.raises(DialectError) as refused:
        Dialect.load("postgresql", NoteSql, partial)
    message = str(refused.value)
    assert "'postgresql'" in message and "NoteSql" in message and "notes_postgresql" in message
    assert message.endswith("lacks 2 statement(s): NOTE_INSERT, NOTE_DELETE")


def test_a_mapping_is_a_source_too_and_empty_text_is_not_a_statement() -> None:
    good = {"NOTE_GET": "SELECT 1", "NOTE_INSERT": "SELECT 2", "NOTE_DELETE": "SELECT 3"}
    assert Dialect.load("sqlite", NoteSql, good).sql.NOTE_DELETE == "SELECT 3"
    with pytest.raises(DialectError, match=r"'sqlite': NoteSql: not SQL text .*: NOTE_INSERT, NOTE_DELETE$"):
        Dialect.load("sqlite", NoteSql, {**good, "NOTE_INSERT": "  ", "NOTE_DELETE": None})


def test_a_statement_set_must_be_declared_as_a_dataclass() -> None:
    class Undeclared(NoteSql):
        EXTRA: str

    with pytest.raises(TypeError, match=r"Undeclared: declare the statement set with @dataclass"):
        Undeclared.names()


def test_a_backend_refuses_a_dialect_of_another_engine(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    sqlite3.connect(path).execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)").connection.close()
    db = SqliteDatabase(path, SqlitePolicy())
    try:
        with pytest.raises(DialectError, match=r"a sqlite database cannot run the 'postgresql' dialect's statements"):
            Backend(db, Dialect.load("postgresql", NoteSql, SQLITE))
        backend = Backend(db, Dialect.load("sqlite", NoteSql, SQLITE))
        with backend.db.transaction():
            (note_id,) = backend.db.one(backend.sql.NOTE_INSERT, ("hello",))
        assert dict(backend.db.one(backend.sql.NOTE_GET, (note_id,))) == {"id": note_id, "body": "hello"}
    finally:
        db.close()
