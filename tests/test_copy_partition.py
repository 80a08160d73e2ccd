"""copy --partition on a real PostgreSQL: the table made PARTITION BY RANGE, every row in the partition its
time says (ISO text with zones, epoch seconds, SQLite's datetime text), NULLs in DEFAULT, keys, indexes,
identity and verify as without partitions; bad input refused in one line with exit 2."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify
from pgferry.pg.partition_ranges import count_between, floor, following

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE zoned (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), at TEXT, body TEXT);
CREATE INDEX zoned_at ON zoned (at);
CREATE TABLE epochs (id INTEGER PRIMARY KEY, at DATETIME NOT NULL, n INTEGER);
CREATE TABLE plain (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, slug TEXT, UNIQUE (slug));
CREATE TABLE reads (id INTEGER PRIMARY KEY, zoned_id INTEGER REFERENCES zoned (id));
CREATE TABLE logs (at TEXT, msg TEXT);
CREATE TABLE nulls (id INTEGER PRIMARY KEY, at TEXT);
CREATE TABLE keyed (day TEXT NOT NULL, k INTEGER NOT NULL, v TEXT, PRIMARY KEY (k, day));
"""


def build(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ann"), (2, "bob")])
    # 2024-03-01T01:00:00+02:00 is 2024-02-29 23:00 UTC: the February partition, not March's.
    zoned = [
        (1, 1, "2024-01-15T10:00:00+02:00", "a"),
        (2, 2, "2024-03-01T01:00:00+02:00", "b"),
        (3, 1, "2024-04-30T23:30:00Z", "c"),
    ]
    conn.executemany("INSERT INTO zoned VALUES (?, ?, ?, ?)", zoned)
    epochs = [(i, 1704067200 + i * 86400 * 9, i) for i in range(1, 41)]  # 2024-01-01 + 9 days a row
    conn.executemany("INSERT INTO epochs VALUES (?, ?, ?)", epochs)
    conn.executemany(
        "INSERT INTO plain (at, slug) VALUES (datetime(?, 'unixepoch'), ?)",
        [(1717200000 + i * 3600, f"s{i}") for i in range(30)],
    )
    conn.executemany("INSERT INTO logs VALUES (?, ?)", [("2024-06-01", "early"), (None, "no time")])
    conn.executemany("INSERT INTO nulls VALUES (?, ?)", [(1, "2024-06-01 10:00:00"), (2, None)])
    conn.executemany("INSERT INTO reads VALUES (?, ?)", [(1, 1), (2, 3)])
    conn.executemany("INSERT INTO keyed VALUES (?, ?, ?)", [("2024-05-02", 1, "x"), ("2024-05-09", 2, "y")])
    conn.commit()
    conn.close()
    return path


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def partition_of(pg: psycopg.Connection, table: str, key: object, column: str = "id") -> str:
    row = pg.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = %s", [key]).fetchone()
    assert row is not None
    return str(row[0])


def partitions_of(pg: psycopg.Connection, table: str) -> list[str]:
    query = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass ORDER BY 1"
    return [r[0] for r in pg.execute(query, [table])]


def expected_count(unit: str, first: datetime, last: datetime, ahead: int = 3) -> int:
    upto = floor(unit, now())
    for _ in range(ahead):
        upto = following(unit, upto)
    return count_between(unit, first, max(last, upto))


def test_partitioned_copy_routes_rows_by_converted_time_and_verifies(tmp_path: Path, pg_dsn: str) -> None:
    source = build(tmp_path / "app.db")
    specs = ("zoned=at:month", "epochs=at:week", "plain=at:day", "keyed=day:month", "logs=at:month")
    options = CopyOptions(partitions=specs, partition_widen_keys=True, jobs=2)
    job = copy_and_verify(source, pg_dsn, options)
    assert job.verify is not None and job.verify.identical, job.verify
    notes = "\n".join(job.copy.notes)
    assert "zoned: PARTITION BY RANGE (at)" in notes and "rows whose at is NULL (1 now)" in notes.split("logs:")[1]
    assert "--partition-widen-keys added at to PRIMARY KEY (id)" in notes
    assert "keyed: --partition-widen-keys" not in notes  # its key holds `day` already
    assert any(s.kind == "foreign_key" and "reads(zoned_id) -> zoned" in s.name for s in job.copy.skipped)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("SET TimeZone = 'UTC'")
        kinds = dict(pg.execute("SELECT relname, relkind FROM pg_class WHERE relname IN ('zoned', 'users')"))
        assert kinds == {"zoned": "p", "users": "r"}
        assert partition_of(pg, "zoned", 1) == "zoned_p2024_01"
        assert partition_of(pg, "zoned", 2) == "zoned_p2024_02"  # the UTC instant decides, not the text
        assert partition_of(pg, "zoned", 3) == "zoned_p2024_04"
        assert partition_of(pg, "logs", "no time", "msg") == "logs_default"  # NULL: no range holds it
        assert partition_of(pg, "logs", "early", "msg") == "logs_p2024_06"
        assert partition_of(pg, "plain", 30) == "plain_p2024_06_02"
        assert partition_of(pg, "epochs", 1) == "epochs_p2024_01_08"  # 2024-01-10 is in the week of Monday the 8th
        assert pg.execute("SELECT count(*) FROM ONLY epochs_default").fetchone() == (0,)
        zoned = partitions_of(pg, "zoned")
        assert len(zoned) == expected_count("month", datetime(2024, 1, 15), datetime(2024, 4, 30)) + 1
        epochs = partitions_of(pg, "epochs")
        assert len(epochs) == expected_count("week", datetime(2024, 1, 10), datetime(2025, 1, 24)) + 1
        # keys and unique constraints hold the partition key; indexes reach every partition
        keys = dict(
            pg.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid IN ('zoned'::regclass, 'plain'::regclass, 'keyed'::regclass) AND contype IN ('p', 'u')"
            )
        )
        assert keys == {
            "zoned_pkey": "PRIMARY KEY (id, at)",
            "plain_pkey": "PRIMARY KEY (id, at)",
            "plain_slug_key": "UNIQUE (slug, at)",
            "keyed_pkey": "PRIMARY KEY (k, day)",
        }
        indexed = pg.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'zoned_p2024_02'::regclass "
            "AND indexrelid::regclass::text LIKE %s",
            ["zoned_p2024_02_at_idx%"],
        ).fetchone()
        assert indexed == (1,)
        fks = [
            r[0]
            for r in pg.execute("SELECT conname FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 ORDER BY 1")
        ]
        assert fks == ["zoned_user_id_fkey"]  # to users kept; reads -> zoned not carried (reported)
        # the identity restarted above the copied rows, inserts through the parent land in place
        row = pg.execute(
            "INSERT INTO zoned (at, body) VALUES ('2024-02-10 00:00:00+00', 'new') RETURNING id"
        ).fetchone()
        assert row == (4,)
        assert partition_of(pg, "zoned", 4) == "zoned_p2024_02"
        nxt = pg.execute("INSERT INTO plain (at, slug) VALUES (now(), 'x') RETURNING id").fetchone()
        assert nxt == (31,)
        pg.execute("DELETE FROM zoned WHERE id = 4")
        pg.execute("DELETE FROM plain WHERE id = 31")
    result = CliRunner().invoke(main, ["verify", str(source), pg_dsn, "--json"])
    assert result.exit_code == 0, result.output


def test_verify_sees_a_changed_value_in_a_partition(tmp_path: Path, pg_dsn: str) -> None:
    source = build(tmp_path / "app.db")
    options = CopyOptions(partitions=("epochs=at:month",), partition_widen_keys=True, jobs=1)
    assert copy_and_verify(source, pg_dsn, options).identical
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("UPDATE epochs SET n = 99 WHERE id = 7")
    result = CliRunner().invoke(main, ["verify", str(source), pg_dsn])
    assert result.exit_code == 1, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partition", "nope=at:month"], "no table 'nope' in the source"),
        (["--partition", "zoned=nope:month"], "table 'zoned' has no column 'nope'"),
        (["--partition", "zoned=body:month", "--partition-widen-keys"], "zoned.body becomes text"),
        (["--partition", "zoned=at:year"], "the unit must be one of month, week, day, not 'year'"),
        (["--partition", "zoned"], "--partition wants TABLE=COLUMN:UNIT"),
        (["--partition", "zoned=at:month"], "these lack it: PRIMARY KEY (id). Add --partition-widen-keys"),
        (["--partition", "plain=at:month"], "PRIMARY KEY (id); UNIQUE (slug)"),
        (["--partition-widen-keys"], "--partition-widen-keys goes with --partition"),
        (["--partition", "nulls=at:day", "--partition-widen-keys"], "nulls.at holds NULLs (1 rows)"),
    ],
)
def test_bad_partition_input_is_one_line_and_exit_2(tmp_path: Path, pg_dsn: str, args: list[str], message: str) -> None:
    source = build(tmp_path / "app.db")
    result = CliRunner().invoke(main, ["copy", str(source), pg_dsn, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    with psycopg.connect(pg_dsn) as pg:  # refused before anything was written
        assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_dry_run_shows_the_partitions(tmp_path: Path) -> None:
    source = build(tmp_path / "app.db")
    args = ["copy", str(source), "--dry-run", "--partition", "zoned=at:month", "--partition-widen-keys"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert 'PARTITION BY RANGE ("at");' in out
    assert (
        'CREATE TABLE "public"."zoned_p2024_02" PARTITION OF "public"."zoned" '
        "FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00');"
    ) in out
    assert 'CREATE TABLE "public"."zoned_default" PARTITION OF "public"."zoned" DEFAULT;' in out
    assert "-- NOT CARRIED foreign_key reads(zoned_id) -> zoned: zoned is partitioned by at" in out


def test_a_killed_partitioned_copy_resumes_with_its_partitions(tmp_path: Path, pg_dsn: str) -> None:
    source = build(tmp_path / "app.db")
    pgferry = str(Path(sys.executable).with_name("pgferry"))
    args = [pgferry, "copy", str(source), pg_dsn, "--jobs", "1", "--chunk-rows", "5"]
    env = {**os.environ, "PGFERRY_KILL_AT": "copy:after_chunk_commit@3"}
    first = subprocess.run(
        [*args, "--partition", "epochs=at:week", "--partition-widen-keys"], env=env, capture_output=True, timeout=120
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    with psycopg.connect(pg_dsn) as pg:
        made = partitions_of(pg, "epochs")
        assert made  # the partitions came with the table, before the first chunk
    resumed = subprocess.run([*args, "--resume", "--json"], capture_output=True, timeout=120, text=True)
    assert resumed.returncode == 0, resumed.stderr  # copied and verified identical
    with psycopg.connect(pg_dsn) as pg:
        assert partitions_of(pg, "epochs") == made
        assert pg.execute("SELECT count(*) FROM epochs").fetchone() == (40,)


def test_indexes_on_the_same_columns_of_a_partitioned_table_are_all_built(tmp_path: Path, pg_dsn: str) -> None:
    """PostgreSQL names each partition's index after its columns: built at once, two indexes on the same
    columns race for one name and one is refused; the copy builds a partitioned table's indexes in turn."""
    path = tmp_path / "dups.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE dups (id INTEGER PRIMARY KEY, at TEXT NOT NULL, v INTEGER)")
    rows = [(i, f"2024-{i % 12 + 1:02d}-03 10:00:00", i % 7) for i in range(1, 241)]
    conn.executemany("INSERT INTO dups VALUES (?, ?, ?)", rows)
    for i in range(6):
        conn.execute(f"CREATE INDEX dup_{i} ON dups ({'v, at' if i % 2 else 'at'})")
    conn.commit()
    conn.close()
    options = CopyOptions(partitions=("dups=at:month",), partition_widen_keys=True, jobs=4)
    job = copy_and_verify(path, pg_dsn, options)
    assert job.verify is not None and job.verify.identical
    assert not [s for s in job.copy.skipped if s.kind == "index"], job.copy.skipped
    with psycopg.connect(pg_dsn) as pg:
        partitions = len(partitions_of(pg, "dups"))
        children = pg.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent WHERE c.relname LIKE 'dup\\_%'"
        ).fetchone()
    assert children == (6 * partitions,)  # every index on every partition
