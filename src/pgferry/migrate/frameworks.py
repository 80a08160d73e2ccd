"""The PostgreSQL types an application's framework expects, for the columns the framework wrote.

A Django, SQLAlchemy (Alembic) or Rails application reads back what its own PostgreSQL schema would
hold: Django's DecimalField wants numeric (not double precision), UUIDField uuid, DateTimeField
timestamptz, SQLAlchemy's Integer int4. The file says which framework made it (its migration tables),
and the framework's SQLite spelling of a field says which field it is: Django declares a UUIDField
`char(32)` but a CharField `varchar(n)`. Each rule maps one such spelling to the framework's PostgreSQL
type (Django's `data_types` for the postgresql backend and SQLAlchemy's type compiler are the
reference), and applies only when every value fits; otherwise the generic choice stands and the
report says why.

Spellings two fields share stay generic: Django declares DurationField and BigIntegerField both
`bigint` (microseconds or a number: the file cannot tell), SQLAlchemy's Interval and DateTime both
`DATETIME`. `--cast` or `--into-existing` settle those.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from pgferry.migrate.types import TypeChoice, affinity, integer_choice, numeric_choice
from pgferry.sqlite.census import ColumnCensus
from pgferry.sqlite.schema import Column, Schema

# (column, census) -> the framework's type, or None when the values do not fit it.
Rule = Callable[[Column, ColumnCensus], TypeChoice | None]


@dataclass(frozen=True)
class Framework:
    """A framework detected in a file, and the rules its SQLite spellings follow."""

    name: str
    evidence: str  # what in the file says so
    rules: tuple[tuple[re.Pattern[str], Rule], ...]
    duration_hint: str | None = None  # said of columns whose spelling several fields share
    # Integer keys stay bigint: Django's BigAutoField and Rails' primary keys are integer on SQLite and
    # bigint on PostgreSQL (their foreign keys too), indistinguishable from the int4 AutoField.
    wide_keys: bool = False

    def choose(self, column: Column, census: ColumnCensus, is_key: bool) -> TypeChoice | None:
        """The framework's type for `column`, None where no rule covers its declaration."""
        if is_key and self.wide_keys and affinity(column.declared_type) == "INTEGER":
            return None
        for pattern, rule in self.rules:
            if pattern.fullmatch(column.declared_type.strip()):
                choice = rule(column, census)
                if choice is None:
                    return None
                return dataclasses.replace(choice, reason=f"{self.name}: {choice.reason}")
        return None

    def covers(self, column: Column) -> bool:
        """Whether one of the framework's spellings is the column's declaration."""
        return any(pattern.fullmatch(column.declared_type.strip()) for pattern, _rule in self.rules)

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "evidence": self.evidence}


def _empty_or(census: ColumnCensus, fits: bool) -> bool:
    return census.non_null == 0 or fits


def _only(census: ColumnCensus, *classes: str) -> bool:
    return set(census.storage_classes) <= set(classes)


def _typed(pg_type: str, converter: str, reason: str, test: Callable[[ColumnCensus], bool]) -> Rule:
    def rule(column: Column, census: ColumnCensus) -> TypeChoice | None:
        return TypeChoice(pg_type, converter, reason) if _empty_or(census, test(census)) else None

    return rule


def _integer(pg_type: str) -> Rule:
    def rule(column: Column, census: ColumnCensus) -> TypeChoice | None:
        if not _only(census, "integer"):
            return None
        return integer_choice(pg_type, census, f"{column.declared_type} is {pg_type}")

    return rule


def _numeric(column: Column, census: ColumnCensus) -> TypeChoice | None:
    return numeric_choice(column.declared_type, census) if _only(census, "integer", "real") else None


def _boolean(column: Column, census: ColumnCensus) -> TypeChoice | None:
    fits = _only(census, "integer") and (census.only_flags or census.non_null == 0)
    return TypeChoice("boolean", "bool", "0/1 booleans") if _empty_or(census, fits) else None


def _json(column: Column, census: ColumnCensus) -> TypeChoice | None:
    """SQLAlchemy's and Rails' JSON is PostgreSQL's json (not jsonb: `alembic check` would see the change)."""
    if census.non_null == 0:
        return TypeChoice("json", "json_any", "JSON")
    if not census.values_json or "blob" in census.storage_classes or census.text_with_nul:
        return None
    converter = "json_any" if census.storage_classes == ("text",) else "json_numbers"
    return TypeChoice("json", converter, "JSON, kept as its text")


def _text_dates(census: ColumnCensus) -> bool:
    return _only(census, "text") and census.texts_iso_datetime and census.texts_without_zone


def _dates_only(census: ColumnCensus) -> bool:
    return _only(census, "text") and census.texts_iso_date_only


def _times(census: ColumnCensus) -> bool:
    return _only(census, "text") and census.texts_time


def _uuids(census: ColumnCensus) -> bool:
    return _only(census, "text") and census.texts_uuid


def _ips(census: ColumnCensus) -> bool:
    return _only(census, "text") and census.texts_inet


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


UUID_HEX = _typed("uuid", "uuid_hex", "a UUID stored as 32 hex digits", _uuids)
TIME = _typed("time", "time_text", "time of day", _times)
DATE = _typed("date", "date_text", "ISO dates", _dates_only)

# django/db/backends/sqlite3/base.py data_types -> django/db/backends/postgresql/base.py data_types
DJANGO = Framework(
    "Django",
    "table django_migrations",
    (
        (_pattern(r"bool"), _boolean),
        (_pattern(r"date"), DATE),
        # USE_TZ=True (the default since Django 5.0) stores UTC without a zone; PostgreSQL's column is timestamptz.
        (_pattern(r"datetime"), _typed("timestamptz", "utc_text", "a UTC date-time (USE_TZ)", _text_dates)),
        (_pattern(r"time"), TIME),
        (_pattern(r"decimal"), _numeric),
        (_pattern(r"char\(32\)"), UUID_HEX),  # UUIDField; a CharField is varchar(n)
        (_pattern(r"char\((?:15|39)\)"), _typed("inet", "inet_text", "an IP address", _ips)),
        (_pattern(r"integer(?: unsigned)?"), _integer("integer")),
        (_pattern(r"smallint(?: unsigned)?"), _integer("smallint")),
        (_pattern(r"bigint(?: unsigned)?"), _integer("bigint")),
    ),
    wide_keys=True,
    duration_hint="Django stores a DurationField as bigint microseconds, like a BigIntegerField: if this column "
    "is a DurationField, cast it to interval (--cast) or copy --into-existing",
)
# sqlalchemy/dialects/sqlite/base.py SQLiteTypeCompiler -> sqlalchemy/dialects/postgresql/base.py
SQLALCHEMY = Framework(
    "SQLAlchemy (Alembic)",
    "table alembic_version",
    (
        (_pattern(r"INTEGER"), _integer("integer")),
        (_pattern(r"SMALLINT"), _integer("smallint")),
        (_pattern(r"BIGINT"), _integer("bigint")),
        (_pattern(r"(?:NUMERIC|DECIMAL)(?:\s*\(\s*\d+\s*(?:,\s*\d+\s*)?\))?"), _numeric),
        (_pattern(r"BOOLEAN"), _boolean),
        (_pattern(r"DATE"), DATE),
        (_pattern(r"TIME"), TIME),
        (_pattern(r"CHAR\(32\)"), UUID_HEX),  # Uuid
        (_pattern(r"JSON"), _json),
    ),
)

# activerecord/.../sqlite3_adapter.rb NATIVE_DATABASE_TYPES -> postgresql_adapter.rb
RAILS = Framework(
    "Rails (Active Record)",
    "tables schema_migrations and ar_internal_metadata",
    (
        (_pattern(r"integer"), _integer("integer")),
        (_pattern(r"bigint"), _integer("bigint")),
        (_pattern(r"decimal(?:\(\d+(?:,\s*\d+)?\))?"), _numeric),
        (_pattern(r"boolean"), _boolean),
        (_pattern(r"date"), DATE),
        (_pattern(r"time(?:\(\d\))?"), TIME),
        (_pattern(r"json"), _json),
    ),
    wide_keys=True,
)


def detect(schema: Schema) -> Framework | None:
    """The framework whose migration tables the file holds, if any."""
    names = {table.name for table in schema.tables}
    if "django_migrations" in names:
        return DJANGO
    if "alembic_version" in names:
        return SQLALCHEMY
    if {"schema_migrations", "ar_internal_metadata"} <= names:
        return RAILS
    return None


FRAMEWORKS = {"django": DJANGO, "sqlalchemy": SQLALCHEMY, "rails": RAILS}


def framework_named(name: str, schema: Schema) -> Framework | None:
    """`auto` (detect), `none`, or a framework's name."""
    if name == "auto":
        return detect(schema)
    if name == "none":
        return None
    return FRAMEWORKS[name]


def hint(framework: Framework | None, column: Column) -> str | None:
    """What the report says about a column whose spelling several of the framework's fields share."""
    if framework is None or framework.duration_hint is None:
        return None
    return framework.duration_hint if column.declared_type.strip().lower() == "bigint" else None
