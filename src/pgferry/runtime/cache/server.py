"""A throwaway Redis server on 127.0.0.1 (Debian's redis-server): for tests, benchmarks and the demo.

Like `pgferry.pg.pgbouncer.LocalPgBouncer`: a free port, a temporary directory, started for real and
stopped (SIGTERM, then SIGKILL) on exit, pass or fail. No persistence (a restarted server is empty,
as after a crash without an RDB file: the cache's epoch covers that), and `volatile-lru` eviction:
only keys with a TTL (cached values) are evicted, never the generation counters that keys embed.

    with throwaway_redis() as server:
        cache = Cache(server.url, CachePolicy(namespace="app"))
        server.kill(); server.start()   # a crash and a restart on the same port
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from pgferry.errors import ServerError
from pgferry.pg.account import end_process
from pgferry.pg.cluster import free_port

REDIS_SERVER = Path("/usr/bin/redis-server")
START_TIMEOUT_S = 15.0


@dataclass
class LocalRedis:
    """A redis-server in `directory`, owned by this process (no daemonize: stop() ends it)."""

    directory: Path
    port: int = 0
    maxmemory_mb: int = 256
    binary: Path = REDIS_SERVER
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def logfile(self) -> Path:
        return self.directory / "redis.log"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (a bench counts its CPU time)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LocalRedis:
        """Start (or start again, on the same port) and wait until it answers PING."""
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [
            str(self.binary),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--maxmemory", f"{self.maxmemory_mb}mb",
            "--maxmemory-policy", "volatile-lru",
            "--logfile", str(self.logfile),
            "--protected-mode", "yes",
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=self.directory)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise ServerError(f"redis-server exited with {self._proc.returncode}: {self._log_tail()}")
                try:
                    if client.config_get("dir").get("dir") == str(self.directory):  # ours, not another's
                        return
                    why = f"another Redis answers on port {self.port}"
                except redis.RedisError as exc:
                    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if time.monotonic() > deadline:
                    raise ServerError(f"redis-server did not accept connections: {why}")
                time.sleep(0.05)
        finally:
            client.close()

    def _log_tail(self) -> str:
        lines = self.logfile.read_text(errors="replace").splitlines() if self.logfile.exists() else []
        return " | ".join(lines[-5:]) or "no output"

    def kill(self) -> None:
        """SIGKILL: a crash (the data, never persisted, is gone)."""
        self._end(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: Redis keeps its data and its connections but answers nothing until `resume()`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time; a stopped one stays stopped."""
        self._end(signal.SIGTERM)

    def _end(self, how: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        end_process(proc, how)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def throwaway_redis(**kwargs: int) -> Iterator[LocalRedis]:
    """A redis-server in a temporary directory, stopped and deleted on exit (even after an error)."""
    directory = Path(tempfile.mkdtemp(prefix="pgferry-redis-"))
    server = LocalRedis(directory, **kwargs)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
