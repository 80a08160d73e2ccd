"""Statements that leave state in a PostgreSQL server session, which PgBouncer in transaction
pooling hands to whichever client runs next (and takes away from this one).

What is caught: SET and RESET (not SET LOCAL, which ends with the transaction), LISTEN, session
advisory locks (pg_advisory_lock and its _shared/try_ forms; the _xact_ forms are fine), PREPARE,
DECLARE ... WITH HOLD, CREATE TEMP TABLE, set_config(..., false). A statement's verdict is kept,
so an application's fixed statement set costs one dictionary lookup per call.
"""

from __future__ import annotations

import functools
import re

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_LITERALS = re.compile(r"'(?:[^']|'')*'")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*(SET|RESET)\s+(?!LOCAL\b)(?!TRANSACTION\b)", re.I), "{0} changes a session setting"),
    (re.compile(r"^\s*(LISTEN)\b", re.I), "LISTEN waits for NOTIFY messages on its session"),
    (
        re.compile(r"\b(pg_(?:try_)?advisory_lock(?:_shared)?)\s*\(", re.I),
        "{0}() takes a session advisory lock (use pg_advisory_xact_lock)",
    ),
    (re.compile(r"^\s*(PREPARE)\b", re.I), "PREPARE makes a session's prepared statement"),
    (re.compile(r"^\s*(DECLARE)\b.*\bWITH\s+HOLD\b", re.I | re.S), "DECLARE ... WITH HOLD keeps a cursor open"),
    (re.compile(r"^\s*CREATE\s+(?:LOCAL\s+|GLOBAL\s+)?(TEMP|TEMPORARY)\b", re.I), "a {0} table lives in the session"),
    (re.compile(r"\b(set_config)\s*\([^)]*,\s*false\s*\)", re.I), "{0}(..., false) changes a session setting"),
)


@functools.lru_cache(maxsize=4096)
def session_state(sql: str) -> str | None:
    """Why `sql` leaves state in the server session, or None when it does not."""
    text = _LITERALS.sub("''", _COMMENTS.sub(" ", sql))
    for pattern, why in _RULES:
        match = pattern.search(text)
        if match:
            return why.format(match.group(1).upper() if match.group(1).isalpha() else match.group(1))
    return None
