"""A captured table rebuilt under capture (Django's remake_table, Alembic batch mode, sqlite-utils
transform: create, copy, drop, rename): put capture back and copy the table again.

The rebuild dropped the table's triggers, so its writes from then until now were never logged. When
the rebuilt table has the same columns as the one the copy planned (names, declared types, key,
collations; NOT NULL, defaults and CHECKs may change, PostgreSQL keeps the copy's), it is taken up:

1. one SQLite write transaction reinstalls its triggers, updates the registry and the install's
   schema version, and records the changelog head as the table's new watermark, with a marker
   `table:<name>` = recopy pending in `_pgferry_migrate`;
2. the table is read in one SQLite snapshot taken after that, and in one PostgreSQL transaction every
   row is upserted through the applier's staging table and the rows it does not hold are deleted
   (not TRUNCATE: children referencing the table keep their rows);
3. the marker becomes `recopied`.

A kill between 1 and 3 leaves the marker: the next applier copies the table again first. Any other
change (a column added, dropped, renamed, retyped; a new key) stops the applier with what changed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pgferry.capture import changelog
from pgferry.capture.changelog import INSTALL, REGISTRY, STATE, Captured, Install
from pgferry.capture.current import CurrentRows
from pgferry.capture.install import schema_version
from pgferry.capture.triggers import capture_triggers
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.schema import Column, Table, read_schema
from pgferry.sqltext import quote_ident as q

MARKER = "table:"
COPY_LINES = 5_000  # lines per COPY write while re-copying


@dataclass(frozen=True)
class Change:
    """What happened to one captured table: `same` when only capture was lost (or nothing changed)."""

    captured: Captured
    same: bool
    triggers_gone: bool
    what: list[str]  # the differences, in words
    table_sql: str


def _old_table(captured: Captured) -> Table | None:
    """The table as capture recorded it, read back from its CREATE TABLE text (None if that fails)."""
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute(captured.table_sql)
        return read_schema(scratch).table(captured.table)
    except (sqlite3.Error, KeyError):
        return None
    finally:
        scratch.close()


def _declared(column: Column) -> str:
    return " ".join(column.declared_type.upper().split())


def column_changes(old: Table, new: Table) -> tuple[list[str], list[str]]:
    """(changes that alter what the copy planned, changes PostgreSQL may ignore), in words."""
    hard, soft = [], []
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    hard += [f"column {n!r} added" for n in after if n not in before]
    hard += [f"column {n!r} dropped" for n in before if n not in after]
    for name in (n for n in before if n in after):
        a, b = before[name], after[name]
        if _declared(a) != _declared(b):
            hard.append(
                f"column {name!r} retyped from {a.declared_type or 'no type'} to {b.declared_type or 'no type'}"
            )
        if (a.generated, a.generated_expr) != (b.generated, b.generated_expr):
            hard.append(f"column {name!r} changed its generated expression")
        if (a.collation or "BINARY").upper() != (b.collation or "BINARY").upper():
            hard.append(
                f"column {name!r} changed collation from {a.collation or 'BINARY'} to {b.collation or 'BINARY'}"
            )
        if a.notnull != b.notnull:
            soft.append(f"column {name!r} is {'now' if b.notnull else 'no longer'} NOT NULL")
        if a.default != b.default:
            soft.append(f"column {name!r} has a new default")
    if not hard and [c.name for c in old.columns] != [c.name for c in new.columns]:
        hard.append("the columns were reordered")
    if old.primary_key != new.primary_key:
        hard.append(f"primary key ({', '.join(old.primary_key)}) is now ({', '.join(new.primary_key)})")
    if old.without_rowid != new.without_rowid:
        hard.append("WITHOUT ROWID " + ("added" if new.without_rowid else "removed"))
    if old.checks != new.checks:
        soft.append("its CHECK constraints changed")
    return hard, soft


def changes(conn: sqlite3.Connection, registry: list[Captured]) -> list[Change]:
    """Each captured table whose definition or triggers moved since capture recorded them."""
    schema = read_schema(conn)
    names = {t.name for t in schema.tables}
    triggers = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")}
    out = []
    for captured in registry:
        if captured.table not in names:
            continue  # dropped: schema_drift says so and the applier stops
        table = schema.table(captured.table)
        gone = any(triggers.get(name) != text for name, text in captured.triggers.items())
        if table.sql == captured.table_sql and not gone:
            continue
        old = _old_table(captured)
        hard, soft = column_changes(old, table) if old is not None else (["its recorded definition is unreadable"], [])
        out.append(Change(captured, not hard, gone, hard or soft, table.sql))
    return out


def reinstall(writer: sqlite3.Connection, change: Change) -> int:
    """Step 1: triggers back, registry and install updated, marker written; returns the watermark."""
    captured = change.captured
    with atomic(writer, what=f"reinstalling change capture on {captured.table}"):
        triggers = capture_triggers(captured.id, captured.table, captured.key)
        for name in triggers:
            writer.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
        for text in triggers.values():
            writer.execute(text)
        writer.execute(
            f"UPDATE {q(REGISTRY.name)} SET table_sql = ?, triggers = ? WHERE id = ?",
            (change.table_sql, json.dumps(triggers, ensure_ascii=False), captured.id),
        )
        install = changelog.read_install(writer)
        assert install is not None  # the applier runs only on an installed file
        watermark = changelog.head(writer)
        # the version after the DDL above; the DML below changes no schema, so it is the committed one
        fresh = Install(install.target_schema, install.installed_at, schema_version(writer), install.width)
        STATE.write(writer, {"name": INSTALL, "value": fresh.to_json()}, replace=True)
        note = {"state": "recopy pending", "watermark": watermark, "changed": change.what, "at": _now()}
        STATE.write(writer, {"name": MARKER + captured.table, "value": json.dumps(note)}, replace=True)
    return watermark


def pending(conn: sqlite3.Connection) -> list[str]:
    """Tables whose re-copy a killed applier left undone."""
    out = []
    for row in STATE.read(conn):
        if row["name"].startswith(MARKER) and json.loads(row["value"]).get("state") == "recopy pending":
            out.append(row["name"][len(MARKER) :])
    return out


def notes(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """{table: what its last rebuild did} for status."""
    return {
        row["name"][len(MARKER) :]: json.loads(row["value"])
        for row in STATE.read(conn)
        if row["name"].startswith(MARKER)
    }


def table_lines(reader: sqlite3.Connection, current: CurrentRows) -> list[str]:
    """Step 2's rows: every row of the table as a COPY line, from one SQLite snapshot taken now."""
    lines: list[str] = []
    reader.execute("BEGIN")
    try:
        cursor = reader.execute(f"SELECT {', '.join(current.rows.items)} FROM {q(current.table)}")
        while batch := cursor.fetchmany(COPY_LINES):
            lines += [current.rows.line(row) for row in batch]
    finally:
        reader.execute("COMMIT")
    return lines


def done(writer: sqlite3.Connection, table: str, rows: int) -> list[str]:
    """Step 3: the marker says the table was copied again; returns what else changed in the table."""
    found = next((r for r in STATE.read(writer) if r["name"] == MARKER + table), None)
    note = json.loads(found["value"]) if found is not None else {}
    note.update(state="recopied", rows=rows, at=_now())
    with atomic(writer, what=f"recording the re-copy of {table}"):
        STATE.write(writer, {"name": MARKER + table, "value": json.dumps(note)}, replace=True)
    return list(note.get("changed", []))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
