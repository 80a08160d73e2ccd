"""Growth: how fast the file grows, and when it reaches a limit.

Nothing tells SQLite when a row was written, so each table's creation-time column is found from the
data: among columns holding ISO-8601 dates or Unix times (by their values, not their names), the one
that rises with the rowid (rank correlation on the sample) is the insertion clock. Rows per day come
from that column; bytes per row of a table (with its indexes) come from dbstat's page counts; the
file's size over time is then the sum over tables, anchored to the current page count. A least-
squares line over the last WINDOW_DAYS days gives bytes per day with a 95% interval, and days until
the limit follow.

The limit: `--size-limit`, or by default the free space of the file system that holds the database
(SQLite's own ceiling, max_page_count x page_size, is terabytes; a 2 GB limit is a quota, not SQLite).
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from pgferry.doctor.report import Finding, Fix
from pgferry.doctor.stats import SAMPLE_SCHEMA, Statistics
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident

WINDOW_DAYS = 180
MIN_POINTS = 30
MIN_CORRELATION = 0.8
EPOCH_LOW, EPOCH_HIGH = 946_684_800, 4_102_444_800  # 2000-01-01 .. 2100-01-01
ISO_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]*"
# two-sided 95% Student t quantiles for small samples; the normal 1.96 beyond
_T95 = {
    1: 12.71,
    2: 4.30,
    3: 3.18,
    4: 2.78,
    5: 2.57,
    6: 2.45,
    7: 2.36,
    8: 2.31,
    9: 2.26,
    10: 2.23,
    15: 2.13,
    20: 2.09,
    30: 2.04,
}


def _t95(dof: int) -> float:
    if dof <= 0:
        return math.inf
    for k in sorted(_T95):
        if dof <= k:
            return _T95[k]
    return 1.96


def _time_columns(statistics: Statistics, table: Table) -> list[tuple[str, str]]:
    """(column, 'iso' | 'epoch') for columns whose sampled values are all dates or Unix times."""
    target = f"{SAMPLE_SCHEMA}.{quote_ident(table.name)}"
    found = []
    for column in table.columns:
        c = quote_ident(column.name)
        filled, iso, epoch = statistics.conn.execute(
            f"SELECT count({c}), coalesce(sum(typeof({c}) = 'text' AND {c} GLOB ? AND julianday({c}) IS NOT NULL), 0), "
            f"coalesce(sum(typeof({c}) IN ('integer', 'real') AND {c} BETWEEN ? AND ?), 0) FROM {target}",
            (ISO_GLOB, EPOCH_LOW, EPOCH_HIGH),
        ).fetchone()
        if filled >= 10 and iso == filled:
            found.append((column.name, "iso"))
        elif filled >= 10 and epoch == filled and column.name not in table.primary_key:
            found.append((column.name, "epoch"))
    return found


def _days_expr(column: str, kind: str) -> str:
    c = quote_ident(column)
    return f"julianday({c})" if kind == "iso" else f"({c} / 86400.0 + 2440587.5)"


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def insertion_clock(statistics: Statistics, table: Table) -> tuple[str, str, float] | None:
    """The time column that rises with the rowid: (column, kind, Spearman correlation), or None."""
    if table.without_rowid:
        return None
    statistics.sample(table.name)
    target = f"{SAMPLE_SCHEMA}.{quote_ident(table.name)}"
    best = None
    for column, kind in _time_columns(statistics, table):
        rows = statistics.conn.execute(
            f"SELECT rowid, {_days_expr(column, kind)} FROM {target} WHERE {quote_ident(column)} IS NOT NULL"
        ).fetchall()
        if len(rows) < 10:
            continue
        data = np.array(rows, dtype=float)
        if np.ptp(data[:, 1]) == 0:
            continue
        rho = float(np.corrcoef(_ranks(data[:, 0]), _ranks(data[:, 1]))[0, 1])
        if rho >= MIN_CORRELATION and (best is None or rho > best[2]):
            best = (column, kind, rho)
    return best


def _btree_bytes(conn: sqlite3.Connection, schema: Schema) -> dict[str, int] | None:
    """Bytes per table including its indexes, from dbstat (None when this SQLite lacks it)."""
    owner = {t.name: t.name for t in schema.tables}
    for table in schema.tables:
        for index in table.indexes:
            owner[index.name] = table.name
    try:
        rows = conn.execute("SELECT name, pgsize FROM dbstat('main', 1)").fetchall()
    except sqlite3.Error:
        return None
    out: dict[str, int] = {}
    for name, size in rows:
        owner_table = owner.get(name)
        if owner_table is not None:
            out[owner_table] = out.get(owner_table, 0) + size
    return out


def default_limit(path: str | Path) -> tuple[int, str]:
    """Free bytes of the file system holding `path` plus the file itself: where it stops growing."""
    file = Path(path).resolve()
    usage = shutil.disk_usage(file.parent)
    return usage.free + file.stat().st_size, f"free space of the file system holding {file.parent}"


def analyze_growth(
    conn: sqlite3.Connection,
    statistics: Statistics,
    schema: Schema,
    path: str | Path,
    settings: dict[str, Any],
    size_limit: int | None,
) -> tuple[list[Finding], dict[str, Any]]:
    """A growth finding (when a clock is found) and the chart data: daily size and the forecast line."""
    page_size = settings["page_size"]
    current = settings["page_count"] * page_size
    sizes = _btree_bytes(conn, schema)
    clocks: dict[str, tuple[str, str, float]] = {}
    daily: dict[int, float] = {}  # julian day -> bytes added that day
    rows_per_day: dict[str, float] = {}
    for table in schema.tables:
        clock = insertion_clock(statistics, table)
        if clock is None:
            continue
        clocks[table.name] = clock
        sample = statistics.sample(table.name)
        scale = sample.rows / max(sample.sample_rows, 1)
        table_bytes = sizes.get(table.name) if sizes else None
        if table_bytes is None:
            table_bytes = int(current * sample.rows / max(sum(statistics.rows(t.name) for t in schema.tables), 1))
        per_row = table_bytes / max(sample.rows, 1)
        counts = conn.execute(
            f"SELECT CAST({_days_expr(clock[0], clock[1])} + 0.5 AS INTEGER), count(*) FROM "
            f"{SAMPLE_SCHEMA}.{quote_ident(table.name)} WHERE {quote_ident(clock[0])} IS NOT NULL GROUP BY 1"
        ).fetchall()
        for day, count in counts:
            daily[day] = daily.get(day, 0.0) + count * scale * per_row
        last = max(d for d, _c in counts)
        recent = sum(c for d, c in counts if d > last - WINDOW_DAYS) * scale
        rows_per_day[table.name] = recent / min(WINDOW_DAYS, max(1, last - min(d for d, _c in counts) + 1))
    chart: dict[str, Any] = {"series": [], "forecast": []}
    if not daily:
        chart["no_forecast"] = "no time column rising with the rowid was found"
        return [], chart
    days = sorted(daily)
    cumulative = np.cumsum([daily[d] for d in days])
    untimed = current - cumulative[-1]  # tables without a clock, free pages, the header: constant
    sizes_over_time = cumulative + max(untimed, 0.0)
    # the last WINDOW_DAYS days, widened to hold at least MIN_POINTS days with rows
    start = min(days[-1] - WINDOW_DAYS, days[-MIN_POINTS] if len(days) >= MIN_POINTS else days[0])
    window = [i for i, d in enumerate(days) if d >= start]
    x = np.array([days[i] for i in window], dtype=float)
    y = sizes_over_time[window]
    chart["series"] = [[_date(d), round(float(v))] for d, v in zip(days, sizes_over_time, strict=True)]
    today = dt.date.today().isoformat()
    if chart["series"][-1][0] > today:
        chart["future_data"] = f"rows are dated up to {chart['series'][-1][0]}, after today ({today})"
    if len(x) < 3 or np.ptp(x) == 0:
        chart["no_forecast"] = f"rows on {len(x)} day(s) only: too few for a forecast"
        return [], chart
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    dof = len(x) - 2
    se = math.sqrt(float(residuals @ residuals) / dof / float(((x - x.mean()) ** 2).sum())) if dof > 0 else math.inf
    margin = _t95(dof) * se
    low, high = max(slope - margin, 0.0), slope + margin
    limit, source = (size_limit, "--size-limit") if size_limit else default_limit(path)
    sqlite_max = conn.execute("PRAGMA max_page_count").fetchone()[0] * page_size
    limit = min(limit, sqlite_max)

    def days_to(rate: float) -> float | None:
        return None if rate <= 0 else max(0.0, (limit - current) / rate)

    estimate, soonest, latest = days_to(slope), days_to(high), days_to(low)
    if estimate is None:
        chart["no_forecast"] = "the file is not growing over the last days of data: nothing to forecast"
    else:
        # drawn as far as the data reaches back (at least a year), so the data keeps its share of the chart
        shown = float(min(max(days[-1] - days[0], 365), 3650))
        horizon = min(max(estimate, 30.0), shown)
        step = max(1, int(horizon / 50))
        chart["forecast"] = [
            [_date(days[-1] + k), round(current + slope * k)] for k in range(0, int(horizon) + step, step)
        ]
        if estimate > horizon:
            chart["forecast_note"] = (
                f"the forecast line is drawn for {horizon:,.0f} days; the limit lies beyond, in {_days_text(estimate)}"
            )
    chart["limit_bytes"] = limit
    severity = "low"
    if soonest is not None and soonest < 90:
        severity = "high"
    elif soonest is not None and soonest < 365:
        severity = "medium"
    title = (
        f"{slope / 2**20:,.2f} MiB/day; {_days_text(estimate)} until {_size(limit)} ({source})"
        if estimate is not None
        else "the file is not growing over the last days of data"
    )
    evidence = {
        "size_bytes": current,
        "bytes_per_day": round(float(slope)),
        "bytes_per_day_95": [round(float(low)), round(float(high))],
        "days_to_limit": _round(estimate),
        "days_to_limit_95": [_round(soonest), _round(latest)],
        "limit_bytes": limit,
        "limit_source": source,
        "sqlite_max_bytes": sqlite_max,
        "window_days": int(np.ptp(x)) + 1,
        "last_day": _date(days[-1]),
        "clocks": {t: {"column": c, "kind": k, "rank_correlation": round(r, 3)} for t, (c, k, r) in clocks.items()},
        "rows_per_day": {t: round(v, 1) for t, v in sorted(rows_per_day.items(), key=lambda kv: -kv[1])},
        "bytes_by": "dbstat page counts" if sizes else "rows share of the file (dbstat unavailable)",
    }
    return [
        Finding(
            "growth",
            severity,
            title,
            evidence=evidence,
            fix=Fix(_growth_fix(rows_per_day)),
        )
    ], chart


def _growth_fix(rows_per_day: dict[str, float]) -> str:
    """Capacity advice naming this database's fastest-growing tables (by recent rows per day)."""
    fastest = [t for t, v in sorted(rows_per_day.items(), key=lambda kv: -kv[1]) if v > 0][:3]
    text = "plan capacity: raise the quota or move off SQLite before the earliest date"
    if fastest:
        text += f"; the tables growing fastest here ({', '.join(fastest)}) are where archiving or partitioning helps"
    return text


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _date(julian_day: float) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(julian_day - 2440588))).isoformat()


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"


def _days_text(days: float | None) -> str:
    if days is None:
        return "never"
    if days > 36_500:
        return "more than 100 years"
    return f"{days:,.0f} days"
