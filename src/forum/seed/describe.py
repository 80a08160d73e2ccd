"""What the generator plants, as data (`describe`), and what a written file holds (`summarize`).

`describe` is the generator's own account of its defects: the answer key a doctor is checked
against. `summarize` reads a database back from disk (row counts, indexes, journal mode, statistics)
so the demo shows the file as it is, not as it was meant to be.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from forum.seed.indexes import CATEGORIES, PLAN_DAY_1_2, REDUNDANT
from forum.seed.schema import PLAN_USERS_COLUMNS, USERS, USERS_CORE, USERS_FAMILIES, planned_rows
from forum.seed.tables import DUPLICATE_SLUG_ODDS
from forum.seed.users import FAMILY_ODDS, LAST_LOGIN_ODDS
from forum.seed.writer import parse_scale
from pgferry.sqlite.connect import open_readonly
from pgferry.sqltext import quote_ident as q


@dataclass(frozen=True)
class PlantedDefect:
    """One defect the legacy database carries on purpose.

    kind: redundant_index, missing_index, wide_table, column_family, text_timestamps, json_as_text,
    booleans_as_integers, duplicate_slugs, foreign_keys_not_enforced, journal_mode, no_statistics.
    """

    kind: str
    table: str | None
    name: str | None
    detail: str
    category: str | None = None  # for redundant_index: one of indexes.CATEGORIES
    columns: tuple[str, ...] = ()


def expected_null_fraction() -> float:
    """The NULL share of users' optional cells the family odds aim at (0.93 in the plan)."""
    filled = LAST_LOGIN_ODDS
    for family, (p_family, p_member) in FAMILY_ODDS.items():
        m = len(USERS_FAMILIES[family])
        filled += p_family * (m * p_member + (1 - p_member) ** m)  # "(1-p)^m": the forced member
    return 1 - filled / (len(USERS.columns) - len(USERS_CORE))


def describe(scale: float) -> list[PlantedDefect]:
    """The defects a database generated at `scale` carries, whatever the seed."""
    rows = planned_rows(parse_scale(scale))
    defects = [
        PlantedDefect("redundant_index", i.table, i.name, i.of_what or "", i.category, i.columns) for i in REDUNDANT
    ]
    defects += [
        PlantedDefect(
            "missing_index", m.table, m.name,
            f"the plan's Day 1-2 index; no index leads with {m.columns[0]} ({rows[m.table]:,} rows scanned per lookup)",
            columns=m.columns,
        )
        for m in PLAN_DAY_1_2
    ]  # fmt: skip
    optional = len(USERS.columns) - len(USERS_CORE)
    defects.append(
        PlantedDefect(
            "wide_table", "users", None,
            f"{len(USERS.columns)} columns ({len(PLAN_USERS_COLUMNS)} named in the plan + "
            f"{len(USERS.columns) - len(PLAN_USERS_COLUMNS)} more), {len(USERS_CORE)} always filled, {optional} "
            f"optional of which about {expected_null_fraction():.0%} of cells are NULL ({rows['users']:,} rows)",
            columns=tuple(USERS.column_names),
        )
    )  # fmt: skip
    for family, members in USERS_FAMILIES.items():
        p_family, p_member = FAMILY_ODDS[family]
        together = "all together" if p_member == 1 else f"each with odds {p_member:.0%}, at least one"
        defects.append(
            PlantedDefect(
                "column_family", "users", family,
                f"{p_family:.0%} of users fill the {family} columns ({together}); the rest leave them all NULL",
                columns=members,
            )
        )  # fmt: skip
    defects += [
        PlantedDefect(
            "text_timestamps", None, None,
            "every *_at column and last_login hold ISO-8601 TEXT 'YYYY-MM-DD HH:MM:SS' (declared DATETIME)",
        ),
        PlantedDefect(
            "json_as_text", None, None,
            "notifications.payload and activity_log.metadata hold JSON in TEXT columns",
            columns=("payload", "metadata"),
        ),
        PlantedDefect("booleans_as_integers", None, None, "BOOLEAN columns hold 0/1 integers (is_*, email_verified)"),
        PlantedDefect(
            "duplicate_slugs", "wiki_pages", None,
            f"slug has no UNIQUE constraint and about {DUPLICATE_SLUG_ODDS:.0%} of pages reuse an earlier page's slug",
            columns=("slug",),
        ),
        PlantedDefect(
            "foreign_keys_not_enforced", None, None,
            "REFERENCES clauses are declared but PRAGMA foreign_keys is never turned on",
        ),
        PlantedDefect("journal_mode", None, None, "journal_mode=DELETE (rollback journal): readers block the writer"),
        PlantedDefect("no_statistics", None, None, "ANALYZE never ran: no sqlite_stat1, the planner guesses"),
    ]  # fmt: skip
    return defects


def defect_counts(defects: list[PlantedDefect]) -> dict[str, int]:
    """Redundant indexes per category, in CATEGORIES order."""
    counts = Counter(d.category for d in defects if d.kind == "redundant_index")
    return {c: counts[c] for c in CATEGORIES}


@dataclass
class DatabaseSummary:
    """A seeded database as read back from its file."""

    path: str
    bytes: int
    tables: dict[str, int] = field(default_factory=dict)  # rows per table
    indexes: int = 0  # CREATE INDEX indexes (not the automatic ones behind UNIQUE / PRIMARY KEY)
    automatic_indexes: int = 0
    journal_mode: str = ""
    has_statistics: bool = False
    users_columns: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())


def summarize(path: str | os.PathLike[str]) -> DatabaseSummary:
    """Read a seeded database back: rows per table, indexes, journal mode, statistics."""
    conn = open_readonly(path)
    try:
        master = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
        tables = [n for kind, n in master if kind == "table" and not n.startswith("sqlite_")]
        summary = DatabaseSummary(path=str(path), bytes=os.path.getsize(path))
        summary.tables = {t: conn.execute(f"SELECT count(*) FROM {q(t)}").fetchone()[0] for t in tables}
        index_names = [n for kind, n in master if kind == "index"]
        summary.automatic_indexes = sum(n.startswith("sqlite_autoindex_") for n in index_names)
        summary.indexes = len(index_names) - summary.automatic_indexes
        summary.journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        summary.has_statistics = any(n == "sqlite_stat1" for _, n in master)
        summary.users_columns = len(conn.execute("SELECT name FROM pragma_table_info(?)", ("users",)).fetchall())
        return summary
    finally:
        conn.close()


__all__ = ["DatabaseSummary", "PlantedDefect", "defect_counts", "describe", "summarize"]
