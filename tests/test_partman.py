"""pg_partman (Debian's postgresql-15-partman) keeping ahead the partitions a copy made: create_parent on
the existing partitioned table, then run_maintenance makes the next ones; rows land in them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify

EXTENSION = Path("/usr/share/postgresql/15/extension/pg_partman.control")


def months_ahead(n: int) -> date:
    today = datetime.now(UTC).date()
    month = today.month - 1 + n
    return date(today.year + month // 12, month % 12 + 1, 1)


@pytest.mark.skipif(not EXTENSION.exists(), reason="postgresql-15-partman is not installed (scripts/setup.sh)")
def test_pg_partman_takes_over_a_copied_partitioned_table(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE daily (day DATE NOT NULL, k INTEGER NOT NULL, v TEXT, PRIMARY KEY (k, day))")
        conn.executemany("INSERT INTO daily VALUES (?, ?, 'x')", [(f"2024-0{m}-02", m) for m in range(1, 7)])
    report = copy_and_verify(path, pg_dsn, CopyOptions(jobs=1, partitions=("daily=day:month",), partition_ahead=1))
    assert report.verify is None or report.verify.identical
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA partman")
        pg.execute("CREATE EXTENSION pg_partman SCHEMA partman")
        with pg.transaction():  # pg_partman 4.7 always makes {table}_default: the copy's one makes way
            pg.execute("ALTER TABLE daily DETACH PARTITION daily_default")
            pg.execute("ALTER TABLE daily_default RENAME TO daily_default_copied")
            pg.execute("SELECT partman.create_parent('public.daily', 'day', 'native', 'monthly', p_premake := 6)")
            pg.execute("INSERT INTO daily SELECT * FROM daily_default_copied")
            pg.execute("DROP TABLE daily_default_copied")
            pg.execute("COMMENT ON TABLE daily IS NULL")  # `pgferry partitions ensure` leaves it to pg_partman
        pg.execute("CALL partman.run_maintenance_proc()")
        far = months_ahead(5)
        pg.execute("INSERT INTO daily VALUES (%s, 999, 'ahead')", [far])
        row = pg.execute("SELECT tableoid::regclass::text FROM daily WHERE k = 999").fetchone()
        assert row is not None and row[0] == f"daily_p{far:%Y_%m}", row  # not the DEFAULT partition
        old = pg.execute("SELECT tableoid::regclass::text FROM daily WHERE k = 1").fetchone()
        assert old == ("daily_p2024_01",)  # the copy's partitions kept, rows not moved
