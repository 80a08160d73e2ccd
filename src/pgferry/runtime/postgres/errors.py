"""What a PostgreSQL error the application cannot fix becomes: `Unavailable`, with the cause as `kind`.

A statement cancelled by statement_timeout, a lock it could not get, a serialization failure or a
deadlock, a connection that died (server restart, network cut, PgBouncer gone) and a PgBouncer that
gave up on its own deadlines (query_wait_timeout, query_timeout) are all "try again later" for the
caller, never a traceback; everything else (a constraint violated, SQL that does not fit the schema)
is raised as psycopg raised it.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pgerrors

from pgferry.errors import PgferryError
from pgferry.runtime import querystats
from pgferry.runtime.errors import Unavailable

# PgBouncer's own deadlines: it sends FATAL 08P01 naming one, then closes the connection (1.18's words)
PGBOUNCER_DEADLINES = {
    "query_wait_timeout": (
        "pool_timeout",
        "PgBouncer found no server connection free within its query_wait_timeout (its pool for this "
        "database and user stayed busy); try again",
    ),
    "query timeout": ("statement_timeout", "PgBouncer cancelled the statement (its query_timeout); try again"),
}


class SessionStateError(PgferryError):
    """A statement would leave state in a server session that PgBouncer (transaction pooling) shares."""


def unavailable(exc: psycopg.Error) -> Unavailable | None:
    """The `Unavailable` that `exc` means, or None when it is the application's error to see."""
    kind, message = _classify(exc)
    if kind is None:
        return None
    querystats.refused()
    return Unavailable(message, kind=kind)


def _classify(exc: psycopg.Error) -> tuple[str | None, str]:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pgerrors.ProtocolViolation) and first in PGBOUNCER_DEADLINES:
        return PGBOUNCER_DEADLINES[first]
    if isinstance(exc, pgerrors.QueryCanceled):
        return "statement_timeout", f"PostgreSQL cancelled the statement ({first}); try again"
    if isinstance(exc, pgerrors.LockNotAvailable):
        return "locked", f"PostgreSQL: a lock was not available ({first}); try again"
    if isinstance(exc, pgerrors.SerializationFailure | pgerrors.DeadlockDetected):
        return "conflict", f"PostgreSQL: a concurrent transaction conflicted ({first}); try again"
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, pgerrors.QueryCanceled):
        return "connection_lost", f"the connection to PostgreSQL failed ({first}); try again"
    return None, first
