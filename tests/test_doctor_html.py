"""The doctor's HTML report in a real browser (headless Chromium, Debian's chromium-headless-shell): at
1280 px nothing scrolls sideways, no table cell overflows (the fix column was cut off), no SVG label
runs past its chart ("% filled" was clipped), and every chart has data or says why not (the growth
chart drew a future date with no forecast and no word). A screenshot is taken of each page."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from doctor_app import build_library, run_app
from pgferry.doctor import diagnose
from pgferry.doctor.html import render_html

BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium (scripts/setup.sh installs it)")
WIDTH = 1280

# Runs in the page after layout; writes what the test checks into the DOM that --dump-dom prints.
_PROBE = """<script>
const out = {scroll: document.documentElement.scrollWidth, inner: innerWidth, cells: [], labels: []};
for (const td of document.querySelectorAll('td'))
  if (td.scrollWidth > td.clientWidth + 1) out.cells.push(td.textContent.slice(0, 80));
for (const svg of document.querySelectorAll('svg')) {
  const w = svg.viewBox.baseVal.width;
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBBox();
    if (b.x < -0.5 || b.x + b.width > w + 0.5) out.labels.push([t.textContent, b.x, b.width, w]);
  }
}
const probe = document.createElement('pre');
probe.id = 'probe';
probe.textContent = JSON.stringify(out);
document.body.appendChild(probe);
</script>"""


def _in_browser(html: str, tmp_path: Path, name: str) -> dict[str, object]:
    page = tmp_path / f"{name}.html"
    page.write_text(html.replace("</body>", _PROBE + "</body>"))
    args = [str(BROWSER), "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},900", "--hide-scrollbars"]
    shot = tmp_path / f"{name}.png"
    subprocess.run([*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=60, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run(
        [*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert m, dom[-2000:]
    result: dict[str, object] = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    return result


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r"<h2>(.*?)</h2>", html)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _assert_fits(html: str, tmp_path: Path, name: str) -> None:
    probe = _in_browser(html, tmp_path, name)
    assert probe["inner"] == WIDTH
    assert probe["scroll"] == WIDTH, f"horizontal scroll: {probe['scroll']} px in a {WIDTH} px window"
    assert probe["cells"] == [], "cells whose content is cut off"
    assert probe["labels"] == [], "chart labels past their chart's edge"
    charts = _sections(html)
    for title in ("Growth and forecast", "NULL map of wide tables", "Time per fingerprint"):
        body = charts[title]
        has_data = "<polyline" in body or "<rect" in body
        assert has_data or re.search(r'class="muted">No [^<]+: [^<]+', body), (title, body[:300])
    growth = charts["Growth and forecast"]
    if "<polyline" in growth and "forecast (least squares" not in growth:
        assert "No forecast: " in growth, "a size line with no forecast must say why"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("library")
    db = build_library(base / "library.db", defects=True)
    conn = sqlite3.connect(db)  # a long identifier and long SQL, the shapes that overflowed the fix column
    long = "archived_member_preference_" + "x" * 60
    conn.execute(f'CREATE TABLE "{long}" (id INTEGER PRIMARY KEY, "{long}_value" TEXT, a INT, b INT)')
    conn.execute(f'CREATE INDEX "{long}_idx" ON "{long}" (a)')
    conn.execute(f'CREATE INDEX "{long}_idx_again" ON "{long}" (a)')
    conn.commit()
    conn.close()
    return db, run_app(db, base / "capture.jsonl", defects=True)


def test_full_report_fits_1280_px(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, log = library
    report = diagnose(db, log)
    assert report.by_kind("wide_table") and report.by_kind("growth") and report.charts["fingerprints"]
    _assert_fits(render_html(report), tmp_path, "full")


def test_report_without_workload_or_clock_says_why_each_chart_is_empty(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.commit()
    conn.close()
    html = render_html(diagnose(db))
    assert "no workload given" in _sections(html)["Time per fingerprint"]
    _assert_fits(html, tmp_path, "plain")


@pytest.mark.parametrize("days", [2, 40], ids=["two_days", "future_dates"])
def test_growth_chart_explains_a_missing_forecast_or_future_dates(tmp_path: Path, days: int) -> None:
    """Rows on two days: a size line, and no forecast, said. Rows dated into next year: the chart says
    the data runs past today."""
    db = tmp_path / "g.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, created_at TEXT, body TEXT)")
    start = 2_462_000 if days > 2 else 2_460_000  # julian days: 2028 (after today) or 2023
    rows = [(f"{i}", "x" * 100) for i in range(200)]
    conn.executemany(
        "INSERT INTO e (created_at, body) VALUES (date(? + ?), ?)",
        [(start, int(i) * days // 200, body) for i, body in rows],
    )
    conn.commit()
    conn.close()
    report = diagnose(db)
    chart = report.charts["growth"]
    assert chart["series"]
    html = render_html(report)
    growth = _sections(html)["Growth and forecast"]
    if days == 2:
        assert not chart["forecast"] and "No forecast: rows on 2 day(s) only" in growth
    else:
        assert "after today" in growth
    _assert_fits(html, tmp_path, f"growth{days}")
