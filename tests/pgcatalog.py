"""What a test reads back from PostgreSQL's catalog."""

from __future__ import annotations

import psycopg


def column_types(dsn: str, table: str = "t") -> dict[str, str]:
    """Each column of `table` and its type as format_type() spells it (`character varying(300)`)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        ).fetchall()
    return dict(rows)
