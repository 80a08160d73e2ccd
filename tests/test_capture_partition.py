"""`pgferry migrate start --partition` on a real PostgreSQL: the copy under capture makes the partitioned
table, and catch-up stays right when the key was widened with the partition column: writes during and
after the copy, an UPDATE that moves a row to another partition, a DELETE, then verify identical; a
cutover on widened keys is refused in one line; an applier killed mid-batch resumes to identical."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from capture_util import app, assert_same, caught_up, write
from pgferry.capture.cutover import cutover
from pgferry.capture.migration import start
from pgferry.capture.readiness import cutover_readiness
from pgferry.capture.rollback import rollback
from pgferry.capture.status import read_status
from pgferry.cli import main
from pgferry.errors import UsageError
from pgferry.events import Event
from pgferry.killpoints import ENV
from pgferry.migrate.options import CopyOptions
from reverse_fixtures import cut_over_now, pg_write

SPECS = ("ev=at:month", "daily=day:month")


def build(path: Path) -> Path:
    """ev: an INTEGER key without its partition column, a UNIQUE slug, an FK to users; daily: a key
    that holds its partition column already."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE ev (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), at TEXT NOT NULL,"
            " slug TEXT UNIQUE, body TEXT)"
        )
        conn.execute("CREATE TABLE daily (day TEXT NOT NULL, k INTEGER NOT NULL, v TEXT, PRIMARY KEY (k, day))")
        conn.execute("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')")
        for i in range(1, 301):
            conn.execute(
                "INSERT INTO ev VALUES (?, ?, ?, ?, ?)",
                (i, 1 + i % 2, f"2024-{1 + i % 6:02d}-{1 + i % 27:02d} 10:00:00", f"s{i}", f"b{i}"),
            )
        for i in range(1, 41):
            conn.execute("INSERT INTO daily VALUES (?, ?, ?)", (f"2024-0{1 + i % 4}-02", i, f"v{i}"))
    return path


def partition_of(dsn: str, table: str, key: int, column: str = "id") -> str:
    with psycopg.connect(dsn) as pg:
        row = pg.execute(f'SELECT tableoid::regclass::text FROM "{table}" WHERE "{column}" = %s', [key]).fetchone()
    assert row is not None
    return str(row[0])


def rows_of(dsn: str, key: int) -> int:
    with psycopg.connect(dsn) as pg:
        row = pg.execute("SELECT count(*) FROM ev WHERE id = %s", [key]).fetchone()
    assert row is not None
    return int(row[0])


def moves() -> list[tuple[str, tuple[object, ...]]]:
    """Every shape of write: inserts, updates in place, updates across partitions (and back), a slug
    handed from one row to another, a key change, deletes."""
    return [
        ("INSERT INTO ev VALUES (1001, 1, '2024-02-03 08:00:00', 'n1', 'new')", ()),
        ("UPDATE ev SET body = 'edited' WHERE id = 5", ()),
        ("UPDATE ev SET at = '2024-06-20 00:00:00' WHERE id = 6", ()),  # January -> June
        ("UPDATE ev SET at = '2024-03-01 00:00:00', body = 'moved twice' WHERE id = 7", ()),
        ("UPDATE ev SET at = '2024-05-01 00:00:00' WHERE id = 7", ()),
        ("UPDATE ev SET at = NULL WHERE id = 8 AND 0", ()),  # NOT NULL: a no-op, still a statement
        ("UPDATE ev SET slug = NULL WHERE id = 9", ()),
        ("UPDATE ev SET slug = 's9', at = '2024-04-04 04:00:00' WHERE id = 10 AND slug = 's10'", ()),
        ("UPDATE ev SET id = 2002 WHERE id = 11", ()),
        ("DELETE FROM ev WHERE id IN (12, 1001)", ()),
        ("INSERT INTO ev VALUES (1003, 2, '2023-12-31 23:59:59', 's12', 'old time')", ()),
        ("UPDATE daily SET day = '2024-04-09' WHERE k = 3", ()),
        ("DELETE FROM daily WHERE k = 4", ()),
        ("INSERT INTO daily VALUES ('2024-02-02', 3, 'same k, other day')", ()),
    ]


def options(widen: bool = True) -> CopyOptions:
    return CopyOptions(jobs=1, chunk_rows=50, partitions=SPECS, partition_widen_keys=widen)


def test_writes_during_and_after_the_copy_reach_partitioned_tables(tmp_path: Path, pg_dsn: str) -> None:
    path = build(tmp_path / "app.db")
    writer = app(path)
    lock = threading.Lock()
    done: list[bool] = []

    def in_the_copy(event: Event) -> None:  # the snapshot is taken, rows are moving
        with lock:
            if event.phase == "copy" and not done:
                for i in range(40, 60):
                    writer.execute("UPDATE ev SET at = '2024-06-15 12:00:00', body = 'during' WHERE id = ?", (i,))
                writer.execute("DELETE FROM ev WHERE id = 61")
                writer.execute("INSERT INTO ev VALUES (900, 1, '2024-01-09 00:00:00', 'd900', 'during')")
                done.append(True)

    start(path, pg_dsn, options(), in_the_copy)
    assert done
    writer.close()
    assert partition_of(pg_dsn, "ev", 41) == partition_of(pg_dsn, "ev", 5) != partition_of(pg_dsn, "ev", 6)
    assert_same(path, pg_dsn)
    january = partition_of(pg_dsn, "ev", 6)
    write(path, moves())
    caught_up(path, pg_dsn)
    assert_same(path, pg_dsn)
    assert partition_of(pg_dsn, "ev", 6) != january  # moved, and the old partition's row is gone
    assert rows_of(pg_dsn, 6) == rows_of(pg_dsn, 7) == 1
    assert rows_of(pg_dsn, 11) == rows_of(pg_dsn, 12) == 0
    result = CliRunner().invoke(main, ["verify", str(path), pg_dsn])
    assert result.exit_code == 0, result.output
    for full in ([], ["--full"]):  # the changed keys, then every row
        result = CliRunner().invoke(main, ["migrate", "verify", *full, str(path), pg_dsn])
        assert result.exit_code == 0, result.output
    with psycopg.connect(pg_dsn) as pg:  # the held-back UNIQUE (slug), built widened on the partitioned table
        defs = [
            r[0]
            for r in pg.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ev'::regclass")
        ]
    assert "UNIQUE (slug, at)" in defs and "PRIMARY KEY (id, at)" in defs, defs
    with pytest.raises(UsageError, match="partition-widen-keys"):
        cutover(path, pg_dsn)
    shown = cutover_readiness(read_status(path, pg_dsn, "public"), "sqlite", max_lag_s=3600)
    assert not shown.ready and any("--partition-widen-keys" in r for r in shown.reasons)  # the dashboard agrees


def test_migrate_start_takes_the_partition_options(tmp_path: Path, pg_dsn: str) -> None:
    path = build(tmp_path / "app.db")
    args = ["migrate", "start", str(path), pg_dsn, "--until-caught-up", "--partition", "daily=day:month"]
    result = CliRunner().invoke(main, [*args, "--partition", "ev=at:week"])
    assert result.exit_code == 2, result.output  # ev's key and slug lack `at`: refused, nothing copied
    assert "partition-widen-keys" in result.output and "Traceback" not in result.output
    with sqlite3.connect(path) as conn:  # refused before capture was installed
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '_pgferry%'").fetchall()
    result = CliRunner().invoke(main, [*args, "--partition-ahead", "1"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(pg_dsn) as pg:
        kind = pg.execute("SELECT relkind FROM pg_class WHERE oid = 'daily'::regclass").fetchone()
    assert kind is not None and kind[0] == "p"
    write(path, moves()[-3:])
    caught_up(path, pg_dsn)
    assert_same(path, pg_dsn)


def test_a_partitioned_table_whose_key_holds_the_column_cuts_over_and_rolls_back(tmp_path: Path, pg_dsn: str) -> None:
    path = build(tmp_path / "app.db")
    start(path, pg_dsn, CopyOptions(jobs=1, partitions=("daily=day:month",)))
    cut_over_now(path, pg_dsn)
    pg_write(
        pg_dsn,
        [
            ("INSERT INTO daily VALUES ('2024-03-03', 500, 'on postgres')", ()),
            ("UPDATE daily SET day = '2024-06-06' WHERE k = 5", ()),  # another partition, another key
            ("UPDATE daily SET v = 'edited' WHERE k = 6", ()),
            ("DELETE FROM daily WHERE k = 7", ()),
        ],
    )
    rollback(path, pg_dsn)
    assert_same(path, pg_dsn)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT day FROM daily WHERE k = 5").fetchall() == [("2024-06-06",)]
        assert conn.execute("SELECT count(*) FROM daily WHERE k IN (7, 500)").fetchone() == (1,)


def test_an_applier_killed_mid_move_resumes_to_identical(tmp_path: Path, pg_dsn: str) -> None:
    path = build(tmp_path / "app.db")
    start(path, pg_dsn, options())
    # rows moved across partitions and back, spread over several 20-entry batches
    write(
        path, [(f"UPDATE ev SET at = '2024-0{1 + i % 6}-15 00:00:00' WHERE id = ?", (i % 50 + 1,)) for i in range(120)]
    )
    command = [sys.executable, "-m", "pgferry", "migrate", "follow", str(path), pg_dsn, "--until-caught-up"]
    env = {**os.environ, ENV: "apply:before_commit@3"}
    killed = subprocess.run([*command, "--batch", "20"], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    caught_up(path, pg_dsn, batch_entries=20)
    assert_same(path, pg_dsn)
    assert max(rows_of(pg_dsn, i) for i in range(1, 51)) == 1
