"""The proxy fixture does what the cutover and runtime tests will lean on: a connection through it
works, dies when it is cut, and a new one works once it is restored, on the same port."""

from __future__ import annotations

import psycopg
import pytest

from proxy import Proxy


def test_cut_drops_live_connections_and_refuses_new_ones(proxy: Proxy, pg_dsn: str) -> None:
    through = proxy.dsn(pg_dsn)
    assert str(proxy.port) in through and "password" in through
    with psycopg.connect(through, autocommit=True) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
        proxy.cut()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(through, connect_timeout=2)
    proxy.restore()
    with psycopg.connect(through, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert proxy.connections == 2  # the refused attempt never reached the server


def test_large_results_pass_through_whole(proxy: Proxy, pg_dsn: str) -> None:
    with psycopg.connect(proxy.dsn(pg_dsn)) as conn:
        rows = conn.execute("SELECT g, repeat('x', 1000) FROM generate_series(1, 5000) g").fetchall()
    assert len(rows) == 5000 and rows[-1] == (5000, "x" * 1000)
