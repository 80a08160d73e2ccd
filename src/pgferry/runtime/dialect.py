"""An application's typed statement set, and one dialect of it per database engine.

An application declares its statements once, as a frozen dataclass of `str` fields:

    @dataclass(frozen=True)
    class AppSql(Statements):
        USER_GET: str
        USER_INSERT: str

and each engine's SQL is a `Dialect` of that set, loaded from a module of constants:

    SQLITE = Dialect.load("sqlite", AppSql, app.sqlite_queries)

Why a declared set and not a bare module: a dialect that lacks a statement is refused when it is
loaded, naming what is missing, instead of failing on the first request that needs it; and mypy
checks every statement name the repository uses against the set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any, Generic, TypeVar

from pgferry.runtime.errors import DialectError


@dataclass(frozen=True)
class Statements:
    """Base of a statement set: subclass it as `@dataclass(frozen=True)` with one `str` field per statement."""

    def __post_init__(self) -> None:
        bad = [f.name for f in fields(self) if not _is_sql(getattr(self, f.name))]
        if bad:
            raise DialectError(f"{type(self).__name__}: not SQL text (empty or not a string): {', '.join(bad)}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every statement of the set, in declaration order."""
        if "__dataclass_fields__" not in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare the statement set with @dataclass(frozen=True)")
        return tuple(f.name for f in fields(cls))


S = TypeVar("S", bound=Statements)


def _is_sql(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


@dataclass(frozen=True)
class Dialect(Generic[S]):
    """One engine's text for every statement of a set; `name` matches the `Database.dialect` it runs on."""

    name: str
    sql: S

    @classmethod
    def load(cls, name: str, statements: type[S], source: ModuleType | Mapping[str, Any]) -> Dialect[S]:
        """The dialect `name` of `statements` from a module (or mapping) of constants.

        DialectError names every statement of the set that `source` does not define; names in
        `source` beyond the set (helpers, private fragments) are ignored.
        """
        values: Mapping[str, Any] = vars(source) if isinstance(source, ModuleType) else source
        wanted = statements.names()
        missing = [n for n in wanted if n not in values]
        if missing:
            where = source.__name__ if isinstance(source, ModuleType) else "the mapping given"
            raise DialectError(
                f"dialect {name!r} of {statements.__name__} ({where}) lacks {len(missing)} statement(s): "
                + ", ".join(missing)
            )
        try:
            sql = statements(**{n: values[n] for n in wanted})
        except DialectError as exc:
            raise DialectError(f"dialect {name!r}: {exc}") from None
        return cls(name, sql)
