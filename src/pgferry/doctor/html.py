"""The doctor's report as one self-contained HTML page: no scripts, no CDN, charts as inline SVG.

Charts: the file's size over time with the forecast line and the limit, the NULL map of each wide
table (one bar per column, coloured by family), and time per fingerprint. Every text that comes
from the database or the workload is escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from pgferry.doctor.report import Report

_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;
vertical-align:top}
.high{color:#b00020;font-weight:600}.medium{color:#b36b00}.low{color:#555}
code,pre{font:12px ui-monospace,monospace;background:#f6f6f6}pre{padding:6px;white-space:pre-wrap}
details{margin:2px 0}.muted{color:#777}svg text{font:11px system-ui,sans-serif}
"""


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def growth_svg(chart: dict[str, Any], width: int = 900, height: int = 260) -> str:
    series, forecast = chart.get("series") or [], chart.get("forecast") or []
    if not series:
        return '<p class="muted">No time column rising with the rowid was found: no growth chart.</p>'
    points = series + forecast
    dates = sorted({p[0] for p in points})
    index = {d: i for i, d in enumerate(dates)}
    top = max(max(p[1] for p in points), 1)
    limit: float | None = chart.get("limit_bytes")
    if limit is not None and limit <= top * 1.5:
        top = max(top, limit)
    else:
        limit = None
    pad = 50

    def xy(date: str, value: float) -> str:
        x = pad + (width - pad - 10) * index[date] / max(len(dates) - 1, 1)
        y = height - 25 - (height - 40) * value / top
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="database size over time">']
    parts.append(f'<line x1="{pad}" y1="{height - 25}" x2="{width - 10}" y2="{height - 25}" stroke="#999"/>')
    parts.append(
        f'<polyline fill="none" stroke="{_PALETTE[0]}" stroke-width="2" points="'
        + " ".join(xy(d, v) for d, v in series)
        + '"/>'
    )
    if forecast:
        parts.append(
            f'<polyline fill="none" stroke="{_PALETTE[1]}" stroke-dasharray="5,4" stroke-width="2" points="'
            + " ".join(xy(d, v) for d, v in forecast)
            + '"/>'
        )
    if limit is not None:
        y = height - 25 - (height - 40) * limit / top
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="{_PALETTE[2]}"/>')
        parts.append(f'<text x="{pad + 4}" y="{y - 4:.1f}">limit {escape(_size(limit))}</text>')
    parts.append(f'<text x="2" y="14">{escape(_size(top))}</text>')
    parts.append(f'<text x="{pad}" y="{height - 8}">{escape(dates[0])}</text>')
    parts.append(f'<text x="{width - 80}" y="{height - 8}">{escape(dates[-1])}</text>')
    parts.append("</svg>")
    legend = (
        f'<p class="muted"><span style="color:{_PALETTE[0]}">&#9632;</span> size from the data '
        f'<span style="color:{_PALETTE[1]}">&#9632;</span> forecast (least squares)</p>'
    )
    return "".join(parts) + legend


def null_map_svg(table: str, data: dict[str, Any], width: int = 900) -> str:
    ratios: dict[str, float] = data["null_ratio"]
    family_of = {c: k for k, f in enumerate(data["families"]) for c in f["columns"]}
    bar = 14
    height = bar * len(ratios) + 10
    label_w = 190
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="NULL map of {escape(table)}">']
    for i, (column, ratio) in enumerate(ratios.items()):
        y = 5 + i * bar
        filled = (1 - ratio) * (width - label_w - 60)
        color = _PALETTE[1 + family_of[column] % (len(_PALETTE) - 1)] if column in family_of else _PALETTE[0]
        parts.append(f'<text x="0" y="{y + 10}">{escape(column)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{width - label_w - 60}" height="{bar - 3}" fill="#eee"/>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{filled:.1f}" height="{bar - 3}" fill="{color}"/>')
        parts.append(f'<text x="{width - 55}" y="{y + 10}">{(1 - ratio):.0%} filled</text>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="color:{_PALETTE[1 + k % (len(_PALETTE) - 1)]}">&#9632;</span> {escape(f["name"])} '
        f"({escape(f['proposal'].replace('_', ' '))})"
        for k, f in enumerate(data["families"])
    )
    return "".join(parts) + f'<p class="muted"><span style="color:{_PALETTE[0]}">&#9632;</span> core {legend}</p>'


def fingerprint_svg(rows: list[dict[str, Any]], width: int = 900) -> str:
    if not rows:
        return ""
    bar = 18
    top = max(r["total_ms"] for r in rows) or 1.0
    parts = [f'<svg width="{width}" height="{bar * len(rows) + 10}" role="img" aria-label="time per fingerprint">']
    for i, row in enumerate(rows):
        y = 5 + i * bar
        w = (width - 420) * row["total_ms"] / top
        parts.append(f'<rect x="0" y="{y}" width="{w:.1f}" height="{bar - 4}" fill="{_PALETTE[0]}"/>')
        text = row["text"][:70] + ("..." if len(row["text"]) > 70 else "")
        parts.append(
            f'<text x="{w + 4:.1f}" y="{y + 12}">{row["total_ms"]:,.1f} ms, {row["calls"]:,} calls: '
            f"{escape(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: Report) -> str:
    data = report.to_dict()
    counts = data["counts"]
    rows = []
    for f in data["findings"]:
        subject = " ".join(escape(str(f[k])) for k in ("table", "index") if f.get(k))
        fix = f.get("fix") or {}
        fix_html = escape(fix.get("description", ""))
        if fix.get("sql"):
            fix_html += "<pre>" + escape("\n".join(fix["sql"])) + "</pre>"
        if fix.get("plan"):
            fix_html += (
                "<details><summary>plan file</summary><pre>"
                + escape(json.dumps(fix["plan"], indent=2))
                + "</pre></details>"
            )
        evidence = escape(json.dumps(f["evidence"], indent=2, default=str))
        rows.append(
            f'<tr><td class="{f["severity"]}">{f["severity"]}</td><td>{escape(f["kind"])}'
            f"{'<br><span class=muted>' + escape(f['reason']) + '</span>' if f.get('reason') else ''}</td>"
            f"<td>{subject}</td><td>{escape(f['title'])}<details><summary>evidence</summary><pre>{evidence}</pre>"
            f"</details></td><td>{fix_html}</td></tr>"
        )
    summary = ", ".join(f"{v} {escape(k)}" for k, v in sorted(counts.items())) or "no findings"
    workload = data["workload"]
    wl = (
        f"{workload['statements']:,} statements, {workload['fingerprints']:,} fingerprints, "
        f"{workload['requests']:,} requests from {escape(workload['file'])}"
        if workload
        else "no workload given"
    )
    charts = data["charts"]
    null_maps = (
        "".join(f"<h3>{escape(t)}</h3>" + null_map_svg(t, d) for t, d in (charts.get("null_maps") or {}).items())
        or '<p class="muted">No wide table.</p>'
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in data["notes"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pgferry doctor: {escape(data["database"])}</title>
<style>{_CSS}</style></head><body>
<h1>pgferry doctor: {escape(data["database"])}</h1>
<p>{escape(_size(data["size_bytes"]))}, {data["tables"]} tables, {data["indexes"]} indexes, SQLite
{escape(data["sqlite_version"])}; workload: {wl}.</p>
<p><b>Findings:</b> {summary}.</p>
<h2>Growth and forecast</h2>{growth_svg(charts.get("growth") or {})}
<h2>NULL map of wide tables</h2>{null_maps}
<h2>Time per fingerprint</h2>{fingerprint_svg(charts.get("fingerprints") or []) or '<p class="muted">No workload.</p>'}
<h2>Findings</h2>
<table><thead><tr><th>severity</th><th>kind</th><th>subject</th><th>finding</th><th>fix</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Notes</h2><ul>{notes or "<li>none</li>"}</ul>
</body></html>
"""
