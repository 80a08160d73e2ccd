"""The statements `pg_stat_statements` has seen in this database, heaviest first.

Its texts are normalized (constants are $1, $2, ...), so each row is one statement shape with its
calls and times; the fingerprint is the one the SQLite doctor gives the same shape
(pgferry.workload.fingerprint), so a report can put both databases' plans side by side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from pgferry.errors import TargetError
from pgferry.workload.fingerprint import fingerprint

_KINDS = re.compile(r"^\s*(select|with|update|delete|insert)\b", re.IGNORECASE)
_OURS = re.compile(
    r"pg_stat_statements|hypopg|pg_catalog\.|information_schema\.|\bpgferry\.|\b(?:from|join)\s+pg_\w+",
    re.IGNORECASE,
)


def own(what: str) -> str:
    """The comment that marks a statement advise runs on the application's tables as its own (pg_stat_statements
    keeps it in the statement's text, and `read_statements` leaves such statements out of the workload)."""
    return f"/* pgferry.advise: {what} */ "


@dataclass(frozen=True)
class Statement:
    queryid: int
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    fingerprint: str

    @property
    def kind(self) -> str:
        found = _KINDS.match(self.query)
        return found.group(1).lower() if found else "other"

    @property
    def writes(self) -> bool:
        return self.kind in ("insert", "update", "delete")

    def as_dict(self) -> dict[str, Any]:
        return {
            "queryid": self.queryid,
            "fingerprint": self.fingerprint,
            "query": self.query,
            "calls": self.calls,
            "total_ms": round(self.total_ms, 3),
            "mean_ms": round(self.mean_ms, 4),
            "rows": self.rows,
        }


def read_statements(pg: psycopg.Connection[Any], limit: int = 200, min_calls: int = 1) -> list[Statement]:
    """The `limit` statements of this database with the most total time (at least `min_calls` calls),
    leaving out utility statements, the catalogs' and pgferry's own."""
    present = pg.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()
    if present is None:
        try:
            pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except psycopg.Error as exc:
            raise TargetError(f"pg_stat_statements is not available: {exc}".splitlines()[0]) from None
    try:
        rows = pg.execute(
            "SELECT queryid, query, calls, total_exec_time, mean_exec_time, rows FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() AND s.calls >= %s"
            " ORDER BY total_exec_time DESC LIMIT %s",
            [min_calls, limit * 3],
        ).fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise TargetError(
            "pg_stat_statements must be loaded at server start: shared_preload_libraries = 'pg_stat_statements'"
        ) from None
    out = []
    for queryid, query, calls, total, mean, count in rows:
        if not _KINDS.match(query) or _OURS.search(query):
            continue
        print_id = fingerprint(query, "postgres").id
        out.append(Statement(int(queryid), query, int(calls), float(total), float(mean), int(count), print_id))
    return out[:limit]
