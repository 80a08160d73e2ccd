"""A throwaway PostgreSQL cluster on 127.0.0.1: initdb in a directory, a free port, pg_ctl.

Tests and the demo need a real server they own, and nothing more. The cluster is run by an
unprivileged user when the caller is root (PostgreSQL refuses to run as root), listens only on
loopback, and authenticates TCP connections with a password so that wrong-password paths can be
exercised for real. Modelled on what pytest-postgresql does, plus the user switch it lacks.

Every cluster can serve a streaming replica (`throwaway_replica`: `pg_basebackup -R` into a directory
of its own, started on its own port), because the runtime's replica reads are tested on a real one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
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
    # A replica can stream from any throwaway cluster (PostgreSQL 15's defaults, written down), and one
    # whose link was cut for a while catches up from the WAL kept here, without a replication slot.
    "wal_level": "replica",
    "max_wal_senders": "10",
    "wal_keep_size": "'256MB'",
}

# What a standby adds to its primary's settings: reconnect fast after a cut link, and tell the primary
# which rows its queries still read, so that vacuum there does not cancel them (a throwaway's trade).
STANDBY_SETTINGS: Mapping[str, str] = {
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "wal_retrieve_retry_interval": "'100ms'",
}
REPLICATION_HBA = "host    replication     all             127.0.0.1/32            scram-sha-256"


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

    def _run(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.directory,
            timeout=120,
            env=None if env is None else {**os.environ, **env},
            **as_server_account(),
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

    def _allow_replication(self) -> None:
        """The pg_hba line a replica on loopback connects with (initdb writes it today; a custom file may not)."""
        hba = self.datadir / "pg_hba.conf"
        lines = [line.split() for line in hba.read_text().splitlines()]
        if ["host", "replication", "all", "127.0.0.1/32", "scram-sha-256"] not in lines:
            with hba.open("a") as out:
                out.write(REPLICATION_HBA + "\n")

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
        self._allow_replication()
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

    def basebackup(
        self, primary: LocalCluster, *, upstream: tuple[str, int] | None = None, name: str = "replica"
    ) -> None:
        """Fill this (empty) cluster with `pg_basebackup -R` of the running `primary`, as a standby that
        streams from `upstream` (host, port: the primary itself, or a proxy in front of it).

        -R writes standby.signal and primary_conninfo; the conninfo goes into `settings` too, because
        start() rewrites postgresql.auto.conf. The password travels in the environment, never in argv.
        """
        if (self.datadir / "PG_VERSION").exists():
            raise ServerError(f"{self.datadir} already holds a cluster: a base backup needs an empty directory")
        self._prepare_directory()
        self._run(
            str(self.bindir / "pg_basebackup"),
            *("-D", str(self.datadir), "-h", primary.host, "-p", str(primary.port), "-U", primary.superuser),
            *("-X", "stream", "-c", "fast", "-R", "--no-sync"),
            env={"PGPASSWORD": primary.password, "PGCONNECT_TIMEOUT": "10"},
        )
        host, port = upstream or (primary.host, primary.port)
        link = make_conninfo(
            host=host, port=port, user=primary.superuser, password=primary.password, application_name=name
        )
        quoted = "'" + link.replace("'", "''") + "'"
        self.settings = {**primary.settings, **STANDBY_SETTINGS, "primary_conninfo": quoted}

    def wait_replayed(self, primary: LocalCluster, timeout_s: float = 30.0) -> None:
        """Wait until this replica has replayed everything `primary` had written when called.

        The target is the end of a WAL record written for the purpose (a logical message, which no one
        decodes here): an idle primary's insert position can sit just past a page header, where replay
        only arrives with the next record, up to 15 s later (the next running-xacts record).
        """
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_logical_emit_message(false, 'pgferry', '')::text").fetchone()
        target = row[0] if row else "0/0"
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            while True:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise ServerError(f"replica on port {self.port} did not replay up to {target} in {timeout_s:g} s")
                time.sleep(0.02)


@contextlib.contextmanager
def _throwaway(make: Callable[[Path], LocalCluster]) -> Iterator[LocalCluster]:
    """The cluster `make` prepares in a temporary directory, started, then stopped and deleted on exit
    (even after an error)."""
    directory = Path(tempfile.mkdtemp(prefix="pgferry-pg-"))
    cluster: LocalCluster | None = None
    try:
        cluster = make(directory)
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster is not None:
                cluster.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster(**kwargs: object) -> Iterator[LocalCluster]:
    """A cluster in a temporary directory, stopped and deleted on exit (even after an error)."""
    with _throwaway(lambda directory: LocalCluster(directory=directory, **kwargs)) as cluster:  # type: ignore[arg-type]
        yield cluster


@contextlib.contextmanager
def throwaway_replica(
    primary: LocalCluster, *, upstream: tuple[str, int] | None = None, name: str = "replica"
) -> Iterator[LocalCluster]:
    """A streaming replica of the running `primary` (pg_basebackup -R) on its own port and directory,
    streaming from `upstream` (default: the primary), caught up when it is given, stopped and deleted on
    exit. Its superuser and password are the primary's (a base backup copies the roles)."""

    def make(directory: Path) -> LocalCluster:
        replica = LocalCluster(
            directory=directory, host=primary.host, superuser=primary.superuser, password=primary.password,
            bindir=primary.bindir,
        )  # fmt: skip
        replica.basebackup(primary, upstream=upstream, name=name)
        return replica

    with _throwaway(make) as replica:
        replica.wait_replayed(primary)
        yield replica
