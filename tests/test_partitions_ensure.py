"""pgferry partitions ensure on a real PostgreSQL: the next partitions of the tables the copy partitioned,
idempotent, gaps filled, rows in DEFAULT reported and never moved, other partitioned tables left alone."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify
from pgferry.pg.partition_ranges import floor, following, partition_name
from pgferry.pg.partitions import ensure_partitions


def copied(tmp_path: Path, dsn: str, unit: str, ahead: int) -> None:
    """A SQLite file of events (timestamptz from ISO text with a zone) and days (date), copied partitioned."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE events (at TEXT NOT NULL, kind TEXT);"
        "CREATE TABLE days (day DATE PRIMARY KEY, n INTEGER) WITHOUT ROWID;"
    )
    conn.executemany("INSERT INTO events VALUES (?, ?)", [("2026-01-05T10:00:00Z", "a"), ("2026-01-20T10:00:00Z", "b")])
    conn.executemany("INSERT INTO days VALUES (?, ?)", [("2026-02-03", 1)])
    conn.commit()
    conn.close()
    options = CopyOptions(partitions=(f"events=at:{unit}", "days=day:month"), partition_ahead=ahead, jobs=1)
    assert copy_and_verify(path, dsn, options).identical


def partitions_of(pg: psycopg.Connection, table: str) -> set[str]:
    query = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass"
    return {r[0] for r in pg.execute(query, [table])}


def ahead_of(unit: str, now: datetime, n: int) -> list[datetime]:
    start, out = floor(unit, now), []
    for _ in range(n + 1):
        out.append(start)
        start = following(unit, start)
    return out


def test_ensure_creates_the_next_partitions_once(tmp_path: Path, pg_dsn: str) -> None:
    copied(tmp_path, pg_dsn, "week", ahead=0)
    now = datetime.now(UTC).replace(tzinfo=None)
    with psycopg.connect(pg_dsn) as pg:
        before = partitions_of(pg, "events")
    report = ensure_partitions(pg_dsn, ahead=4, now=now)
    assert report.complete
    by_table = {t.table: t for t in report.tables}
    assert set(by_table) == {"events", "days"}
    wanted = {partition_name("events", "week", s) for s in ahead_of("week", now, 4)}
    assert set(by_table["events"].created) == wanted - before
    assert len(by_table["events"].created) == 4  # the copy made the current week; ensure the four after it
    with psycopg.connect(pg_dsn) as pg:
        assert partitions_of(pg, "events") == before | wanted
        # a row of the last new week lands in its partition, not in DEFAULT
        last = ahead_of("week", now, 4)[-1] + timedelta(days=2)
        pg.execute("INSERT INTO events VALUES (%s, 'later')", [last.replace(tzinfo=UTC)])
        where = pg.execute("SELECT tableoid::regclass::text FROM events WHERE kind = 'later'").fetchone()
        assert where == (partition_name("events", "week", floor("week", last)),)
    again = ensure_partitions(pg_dsn, ahead=4, now=now)
    assert [t.created for t in again.tables] == [[], []]  # idempotent


def test_a_gap_is_filled_and_rows_in_default_are_reported_not_moved(tmp_path: Path, pg_dsn: str) -> None:
    copied(tmp_path, pg_dsn, "month", ahead=0)
    now = datetime.now(UTC).replace(tzinfo=None)
    later = floor("month", now)
    for _ in range(3):
        later = following("month", later)  # three months on: cron did not run meanwhile
    stray = following("month", floor("month", now)) + timedelta(days=3, hours=5)  # next month, in DEFAULT today
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("INSERT INTO events VALUES (%s, 'stray'), (%s, 'stray')", [stray.replace(tzinfo=UTC)] * 2)
        assert pg.execute("SELECT tableoid::regclass::text FROM events WHERE kind = 'stray'").fetchone() == (
            "events_default",
        )
    result = CliRunner().invoke(main, ["partitions", "ensure", pg_dsn, "--ahead", "1", "--json"])
    assert result.exit_code == 1, result.output  # today's run already meets the stray rows
    report = ensure_partitions(pg_dsn, ahead=1, now=later)
    assert not report.complete
    events = next(t for t in report.tables if t.table == "events")
    blocked_name = partition_name("events", "month", floor("month", stray))
    assert [b.partition for b in events.blocked] == [blocked_name]
    blocked = events.blocked[0]
    assert blocked.rows == 2 and blocked.lowest is not None and blocked.lowest.startswith(f"{stray:%Y-%m-%d %H}")
    # the months after the blocked one, through the one after `later`, are made (the gap cron left)
    gap = [following("month", floor("month", stray))]
    while gap[-1] <= later:
        gap.append(following("month", gap[-1]))
    assert len(gap) == 3
    assert set(events.created) == {partition_name("events", "month", s) for s in gap}
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM ONLY events_default").fetchone() == (2,)  # nothing moved
    payload = json.loads(result.output)
    tables = {t["table"]: t for t in payload["tables"]}
    assert payload["complete"] is False and tables["events"]["blocked"][0]["rows"] == 2
    assert tables["days"]["blocked"] == []


def test_tables_pgferry_did_not_partition_are_left_alone(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE TABLE other (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
        pg.execute("CREATE TABLE other_2020 PARTITION OF other FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')")
    result = CliRunner().invoke(main, ["partitions", "ensure", pg_dsn])
    assert result.exit_code == 0, result.output
    assert "no table partitioned by pgferry" in result.output
    with psycopg.connect(pg_dsn) as pg:
        assert partitions_of(pg, "other") == {"other_2020"}


def test_bad_dsn_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(main, ["partitions", "ensure", "postgresql://nobody:secret@127.0.0.1:1/none"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "secret" not in result.output


def test_a_locked_table_waits_lock_timeout_then_is_left_for_the_next_run(tmp_path: Path, pg_dsn: str) -> None:
    copied(tmp_path, pg_dsn, "day", ahead=0)
    with psycopg.connect(pg_dsn) as holder:
        holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # an application's long DDL, say
        report = ensure_partitions(pg_dsn, ahead=2, lock_timeout_s=0.2)
        holder.rollback()
    events = next(t for t in report.tables if t.table == "events")
    assert not report.complete and events.created == []
    assert [b.reason for b in events.blocked] == ["partitions not read: canceling statement due to lock timeout"]
    days = next(t for t in report.tables if t.table == "days")
    assert len(days.created) == 2  # the other table goes on
    assert ensure_partitions(pg_dsn, ahead=2).complete  # the next run makes them
