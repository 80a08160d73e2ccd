"""The forum on a live migration: a SQLite file whose route (pgferry.runtime.route) may say sqlite,
dual or postgres, and the PostgreSQL database `pgferry copy` made of it, behind one router.

The repository keeps its SQLite statements; the router runs each one where the route says (the
same-named PostgreSQL statement on PostgreSQL), so the forum follows a cutover (and a rollback)
while it serves. SQLite is opened as optimized mode opens it (WAL, busy timeout, BEGIN IMMEDIATE):
the route is read inside every write transaction, and legacy mode writes outside transactions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forum.store import dialects
from forum.store.errors import StoreError
from forum.store.modes import Mode
from forum.store.postgres.settings import PostgresSettings
from forum.store.shadow import dual_policy
from forum.store.sqlite.settings import SqliteSettings
from forum.store.statements import ForumSql
from pgferry.runtime import Backend
from pgferry.runtime.dual import DiscrepancyLog, Experiment, candidate_policy
from pgferry.runtime.postgres import PostgresDatabase
from pgferry.runtime.route import Route, RouteReader, RouteState, read_route
from pgferry.runtime.routed import Router
from pgferry.runtime.sqlite import SqliteDatabase
from pgferry.sqlite.connect import open_readonly
from pgferry.workload.capture import Sink


@dataclass(frozen=True)
class DualSettings:
    """The dual route's knobs (`forum serve --shadow-sample`, `--candidate-budget-ms`, `--discrepancies`)."""

    shadow_sample: float = 1.0
    candidate_budget_ms: int = 100
    discrepancy_log: str | Path | None = None


def file_route(path: str | Path) -> RouteState:
    """The route in the file now (SQLite when it never had one)."""
    conn = open_readonly(path)
    try:
        return read_route(conn)
    finally:
        conn.close()


def split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Overrides for SQLite, PostgreSQL and the dual route, by the names each settings class has
    (`pool_wait_s` is both sides')."""
    out: list[dict[str, Any]] = []
    for cls in (SqliteSettings, PostgresSettings, DualSettings):
        names = {f.name for f in dataclasses.fields(cls)}
        out.append({k: v for k, v in settings.items() if k in names})
    unknown = set(settings) - set().union(*out)
    if unknown:
        raise TypeError(f"unknown store settings: {', '.join(sorted(unknown))}")
    return out[0], out[1], out[2]


def open_router(
    path: str | Path, mode: Mode, dsn: str, capture: Sink | None, settings: dict[str, Any]
) -> Router[ForumSql]:
    if mode is not Mode.OPTIMIZED:
        raise StoreError(
            "following a migration's route needs --mode optimized: the route is read inside write "
            "transactions, and legacy mode writes statement by statement"
        )
    sqlite_settings, pg_settings, dual_settings = split_settings(settings)
    dual = DualSettings(**dual_settings)
    policy = dual_policy(dual.shadow_sample, dual.candidate_budget_ms)
    home = SqliteDatabase(path, SqliteSettings(mode=mode, **sqlite_settings).policy(), capture_sink=capture)
    opened: list[Any] = [home]
    try:
        pg_policy = PostgresSettings(**pg_settings).policy()
        postgres = PostgresDatabase(dsn, pg_policy, name="forum")
        opened.append(postgres)
        candidate = PostgresDatabase(dsn, candidate_policy(pg_policy, policy), name="forum-candidate")
        opened.append(candidate)
        log = DiscrepancyLog(path=dual.discrepancy_log)
        return Router(
            Backend(home, dialects.load("sqlite")),
            Backend(postgres, dialects.load("postgresql")),
            RouteReader(home.path),
            candidate=candidate,
            experiment=Experiment(policy, log),
        )
    except BaseException:
        for db in opened:
            db.close()
        raise


__all__ = ["DualSettings", "Route", "file_route", "open_router"]
