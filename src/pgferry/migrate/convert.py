"""Value converters applied while copying, for the few types PostgreSQL cannot parse from text.

The copy streams text-format COPY: PostgreSQL itself parses integers, floats (psycopg writes the
shortest exact repr), ISO timestamps, 0/1 booleans and JSON, so most columns need no Python work
per value. Only the representations PostgreSQL has no input syntax for are converted here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JULIAN_UNIX_EPOCH = 2_440_587.5


def _epoch_seconds(value: Any) -> datetime:
    return EPOCH + timedelta(seconds=value)


def _epoch_millis(value: Any) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


def _julian_day(value: Any) -> datetime:
    return (EPOCH + timedelta(days=value - JULIAN_UNIX_EPOCH)).replace(tzinfo=None)


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return repr(value).encode("ascii") if isinstance(value, float) else str(value).encode("ascii")


# None means: hand the SQLite value to COPY as it is.
CONVERTERS: dict[str, Callable[[Any], Any] | None] = {
    "int": None,
    "float": None,
    "numeric": None,
    "bool": None,
    "text": None,
    "text_any": None,
    "date_text": None,
    "timestamp_text": None,
    "json_text": None,
    "bytes": _to_bytes,
    "text_bytes": _to_bytes,
    "epoch_seconds": _epoch_seconds,
    "epoch_millis": _epoch_millis,
    "julian_day": _julian_day,
}


def row_converter(converters: list[str]) -> Callable[[tuple], tuple] | None:
    """One function converting a whole row, or None when every column passes through."""
    funcs = [CONVERTERS[name] for name in converters]
    if all(func is None for func in funcs):
        return None
    pairs = [(i, func) for i, func in enumerate(funcs) if func is not None]

    def convert(row: tuple) -> tuple:
        values = list(row)
        for index, func in pairs:
            value = values[index]
            if value is not None:
                values[index] = func(value)
        return tuple(values)

    return convert
