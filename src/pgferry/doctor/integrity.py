"""Structure: foreign keys with no index on the child side, tables without a primary key, and the
file's own consistency (PRAGMA quick_check: every b-tree page well formed, every index entry in order).

quick_check reads the whole file, so it runs on its own connection in a thread while the other
checks go on (SQLite releases the GIL while it works).
"""

from __future__ import annotations

import threading
from pathlib import Path

from pgferry.doctor.report import Finding, Fix
from pgferry.doctor.stats import Statistics
from pgferry.sqlite.busy import DEADLINE_S
from pgferry.sqlite.connect import open_readonly
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident

QUICK_CHECK_ROWS = 100


class QuickCheck:
    """PRAGMA quick_check in a background thread; `result()` waits for it."""

    def __init__(self, path: str | Path):
        self._rows: list[str] = []
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True, name="pgferry-quick-check")
        self._thread.start()

    def _run(self, path: str | Path) -> None:
        try:
            conn = open_readonly(path, lock_wait_s=DEADLINE_S)
            try:
                self._rows = [r[0] for r in conn.execute(f"PRAGMA quick_check({QUICK_CHECK_ROWS})")]
            finally:
                conn.close()
        except Exception as exc:  # reported as a finding, never raised from a thread
            self._error = str(exc)

    def result(self) -> list[Finding]:
        self._thread.join()
        problems = [r for r in self._rows if r != "ok"]
        if self._error:
            problems = [f"quick_check could not run: {self._error}"]
        if not problems:
            return []
        return [
            Finding(
                "integrity",
                "high",
                f"PRAGMA quick_check reports {len(problems)}{'+' if len(problems) >= QUICK_CHECK_ROWS else ''} "
                "problem(s)",
                evidence={"quick_check": problems},
                fix=Fix(
                    "copy the file aside, then recover it: `sqlite3 DB .recover | sqlite3 new.db`, or restore "
                    "from a backup; REINDEX repairs damaged indexes only"
                ),
            )
        ]


def _indexed_prefix(table: Table, columns: tuple[str, ...]) -> bool:
    """Some index (or the primary key) starts with exactly these columns, in any order."""
    wanted = {c.lower() for c in columns}
    if table.rowid_alias is not None and wanted == {table.rowid_alias.lower()}:
        return True
    keys = [tuple((c.name or "").lower() for c in i.columns) for i in table.indexes if i.where is None]
    if table.without_rowid:
        keys.append(tuple(c.lower() for c in table.primary_key))
    return any(set(k[: len(wanted)]) == wanted for k in keys)


def find_fk_without_index(schema: Schema, statistics: Statistics) -> list[Finding]:
    findings = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            if _indexed_prefix(table, fk.columns):
                continue
            rows = statistics.rows(table.name)
            cols = ", ".join(quote_ident(c) for c in fk.columns)
            name = f"idx_{table.name}_" + "_".join(fk.columns)
            cascades = fk.on_delete.upper() not in ("NO ACTION", "RESTRICT") or fk.on_update.upper() not in (
                "NO ACTION",
                "RESTRICT",
            )
            findings.append(
                Finding(
                    "fk_without_index",
                    "medium" if rows >= 10_000 or cascades else "low",
                    f"{table.name}({', '.join(fk.columns)}) references {fk.ref_table} with no index: each delete "
                    f"or key update of a {fk.ref_table} row scans {rows:,} rows when foreign keys are enforced",
                    table=table.name,
                    columns=list(fk.columns),
                    evidence={
                        "references": fk.ref_table,
                        "rows": rows,
                        "on_delete": fk.on_delete,
                        "on_update": fk.on_update,
                    },
                    fix=Fix(
                        "index the referencing columns",
                        sql=[f"CREATE INDEX {quote_ident(name)} ON {quote_ident(table.name)} ({cols})"],
                        reverse_sql=[f"DROP INDEX IF EXISTS {quote_ident(name)}"],
                    ),
                )
            )
    return findings


def find_no_primary_key(schema: Schema, statistics: Statistics) -> list[Finding]:
    findings = []
    for table in schema.tables:
        if table.primary_key:
            continue
        unique = [i for i in table.indexes if i.unique and i.where is None and all(c.name for c in i.columns)]
        candidate: list[str] | None = None
        for index in unique:
            if all(table.column(c.name).notnull for c in index.columns if c.name):
                candidate = [c.name for c in index.columns if c.name]
                break
        findings.append(
            Finding(
                "no_primary_key",
                "medium",
                f"{table.name} has no primary key: rows are known only by rowid, which VACUUM may renumber; "
                "replication, change capture and PostgreSQL need a key",
                table=table.name,
                evidence={"rows": statistics.rows(table.name), "unique_not_null_candidate": candidate},
                fix=Fix(
                    f"declare PRIMARY KEY ({', '.join(candidate)}) (a table rebuild)"
                    if candidate
                    else "add an INTEGER PRIMARY KEY column (a table rebuild keeping the rowids)"
                ),
            )
        )
    return findings
