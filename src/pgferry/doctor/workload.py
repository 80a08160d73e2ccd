"""The workload as the doctor needs it, read in one streaming pass.

`summarize` gives per-fingerprint totals; the doctor also needs each request's statements in order
(N+1 loops, writes outside a transaction), a few real examples per fingerprint with their parameters
(the planner and the replay run them), and the PRAGMAs the application's connections set.

Examples are rewritten to SQLite's own markers (`%s` and `%(name)s` from Django or psycopg-style
code, `:1`, `$1`...; see workload/paramstyle.py), so every captured style is planned and replayed.
What cannot be used is counted by reason in `unusable` (and in the report), never dropped in silence:
statements whose values do not fit their markers, statements that failed when captured, and the
framework's own statements (introspection, migrations, Django's DEBUG-mode quoting), which are also
kept out of the fingerprints and requests: they are not the application's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pgferry.workload import Statement, read_workload, summarize
from pgferry.workload.fingerprint import fingerprint
from pgferry.workload.paramstyle import ParamStyleError, to_sqlite
from pgferry.workload.summary import FingerprintStats
from pgferry.workload.unusable import FAILED, INTERNAL, Unusable

EXAMPLES_PER_FINGERPRINT = 20

_FIRST_WORD = re.compile(r"^\W*(\w+)(?:\s+(\w+))?")
_KINDS = {
    "select": "read",
    "values": "read",
    "with": "read",  # a CTE that writes is rare; it is then judged from its body by the planner only
    "insert": "write",
    "replace": "write",
    "update": "write",
    "delete": "write",
    "begin": "begin",
    "savepoint": "begin",
    "commit": "end",
    "end": "end",
    "release": "end",
    "rollback": "end",
    "pragma": "pragma",
}


def statement_kind(sql: str) -> str:
    """read, write, begin, end, pragma or other, from the first keyword (ROLLBACK TO is not an end)."""
    m = _FIRST_WORD.match(sql)
    if m is None:
        return "other"
    word = m.group(1).lower()
    if word == "rollback" and (m.group(2) or "").lower() == "to":
        return "other"
    return _KINDS.get(word, "other")


class Call(NamedTuple):
    """One statement inside a request, kept small: fingerprint id, time, site, kind and transaction
    (the capture's `tx`: an id, "" for none, None when the log does not say)."""

    fp: str
    ms: float | None
    site: str | None
    kind: str
    tx: str | None = None


@dataclass
class Example:
    """A real statement of a fingerprint, with the parameters it ran with (for EXPLAIN and replay), in
    SQLite's `?` style: `params` a list (a list of lists for executemany), None when the log has none."""

    sql: str
    params: Any
    many: int | None = None


@dataclass
class FingerprintInfo:
    stats: FingerprintStats
    kind: str
    examples: list[Example] = field(default_factory=list)

    @property
    def weight(self) -> float:
        """What a fix is worth per fingerprint: total time when timed, else the number of calls."""
        return self.stats.total_ms if self.stats.timed_calls else float(self.stats.calls)


@dataclass
class WorkloadView:
    path: str
    statements: int
    fingerprints: dict[str, FingerprintInfo]  # most total time first
    requests: dict[str, list[Call]]
    pragmas: Counter[str]  # PRAGMA statements the connections ran (whitespace folded), with counts
    timed: bool
    unusable: Unusable = field(default_factory=Unusable)

    @property
    def total_weight(self) -> float:
        return sum(info.weight for info in self.fingerprints.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "statements": self.statements,
            "fingerprints": len(self.fingerprints),
            "requests": len(self.requests),
            "timed": self.timed,
            "total_ms": round(sum(i.stats.total_ms for i in self.fingerprints.values()), 3),
            "unusable_statements": self.unusable.total,
            "unusable": self.unusable.to_dict(),
        }


def load_workload(source: str | Path | Iterable[Statement], *, dialect: str = "sqlite") -> WorkloadView:
    """Read a workload file (or any iterable of Statements) once and index it for the doctor."""
    path = str(source) if isinstance(source, str | Path) else "<statements>"
    statements: Iterable[Statement] = read_workload(source) if isinstance(source, str | Path) else source
    requests: dict[str, list[Call]] = {}
    examples: dict[str, list[Example]] = {}
    kinds: dict[str, str] = {}
    pragmas: Counter[str] = Counter()
    unusable = Unusable()
    count = 0

    def tap(items: Iterable[Statement]) -> Iterator[Statement]:
        nonlocal count
        for stmt in items:
            count += 1
            if stmt.internal is not None:
                unusable.add(INTERNAL, stmt.sql, stmt.internal)
                continue
            fp = fingerprint(stmt.sql, dialect)
            kind = kinds.get(fp.id)
            if kind is None:
                kind = kinds[fp.id] = statement_kind(fp.text)
            if kind == "pragma":
                pragmas[" ".join(stmt.sql.split()).rstrip(";")] += 1
            if stmt.error is not None:
                unusable.add(FAILED, stmt.sql, stmt.error)
            else:
                example = _example(stmt, unusable)
                bucket = examples.setdefault(fp.id, [])
                if example is not None and len(bucket) < EXAMPLES_PER_FINGERPRINT:
                    bucket.append(example)
            if stmt.request is not None:
                requests.setdefault(stmt.request, []).append(Call(fp.id, stmt.ms, stmt.site, kind, stmt.tx))
            yield stmt

    stats = summarize(tap(statements), dialect=dialect)
    infos = {s.id: FingerprintInfo(s, kinds[s.id], examples.get(s.id, [])) for s in stats}
    return WorkloadView(
        path=path,
        statements=count,
        fingerprints=infos,
        requests=requests,
        pragmas=pragmas,
        timed=any(s.timed_calls for s in stats),
        unusable=unusable,
    )


def _example(stmt: Statement, unusable: Unusable) -> Example | None:
    """The statement in SQLite's marker style, or None (counted in `unusable`) when its values do not fit."""
    try:
        sql, params = to_sqlite(stmt.sql, stmt.params, stmt.many)
    except ParamStyleError as exc:
        unusable.add(exc.reason, stmt.sql, exc.detail)
        return None
    return Example(sql, params, stmt.many)
