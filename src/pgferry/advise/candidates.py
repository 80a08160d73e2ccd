"""The indexes a statement's predicates could use, per table it reads: each column compared with a
value or another table's column alone, the equality columns together followed by a range or the
ORDER BY, and that index covering the other columns the statement reads (INCLUDE) when they are few;
each also as a partial index on the filters the statement always applies (`deleted_at IS NULL`,
`NOT is_deleted`: pgferry.advise.partial).

What a statement asks of each table comes from the SQLite doctor's predicate reader run on
PostgreSQL's SQL (pgferry.doctor.predicates); expression keys are left out here. An index whose
leading columns an existing index already has is not a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.advise.catalog import Catalog
from pgferry.advise.partial import RowFilter, row_filters
from pgferry.doctor.predicates import TableUse, analyze_statement
from pgferry.sqltext import quote_ident

MAX_KEYS = 3
MAX_INCLUDE = 4


@dataclass(frozen=True)
class Candidate:
    table: str
    columns: tuple[str, ...]
    include: tuple[str, ...] = ()
    where: str = ""  # a partial index's predicate (pgferry.advise.partial), its columns quoted
    where_columns: tuple[str, ...] = ()

    def definition(self, qualified: str) -> str:
        keys = ", ".join(quote_ident(c) for c in self.columns)
        tail = f" INCLUDE ({', '.join(quote_ident(c) for c in self.include)})" if self.include else ""
        return f"CREATE INDEX ON {qualified} ({keys}){tail}" + (f" WHERE {self.where}" if self.where else "")

    def label(self) -> str:
        inc = f" INCLUDE ({', '.join(self.include)})" if self.include else ""
        return f"{self.table} ({', '.join(self.columns)}){inc}" + (f" WHERE {self.where}" if self.where else "")

    def partial(self, filters: list[RowFilter]) -> Candidate | None:
        """This index made partial on the filters its statement always applies to its table, or None."""
        own = [f for f in filters if f.table == self.table and f.column not in self.columns]
        if not own:
            return None
        where = " AND ".join(f.sql for f in own)
        return Candidate(self.table, self.columns, self.include, where, tuple(f.column for f in own))


def _plain(parts: list) -> list[str]:  # type: ignore[type-arg]
    return [p.column for p in parts if p.column is not None and not p.collation]


def candidates_of_use(use: TableUse, catalog: Catalog, served: set[str]) -> list[Candidate]:
    """The candidates for one table reference; the existing indexes that already lead with a
    candidate's columns are added to `served`."""
    eq, joins, ranges, order = _plain(use.eq), _plain(use.join_eq), _plain(use.ranges), _plain(use.order)
    found: list[Candidate] = []

    def add(columns: list[str], include: tuple[str, ...] = ()) -> None:
        keys = tuple(dict.fromkeys(columns))[:MAX_KEYS]
        if not keys or Candidate(use.table, keys, include) in found:
            return
        by = _served_by(catalog, use.table, keys)
        if by is not None:
            served.add(by)
        else:
            found.append(Candidate(use.table, keys, include))

    for column in eq + joins + ranges:
        add([column])
    lead = eq[:MAX_KEYS]
    composite = lead + (ranges[:1] if ranges else order[: MAX_KEYS - len(lead)])
    if len(composite) > 1:
        add(composite)
    if joins and eq:
        add(eq + joins)
    read = use.columns
    if composite and read is not None:
        extra = tuple(sorted(c for c in read if c not in composite))
        if 0 < len(extra) <= MAX_INCLUDE:
            add(composite, extra)
    return found


@dataclass(frozen=True)
class StatementCandidates:
    candidates: list[Candidate]
    tables: set[str]  # the tables it reads (empty: none of the catalog's, or it could not be parsed)
    served: set[str]  # existing indexes that already lead with what its predicates ask for


def candidates_of(query: str, catalog: Catalog) -> StatementCandidates:
    shape = analyze_statement(query, catalog.schema, dialect="postgres")
    if shape is None:
        return StatementCandidates([], set(), set())
    out: list[Candidate] = []
    served: set[str] = set()
    for use in shape.uses:
        out += [c for c in candidates_of_use(use, catalog, served) if c not in out]
    filters = row_filters(query, catalog)
    partials = [p for p in (c.partial(filters) for c in out) if p is not None]
    return StatementCandidates(out + [p for p in partials if p not in out], shape.tables, served)


def _served_by(catalog: Catalog, table: str, keys: tuple[str, ...]) -> str | None:
    """The existing (non-partial) index that already leads with these columns, if one does."""
    for index in catalog.indexes_of(table):
        if not index.partial and index.columns[: len(keys)] == keys:
            return index.name
    return None
