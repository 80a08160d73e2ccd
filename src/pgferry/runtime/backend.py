"""A database and the dialect its statements are written in, as one value.

A router (sqlite / dual / postgres) swaps whole backends, never a database without its SQL: a
SQLite database handed PostgreSQL's `%s` placeholders fails on every statement. `Backend` refuses
that pairing when it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from pgferry.runtime.database import Database
from pgferry.runtime.dialect import Dialect, S
from pgferry.runtime.errors import DialectError


@dataclass(frozen=True)
class Backend(Generic[S]):
    db: Database
    dialect: Dialect[S]

    def __post_init__(self) -> None:
        if self.db.dialect != self.dialect.name:
            raise DialectError(
                f"a {self.db.dialect} database cannot run the {self.dialect.name!r} dialect's statements; "
                f"give it the {self.db.dialect!r} dialect"
            )

    @property
    def sql(self) -> S:
        """The statements, in this database's dialect."""
        return self.dialect.sql

    def close(self) -> None:
        self.db.close()
