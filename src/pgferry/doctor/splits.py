"""Splits that stopped following themselves: sync triggers a table rebuild removed, sides that differ.

A framework migration that rebuilds a split table drops its triggers without a word; from then on
old code's writes no longer reach the new tables (pgferry.split.repair). The doctor says so, with the
command that puts them back, or, once the sides differ, that they must be reconciled first.
"""

from __future__ import annotations

import sqlite3

from pgferry.doctor.report import Finding, Fix
from pgferry.split.repair import sync_states
from pgferry.sqlite.schema import Schema


def find_split_problems(conn: sqlite3.Connection, schema: Schema) -> list[Finding]:
    findings = []
    for state in sync_states(conn, schema):
        if state.rows_out_of_step:
            fix = Fix(
                f"{state.rows_out_of_step} row(s) differ between {state.table} and its new tables: writes reached "
                f"one side only. Decide which side is right, then `pgferry split DB {state.table} --repair "
                "--from table` (the table's values win) or `--from new` (the new tables')",
                auto=False,
            )
        else:
            fix = Fix(f"`pgferry split DB {state.table} --repair` re-creates them; nothing differs yet", auto=False)
        missing = len(state.missing_triggers)
        title = f"the split of {state.table}: " + (
            f"{missing} sync trigger(s) are gone (a table rebuild?)" if missing else "its two sides differ"
        )
        findings.append(
            Finding(
                "split_sync",
                "high",
                title,
                table=state.table,
                evidence={"missing_triggers": state.missing_triggers, "rows_out_of_step": state.rows_out_of_step},
                fix=fix,
            )
        )
    return findings
