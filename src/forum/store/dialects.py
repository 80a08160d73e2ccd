"""The forum's dialects: for each engine, the module that gives every `ForumSql` statement its text.

The keys are the runtime backends' `Database.dialect` names; `load` checks each module against the
statement set, and the test suite loads every dialect listed, so a missing statement fails there
before it fails a request.
"""

from __future__ import annotations

import functools
import importlib

from forum.store.statements import ForumSql
from pgferry.runtime import Dialect, DialectError

DIALECTS: dict[str, str] = {
    "sqlite": "forum.store.sqlite.queries",
    "postgresql": "forum.store.postgres.queries",
}


@functools.cache
def load(name: str) -> Dialect[ForumSql]:
    """The forum's statements in dialect `name`; DialectError for an unknown name or a missing statement."""
    try:
        module = DIALECTS[name]
    except KeyError:
        raise DialectError(f"the forum has no {name!r} dialect (it has {', '.join(sorted(DIALECTS))})") from None
    return Dialect.load(name, ForumSql, importlib.import_module(module))
