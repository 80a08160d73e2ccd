"""Installing and removing change capture in the SQLite file, and noticing a schema that moved under it.

Install is one write transaction (BEGIN IMMEDIATE): the schema is read, every table's key chosen,
the changelog, registry and triggers made and the install recorded together, so a write either
lands before capture (and in the copy, whose snapshot starts after) or is logged; none falls
between. `PRAGMA schema_version` after install is recorded: the applier compares it at every batch,
and when it moved, compares what it installed with what is there (`schema_drift`): ANALYZE and
VACUUM move it too and change nothing that matters, a table rebuild (Django, Alembic batch mode)
drops the triggers and ALTER TABLE changes the table.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pgferry.capture.changelog import (
    CHANGELOG,
    INSTALL,
    REGISTRY,
    STATE,
    Captured,
    Install,
    create_changelog,
    has_changelog,
    read_install,
)
from pgferry.capture.keys import CaptureKey, capture_keys
from pgferry.capture.strays import forget_overwritten
from pgferry.capture.triggers import PREFIX, capture_triggers
from pgferry.errors import UsageError
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.control import without_control
from pgferry.sqlite.schema import read_schema
from pgferry.sqltext import quote_ident as q


@dataclass(frozen=True)
class Installed:
    """What install did: each table's key, the changelog's width, the schema version it left."""

    install: Install
    keys: list[CaptureKey]


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA schema_version").fetchone()[0])


def install(path: str | Path, target_schema: str) -> Installed:
    """Install capture on every table of `path` (KeylessTables when one cannot be captured)."""
    conn = open_writable(path)
    try:
        with atomic(conn, what=f"{path}: installing change capture"):
            found = read_install(conn)
            if found is not None or has_changelog(conn):
                raise UsageError(
                    f"{path}: change capture is already installed (into schema {found.target_schema!r}, "
                    f"since {found.installed_at}); `pgferry migrate follow` goes on, `pgferry migrate abort` "
                    "removes it"
                    if found is not None
                    else f"{path}: a changelog {CHANGELOG!r} exists without an install record; "
                    "`pgferry migrate abort` removes it"
                )
            schema = without_control(read_schema(conn))
            keys = capture_keys(conn, schema)
            width = max((len(k.columns) for k in keys), default=1)
            create_changelog(conn, width)
            REGISTRY.create(conn)
            STATE.create(conn)
            for number, key in enumerate(keys, start=1):
                triggers = capture_triggers(number, key.table, key.columns)
                for text in triggers.values():
                    conn.execute(text)
                REGISTRY.write(
                    conn,
                    {
                        "id": number,
                        "table_name": key.table,
                        "key_columns": _json(list(key.columns)),
                        "table_sql": schema.table(key.table).sql,
                        "triggers": _json(triggers),
                    },
                )
            now = datetime.now(UTC).isoformat(timespec="seconds")
            record = Install(target_schema, now, schema_version(conn), width)
            STATE.write(conn, {"name": INSTALL, "value": record.to_json()})
    finally:
        conn.close()
    return Installed(record, keys)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def schema_drift(conn: sqlite3.Connection, registry: list[Captured], skip: frozenset[str] = frozenset()) -> list[str]:
    """What changed since install, one line per table ([] when nothing that matters did); tables in
    `skip` (taken up by pgferry.capture.rebuild) are not named."""
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'trigger')")
    tables: dict[str, str] = {}
    triggers: dict[str, str] = {}
    for kind, name, _table, sql in rows:
        (tables if kind == "table" else triggers)[name] = sql or ""
    problems = []
    if CHANGELOG not in tables:
        problems.append(f"the changelog {CHANGELOG} is gone")
    for entry in registry:
        if entry.table in skip:
            continue
        if entry.table not in tables:
            problems.append(f"table {entry.table!r} was dropped")
        elif tables[entry.table] != entry.table_sql:
            missing = [n for n in entry.triggers if n not in triggers]
            how = "rebuilt (its capture triggers are gone)" if missing else "altered (its definition changed)"
            problems.append(f"table {entry.table!r} was {how}")
        elif any(triggers.get(name) != text for name, text in entry.triggers.items()):
            problems.append(f"the capture triggers of table {entry.table!r} were dropped or changed")
    captured = {e.table for e in registry}
    current = {t.name for t in without_control(read_schema(conn)).tables}
    problems += [f"table {name!r} was created after capture was installed" for name in sorted(current - captured)]
    return problems


@dataclass(frozen=True)
class Removed:
    triggers: int
    tables: list[str]


def uninstall(path: str | Path) -> Removed:
    """Drop every capture trigger, the changelog, the registry and the install record, in one
    transaction; the application's tables and rows are not touched. Safe to run twice."""
    conn = open_writable(path)
    try:
        with atomic(conn, what=f"{path}: removing change capture"):
            names = [
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                if name.startswith(PREFIX)
            ]
            for name in names:
                conn.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
            dropped = []
            for table in (CHANGELOG, REGISTRY.name):
                if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():
                    conn.execute(f"DROP TABLE {q(table)}")
                    dropped.append(table)
            STATE.delete(conn, INSTALL)
            forget_overwritten(conn)
            if STATE.drop(conn, only_if_empty=True):
                dropped.append(STATE.name)
    finally:
        conn.close()
    return Removed(len(names), dropped)
