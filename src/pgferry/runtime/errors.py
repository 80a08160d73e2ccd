"""What the runtime raises: a database that cannot serve now, and SQL that does not fit its database.

`Unavailable` carries no HTTP status: the application decides what a refusal becomes (the forum
answers 503 with Retry-After); `kind` names the cause so a metric can count each one.
"""

from __future__ import annotations

from pgferry.errors import PgferryError
from pgferry.runtime import querystats


class Unavailable(PgferryError):
    """The database could not serve the statement now (locked, no free connection, writer queue full): retry later."""

    def __init__(self, message: str, kind: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.kind = kind  # "locked", "pool_timeout", "write_lock_timeout": the metric label
        self.retry_after = retry_after


def locked() -> Unavailable:
    """What a statement (or a connection's opening) that met another connection's lock becomes."""
    querystats.refused()
    return Unavailable("the database is locked; try again", kind="locked")


class DialectError(PgferryError):
    """A dialect lacks statements of its set, or a backend pairs a database with another dialect's SQL."""
