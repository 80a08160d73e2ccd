"""The statements of PostgreSQL-native schema choices: BRIN and pg_trgm indexes, value lists as a CHECK or
an enum type. `pgferry advise` proposes them (CONCURRENTLY, on a live database), `pgferry copy
--native-plan` runs them on the tables it made: one spelling for both."""

from __future__ import annotations

from collections.abc import Sequence

from pgferry.sqltext import quote_ident, quote_literal


def _create_index(qualified: str, name: str | None, concurrently: bool) -> str:
    verb = "CREATE INDEX CONCURRENTLY" if concurrently else "CREATE INDEX"
    return f"{verb} {quote_ident(name)} ON {qualified}" if name else f"{verb} ON {qualified}"


def brin_sql(qualified: str, column: str, name: str | None = None, concurrently: bool = False) -> str:
    return f"{_create_index(qualified, name, concurrently)} USING brin ({quote_ident(column)})"


def trigram_key(column: str, citext: bool, lowered: bool) -> str:
    """The indexed expression: a citext column's text (citext has no trigram operator class of its own),
    lower() for `lower(col) LIKE` predicates, as the copy writes its own NOCASE expression indexes."""
    key = quote_ident(column) + ("::text" if citext else "")
    return f"lower({key})" if lowered else f"({key})" if citext else key


def trigram_sql(
    qualified: str, column: str, citext: bool, lowered: bool, name: str | None = None, concurrently: bool = False
) -> str:
    key = trigram_key(column, citext, lowered)
    return f"{_create_index(qualified, name, concurrently)} USING gin ({key} gin_trgm_ops)"


def value_list(values: Sequence[str]) -> str:
    return ", ".join(quote_literal(v) for v in values)


def check_sql(qualified: str, name: str, column: str, values: Sequence[str], not_valid: bool = False) -> str:
    tail = " NOT VALID" if not_valid else ""
    check = f"CHECK ({quote_ident(column)} IN ({value_list(values)}))"
    return f"ALTER TABLE {qualified} ADD CONSTRAINT {quote_ident(name)} {check}{tail}"


def enum_sql(qualified_type: str, values: Sequence[str]) -> str:
    return f"CREATE TYPE {qualified_type} AS ENUM ({value_list(values)})"
