"""Settings: what the file says (journal mode, page size, free pages, statistics) and what the
workload's connections set (busy_timeout, synchronous, foreign_keys, a journal mode that does not exist).

Per-connection settings are only known from PRAGMA statements in the workload. A driver can set
some of them without a statement (Python's sqlite3 sets the busy timeout from `timeout=`), so their
absence from the log is reported as "not seen", never as a fact about the application.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from pgferry.doctor.report import Finding, Fix
from pgferry.doctor.stats import Statistics
from pgferry.doctor.workload import WorkloadView
from pgferry.sqlite.schema import Schema

# Statistics whose row count is off by more than this factor are stale. ANALYZE under analysis_limit
# (what the fix runs) records an estimate, seen 2.3x off on a 2,000-row table: a tighter factor would
# call the fix's own result stale and ask for the same ANALYZE on every run.
STALE_RATIO = 10.0
FREELIST_SHARE = 0.10
FREELIST_MIN_BYTES = 1 << 20
ANALYZE_SQL = ["PRAGMA analysis_limit = 1000", "ANALYZE"]
_PRAGMA = re.compile(r"^PRAGMA\s+(?:\w+\.)?(\w+)\s*(?:=\s*|\(\s*)?'?\"?([\w.-]*)", re.IGNORECASE)


def read_settings(conn: sqlite3.Connection) -> dict[str, Any]:
    """The persistent settings of the file (the ones any connection sees)."""
    out: dict[str, Any] = {}
    for name in ("journal_mode", "page_size", "page_count", "freelist_count", "auto_vacuum", "user_version"):
        out[name] = conn.execute(f"PRAGMA main.{name}").fetchone()[0]
    out["auto_vacuum"] = {0: "none", 1: "full", 2: "incremental"}.get(out["auto_vacuum"], out["auto_vacuum"])
    return out


def workload_pragmas(view: WorkloadView | None) -> dict[str, Counter_t]:
    """{pragma name: {value: statements}} from the PRAGMA statements the workload ran."""
    seen: dict[str, dict[str, int]] = {}
    if view is None:
        return seen
    for text, count in view.pragmas.items():
        m = _PRAGMA.match(text)
        if m is None:
            continue
        name, value = m.group(1).lower(), m.group(2).lower()
        if not value:
            continue  # `PRAGMA busy_timeout` reads the setting; only an assignment sets it
        seen.setdefault(name, {})
        seen[name][value] = seen[name].get(value, 0) + count
    return seen


Counter_t = dict[str, int]


def find_pragma_problems(
    conn: sqlite3.Connection,
    schema: Schema,
    statistics: Statistics,
    view: WorkloadView | None,
) -> tuple[list[Finding], dict[str, Any]]:
    settings = read_settings(conn)
    pragmas = workload_pragmas(view)
    findings: list[Finding] = []
    mode = str(settings["journal_mode"]).lower()
    asked = pragmas.get("journal_mode", {})
    if "wal2" in asked:
        findings.append(
            Finding(
                "pragma",
                "medium",
                f"the application asks for journal_mode=WAL2, which released SQLite does not have: it is ignored "
                f"and the mode stays {mode}",
                evidence={
                    "setting": "journal_mode",
                    "requested": "wal2",
                    "in_force": mode,
                    "statements": asked["wal2"],
                },
                fix=Fix("ask for WAL (persistent: set once on the file) and read the mode back after setting it"),
            )
        )
    if mode not in ("wal", "memory"):
        findings.append(
            Finding(
                "pragma",
                "high" if view is not None and _writes(view) else "medium",
                f"journal_mode is {mode}: readers and the writer block each other; WAL lets reads go on during writes",
                evidence={"setting": "journal_mode", "in_force": mode},
                fix=Fix(
                    "switch the file to WAL (persistent); needs no other connection writing at that moment",
                    sql=["PRAGMA journal_mode = WAL"],
                    reverse_sql=[f"PRAGMA journal_mode = {mode.upper()}"],
                    auto=True,
                ),
            )
        )
    if view is not None:
        findings.extend(_connection_settings(pragmas, mode, view))
    findings.extend(_foreign_keys(conn, schema, pragmas, view))
    findings.extend(_space(settings))
    findings.extend(_statistics(schema, statistics))
    return findings, settings


def _writes(view: WorkloadView) -> bool:
    return any(info.kind == "write" for info in view.fingerprints.values())


def _connection_settings(pragmas: dict[str, Counter_t], mode: str, view: WorkloadView) -> list[Finding]:
    out = []
    busy = pragmas.get("busy_timeout")
    failed = sum(i.stats.errors for i in view.fingerprints.values())
    if not busy:
        out.append(
            Finding(
                "pragma",
                "medium" if failed else "low",
                "no PRAGMA busy_timeout seen in the workload: how long a writer waits for a locked database is "
                "then the driver's default (Python's sqlite3: 5 s, its timeout=5.0; the SQLite C API: 0, "
                "SQLITE_BUSY at once)",
                evidence={
                    "setting": "busy_timeout",
                    "seen_in_workload": False,
                    "failed_statements": failed,
                    "defaults": {"python sqlite3": "5000 ms (connect(timeout=5.0))", "sqlite C API": "0 ms"},
                    "caveat": "a driver sets it without a statement the capture sees (Python sqlite3: timeout=)",
                },
                fix=Fix(
                    "make the wait explicit: PRAGMA busy_timeout = 5000 (ms), or the driver's own setting "
                    "(sqlite3.connect(timeout=...)), on every connection the application opens"
                ),
            )
        )
    elif "0" in busy:
        out.append(
            Finding(
                "pragma",
                "medium",
                "the workload sets busy_timeout = 0: a locked database fails statements at once",
                evidence={"setting": "busy_timeout", "values": busy, "failed_statements": failed},
                fix=Fix("set PRAGMA busy_timeout = 5000 (ms) on every connection"),
            )
        )
    sync = pragmas.get("synchronous", {})
    if "off" in sync or "0" in sync:
        out.append(
            Finding(
                "pragma",
                "high",
                "synchronous=OFF: a power cut or OS crash can corrupt the database",
                evidence={"setting": "synchronous", "values": sync},
                fix=Fix("use synchronous=NORMAL with WAL (durable against application crashes, fast)"),
            )
        )
    elif mode == "wal" and ("full" in sync or "2" in sync):
        out.append(
            Finding(
                "pragma",
                "low",
                "synchronous=FULL in WAL mode syncs on every commit; NORMAL is safe against corruption in WAL",
                evidence={"setting": "synchronous", "values": sync},
                fix=Fix(
                    "PRAGMA synchronous = NORMAL on each connection (only the last commits before a power cut "
                    "can be lost)"
                ),
            )
        )
    return out


def _foreign_keys(
    conn: sqlite3.Connection, schema: Schema, pragmas: dict[str, Counter_t], view: WorkloadView | None
) -> list[Finding]:
    declared = sum(len(t.foreign_keys) for t in schema.tables)
    if not declared:
        return []
    enforced = pragmas.get("foreign_keys", {})
    on = any(v in ("on", "1", "true", "yes") for v in enforced)
    violations = 0
    cursor = conn.execute("PRAGMA foreign_key_check")
    while violations < 100_000:
        rows = cursor.fetchmany(1000)
        if not rows:
            break
        violations += len(rows)
    if on and not violations:
        return []
    known = view is not None
    enforcement = "enforced" if on else ("never turned on in the workload" if known else "unknown (no workload)")
    turn_on = "set PRAGMA foreign_keys = ON on every connection"
    if violations:
        count = f"{violations:,}{'+' if violations >= 100_000 else ''} rows violate them"
        fix = f"repair or delete the orphan rows (PRAGMA foreign_key_check lists them), then {turn_on}"
    else:
        count = "no row violates them"
        fix = turn_on[0].upper() + turn_on[1:] + " (no row needs repair first)"
    return [
        Finding(
            "pragma",
            "high" if violations else ("medium" if known else "low"),
            f"{declared} foreign keys declared, {count}; enforcement: {enforcement}",
            evidence={
                "setting": "foreign_keys",
                "declared": declared,
                "violations": violations,
                "violations_capped": violations >= 100_000,
                "enforcement": enforcement,
            },
            fix=Fix(fix),
        )
    ]


def _space(settings: dict[str, Any]) -> list[Finding]:
    out = []
    page_size, pages, free = settings["page_size"], settings["page_count"], settings["freelist_count"]
    free_bytes = free * page_size
    if pages and free / pages >= FREELIST_SHARE and free_bytes >= FREELIST_MIN_BYTES:
        out.append(
            Finding(
                "pragma",
                "low",
                f"{free_bytes / 2**20:,.1f} MiB ({free / pages:.0%}) of the file is free pages "
                f"(auto_vacuum={settings['auto_vacuum']})",
                evidence={
                    "setting": "freelist_count",
                    "free_pages": free,
                    "page_count": pages,
                    "free_bytes": free_bytes,
                    "auto_vacuum": settings["auto_vacuum"],
                },
                fix=Fix("VACUUM (or VACUUM INTO a new file) in a quiet window: it rewrites the whole file"),
            )
        )
    if page_size < 4096:
        out.append(
            Finding(
                "pragma",
                "low",
                f"page_size is {page_size}: 4096 matches the file-system block and halves b-tree depth here",
                evidence={"setting": "page_size", "in_force": page_size},
                fix=Fix("PRAGMA page_size = 4096 then VACUUM (rewrites the file)"),
            )
        )
    return out


def _statistics(schema: Schema, statistics: Statistics) -> list[Finding]:
    indexed = [t for t in schema.tables if t.indexes]
    if not indexed:
        return []
    if not statistics.stat1:
        return [
            Finding(
                "pragma",
                "medium",
                "no sqlite_stat1: the planner guesses every table's size and every index's selectivity",
                evidence={"setting": "sqlite_stat1", "present": False, "tables_with_indexes": len(indexed)},
                fix=Fix(
                    "ANALYZE, with analysis_limit so it samples instead of reading every index",
                    sql=ANALYZE_SQL,
                    auto=True,
                ),
            )
        ]
    stale = []
    for table in indexed:
        # A partial index's figure counts its own rows, not the table's: only full indexes say the size
        partial = {i.name for i in table.indexes if i.where is not None}
        figures = [
            int(stat.split()[0])
            for (t, i), stat in statistics.stat1.items()
            if t == table.name and i not in partial and stat.split() and stat.split()[0].isdigit()
        ]
        if partial and len(partial) == len(table.indexes) and not figures:
            continue  # only partial indexes: their figures cannot tell whether the statistics are stale
        actual = statistics.rows(table.name)
        recorded = max(figures) if figures else None
        if recorded is None and actual == 0:
            continue  # ANALYZE writes no row for an empty table: nothing to plan, nothing stale
        if recorded is None:
            stale.append({"table": table.name, "recorded_rows": None, "rows": actual})
        elif max(recorded, 1) * STALE_RATIO < actual or actual * STALE_RATIO < recorded:
            stale.append({"table": table.name, "recorded_rows": recorded, "rows": actual})
    if not stale:
        return []
    return [
        Finding(
            "pragma",
            "medium",
            f"sqlite_stat1 is stale or missing for {len(stale)} table(s)",
            evidence={"setting": "sqlite_stat1", "present": True, "stale": stale},
            fix=Fix("ANALYZE again (with analysis_limit)", sql=ANALYZE_SQL, auto=True),
        )
    ]
