"""Reverse capture's test helpers: an application database with converted types beside capture_util's
tables, the cutover, writes on PostgreSQL, the reverse applier run until caught up."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import psycopg

from capture_util import Statement, make_source, started
from pgferry.capture.cutover import CutoverOptions, cutover
from pgferry.capture.reverse import ReverseApplier
from pgferry.runtime.route import Route, read_route


def make_typed_source(path: Path, without_rowid: bool) -> Path:
    """capture_util's tables, plus `thing` with the declared types a copy converts (BOOLEAN, NUMERIC,
    REAL, DATETIME, DATE, JSON, and epoch seconds in a TIMESTAMP column): PostgreSQL gets boolean,
    numeric, timestamp, date, jsonb and what the copy makes of the epochs."""
    make_source(path, without_rowid)
    tail = " WITHOUT ROWID" if without_rowid else ""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE thing (id INTEGER PRIMARY KEY, flag BOOLEAN, price NUMERIC, ratio REAL,"
            f" created DATETIME, day DATE, meta JSON, seen_at TIMESTAMP){tail}"
        )
        for i in range(1, 6):
            conn.execute(
                "INSERT INTO thing VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    i,
                    i % 2,
                    10 + i,
                    i / 4,
                    f"2024-01-0{i} 03:04:05",
                    f"2024-02-0{i}",
                    f'{{"i": {i}}}',
                    1_700_000_000 + i,
                ),
            )
    return path


def cut_over_now(path: Path, dsn: str) -> None:
    """`pgferry migrate cutover` (its own applier catches up, then reverse capture and the flip)."""
    assert cutover(path, dsn, options=CutoverOptions(backoff_s=0.05)).cut_over


def cut_over(path: Path, dsn: str, without_rowid: bool = False) -> Path:
    """A typed source started, caught up and cut over."""
    make_typed_source(path, without_rowid)
    started(path, dsn)
    cut_over_now(path, dsn)
    return path


def pg_write(dsn: str, statements: Sequence[Statement], one_transaction: bool = False) -> None:
    with psycopg.connect(dsn, autocommit=not one_transaction) as pg:
        for statement, params in statements:
            pg.execute(statement, params or None)  # no parameters: % is an operator


def reverse_caught_up(path: Path, dsn: str, batch_entries: int = 2_000) -> int:
    """The reverse applier until nothing is left; the entries applied."""
    applier = ReverseApplier(path, dsn, "public", batch_entries)
    try:
        return applier.run(until_caught_up=True)
    finally:
        applier.close()


def reverse_entries(dsn: str) -> int:
    with psycopg.connect(dsn) as pg:
        row = pg.execute("SELECT count(*) FROM pgferry.reverse_changelog").fetchone()
    assert row is not None
    return int(row[0])


def route_of(path: Path) -> Route:
    conn = sqlite3.connect(path)
    try:
        return read_route(conn).route
    finally:
        conn.close()
