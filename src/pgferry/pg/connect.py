"""Open a PostgreSQL connection with errors a user can act on (the SQLite side is pgferry.sqlite.connect)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgferry.dsn import redact
from pgferry.errors import TargetError

CONNECT_TIMEOUT_S = 10


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection:
    """A connection to `dsn`; an unreachable server or a refused login is one TargetError line, the
    password redacted. Autocommit by default: pgferry opens its transactions explicitly."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or "connection failed"
        raise TargetError(f"cannot connect to {redact(dsn)}: {redact(message)}") from None


def first_line(exc: BaseException) -> str:
    """The first line of a driver error (PostgreSQL adds DETAIL and HINT lines after it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def statement(text: str) -> sql.SQL:
    """SQL text pgferry composed itself (every identifier quoted, every value a rendered literal),
    marked as such in this one place (psycopg's types ask for a LiteralString as SQL)."""
    return sql.SQL(text)
