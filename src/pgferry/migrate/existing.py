"""`copy --into-existing`: fill the tables an application's framework made itself (pgloader's "data only").

The framework (`manage.py migrate`, `alembic upgrade head`) made the schema, so the copy makes none:
it reads the target's tables and columns from PostgreSQL's catalog, matches the source's by name
(exactly, then ignoring case, as PostgreSQL folds unquoted names), and converts every value to the
target column's type (pgferry.migrate.types.cast_choice, from that type and the census). Nothing is
created or dropped. Foreign keys stay as they are and stay checked: tables are copied parents first,
and each chunk's transaction defers the deferrable ones to its commit; a table that references itself
is copied part after part in key order. Sequences and identities are set above the copied keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgferry.errors import TargetError
from pgferry.migrate.plan import ColumnPlan, MigrationPlan, Step, TablePlan
from pgferry.migrate.types import cast_choice
from pgferry.sqlite.census import TableCensus
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident, quote_literal

# format_type's long spellings -> the short ones the converters and verify's canonical forms use.
LONG_TYPE = re.compile(
    r"^(timestamp|time|character varying|character|bit varying)(\(\d+\))?( with time zone| without time zone)?$"
)
SHORT_TYPES = {
    "timestamp with": "timestamptz",
    "timestamp without": "timestamp",
    "time with": "timetz",
    "time without": "time",
    "character varying": "varchar",
    "character": "char",
    "bit varying": "varbit",
}

# What each conversion does, for the report and --dry-run.
CONVERSIONS = {
    "int": "integers as they are",
    "bool": "0/1 as false/true",
    "text": "text as it is",
    "text_any": "values as text, read by PostgreSQL's input function for the type",
    "bytes": "BLOBs as bytes",
    "text_bytes": "text as its UTF-8 bytes",
    "numeric": "numbers kept exact",
    "numeric_fit": "numbers kept exact; one the type would round is refused",
    "epoch_seconds": "epoch seconds as UTC",
    "epoch_millis": "epoch milliseconds as UTC",
    "timestamp_text": "ISO-8601 text",
    "utc_text": "date-times without a zone taken as UTC",
    "json_any": "JSON text as it is",
    "json_numbers": "JSON values, numbers stored as numbers written exactly",
    "uuid_hex": "32 hex digits as a UUID",
    "uuid_text": "UUID text",
    "inet_text": "IP address text",
    "time_text": "time-of-day text",
    "micros_interval": "integer microseconds as an interval",
    "epoch_text_interval": "a DATETIME since 1970-01-01 as an interval (SQLAlchemy's Interval)",
}

_COLUMNS = """
SELECT c.relname, a.attname,
    format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid),
                CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
    b.typcategory, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), a.atthasdef,
    a.attidentity <> '', a.attgenerated <> '',
    pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid JOIN pg_type b ON b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum
"""

_FOREIGN_KEYS = """
SELECT con.conname, c.relname, p.relname, con.condeferrable
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE con.contype = 'f' AND n.nspname = %s AND pn.nspname = %s ORDER BY 2, 1
"""


@dataclass(frozen=True)
class TargetColumn:
    name: str
    pg_type: str  # format_type, in its short spelling (timestamptz, varchar(300))
    category: str  # pg_type.typcategory: 'S' string, 'E' enum, 'N' numeric, ...
    notnull: bool
    has_default: bool
    identity: bool
    generated: bool
    sequence: str | None  # pg_get_serial_sequence: a serial's or an identity's sequence

    @property
    def fills_itself(self) -> bool:
        """A row that leaves it out still gets a value (or may hold NULL)."""
        return not self.notnull or self.has_default or self.identity or self.generated


@dataclass(frozen=True)
class TargetForeignKey:
    name: str
    table: str
    references: str
    deferrable: bool


@dataclass
class Target:
    """The tables of one schema of the target, as the catalog has them."""

    schema: str
    tables: dict[str, list[TargetColumn]] = field(default_factory=dict)
    foreign_keys: list[TargetForeignKey] = field(default_factory=list)


def short_type(formatted: str) -> str:
    """format_type's spelling in the short form: 'timestamp(3) with time zone' -> 'timestamptz(3)'."""
    found = LONG_TYPE.match(formatted)
    if found is None:
        return formatted
    name, modifier, zone = found.groups()
    key = name if zone is None else f"{name} {zone.split()[0]}"
    return SHORT_TYPES.get(key, name) + (modifier or "")


def read_target(pg: psycopg.Connection[Any], schema: str) -> Target:
    """The tables, columns and foreign keys of `schema` in the target."""
    target = Target(schema)
    for table, *column in pg.execute(_COLUMNS, [schema]).fetchall():
        name, formatted, category, notnull, has_default, identity, generated, sequence = column
        target.tables.setdefault(table, []).append(
            TargetColumn(name, short_type(formatted), category, notnull, has_default, identity, generated, sequence)
        )
    rows = pg.execute(_FOREIGN_KEYS, [schema, schema]).fetchall()
    target.foreign_keys = [TargetForeignKey(*row) for row in rows]
    return target


def existing_target(pg: psycopg.Connection[Any], schema: str) -> Target:
    """read_target, refusing a schema without tables (the framework's migrations have not run)."""
    target = read_target(pg, schema)
    if not target.tables:
        raise TargetError(
            f"--into-existing: schema {schema!r} in the target has no tables; create them first with the "
            "application's framework (manage.py migrate, alembic upgrade head, rails db:schema:load)"
        )
    return target


def _find(name: str, candidates: dict[str, Any], what: str) -> str | None:
    """The candidate named `name` exactly, else the one name that differs only in case."""
    if name in candidates:
        return name
    folded = [c for c in candidates if c.lower() == name.lower()]
    if len(folded) > 1:
        raise TargetError(f"{what} {name!r} matches several in the target, differing only in case: {folded}")
    return folded[0] if folded else None


@dataclass
class Matching:
    """Source table -> target table, and per source column its target column (None: the target computes it)."""

    tables: dict[str, str]
    columns: dict[str, dict[str, TargetColumn | None]]
    notes: list[str]


def match(schema: Schema, target: Target) -> Matching:
    """Match the source's tables and columns to the target's by name; every source table and column
    must find one, and every NOT NULL target column without a default must be filled. Raises a
    TargetError naming every misfit at once."""
    problems: list[str] = []
    notes: list[str] = []
    matching = Matching({}, {}, notes)
    where = f"schema {target.schema!r}"
    for table in schema.tables:
        found = _find(table.name, target.tables, "table")
        if found is None:
            problems.append(f"source table {table.name!r} has no table in {where}")
            continue
        if found != table.name:
            notes.append(f"table {table.name} -> {found} (matched ignoring case)")
        matching.tables[table.name] = found
        columns = {c.name: c for c in target.tables[found]}
        mapped: dict[str, TargetColumn | None] = {}
        for column in table.columns:
            name = _find(column.name, columns, f"column of {found!r}")
            if name is None:
                problems.append(f"column {table.name}.{column.name} has no column in {found!r}")
                continue
            if name in {c.name for c in mapped.values() if c is not None}:
                problems.append(f"columns of {table.name!r} differing only in case both match {found}.{name}")
                continue
            if columns[name].generated:
                if not column.generated:
                    problems.append(f"{found}.{name} is a generated column: {table.name}.{column.name} cannot fill it")
                else:
                    notes.append(f"{found}.{name}: generated in the target too, computed there, not copied")
                mapped[column.name] = None
                continue
            if name != column.name:
                notes.append(f"column {table.name}.{column.name} -> {found}.{name} (matched ignoring case)")
            mapped[column.name] = columns[name]
        filled = {c.name for c in mapped.values() if c is not None}
        for other in target.tables[found]:
            if other.name in filled or other.generated:
                continue
            if not other.fills_itself:
                problems.append(
                    f"{found}.{other.name} is NOT NULL without a default, and {table.name!r} does not fill it"
                )
            else:
                notes.append(f"{found}.{other.name}: not in the source, left to its default")
        matching.columns[table.name] = mapped
    if problems:
        raise TargetError(f"--into-existing: the tables in {where} do not fit the source:\n  " + "\n  ".join(problems))
    unfilled = sorted(set(target.tables) - set(matching.tables.values()))
    if unfilled:
        notes.append(f"tables of the target not in the source, left alone: {', '.join(unfilled)}")
    return matching


def _components(graph: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """Each node's strongly connected component (tables that reference each other, in a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: dict[str, frozenset[str]] = {}

    def visit(node: str) -> None:  # Tarjan's algorithm; a schema's tables are few enough to recurse
        index[node] = low[node] = len(index)
        stack.append(node)
        for parent in sorted(graph[node]):
            if parent not in index:
                visit(parent)
                low[node] = min(low[node], low[parent])
            elif parent in stack:
                low[node] = min(low[node], index[parent])
        if low[node] == index[node]:
            members: set[str] = set()
            while True:
                member = stack.pop()
                members.add(member)
                if member == node:
                    break
            for member in members:
                found[member] = frozenset(members)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _order(matching: Matching, target: Target) -> tuple[dict[str, list[str]], set[str], list[str]]:
    """(tables each table is copied after, tables copied part after part, notes) from the target's
    foreign keys between the tables the copy fills."""
    by_target = {t: s for s, t in matching.tables.items()}
    graph: dict[str, set[str]] = {s: set() for s in matching.tables}
    keys = [k for k in target.foreign_keys if k.table in by_target and k.references in by_target]
    for key in keys:
        graph[by_target[key.table]].add(by_target[key.references])
    component = _components(graph)
    after = {s: sorted(p for p in parents if component[p] != component[s]) for s, parents in graph.items()}
    serial = {s for s, parents in graph.items() if s in parents or len(component[s]) > 1}
    notes = []
    if keys:
        deferrable = sum(k.deferrable for k in keys)
        others = "" if deferrable == len(keys) else ", the others as each chunk's rows go in"
        notes.append(
            f"foreign keys: tables copied parents first; {deferrable} of {len(keys)} deferrable, checked at "
            f"each chunk's commit (SET CONSTRAINTS ALL DEFERRED in its transaction){others}; none disabled"
        )
    for cycle in sorted({component[s] for s in serial if len(component[s]) > 1}, key=sorted):
        notes.append(
            f"tables {', '.join(sorted(cycle))} reference each other: copied part after part; a row that "
            "points at a row of a table not yet copied is refused by its foreign key"
        )
    for table in sorted(s for s in serial if s in graph[s]):
        notes.append(f"{table} references itself: its parts are copied one after another, in key order")
    return after, serial, notes


def sequence_sql(schema: str, table: str, column: str, sequence: str) -> str:
    """setval of `sequence` to just above max(column) (its minimum on an empty table)."""
    seq = quote_literal(sequence) + "::regclass"
    top = f"(SELECT coalesce(max({quote_ident(column)}), 0) FROM {quote_ident(schema)}.{quote_ident(table)}) + 1"
    return f"SELECT setval({seq}, GREATEST({top}, (SELECT seqmin FROM pg_sequence WHERE seqrelid = {seq})), false)"


def existing_plan(
    schema: Schema, censuses: dict[str, TableCensus], target: Target, matching: Matching
) -> MigrationPlan:
    """The plan that fills the target's tables: each column's type is the target's, its converter the
    one that brings what the census saw to that type; the only steps are the sequence restarts."""
    after, serial, order_notes = _order(matching, target)
    tables: list[TablePlan] = []
    steps: list[Step] = []
    for table in schema.tables:
        name = matching.tables[table.name]
        census = censuses[table.name]
        columns = []
        for column in table.columns:
            found = matching.columns[table.name][column.name]
            if found is None:
                continue
            choice = cast_choice(
                found.pg_type,
                column,
                census.column(column.name),
                reason=f"the target's {found.pg_type}",
                category=found.category,
            )
            columns.append(ColumnPlan(column.name, found.name, choice, found.notnull, None))
            if found.sequence is not None:
                sql_text = sequence_sql(target.schema, name, found.name, found.sequence)
                steps.append(Step("sequence", table.name, found.sequence, sql_text, required=True))
        tables.append(_table_plan(table, name, columns, census, after[table.name], table.name in serial))
    notes = matching.notes + order_notes
    if steps:
        notes.append(f"sequences set above the copied keys after the data: {', '.join(s.name for s in steps)}")
    return MigrationPlan(target.schema, tables, steps, [], [], into_existing=True, notes=notes)


def _table_plan(
    table: Table, target: str, columns: list[ColumnPlan], census: TableCensus, after: list[str], serial: bool
) -> TablePlan:
    key = () if not table.without_rowid else table.primary_key
    return TablePlan(table.name, target, columns, key, census.rows, after=after, serial=serial)


def occupied(pg: psycopg.Connection[Any], plan: MigrationPlan) -> dict[str, int]:
    """Target tables the copy fills that already hold rows, with their row counts."""
    found = {}
    for table in plan.tables:
        name = sql.Identifier(plan.schema, table.target)
        row = pg.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name)).fetchone()
        if row and row[0]:
            count = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
            found[table.target] = int(count[0]) if count else 0
    return found


_REFERENCING = """
WITH RECURSIVE r(oid) AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relname = ANY(%s)
    UNION SELECT con.conrelid FROM pg_constraint con JOIN r ON con.confrelid = r.oid WHERE con.contype = 'f')
SELECT n.nspname, c.relname FROM r JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2
"""


def empty_tables(pg: psycopg.Connection[Any], plan: MigrationPlan, rows: dict[str, int]) -> list[str]:
    """TRUNCATE the tables that hold rows (`rows`, from occupied), in one statement, with every table
    whose foreign keys point at them (PostgreSQL wants those in the same statement; the copy fills
    them or they are empty). Refuses, naming it, a table that would lose rows the copy does not put
    back. Returns the report's lines. Run it inside the transaction that starts the copy."""
    if not rows:
        return []
    filled = {(plan.schema, t.target) for t in plan.tables}
    closure = [(s, t) for s, t in pg.execute(_REFERENCING, [plan.schema, sorted(rows)]).fetchall()]
    for schema_name, table in closure:
        if (schema_name, table) in filled:
            continue
        held = pg.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema_name, table)))
        if (held.fetchone() or (False,))[0]:
            raise TargetError(
                f"--truncate-existing would also empty {schema_name}.{table}, which references a table that "
                "holds rows and is not filled by the copy; empty it yourself or leave the rows alone"
            )
    names = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in closure)
    pg.execute(sql.SQL("TRUNCATE {}").format(names))
    held_rows = ", ".join(f"{t} ({n} rows)" for t, n in sorted(rows.items()))
    lines = [f"emptied before the copy (--truncate-existing, one TRUNCATE): {held_rows}"]
    others = [f"{s}.{t}" for s, t in closure if t not in rows or s != plan.schema]
    if others:
        lines.append(f"in the same TRUNCATE, empty tables that reference them: {', '.join(others)}")
    return lines


def refuse_occupied(schema: str, rows: dict[str, int]) -> TargetError:
    held = ", ".join(f"{t} ({n} rows)" for t, n in sorted(rows.items()))
    return TargetError(
        f"--into-existing: tables in schema {schema!r} already hold rows: {held}; the copy fills empty tables "
        "(--truncate-existing empties these first, in one TRUNCATE)"
    )


def mapping_text(plan: MigrationPlan) -> str:
    """--dry-run --into-existing: the column mapping and each conversion, and what the copy does besides."""
    out = [f"-- pgferry copy --into-existing: {len(plan.tables)} tables into the existing schema {plan.schema}"]
    for table in plan.tables:
        out.append(f"\n-- {table.source} -> {plan.schema}.{table.target}: {table.rows} rows")
        for column in table.columns:
            how = CONVERSIONS.get(column.choice.converter, column.choice.converter)
            out.append(f"--   {column.source} -> {column.target} {column.choice.pg_type}: {how}")
        if table.after:
            out.append(f"--   copied after {', '.join(table.after)}")
    out.append("")
    out += [f"-- {note}" for note in plan.notes]
    out += [step.sql + ";" for step in plan.steps]
    return "\n".join(out) + "\n"
