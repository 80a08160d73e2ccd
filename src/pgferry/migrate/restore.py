"""`pgferry restore-rejects`: put the rows of a reject file (pgferry.migrate.rejects), fixed by hand,
into the copy's target, then validate the foreign keys the rejects had left NOT VALID (fkeys).

The rows go through the copy's own rendering: each table's records are loaded into an in-memory SQLite
table (columns without a type, so every value keeps its storage class) and rendered under the plan the
copy stored in the control schema, so a restored value reaches PostgreSQL exactly as the copy would have
sent it. Each row is its own transaction: a row PostgreSQL still refuses is reported, the others stay.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from pgferry.dsn import redact
from pgferry.errors import UsageError
from pgferry.migrate import control
from pgferry.migrate.errors import user_errors
from pgferry.migrate.fkeys import UnvalidatedKey, validate_all
from pgferry.migrate.plan import MigrationPlan, TablePlan
from pgferry.migrate.rejects import Record, decode_value
from pgferry.migrate.render import render_table
from pgferry.pg.connect import connect, first_line
from pgferry.sqlite.keyset import Key, rowid_name
from pgferry.sqlite.schema import Column, Table
from pgferry.sqltext import quote_ident


@dataclass
class RestoreReport:
    source: str
    target: str
    schema: str
    restored: dict[str, int] = field(default_factory=dict)  # rows per table
    failed: list[dict[str, Any]] = field(default_factory=list)  # {line, table, key, problem}
    validated: list[str] = field(default_factory=list)  # "table.constraint" now valid
    violated: list[UnvalidatedKey] = field(default_factory=list)  # still NOT VALID

    @property
    def complete(self) -> bool:
        return not self.failed and not self.violated

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "complete": self.complete,
            "restored": self.restored,
            "failed": self.failed,
            "validated": self.validated,
            "violated": [v.as_dict() for v in self.violated],
        }


def read_rejects(path: str | Path) -> list[dict[str, Any]]:
    """The records of a reject file, each with its line number; a clear error for a line that is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such reject file") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}, line {number}: not JSON ({exc})") from None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("table"), str)
            or not isinstance(entry.get("row"), dict)
        ):
            raise UsageError(f"{path}, line {number}: not a pgferry reject record (needs table and row)")
        entries.append({**entry, "line": number})
    return entries


def restore_rejects(path: str | Path, dsn: str, schema: str = "public") -> RestoreReport:
    """Insert the rows of the reject file at `path` into the copy in `dsn`.`schema`, then VALIDATE its
    NOT VALID foreign keys."""
    entries = read_rejects(path)
    with user_errors(dsn), connect(dsn) as pg:
        stored = control.read_plan(pg, schema)
        if stored is None:
            raise UsageError(f"no pgferry copy in schema {schema!r} of {redact(dsn)}: nothing to restore into")
        plan = MigrationPlan.from_dict(stored)
        report = RestoreReport(str(path), redact(dsn), schema)
        by_table: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            by_table.setdefault(entry["table"], []).append(entry)
        for name, items in by_table.items():
            try:
                table_plan = plan.table(name)
            except KeyError:
                raise UsageError(f"{path}, line {items[0]['line']}: the copy has no table {name!r}") from None
            report.restored[name] = _restore_table(pg, table_plan, schema, items, report.failed)
        report.validated, report.violated = validate_all(pg, schema)
    return report


def _restore_table(
    pg: psycopg.Connection, plan: TablePlan, schema: str, items: list[dict[str, Any]], failed: list[dict[str, Any]]
) -> int:
    """Load the records into an in-memory table shaped like the copied columns, render them as the copy
    does, COPY each row in its own transaction; returns the rows written."""
    names = [c.source for c in plan.copied_columns]
    table = Table(
        plan.source, tuple(Column(n, "", False, None, 0) for n in names), (), (), (), (), False, False, False, ""
    )
    memory = sqlite3.connect(":memory:")
    memory.execute(f"CREATE TABLE {quote_ident(plan.source)} ({', '.join(map(quote_ident, names))})")
    by_rowid: dict[int, dict[str, Any]] = {}

    def fail(entry: dict[str, Any], problem: str) -> None:
        failed.append({"line": entry["line"], "table": plan.source, "key": entry.get("key"), "problem": problem})

    rowid = rowid_name(table)
    for number, entry in enumerate(items, start=1):
        try:
            marks, values = _values(entry["row"], names)
        except ValueError as exc:
            fail(entry, str(exc))
            continue
        columns = ", ".join([rowid, *map(quote_ident, names)])
        memory.execute(
            f"INSERT INTO {quote_ident(plan.source)} ({columns}) VALUES (?, {', '.join(marks)})", [number, *values]
        )
        by_rowid[number] = entry

    def bad_value(_table: str, key: Key, column: str, _value: str, problem: str, _row: Record | None) -> None:
        fail(by_rowid[key[0]], f"column {column!r}: {problem}")

    render = render_table(table, replace(plan, sampled_rows=None, key=()), schema)
    rows, _scanned, _last = render.careful_rows(memory.cursor(), None, None, len(items) + 1, bad_value)
    memory.close()
    written = 0
    for line, key in rows:
        try:
            with pg.transaction(), pg.cursor() as cur, cur.copy(render.target) as copy:
                copy.write(line)
            written += 1
        except psycopg.Error as exc:
            fail(by_rowid[key], first_line(exc))
    return written


def _values(row: Record, names: list[str]) -> tuple[list[str], list[Any]]:
    """Placeholders and values of a record's copied columns, each of its SQLite storage class."""
    missing = [n for n in names if n not in row]
    if missing:
        raise ValueError(f"the record has no column {missing[0]!r}")
    marks, values = [], []
    for name in names:
        kind, value = decode_value(row[name])
        marks.append("CAST(? AS TEXT)" if kind == "text_hex" else "?")
        values.append(value)
    return marks, values
