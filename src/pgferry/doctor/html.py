"""The doctor's report as one self-contained HTML page: no scripts, no CDN, charts as inline SVG.

Charts: the file's size over time with the forecast line and the limit, the NULL map of each wide
table (one bar per column, coloured by family), and time per fingerprint. A chart without data, or
without a forecast, says why. Every text that comes from the database or the workload is escaped.
The page fits a 1280 px window: the findings table has fixed column shares and long SQL wraps; SVGs
scale down and keep their labels inside (tests/test_doctor_html.py checks it in headless Chromium).
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any

from pgferry.doctor.html_postgres import postgres_section
from pgferry.doctor.report import Report

LABEL_CHARS = 30  # a column name in the NULL map's label column (the full name is its tooltip)
STATEMENT_CHARS = 130  # a fingerprint's line in the time chart, at 11 px in 900 px
_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;overflow-wrap:anywhere}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;table-layout:fixed}td,th{border-bottom:1px solid #eee;padding:4px 6px;
text-align:left;vertical-align:top;overflow-wrap:anywhere}
.high{color:#b00020;font-weight:600}.medium{color:#b36b00}.low{color:#555}
code,pre{font:12px ui-monospace,monospace;background:#f6f6f6}pre{padding:6px;white-space:pre-wrap;
overflow-wrap:anywhere;margin:4px 0}
details{margin:2px 0}.muted{color:#777}svg{max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif}
p,li{overflow-wrap:anywhere}
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
        why = chart.get("no_forecast") or "no time column rising with the rowid was found"
        return f'<p class="muted">No growth chart: {escape(why)}.</p>'
    points = series + forecast
    dates = sorted({p[0] for p in points})
    first, last = _day(dates[0]), _day(dates[-1])
    top = max(max(p[1] for p in points), 1)
    limit: float | None = chart.get("limit_bytes")
    if limit is not None and limit <= top * 1.5:
        top = max(top, limit)
    else:
        limit = None
    pad = 50

    def xy(date: str, value: float) -> str:
        x = pad + (width - pad - 10) * (_day(date) - first) / max(last - first, 1)  # time runs linearly
        y = height - 25 - (height - 40) * value / top
        return f"{x:.1f},{y:.1f}"

    parts = [_svg_open(width, height, "database size over time")]
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
    parts.append(f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{escape(dates[-1])}</text>')
    parts.append("</svg>")
    legend = f'<p class="muted"><span style="color:{_PALETTE[0]}">&#9632;</span> size from the data'
    if forecast:
        swatch = f'<span style="color:{_PALETTE[1]}">&#9632;</span>'
        legend += f" {swatch} forecast (least squares, from {escape(forecast[0][0])})"
    legend += "</p>"
    for key in ("no_forecast", "forecast_note", "future_data"):
        if chart.get(key):
            legend += f'<p class="muted">{"No forecast: " if key == "no_forecast" else ""}{escape(chart[key])}.</p>'
    return "".join(parts) + legend


def null_map_svg(table: str, data: dict[str, Any], width: int = 900) -> str:
    ratios: dict[str, float] = data["null_ratio"]
    family_of = {c: k for k, f in enumerate(data["families"]) for c in f["columns"]}
    if not ratios:
        return f'<p class="muted">No NULL map for {escape(table)}: it has no columns to measure.</p>'
    bar = 14
    height = bar * len(ratios) + 10
    label_w, value_w = 200, 90  # column names (shortened past LABEL_CHARS), "100% filled"
    track = width - label_w - value_w
    parts = [_svg_open(width, height, f"NULL map of {table}")]
    for i, (column, ratio) in enumerate(ratios.items()):
        y = 5 + i * bar
        filled = (1 - ratio) * track
        color = _PALETTE[1 + family_of[column] % (len(_PALETTE) - 1)] if column in family_of else _PALETTE[0]
        parts.append(f'<text x="2" y="{y + 10}"><title>{escape(column)}</title>{escape(_short(column))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{track}" height="{bar - 3}" fill="#eee"/>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{filled:.1f}" height="{bar - 3}" fill="{color}"/>')
        parts.append(f'<text x="{width - 2}" y="{y + 10}" text-anchor="end">{(1 - ratio):.0%} filled</text>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="color:{_PALETTE[1 + k % (len(_PALETTE) - 1)]}">&#9632;</span> {escape(f["name"])} '
        f"({escape(f['proposal'].replace('_', ' '))})"
        for k, f in enumerate(data["families"])
    )
    return "".join(parts) + f'<p class="muted"><span style="color:{_PALETTE[0]}">&#9632;</span> core {legend}</p>'


def fingerprint_svg(rows: list[dict[str, Any]], width: int = 900) -> str:
    """One row per fingerprint: its figures and statement on a line, the bar of its total time under it."""
    if not rows:
        return ""
    row_h = 30
    top = max(r["total_ms"] for r in rows) or 1.0
    parts = [_svg_open(width, row_h * len(rows) + 6, "time per fingerprint")]
    for i, row in enumerate(rows):
        y = 4 + i * row_h
        w = max((width - 4) * row["total_ms"] / top, 1.0)
        head = f"{row['total_ms']:,.1f} ms, {row['calls']:,} calls: "
        text = row["text"][: STATEMENT_CHARS - len(head)]
        text += "..." if len(row["text"]) > len(text) else ""
        parts.append(f'<text x="2" y="{y + 11}"><title>{escape(row["text"])}</title>{escape(head + text)}</text>')
        parts.append(f'<rect x="0" y="{y + 15}" width="{w:.1f}" height="10" fill="{_PALETTE[0]}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _day(iso_date: str) -> int:
    return dt.date.fromisoformat(iso_date).toordinal()


def _svg_open(width: int, height: int, label: str) -> str:
    """An SVG that keeps its aspect ratio when the page is narrower than it (viewBox, CSS max-width)."""
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">'
    )


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def render_html(report: Report, postgres: dict[str, Any] | None = None) -> str:
    """The one-page report; `postgres` (pgferry advise's AdviceReport.as_dict()) adds its section."""
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
        or '<p class="muted">No chart: no table has 20+ columns with a column family that could move out.</p>'
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in data["notes"])
    no_fingerprints = (
        '<p class="muted">No chart: the workload has no statements to time.</p>'
        if workload
        else '<p class="muted">No chart: no workload given (--workload FILE).</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pgferry doctor: {escape(data["database"])}</title>
<style>{_CSS}</style></head><body>
<h1>pgferry doctor: {escape(data["database"])}</h1>
<p>{escape(_size(data["size_bytes"]))}, {data["tables"]} tables, {data["indexes"]} indexes, SQLite
{escape(data["sqlite_version"])}; workload: {wl}.</p>
<p><b>Findings:</b> {summary}.</p>
<h2>Growth and forecast</h2>{growth_svg(charts.get("growth") or {})}
<h2>NULL map of wide tables</h2>{null_maps}
<h2>Time per fingerprint</h2>{fingerprint_svg(charts.get("fingerprints") or []) or no_fingerprints}
<h2>Findings</h2>
<table><colgroup><col style="width:7%"><col style="width:13%"><col style="width:14%"><col style="width:36%">
<col style="width:30%"></colgroup>
<thead><tr><th>severity</th><th>kind</th><th>subject</th><th>finding</th><th>fix</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Notes</h2><ul>{notes or "<li>none</li>"}</ul>
{postgres_section(postgres, charts.get("fingerprints") or []) if postgres else ""}
</body></html>
"""
