"""Indexes a PostgreSQL database could do without (pghero's rules): two with the same keys, one whose
keys lead another's (the longer one serves its lookups), and one no scan has used since the
statistics were reset. Unique and primary-key indexes enforce something: never proposed for removal
as unused or covered, and of two identical ones the constraint's is kept. An index that makes a used
one redundant is not called unused: the lookups it would take over are the redundant one's, and
dropping both, as the two findings together would say, would lose them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pgferry.advise.catalog import Catalog, PgIndex


@dataclass(frozen=True)
class IndexFinding:
    kind: str  # "duplicate", "covered", "unused"
    index: str
    table: str
    by: str | None  # the index that makes it redundant
    bytes: int
    definition: str
    drop_sql: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _comparable(index: PgIndex) -> bool:
    return not index.partial and None not in index.columns


def _finding(kind: str, index: PgIndex, by: PgIndex | None) -> IndexFinding:
    drop = f'DROP INDEX CONCURRENTLY "{index.schema}"."{index.name}"'
    return IndexFinding(kind, index.name, index.table, by.name if by else None, index.bytes, index.definition, drop)


def redundant_indexes(catalog: Catalog) -> list[IndexFinding]:
    out: list[IndexFinding] = []
    flagged: set[str] = set()
    for table in sorted({i.table for i in catalog.indexes}):
        indexes = sorted(catalog.indexes_of(table), key=lambda i: (not (i.unique or i.primary), i.name))
        for i, index in enumerate(indexes):
            if not _comparable(index) or index.name in flagged:
                continue
            for other in indexes:
                if other is index or not _comparable(other) or other.name in flagged:
                    continue
                same = other.columns == index.columns and other.include == index.include
                if same and indexes.index(other) < i and not (index.unique and not other.unique):
                    out.append(_finding("duplicate", index, other))
                    flagged.add(index.name)
                    break
                longer = (
                    len(other.columns) > len(index.columns) and other.columns[: len(index.columns)] == index.columns
                )
                if longer and not index.unique and not index.primary:
                    out.append(_finding("covered", index, other))
                    flagged.add(index.name)
                    break
    scans = {i.name: i.scans for i in catalog.indexes}
    replaces_used = {f.by for f in out if f.by is not None and scans.get(f.index, 0) > 0}
    for index in catalog.indexes:
        unused = index.scans == 0 and index.name not in replaces_used
        if index.name not in flagged and unused and not (index.unique or index.primary):
            out.append(_finding("unused", index, None))
    return out
