"""The statements of a split, generated apart from running them (so `pgferry split` without
`--apply` can print exactly what `--apply` would run).

Order: new tables, data moved, old table dropped, view and INSTEAD OF triggers under the old
name, the old indexes that fit one new table, then the referencing tables rebuilt so their
foreign keys point at the core table. The core table is the old CREATE TABLE text with the moved
columns cut out (constraints and clauses kept as written); side tables carry the moved column
definitions verbatim.

Triggers, in short (K is the key):
- INSERT: insert the core row (NOT NULL columns with a DEFAULT get it when omitted, since a view
  has no defaults); stop if no row was inserted (INSERT OR IGNORE met a conflict:
  RAISE(IGNORE) keeps the side tables untouched); then write the side and key-value rows under
  the new row's key, read back with last_insert_rowid() when the key was assigned by SQLite.
- UPDATE: update the core row (stop if ignored); move side rows when K changed; per family,
  delete the side row when all its values became NULL, else upsert it when a value changed.
- DELETE: side rows, then the core row.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from pgferry.split.layout import Layout, rowid_name
from pgferry.split.plan import Family
from pgferry.split.sqltext import fold, mentioned_names, rename_index_target, repoint_references
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


def copy_core_sql(layout: Layout, source: str) -> str:
    cols = layout.writable(layout.core_columns)
    rowid = f"{rowid_name(layout.table)}, " if layout.copies_rowid else ""
    return (
        f"INSERT INTO {q(layout.plan.core_table)} ({rowid}{_names(cols)}) SELECT {rowid}{_names(cols)} FROM {q(source)}"
    )


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


# --- view and triggers ---------------------------------------------------------------------------


def view_sql(layout: Layout) -> str:
    names = _names([c.name for c in layout.table.columns])
    return f"CREATE VIEW {q(layout.table.name)} ({names}) AS\n{layout.select_sql()}"


def _new_value(layout: Layout, name: str) -> str:
    """NEW.col, or its DEFAULT when the column is NOT NULL with a default (a view has no defaults)."""
    column = layout.column(name)
    if column.notnull and column.default is not None:
        return f"COALESCE(NEW.{q(name)}, ({column.default}))"
    return f"NEW.{q(name)}"


def _inserted_key(layout: Layout) -> list[str]:
    """Expressions for the key of the row the trigger just inserted into the core table."""
    alias = layout.table.rowid_alias
    if alias is not None:
        return ["last_insert_rowid()"]
    if layout.has_rowid:
        core = q(layout.plan.core_table)
        rowid = rowid_name(layout.table)
        return [f"(SELECT {q(k)} FROM {core} WHERE {rowid} = last_insert_rowid())" for k in layout.key]
    return [_new_value(layout, k) for k in layout.key]


def _refuse_null_key(layout: Layout, exprs: list[str]) -> str:
    """SQLite lets a non-INTEGER primary key hold NULL; side rows could not point at such a row,
    so the write fails loudly instead of losing the side values."""
    message = quote_literal(f"NULL in the primary key of {layout.table.name}: a split table needs a key")
    return f"SELECT RAISE(ABORT, {message}) WHERE " + " OR ".join(f"{e} IS NULL" for e in exprs)


def _match(layout: Layout, exprs: list[str]) -> str:
    return " AND ".join(f"{q(k)} = {e}" for k, e in zip(layout.key, exprs, strict=True))


def _trigger(layout: Layout, event: str, body: list[str]) -> str:
    name = q(f"{layout.table.name}_split_{event.lower()}")
    lines = "".join(f"  {s};\n" for s in body)
    return f"CREATE TRIGGER {name} INSTEAD OF {event} ON {q(layout.table.name)}\nBEGIN\n{lines}END"


def insert_trigger_sql(layout: Layout) -> str:
    plan = layout.plan
    core_cols = layout.writable(layout.core_columns)
    values = ", ".join(_new_value(layout, c) for c in core_cols)
    body = [
        f"INSERT INTO {q(plan.core_table)} ({_names(core_cols)}) VALUES ({values})",
        "SELECT RAISE(IGNORE) WHERE changes() = 0",
    ]
    key = _inserted_key(layout)
    if layout.table.rowid_alias is None:
        body.append(_refuse_null_key(layout, key))
    for family in plan.families:
        body.append(f"DELETE FROM {q(family.table)} WHERE {_match(layout, key)}")
        cols = layout.writable(layout.family_columns(family))
        if family.kind == "side":
            vals = [_new_value(layout, c) for c in cols]
            any_value = " OR ".join(f"{v} IS NOT NULL" for v in vals)
            body.append(
                f"INSERT INTO {q(family.table)} ({_names(layout.key + cols)}) "
                f"SELECT {', '.join(key + vals)} WHERE {any_value}"
            )
            continue
        target = _names([*layout.key, family.name_column, family.value_column])
        for c in cols:
            body.append(
                f"INSERT INTO {q(family.table)} ({target}) "
                f"SELECT {', '.join(key)}, {quote_literal(c)}, NEW.{q(c)} WHERE NEW.{q(c)} IS NOT NULL"
            )
    return _trigger(layout, "INSERT", body)


def _changed(name: str) -> str:
    return f"NEW.{q(name)} IS NOT OLD.{q(name)} COLLATE BINARY OR typeof(NEW.{q(name)}) IS NOT typeof(OLD.{q(name)})"


def update_trigger_sql(layout: Layout) -> str:
    plan = layout.plan
    core_cols = layout.writable(layout.core_columns)
    sets = ", ".join(f"{q(c)} = NEW.{q(c)}" for c in core_cols)
    old = [f"OLD.{q(k)}" for k in layout.key]
    new = [f"NEW.{q(k)}" for k in layout.key]
    body = [] if layout.table.rowid_alias is not None else [_refuse_null_key(layout, new)]
    body += [
        f"UPDATE {q(plan.core_table)} SET {sets} WHERE {_match(layout, old)}",
        "SELECT RAISE(IGNORE) WHERE changes() = 0",
    ]
    moved = layout.key_changed()
    key_sets = ", ".join(f"{q(k)} = NEW.{q(k)}" for k in layout.key)
    conflict = _names(layout.key)
    for family in plan.families:
        table = q(family.table)
        cols = layout.writable(layout.family_columns(family))
        body.append(f"UPDATE {table} SET {key_sets} WHERE {_match(layout, old)} AND {moved}")
        if family.kind == "side":
            all_null = " AND ".join(f"NEW.{q(c)} IS NULL" for c in cols)
            any_value = " OR ".join(f"NEW.{q(c)} IS NOT NULL" for c in cols)
            changed = " OR ".join([moved, *(_changed(c) for c in cols)])
            updates = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in cols)
            body.append(f"DELETE FROM {table} WHERE {_match(layout, new)} AND {all_null}")
            values = ", ".join(new + [f"NEW.{q(c)}" for c in cols])
            body.append(
                f"INSERT INTO {table} ({_names(layout.key + cols)}) SELECT {values} "
                f"WHERE ({any_value}) AND ({changed}) ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
            )
            continue
        name_col, value_col = q(family.name_column), q(family.value_column)
        nulls = " OR ".join(f"({name_col} = {quote_literal(c)} AND NEW.{q(c)} IS NULL)" for c in cols)
        body.append(f"DELETE FROM {table} WHERE {_match(layout, new)} AND ({nulls})")
        target = _names([*layout.key, family.name_column, family.value_column])
        for c in cols:
            body.append(
                f"INSERT INTO {table} ({target}) SELECT {', '.join(new)}, {quote_literal(c)}, NEW.{q(c)} "
                f"WHERE NEW.{q(c)} IS NOT NULL AND ({moved} OR {_changed(c)}) "
                f"ON CONFLICT ({conflict}, {name_col}) DO UPDATE SET {value_col} = excluded.{value_col}"
            )
    return _trigger(layout, "UPDATE", body)


def delete_trigger_sql(layout: Layout) -> str:
    old = [f"OLD.{q(k)}" for k in layout.key]
    body = [f"DELETE FROM {q(f.table)} WHERE {_match(layout, old)}" for f in layout.plan.families]
    body.append(f"DELETE FROM {q(layout.plan.core_table)} WHERE {_match(layout, old)}")
    return _trigger(layout, "DELETE", body)


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


def rebuild_steps(script: Script, child: ChildRebuild, conn: sqlite3.Connection) -> None:
    """Steps that give `child.table` new CREATE TABLE text, keeping rows, rowids, indexes and triggers."""
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
    cols = _names([c.name for c in table.columns if not c.generated])
    rowid = f"{rowid_name(table)}, " if not table.without_rowid and table.rowid_alias is None else ""
    script.add(
        f"rebuild {table.name}: copy its rows (rowids kept)",
        f"INSERT INTO {name} ({rowid}{cols}) SELECT {rowid}{cols} FROM {q(REBUILD_TEMP)}",
    )
    script.add(f"rebuild {table.name}: drop the old copy", f"DROP TABLE {q(REBUILD_TEMP)}")
    for sql in child.dependents:
        script.add(f"rebuild {table.name}: recreate index/trigger", sql)


# --- the whole split -----------------------------------------------------------------------------


def build_script(conn: sqlite3.Connection, schema: Schema, layout: Layout) -> Script:
    plan = layout.plan
    table = layout.table
    script = Script()
    script.add(f"core table: the columns of {table.name} that stay", core_sql(layout))
    for family in plan.families:
        if family.kind == "side":
            script.add(f"side table: {len(family.columns)} columns filled together", side_sql(layout, family))
        else:
            script.add(f"key-value table: {len(family.columns)} sparse columns", key_value_sql(layout, family))
    script.add("move the core columns (rowids kept)", copy_core_sql(layout, table.name))
    for family in plan.families:
        if family.kind == "side":
            script.add(f"move {family.table}: rows with any value", copy_side_sql(layout, family, table.name))
        else:
            script.add(f"move {family.table}: one row per value", copy_key_value_sql(layout, family, table.name))
    script.add(f"drop the old table (revert recreates it from {plan.core_table})", f"DROP TABLE {q(table.name)}")
    script.add("compatibility view under the old name, old columns in the old order", view_sql(layout))
    script.add("writes through the view: INSERT", insert_trigger_sql(layout))
    script.add("writes through the view: UPDATE", update_trigger_sql(layout))
    script.add("writes through the view: DELETE", delete_trigger_sql(layout))
    for index in table.indexes:
        if index.origin != "c" or not index.sql:
            continue
        home = index_home(layout, index.sql)
        if home is None:
            script.dropped_indexes.append(index.name)
            continue
        script.kept_indexes.append(index.name)
        script.add(f"keep index {index.name} on {home}", rename_index_target(index.sql, home))
    for child_table in schema.tables:
        if fold(child_table.name) == fold(table.name):
            continue
        if not any(fold(fk.ref_table) == fold(table.name) for fk in child_table.foreign_keys):
            continue
        child = ChildRebuild(
            table=child_table,
            new_sql=repoint_references(child_table.sql, table.name, plan.core_table),
            dependents=dependents_sql(conn, child_table.name),
        )
        script.children.append(child)
        rebuild_steps(script, child, conn)
    return script
