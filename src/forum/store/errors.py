"""The forum's errors: each one knows its HTTP status, so the web layer maps them in one place.

They subclass pgferry's root error so the `forum` CLI renders them as one line too (a missing
database file given to `forum serve`, a refused mode). `Unavailable` (the database cannot serve now:
503 with Retry-After) is pgferry.runtime's, raised by the backend; it is re-exported here so the
forum's errors are found in one place.
"""

from __future__ import annotations

from pgferry.errors import PgferryError
from pgferry.runtime.errors import Unavailable


class ForumError(PgferryError):
    """Base of every error the forum raises on purpose; `status` is the HTTP status it becomes."""

    status = 400
    code = "bad_request"


class BadRequest(ForumError):
    """The request is well-formed JSON but asks for something impossible (a bad cursor, say)."""


class Unauthorized(ForumError):
    status, code = 401, "unauthorized"


class Forbidden(ForumError):
    status, code = 403, "forbidden"


class NotFound(ForumError):
    status, code = 404, "not_found"


class Conflict(ForumError):
    status, code = 409, "conflict"


class RateLimited(ForumError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(PgferryError):
    """The database is not a forum database (a start-up error, not a request error); files that cannot be
    opened at all are pgferry's SourceError."""


__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "ForumError",
    "NotFound",
    "RateLimited",
    "StoreError",
    "Unauthorized",
    "Unavailable",
]
