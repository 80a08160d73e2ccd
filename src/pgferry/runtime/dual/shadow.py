"""The candidate's transaction that mirrors one control transaction on a dual route.

Begun with the control's (after its BEGIN IMMEDIATE and route read), savepoints with its
savepoints, committed after the control commits, rolled back when it rolls back. Every candidate
statement runs inline, while SQLite's write lock is held, so candidate writes are applied in
SQLite's commit order. After a candidate failure (error or timeout, recorded once) the candidate
transaction is rolled back at once and the rest of it is skipped; the control never notices.
The breaker is asked once per transaction and told its outcome at the end. When the control rolls
back a transaction the candidate wrote in, the candidate's identity sequences are put back in step
with SQLite's ids (dual.sequences), before the control's ROLLBACK releases the write lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pgferry.runtime.database import Database, Fetch
from pgferry.runtime.dual.breaker import Ticket
from pgferry.runtime.dual.experiment import Experiment
from pgferry.runtime.dual.sequences import resync, written_sequences


class _Unwind(Exception):
    """Thrown into the candidate's open transaction blocks to roll them back."""


def _leave(block: AbstractContextManager[None], exc: BaseException | None) -> None:
    if exc is None:
        block.__exit__(None, None, None)
    else:
        block.__exit__(type(exc), exc, None)  # rolls back; returns False (the exception is not raised here)


class ShadowTransaction:
    """`committed`: a SQLite connection of this thread that sees the last committed state (the ids
    a rolled-back transaction leaves), for the sequence resync; None: no resync."""

    def __init__(
        self, experiment: Experiment, db: Database, committed: Callable[[], sqlite3.Connection] | None = None
    ) -> None:
        self._x = experiment
        self._db = db
        self._committed = committed
        self._wrote = False
        self._open: list[AbstractContextManager[None]] = []  # the transaction, then its savepoints
        self._ticket: Ticket | None = None
        self.live = False

    def _enter(self, what: str) -> bool:
        block = self._db.transaction()
        ok, _ = self._x.attempt(what, (), block.__enter__, in_tx=True)
        if ok:
            self._open.append(block)
        return ok

    def begin(self) -> None:
        self._ticket = self._x.breaker.allow()
        if self._ticket is None:
            self._x.skipped()
            return
        self.live = self._enter("BEGIN")
        if not self.live:
            self._finish(False)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Mirror a control savepoint around the block."""
        if not self.live or not self._enter("SAVEPOINT"):
            self._abort()
            yield
            return
        depth = len(self._open)
        try:
            yield
        except BaseException as exc:
            self._leave_savepoint(depth, exc)
            raise
        self._leave_savepoint(depth, None)

    def _leave_savepoint(self, depth: int, exc: BaseException | None) -> None:
        if not self.live or len(self._open) != depth:  # aborted inside the block
            return
        block = self._open.pop()
        ok, _ = self._x.attempt("RELEASE" if exc is None else "ROLLBACK TO", (), lambda: _leave(block, exc), in_tx=True)
        if not ok:
            self._abort()

    def statement(self, name: str, sql: str, params: Sequence[Any], what: Fetch, control: Any, *, write: bool) -> None:
        """Run the candidate's statement and compare its result with the control's."""
        if not self.live:
            self._x.skipped()
            return
        db = self._db
        ok, result = self._x.attempt(name, params, lambda: getattr(db, what)(sql, params), in_tx=True)
        if not ok:
            self._abort()
            return
        self._wrote = self._wrote or write
        self._x.check(name, params, control, result, in_tx=True)

    def commit(self) -> None:
        """After the control committed."""
        if not self.live:
            return
        block = self._open[0]  # the control's savepoints have all ended: only the transaction is open
        self._open.clear()
        self.live = False
        ok, _ = self._x.attempt("COMMIT", (), lambda: _leave(block, None), in_tx=True)
        self._finish(ok)

    def rollback(self) -> None:
        """The control rolls back (call it before the control's ROLLBACK, while the write lock is
        held): the candidate's work goes too, its sequences are put back; no verdict for the breaker."""
        if not self.live:
            return
        self.live = False
        written: list[tuple[str, str]] = []
        if self._wrote and self._committed is not None:
            ok, found = self._x.attempt("SEQUENCES", (), lambda: written_sequences(self._db), in_tx=True)
            written = found if ok else []
        self._unwind()
        if written and self._committed is not None:
            committed = self._committed()
            self._x.attempt("SEQUENCES", (), lambda: resync(self._db, committed, written), in_tx=False)
        self._finish(None)

    def _abort(self) -> None:
        """A candidate failure (already recorded): roll back now, skip the rest."""
        if not self.live:
            return
        self.live = False
        self._unwind()
        self._finish(False)

    def _unwind(self) -> None:
        while self._open:
            block = self._open.pop()
            with contextlib.suppress(Exception):
                _leave(block, _Unwind())

    def _finish(self, ok: bool | None) -> None:
        if self._ticket is not None:
            self._x.breaker.done(self._ticket, ok)
            self._ticket = None
