"""PostgreSQL names for a copy's constraints: the SQLite schema's own, or PostgreSQL's defaults.

Frameworks drop and alter constraints by name (Django's RemoveConstraint, Alembic's drop_constraint),
so a named constraint keeps its name, mapped like every identifier (pgferry.migrate.names). An
unnamed one gets the name PostgreSQL itself gives it (`{table}_{column}_check`, `{table}_check`,
`{table}_{columns}_key`, `{table}_pkey`, `{table}_{columns}_fkey`; a digit after the label when the
name is taken: ChooseConstraintName, ChooseRelationName and makeObjectName in PostgreSQL's source), so
code that expects PostgreSQL's defaults finds it too.

PostgreSQL's namespaces are not SQLite's: a PRIMARY KEY or UNIQUE constraint is also an index, and an
index name is unique among the schema's tables and indexes; the constraints of one table need
distinct names. A SQLite name that breaks these gets a digit appended (tables and CREATE INDEX names
keep theirs, then the first constraint in schema order keeps its own), and the plan reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pgferry.migrate.names import MAX_IDENTIFIER_BYTES, Renamed, identifier
from pgferry.sqlite.schema import Schema, Table


@dataclass
class TableNames:
    """One table's constraint names in PostgreSQL."""

    primary_key: str = ""
    uniques: dict[str, str] = field(default_factory=dict)  # SQLite index name -> constraint name
    checks: list[str] = field(default_factory=list)  # in the order of check_list()
    foreign_keys: list[str] = field(default_factory=list)  # in the order of Table.foreign_keys


def check_list(table: Table) -> list[tuple[str, str | None, str | None]]:
    """(expression, CONSTRAINT name, column) of every CHECK in the order of the CREATE TABLE: the
    columns' first, then the table's (SQLite puts table constraints after the columns)."""
    out: list[tuple[str, str | None, str | None]] = []
    for column in table.columns:
        names = column.check_names or (None,) * len(column.checks)
        out += [(check, name, column.name) for check, name in zip(column.checks, names, strict=True)]
    names = table.check_names or (None,) * len(table.checks)
    return out + [(check, name, None) for check, name in zip(table.checks, names, strict=True)]


def make_object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's makeObjectName: `name1_name2_label` in 63 bytes, the longer part cut first."""
    available = MAX_IDENTIFIER_BYTES - len(label.encode()) - 1 - (1 if name2 is not None else 0)
    first, second = len(name1.encode()), len((name2 or "").encode())
    while first + second > available:
        if first > second:
            first -= 1
        else:
            second -= 1
    parts = [_clip(name1, first)] + ([_clip(name2, second)] if name2 is not None else [])
    return "_".join([*parts, label])


def _clip(name: str, size: int) -> str:
    return name.encode()[:size].decode(errors="ignore")


def choose_name(name1: str, name2: str | None, label: str, taken: Callable[[str], bool]) -> str:
    """PostgreSQL's ChooseConstraintName / ChooseRelationName: label, then label1, label2, ..."""
    name, number = make_object_name(name1, name2, label), 0
    while taken(name):
        number += 1
        name = make_object_name(name1, name2, f"{label}{number}")
    return name


def _numbered(name: str, taken: Callable[[str], bool]) -> str:
    """`name` with the first free number appended (cut to fit in 63 bytes)."""
    number = 1
    while taken(candidate := _clip(name, MAX_IDENTIFIER_BYTES - len(str(number))) + str(number)):
        number += 1
    return candidate


def _single_column(expression: str, columns: dict[str, str]) -> str | None:
    """The target name of the one column a CHECK reads, else None: PostgreSQL names a CHECK after its
    column only when the expression reads exactly one."""
    from sqlglot import errors, exp

    from pgferry.sqlparse import parse_one

    try:
        tree = parse_one(expression, read="sqlite")
    except (errors.ParseError, errors.TokenError, ValueError):
        return None
    folded = {name.lower(): target for name, target in columns.items()}
    read = {folded[c.name.lower()] for c in tree.find_all(exp.Column) if c.name.lower() in folded}
    return read.pop() if len(read) == 1 else None


class _Namespace:
    """The names taken in the target schema while the plan is named."""

    def __init__(self, relations: dict[str, str]) -> None:
        self.relations = relations  # name -> what holds it, for the report
        self.constraints: set[str] = set()  # of every table: PostgreSQL's generated names avoid them all
        self.own: dict[str, set[str]] = {}
        self.renamed: list[Renamed] = []

    def keep(self, kind: str, table: str, name: str, keep_case: bool, index: bool) -> str:
        """A SQLite constraint name, made unique where PostgreSQL needs it to be."""
        mine = self.own.setdefault(table, set())
        target = identifier(name, keep_case)
        reason = None
        if target in mine:
            reason = f"table {table!r} has another constraint named {target!r}"
        elif index and target in self.relations:
            reason = (
                f"{self.relations[target]} has that name; in PostgreSQL a {kind.replace('_', ' ')} constraint "
                "is an index, and indexes and tables share one namespace per schema"
            )
        if reason is not None:
            new = _numbered(target, lambda n: n in mine or (index and n in self.relations))
            self.renamed.append(Renamed(kind, table, name, new, reason))
            target = new
        return self._take(kind, table, target, index)

    def generate(self, kind: str, table: str, names: tuple[str, str | None, str], index: bool) -> str:
        """PostgreSQL's own name for an unnamed constraint."""
        taken = (lambda n: n in self.constraints or n in self.relations) if index else self.constraints.__contains__
        return self._take(kind, table, choose_name(*names, taken), index)

    def _take(self, kind: str, table: str, name: str, index: bool) -> str:
        self.own.setdefault(table, set()).add(name)
        self.constraints.add(name)
        if index:
            self.relations[name] = f"the {kind.replace('_', ' ')} constraint {name!r} of table {table!r}"
        return name


def name_constraints(
    schema: Schema,
    tables: dict[str, str],
    columns: dict[str, dict[str, str]],
    indexes: dict[str, str],
    keep_case: bool = False,
) -> tuple[dict[str, TableNames], list[Renamed]]:
    """Every constraint's PostgreSQL name, from the target names of tables, columns and CREATE INDEX
    indexes; and the SQLite names that had to change, with the reason."""
    relations = {target: f"table or view {source!r}" for source, target in tables.items()}
    for table in schema.tables:
        relations.update({indexes[i.name]: f"index {i.name!r}" for i in table.indexes if i.origin == "c"})
        if table.rowid_alias:  # the identity column's sequence, which PostgreSQL names at CREATE TABLE
            sequence = make_object_name(tables[table.name], columns[table.name][table.rowid_alias], "seq")
            relations.setdefault(sequence, f"the identity sequence of table {table.name!r}")
    space = _Namespace(relations)
    named = {table.name: TableNames() for table in schema.tables}
    for table in schema.tables:  # the SQLite schema's names first: generated ones step around them
        names, source = named[table.name], table.name
        if table.primary_key and table.primary_key_name:
            names.primary_key = space.keep("primary_key", source, table.primary_key_name, keep_case, True)
        for index in table.indexes:
            if index.origin == "u" and index.constraint_name:
                names.uniques[index.name] = space.keep("unique", source, index.constraint_name, keep_case, True)
        for _check, name, _column in check_list(table):
            names.checks.append(space.keep("check", source, name, keep_case, False) if name else "")
        for key in table.foreign_keys:
            names.foreign_keys.append(space.keep("foreign_key", source, key.name, keep_case, False) if key.name else "")
    for table in schema.tables:  # then PostgreSQL's: CHECKs at CREATE TABLE, then keys, then foreign keys
        names, target, cols = named[table.name], tables[table.name], columns[table.name]
        for i, (check, name, _column) in enumerate(check_list(table)):
            if not name:
                read = _single_column(check, cols)
                names.checks[i] = space.generate("check", table.name, (target, read, "check"), False)
        if table.primary_key and not names.primary_key:
            names.primary_key = space.generate("primary_key", table.name, (target, None, "pkey"), True)
        for index in table.indexes:
            if index.origin == "u" and index.name not in names.uniques:
                keys = "_".join(cols.get(c.name, c.name) if c.name else "expr" for c in index.columns)
                names.uniques[index.name] = space.generate("unique", table.name, (target, keys, "key"), True)
        for i, key in reversed(list(enumerate(table.foreign_keys))):  # the PRAGMA lists the last one first
            if not names.foreign_keys[i]:
                keys = "_".join(cols.get(c, c) for c in key.columns)
                names.foreign_keys[i] = space.generate("foreign_key", table.name, (target, keys, "fkey"), False)
    return named, space.renamed
