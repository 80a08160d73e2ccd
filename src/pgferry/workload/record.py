"""One captured statement and its JSON form (one line of a workload log).

JSON has no bytes, dates or non-finite floats, but statement parameters often are such values. They
are written as small tagged objects (`{"$bytes": "<base64>"}`, ...) and decoded on read, so a log
round-trips its parameters losslessly (docs/workload-format.md lists the tags).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pgferry.errors import WorkloadError

Params = list[Any] | dict[str, Any]

_UTC = dt.UTC
_PLAIN = (str, int, bool, type(None))
# Reused encoders: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ASCII_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement an application ran: text, parameters, duration and where/when it ran.

    `params` is a list (positional markers) or a dict (named markers). For an `executemany`, `many`
    is the number of parameter sets and `params` the list of them. `error` names the exception class
    when the statement failed (it still took time and held locks, so it is part of the workload).
    """

    sql: str
    params: Params | None = None
    ms: float | None = None
    request: str | None = None
    site: str | None = None
    at: dt.datetime | None = None
    many: int | None = None
    error: str | None = None
    tx: str | None = None  # the transaction it ran in; "" for none (autocommit); None: not known
    internal: str | None = None  # the framework module that ran it on its own account (introspection...)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of one log line; absent fields are omitted."""
        out: dict[str, Any] = {"sql": self.sql}
        if self.params is not None:
            out["params"] = encode_value(self.params)
        if self.ms is not None:
            out["ms"] = round(self.ms, 6)
        if self.many is not None:
            out["many"] = self.many
        if self.error is not None:
            out["error"] = self.error
        if self.request is not None:
            out["request"] = self.request
        if self.site is not None:
            out["site"] = self.site
        if self.at is not None:
            out["at"] = self.at.isoformat()
        if self.tx is not None:
            out["tx"] = self.tx
        if self.internal is not None:
            out["internal"] = self.internal
        return out

    def to_json(self) -> str:
        """One line of JSON, without the newline."""
        return _ENCODER.encode(self.to_dict())

    def to_line(self) -> bytes:
        """One log line: UTF-8 JSON and a newline. Non-ASCII text stays readable, except lone
        surrogates (not UTF-8), which are written as JSON escapes."""
        data = self.to_dict()
        try:
            return (_ENCODER.encode(data) + "\n").encode("utf-8")
        except UnicodeEncodeError:
            return (_ASCII_ENCODER.encode(data) + "\n").encode("ascii")

    @classmethod
    def from_dict(cls, data: Any) -> Statement:
        """Build a Statement from one decoded log line; unknown keys are ignored.

        Raises WorkloadError (without a location; the reader adds file and line) on wrong types.
        """
        if not isinstance(data, dict):
            raise WorkloadError(f"expected a JSON object, got {type(data).__name__}")
        sql = data.get("sql")
        if not isinstance(sql, str):
            raise WorkloadError('"sql" is missing or not a string')
        params = data.get("params")
        if params is not None:
            if not isinstance(params, list | dict):
                raise WorkloadError('"params" must be a list or an object')
            params = decode_value(params)
        ms = data.get("ms")
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0):
            raise WorkloadError(f'"ms" must be a number >= 0, got {ms!r}')
        many = data.get("many")
        if many is not None and (isinstance(many, bool) or not isinstance(many, int) or many < 0):
            raise WorkloadError(f'"many" must be an integer >= 0, got {many!r}')
        for key in ("request", "site", "error", "tx", "internal"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise WorkloadError(f'"{key}" must be a string')
        at = data.get("at")
        if at is not None:
            at = _parse_at(at)
        return cls(
            sql=sql,
            params=params,
            ms=float(ms) if ms is not None else None,
            request=data.get("request"),
            site=data.get("site"),
            at=at,
            many=many,
            error=data.get("error"),
            tx=data.get("tx"),
            internal=data.get("internal"),
        )


def _parse_at(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise WorkloadError('"at" must be an ISO-8601 string')
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise WorkloadError(f'"at" is not ISO-8601: {value!r}') from None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=_UTC)


# --- parameter values -------------------------------------------------------------------------

_TAGS = frozenset(
    {"$bytes", "$float", "$datetime", "$date", "$time", "$timedelta", "$decimal", "$uuid", "$object", "$repr"}
)


def encode_value(value: Any) -> Any:
    """Return `value` as plain JSON data, tagging what JSON cannot hold (see module docstring)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    if isinstance(value, Mapping):
        encoded = {str(k): encode_value(v) for k, v in value.items()}
        if len(encoded) == 1 and next(iter(encoded)) in _TAGS:  # would read back as a tag: escape it
            return {"$object": encoded}
        return encoded
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    return {"$repr": repr(value)}


def decode_value(value: Any) -> Any:
    """Inverse of encode_value. `$repr` (a type the log cannot hold) decodes to its repr string."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        tag, payload = next(iter(value.items()))
        if tag in _TAGS:
            return _decode_tag(tag, payload)
    return {k: decode_value(v) for k, v in value.items()}


def _decode_tag(tag: str, payload: Any) -> Any:
    try:
        if tag == "$object":
            if not isinstance(payload, dict):
                raise TypeError("not an object")
            return {k: decode_value(v) for k, v in payload.items()}
        if tag == "$timedelta":
            days, seconds, micros = payload
            return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
        if not isinstance(payload, str):
            raise TypeError("not a string")
        if tag == "$bytes":
            return base64.b64decode(payload, validate=True)
        if tag == "$float":
            if payload not in ("nan", "inf", "-inf"):
                raise ValueError(payload)
            return float(payload)
        if tag == "$datetime":
            return dt.datetime.fromisoformat(payload)
        if tag == "$date":
            return dt.date.fromisoformat(payload)
        if tag == "$time":
            return dt.time.fromisoformat(payload)
        if tag == "$decimal":
            return Decimal(payload)
        if tag == "$uuid":
            return uuid.UUID(payload)
        return payload  # $repr
    except (TypeError, ValueError, binascii.Error, InvalidOperation) as exc:
        raise WorkloadError(f"bad {tag} value {payload!r} in params ({exc})") from None
