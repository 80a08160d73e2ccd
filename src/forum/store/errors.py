"""The forum's errors: each one knows its HTTP status, so the web layer maps them in one place.

They subclass pgferry's root error so the `forum` CLI renders them as one line too (a missing
database file given to `forum serve`, a refused mode).
"""

from __future__ import annotations

from pgferry.errors import PgferryError


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


class Unavailable(ForumError):
    """The database could not serve the request now (locked, pool exhausted): retry later."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, kind: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.kind = kind  # "locked", "pool_timeout", "write_lock_timeout": the metric label
        self.retry_after = retry_after


class StoreError(PgferryError):
    """The database cannot be opened or is not a forum database (a start-up error, not a request error)."""
