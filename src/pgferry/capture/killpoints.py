"""Named points where a test can have the applier killed with SIGKILL, to prove that a kill -9 there
loses nothing: PGFERRY_KILL_AT=NAME (the first time NAME is reached) or NAME@N (the Nth time).

Nothing happens unless that variable is set; the points are `apply:before_commit` (the batch's rows
and position written, not committed), `apply:after_commit` (committed, changelog not yet pruned),
`apply:after_prune`; the reverse applier's `reverse:before_commit` (SQLite written, not committed)
and `reverse:after_commit` (committed, its PostgreSQL entries not yet deleted); and the rollback's
`rollback:after_flip` (SQLite's route flipped, PostgreSQL's transaction not committed).
"""

from __future__ import annotations

import os
import signal

ENV = "PGFERRY_KILL_AT"
_reached: dict[str, int] = {}


def reached(point: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition("@")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
