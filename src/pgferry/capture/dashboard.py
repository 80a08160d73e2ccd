"""`pgferry migrate status --serve PORT`: a live page on loopback with the migration's phase, route, lag
and apply-rate charts, verify state, WAL and changelog sizes, and whether a cutover may start now (and
why not). A sampler thread reads the status (both databases, as `status` does) every second into a
bounded history; the page fetches `/status.json` every second and redraws without a reload. `/metrics`
serves the same state for Prometheus (pgferry.capture.metrics).
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from pgferry.capture.metrics import MigrationCollector
from pgferry.capture.readiness import cutover_readiness
from pgferry.capture.status import read_status
from pgferry.errors import PgferryError
from pgferry.runtime.route import read_route
from pgferry.sqlite.connect import open_readonly

HISTORY = 600  # samples kept (ten minutes at one a second)


class Dashboard:
    def __init__(
        self,
        path: str | Path,
        dsn: str,
        schema: str,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        max_lag_s: float = 1.0,
        sample_s: float = 1.0,
    ) -> None:
        self.path, self.dsn, self.schema = Path(path), dsn, schema
        self.max_lag_s, self.sample_s = max_lag_s, sample_s
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.latest: dict[str, Any] = {"error": "no sample yet"}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.registry = CollectorRegistry()
        self.registry.register(MigrationCollector(self.path, dsn, schema))
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.url = f"http://{host}:{self.server.server_port}/"
        self.threads = [
            threading.Thread(target=self.server.serve_forever, name="dashboard-http", daemon=True),
            threading.Thread(target=self._sample_forever, name="dashboard-sampler", daemon=True),
        ]

    def start(self) -> Dashboard:
        self.sample()
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self.threads:
            thread.join(10)

    def _sample_forever(self) -> None:
        while not self.stopping.wait(self.sample_s):
            self.sample()

    def sample(self) -> None:
        """Read the status now; an error (a server down) is shown on the page, not raised."""
        try:
            status = read_status(self.path, self.dsn, self.schema)
            conn = open_readonly(self.path)
            try:
                route = read_route(conn).route.value
            finally:
                conn.close()
        except PgferryError as exc:
            with self.lock:
                self.latest = {**self.latest, "error": str(exc), "at": time.time()}
            return
        ready = cutover_readiness(status, route, self.max_lag_s)
        point = {
            "at": time.time(),
            "lag_changes": status.lag_changes,
            "lag_seconds": status.lag_seconds,
            "applied_per_s": status.applied_per_s,
        }
        with self.lock:
            self.history.append(point)
            self.latest = {
                "status": status.as_dict(),
                "route": route,
                "cutover": {"ready": ready.ready, "reasons": ready.reasons, "max_lag_s": self.max_lag_s},
                "error": None,
                "at": point["at"],
            }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**self.latest, "history": list(self.history)}


def _handler(board: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            elif self.path == "/status.json":
                self._send(200, "application/json", json.dumps(board.snapshot(), default=str).encode())
            elif self.path == "/metrics":
                self._send(200, "text/plain; version=0.0.4", generate_latest(board.registry))
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # no line per request on the terminal

    return Handler


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pgferry migrate</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 18px; margin: 0 0 12px; }
.grid { display: grid; grid-template-columns: repeat(4, minmax(140px, 1fr)); gap: 8px; margin-bottom: 16px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
.card b { display: block; font-size: 18px; }
.ready { color: #176f2c; } .blocked { color: #a3261b; }
canvas { border: 1px solid #ddd; border-radius: 6px; margin: 0 16px 16px 0; }
#error { color: #a3261b; }
</style></head>
<body>
<h1>pgferry migrate: <span id="source"></span></h1>
<div class="grid">
  <div class="card">phase<b id="phase">-</b></div>
  <div class="card">route<b id="route">-</b></div>
  <div class="card">lag<b id="lag">-</b></div>
  <div class="card">applied/s<b id="rate">-</b></div>
  <div class="card">changelog<b id="changelog">-</b></div>
  <div class="card">WAL<b id="wal">-</b></div>
  <div class="card">verify<b id="verify">-</b></div>
  <div class="card">cutover<b id="cutover">-</b></div>
</div>
<div id="why"></div>
<div><canvas id="lagchart" width="480" height="160"></canvas>
<canvas id="ratechart" width="480" height="160"></canvas></div>
<div id="error"></div>
<div id="updates" data-updates="0"></div>
<script>
let updates = 0;
function text(id, value) { document.getElementById(id).textContent = value; }
function chart(id, title, points) {
  const c = document.getElementById(id), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  g.fillStyle = "#555"; g.fillText(title, 8, 14);
  c.dataset.points = points.length;
  if (!points.length) return;
  const top = Math.max(1e-9, ...points);
  g.strokeStyle = "#2862b8"; g.lineWidth = 2; g.beginPath();
  points.forEach((v, i) => {
    const x = 8 + (c.width - 16) * (points.length > 1 ? i / (points.length - 1) : 1);
    const y = c.height - 8 - (c.height - 30) * (v / top);
    if (i) g.lineTo(x, y); else g.moveTo(x, y);
  });
  g.stroke(); g.fillText("max " + top.toFixed(2), c.width - 90, 14);
}
async function refresh() {
  try {
    const r = await fetch("/status.json", {cache: "no-store"});
    const d = await r.json();
    const s = d.status || {};
    text("source", (s.source || "") + " -> " + (s.target || "") + " (" + (s.schema || "") + ")");
    text("phase", s.phase || "-"); text("route", d.route || "-");
    const seconds = s.lag_seconds == null ? "-" : s.lag_seconds.toFixed(2) + " s";
    text("lag", (s.lag_changes ?? "-") + " changes, " + seconds);
    text("rate", s.applied_per_s == null ? "-" : Math.round(s.applied_per_s));
    text("changelog", (s.changelog_entries ?? "-") + " entries");
    text("wal", s.wal_bytes == null ? "-" : (s.wal_bytes / 1048576).toFixed(1) + " MiB");
    const v = s.verify;
    text("verify", v ? v.open_failures + " failures, " + v.passes + " passes" : "no pass yet");
    const cut = d.cutover || {ready: false, reasons: []};
    const el = document.getElementById("cutover");
    el.textContent = cut.ready ? "may start now" : "not now"; el.className = cut.ready ? "ready" : "blocked";
    text("why", cut.reasons.join("; "));
    const h = d.history || [];
    chart("lagchart", "lag, changes", h.map(p => p.lag_changes || 0));
    chart("ratechart", "applied per second", h.map(p => p.applied_per_s || 0));
    text("error", d.error || "");
    updates += 1;
    const u = document.getElementById("updates");
    u.dataset.updates = updates; u.textContent = "updated " + updates + " times";
  } catch (e) { text("error", "cannot read the status: " + e); }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""
