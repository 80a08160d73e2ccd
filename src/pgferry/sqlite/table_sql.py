"""A CREATE TABLE statement, parsed with sqlglot, for what SQLite's PRAGMAs do not give: column
collations, CHECK constraints, generated expressions, constraint names and DEFERRABLE.

Parsing costs more than all the PRAGMAs of a table, so a statement is parsed only when its text
mentions one of those (NEEDS_PARSING); sqlglot loads on the first parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp


def parse_quietly(sql: str, table: bool = False) -> exp.Expr | None:
    """Parse one statement quietly; None when sqlglot cannot (callers then say what they skipped)."""
    import sqlglot

    from pgferry.sqlite.ddl_dialect import sqlite_ddl
    from pgferry.sqlparse import parse_one

    try:
        return parse_one(sql, read=sqlite_ddl() if table else "sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None


def sqlite_sql(node: exp.Expression) -> str:
    return node.sql(dialect="sqlite")


@dataclass(frozen=True)
class ParsedKey:
    """A FOREIGN KEY as the CREATE TABLE writes it: what PRAGMA foreign_key_list does not say."""

    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    options: tuple[str, ...]  # sqlglot's: "DEFERRABLE", "NOT DEFERRABLE", "INITIALLY DEFERRED", ...


@dataclass
class ParsedTable:
    collations: dict[str, str] = field(default_factory=dict)
    column_checks: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    generated: dict[str, str] = field(default_factory=dict)
    checks: list[tuple[str, str | None]] = field(default_factory=list)  # (expression, CONSTRAINT name)
    primary_key_name: str | None = None
    uniques: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)  # (columns, name)
    foreign_keys: list[ParsedKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def key_names(nodes: list[exp.Expr]) -> tuple[str, ...]:
    """The column names of a key list: `a`, `"a" COLLATE NOCASE`, `a DESC`."""
    from sqlglot import exp

    names = []
    for node in nodes:
        while isinstance(node, exp.Ordered | exp.Collate):
            node = node.this
        names.append(node.name if isinstance(node, exp.Identifier | exp.Column | exp.ColumnDef) else "")
    return tuple(names)


def _constraint(parsed: ParsedTable, kind: exp.Expr, name: str | None, column: str | None) -> None:
    """Record one constraint (a column's when `column` is given) with its CONSTRAINT name."""
    from sqlglot import exp

    if isinstance(kind, exp.CheckColumnConstraint):
        check = (sqlite_sql(kind.this), name)
        (parsed.column_checks.setdefault(column, []) if column else parsed.checks).append(check)
    elif isinstance(kind, exp.PrimaryKeyColumnConstraint | exp.PrimaryKey):
        parsed.primary_key_name = name
    elif isinstance(kind, exp.UniqueColumnConstraint):
        keys = kind.this.expressions if isinstance(kind.this, exp.Schema) else []
        parsed.uniques.append((key_names(keys) if keys else (column or "",), name))
    elif isinstance(kind, exp.ForeignKey | exp.Reference):
        reference = kind.args.get("reference") if isinstance(kind, exp.ForeignKey) else kind
        target = reference.this if isinstance(reference, exp.Reference) else None
        table = target.this if isinstance(target, exp.Schema) else target
        columns = key_names(kind.expressions) if isinstance(kind, exp.ForeignKey) else (column or "",)
        if isinstance(reference, exp.Reference) and isinstance(table, exp.Table):
            options = tuple(str(o).upper() for o in reference.args.get("options") or ())
            parsed.foreign_keys.append(ParsedKey(name, columns, table.name, options))


def parse_table_sql(sql: str) -> ParsedTable:
    """Pull collations, CHECKs, generated expressions, constraint names and DEFERRABLE out of a CREATE
    TABLE statement."""
    parsed = ParsedTable()
    if not NEEDS_PARSING.search(sql):
        return parsed  # no collation, CHECK, generated column, constraint name or DEFERRABLE to read
    from sqlglot import exp

    # sqlglot does not know SQLite's table options; they are read from PRAGMA table_list instead.
    tree = parse_quietly(TABLE_OPTIONS.sub(")", sql.strip()), table=True)
    schema = tree.this if isinstance(tree, exp.Create) else None
    if not isinstance(schema, exp.Schema):
        parsed.warnings.append(
            "CREATE TABLE could not be parsed: CHECK constraints, collations, constraint names and DEFERRABLE not read"
        )
        return parsed
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            name = item.name
            for constraint in item.constraints:
                kind = constraint.kind
                if isinstance(kind, exp.CollateColumnConstraint):
                    parsed.collations[name] = kind.this.name.upper()
                elif isinstance(kind, exp.ComputedColumnConstraint):
                    parsed.generated[name] = sqlite_sql(kind.this)
                else:
                    label = constraint.this
                    _constraint(parsed, kind, label.name if isinstance(label, exp.Identifier) else None, name)
        elif isinstance(item, exp.Constraint):  # CONSTRAINT name <one table constraint>
            for position, inner in enumerate(item.expressions):
                _constraint(parsed, inner, item.name if position == 0 else None, None)
        else:
            _constraint(parsed, item, None, None)
    return parsed


NEEDS_PARSING = re.compile(r"\b(CHECK|COLLATE|GENERATED|AS|CONSTRAINT|DEFERRABLE)\b", re.IGNORECASE)
TABLE_OPTIONS = re.compile(r"\)\s*(?:(?:WITHOUT\s+ROWID|STRICT)\s*,?\s*)+;?\s*$", re.IGNORECASE)
