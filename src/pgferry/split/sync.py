"""The triggers that keep a split table and its new tables in step, both ways, during the transition.

The table keeps every column and stays a real table, so every write on it (ORMs included) gets the
right rowcount, lastrowid and RETURNING; the new tables are real tables too, so code moved to the
new schema writes them directly. AFTER triggers copy each change across:

- on the table: INSERT / UPDATE / DELETE upsert or delete the family rows (a side row exists when
  any of its values is not NULL; a key-value row per non-NULL value);
- on a side or key-value table: the change is written back into the table's columns.

Guard against ping-pong: every write a trigger makes carries a WHERE that compares values (storage
class and bytes: `1` and `1.0`, `a` and `A` under NOCASE differ), so the echo of a change finds
nothing to change and stops. That holds with `recursive_triggers` on or off, and costs no lookup
of a flag table. Triggers' work is not counted in `changes()`, and `last_insert_rowid()` is
restored when a trigger ends, so callers see exactly what the statement itself did.
"""

from __future__ import annotations

from pgferry.split.layout import Layout
from pgferry.split.plan import Family
from pgferry.sqltext import quote_ident as q
from pgferry.sqltext import quote_literal


def differs(new: str, old: str) -> str:
    """SQL true when `new` and `old` hold different values (storage class included, bytes compared)."""
    return f"({new} IS NOT {old} COLLATE BINARY OR typeof({new}) IS NOT typeof({old}))"


def _names(columns: list[str]) -> str:
    return ", ".join(q(c) for c in columns)


def _match(layout: Layout, prefix: str) -> str:
    return " AND ".join(f"{q(k)} = {prefix}.{q(k)}" for k in layout.key)


def _trigger(name: str, event: str, table: str, body: list[str], when: str = "") -> str:
    lines = "".join(f"  {s};\n" for s in body)
    guard = f" WHEN {when}" if when else ""
    return f"CREATE TRIGGER {q(name)} AFTER {event} ON {q(table)}{guard}\nBEGIN\n{lines}END"


def trigger_names(layout: Layout) -> list[str]:
    """Names of the sync triggers, in creation order (three on the table, three per new table)."""
    tables = [layout.table.name, *(f.table for f in layout.plan.families)]
    return [f"{t}_split_{e}" for t in tables for e in ("insert", "update", "delete")]


# --- the table -> the new tables -----------------------------------------------------------------


def _refuse_null_key(layout: Layout) -> list[str]:
    """SQLite lets a non-INTEGER primary key hold NULL; family rows could not point at such a row."""
    if layout.table.rowid_alias is not None:
        return []
    message = quote_literal(f"NULL in the primary key of {layout.table.name}: a split table needs a key")
    return [f"SELECT RAISE(ABORT, {message}) WHERE " + " OR ".join(f"NEW.{q(k)} IS NULL" for k in layout.key)]


def _push_family(layout: Layout, family: Family) -> list[str]:
    """Statements writing NEW's values of `family` into its table (insert and update alike)."""
    table = q(family.table)
    cols = layout.writable(layout.family_columns(family))
    new = [f"NEW.{q(k)}" for k in layout.key]
    conflict = _names(layout.key)
    if family.kind == "side":
        all_null = " AND ".join(f"NEW.{q(c)} IS NULL" for c in cols)
        any_value = " OR ".join(f"NEW.{q(c)} IS NOT NULL" for c in cols)
        changed = " OR ".join(differs(f"excluded.{q(c)}", f"{table}.{q(c)}") for c in cols)
        sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in cols)
        values = ", ".join(new + [f"NEW.{q(c)}" for c in cols])
        return [
            f"DELETE FROM {table} WHERE {_match(layout, 'NEW')} AND {all_null}",
            f"INSERT INTO {table} ({_names(layout.key + cols)}) SELECT {values} WHERE {any_value} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets} WHERE {changed}",
        ]
    name_col, value_col = q(family.name_column), q(family.value_column)
    nulls = " OR ".join(f"({name_col} = {quote_literal(c)} AND NEW.{q(c)} IS NULL)" for c in cols)
    out = [f"DELETE FROM {table} WHERE {_match(layout, 'NEW')} AND ({nulls})"]
    target = _names([*layout.key, family.name_column, family.value_column])
    for c in cols:
        out.append(
            f"INSERT INTO {table} ({target}) SELECT {', '.join(new)}, {quote_literal(c)}, NEW.{q(c)} "
            f"WHERE NEW.{q(c)} IS NOT NULL ON CONFLICT ({conflict}, {name_col}) "
            f"DO UPDATE SET {value_col} = excluded.{value_col} "
            f"WHERE {differs(f'excluded.{value_col}', f'{table}.{value_col}')}"
        )
    return out


def table_triggers(layout: Layout) -> list[str]:
    plan, name = layout.plan, layout.table.name
    insert = _refuse_null_key(layout)
    for family in plan.families:
        insert += _push_family(layout, family)
    moved_cols = [c for f in plan.families for c in layout.writable(layout.family_columns(f))]
    key_changed = " OR ".join(f"NEW.{q(k)} IS NOT OLD.{q(k)}" for k in layout.key)
    when = " OR ".join([key_changed, *(differs(f"NEW.{q(c)}", f"OLD.{q(c)}") for c in moved_cols)])
    update = _refuse_null_key(layout)
    key_sets = ", ".join(f"{q(k)} = NEW.{q(k)}" for k in layout.key)
    for family in plan.families:
        update.append(f"UPDATE {q(family.table)} SET {key_sets} WHERE {_match(layout, 'OLD')} AND ({key_changed})")
        update += _push_family(layout, family)
    delete = [f"DELETE FROM {q(f.table)} WHERE {_match(layout, 'OLD')}" for f in plan.families]
    return [
        _trigger(f"{name}_split_insert", "INSERT", name, insert),
        _trigger(f"{name}_split_update", "UPDATE", name, update, when),
        _trigger(f"{name}_split_delete", "DELETE", name, delete),
    ]


# --- a new table -> the table --------------------------------------------------------------------


def _clear(layout: Layout, cols: list[str], extra: str = "") -> str:
    """UPDATE setting the table's nullable `cols` to NULL for OLD's key (NOT NULL ones keep their value)."""
    nullable = [c for c in cols if not layout.column(c).notnull]
    if not nullable:
        return ""
    sets = ", ".join(f"{q(c)} = NULL" for c in nullable)
    any_value = " OR ".join(f"{q(c)} IS NOT NULL" for c in nullable)
    return f"UPDATE {q(layout.table.name)} SET {sets} WHERE {_match(layout, 'OLD')}{extra} AND ({any_value})"


def family_triggers(layout: Layout, family: Family) -> list[str]:
    table, wide = family.table, q(layout.table.name)
    cols = layout.writable(layout.family_columns(family))
    key_changed = " OR ".join(f"NEW.{q(k)} IS NOT OLD.{q(k)}" for k in layout.key)
    if family.kind == "side":
        sets = ", ".join(f"{q(c)} = NEW.{q(c)}" for c in cols)
        changed = " OR ".join(differs(f"NEW.{q(c)}", q(c)) for c in cols)
        write = f"UPDATE {wide} SET {sets} WHERE {_match(layout, 'NEW')} AND ({changed})"
        moved_away = _clear(layout, cols, f" AND ({key_changed})")
        insert, update = [write], [s for s in (moved_away, write) if s]
        delete = [s for s in (_clear(layout, cols),) if s]
    else:
        name_col, value_col = f"NEW.{q(family.name_column)}", f"NEW.{q(family.value_column)}"
        old_name = f"OLD.{q(family.name_column)}"
        insert, update, delete = [], [], []
        for c in cols:
            write = (
                f"UPDATE {wide} SET {q(c)} = {value_col} WHERE {_match(layout, 'NEW')} "
                f"AND {name_col} = {quote_literal(c)} AND {differs(value_col, q(c))}"
            )
            gone = _clear(layout, [c], f" AND {old_name} = {quote_literal(c)}")
            renamed = _clear(
                layout, [c], f" AND {old_name} = {quote_literal(c)} AND ({key_changed} OR {name_col} IS NOT {old_name})"
            )
            insert.append(write)
            update += [s for s in (renamed, write) if s]
            delete += [gone] if gone else []
    return [
        _trigger(f"{table}_split_{event.lower()}", event, table, body or ["SELECT 1"])
        for event, body in (("INSERT", insert), ("UPDATE", update), ("DELETE", delete))
    ]


def sync_triggers(layout: Layout) -> list[str]:
    """CREATE TRIGGER text of every sync trigger, in the order of `trigger_names`."""
    out = table_triggers(layout)
    for family in layout.plan.families:
        out += family_triggers(layout, family)
    return out
