"""A throwaway PostgreSQL cluster on 127.0.0.1: initdb in a directory, a free port, pg_ctl.

Tests and the demo need a real server they own, and nothing more. The cluster is run by an
unprivileged user when the caller is root (PostgreSQL refuses to run as root), listens only on
loopback, and authenticates TCP connections with a password so that wrong-password paths can be
exercised for real. Modelled on what pytest-postgresql does, plus the user switch it lacks.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import make_conninfo

from pgferry.errors import ServerError
from pgferry.pg.account import as_server_account, give_to_server_account

SEARCH_VERSIONS = ("15", "16", "17", "14")

# Durability off: a throwaway cluster trades crash safety for speed. Benchmarks that compare tools
# run them against the same cluster, so the comparison stays fair.
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "256MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "max_connections": "120",
    "shared_preload_libraries": "'pg_stat_statements'",
    "log_min_messages": "warning",
}


def find_bindir() -> Path:
    """Locate PostgreSQL's server binaries (Debian keeps them out of PATH)."""
    for version in SEARCH_VERSIONS:
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ServerError("PostgreSQL server binaries not found (initdb): run `make setup` to install postgresql-15")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in `directory`, owned by this process."""

    directory: Path
    port: int = 0
    host: str = "127.0.0.1"
    superuser: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    settings: Mapping[str, str] = field(default_factory=lambda: dict(FAST_SETTINGS))
    bindir: Path = field(default_factory=find_bindir)

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def socketdir(self) -> Path:
        return self.directory / "sock"

    @property
    def logfile(self) -> Path:
        return self.directory / "postgresql.log"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq DSN for `dbname` over TCP on loopback (password included: do not log it)."""
        return make_conninfo(host=self.host, port=self.port, user=self.superuser, password=self.password, dbname=dbname)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            args, capture_output=True, text=True, check=False, cwd=self.directory, timeout=120, **as_server_account()
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            log = self.logfile.read_text(errors="replace").splitlines()[-10:] if self.logfile.exists() else []
            raise ServerError(f"{Path(args[0]).name} failed: " + " | ".join(tail + log))
        return proc

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socketdir.mkdir(exist_ok=True)
        give_to_server_account(self.directory, self.socketdir)

    def initdb(self) -> None:
        """Create the cluster files (no-op when they already exist)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self._prepare_directory()
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        give_to_server_account(pwfile)
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.superuser,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_settings(self) -> None:
        lines = [f"{key} = {value}" for key, value in self.settings.items()]
        lines += [
            f"port = {self.port}",
            f"listen_addresses = '{self.host}'",
            f"unix_socket_directories = '{self.socketdir}'",
        ]
        (self.datadir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def start(self) -> LocalCluster:
        """initdb when needed, then start the server and wait until it accepts connections."""
        self.initdb()
        if not self.port:
            self.port = free_port(self.host)
        self._write_settings()
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown); a stopped cluster stays stopped."""
        if (self.datadir / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def throwaway_cluster(**kwargs: object) -> Iterator[LocalCluster]:
    """A cluster in a temporary directory, stopped and deleted on exit (even after an error)."""
    directory = Path(tempfile.mkdtemp(prefix="pgferry-pg-"))
    cluster = LocalCluster(directory=directory, **kwargs)  # type: ignore[arg-type]
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
