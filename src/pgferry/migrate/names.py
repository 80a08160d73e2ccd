"""Map SQLite identifiers to PostgreSQL ones without ever merging two names silently.

By default a plain name (letters, digits, underscores, not starting with a digit) is folded to
lower case, the way PostgreSQL folds unquoted identifiers, so application SQL that never quoted
names keeps working. Any other name (spaces, quotes, mixed case with `--keep-case`, unicode) is
kept exactly and always quoted. PostgreSQL truncates identifiers at 63 bytes: a longer name keeps
its truncation when that is unique, and names whose truncations collide (apps that prefix every
table, like iOS PowerLog, have dozens) each get the truncation shortened to make room for `_` and a
hash of the whole name: deterministic, unique, and reported by the plan. Two names equal after case
folding are an error naming both. A column named like one of PostgreSQL's system columns (GIS
tables' xmin/xmax are common) gets underscores appended; the plan reports the rename.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from pgferry.errors import UsageError
from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident

MAX_IDENTIFIER_BYTES = 63
HASH_CHARS = 8  # hex digits of the hash a shortened name ends with
# Names PostgreSQL keeps for every table's system columns: CREATE TABLE refuses a column so named.
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})
PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Renamed:
    """A name PostgreSQL gets other than the source's own (folding aside): shortened, hashed, freed
    from a system column name. `table` is the table a column, index or constraint belongs to."""

    kind: str  # table, view, column, index, constraint, unique, check, foreign_key, primary_key
    table: str
    source: str
    target: str
    reason: str = ""  # why, when more than length (a constraint name another object has)


def renames(
    schema: Schema,
    tables: dict[str, str],
    columns: dict[str, dict[str, str]],
    indexes: dict[str, str],
    keep_case: bool,
) -> list[Renamed]:
    """Every name of `schema` whose target (from map_names) is more than its folded self."""

    def changed(kind: str, mapping: dict[str, str], table: str = "") -> list[Renamed]:
        return [Renamed(kind, table, s, t) for s, t in mapping.items() if t != fold(s, keep_case)]

    out = changed("table", {t.name: tables[t.name] for t in schema.tables})
    out += changed("view", {v.name: tables[v.name] for v in schema.views})
    for table in schema.tables:
        out += changed("column", columns[table.name], table.name)
    return out + changed("index", indexes)


class Statement(Protocol):
    """A plan step as fitted_names sees it (pgferry.migrate.plan.Step)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def table(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def sql(self) -> str: ...


StatementT = TypeVar("StatementT", bound=Statement)


def fitted_names(steps: list[StatementT], renamed: list[Renamed]) -> list[StatementT]:
    """`steps` with each constraint or index name too long for PostgreSQL replaced by one that fits
    (`fit`) in its name and its SQL, each recorded in `renamed`. PostgreSQL would truncate
    `<table>_check1` and `<table>_check2` of a long table name to one name and refuse the second."""
    out = []
    for step in steps:
        fitted, quoted = fit(step.name), quote_ident(step.name)
        for clause, kind in ((f"CONSTRAINT {quoted} ", "constraint"), (f"INDEX {quoted} ON ", "index")):
            if fitted != step.name and clause in step.sql:
                renamed.append(Renamed(kind, step.table, step.name, fitted))
                sql = step.sql.replace(clause, clause.replace(quoted, quote_ident(fitted)), 1)
                step = dataclasses.replace(step, name=fitted, sql=sql)
                break
        out.append(step)
    return out


class NameCollisionError(UsageError):
    """Two source names map to one PostgreSQL identifier."""


def fold(name: str, keep_case: bool = False) -> str:
    """The PostgreSQL identifier for a SQLite name (before length checks)."""
    if not keep_case and PLAIN.match(name):
        return name.lower()
    return name


def truncate(name: str, limit: int = MAX_IDENTIFIER_BYTES) -> str:
    """What PostgreSQL will store for `name`: at most `limit` bytes, never a split character."""
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return name
    return encoded[:limit].decode("utf-8", errors="ignore")


def hashed(name: str) -> str:
    """`name` cut short, then `_` and a hash of all of it: at most 63 bytes, one per name."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{truncate(name, MAX_IDENTIFIER_BYTES - HASH_CHARS - 1)}_{digest}"


def fit(name: str) -> str:
    """`name` when PostgreSQL keeps it whole, else its hashed form (derived names: `<table>_check1`
    and `<table>_check2` must not truncate to one name)."""
    return name if len(name.encode("utf-8", "surrogatepass")) <= MAX_IDENTIFIER_BYTES else hashed(name)


def identifier(name: str, keep_case: bool = False) -> str:
    """What PostgreSQL stores for a SQLite name, before any collision or system-name handling."""
    return truncate(fold(name, keep_case))


def map_names(
    names: Iterable[str], what: str, keep_case: bool = False, reserved: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Map each source name to its target identifier; raise when two are equal after case folding.

    `what` names the namespace in the message ("table", "column of table \"x\"", "index"). A name
    that maps to one of `reserved` gets underscores appended until it is free; long names whose
    truncations collide get hashed ones (see the module's docstring)."""
    names = list(names)
    truncations = Counter(identifier(name, keep_case) for name in names)
    taken = set(truncations)
    mapping: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in names:
        target = fold(name, keep_case)
        stored = truncate(target)
        if stored != target and truncations[stored] > 1:
            stored = hashed(target)
        if stored in reserved:
            while stored in reserved or stored in taken:
                stored += "_"
            taken.add(stored)
        if stored in owner:
            other = owner[stored]
            raise NameCollisionError(
                f"{what} names {other!r} and {name!r} both become {stored!r} in PostgreSQL (equal after "
                "case folding); rename one in SQLite or use --keep-case"
            )
        owner[stored] = name
        mapping[name] = stored
    return mapping
