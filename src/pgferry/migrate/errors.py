"""How a copy's failures are told: driver errors become one-line pgferry errors, a refused COPY line
is traced back to its row and column."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator

import psycopg
from psycopg import errors as pgerrors

from pgferry.dsn import redact
from pgferry.errors import PgferryError, SourceError, TargetError
from pgferry.pg.connect import first_line


class CopyDataError(PgferryError):
    """A value PostgreSQL cannot hold; the message names table, row key, column and value."""


# What a chunk can meet that the careful path (or a re-plan) handles: text SQLite cannot decode,
# a value PostgreSQL refuses.
REFUSALS = (sqlite3.OperationalError, pgerrors.DataError, pgerrors.IntegrityError, pgerrors.InternalError_)
REFUSED_BY_POSTGRES = (pgerrors.DataError, pgerrors.IntegrityError, pgerrors.InternalError_)


def is_decode_error(exc: BaseException) -> bool:
    """SQLite text that is not UTF-8, met while Python decodes a row."""
    return isinstance(exc, sqlite3.OperationalError) and "decode" in str(exc).lower()


@contextlib.contextmanager
def user_errors(dsn: str) -> Iterator[None]:
    """Turn driver errors that escape a run into one-line pgferry errors (passwords redacted)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"reading the SQLite source failed: {exc}") from None
    except psycopg.Error as exc:
        raise TargetError(f"PostgreSQL ({redact(dsn)}): {redact(first_line(exc))}") from None


_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


def copy_error_position(exc: psycopg.Error) -> tuple[int | None, str | None]:
    """(0-based line of the COPY data, target column) PostgreSQL's error context points at."""
    context = getattr(exc.diag, "context", None) or ""
    match = _COPY_CONTEXT.search(context)
    if not match:
        return None, None
    return int(match.group(1)) - 1, match.group(2)


def refusal(exc: Exception) -> str:
    """What was refused, for the report: a guard's marker is named as such, with its column."""
    first = first_line(exc)
    _line, column = copy_error_position(exc) if isinstance(exc, psycopg.Error) else (None, None)
    if '"!"' in first or 'hexadecimal digit: "Z"' in first:  # the markers of converters.Converter.refused
        where = f"column {column}" if column else "a column"
        return f"{where}: a value unlike those in the sample (the type chosen from it would change it)"
    if first.endswith('"UTF8": 0xff'):  # the text marker, or text not UTF-8: the re-plan's changes name its column
        return "a text column: a value unlike those in the sample (a NULL, another type, or text not UTF-8)"
    return first + (f" (column {column})" if column and column not in first else "")
