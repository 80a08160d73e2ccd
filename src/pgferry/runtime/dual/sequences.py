"""PostgreSQL's identity sequences put back in step with SQLite's ids when a dual transaction is
rolled back.

nextval is not transactional: a candidate INSERT undone because the control rolled back has used
a sequence value, while SQLite's rowid has not moved, so every later insert into that table would
get a PostgreSQL id above SQLite's (and the ids the application passes on would name other rows).
So, before the control's ROLLBACK (its write lock still held: no writer can insert in between), the
tables the candidate transaction wrote (its own RowExclusiveLocks) that have an identity or serial
column get their sequence set to SQLite's last id, read from the last committed state (another
connection: the control's uncommitted rows are not in it): max(rowid) and sqlite_sequence. Tables are
matched by name, as `pgferry copy` keeps them; the identity column is taken to be the rowid's alias.
"""

from __future__ import annotations

import sqlite3

from pgferry.runtime.database import Database
from pgferry.sqltext import quote_ident, quote_literal

# No parameters and no '%': runs with either placeholder style of the PostgreSQL backend.
_TABLE = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
WRITTEN_SQL = (
    f"SELECT DISTINCT c.relname AS table_name, pg_get_serial_sequence({_TABLE}, a.attname) AS sequence_name"
    " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock'"
    f" AND c.relkind IN ('r', 'p') AND pg_get_serial_sequence({_TABLE}, a.attname) IS NOT NULL"
)


def written_sequences(db: Database) -> list[tuple[str, str]]:
    """(table, sequence) of every table with a sequence that this transaction (on `db`'s held
    connection) has written so far."""
    return [(r["table_name"], r["sequence_name"]) for r in db.all(WRITTEN_SQL)]


def last_sqlite_id(conn: sqlite3.Connection, table: str) -> int | None:
    """The highest id SQLite has given in `table` (rowid or AUTOINCREMENT's record), committed;
    None when the file has no such rowid table."""
    try:
        top = conn.execute(f"SELECT max(rowid) FROM {quote_ident(table)}").fetchone()[0]
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    except sqlite3.Error:  # no AUTOINCREMENT table in the file
        row = None
    return max(int(top or 0), int(row[0]) if row else 0)


def resync(db: Database, conn: sqlite3.Connection, written: list[tuple[str, str]]) -> int:
    """Set each sequence to its table's last SQLite id (the next nextval gives SQLite's next rowid);
    returns how many were set."""
    done = 0
    for table, sequence in written:
        last = last_sqlite_id(conn, table)
        if last is None:
            continue
        called = "true" if last >= 1 else "false"
        db.one(f"SELECT setval({quote_literal(sequence)}, {max(last, 1)}, {called}) AS value")
        done += 1
    return done
