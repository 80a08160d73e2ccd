"""A statement written in the home dialect, found by name in another dialect of the same set.

An application writes its data layer once, against its home dialect (SQLite's statements); a router
takes each statement's text, finds its name in the home `Dialect` (`USER_GET`), and runs the
same-named statement of the other dialect with the same parameters. The map is built once; a text
that is not one of the home dialect's statements is a DialectError naming it, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Generic

from pgferry.runtime.dialect import Dialect, S
from pgferry.runtime.errors import DialectError

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_LITERALS = re.compile(r"'(?:[^']|'')*'")
_FIRST_WORD = re.compile(r"^[\s(]*([A-Za-z]+)")
_DML = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)
READ_VERBS = frozenset({"SELECT", "VALUES", "EXPLAIN"})


def is_write(sql: str) -> bool:
    """Whether a statement may change data: anything but SELECT, VALUES, EXPLAIN, and WITH ... SELECT.

    Unknown verbs count as writes: a write taken for a read would skip the route's transaction."""
    text = _LITERALS.sub("''", _COMMENTS.sub(" ", sql))
    match = _FIRST_WORD.match(text)
    verb = match.group(1).upper() if match else ""
    if verb == "WITH":
        return _DML.search(text) is not None
    return verb not in READ_VERBS


class StatementMap(Generic[S]):
    """Home dialect text -> statement name -> the other dialect's text, and which names write."""

    def __init__(self, home: Dialect[S], other: Dialect[S]) -> None:
        if type(home.sql) is not type(other.sql):
            raise DialectError(
                f"the {home.name!r} and {other.name!r} dialects are of different statement sets "
                f"({type(home.sql).__name__}, {type(other.sql).__name__})"
            )
        self.home, self.other = home, other
        self._names: dict[str, str] = {}
        for f in fields(home.sql):
            text = getattr(home.sql, f.name)
            seen = self._names.setdefault(text, f.name)
            if seen != f.name and getattr(other.sql, seen) != getattr(other.sql, f.name):
                raise DialectError(
                    f"{seen} and {f.name} have the same {home.name} text but different {other.name} text: "
                    "a router cannot tell which one runs; make their texts differ"
                )
        self._writes = frozenset(name for text, name in self._names.items() if is_write(text))

    def name(self, sql: str) -> str:
        """The statement's name in the home dialect; DialectError when it is none of them."""
        try:
            return self._names[sql]
        except KeyError:
            text = " ".join(sql.split())
            raise DialectError(
                f"not a statement of the {self.home.name!r} dialect of {type(self.home.sql).__name__} "
                f"(a router runs only named statements): {text[:120]}"
            ) from None

    def other_sql(self, name: str) -> str:
        text: str = getattr(self.other.sql, name)
        return text

    def writes(self, name: str) -> bool:
        return name in self._writes
