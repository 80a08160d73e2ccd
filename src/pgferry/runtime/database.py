"""What an application's data layer needs from a database backend: run a statement, hold a
connection, a transaction, and say which SQL it speaks.

A repository written against this protocol runs on SQLite today and on a PostgreSQL pool later
without change; `dialect` is what lets `Backend` refuse SQL written for another engine.
Rows are mappings by column name (sqlite3.Row, psycopg's dict_row).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Row = Mapping[str, Any]
Params = Sequence[Any]
Fetch = Literal["one", "all", "run"]


class Database(Protocol):
    @property
    def dialect(self) -> str:
        """The SQL this database speaks ("sqlite", "postgresql"): a `Dialect` of that name fits it."""

    def one(self, sql: str, params: Params = ()) -> Any:
        """The first row, or None."""

    def all(self, sql: str, params: Params = ()) -> list[Any]:
        """All rows."""

    def run(self, sql: str, params: Params = ()) -> int:
        """A write; returns the number of rows changed."""

    def hold(self) -> AbstractContextManager[None]:
        """Keep one connection for the statements of this block (one unit of work)."""

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: everything in the block commits together or not at all."""

    def settings(self) -> dict[str, Any]:
        """What is in force (journal mode, timeouts, pool size...), for a start-up log and a health check."""

    def close(self) -> None: ...


class Statements(ABC):
    """`one`, `all` and `run` of the Database protocol over a backend's single `fetch`."""

    @abstractmethod
    def fetch(self, sql: str, params: Params, what: Fetch) -> Any:
        """Run `sql`: its first row, all rows, or the rows changed (`what`)."""

    def one(self, sql: str, params: Params = ()) -> Any:
        return self.fetch(sql, params, "one")

    def all(self, sql: str, params: Params = ()) -> list[Any]:
        rows: list[Any] = self.fetch(sql, params, "all")
        return rows

    def run(self, sql: str, params: Params = ()) -> int:
        changed: int = self.fetch(sql, params, "run")
        return changed
