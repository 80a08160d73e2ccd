"""`forum demo`: seed, copy and verify, end to end, into the DSN given by PGFERRY_DSN; every /metrics and
the migration dashboard it prints answered while it was printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner

import forum.demo
from forum.cli import main
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import throwaway_cluster


def test_demo_seeds_copies_and_verifies(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    answered: dict[str, httpx.Response] = {}
    run_demo = forum.demo.run_demo

    def fetching_each_url(*args: Any, on_up: Any, **kwargs: Any) -> forum.demo.DemoResult:
        def up(what: str, url: str) -> None:  # the CLI prints it, then, while the step still runs, we fetch it
            on_up(what, url)
            answered[url] = httpx.get(url, timeout=10)

        return run_demo(*args, on_up=up, **kwargs)

    monkeypatch.setattr(forum.demo, "run_demo", fetching_each_url)
    database = tmp_path / "demo" / "legacy.db"
    result = CliRunner().invoke(
        main,
        ["demo", "--scale", "0.01", "--db", str(database), "--traffic-users", "3", "--traffic-seconds", "1"],
        env={"PGFERRY_DSN": pg_dsn},
    )
    assert result.exit_code == 0, (result.output[-6000:], result.exception)
    metrics = [url for url in answered if url.endswith("/metrics")]
    assert len(metrics) == 5  # legacy, optimized, postgres direct and with caches (PGFERRY_DSN), the live migration's
    (board,) = [url for url in answered if not url.endswith("/metrics")]
    for url, response in answered.items():
        assert f" at {url} (while this step runs)" in result.output
        assert response.status_code == 200, url
    assert all("forum_http_requests_total" in answered[url].text for url in metrics)
    assert "pgferry migrate" in answered[board].text and "lagchart" in answered[board].text
    assert database.exists()
    assert "pgferry verify" in result.output and "differs" not in result.output
    assert result.output.count("identical") >= 12  # every table of the forum
    assert "password=" not in result.output.replace("password=***", "")
    # the traffic burst ran in both modes and left the seeded file as it was (journal_mode still delete)
    assert "forum serve --mode legacy" in result.output and "forum serve --mode optimized" in result.output
    assert "statements per topic view" in result.output
    assert "forum serve on postgres" in result.output  # the PostgreSQL copy served (PGFERRY_DSN: direct only)
    assert re.search(r"cache hit rate \(2 workers, from cold\): l1 \d+%", result.output)  # and with the caches
    assert not database.with_name(database.name + "-wal").exists()
    # the live migration: served under traffic, copied, cut over, and no user saw an error
    assert "a live migration" in result.output and result.output.count("cut_over") >= 2
    assert "pgferry migrate rollback: writers paused" in result.output  # cutover, rollback, cutover again
    assert " 0 errors; the forum's route is now postgres" in result.output
    assert re.search(r"[1-9][\d,]* acknowledged writes read back: every one as acknowledged", result.output)
    assert "SQLite and PostgreSQL once the traffic stopped: identical" in result.output
    with psycopg.connect(pg_dsn) as conn:
        schemas = [n for (n,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'forum_demo_%'")]
        (schema,) = [n for n in schemas if not n.endswith("_live")]
        rows = conn.execute(f'SELECT count(*) FROM "{schema}".forum_replies').fetchone()[0]
        live = conn.execute(f'SELECT count(*) FROM "{schema}_live".forum_replies').fetchone()[0]
    assert rows >= 6000 and live >= 6000  # verified identical (above), then the traffic wrote replies on both


def test_on_a_cluster_of_its_own_the_demo_serves_through_pgbouncer_with_reads_on_a_replica(seeded_db: Path) -> None:
    """What `make demo` runs without PGFERRY_DSN: the copy on a throwaway cluster, served direct, then
    through PgBouncer with a streaming replica of that cluster (behind a PgBouncer of its own); no
    request fails, and the replica serves the reads it may."""
    with throwaway_cluster() as cluster:
        copy_database(seeded_db, cluster.dsn(), CopyOptions(jobs=2))
        reports = forum.demo.postgres_burst(cluster.dsn(), "public", cluster, users=3, seconds=2, seed=42)
    assert list(reports) == ["postgres", "postgres + caches", "pgbouncer + replica"]
    for report in reports.values():
        assert report["requests"] > 0 and report["errors"] == 0, report["errors_by_status"]
    cache = reports["postgres + caches"]["cache"]  # both workers counted; L1 served reads, L2 (Redis) was asked
    levels = cache["levels"]
    assert cache["workers"] == 2 and levels["l1"]["hits"] > 0, cache
    assert levels["l2"]["hits"] + levels["l2"]["misses"] > 0 and levels["l2"]["bypass"] == 0, cache
    reads = reports["pgbouncer + replica"]["reads"]
    assert reads.get("replica-1", 0) > 0, reads
