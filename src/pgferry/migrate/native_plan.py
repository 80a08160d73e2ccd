"""The native-schema plan file: `pgferry advise --native-plan-out` writes it, the user edits it (deletes an
entry, turns a `check` into an `enum`), `pgferry copy --native-plan` carries it out
(pgferry.migrate.native_apply).

Each entry has a `kind`, a `table` and a `column` (PostgreSQL's names, as advise saw them; the source's
own names are accepted too) and what its kind needs: a partition's `unit` and `widen_keys`, a trigram
index's `lower`, a value list's `values`. The evidence is written as comments above each entry and
ignored on reading. The fields are checked here; the names are checked against the source's schema
by `resolve`, before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgferry.errors import UsageError
from pgferry.migrate.names import identifier
from pgferry.migrate.options import PARTITION_UNITS, PartitionSpec
from pgferry.planfile import read_plan_file, toml_comment, toml_list, toml_str, write_plan_file
from pgferry.sqlite.schema import Schema, Table

FORMAT = 1
KINDS = ("partition", "brin", "trigram", "check", "enum")
# The fields each kind takes besides kind, table and column.
FIELDS = {"partition": {"unit", "widen_keys"}, "brin": set(), "trigram": {"lower"}, "check": {"values"}}
FIELDS["enum"] = FIELDS["check"]


@dataclass(frozen=True)
class NativeEntry:
    kind: str  # one of KINDS
    table: str
    column: str
    unit: str | None = None  # partition: month, week or day
    widen_keys: bool = False  # partition: add the column to the table's primary key and unique keys
    lower: bool = False  # trigram: index lower(column), for `lower(col) LIKE` predicates
    values: tuple[str, ...] = ()  # check, enum: every value the column may hold
    note: str = ""  # the evidence, written as comments; not read back

    @classmethod
    def from_dict(cls, data: Any, where: str = "entry", note: str = "") -> NativeEntry:
        if not isinstance(data, dict):
            raise UsageError(f"{where} must be a table/object")
        kind = data.get("kind")
        if kind not in KINDS:
            raise UsageError(f"{where}: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        allowed = {"kind", "table", "column"} | FIELDS[kind]
        extra = sorted(set(data) - allowed)
        if extra:
            raise UsageError(
                f"{where}: {extra[0]!r} does not go with kind {kind!r} (fields: {', '.join(sorted(allowed))})"
            )
        names = {}
        for key in ("table", "column"):
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise UsageError(f"{where}: {key!r} must be a non-empty string")
            names[key] = value
        unit = data.get("unit")
        if kind == "partition" and unit not in PARTITION_UNITS:
            raise UsageError(f"{where}: 'unit' must be one of {', '.join(PARTITION_UNITS)}, not {unit!r}")
        values = data.get("values", [])
        if kind in ("check", "enum"):
            if not isinstance(values, list) or len(values) < 1 or not all(isinstance(v, str) for v in values):
                raise UsageError(f"{where}: 'values' must be a non-empty list of strings")
            if len(set(values)) < len(values):
                raise UsageError(f"{where}: 'values' lists a value twice")
        for flag in ("widen_keys", "lower"):
            if not isinstance(data.get(flag, False), bool):
                raise UsageError(f"{where}: {flag!r} must be true or false")
        return cls(
            kind,
            names["table"],
            names["column"],
            unit=unit,
            widen_keys=bool(data.get("widen_keys", False)),
            lower=bool(data.get("lower", False)),
            values=tuple(values),
            note=note,
        )

    def to_toml(self) -> list[str]:
        lines = toml_comment(self.note) if self.note else []
        lines += ["[[proposal]]", f"kind = {toml_str(self.kind)}", f"table = {toml_str(self.table)}"]
        lines.append(f"column = {toml_str(self.column)}")
        if self.kind == "partition":
            lines += [f"unit = {toml_str(self.unit or 'month')}", f"widen_keys = {str(self.widen_keys).lower()}"]
        if self.kind == "trigram":
            lines.append(f"lower = {str(self.lower).lower()}")
        if self.kind in ("check", "enum"):
            lines.append(f"values = {toml_list(list(self.values), short=8)}")
        return lines


@dataclass
class NativePlan:
    entries: list[NativeEntry] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # written at the end (advise's refusals); not read back

    def dump(self, path: str | Path | None = None) -> str:
        """The plan as TOML; also written to `path` when given."""
        lines = [
            "# pgferry native-schema plan (docs/advise.md, docs/copy.md). Delete an entry to leave it out;",
            '# a kind = "check" can become kind = "enum" (not on a citext column). Then:',
            "#   pgferry copy SQLITE_FILE DSN --native-plan THIS_FILE      (--dry-run shows the DDL)",
            f"format = {FORMAT}",
        ]
        for entry in self.entries:
            lines += ["", *entry.to_toml()]
        if self.comments:
            lines.append("")
            for comment in self.comments:
                lines += toml_comment(comment)
        text = "\n".join(lines) + "\n"
        if path is not None:
            write_plan_file(path, text)
        return text

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> NativePlan:
        if not isinstance(data, dict):
            raise UsageError(f"{source}: a plan is a table/object at the top level")
        if data.get("format", FORMAT) != FORMAT:
            raise UsageError(f"{source}: plan format {data.get('format')!r} is not supported (expected {FORMAT})")
        unknown = sorted(set(data) - {"format", "proposal"})
        if unknown:
            raise UsageError(f"{source}: unknown field {unknown[0]!r} (fields: format, proposal)")
        entries = data.get("proposal", [])
        if not isinstance(entries, list):
            raise UsageError(f"{source}: 'proposal' must be a list of tables ([[proposal]])")
        plan = cls([NativeEntry.from_dict(e, f"{source}: proposal[{i}]") for i, e in enumerate(entries)])
        seen: dict[tuple[str, str, str], int] = {}
        for i, entry in enumerate(plan.entries):
            kind = "values" if entry.kind in ("check", "enum") else entry.kind
            key = (kind, entry.table, entry.column if kind != "partition" else "")
            if key in seen:
                raise UsageError(f"{source}: proposal[{i}] repeats proposal[{seen[key]}] ({entry.kind} {entry.table})")
            seen[key] = i
        return plan


def load_native_plan(path: str | Path) -> NativePlan:
    """Read a plan file (.json as JSON, else TOML); UsageError naming the file and the entry."""
    data, source = read_plan_file(path)
    return NativePlan.from_dict(data, source)


@dataclass(frozen=True)
class Resolved:
    """An entry with the source's table and column names."""

    entry: NativeEntry
    table: str
    column: str


def _named(name: str, candidates: Iterable[str], keep_case: bool) -> str | None:
    names = list(candidates)
    if name in names:
        return name
    return next((c for c in names if identifier(c, keep_case) == name), None)


def resolve(plan: NativePlan, schema: Schema, keep_case: bool, source: str = "--native-plan") -> list[Resolved]:
    """The entries with the source's names; UsageError naming a table or column the source lacks."""
    tables: dict[str, Table] = {t.name: t for t in schema.tables}
    out = []
    for i, entry in enumerate(plan.entries):
        where = f"{source}: proposal[{i}] ({entry.kind})"
        table = _named(entry.table, tables, keep_case)
        if table is None:
            known = ", ".join(sorted(tables)[:20])
            raise UsageError(f"{where}: no table {entry.table!r} in the source (tables: {known})")
        columns = [c.name for c in tables[table].columns]
        column = _named(entry.column, columns, keep_case)
        if column is None:
            raise UsageError(f"{where}: table {table!r} has no column {entry.column!r} (columns: {', '.join(columns)})")
        out.append(Resolved(entry, table, column))
    return out


def partition_specs(resolved: list[Resolved]) -> tuple[PartitionSpec, ...]:
    return tuple(
        PartitionSpec(r.table, r.column, r.entry.unit or "month", r.entry.widen_keys)
        for r in resolved
        if r.entry.kind == "partition"
    )
