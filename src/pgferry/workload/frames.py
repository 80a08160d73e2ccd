"""What the capture wrapper asks besides the statement: whose code ran it, and in which transaction.

The site is the application's own frame: the standard library, pgferry, the drivers and the ORMs
are passed over (an N+1 loop is fixed in the application's code, not in `contextlib` or Django's
compiler). A statement with a framework's introspection, migration or debug module on its stack is
marked `internal`: the framework ran it on its own account, the doctor leaves it out.

The transaction comes from the driver, not from the statements: Python's sqlite3 opens one before a
write without running a statement a wrapper could see, and SQLAlchemy relies on that.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any

DRIVERS = ("sqlite3", "pysqlite2", "apsw", "psycopg", "psycopg2", "psycopg_pool", "aiosqlite")
FRAMEWORKS = (
    "django",
    "sqlalchemy",
    "alembic",
    "flask_sqlalchemy",
    "sqlmodel",
    "peewee",
    "playhouse",
    "sqlite_utils",
    "pony",
    "tortoise",
    "databases",
    "dataset",
    "records",
)
# Frames in these packages (and in the standard library) are never a statement's site.
DEFAULT_SKIP_MODULES = ("pgferry", *DRIVERS, *FRAMEWORKS)

# A statement with one of these modules on its stack is the framework's own (schema introspection,
# migrations, Django's DEBUG-mode `SELECT QUOTE(?)` for its query log), not the application's.
INTERNAL_MODULES = (
    "django.db.migrations",
    "django.db.backends.base.introspection",
    "django.db.backends.sqlite3.introspection",
    "django.db.backends.postgresql.introspection",
    "django.db.backends.base.schema",
    "django.db.backends.sqlite3.schema",
    "django.db.backends.base.creation",
    "django.db.backends.sqlite3.creation",
    "django.db.backends.sqlite3.operations",  # last_executed_query quotes the parameters with SQL
    "django.core.management",
    "alembic",
    "sqlalchemy.engine.reflection",
    "sqlalchemy.sql.ddl",
    "sqlalchemy.dialects",  # ORM statements run from sqlalchemy.engine; dialect modules introspect
    "playhouse.migrate",
    "playhouse.reflection",
)
_STDLIB = frozenset(sys.stdlib_module_names) - {"__main__"}


def _under(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


class SiteFinder:
    """Finds a statement's site and internal module from the stack; caches its per-module answers."""

    __slots__ = ("_internal_cache", "_skip", "_skip_cache")

    def __init__(self, skip_modules: Iterable[str] = ()) -> None:
        self._skip = DEFAULT_SKIP_MODULES + tuple(skip_modules)
        self._skip_cache: dict[str, bool] = {}
        self._internal_cache: dict[str, bool] = {}

    def _skipped(self, module: str) -> bool:
        hit = self._skip_cache.get(module)
        if hit is None:
            hit = self._skip_cache[module] = module.partition(".")[0] in _STDLIB or _under(module, self._skip)
        return hit

    def _internal(self, module: str) -> bool:
        hit = self._internal_cache.get(module)
        if hit is None:
            hit = self._internal_cache[module] = _under(module, INTERNAL_MODULES)
        return hit

    def find(self, frame: FrameType | None) -> tuple[str | None, str | None]:
        """(the application's frame as module:function:line, the framework-internal module passed on the way)."""
        internal = None
        while frame is not None:
            module = frame.f_globals.get("__name__", "?")
            if not self._skipped(module):
                return f"{module}:{frame.f_code.co_qualname}:{frame.f_lineno}", internal
            if internal is None and self._internal(module):
                internal = module
            frame = frame.f_back
        return None, internal


def in_transaction(conn: Any) -> bool | None:
    """Whether a DB-API connection has a transaction open (sqlite3, psycopg 3, psycopg2), or None."""
    try:
        flag = getattr(conn, "in_transaction", None)
        if isinstance(flag, bool):
            return flag
        status = getattr(getattr(conn, "info", None), "transaction_status", None)
        if status is not None:
            return int(status) != 0  # IDLE is 0 in both psycopgs; ACTIVE, INTRANS, INERROR are not
    except Exception:  # a closed connection, a driver that raises: the log must not break the statement
        return None
    return None


class TransactionTracker:
    """Gives the statements of one connection's transactions one id (unique across connections)."""

    __slots__ = ("_open", "_serial", "_token")

    def __init__(self) -> None:
        self._token = secrets.token_hex(4)
        self._serial = 0
        self._open = False

    def observe(self, before: bool | None, after: bool | None) -> str | None:
        """The id of the transaction a statement ran in (from the driver's state before and after it),
        "" for none (autocommit), None when the driver cannot say."""
        if before is None or after is None:
            return None
        if not before and not after:
            self._open = False
            return ""
        if not before or not self._open:  # it began with this statement, or out of our sight
            self._serial += 1
        self._open = after
        return f"{self._token}.{self._serial}"

    def ended(self) -> None:
        """commit() or rollback() on the connection: the next statement is in a new transaction."""
        self._open = False
