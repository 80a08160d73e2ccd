"""The schema of a SQLite database as plain data: tables, columns, indexes, foreign keys, views.

PRAGMAs give the facts SQLite itself keeps (declared types, NOT NULL, primary key order, index
columns with collation and direction, foreign keys); the CREATE statements, parsed with sqlglot,
give what PRAGMAs do not expose (column collations, CHECK constraints, generated expressions,
partial-index WHERE clauses, index expressions). Everything downstream (doctor, split, copy)
reads this model instead of querying sqlite_master itself.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field, replace
from typing import Any

# sqlglot loads when a statement needs parsing (see table_sql and _index_details)
from pgferry.sqlite.table_sql import ParsedTable, parse_quietly, parse_table_sql, sqlite_sql

INTERNAL_PREFIX = "sqlite_"
ROWID_NAMES = ("rowid", "_rowid_", "oid")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Suffixes of the shadow tables FTS3/4/5, R*Tree and similar virtual tables keep their data in.
SHADOW_SUFFIXES = (
    "_content",
    "_segments",
    "_segdir",
    "_docsize",
    "_stat",
    "_data",
    "_idx",
    "_config",
    "_node",
    "_parent",
    "_rowid",
)


@dataclass(frozen=True)
class Column:
    """One column as SQLite declares it."""

    name: str
    declared_type: str
    notnull: bool
    default: str | None  # the default's SQL text, as SQLite stores it
    pk_position: int  # 1-based position in the primary key, 0 when not part of it
    generated: str | None = None  # "VIRTUAL" or "STORED"
    generated_expr: str | None = None
    collation: str | None = None
    checks: tuple[str, ...] = ()
    check_names: tuple[str | None, ...] = ()  # each check's CONSTRAINT name (None: unnamed); () when none named


@dataclass(frozen=True)
class IndexColumn:
    """A key of an index: a column name, or an expression when `name` is None."""

    name: str | None
    desc: bool = False
    collation: str = "BINARY"
    expression: str | None = None


@dataclass(frozen=True)
class Index:
    """An index; `origin` is 'c' (CREATE INDEX), 'u' (UNIQUE constraint) or 'pk'."""

    name: str
    table: str
    unique: bool
    origin: str
    columns: tuple[IndexColumn, ...]
    where: str | None = None
    sql: str | None = None
    constraint_name: str | None = None  # a UNIQUE constraint's CONSTRAINT name (origin 'u')

    @property
    def partial(self) -> bool:
        return self.where is not None

    @property
    def column_names(self) -> tuple[str | None, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class ForeignKey:
    """A (possibly composite) foreign key from `table` to `ref_table`."""

    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str | None, ...]  # None: the referenced table's primary key
    on_update: str = "NO ACTION"
    on_delete: str = "NO ACTION"
    name: str | None = None  # CONSTRAINT name; these three come from the CREATE TABLE, not the PRAGMA
    deferrable: bool = False
    initially_deferred: bool = False  # SQLite defers only DEFERRABLE INITIALLY DEFERRED


@dataclass(frozen=True)
class Table:
    """A user table with everything needed to recreate it elsewhere."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    checks: tuple[str, ...]
    without_rowid: bool
    strict: bool
    autoincrement: bool
    sql: str
    parse_warnings: tuple[str, ...] = ()
    check_names: tuple[str | None, ...] = ()  # as Column.check_names, for `checks`
    primary_key_name: str | None = None

    @property
    def rowid_alias(self) -> str | None:
        """The INTEGER PRIMARY KEY column that is the rowid, if there is one."""
        if self.without_rowid or len(self.primary_key) != 1:
            return None
        column = self.column(self.primary_key[0])
        if column.declared_type.upper() == "INTEGER":
            return column.name
        return None

    @property
    def rowid_name(self) -> str | None:
        """A name that reaches the rowid: one of rowid, _rowid_, oid that no column hides (SQLite
        folds ASCII letters only); None when all three are columns. (WITHOUT ROWID tables have none
        to reach; callers check `without_rowid`.)"""
        taken = {c.name.translate(_ASCII_LOWER) for c in self.columns}
        return next((name for name in ROWID_NAMES if name not in taken), None)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True)
class SchemaObject:
    """A view, trigger or virtual table: carried over only where it translates."""

    kind: str
    name: str
    table: str | None
    sql: str


@dataclass
class Schema:
    """Everything in a SQLite database's schema, split by what can be copied as data."""

    tables: list[Table] = field(default_factory=list)
    views: list[SchemaObject] = field(default_factory=list)
    triggers: list[SchemaObject] = field(default_factory=list)
    virtual_tables: list[SchemaObject] = field(default_factory=list)
    internal_tables: list[str] = field(default_factory=list)

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


def _pragma(conn: sqlite3.Connection, pragma: str, name: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT * FROM pragma_{pragma}(?)", (name,)).fetchall()


def _index_details(sql: str | None) -> tuple[list[str | None], str | None]:
    """Expressions per key (None for plain columns) and the WHERE clause of a CREATE INDEX."""
    from sqlglot import exp

    if not sql:
        return [], None
    tree = parse_quietly(sql)
    if not isinstance(tree, exp.Create):
        return [], None
    where_node = tree.find(exp.Where)
    where = sqlite_sql(where_node.this) if where_node is not None else None
    target = tree.this
    keys: list[str | None] = []
    if isinstance(target, exp.Index):
        params = target.args.get("params")
        columns = params.args.get("columns", []) if params is not None else []
        for key in columns:
            node = key.this if isinstance(key, exp.Ordered) else key
            if isinstance(node, exp.Collate):
                node = node.this
            keys.append(None if isinstance(node, exp.Column) else sqlite_sql(node))
    return keys, where


def _read_indexes(conn: sqlite3.Connection, table: str) -> list[Index]:
    """Indexes from the PRAGMAs; the CREATE INDEX text is parsed only for what they do not give (the
    WHERE of a partial index, expression keys): parsing every index cost more than the rest of the
    schema on a database with a few hundred of them."""
    indexes = []
    for _seq, name, unique, origin, partial in _pragma(conn, "index_list", table):
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
        sql = row[0] if row else None
        info = [r for r in _pragma(conn, "index_xinfo", name) if r[5]]
        has_expression = any(cid == -2 for _seqno, cid, *_rest in info)
        expressions, where = _index_details(sql) if partial or has_expression else ([], None)
        keys = []
        for seqno, cid, colname, desc, coll, _key in info:
            expression = expressions[seqno] if cid == -2 and seqno < len(expressions) else None
            keys.append(
                IndexColumn(
                    name=colname,
                    desc=bool(desc),
                    collation=coll or "BINARY",
                    expression=expression if cid == -2 else None,
                )
            )
        indexes.append(
            Index(
                name=name,
                table=table,
                unique=bool(unique),
                origin=origin,
                columns=tuple(keys),
                where=where,
                sql=sql,
            )
        )
    return sorted(indexes, key=lambda index: index.name)


def _read_foreign_keys(conn: sqlite3.Connection, table: str) -> list[ForeignKey]:
    groups: dict[int, list[tuple[Any, ...]]] = {}
    for row in _pragma(conn, "foreign_key_list", table):
        groups.setdefault(row[0], []).append(row)
    keys = []
    for _fk_id, rows in sorted(groups.items()):
        rows.sort(key=lambda r: r[1])
        keys.append(
            ForeignKey(
                table=table,
                columns=tuple(r[3] for r in rows),
                ref_table=rows[0][2],
                ref_columns=tuple(r[4] for r in rows),
                on_update=rows[0][5],
                on_delete=rows[0][6],
            )
        )
    return keys


def _is_shadow(name: str, virtual_names: list[str]) -> bool:
    return any(name.startswith(v + "_") and name[len(v) :] in SHADOW_SUFFIXES for v in virtual_names)


def read_schema(conn: sqlite3.Connection) -> Schema:
    """Describe every object in the database `conn` is open on."""
    schema = Schema()
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'view', 'trigger') "
        "ORDER BY type, name"
    ).fetchall()
    virtual_names = [
        name
        for kind, name, _t, sql in rows
        if kind == "table" and sql and sql.upper().startswith("CREATE VIRTUAL TABLE")
    ]
    for kind, name, tbl_name, sql in rows:
        if kind == "view":
            schema.views.append(SchemaObject("view", name, None, sql))
        elif kind == "trigger":
            schema.triggers.append(SchemaObject("trigger", name, tbl_name, sql))
        elif name.startswith(INTERNAL_PREFIX) or _is_shadow(name, virtual_names):
            schema.internal_tables.append(name)
        elif name in virtual_names:
            schema.virtual_tables.append(SchemaObject("virtual table", name, None, sql))
        else:
            schema.tables.append(_read_table(conn, name, sql or ""))
    return schema


def _table_flags(conn: sqlite3.Connection, name: str, sql: str) -> tuple[bool, bool]:
    """(without_rowid, strict) from SQLite itself when it is new enough, else from the SQL text."""
    try:
        row = conn.execute(
            "SELECT wr, strict FROM pragma_table_list WHERE name = ? AND schema = 'main'", (name,)
        ).fetchone()
        if row is not None:
            return bool(row[0]), bool(row[1])
    except sqlite3.OperationalError:
        pass
    tail = sql[sql.rfind(")") :].upper()
    return "WITHOUT ROWID" in tail, "STRICT" in tail


def _names(checks: list[tuple[str, str | None]]) -> tuple[str | None, ...]:
    return tuple(name for _check, name in checks) if any(name for _check, name in checks) else ()


def _same(a: tuple[str, ...], b: tuple[str | None, ...]) -> bool:
    return tuple(n.translate(_ASCII_LOWER) for n in a) == tuple((n or "").translate(_ASCII_LOWER) for n in b)


def _named_uniques(indexes: list[Index], parsed: ParsedTable) -> list[Index]:
    """Each UNIQUE constraint's index with the constraint's name, matched by columns in the order
    SQLite made them (sqlite_autoindex_<table>_<n>)."""
    named = [(columns, name) for columns, name in parsed.uniques if name]
    if not named:
        return indexes
    number = {i.name: i.name.rsplit("_", 1)[-1] for i in indexes}
    autoindex = sorted(
        (i for i in indexes if i.origin == "u"), key=lambda i: int(number[i.name]) if number[i.name].isdigit() else 0
    )
    found: dict[str, str | None] = {}
    for columns, name in parsed.uniques:
        match = next((i for i in autoindex if i.name not in found and _same(columns, i.column_names)), None)
        if match is not None:
            found[match.name] = name
    return [replace(i, constraint_name=found[i.name]) if found.get(i.name) else i for i in indexes]


def _named_keys(keys: list[ForeignKey], parsed: ParsedTable) -> list[ForeignKey]:
    """The PRAGMA's foreign keys with the name and DEFERRABLE of the parsed one on the same columns
    and referenced table (the PRAGMA lists them last declared first)."""
    taken: set[int] = set()
    out = []
    for key in keys:
        for position, candidate in enumerate(parsed.foreign_keys):
            if position in taken or not _same(candidate.columns, key.columns):
                continue
            if candidate.ref_table.translate(_ASCII_LOWER) != key.ref_table.translate(_ASCII_LOWER):
                continue
            taken.add(position)
            deferrable = "DEFERRABLE" in candidate.options
            deferred = deferrable and "INITIALLY DEFERRED" in candidate.options
            key = replace(key, name=candidate.name, deferrable=deferrable, initially_deferred=deferred)
            break
        out.append(key)
    return out


def _read_table(conn: sqlite3.Connection, name: str, sql: str) -> Table:
    parsed = parse_table_sql(sql)
    columns = []
    for _cid, colname, decl, notnull, default, pk, hidden in _pragma(conn, "table_xinfo", name):
        generated = {2: "VIRTUAL", 3: "STORED"}.get(hidden)
        if hidden == 1:  # a virtual table's hidden column
            continue
        columns.append(
            Column(
                name=colname,
                declared_type=decl or "",
                notnull=bool(notnull),
                default=default,
                pk_position=pk,
                generated=generated,
                generated_expr=parsed.generated.get(colname) if generated else None,
                collation=parsed.collations.get(colname),
                checks=tuple(check for check, _name in parsed.column_checks.get(colname, [])),
                check_names=_names(parsed.column_checks.get(colname, [])),
            )
        )
    primary_key = tuple(c.name for c in sorted((c for c in columns if c.pk_position), key=lambda c: c.pk_position))
    without_rowid, strict = _table_flags(conn, name, sql)
    return Table(
        name=name,
        columns=tuple(columns),
        primary_key=primary_key,
        indexes=tuple(_named_uniques(_read_indexes(conn, name), parsed)),
        foreign_keys=tuple(_named_keys(_read_foreign_keys(conn, name), parsed)),
        checks=tuple(check for check, _name in parsed.checks),
        check_names=_names(parsed.checks),
        primary_key_name=parsed.primary_key_name,
        without_rowid=without_rowid,
        strict=strict,
        autoincrement=bool(re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE)),
        sql=sql,
        parse_warnings=tuple(parsed.warnings),
    )
