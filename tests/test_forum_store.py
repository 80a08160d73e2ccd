"""The data layer on its own: opening per mode, what is in force, the legacy pool, transactions."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from forum.cli import main
from forum.store import Mode, backend_of, open_store
from forum.store.errors import StoreError, Unavailable
from pgferry.errors import SourceError, UsageError
from threads import held_elsewhere


def test_optimized_asks_for_wal2_reads_it_back_and_uses_wal(db_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pgferry.runtime"):
        store = open_store(db_copy, Mode.OPTIMIZED)
    try:
        assert store.db.settings()["journal_mode"] == "wal"
        assert "journal_mode=WAL2 is not supported" in caplog.text and "now wal" in caplog.text
    finally:
        store.close()
    # the mode is stored in the file: legacy mode puts the rollback journal back
    store = open_store(db_copy, Mode.LEGACY)
    try:
        settings = store.db.settings()
        assert settings["journal_mode"] == "delete" and settings["busy_timeout"] == 0
    finally:
        store.close()
    (mode,) = sqlite3.connect(db_copy).execute("PRAGMA journal_mode").fetchone()
    assert mode == "delete"


def test_legacy_busy_timeout_can_be_set_to_measure_it(db_copy: Path) -> None:
    store = open_store(db_copy, Mode.LEGACY, legacy_busy_timeout_ms=5000)
    try:
        assert store.db.settings()["busy_timeout"] == 5000
    finally:
        store.close()


def test_legacy_pool_runs_out(db_copy: Path) -> None:
    store = open_store(db_copy, Mode.LEGACY, pool_size=1, pool_wait_s=0.05)
    try:
        with held_elsewhere(store.db.hold), pytest.raises(Unavailable) as refused, store.db.hold():
            pass
        assert refused.value.kind == "pool_timeout" and "1 database connections are busy" in str(refused.value)
    finally:
        store.close()


@pytest.mark.parametrize("mode", list(Mode))
def test_transaction_rolls_back_on_error(db_copy: Path, mode: Mode) -> None:
    store = open_store(db_copy, mode)
    try:
        with store.db.hold():
            before = store.repo.categories()
        with pytest.raises(RuntimeError), store.db.transaction():
            store.repo.bump_category(before[0].id, 5, "2025-01-01 00:00:00")
            raise RuntimeError("half-way")
        with store.db.hold():
            assert store.repo.categories() == before
    finally:
        store.close()


@pytest.mark.parametrize("content", [b"", b"not a database at all, just text" * 10])
def test_not_a_forum_database_is_one_clear_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    if content:
        with pytest.raises(SourceError, match="not a SQLite database"):
            open_store(path, Mode.OPTIMIZED)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a forum database"):
        open_store(empty, Mode.LEGACY)
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "missing.db")])
    assert result.exit_code == 2 and result.output == f"Error: {tmp_path / 'missing.db'}: no such file\n"


def test_the_backend_is_the_one_asked_for_or_read_from_the_target(
    db_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--backend auto: a DSN is PostgreSQL, a file SQLite (even one named like a libpq string);
    --backend postgres on a file is one clear line, from the Python call and from `forum serve`."""
    assert backend_of(db_copy) == "sqlite" and backend_of(db_copy, "sqlite") == "sqlite"
    assert backend_of("postgresql://forum@127.0.0.1/forum") == "postgres"
    assert backend_of("host=127.0.0.1 dbname=forum", "postgres") == "postgres"
    monkeypatch.chdir(tmp_path)
    shutil.copy(db_copy, "host=x")
    assert backend_of("host=x") == "sqlite"
    with pytest.raises(UsageError, match="--backend postgres needs a PostgreSQL DSN"):
        backend_of(db_copy, "postgres")
    done = CliRunner().invoke(main, ["serve", str(db_copy), "--backend", "postgres", "--port", "0"])
    assert done.exit_code == 2 and done.output.count("Error:") == 1, done.output
    assert "--backend postgres needs a PostgreSQL DSN" in done.output and "Traceback" not in done.output
