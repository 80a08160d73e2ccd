"""Read-your-writes positions that travel with a user's session, and a scope that pins reads to the primary.

After a write, the session's position is the primary's WAL insert position (taken after the commit);
a later read of that session may go to a replica only once the replica has replayed that far. The
position must outlive one process (an application served by several workers, a user whose next
request lands elsewhere), so it leaves as text (`token()`, the LSN itself) and comes back through
`session(token)`: a cookie or a header is the application's choice. A token that does not parse is
ignored (a client's garbage must not fail its request), so the worst a forged one does is send that
client's own reads to the primary, or to a replica within the lag bound.

Scopes are contextvars, like querystats: a worker thread started with a copy of the context shares
the same `Session` object, so a write made there moves the position the request sends back.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from pgferry.runtime.postgres.replicas.lsn import format_lsn, parse_lsn


class Session:
    """The highest primary position a session must see (None: it has not written)."""

    def __init__(self, position: int | None = None) -> None:
        self._lock = threading.Lock()
        self.position = position

    def advance(self, position: int) -> None:
        """A write reached `position`: never move back (two threads of one request may race here)."""
        with self._lock:
            if self.position is None or position > self.position:
                self.position = position

    def token(self) -> str | None:
        """The opaque text to hand the client (None while the session has not written)."""
        position = self.position
        return None if position is None else format_lsn(position)


def decode(token: str | None) -> int | None:
    """The position a client's token names, or None when it names none (absent, empty, garbage)."""
    if not token:
        return None
    try:
        return parse_lsn(token.strip())
    except ValueError:
        return None


_CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar("pgferry_replica_session", default=None)
_PINNED: contextvars.ContextVar[bool] = contextvars.ContextVar("pgferry_replica_pinned", default=False)


@contextlib.contextmanager
def session(token: str | None = None) -> Iterator[Session]:
    """Reads and writes in this block belong to the session `token` came from (None: a new one)."""
    current = Session(decode(token))
    reset = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(reset)


def current() -> Session | None:
    """The session of this context, or None outside every `session()` block."""
    return _CURRENT.get()


@contextlib.contextmanager
def on_primary() -> Iterator[None]:
    """Every read in this block goes to the primary: a unit of work that reads, then writes what it read
    (a check before an insert) must not decide on a replica's older state."""
    reset = _PINNED.set(True)
    try:
        yield
    finally:
        _PINNED.reset(reset)


def pinned() -> bool:
    return _PINNED.get()
