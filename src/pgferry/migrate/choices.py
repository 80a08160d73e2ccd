"""The type of one column: a --cast file's, else the framework's where the values fit, else the generic
choice (pgferry.migrate.types); with the notes the report shows for the framework's choices."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pgferry.errors import UsageError
from pgferry.migrate.frameworks import Framework, hint
from pgferry.migrate.types import TypeChoice, cast_choice, choose_type
from pgferry.sqlite.census import ColumnCensus
from pgferry.sqlite.schema import Column, Table


def load_casts(path: str | Path | None) -> dict[str, str]:
    """Read a --cast TOML file: `[columns] "table.column" = "type"` and `[types] "DECLARED" = "type"`."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such cast file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    casts: dict[str, str] = {}
    for key, value in data.get("columns", {}).items():
        casts[f"column:{key}"] = str(value)
    for key, value in data.get("types", {}).items():
        casts[f"type:{key.upper()}"] = str(value)
    unknown = set(data) - {"columns", "types"}
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {sorted(unknown)}; expected [columns] and [types]")
    return casts


def cast_override(table: Table, column: Column, census: ColumnCensus, casts: dict[str, str]) -> TypeChoice | None:
    pg_type = casts.get(f"column:{table.name}.{column.name}") or casts.get(f"type:{column.declared_type.upper()}")
    return None if pg_type is None else cast_choice(pg_type, column, census)


def choose_column_type(
    column: Column, census: ColumnCensus, is_key: bool, framework: Framework | None, says_json: str | None
) -> tuple[TypeChoice, str | None]:
    """The framework's type where it has one and the values fit, else the generic choice; and a note
    when the framework's type was passed over or the column's spelling is ambiguous."""
    choice = framework.choose(column, census, is_key) if framework is not None else None
    if choice is not None:
        return choice, None if is_key else hint(framework, column)
    generic = choose_type(column, census, is_key=is_key, says_json=says_json)
    note = None if is_key else hint(framework, column)
    if framework is not None and framework.covers(column) and not (is_key and framework.wide_keys):
        note = f"{framework.name}'s type for {column.declared_type} does not hold every value: {generic.pg_type}"
    return generic, note
