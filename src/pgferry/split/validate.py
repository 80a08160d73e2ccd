"""Refusals: what split will not do, said in one line before anything is changed.

A table can be split when it is an ordinary table with a primary key and no earlier split in
progress; a plan can be applied when it names every column of that table
exactly once and moves no column that a constraint, a generated column or another table's foreign
key needs in the core table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.record import RECORD_TABLE, read_records
from pgferry.split.sqltext import fold, mentioned_names, parse_create_table
from pgferry.sqlite.schema import Schema, Table


def find_table(conn: sqlite3.Connection, schema: Schema, name: str) -> Table:
    """The table to split, or SplitError saying why it cannot be split."""
    for record in read_records(conn):
        if fold(record.table) == fold(name):
            raise SplitError(f"table {name!r} is already split (into {', '.join(record.new_tables)}); revert it first")
        if fold(name) in {fold(t) for t in record.new_tables}:
            raise SplitError(f"{name!r} is one of the tables made by the split of {record.table!r}; revert that first")
    if fold(name) == fold(RECORD_TABLE):
        raise SplitError(f"{name!r} is pgferry's record of splits, not a table to split")
    for view in schema.views:
        if fold(view.name) == fold(name):
            raise SplitError(f"{name!r} is a view, not a table: split works on tables")
    for vtab in schema.virtual_tables:
        if fold(vtab.name) == fold(name):
            raise SplitError(f"{name!r} is a virtual table: split works on ordinary tables")
    table = next((t for t in schema.tables if fold(t.name) == fold(name)), None)
    if table is None:
        raise SplitError(f"no table named {name!r} in the database")
    if not table.primary_key:
        raise SplitError(f"table {table.name!r} has no PRIMARY KEY: side tables need a key to point at; add one first")
    return table


def children_of(schema: Schema, table: Table) -> list[Table]:
    """Other tables with a foreign key to `table`."""
    return [
        t
        for t in schema.tables
        if fold(t.name) != fold(table.name) and any(fold(fk.ref_table) == fold(table.name) for fk in t.foreign_keys)
    ]


def pinned_to_core(schema: Schema, table: Table) -> dict[str, str]:
    """Columns that must stay in the core table, with the reason (folded name -> reason)."""
    pinned: dict[str, str] = {}

    def pin(names: Iterable[str], reason: str) -> None:
        for name in names:
            pinned.setdefault(fold(name), reason)

    pin(table.primary_key, "primary key")
    columns = {fold(c.name) for c in table.columns}
    for column in table.columns:
        if column.generated:
            pin([column.name], "generated column")
            pin([n for n in mentioned_names(column.generated_expr or "") if n in columns], "used by a generated column")
    for fk in table.foreign_keys:
        pin(fk.columns, f"foreign key to {fk.ref_table}")
        if fold(fk.ref_table) == fold(table.name):
            pin([c for c in fk.ref_columns if c], "referenced by the table's own foreign key")
    for child in children_of(schema, table):
        for fk in child.foreign_keys:
            if fold(fk.ref_table) == fold(table.name):
                pin([c for c in fk.ref_columns if c] or table.primary_key, f"referenced by {child.name}")
    for item in parse_create_table(table.sql).constraints:
        pin([c.name for c in table.columns if fold(c.name) in item.names], "used by a table constraint")
    return pinned


def validate_plan(plan: SplitPlan, schema: Schema, table: Table) -> None:
    """Check a plan against the table it splits; SplitError naming the first problem."""
    if fold(plan.table) != fold(table.name):
        raise SplitError(f"the plan is for table {plan.table!r}, not {table.name!r}")
    if [fold(k) for k in plan.key] != [fold(k) for k in table.primary_key]:
        raise SplitError(f"the plan's key {plan.key} is not {table.name!r}'s primary key {list(table.primary_key)}")
    by_name = {fold(c.name): c for c in table.columns}
    seen: dict[str, str] = {}
    if fold(plan.core_table) != fold(table.name):
        raise SplitError(
            f"core_table {plan.core_table!r}: the core stays the table {table.name!r} itself (expand/contract); "
            f"set core_table = {table.name!r} or leave it out"
        )
    placements = [(plan.core_table, c) for c in plan.core_columns]
    placements += [(f.table, c) for f in plan.families for c in f.columns]
    for where, name in placements:
        if fold(name) not in by_name:
            raise SplitError(f"the plan names column {name!r}, which table {table.name!r} does not have")
        if fold(name) in seen:
            raise SplitError(f"column {name!r} appears twice in the plan ({seen[fold(name)]} and {where})")
        seen[fold(name)] = where
    for column in table.columns:
        if fold(column.name) not in seen:
            raise SplitError(
                f"column {column.name!r} of {table.name!r} is not in the plan; add it to core_columns or a family"
            )
    core = {fold(c) for c in plan.core_columns}
    for name, reason in pinned_to_core(schema, table).items():
        if name not in core:
            raise SplitError(f"column {by_name[name].name!r} must stay in the core table ({reason})")
    _check_names(plan, schema, table)
    for family in plan.key_value:
        _check_key_value(family.table, [by_name[fold(c)] for c in family.columns], table)


def _check_names(plan: SplitPlan, schema: Schema, table: Table) -> None:
    taken = {fold(t.name) for t in schema.tables} | {fold(v.name) for v in schema.views}
    taken |= {fold(v.name) for v in schema.virtual_tables} | {fold(n) for n in schema.internal_tables}
    taken |= {fold(i.name) for t in schema.tables for i in t.indexes} | {fold(t.name) for t in schema.triggers}
    new = list(plan.new_tables)
    if not new:
        raise SplitError(f"the plan moves no column out of {table.name!r}: there is nothing to split")
    triggers = [f"{n}_split_{e}" for n in [table.name, *new] for e in ("insert", "update", "delete")]
    for name in triggers:
        if fold(name) in taken:
            raise SplitError(f"the split's trigger name {name!r} is taken by an existing object; rename it first")
    for name in new:
        if fold(name) in taken:
            raise SplitError(f"the plan's new table {name!r} has the name of an existing object; pick another")
        if fold(name).startswith("sqlite_"):
            raise SplitError(f"the plan's new table {name!r} starts with 'sqlite_', which SQLite reserves")
        if new.count(name) > 1 or sum(fold(n) == fold(name) for n in new) > 1:
            raise SplitError(f"the plan uses the table name {name!r} twice")
    for family in plan.families:
        if not family.columns:
            raise SplitError(f"family {family.table!r} has no columns")
    for family in plan.key_value:
        names = [fold(k) for k in table.primary_key] + [fold(family.name_column), fold(family.value_column)]
        if len(set(names)) != len(names):
            raise SplitError(
                f"key-value table {family.table!r}: name_column and value_column must differ from each other "
                f"and from the key columns {list(table.primary_key)}"
            )


AFFINITY_RULES = (("INT", "INTEGER"), ("CHAR", "TEXT"), ("CLOB", "TEXT"), ("TEXT", "TEXT"), ("BLOB", "BLOB"))


def affinity(declared_type: str) -> str:
    """SQLite's column affinity for a declared type (section 3.1 of the datatype docs)."""
    upper = declared_type.upper()
    for needle, result in AFFINITY_RULES:
        if needle in upper:
            return result
    if not upper:
        return "BLOB"
    if any(n in upper for n in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def key_value_problem(columns: list, table: Table) -> str | None:  # type: ignore[type-arg]
    """Why these columns cannot share one key-value table, or None when they can."""
    kinds = {affinity(c.declared_type) for c in columns}
    if len(kinds) > 1:
        return f"its columns have different type affinities ({', '.join(sorted(kinds))})"
    for column in columns:
        if column.checks or column.collation or column.notnull or column.default is not None or column.generated:
            return f"column {column.name!r} has a constraint, collation or default a key-value row cannot keep"
        for index in table.indexes:
            if fold(column.name) in {fold(n) for n in index.column_names if n} or (
                index.sql and fold(column.name) in mentioned_names(index.sql.split("(", 1)[-1])
            ):
                return f"column {column.name!r} is indexed ({index.name}); a side table keeps the index"
    return None


def _check_key_value(name: str, columns: list, table: Table) -> None:  # type: ignore[type-arg]
    problem = key_value_problem(columns, table)
    if problem:
        raise SplitError(f"key-value table {name!r}: {problem}; make it a side table instead")
