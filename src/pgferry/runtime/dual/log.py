"""The discrepancy log: what the candidate did not do as the control did, kept for a person to read.

One entry per event: a mismatch (the candidate answered differently: the row keys and the fields
that differ, both values), an error or a timeout (the candidate raised; the caller never saw it).
Entries name the statement and carry its parameters as given (nothing is redacted: they are the
application's values), never a DSN. Three outlets, any of them: an in-memory ring of the latest
entries (a health page, a test), a JSON-lines file (one object a line, appended and flushed), and a
callback (a metric, an alert). A callback or a file that fails is logged, never raised.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from pgferry.runtime.dual.compare import RowDifference

log = logging.getLogger("pgferry.runtime.dual")


@dataclass(frozen=True)
class Discrepancy:
    kind: str  # "mismatch", "error", "timeout"
    statement: str  # the statement's name in the application's statement set
    params: tuple[Any, ...]
    rows: tuple[RowDifference, ...] = ()
    detail: str | None = None  # the candidate's error, one line
    in_transaction: bool = False
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="milliseconds"),
            "kind": self.kind,
            "statement": self.statement,
            "params": jsonable(list(self.params)),
            "in_transaction": self.in_transaction,
            "detail": self.detail,
            "rows": [
                {"key": jsonable(r.key), "kind": r.kind, "fields": {k: jsonable(list(v)) for k, v in r.fields.items()}}
                for r in self.rows
            ],
        }


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it: datetimes in ISO-8601, Decimals and UUIDs as text, bytes as hex."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"hex": bytes(value).hex()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return repr(value)


class DiscrepancyLog:
    """Ring of the latest `capacity` entries, plus a JSON-lines file and a callback when given."""

    def __init__(
        self,
        capacity: int = 1000,
        path: str | Path | None = None,
        on_record: Callable[[Discrepancy], object] | None = None,
    ) -> None:
        self._ring: collections.deque[Discrepancy] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 (open until close())
        self.path = None if path is None else Path(path)
        self._on_record = on_record
        self.total = 0
        self.by_kind: collections.Counter[str] = collections.Counter()

    def record(self, entry: Discrepancy) -> None:
        with self._lock:
            self._ring.append(entry)
            self.total += 1
            self.by_kind[entry.kind] += 1
            if self._file is not None:
                try:
                    self._file.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
                    self._file.flush()
                except (OSError, ValueError) as exc:
                    log.warning("discrepancy log %s: cannot write (%s)", self.path, exc)
        if self._on_record is not None:
            try:
                self._on_record(entry)
            except Exception:
                log.exception("discrepancy log callback failed")

    def recent(self) -> list[Discrepancy]:
        """The latest entries, oldest first."""
        with self._lock:
            return list(self._ring)

    def clear(self) -> None:
        with self._lock:
            self._ring.clear()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"total": self.total, **dict(self.by_kind), "file": None if self.path is None else str(self.path)}

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
