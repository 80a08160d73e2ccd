"""The statements of a split, generated apart from running them (so `pgferry split` without
`--apply` can print exactly what `--apply` would run).

The expand step creates the side and key-value tables (the moved column definitions verbatim,
keyed by the primary key, a foreign key to the table), copies the values into them and creates
the sync triggers (`sync`). The table keeps its name, columns, rows and rowids. The contract
step (`contract`) rebuilds the table without the moved columns (the SQLite "12-step" change:
set aside, create with the new text, copy rows with their rowids, recreate indexes and triggers).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from pgferry.split.layout import Layout, rowid_name
from pgferry.split.plan import Family
from pgferry.split.sqltext import fold, mentioned_names, repoint_references
from pgferry.split.sync import sync_triggers, trigger_names
from pgferry.split.validate import affinity
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident as q
from pgferry.sqltext import quote_literal
from pgferry.steps import script

REBUILD_TEMP = "_pgferry_rebuild_old"


@dataclass(frozen=True)
class Step:
    """One statement of a split; the whole script runs in one transaction and is undone by the revert."""

    purpose: str
    sql: str

    # pgferry.steps.PlanStep
    @property
    def forward(self) -> list[str]:
        return [self.sql]

    @property
    def reverse(self) -> list[str]:
        return []

    @property
    def transactional(self) -> bool:
        return True

    def describe(self) -> str:
        return self.purpose


@dataclass
class ChildRebuild:
    """A referencing table rebuilt with new CREATE TABLE text (the SQLite "12-step" table change)."""

    table: Table
    new_sql: str
    dependents: list[str]  # CREATE INDEX / CREATE TRIGGER text of the table, recreated as it was
    sequence: int | None = None


@dataclass
class Script:
    steps: list[Step] = field(default_factory=list)
    kept_indexes: list[str] = field(default_factory=list)
    dropped_indexes: list[str] = field(default_factory=list)
    children: list[ChildRebuild] = field(default_factory=list)

    def add(self, purpose: str, sql: str) -> None:
        self.steps.append(Step(purpose, sql))

    def sql(self) -> str:
        return script(self.steps)


# --- new tables ----------------------------------------------------------------------------------


def core_sql(layout: Layout) -> str:
    keep = {fold(c) for c in layout.plan.core_columns}
    text = layout.text.render(name=layout.plan.core_table, keep=keep)
    return repoint_references(text, layout.table.name, layout.plan.core_table)


def _options(layout: Layout, without_rowid: bool) -> str:
    opts = (["WITHOUT ROWID"] if without_rowid else []) + (["STRICT"] if layout.table.strict else [])
    return (" " + ", ".join(opts)) if opts else ""


def _key_defs(layout: Layout) -> list[str]:
    defs = []
    for k in layout.key:
        column = layout.column(k)
        parts = [
            q(column.name),
            column.declared_type,
            f"COLLATE {column.collation}" if column.collation else "",
            "NOT NULL",
        ]
        defs.append(" ".join(p for p in parts if p))
    return defs


def _fk(layout: Layout) -> str:
    keys = ", ".join(q(k) for k in layout.key)
    return f"FOREIGN KEY ({keys}) REFERENCES {q(layout.plan.core_table)} ({keys}) ON UPDATE CASCADE ON DELETE CASCADE"


def side_sql(layout: Layout, family: Family) -> str:
    items = [layout.text.column_item(c).text.strip() for c in layout.family_columns(family)]
    alias = layout.table.rowid_alias
    if alias is not None:  # the side row's rowid is the parent's key, like the core row's
        head = [f"{q(alias)} INTEGER PRIMARY KEY", *items, _fk(layout)]
        without_rowid = False
    else:
        keys = ", ".join(q(k) for k in layout.key)
        head = [*_key_defs(layout), *items, f"PRIMARY KEY ({keys})", _fk(layout)]
        without_rowid = True
    body = ",\n    ".join(head)
    return f"CREATE TABLE {q(family.table)} (\n    {body}\n){_options(layout, without_rowid)}"


def value_type(layout: Layout, family: Family) -> str:
    """The value column's declared type: the family's own when all agree, else their affinity."""
    declared = {layout.column(c).declared_type for c in family.columns}
    if len(declared) == 1:
        return declared.pop()
    kind = affinity(layout.column(family.columns[0]).declared_type)
    if layout.table.strict:
        return {"INTEGER": "INTEGER", "TEXT": "TEXT", "REAL": "REAL", "BLOB": "BLOB"}.get(kind, "ANY")
    return "" if kind == "BLOB" else kind


def key_value_sql(layout: Layout, family: Family) -> str:
    keys = ", ".join(q(k) for k in [*layout.key, family.name_column])
    value = " ".join(p for p in (q(family.value_column), value_type(layout, family), "NOT NULL") if p)
    items = [*_key_defs(layout), f"{q(family.name_column)} TEXT NOT NULL", value, f"PRIMARY KEY ({keys})", _fk(layout)]
    body = ",\n    ".join(items)
    return f"CREATE TABLE {q(family.table)} (\n    {body}\n){_options(layout, True)}"


# --- data ----------------------------------------------------------------------------------------


def _names(columns: list[str]) -> str:
    return ", ".join(q(c) for c in columns)


def copy_side_sql(layout: Layout, family: Family, source: str) -> str:
    cols = layout.writable(layout.family_columns(family))
    any_value = " OR ".join(f"{q(c)} IS NOT NULL" for c in cols)
    return (
        f"INSERT INTO {q(family.table)} ({_names(layout.key + cols)}) "
        f"SELECT {_names(layout.key + cols)} FROM {q(source)} WHERE {any_value}"
    )


def copy_key_value_sql(layout: Layout, family: Family, source: str) -> str:
    parts = [
        f"SELECT {_names(layout.key)}, {quote_literal(c)}, {q(c)} FROM {q(source)} WHERE {q(c)} IS NOT NULL"
        for c in layout.family_columns(family)
    ]
    target = _names([*layout.key, family.name_column, family.value_column])
    return f"INSERT INTO {q(family.table)} ({target})\n" + "\nUNION ALL ".join(parts)


# --- indexes and referencing tables ---------------------------------------------------------------


def index_home(layout: Layout, sql: str) -> str | None:
    """The new table an old index fits on (all the columns it uses are there), None when none does."""
    columns = {fold(c.name) for c in layout.table.columns}
    used = mentioned_names(sql.split("(", 1)[1] if "(" in sql else "") & columns
    homes = set()
    for name in used:
        family = layout.plan.family_of(name)
        homes.add(layout.plan.core_table if family is None else (family.table if family.kind == "side" else None))
    if not homes:
        return layout.plan.core_table
    if len(homes) == 1 and None not in homes:
        return homes.pop()
    return None


def dependents_sql(conn: sqlite3.Connection, table: str) -> list[str]:
    """CREATE INDEX and CREATE TRIGGER text of a table's own indexes and triggers, in creation order."""
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL "
        "ORDER BY type = 'trigger', rowid",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def rebuild_steps(
    script: Script,
    child: ChildRebuild,
    conn: sqlite3.Connection,
    select: str | None = None,
    columns: list[str] | None = None,
) -> None:
    """Steps that give `child.table` new CREATE TABLE text, keeping rows, rowids, indexes and triggers.

    The rows come from the set-aside copy: all its columns, or `columns` (those the new text keeps),
    or the SELECT `select` over it (it names the copy REBUILD_TEMP) giving `columns` in order.
    """
    table = child.table
    name = q(table.name)
    for kind, obj in conn.execute(
        "SELECT type, name FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY rowid",
        (table.name,),
    ).fetchall():
        script.add(f"rebuild {table.name}: drop {kind} {obj} (recreated below)", f"DROP {kind.upper()} {q(obj)}")
    script.add(f"rebuild {table.name}: set the old table aside", f"ALTER TABLE {name} RENAME TO {q(REBUILD_TEMP)}")
    script.add(f"rebuild {table.name}: create it with the new definition", child.new_sql)
    names = columns if columns is not None else [c.name for c in table.columns if not c.generated]
    cols = _names(names)
    rowid = f"{rowid_name(table)}, " if not table.without_rowid and table.rowid_alias is None else ""
    source = f"SELECT {rowid}{cols} FROM {q(REBUILD_TEMP)}" if select is None else select
    script.add(f"rebuild {table.name}: copy its rows (rowids kept)", f"INSERT INTO {name} ({rowid}{cols}) {source}")
    script.add(f"rebuild {table.name}: drop the old copy", f"DROP TABLE {q(REBUILD_TEMP)}")
    for sql in child.dependents:
        script.add(f"rebuild {table.name}: recreate index/trigger", sql)


# --- the whole split -----------------------------------------------------------------------------


def build_script(conn: sqlite3.Connection, schema: Schema, layout: Layout) -> Script:
    """The expand step: new tables, their data, the sync triggers. The table itself is not touched."""
    del conn, schema  # the expand changes no existing object
    plan = layout.plan
    table = layout.table
    script = Script()
    for family in plan.families:
        if family.kind == "side":
            script.add(f"side table: {len(family.columns)} columns filled together", side_sql(layout, family))
        else:
            script.add(f"key-value table: {len(family.columns)} sparse columns", key_value_sql(layout, family))
    for family in plan.families:
        if family.kind == "side":
            script.add(f"copy into {family.table}: rows with any value", copy_side_sql(layout, family, table.name))
        else:
            script.add(f"copy into {family.table}: one row per value", copy_key_value_sql(layout, family, table.name))
    for name, sql in zip(trigger_names(layout), sync_triggers(layout), strict=True):
        script.add(f"keep in step both ways: {name}", sql)
    return script
