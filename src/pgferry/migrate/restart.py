"""Where an identity starts once the data is in: above every row the target holds, and above SQLite's
AUTOINCREMENT high-water mark.

A restart computed when the copy was planned is wrong after a `--resume` of a source that grew in
between (the rows copied since have higher ids): the application's next insert would then collide.
So the statement reads the target's own max(column) when it runs, one statement per table. It never
moves a sequence back below a value it gave (`pg_sequence_last_value`): after a live migration's
cutover and rollback, ids PostgreSQL handed out and deleted again are in no table, and a second
cutover must not hand them out twice.
"""

from __future__ import annotations

from pgferry.sqltext import quote_ident, quote_literal


def restart_identity_sql(table: str, column: str, floor: int) -> str:
    """The identity `column` of `table` (quoted, schema-qualified) restarted at the highest of
    max(column) + 1, `floor` (sqlite_sequence + 1) and the sequence's last given value + 1."""
    sequence = identity_sequence_sql(table, column)
    highest = f"(SELECT max({quote_ident(column)}) FROM {table})"
    given = f"coalesce(pg_sequence_last_value({sequence}::regclass) + 1, 1)"
    return f"SELECT setval({sequence}, greatest({highest} + 1, {int(floor)}, {given}), false)"


def identity_sequence_sql(table: str, column: str) -> str:
    """The expression naming the sequence behind `table`'s (quoted, schema-qualified) identity `column`."""
    return f"pg_get_serial_sequence({quote_literal(table)}, {quote_literal(column)})"


def last_given_sql(table: str, column: str) -> str:
    """The last value the identity `column`'s sequence gave (NULL: none since it was set)."""
    return f"SELECT pg_sequence_last_value({identity_sequence_sql(table, column)}::regclass)"
