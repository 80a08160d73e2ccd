"""`forum demo`: seed, copy and verify, end to end, into the DSN given by PGFERRY_DSN."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from click.testing import CliRunner

from forum.cli import main


def test_demo_seeds_copies_and_verifies(tmp_path: Path, pg_dsn: str) -> None:
    database = tmp_path / "demo" / "legacy.db"
    result = CliRunner().invoke(
        main,
        ["demo", "--scale", "0.01", "--db", str(database), "--traffic-users", "3", "--traffic-seconds", "1"],
        env={"PGFERRY_DSN": pg_dsn},
    )
    assert result.exit_code == 0, result.output
    assert database.exists()
    assert "pgferry verify" in result.output and "differs" not in result.output
    assert result.output.count("identical") >= 12  # every table of the forum
    assert "password=" not in result.output.replace("password=***", "")
    # the traffic burst ran in both modes and left the seeded file as it was (journal_mode still delete)
    assert "forum serve --mode legacy" in result.output and "forum serve --mode optimized" in result.output
    assert "statements per topic view" in result.output
    assert "forum serve on postgres" in result.output  # the PostgreSQL copy served (PGFERRY_DSN: direct only)
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
