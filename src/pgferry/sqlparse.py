"""sqlglot, called quietly: pgferry parses statements it did not write (schemas, workloads), and
sqlglot logs a warning for each construct it does not support. Those are expected here (each
caller has its fallback), so they are dropped while pgferry is the caller, on that thread only:
an application's own use of sqlglot keeps its log, and no logger's level is changed globally.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlglot (a tenth of a second to import) loads on the first parse, not with pgferry
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

_quiet = threading.local()


class _DropWhileQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


logging.getLogger("sqlglot").addFilter(_DropWhileQuiet())


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """sqlglot's log records from this thread are dropped inside the block."""
    previous = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = previous


def parse_one(sql: str, read: str | type[Dialect] = "sqlite") -> exp.Expr:
    """sqlglot.parse_one without its warnings; raises what sqlglot raises."""
    import sqlglot

    with quiet_sqlglot():
        return sqlglot.parse_one(sql, read=read)
