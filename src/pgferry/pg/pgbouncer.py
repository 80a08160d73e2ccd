"""PgBouncer in front of one PostgreSQL server: the pgbouncer.ini (`render_ini`, for a user's own
PgBouncer and for the local one) and `LocalPgBouncer`, a throwaway PgBouncer on 127.0.0.1.

The defaults are the ones an application on pgferry.runtime wants: transaction pooling, a bounded
queue wait (`query_wait_timeout`: PgBouncer's own default of 120 s makes an exhausted pool look like a
hang), SCRAM logins. Debian 12 ships PgBouncer 1.18, which in transaction pooling keeps no session
state and has no protocol-level prepared statements: run the runtime with
`PostgresPolicy(pgbouncer=True)` behind it (docs/runtime.md).

    with throwaway_pgbouncer(cluster.dsn(), default_pool_size=2) as bouncer:
        db = PostgresDatabase(bouncer.dsn("app"), PostgresPolicy(pgbouncer=True))
        bouncer.show("POOLS")   # [{'database': 'app', 'cl_active': 1, 'sv_idle': 1, ...}]
"""

from __future__ import annotations

import contextlib
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from pgferry.errors import ServerError
from pgferry.pg.account import as_server_account, end_process, give_to_server_account
from pgferry.pg.cluster import free_port
from pgferry.pg.connect import connect, first_line, statement

PGBOUNCER = Path("/usr/sbin/pgbouncer")
POOL_MODES = ("session", "transaction", "statement")
AUTH_TYPES = ("scram-sha-256", "md5", "plain", "trust")
# what show() may ask the admin console (its SHOW takes a bare word, never a parameter)
SHOWABLE = frozenset(
    {"POOLS", "STATS", "STATS_TOTALS", "STATS_AVERAGES", "TOTALS", "MEM", "CLIENTS", "SERVERS", "DATABASES"}
    | {"USERS", "CONFIG", "LISTS", "VERSION", "SOCKETS", "ACTIVE_SOCKETS"}
)
_BARE_NAME = re.compile(r"[0-9A-Za-z_.-]+")
_BARE_VALUE = re.compile(r"[0-9A-Za-z_.:/-]+")
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class BouncerConfig:
    """What a pgbouncer.ini says, for one PostgreSQL server. Names follow PgBouncer's settings.

    `databases` maps client-side names to databases on the server; empty means the `*` fallback
    (any name a client asks for is the database of that name on the server).
    """

    server_host: str
    server_port: int = 5432
    listen_addr: str = "127.0.0.1"
    listen_port: int = 6432
    databases: Mapping[str, str] = field(default_factory=dict)
    pool_mode: str = "transaction"
    default_pool_size: int = 20  # server connections per (database, user)
    max_client_conn: int = 1000
    max_db_connections: int = 0  # 0: no cap per database beyond the pools'
    query_wait_timeout_s: int = 10  # a client queued this long for a server connection is refused
    query_timeout_s: int = 0  # 0: none (the server's statement_timeout bounds statements)
    server_idle_timeout_s: int = 600
    server_round_robin: bool = False  # hand out idle server connections in turn, not the last one freed
    auth_type: str = "scram-sha-256"
    auth_file: str = "userlist.txt"
    admin_users: tuple[str, ...] = ()
    listen_backlog: int = 128
    log_connections: bool = True  # a line per login and logout (off for thousands of clients)
    unix_socket_dir: str = ""  # "": no Unix socket (TCP only)
    pidfile: str | None = None
    logfile: str | None = None  # None: stderr

    def __post_init__(self) -> None:
        if self.pool_mode not in POOL_MODES:
            raise ValueError(f"pool_mode must be one of {', '.join(POOL_MODES)}, not {self.pool_mode!r}")
        if self.auth_type not in AUTH_TYPES:
            raise ValueError(f"auth_type must be one of {', '.join(AUTH_TYPES)}, not {self.auth_type!r}")
        if self.default_pool_size < 1 or self.max_client_conn < 1:
            raise ValueError("default_pool_size and max_client_conn must be at least 1")
        if min(self.query_wait_timeout_s, self.query_timeout_s, self.server_idle_timeout_s) < 0:
            raise ValueError("timeouts are seconds, 0 or more")
        if "pgbouncer" in self.databases:
            raise ValueError("the database name pgbouncer is PgBouncer's admin console")


def render_ini(config: BouncerConfig) -> str:
    """pgbouncer.ini for `config`, every value written as PgBouncer 1.18 reads it, with the reasons inline."""
    target = f"host={_value(config.server_host)} port={int(config.server_port)}"
    entries = (
        [f"{_name(name)} = {target} dbname={_value(dbname)}" for name, dbname in config.databases.items()]
        if config.databases
        else [f"* = {target}"]
    )
    lines = [
        "; written by pgferry (pgferry.pg.pgbouncer.render_ini)",
        "[databases]",
        *entries,
        "",
        "[pgbouncer]",
        f"listen_addr = {_line(config.listen_addr)}",
        f"listen_port = {int(config.listen_port)}",
        f"unix_socket_dir = {_line(config.unix_socket_dir)}",
        f"listen_backlog = {int(config.listen_backlog)}",
        f"auth_type = {config.auth_type}",
        f"auth_file = {_line(config.auth_file)}",
        f"admin_users = {', '.join(_line(user) for user in config.admin_users)}",
        "; transaction pooling: a server connection is a client's only for one transaction. PgBouncer 1.18",
        "; then keeps no session state (SET, LISTEN, session advisory locks, temp tables) and no",
        "; protocol-level prepared statements (1.21 adds them): psycopg needs prepare_threshold=None.",
        f"pool_mode = {config.pool_mode}",
        f"default_pool_size = {int(config.default_pool_size)}",
        f"max_client_conn = {int(config.max_client_conn)}",
        f"max_db_connections = {int(config.max_db_connections)}",
        "; a client waits this long in PgBouncer's queue for a server connection, then gets",
        "; 'query_wait_timeout' and is disconnected (PgBouncer's default, 120 s, looks like a hang)",
        f"query_wait_timeout = {int(config.query_wait_timeout_s)}",
        "; PgBouncer cancels a statement running this long and disconnects the client (0: off). Behind",
        "; 1.18 a client cannot send statement_timeout as a startup option: set it on the role instead",
        f"query_timeout = {int(config.query_timeout_s)}",
        f"server_idle_timeout = {int(config.server_idle_timeout_s)}",
        "; 1: idle server connections in turn (a client's next transaction is likely on another backend);",
        "; 0, the default: the one freed last (so one client alone keeps meeting the same backend)",
        f"server_round_robin = {int(config.server_round_robin)}",
        f"log_connections = {int(config.log_connections)}",
        f"log_disconnections = {int(config.log_connections)}",
    ]
    if config.pidfile is not None:
        lines.append(f"pidfile = {_line(config.pidfile)}")
    if config.logfile is not None:
        lines.append(f"logfile = {_line(config.logfile)}")
    return "\n".join(lines) + "\n"


def render_auth_file(secrets: Mapping[str, str]) -> str:
    """An auth_file: one `"user" "secret"` line each (a SCRAM verifier, an md5 hash or a password)."""
    return "".join(f"{_quoted(user)} {_quoted(secret)}\n" for user, secret in secrets.items())


def _line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"a pgbouncer.ini value cannot span lines: {text!r}")
    return text


def _name(name: str) -> str:
    """A client-side database name as a [databases] key. 1.18 refuses a quoted key (its manual says
    otherwise) and any character beyond these; the database on the server may be named anything."""
    if not _BARE_NAME.fullmatch(name):
        raise ValueError(
            f"PgBouncer 1.18 reads only letters, digits, _ . - in a client-side database name, not {name!r}:"
            " map a plain name to it ({'app': 'the real name'})"
        )
    return name


def _value(value: str) -> str:
    """A connect-string value: bare when it is plain, else in single quotes (a quote doubled)."""
    return value if _BARE_VALUE.fullmatch(value) else "'" + _line(value).replace("'", "''") + "'"


def _quoted(field_text: str) -> str:
    return '"' + _line(field_text).replace('"', '""') + '"'


def auth_secret(dsn: str) -> str | None:
    """What PgBouncer's auth_file should hold for the DSN's user: the server's SCRAM verifier when
    this login may read it (PgBouncer then passes SCRAM through and no password lands on disk), else
    the DSN's password; None when the DSN has none (a server that trusts the login)."""
    password = conninfo_to_dict(dsn).get("password")
    with connect(dsn) as conn:
        try:
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = current_user").fetchone()
        except psycopg.errors.InsufficientPrivilege:
            row = None
    verifier = row[0] if row else None
    if isinstance(verifier, str) and verifier.startswith("SCRAM-SHA-256$"):
        return verifier
    return str(password) if password else None


@dataclass
class LocalPgBouncer:
    """A PgBouncer in `directory` in front of the server `server_dsn` names, owned by this process.

    Clients log in as the DSN's user with its password (`dsn()`), which is also the admin console's
    user (`show()`). `nofile` raises the process's open-file limit (soft, up to the hard one) for a
    PgBouncer that must hold many clients: each is a file descriptor.
    """

    server_dsn: str
    directory: Path
    port: int = 0
    databases: Mapping[str, str] = field(default_factory=dict)  # empty: any database, by its own name
    default_pool_size: int = 2
    max_client_conn: int = 100
    query_wait_timeout_s: int = 10
    query_timeout_s: int = 0
    listen_backlog: int = 128
    log_connections: bool = True
    server_round_robin: bool = False
    nofile: int | None = None
    binary: Path = PGBOUNCER
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def ini(self) -> Path:
        return self.directory / "pgbouncer.ini"

    @property
    def logfile(self) -> Path:
        return self.directory / "pgbouncer.log"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServerError("PgBouncer is not running")
        return self._proc.pid

    @property
    def user(self) -> str:
        return str(conninfo_to_dict(self.server_dsn).get("user") or "postgres")

    def _config(self, secret: str | None) -> BouncerConfig:
        server = conninfo_to_dict(self.server_dsn)
        return BouncerConfig(
            server_host=str(server.get("host") or "127.0.0.1"),
            server_port=int(server.get("port") or 5432),
            listen_port=self.port,
            databases=self.databases,
            default_pool_size=self.default_pool_size,
            max_client_conn=self.max_client_conn,
            query_wait_timeout_s=self.query_wait_timeout_s,
            query_timeout_s=self.query_timeout_s,
            listen_backlog=self.listen_backlog,
            log_connections=self.log_connections,
            server_round_robin=self.server_round_robin,
            auth_type="scram-sha-256" if secret is not None else "trust",
            auth_file=str(self.directory / "userlist.txt"),
            admin_users=(self.user,),
        )

    def dsn(self, dbname: str | None = None) -> str:
        """A client DSN through PgBouncer (password included: do not log it); `dbname` defaults to the
        server DSN's."""
        server = conninfo_to_dict(self.server_dsn)
        name = dbname or str(server.get("dbname") or self.user)
        return make_conninfo(
            host="127.0.0.1", port=self.port, user=self.user, password=server.get("password"), dbname=name
        )

    def start(self) -> LocalPgBouncer:
        """Write the ini and auth file, start PgBouncer, and wait until its admin console answers (with
        this ini: a port another PgBouncer took is an error, not a success)."""
        if self._proc is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        secret = auth_secret(self.server_dsn)
        config = self._config(secret)
        auth = Path(config.auth_file)
        auth.write_text(render_auth_file({self.user: secret or ""}))
        auth.chmod(0o600)
        self.ini.write_text(render_ini(config))
        give_to_server_account(self.directory, auth, self.ini)
        with self.logfile.open("ab") as log:
            self._proc = subprocess.Popen(  # no -d: this process owns it, and stop() ends it
                [str(self.binary), str(self.ini)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.directory,
                preexec_fn=_open_files(self.nofile) if self.nofile else None,
                **as_server_account(),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServerError(f"pgbouncer exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                config = {row["key"]: row["value"] for row in self.show("CONFIG")}
                if config.get("conffile") == str(self.ini):  # ours, not another PgBouncer on that port
                    return
                why = f"another PgBouncer answers on port {self.port}"
            except psycopg.OperationalError as exc:
                why = first_line(exc)
            if time.monotonic() > deadline:
                raise ServerError(f"pgbouncer did not accept connections: {why}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        lines = self.logfile.read_text(errors="replace").splitlines() if self.logfile.exists() else []
        return " | ".join(lines[-5:]) or "no output"

    def show(self, what: str) -> list[dict[str, Any]]:
        """`SHOW what` on the admin console (POOLS, STATS, MEM...), one dict per row."""
        word = what.strip().upper()
        if word not in SHOWABLE:
            raise ValueError(f"show() knows {', '.join(sorted(SHOWABLE))}, not {what!r}")
        # the admin console speaks only the simple query protocol: psycopg uses it for a query without parameters
        with psycopg.connect(self.dsn("pgbouncer"), autocommit=True, connect_timeout=5) as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(statement(f"SHOW {word}"))
            return cur.fetchall()

    def stop(self) -> None:
        """Stop PgBouncer at once (SIGTERM: its immediate shutdown); a stopped one stays stopped."""
        proc, self._proc = self._proc, None
        end_process(proc)

    def __enter__(self) -> LocalPgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _open_files(limit: int) -> Callable[[], None]:
    """A preexec_fn that raises the child's soft open-file limit to `limit` (capped by the hard one)."""

    def raise_limit() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))

    return raise_limit


@contextlib.contextmanager
def throwaway_pgbouncer(server_dsn: str, **kwargs: Any) -> Iterator[LocalPgBouncer]:
    """A PgBouncer in a temporary directory in front of `server_dsn`, stopped and deleted on exit (even
    after an error)."""
    directory = Path(tempfile.mkdtemp(prefix="pgferry-pgbouncer-"))
    bouncer = LocalPgBouncer(server_dsn, directory, **kwargs)
    try:
        bouncer.start()
        yield bouncer
    finally:
        try:
            bouncer.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
