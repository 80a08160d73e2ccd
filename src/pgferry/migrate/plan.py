"""The migration plan: what each SQLite table becomes in PostgreSQL, as data and as SQL.

Built from the schema and the census, before any data moves, so `copy --dry-run` can print it
with a comment on every choice. Steps that may not translate (CHECKs, expression and partial
indexes, views, odd defaults) are tried one by one after the data is in, and the ones PostgreSQL
refuses are reported with its reason: nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses

from pgferry.migrate.choices import cast_override, choose_column_type
from pgferry.migrate.constraint_names import TableNames, check_list, name_constraints
from pgferry.migrate.expressions import Untranslatable, translate_default, translate_expression
from pgferry.migrate.frameworks import Framework
from pgferry.migrate.names import SYSTEM_COLUMNS, fitted_names, identifier, map_names, renames
from pgferry.migrate.plan_model import ColumnPlan, MigrationPlan, PartitionLayout, Skipped, Step, TablePlan
from pgferry.migrate.restart import restart_identity_sql
from pgferry.migrate.types import TypeChoice
from pgferry.sqlite.census import TableCensus, json_declaration
from pgferry.sqlite.declared import json_validated
from pgferry.sqlite.schema import Index, Schema, Table
from pgferry.sqltext import quote_ident

__all__ = ["ColumnPlan", "MigrationPlan", "PartitionLayout", "Skipped", "Step", "TablePlan", "build_plan"]

FK_ACTIONS = {"CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"}


def _keys_of(table: Table) -> set[str]:
    keys = set(table.primary_key)
    for fk in table.foreign_keys:
        keys.update(fk.columns)
    return keys


def build_plan(
    schema: Schema,
    censuses: dict[str, TableCensus],
    sequences: dict[str, int],
    target_schema: str = "public",
    keep_case: bool = False,
    casts: dict[str, str] | None = None,
    framework: Framework | None = None,
    partition_keys: dict[str, str] | None = None,
    widen_keys: bool = False,
    widen_tables: frozenset[str] = frozenset(),
) -> MigrationPlan:
    """Translate `schema` using the data facts in `censuses`; raises on name collisions.

    `partition_keys` (table -> column, checked by pgferry.migrate.partition) are the tables made
    PARTITION BY RANGE: their UNIQUE constraints are added as such (PostgreSQL has no USING INDEX on a
    partitioned table); `widen_keys` adds the column to their keys (`widen_tables`: to those tables'); a
    foreign key referencing one of them without its column is not carried (no unique key matches it)."""
    casts = casts or {}
    partition_keys = partition_keys or {}
    table_names = map_names(
        [t.name for t in schema.tables] + [v.name for v in schema.views], "table or view", keep_case
    )
    index_names = map_names([i.name for t in schema.tables for i in t.indexes if i.origin == "c"], "index", keep_case)
    plans: list[TablePlan] = []
    steps: list[Step] = []
    skipped: list[Skipped] = []
    extensions: set[str] = set()
    column_maps: dict[str, dict[str, str]] = {}
    for table in schema.tables:
        column_maps[table.name] = map_names(
            [c.name for c in table.columns], f"column of table {table.name!r}", keep_case, SYSTEM_COLUMNS
        )
    booleans: dict[str, frozenset[str]] = {}
    for table in schema.tables:
        plan = _plan_table(
            table,
            censuses[table.name],
            table_names[table.name],
            column_maps[table.name],
            sequences.get(table.name),
            casts,
            extensions,
            {c: t for c, t in column_maps[table.name].items() if t != identifier(c, keep_case)},
            framework,
        )
        booleans[table.name] = frozenset(c.source for c in plan.columns if c.choice.pg_type == "boolean")
        plans.append(plan)
    qualified = {name: f"{quote_ident(target_schema)}.{quote_ident(target)}" for name, target in table_names.items()}
    named, renamed = name_constraints(schema, table_names, column_maps, index_names, keep_case)
    for table, plan in zip(schema.tables, plans, strict=True):
        names = named[table.name]
        key = partition_keys.get(table.name)
        widen = (key,) if key is not None and (widen_keys or table.name in widen_tables) else ()
        steps += _constraint_steps(table, plan, qualified, column_maps, booleans[table.name], skipped, names, widen)
        steps += _index_steps(
            table,
            plan,
            qualified[table.name],
            index_names,
            column_maps[table.name],
            booleans[table.name],
            names,
            skipped,
            key,
            widen,
        )
    for table in schema.tables:
        steps += _foreign_key_steps(table, named[table.name], qualified, column_maps, skipped, schema, partition_keys)
    skipped += [Skipped("table definition", t.name, w) for t in schema.tables for w in t.parse_warnings]
    renamed += renames(schema, table_names, column_maps, index_names, keep_case)
    steps = fitted_names(steps, renamed)
    return MigrationPlan(
        schema=target_schema,
        tables=plans,
        steps=steps,
        skipped=skipped,
        extensions=sorted(extensions),
        framework=framework.as_dict() if framework is not None else None,
        views={v.name: table_names[v.name] for v in schema.views},
        renamed=renamed,
    )


def _plan_table(
    table: Table,
    census: TableCensus,
    target: str,
    columns: dict[str, str],
    sequence: int | None,
    casts: dict[str, str],
    extensions: set[str],
    renamed: dict[str, str],
    framework: Framework | None = None,
) -> TablePlan:
    keys = _keys_of(table)
    rowid_alias = table.rowid_alias
    notes: list[str] = []
    key_nulls = tuple(c for c in table.primary_key if c != rowid_alias and census.column(c).nulls)
    key_note = None
    if key_nulls:
        counts = ", ".join(f"{c} ({census.column(c).nulls} NULLs)" for c in key_nulls)
        key_note = (
            f"PRIMARY KEY ({', '.join(table.primary_key)}) holds NULLs in {counts}, which a PostgreSQL "
            "key cannot: carried as a UNIQUE index on nullable columns"
        )
    planned: list[ColumnPlan] = []
    for column in table.columns:
        col_census = census.column(column.name)
        choice = cast_override(table, column, col_census, casts)
        if choice is None:
            says_json = json_declaration(table, column.name)
            choice, framework_note = choose_column_type(column, col_census, column.name in keys, framework, says_json)
            if framework_note:
                choice = dataclasses.replace(choice, note="; ".join(filter(None, [choice.note, framework_note])))
            if census.sample_rows is not None:
                sampled = f" (in a sample of {census.sample_rows:,} of {census.rows:,} rows; the copy checks every row)"
                choice = dataclasses.replace(choice, reason=choice.reason + sampled)
        if column.collation == "NOCASE" and choice.pg_type == "text":
            choice = TypeChoice("citext", choice.converter, choice.reason + "; COLLATE NOCASE -> citext", choice.note)
            extensions.add("citext")
        if choice.note:
            notes.append(f"{column.name}: {choice.note}")
        default, default_note = None, None
        if column.default is not None:
            try:
                default = translate_default(column.default, choice.pg_type)
            except Untranslatable as exc:
                default_note = f"DEFAULT {column.default} not carried: {exc}"
                notes.append(f"{column.name}: {default_note}")
        generated = None
        if column.generated and column.generated_expr:
            try:
                generated = translate_expression(column.generated_expr, columns, {})
            except Untranslatable as exc:
                notes.append(f"{column.name}: generated column copied as plain values ({exc})")
        if key_note is not None and column.name in table.primary_key:
            choice = dataclasses.replace(choice, note="; ".join(filter(None, [choice.note, key_note])))
            notes.append(f"{column.name}: {key_note}")
        if column.name in renamed:  # after the notes above: a rename says nothing about the data
            rename = f"renamed to {renamed[column.name]}: {column.name} is a PostgreSQL system column name"
            choice = dataclasses.replace(choice, note="; ".join(filter(None, [choice.note, rename])))
        planned.append(
            ColumnPlan(
                source=column.name,
                target=columns[column.name],
                choice=choice,
                notnull=column.notnull or (column.name in table.primary_key and not key_nulls),
                default=default,
                identity=column.name == rowid_alias,
                generated=generated,
                default_note=default_note,
            )
        )
    identity_start = None
    if rowid_alias is not None:
        alias_census = census.column(rowid_alias)
        identity_start = max(alias_census.int_max or 0, sequence or 0) + 1
    key = () if not table.without_rowid else table.primary_key
    return TablePlan(
        source=table.name,
        target=target,
        columns=planned,
        key=key,
        rows=census.rows,
        identity_start=identity_start,
        notes=notes,
        sampled_rows=census.sample_rows,
        key_nulls=key_nulls,
    )


def create_table_sql(plan: TablePlan, schema: str) -> str:
    """CREATE TABLE with columns, types, NOT NULL, defaults, identity and generated columns."""
    lines = []
    for column in plan.columns:
        parts = [quote_ident(column.target), column.choice.pg_type]
        if column.generated:
            parts.append(f"GENERATED ALWAYS AS ({column.generated}) STORED")
        elif column.identity:
            parts.append("GENERATED BY DEFAULT AS IDENTITY")
        elif column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        if column.notnull and not column.identity:
            parts.append("NOT NULL")
        lines.append("    " + " ".join(parts))
    partitioned = f" PARTITION BY RANGE ({quote_ident(plan.partition.column)})" if plan.partition else ""
    return (
        f"CREATE TABLE {quote_ident(schema)}.{quote_ident(plan.target)} (\n" + ",\n".join(lines) + "\n)" + partitioned
    )


def _key_list(names: tuple[str, ...] | tuple[str | None, ...], columns: dict[str, str]) -> str:
    return ", ".join(quote_ident(columns[name]) for name in names if name is not None)


def _constraint_steps(
    table: Table,
    plan: TablePlan,
    qualified: dict[str, str],
    column_maps: dict[str, dict[str, str]],
    booleans: frozenset[str],
    skipped: list[Skipped],
    names: TableNames,
    widen: tuple[str, ...] = (),
) -> list[Step]:
    """The primary key (widened by `widen`, the partition key of --partition-widen-keys), the identity
    restart and the CHECKs."""
    columns = column_maps[table.name]
    target = qualified[table.name]
    steps = []
    primary_key = table.primary_key + tuple(c for c in widen if table.primary_key and c not in table.primary_key)
    if plan.key_nulls:  # NULLs are distinct in a UNIQUE index, as in SQLite's key
        keys = _key_list(primary_key, columns)
        sql = f"CREATE UNIQUE INDEX {quote_ident(names.primary_key)} ON {target} ({keys})"
        steps.append(Step("primary_key", table.name, names.primary_key, sql, required=True))
    elif table.primary_key:
        name = names.primary_key
        keys = _key_list(primary_key, columns)
        sql = f"ALTER TABLE {target} ADD CONSTRAINT {quote_ident(name)} PRIMARY KEY ({keys})"
        steps.append(Step("primary_key", table.name, name, sql, required=True))
    if plan.identity_start is not None:
        alias = columns[table.rowid_alias or ""]
        steps.append(
            Step(
                "identity",
                table.name,
                f"{plan.target}.{alias}",
                restart_identity_sql(target, alias, plan.identity_start),
                required=True,
            )
        )
    json_columns = {c.source.lower() for c in plan.columns if c.choice.pg_type in ("json", "jsonb")}
    for (check, _name, _column), name in zip(check_list(table), names.checks, strict=True):
        validated = json_validated(check)  # Django's JSONField declares CHECK (JSON_VALID("col") ...)
        if validated and validated <= json_columns:
            reason = "json_valid() is SQLite's; the column's type (json/jsonb) holds only valid JSON in PostgreSQL"
            skipped.append(Skipped("check", f"{table.name}: CHECK ({check})", reason))
            continue
        try:
            expression = translate_expression(check, columns, {}, booleans)
        except Untranslatable as exc:
            skipped.append(Skipped("check", f"{table.name}: CHECK ({check})", str(exc)))
            continue
        steps.append(
            Step(
                "check",
                table.name,
                name,
                f"ALTER TABLE {target} ADD CONSTRAINT {quote_ident(name)} CHECK ({expression})",
            )
        )
    return steps


def _index_key(index: Index, position: int, columns: dict[str, str], booleans: frozenset[str], plan: TablePlan) -> str:
    key = index.columns[position]
    if key.name is None:
        if key.expression is None:
            raise Untranslatable("expression of the index key could not be read")
        text = f"({translate_expression(key.expression, columns, {}, booleans)})"
    else:
        text = quote_ident(columns[key.name])
        column_type = next(c.choice.pg_type for c in plan.columns if c.source == key.name)
        if key.collation.upper() == "NOCASE" and column_type != "citext":
            text = f"lower({text})"
        elif key.collation.upper() == "RTRIM":
            text = f"rtrim({text})"
    return text + (" DESC" if key.desc else "")


def _index_steps(
    table: Table,
    plan: TablePlan,
    target: str,
    index_names: dict[str, str],
    columns: dict[str, str],
    booleans: frozenset[str],
    names: TableNames,
    skipped: list[Skipped],
    partition_key: str | None = None,
    widen: tuple[str, ...] = (),
) -> list[Step]:
    """CREATE INDEX for each index; a UNIQUE constraint's index is then made the constraint (a
    "unique" step, after the table's index builds: ALTER TABLE locks out the parallel builds). On a
    partitioned table (`partition_key`) a UNIQUE constraint is added whole (no USING INDEX there), and
    `widen` is added to every unique key."""
    steps = []
    for index in table.indexes:
        if index.origin == "pk":
            continue
        plain_columns = [c.name or "" for c in index.columns]
        extra = [c for c in widen if index.unique and c not in plain_columns]
        try:
            keys = ", ".join(
                [_index_key(index, i, columns, booleans, plan) for i in range(len(index.columns))]
                + [quote_ident(columns[c]) for c in extra]
            )
            where = f" WHERE {translate_expression(index.where, columns, {}, booleans)}" if index.where else ""
        except Untranslatable as exc:
            skipped.append(Skipped("index", index.name, str(exc)))
            continue
        name = names.uniques[index.name] if index.origin == "u" else index_names[index.name]
        plain = keys == ", ".join(quote_ident(columns.get(c, "")) for c in plain_columns + extra)
        if partition_key is not None and index.origin == "u" and plain:
            sql = f"ALTER TABLE {target} ADD CONSTRAINT {quote_ident(name)} UNIQUE ({keys})"
            steps.append(Step("unique", table.name, name, sql))
            continue
        unique = "UNIQUE " if index.unique else ""
        steps.append(
            Step("index", table.name, name, f"CREATE {unique}INDEX {quote_ident(name)} ON {target} ({keys}){where}")
        )
        if index.origin != "u":
            continue
        if plain:
            sql = f"ALTER TABLE {target} ADD CONSTRAINT {quote_ident(name)} UNIQUE USING INDEX {quote_ident(name)}"
            steps.append(Step("unique", table.name, name, sql))
        else:
            why = f"enforced by the unique index {name} ({keys}): a constraint cannot hold lower(), rtrim() or DESC"
            skipped.append(Skipped("unique constraint", f"{table.name}: {name}", why))
    return steps


def _foreign_key_steps(
    table: Table,
    names: TableNames,
    qualified: dict[str, str],
    column_maps: dict[str, dict[str, str]],
    skipped: list[Skipped],
    schema: Schema,
    partition_keys: dict[str, str],
) -> list[Step]:
    steps = []
    for fk, name in zip(table.foreign_keys, names.foreign_keys, strict=True):
        label = f"{table.name}({', '.join(fk.columns)}) -> {fk.ref_table}"
        if fk.ref_table not in column_maps:
            skipped.append(Skipped("foreign_key", label, f"referenced table {fk.ref_table!r} does not exist"))
            continue
        ref_columns = fk.ref_columns
        if any(c is None for c in ref_columns):
            ref_columns = schema.table(fk.ref_table).primary_key
        ref_map = column_maps[fk.ref_table]
        if any(c not in ref_map for c in ref_columns if c):
            skipped.append(Skipped("foreign_key", label, "referenced columns do not exist"))
            continue
        key = partition_keys.get(fk.ref_table)
        if key is not None and key not in ref_columns:
            why = (
                f"{fk.ref_table} is partitioned by {key} and its keys hold {key} (--partition-widen-keys): no "
                f"unique key of it matches ({', '.join(c or '' for c in ref_columns)}), which PostgreSQL's "
                "foreign key needs"
            )
            skipped.append(Skipped("foreign_key", label, why))
            continue
        actions = ""
        if fk.on_delete.upper() in FK_ACTIONS and fk.on_delete.upper() != "NO ACTION":
            actions += f" ON DELETE {fk.on_delete.upper()}"
        if fk.on_update.upper() in FK_ACTIONS and fk.on_update.upper() != "NO ACTION":
            actions += f" ON UPDATE {fk.on_update.upper()}"
        if fk.deferrable:  # SQLite defers only DEFERRABLE INITIALLY DEFERRED; PostgreSQL the same
            actions += " DEFERRABLE INITIALLY " + ("DEFERRED" if fk.initially_deferred else "IMMEDIATE")
        steps.append(
            Step(
                "foreign_key",
                table.name,
                name,
                f"ALTER TABLE {qualified[table.name]} ADD CONSTRAINT {quote_ident(name)} FOREIGN KEY "
                f"({_key_list(fk.columns, column_maps[table.name])}) REFERENCES "
                f"{qualified[fk.ref_table]} ({_key_list(ref_columns, ref_map)}){actions}",
                references=fk.ref_table,
            )
        )
    return steps
