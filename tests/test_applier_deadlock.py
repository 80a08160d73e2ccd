"""The forward applier's batch, chosen by PostgreSQL as a deadlock's victim (another transaction took
the tables in the other order), is run again instead of stopping `migrate follow`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg

from capture_util import assert_same, caught_up, changes, make_source, started, write


def test_a_batch_that_loses_a_deadlock_is_applied_again(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, changes(5))  # item rows, then tag rows that refer to them: the applier takes item, then tag
    applied: list[int] = []
    failed: list[BaseException] = []

    def follow() -> None:
        try:
            applied.append(caught_up(path, pg_dsn))
        except BaseException as exc:  # reported by the assertion below
            failed.append(exc)

    with psycopg.connect(pg_dsn) as other:
        other.execute("LOCK TABLE tag IN SHARE MODE")  # the applier, holding item, waits for tag
        job = threading.Thread(target=follow)
        job.start()
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as watcher:
                deadline = time.monotonic() + 10
                while not watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'tag'::regclass"
                ).fetchone()[0]:  # type: ignore[index]
                    assert time.monotonic() < deadline, "the applier never waited for tag"
                    time.sleep(0.001)
            other.execute("LOCK TABLE item IN SHARE MODE")  # the cycle: the applier waited first, it is the victim
            other.commit()
        finally:
            job.join(30)
    assert not failed, failed
    assert applied and applied[0] > 0
    assert_same(path, pg_dsn)
