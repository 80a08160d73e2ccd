"""sqlglot's SQLite dialect with the parts of SQLite's CREATE TABLE grammar it lacks.

Real files hold `REFERENCES p NOT DEFERRABLE`, `UNIQUE (a) ON CONFLICT REPLACE` and `PRIMARY KEY
(a DESC)`; sqlglot 30 refuses all three, and one refused clause left the whole table unread (its
CHECKs, constraint names and DEFERRABLE lost). The subclass is built on the first parse, so
importing pgferry does not import sqlglot.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlglot.dialects.dialect import Dialect


@functools.cache
def sqlite_ddl() -> type[Dialect]:
    """The dialect to parse SQLite's CREATE TABLE statements with."""
    from sqlglot import exp
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.parsers.sqlite import SQLiteParser
    from sqlglot.tokenizer_core import TokenType

    class SQLiteDDL(SQLite):
        class Parser(SQLiteParser):
            KEY_CONSTRAINT_OPTIONS: ClassVar[dict[str, Any]] = {
                **SQLiteParser.KEY_CONSTRAINT_OPTIONS,
                "NOT": ("ENFORCED", "DEFERRABLE"),
            }
            CONSTRAINT_PARSERS: ClassVar[dict[str, Any]] = {
                **SQLiteParser.CONSTRAINT_PARSERS,
                "ON": lambda self: self._parse_column_on(),
            }

            def _at_on_conflict(self) -> bool:
                return bool(
                    self._curr
                    and self._next
                    and self._curr.token_type == TokenType.ON
                    and self._next.text.upper() == "CONFLICT"
                )

            def _parse_key_constraint_options(self) -> list[str]:
                # SQLite's conflict clause (ON CONFLICT REPLACE ...) of a PRIMARY KEY, UNIQUE or NOT NULL
                options: list[str] = []
                while True:
                    if self._at_on_conflict():
                        self._advance(2)
                        self._advance_any()
                        options.append(f"ON CONFLICT {self._prev.text.upper()}")
                        continue
                    more = super()._parse_key_constraint_options()
                    if not more:
                        return options
                    options += more

            def _parse_column_on(self) -> exp.Expr | None:
                # a column's `NOT NULL ON CONFLICT FAIL` (a table's is read by _parse_key_constraint_options)
                if self._match_text_seq("CONFLICT"):
                    self._advance_any()
                    conflict = exp.OnProperty(this=exp.var(f"CONFLICT {self._prev.text.upper()}"))
                    return conflict
                on: exp.Expr | None = SQLiteParser.CONSTRAINT_PARSERS["ON"](self)
                return on

            def _parse_index_params(self) -> exp.IndexParameters:
                if self._at_on_conflict():  # PRIMARY KEY (a) ON CONFLICT ...: no index parameters in SQLite
                    return exp.IndexParameters()
                params: exp.IndexParameters = super()._parse_index_params()
                return params

            def _parse_unique_key(self) -> exp.Expr | None:
                key: exp.Expr | None = None if self._at_on_conflict() else super()._parse_unique_key()
                return key

            def _parse_primary_key_part(self) -> exp.Expr | None:
                part: exp.Expr | None = self._parse_ordered()  # a key column may say COLLATE, ASC, DESC
                return part

            def _parse_on_conflict(self) -> Any:
                return None  # left to _parse_key_constraint_options

    return SQLiteDDL
