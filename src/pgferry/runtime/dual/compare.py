"""Whether the candidate (PostgreSQL) answered what the control (SQLite) answered, engine
differences aside, and where it did not: the row's key and each differing field with both values.

Values (`equivalent`, pure): SQLite's 0/1 and a boolean; ISO-8601 text and a datetime, date or time
(a naive datetime is taken as UTC against an aware one); a float and a Decimal when the Decimal holds
the float's exact value or its shortest decimal form (0.1 and Decimal('0.1'), not Decimal('0.1000001'));
JSON text and the object or array it parses to (PostgreSQL's json/jsonb come back parsed); text and a
UUID; bytes in any buffer type. Everything else is compared as Python compares it.

Results (`compare_results`): a write's rowcount; a row or None; a list of rows, aligned by key when
the keys are unique on both sides (so a missing, an extra and a changed row are told apart, and a
different order is reported as such), else position by position. The key is a column named `id`,
else the first column.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import zip_longest
from typing import Any

Equal = Callable[[Any, Any], bool]
ABSENT = "<no such column>"  # a field one side's row does not have


@dataclass(frozen=True)
class RowDifference:
    key: Any  # the row's key (id or first column); None for a rowcount or an order difference
    kind: str  # "differs", "missing" (in the candidate), "extra" (in the candidate), "order", "rowcount"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # column -> (control, candidate)


# A comparator for one statement's results: (control, candidate) -> the differences (none: equal).
Comparator = Callable[[Any, Any], list[RowDifference]]


def _number(a: Any, b: Any) -> bool | None:
    """int/float/Decimal pairs (bool counts as 0/1); None when `a` and `b` are not both numbers."""
    kinds = (int, float, Decimal)
    if not isinstance(a, kinds) or not isinstance(b, kinds):
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, Decimal) and isinstance(b, float):
        a, b = b, a
    if isinstance(a, float) and isinstance(b, Decimal):
        if math.isnan(a) or math.isinf(a):
            return (b.is_nan() and math.isnan(a)) or (b.is_infinite() and float(b) == a)
        try:
            return Decimal(a) == b or Decimal(repr(a)) == b
        except InvalidOperation:
            return False
    return bool(a == b)


def _parse_time(text: str, like: Any) -> Any:
    try:
        if isinstance(like, dt.datetime):
            return dt.datetime.fromisoformat(text.strip())
        if isinstance(like, dt.date):
            return dt.date.fromisoformat(text.strip())
        return dt.time.fromisoformat(text.strip())
    except ValueError:
        return None


def _same_instant(a: dt.datetime, b: dt.datetime) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = (x.replace(tzinfo=dt.UTC) if x.tzinfo is None else x for x in (a, b))
    return a == b


def _temporal(text: str, value: dt.date | dt.time) -> bool:
    parsed = _parse_time(text, value)
    if parsed is None:
        return False
    if isinstance(value, dt.datetime):
        return isinstance(parsed, dt.datetime) and _same_instant(parsed, value)
    return bool(parsed == value)


def _json(text: str, value: Any) -> bool:
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return equivalent(parsed, value)


def equivalent(a: Any, b: Any) -> bool:
    """`a` (control) and `b` (candidate) hold the same value once engine differences are set aside."""
    if a is None or b is None:
        return a is None and b is None
    number = _number(a, b)
    if number is not None:
        return number
    if isinstance(b, str) and not isinstance(a, str):
        a, b = b, a
    if isinstance(a, str):
        if isinstance(b, str):
            return a == b
        if isinstance(b, dt.date | dt.time):
            return _temporal(a, b)
        if isinstance(b, Mapping | list):
            return _json(a, b)
        if isinstance(b, uuid.UUID):
            return a.strip().lower() == str(b)
        return False
    if isinstance(a, bytes | bytearray | memoryview) and isinstance(b, bytes | bytearray | memoryview):
        return bytes(a) == bytes(b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return _same_instant(a, b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equivalent(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(equivalent(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def as_dict(row: Any) -> dict[str, Any]:
    """A row (sqlite3.Row, a dict, any mapping by column name) as a dict."""
    if isinstance(row, Mapping):
        return dict(row)
    return {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row iterates over values)


def key_of(row: Mapping[str, Any]) -> Any:
    """The row's key: its `id`, else its first column."""
    if "id" in row:
        return row["id"]
    return next(iter(row.values()), None)


def compare_rows(
    control: Mapping[str, Any], candidate: Mapping[str, Any], equal: Equal = equivalent
) -> RowDifference | None:
    """The fields that differ between two rows (a column only one side has differs too)."""
    diffs: dict[str, tuple[Any, Any]] = {}
    for name in [*control, *(k for k in candidate if k not in control)]:
        a, b = control.get(name, ABSENT), candidate.get(name, ABSENT)
        if a is ABSENT or b is ABSENT or not equal(a, b):
            diffs[name] = (a, b)
    return RowDifference(key_of(control), "differs", diffs) if diffs else None


def _rows(result: Any) -> list[dict[str, Any]]:
    if result is None:
        return []
    if isinstance(result, Sequence) and not isinstance(result, str | bytes) and not hasattr(result, "keys"):
        return [as_dict(r) for r in result]
    return [as_dict(result)]


def compare_results(control: Any, candidate: Any, equal: Equal = equivalent) -> list[RowDifference]:
    """The differences between two results of one statement: rowcounts, a row (or None), lists of rows."""
    if isinstance(control, int) or isinstance(candidate, int):
        same = isinstance(control, int) and isinstance(candidate, int) and control == candidate
        return [] if same else [RowDifference(None, "rowcount", {"rowcount": (control, candidate)})]
    a, b = _rows(control), _rows(candidate)
    keys_a, keys_b = [key_of(r) for r in a], [key_of(r) for r in b]
    try:
        unique = len(set(keys_a)) == len(keys_a) and len(set(keys_b)) == len(keys_b)
    except TypeError:  # an unhashable key (a JSON value): compare by position
        unique = False
    if not unique:
        return _by_position(a, b, equal)
    by_key = dict(zip(keys_b, b, strict=True))
    out: list[RowDifference] = []
    for key, row in zip(keys_a, a, strict=True):
        other = by_key.get(key)
        if other is None:
            out.append(RowDifference(key, "missing"))
        elif (diff := compare_rows(row, other, equal)) is not None:
            out.append(diff)
    seen = set(keys_a)
    out.extend(RowDifference(key, "extra") for key in keys_b if key not in seen)
    if not out and keys_a != keys_b:
        out.append(RowDifference(None, "order", {"keys": (keys_a, keys_b)}))
    return out


def _by_position(a: list[dict[str, Any]], b: list[dict[str, Any]], equal: Equal) -> list[RowDifference]:
    out: list[RowDifference] = []
    for x, y in zip_longest(a, b):
        if y is None:
            out.append(RowDifference(key_of(x), "missing"))
        elif x is None:
            out.append(RowDifference(key_of(y), "extra"))
        elif (diff := compare_rows(x, y, equal)) is not None:
            out.append(diff)
    return out
