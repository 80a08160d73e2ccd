"""Opaque page cursors: the client hands back what it was given and never learns which kind it is.

legacy pages by OFFSET ({"o": 40}); optimized by keyset ({"k": ["2025-06-01 10:00:00", 812]}): the
same API, two implementations. A cursor that does not decode is the client's mistake (400), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from forum.store.errors import BadRequest

MAX_OFFSET = 1_000_000


def encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("invalid cursor: pass back the next_cursor of the previous page") from None


def offset_of(cursor: str | None) -> int:
    if cursor is None:
        return 0
    data = _decode(cursor)
    value = data.get("o") if isinstance(data, dict) else None
    if type(value) is not int or not 0 <= value <= MAX_OFFSET:
        raise BadRequest("invalid cursor for this server (not an offset cursor)")
    return value


def keyset_of(cursor: str | None) -> tuple[Any, int] | None:
    """(sort value, id) of the last row seen, or None for the first page."""
    if cursor is None:
        return None
    data = _decode(cursor)
    key = data.get("k") if isinstance(data, dict) else None
    if (
        not isinstance(key, list)
        or len(key) != 2
        or not isinstance(key[0], str)
        or not _utf8(key[0])
        or type(key[1]) is not int
        or not -(2**63) <= key[1] < 2**63
    ):
        raise BadRequest("invalid cursor for this server (not a keyset cursor)")
    return key[0], key[1]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and SQLite cannot store
        return False
    return True


def next_offset(offset: int, limit: int, got: int) -> str | None:
    return encode({"o": offset + limit}) if got == limit else None


def next_keyset(sort_value: Any, row_id: int, limit: int, got: int) -> str | None:
    return encode({"k": [sort_value, row_id]}) if got == limit else None
