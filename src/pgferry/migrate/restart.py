"""Where an identity starts once the data is in: above every row the target holds, and above SQLite's
AUTOINCREMENT high-water mark.

A restart computed when the copy was planned is wrong after a `--resume` of a source that grew in
between (the rows copied since have higher ids): the application's next insert would then collide.
So the statement reads the target's own max(column) when it runs, one statement per table.
"""

from __future__ import annotations

from pgferry.sqltext import quote_ident, quote_literal


def restart_identity_sql(table: str, column: str, floor: int) -> str:
    """The identity `column` of `table` (quoted, schema-qualified) restarted at max(column) + 1, or at
    `floor` (sqlite_sequence + 1) when that is higher; `floor` alone for an empty table."""
    sequence = f"pg_get_serial_sequence({quote_literal(table)}, {quote_literal(column)})"
    highest = f"(SELECT max({quote_ident(column)}) FROM {table})"
    return f"SELECT setval({sequence}, greatest({highest} + 1, {int(floor)}), false)"
