"""What the migrate commands say and refuse around reverse capture: status shows the direction and
the reverse lag and size, abort is refused on route postgres, rollback through the CLI (text and
JSON) and refused on route sqlite with one line."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from capture_util import make_source, started
from pgferry.capture.applier import ApplierBusy
from pgferry.capture.finish import finish
from pgferry.capture.migration import abort, follow
from pgferry.capture.reverse import ReverseApplier, log
from pgferry.capture.rollback import rollback
from pgferry.capture.status import read_status
from pgferry.cli import main
from pgferry.errors import UsageError
from reverse_fixtures import cut_over, pg_write, reverse_caught_up


def test_status_abort_and_rollback_around_reverse_capture(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, [("UPDATE item SET n = n + 1 WHERE id <= 5", ())])
    status = read_status(path, pg_dsn, "public")
    assert (status.route, status.direction) == ("postgres", "reverse")
    assert status.reverse_lag_changes == 5 and status.reverse_lag_seconds is not None
    assert status.reverse_changelog_bytes and status.reverse_changelog_bytes > 0
    assert status.lag_changes == 0 and not status.rollback_unfinished
    text = CliRunner().invoke(main, ["migrate", "status", str(path), pg_dsn])
    assert "following PostgreSQL -> SQLite" in text.output and "5 changes not yet in SQLite" in text.output

    with pytest.raises(UsageError, match="migrate rollback` goes back to SQLite first"):
        abort(path, pg_dsn)
    refused = CliRunner().invoke(main, ["migrate", "abort", str(path), pg_dsn])
    assert refused.exit_code == 2 and "Traceback" not in refused.output

    assert reverse_caught_up(path, pg_dsn) == 5
    assert read_status(path, pg_dsn, "public").reverse_lag_changes == 0

    pg_write(pg_dsn, [("DELETE FROM pair", ())])
    result = CliRunner().invoke(main, ["migrate", "rollback", str(path), pg_dsn, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["applied_before"] + report["drained"] == 20 and report["reverse_removed"]
    status = read_status(path, pg_dsn, "public")
    assert (status.route, status.direction, status.reverse_lag_changes) == ("sqlite", "forward", None)

    again = CliRunner().invoke(main, ["migrate", "rollback", str(path), pg_dsn])
    assert again.exit_code == 2 and "nothing to roll back" in again.output


def test_rollback_before_any_cutover_is_refused(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    result = CliRunner().invoke(main, ["migrate", "rollback", str(path), pg_dsn, "--lock-timeout", "1"])
    assert result.exit_code == 2 and "the route is sqlite, not postgres" in result.output


def test_finish_after_a_cutover_removes_reverse_capture(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, [("UPDATE item SET n = 0 WHERE id = 1", ())])
    finish(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        assert log.installed_tables(pg, "public") == [] and not log.exists(pg)
    pg_write(pg_dsn, [("UPDATE item SET n = 1 WHERE id = 1", ())])  # PostgreSQL writes go on, not logged


def test_one_follow_at_a_time_also_on_the_way_back(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    first = ReverseApplier(path, pg_dsn, "public", own=True)
    try:
        with pytest.raises(ApplierBusy, match="one `pgferry migrate follow` at a time"):
            follow(path, pg_dsn)
        rollback(path, pg_dsn)  # the rollback's own applier does not need the follower's lock
    finally:
        first.close()
