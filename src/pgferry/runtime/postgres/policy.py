"""How a PostgreSQL database is reached and shared: the pool's size, a deadline for every wait, and
whether a PgBouncer in transaction pooling stands between the application and the server.

Every wait is bounded: a connection from the pool (`pool_wait_s`), a new connection
(`connect_timeout_s`), a statement on the server (`statement_timeout_ms`, sent as a startup option
when connecting directly), a dead peer (`tcp_user_timeout_ms`: unacknowledged data gives up), a
silent one (`keepalive_idle_s`: a statement whose answer never comes over a dead network is probed by
TCP keepalives and fails within about `keepalive_idle_s` + `tcp_user_timeout_ms`, not the kernel's
two hours).

`pgbouncer=True` is for PgBouncer in transaction pooling (Debian 12's 1.18): no protocol-level
prepared statements (`prepare_threshold=None`), no startup `options` (1.18 refuses them unless
told to ignore them: set statement_timeout on the role instead), and statements that leave state in
the server session (SET, LISTEN, session advisory locks...) are refused or logged, as
`session_state` says, because the next transaction may run on another server connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import conninfo_to_dict

PLACEHOLDERS = ("dollar", "percent")
SESSION_STATE = ("refuse", "warn")
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3


@dataclass(frozen=True)
class PostgresPolicy:
    """The knobs; nothing application-specific.

    `placeholders`: "dollar" sends statements with PostgreSQL's own `$1, $2` (psycopg's RawCursor):
    a parameter may appear twice, as SQLite's `?1` may, and `%` needs no escaping; "percent" is
    psycopg's usual `%s`.
    """

    pool_min: int = 2
    pool_max: int = 10
    pool_wait_s: float = 5.0  # a unit of work waits this long for a free connection, then Unavailable
    max_waiting: int = 0  # requests queued for a connection beyond which new ones are refused at once (0: no cap)
    connect_timeout_s: int = 5
    statement_timeout_ms: int | None = 30_000  # direct connections only (a startup option); None: the server's
    tcp_user_timeout_ms: int = 10_000
    keepalive_idle_s: int = 30  # idle seconds before TCP probes the server (then every 5 s, 3 probes)
    pgbouncer: bool = False
    session_state: str = "refuse"  # pgbouncer only: "refuse" (raise) or "warn" (log once per statement)
    placeholders: str = "dollar"
    application_name: str = "pgferry-runtime"
    max_lifetime_s: float = 3600.0
    max_idle_s: float = 600.0

    def __post_init__(self) -> None:
        if not 0 <= self.pool_min <= self.pool_max or self.pool_max < 1:
            raise ValueError(f"pool sizes: need 0 <= pool_min <= pool_max and pool_max >= 1, not {self}")
        if self.pool_wait_s <= 0 or self.connect_timeout_s < 1:
            raise ValueError("pool_wait_s must be above 0 and connect_timeout_s at least 1 (libpq's unit is seconds)")
        if self.keepalive_idle_s < 1:
            raise ValueError("keepalive_idle_s must be at least 1 (libpq's unit is seconds)")
        if self.placeholders not in PLACEHOLDERS:
            raise ValueError(f"placeholders must be one of {', '.join(PLACEHOLDERS)}, not {self.placeholders!r}")
        if self.session_state not in SESSION_STATE:
            raise ValueError(f"session_state must be one of {', '.join(SESSION_STATE)}, not {self.session_state!r}")

    @property
    def prepare_threshold(self) -> int | None:
        """psycopg's: None behind PgBouncer 1.18 (no protocol-level prepared statements), else its default 5."""
        return None if self.pgbouncer else 5

    def connect_kwargs(self, dsn: str = "") -> dict[str, Any]:
        """libpq and psycopg keyword arguments of every connection to `dsn` (rows and cursors are the
        database's). A keyword replaces the DSN's own value, so the DSN's `options` (a search_path, say)
        are kept in front of the statement timeout's."""
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": self.prepare_threshold,
            "connect_timeout": self.connect_timeout_s,
            "tcp_user_timeout": self.tcp_user_timeout_ms,
            "keepalives": 1,
            "keepalives_idle": self.keepalive_idle_s,
            "keepalives_interval": KEEPALIVE_INTERVAL_S,
            "keepalives_count": KEEPALIVE_COUNT,
            "application_name": self.application_name,
        }
        if not self.pgbouncer and self.statement_timeout_ms is not None:
            own = conninfo_to_dict(dsn).get("options") if dsn else None
            timeout = f"-c statement_timeout={int(self.statement_timeout_ms)}"
            kwargs["options"] = f"{own} {timeout}" if own else timeout
        return kwargs

    def describe(self) -> dict[str, Any]:
        """What `Database.settings()` lists of the policy (the server's values are read back beside it)."""
        return {
            "pool_min": self.pool_min,
            "pool_max": self.pool_max,
            "pool_wait_s": self.pool_wait_s,
            "connect_timeout_s": self.connect_timeout_s,
            "pgbouncer": self.pgbouncer,
            "prepare_threshold": self.prepare_threshold,
            "placeholders": self.placeholders,
            **({"session_state": self.session_state} if self.pgbouncer else {}),
        }
