"""The runtime's SQLite backend: `SqliteDatabase` on one file, opened and shared as a `SqlitePolicy` says.

Layout: `policy` (the knobs), `opening` (connections through pgferry.sqlite.connect, the journal
mode), `connections` (per thread or a fixed pool), `writers` (the in-process writer queue),
`database` (statements, counting, busy errors, transactions through pgferry.sqlite.atomic).
"""

from __future__ import annotations

from pgferry.runtime.sqlite.database import SqliteDatabase
from pgferry.runtime.sqlite.policy import SqlitePolicy

__all__ = ["SqliteDatabase", "SqlitePolicy"]
