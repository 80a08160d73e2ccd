"""The split plan: which columns stay in the core table and which move to side or key-value tables.

A plan is data a person reads and edits, so it has a file form (TOML or JSON, same fields; see
docs/split.md) and is validated field by field on load with messages that name the field. Checks
against the database itself (does the column exist, is the key the primary key) live in
`validate`, because a plan file is written before it meets a database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pgferry.errors import UsageError
from pgferry.planfile import parse_plan_text, read_plan_file, toml_list, toml_str, write_plan_file
from pgferry.split.sqltext import fold

FORMAT = 1
Kind = Literal["side", "key_value"]


class SplitError(UsageError):
    """A split was refused or failed; nothing was changed (the transaction rolled back)."""


@dataclass
class Family:
    """Columns that move together to one new table.

    `side`: one row per parent row that has any of the values, the columns as they were.
    `key_value`: one row per non-NULL value, (key..., name_column, value_column), for sparse
    families of columns of the same kind (social links become (user, platform, handle) rows).
    """

    kind: Kind
    table: str
    columns: list[str]
    name_column: str = "name"
    value_column: str = "value"
    note: str = ""  # why the proposal grouped these columns (evidence); ignored when applying

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"table": self.table, "columns": list(self.columns)}
        if self.kind == "key_value":
            out["name_column"] = self.name_column
            out["value_column"] = self.value_column
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class SplitPlan:
    """How to split `table` (keyed by its primary key `key`): `core_columns` stay in it, families move out.

    `core_table` is the table itself (expand/contract keeps the core under its own name, so code and
    foreign keys that name it keep working); a plan naming another core table is refused on apply.
    """

    table: str
    key: list[str]
    core_table: str
    core_columns: list[str]
    families: list[Family] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # caveats for the user; not needed to apply
    profile: Any = field(default=None, repr=False, compare=False)  # TableProfile when proposed from data
    hot: list[Any] = field(default_factory=list, repr=False, compare=False)  # HotStatement list, from a workload

    @property
    def side(self) -> list[Family]:
        return [f for f in self.families if f.kind == "side"]

    @property
    def key_value(self) -> list[Family]:
        return [f for f in self.families if f.kind == "key_value"]

    @property
    def new_tables(self) -> list[str]:
        """The tables the split creates: the families' (the core stays the table itself)."""
        return [f.table for f in self.families]

    def family_of(self, column: str) -> Family | None:
        """The family a column moves to (names compared as SQLite does), None for a core column."""
        wanted = fold(column)
        for family in self.families:
            if any(fold(c) == wanted for c in family.columns):
                return family
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "table": self.table,
            "key": list(self.key),
            "core_table": self.core_table,
            "core_columns": list(self.core_columns),
            "side": [f.to_dict() for f in self.side],
            "key_value": [f.to_dict() for f in self.key_value],
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def dump(self, path: str | Path | None = None, fmt: str | None = None) -> str:
        """The plan as TOML (default) or JSON text; also written to `path` when given.

        The format follows `fmt`, else the path's suffix (.json -> JSON), else TOML.
        """
        if fmt is None:
            fmt = "json" if path is not None and str(path).lower().endswith(".json") else "toml"
        text = to_json(self) if fmt == "json" else to_toml(self)
        if path is not None:
            write_plan_file(path, text)
        return text

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> SplitPlan:
        return _from_dict(data, source)


# --- writing -------------------------------------------------------------------------------------


def to_json(plan: SplitPlan) -> str:
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_toml(plan: SplitPlan) -> str:
    """Hand-written TOML (the standard library reads TOML but does not write it)."""
    lines = [
        "# pgferry split plan (docs/split.md). Edit it, then:",
        f"#   pgferry split DB {plan.table} --plan THIS_FILE --apply",
        "# Every column of the table appears exactly once: in core_columns or in one family.",
        f"format = {FORMAT}",
        f"table = {toml_str(plan.table)}",
        f"key = {toml_list(plan.key)}",
        f"core_table = {toml_str(plan.core_table)}",
        f"core_columns = {toml_list(plan.core_columns)}",
    ]
    if plan.notes:
        lines.append(f"notes = {toml_list(plan.notes, short=0)}")
    for family in plan.families:
        lines.append("")
        lines.append("[[side]]" if family.kind == "side" else "[[key_value]]")
        if family.note:
            lines.append(f"note = {toml_str(family.note)}")
        lines.append(f"table = {toml_str(family.table)}")
        if family.kind == "key_value":
            lines.append(f"name_column = {toml_str(family.name_column)}")
            lines.append(f"value_column = {toml_str(family.value_column)}")
        lines.append(f"columns = {toml_list(family.columns)}")
    return "\n".join(lines) + "\n"


# --- reading -------------------------------------------------------------------------------------


def load_plan(path: str | Path) -> SplitPlan:
    """Read a plan file (.json as JSON, anything else as TOML); UsageError naming file and field."""
    data, source = read_plan_file(path)
    return _from_dict(data, source)


def parse_plan(text: str, source: str = "plan", fmt: str = "toml") -> SplitPlan:
    return _from_dict(parse_plan_text(text, source, fmt), source)


def _str(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key!r} must be a non-empty string")
    return value


def _names(data: dict[str, Any], key: str, where: str, allow_empty: bool = False) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}: {key!r} must be a list of column names")
    if not value and not allow_empty:
        raise UsageError(f"{where}: {key!r} is empty")
    return list(value)


def _from_dict(data: Any, source: str) -> SplitPlan:
    if not isinstance(data, dict):
        raise UsageError(f"{source}: a plan is an object/table at the top level")
    if data.get("format", FORMAT) != FORMAT:
        raise UsageError(f"{source}: plan format {data.get('format')!r} is not supported (expected {FORMAT})")
    known = {"format", "table", "key", "core_table", "core_columns", "side", "key_value", "notes"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{source}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(known))})")
    table = _str(data, "table", source)
    families: list[Family] = []
    for kind in ("side", "key_value"):
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise UsageError(f"{source}: {kind!r} must be a list of tables")
        for i, entry in enumerate(entries):
            where = f"{source}: {kind}[{i}]"
            if not isinstance(entry, dict):
                raise UsageError(f"{where} must be a table/object")
            allowed = {"table", "columns", "note"} | ({"name_column", "value_column"} if kind == "key_value" else set())
            extra = sorted(set(entry) - allowed)
            if extra:
                raise UsageError(f"{where}: unknown field {extra[0]!r}")
            families.append(
                Family(
                    kind=kind,
                    table=_str(entry, "table", where),
                    columns=_names(entry, "columns", where),
                    name_column=_str(entry, "name_column", where, "name"),
                    value_column=_str(entry, "value_column", where, "value"),
                    note=entry.get("note", "") if isinstance(entry.get("note", ""), str) else "",
                )
            )
    notes = data.get("notes", [])
    return SplitPlan(
        table=table,
        key=_names(data, "key", source),
        core_table=_str(data, "core_table", source, table),
        core_columns=_names(data, "core_columns", source),
        families=families,
        notes=[n for n in notes if isinstance(n, str)] if isinstance(notes, list) else [],
    )
