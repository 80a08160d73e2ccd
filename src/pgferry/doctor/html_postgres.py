"""The doctor's HTML report's PostgreSQL section: `pgferry advise` on the migrated database, with each
statement whose fingerprint the SQLite workload also has put side by side, its calls, mean time and
plan on each database (the same fingerprints on both sides: pgferry.workload.fingerprint)."""

from __future__ import annotations

from html import escape
from typing import Any


def postgres_section(advice: dict[str, Any], sqlite_fingerprints: list[dict[str, Any]]) -> str:
    """`advice`: AdviceReport.as_dict(); `sqlite_fingerprints`: the doctor's chart rows (id, text, calls,
    total_ms, plan)."""
    rows = []
    for p in advice["proposals"]:
        measured = [
            f"{h['measured_before_ms']:.2f} -> {h['measured_after_ms']:.2f} ms"
            for h in p["helps"]
            if h.get("measured_before_ms") is not None and h.get("measured_after_ms") is not None
        ]
        costs = "<br>".join(f"{h['cost_before']:,.0f} -> {h['cost_after']:,.0f}" for h in p["helps"])
        size = "-" if p["estimated_bytes"] is None else f"{p['estimated_bytes'] / 1024:,.0f} KiB"
        rows.append(
            f"<tr><td><pre>{escape(p['definition'])}</pre></td><td>{len(p['helps'])}</td><td>{costs}</td>"
            f"<td>{p['saved_ms']:,.1f}</td><td>{p['write_cost_ms']:,.1f}</td><td>{p['net_ms']:,.1f}</td>"
            f"<td>{size}</td><td>{escape('; '.join(measured)) or '-'}</td></tr>"
        )
    proposals = _table(
        ["index", "statements", "plan cost (HypoPG)", "saved ms", "write cost ms", "net ms", "size", "measured"],
        rows,
        "No index proposed.",
    )
    existing = "".join(
        f"<li>{escape(f['kind'])} index {escape(f['index'])} on {escape(f['table'])}"
        + (f" (by {escape(f['by'])})" if f["by"] else "")
        + f": <code>{escape(f['drop_sql'])}</code></li>"
        for f in advice["existing"]
    )
    reasons = "".join(
        f"<li><code>{escape(n['query'][:160])}</code>: {escape(n['reason'])}</li>" for n in advice["not_helped"]
    )
    on_sqlite = {row["id"]: row for row in sqlite_fingerprints}
    plans = advice.get("plans", {})
    pairs = [
        _pair(w, on_sqlite[w["fingerprint"]], plans.get(w["fingerprint"], []))
        for w in advice["workload"]
        if w["fingerprint"] in on_sqlite
    ]
    side = _table(
        [
            "statement",
            "SQLite calls",
            "SQLite mean ms",
            "SQLite plan",
            "PostgreSQL calls",
            "PostgreSQL mean ms",
            "PostgreSQL plan",
        ],
        pairs,
        "No statement of the SQLite workload has the same fingerprint on PostgreSQL.",
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in advice["notes"])
    native = native_section(advice.get("native", {"proposals": [], "refused": []}))
    return f"""<h2>PostgreSQL (pgferry advise)</h2>
<p>{advice["statements"]:,} statements from pg_stat_statements.</p>
<h3>Proposed indexes</h3>{proposals}
<h3>Existing indexes to drop</h3><ul>{existing or "<li>none</li>"}</ul>
<h3>Statements no proposal helps</h3><ul>{reasons or "<li>none</li>"}</ul>
{native}
<h3>The same statements on both sides</h3>{side}
<ul>{notes}</ul>
"""


def _pair(on_postgres: dict[str, Any], on_sqlite: dict[str, Any], postgres_plan: list[str]) -> str:
    """One statement of both workloads (the same fingerprint): its calls, mean time and plan on each side."""
    sqlite_mean = on_sqlite["total_ms"] / max(1, on_sqlite["calls"])
    return (
        f"<tr><td><code>{escape(on_postgres['query'][:160])}</code></td><td>{on_sqlite['calls']:,}</td>"
        f"<td>{sqlite_mean:,.3f}</td><td>{_plan(on_sqlite.get('plan') or [])}</td><td>{on_postgres['calls']:,}</td>"
        f"<td>{on_postgres['mean_ms']:,.3f}</td><td>{_plan(postgres_plan)}</td></tr>"
    )


def _plan(lines: list[str]) -> str:
    return f"<pre>{escape(chr(10).join(lines))}</pre>" if lines else "-"


def native_section(native: dict[str, Any]) -> str:
    """advise's PostgreSQL-native proposals (NativeReport.as_dict(): partitions, BRIN, trigram, value
    lists), each with its evidence, its cost and what carries it out; then what was refused and why."""
    rows = [
        f"<tr><td>{escape(p['kind'])}</td><td>{escape(p['table'])}.{escape(p['column'])}</td>"
        f"<td>{escape(p['summary'])}</td><td>{_evidence(p['evidence'])}</td>"
        f"<td>{'<br>'.join(escape(c) for c in p['cost']) or '-'}</td>"
        f"<td><pre>{escape(chr(10).join(p['sql']))}</pre></td></tr>"
        for p in native["proposals"]
    ]
    proposals = _table(
        ["kind", "column", "proposal", "evidence", "cost", "how"], rows, "No PostgreSQL-native change proposed."
    )
    refused = "".join(
        f"<li>{escape(r['kind'])} of {escape(r['table'])}"
        + (f".{escape(r['column'])}" if r["column"] else "")
        + f": {escape('; '.join(r['reasons']))}</li>"
        for r in native["refused"]
    )
    return f"""<h3>PostgreSQL-native schema</h3>{proposals}
<h4>Not proposed, and why</h4><ul>{refused or "<li>none</li>"}</ul>"""


def _evidence(evidence: dict[str, Any]) -> str:
    return "<br>".join(f"{escape(str(name))}: {escape(str(value))}" for name, value in evidence.items()) or "-"


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    """`rows` (each a <tr>) under `headers`, or the `empty` sentence when there are none."""
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
