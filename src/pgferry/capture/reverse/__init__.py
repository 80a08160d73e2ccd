"""Reverse capture: after a cutover, PostgreSQL's changes followed back into SQLite, so a rollback
loses nothing written on PostgreSQL.

| module | job |
| --- | --- |
| `log` | the reverse changelog and the row triggers on every copied table; install, uninstall, read |
| `rows` | one table's current PostgreSQL rows of changed keys, converted back and written into SQLite |
| `applier` | batches: read in one snapshot, write in one SQLite transaction, delete what was applied |

`pgferry migrate rollback` is pgferry.capture.rollback; `migrate follow` runs the reverse applier
while the route is `postgres`.
"""

from __future__ import annotations

from pgferry.capture.reverse.applier import ReverseApplier, ReverseBatch
from pgferry.capture.reverse.log import install, missing, uninstall

__all__ = ["ReverseApplier", "ReverseBatch", "install", "missing", "uninstall"]
