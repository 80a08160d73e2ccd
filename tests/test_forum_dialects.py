"""The forum's statement set against its dialects: every registered dialect gives every statement,
the repository uses exactly the set, and the SQLite dialect compiles on a real forum database."""

from __future__ import annotations

import importlib
import re
import sqlite3
from pathlib import Path

import pytest

from forum.store import dialects, repository
from forum.store.statements import ForumSql
from pgferry.runtime import Dialect, DialectError


@pytest.mark.parametrize("name", sorted(dialects.DIALECTS))
def test_every_registered_dialect_has_every_statement(name: str) -> None:
    module = importlib.import_module(dialects.DIALECTS[name])
    defined = {n for n, v in vars(module).items() if n.isupper() and not n.startswith("_") and isinstance(v, str)}
    assert not set(ForumSql.names()) - defined, f"dialect {name!r} lacks statements"
    assert not defined - set(ForumSql.names()), f"dialect {name!r} defines statements the set does not declare"
    loaded = dialects.load(name)  # the check the store runs at start-up
    assert isinstance(loaded, Dialect) and loaded.name == name


def test_the_repository_runs_exactly_the_statement_set() -> None:
    used = set(re.findall(r"\bsql\.([A-Z][A-Z0-9_]*)\b", Path(repository.__file__).read_text(encoding="utf-8")))
    assert used == set(ForumSql.names())


def test_the_sqlite_dialect_compiles_on_a_forum_database(db_copy: Path) -> None:
    sql = dialects.load("sqlite").sql
    conn = sqlite3.connect(db_copy)
    try:
        for name in ForumSql.names():
            statement = getattr(sql, name)
            for count in range(12):  # the number of parameters, found by trying (EXPLAIN runs nothing)
                try:
                    conn.execute(f"EXPLAIN {statement}", [None] * count).fetchall()
                    break
                except sqlite3.ProgrammingError as exc:
                    if "bindings" not in str(exc):
                        raise
            else:
                pytest.fail(f"{name}: no parameter count between 0 and 11 fits")
    finally:
        conn.close()


def test_an_unknown_dialect_is_refused_naming_those_there_are() -> None:
    known = ", ".join(sorted(dialects.DIALECTS))
    with pytest.raises(DialectError, match=re.escape(f"no 'db2' dialect (it has {known})")):
        dialects.load("db2")
