"""The two ways the forum runs its hot paths, chosen at start-up."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """`legacy` is the application as the plan found it; `optimized` is the plan's Week 1, done right.

    legacy: topic view N+1 (replies, then each reply's author), multi-step writes without a
    transaction, LIMIT/OFFSET pages, a fixed pool of 15 connections opened with the rollback journal
    and no busy timeout.
    optimized: topic view in one statement, multi-step writes in one BEGIN IMMEDIATE transaction,
    keyset pages, one connection per worker thread with WAL, busy_timeout, synchronous=NORMAL.
    """

    LEGACY = "legacy"
    OPTIMIZED = "optimized"
