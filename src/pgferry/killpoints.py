"""Named points where a test can have pgferry killed with SIGKILL, to prove that a kill -9 there
loses nothing: PGFERRY_KILL_AT=NAME (the first time NAME is reached) or NAME@N (the Nth time).

Nothing happens unless that variable is set. The copy's points are `copy:before_chunk_commit` (a
chunk's rows and checkpoint written, not committed) and `copy:after_chunk_commit`; the applier's are
`apply:before_commit` (the batch's rows and position written, not committed), `apply:after_commit`
(committed, changelog not yet pruned) and `apply:after_prune`, and while a rebuilt table is taken up
`rebuild:before_recopy` (triggers reinstalled, not copied again) and `rebuild:after_recopy` (copied, the
mark not yet updated); the cutover's are `cutover:locked`, `cutover:drained`,
`cutover:before_pg_commit`, `cutover:after_pg_commit` (PostgreSQL committed, SQLite not) and
`cutover:after_commit`; the reverse applier's `reverse:before_commit` (SQLite written, not committed)
and `reverse:after_commit` (committed, its PostgreSQL entries not yet deleted); the rollback's
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
