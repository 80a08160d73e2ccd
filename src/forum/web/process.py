"""Run `forum serve` as a child process on a free loopback port: for the demo, the benchmark and tests.

The server runs in its own process, as in production, so its threads and the load generator's event
loop do not share one interpreter lock. Stopped with SIGINT (a clean uvicorn shutdown), killed if it
does not stop in time.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from pgferry.errors import ServerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    final_log: str | None = None  # the whole log, kept when the server stops (its file goes away)

    def log(self) -> str:
        return self.final_log if self.final_log is not None else self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text


@contextlib.contextmanager
def running_server(
    database: str | Path,
    mode: str,
    *,
    capture: str | Path | None = None,
    extra_args: tuple[str, ...] = (),
    start_timeout_s: float = 90.0,
    workers: int = 1,
) -> Iterator[RunningServer]:
    """`forum serve` until the block ends; with `workers` above 1, ready once every worker has answered."""
    port = free_port()
    command = [sys.executable, "-m", "forum", "serve", str(database), "--mode", mode, "--port", str(port), *extra_args]
    if workers > 1:
        command += ["--workers", str(workers)]
    if capture is not None:
        command += ["--capture", str(capture)]
    with tempfile.TemporaryDirectory(prefix="forum-serve-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
            server = RunningServer(f"http://127.0.0.1:{port}", proc, log_path)
            try:
                _wait_ready(server, start_timeout_s)
                if workers > 1:
                    answered = answering_pids(server.url, workers, start_timeout_s)
                    if len(answered) < workers or not all(_ours(server, pid) for pid in answered):
                        raise ServerError(
                            f"not all {workers} workers of forum serve answered within {start_timeout_s:g} s"
                            f" (answered: {sorted(answered)})"
                        )
                yield server
            finally:
                _stop(proc)
                server.final_log = log_path.read_text(errors="replace")


def _wait_ready(server: RunningServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"forum serve exited with code {server.process.returncode}: {server.log()[-500:]}")
        try:
            r = httpx.get(f"{server.url}/healthz", timeout=1)
            if r.status_code == 200 and _ours(server, r.json().get("pid")):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise ServerError(f"forum serve did not answer on {server.url} within {timeout_s:g} s")


def _ours(server: RunningServer, pid: object) -> bool:
    """Whether `pid` is the server or one of its workers: on a shared machine another process can take
    the free port between free_port() and the bind, and its /healthz must not pass for this server's."""
    if not isinstance(pid, int):
        return False
    if pid == server.process.pid:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1]) == server.process.pid  # field 4: the parent
    except (OSError, ValueError, IndexError):
        return False


def answering_pids(url: str, want: int, within_s: float = 60.0) -> dict[int, httpx.Response]:
    """pid -> its /healthz response, over fresh connections, until `want` processes have answered or
    `within_s` has passed (the kernel hands each connection to one worker; a worker still starting on
    a busy machine answers late, not never)."""
    seen: dict[int, httpx.Response] = {}

    def one(_: int) -> httpx.Response:
        r = httpx.get(f"{url}/healthz", timeout=10)  # a new connection each time
        r.raise_for_status()
        return r

    deadline = time.monotonic() + within_s
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(seen) < want and time.monotonic() < deadline:
            for r in pool.map(one, range(16)):
                seen.setdefault(int(r.json()["pid"]), r)
            time.sleep(0.1)
    return seen


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
