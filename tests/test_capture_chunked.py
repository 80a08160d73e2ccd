"""The copy under change capture reads each chunk in a read transaction of its own
(pgferry.migrate.chunked): WAL checkpoints go on while it runs, rows changed between two chunks may
break UNIQUE and foreign keys in PostgreSQL until catch-up (so those are held back and built once it
has caught up), a rowid table whose primary key is not the rowid is paged by that key, and a kill before the
held-back constraints are built is taken up by `follow`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from capture_util import assert_same
from chaos_app import killed, ok, pgferry
from pgferry.capture.cutover import cutover
from pgferry.capture.migration import start
from pgferry.capture.status import read_status
from pgferry.cli import main
from pgferry.errors import UsageError
from pgferry.events import Event
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.migrate.source import Source

ROWS = 300
CHUNK = CopyOptions(jobs=1, chunk_rows=100)


def make_app(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
        conn.execute(
            "CREATE TABLE post (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES account (id), body TEXT)"
        )
        conn.execute("CREATE TABLE tag (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        conn.executemany("INSERT INTO account VALUES (?, ?)", [(i, f"a{i}@x") for i in range(1, ROWS + 1)])
        conn.executemany("INSERT INTO post VALUES (?, ?, 'hi')", [(i, i) for i in range(1, ROWS + 1)])
        conn.executemany("INSERT INTO tag VALUES (?, 0)", [(f"tag-{i:04}",) for i in range(1, ROWS + 1)])
    return path


def write(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        for text in statements:
            conn.execute(text)
    finally:
        conn.close()


def between_chunks(path: Path) -> Callable[[Event], None]:
    """A listener that, after the first chunk of each table, writes what a chunked read sees torn: an
    email moved from an early row to a late one, a parent deleted with its children and a parent
    added with a child (whichever table is read first, one of them dangles), a TEXT key REPLACE-d to
    a new rowid."""
    done: set[str] = set()
    seen: list[str] = []

    def on_event(event: Event) -> None:
        if event.phase != "copy" or event.done != 100 or event.task in done:
            return
        done.add(event.task)
        seen.append(event.task)
        if event.task == "account":
            write(
                path,
                "UPDATE account SET email = 'moved' WHERE id = 1",
                "UPDATE account SET email = 'a1@x' WHERE id = 250",
            )
        if {"account", "post"} <= set(seen) and event.task in ("account", "post"):
            write(
                path,
                "DELETE FROM post WHERE account_id = 260",
                "DELETE FROM account WHERE id = 260",
                "INSERT INTO account VALUES (1000, 'new@x')",
                "INSERT INTO post VALUES (1000, 1000, 'late')",
            )
        if event.task == "tag":
            write(path, "INSERT OR REPLACE INTO tag VALUES ('tag-0001', 99)")

    return on_event


def test_a_chunked_copy_leaves_what_spans_rows_to_catch_up(tmp_path: Path, pg_dsn: str) -> None:
    path = make_app(tmp_path / "app.db")
    report = copy_database(path, pg_dsn, CHUNK, between_chunks(path), watermark=lambda conn: 0, chunked=True)
    assert (
        "a read transaction per chunk" in report.snapshot and "paged by primary key, not rowid: tag" in report.snapshot
    )
    assert not report.skipped and not report.unvalidated
    with psycopg.connect(pg_dsn) as pg:
        # torn as the chunks read it: constraints built now would have failed
        assert pg.execute("SELECT count(*) FROM account WHERE email = 'a1@x'").fetchone() == (2,)
        dangling = pg.execute(
            "SELECT count(*) FROM post p WHERE NOT EXISTS (SELECT 1 FROM account a WHERE a.id = p.account_id)"
        ).fetchone()
        assert dangling is not None and dangling[0] >= 1
        kinds = {c for (c,) in pg.execute("SELECT contype FROM pg_constraint WHERE conrelid = 'account'::regclass")}
        assert kinds == {"p"}  # the primary key (the chunk key) only: UNIQUE held back
        assert pg.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        ).fetchone() == (0,)
        # paged by its TEXT key: the row REPLACE-d to a new rowid after the first chunk is not read again
        assert pg.execute("SELECT count(*), max(n) FROM tag WHERE name = 'tag-0001'").fetchone() == (1, 0)


def test_catch_up_makes_the_torn_copy_whole_then_builds_its_constraints(tmp_path: Path, pg_dsn: str) -> None:
    path = make_app(tmp_path / "app.db")
    report = start(path, pg_dsn, CHUNK, between_chunks(path))
    assert report.constraints is not None and report.constraints.built == 2  # the UNIQUE index, the foreign key
    assert not report.constraints.skipped and not report.constraints.unvalidated
    assert_same(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        constraints = dict(
            pg.execute(
                "SELECT contype, convalidated FROM pg_constraint"
                " WHERE conrelid = 'account'::regclass OR conrelid = 'post'::regclass AND contype = 'f'"
            ).fetchall()
        )
        assert constraints == {"p": True, "u": True, "f": True}
        assert pg.execute("SELECT n FROM tag WHERE name = 'tag-0001'").fetchone() == (99,)
    assert read_status(path, pg_dsn, "public").constraints == "built"


@pytest.mark.parametrize("table", ["post", "tag"])  # paged by rowid; a rowid table paged by its TEXT key
def test_the_wal_is_checkpointed_while_a_chunked_copy_reads(tmp_path: Path, pg_dsn: str, table: str) -> None:
    """Between two chunks no reader holds a snapshot: a checkpoint takes every frame, as it cannot
    while the one-snapshot copy (`pgferry copy`) reads."""
    path = make_app(tmp_path / "app.db")
    frames: dict[str, list[tuple[int, int]]] = {"chunked": [], "one snapshot": []}

    def checkpointing(kind: str) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            if event.phase == "copy" and event.task == table and event.done in (100, 200):
                write(path, f"INSERT INTO account (email) VALUES ('{kind} {event.done}')")
                conn = sqlite3.connect(path)
                _busy, log, checkpointed = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                conn.close()
                frames[kind].append((log, checkpointed))

        return on_event

    copy_database(path, pg_dsn, CHUNK, checkpointing("chunked"), watermark=lambda conn: 0, chunked=True)
    copy_database(path, pg_dsn, CopyOptions(jobs=1, chunk_rows=100, schema="plain"), checkpointing("one snapshot"))
    assert len(frames["chunked"]) == 2 and all(log == done for log, done in frames["chunked"])
    assert len(frames["one snapshot"]) == 2 and all(log > done for log, done in frames["one snapshot"])


@pytest.mark.slow
def test_a_kill_before_the_constraints_are_built_is_taken_up_by_follow(tmp_path: Path, pg_dsn: str) -> None:
    path = make_app(tmp_path / "app.db")
    db = [str(path), pg_dsn]
    killed(pgferry("migrate", "start", *db, "--until-caught-up", kill_at="apply:before_constraints"))
    assert read_status(path, pg_dsn, "public").constraints == "pending"
    shown = CliRunner().invoke(main, ["migrate", "status", *db])
    assert "a cutover waits for them" in shown.output
    with pytest.raises(UsageError, match="held back are not built yet"):
        cutover(path, pg_dsn)
    followed = ok(pgferry("migrate", "follow", *db, "--until-caught-up")).stdout.decode()
    assert "built the" in followed and "UNIQUE indexes and foreign keys the copy held back" in followed
    assert read_status(path, pg_dsn, "public").constraints == "built"
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype IN ('u', 'f') AND connamespace = 'public'::regnamespace"
        ).fetchone() == (2,)
    assert_same(path, pg_dsn)


@pytest.mark.parametrize("checkpointing", [True, False])
def test_between_chunks_the_wal_is_checkpointed_so_it_starts_over(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, checkpointing: bool
) -> None:
    """Writers commit between every two chunks. With the copy's checkpoint after each chunk every
    round starts the WAL over and the file stays at one round's size; without it (the check that this
    test can fail) nothing lets the WAL start over and it grows round after round."""
    if not checkpointing:
        monkeypatch.setattr(Source, "after_chunk", lambda self: None)
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.executemany("INSERT INTO item (body) VALUES (?)", [("x" * 100,) for _ in range(3000)])
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # used by the copy's thread

    def on_event(event: Event) -> None:
        if event.phase == "copy" and event.task == "item":
            for _ in range(20):
                writer.execute("INSERT INTO item (body) VALUES (?)", ("y" * 2000,))

    try:
        copy_database(path, pg_dsn, CHUNK, on_event, watermark=lambda conn: 0, chunked=True)
    finally:
        writer.close()
    size = Path(f"{path}-wal").stat().st_size
    if checkpointing:
        assert size < 512 * 1024, size  # about one round: 20 rows of 2 KB, a few pages each
    else:
        assert size > 2 * 1024 * 1024, size  # 30 rounds piled up


def test_a_copy_killed_inside_a_table_paged_by_its_text_key_is_resumed_by_follow(tmp_path: Path, pg_dsn: str) -> None:
    """The checkpoint of a rowid table paged by its primary key holds that key: `follow` goes on after
    it, and rows REPLACE-d to new rowids behind it are carried by catch-up, each once."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE tag (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        conn.executemany("INSERT INTO tag VALUES (?, 0)", [(f"tag-{i:04}",) for i in range(1, ROWS + 1)])
    db = [str(path), pg_dsn]
    killed(pgferry("migrate", "start", *db, "--chunk-rows", "100", "--jobs", "1", kill_at="copy:after_chunk_commit"))
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM tag").fetchone() == (100,)  # the first chunk, by key
    write(
        path, "INSERT OR REPLACE INTO tag VALUES ('tag-0001', 7)", "INSERT OR REPLACE INTO tag VALUES ('tag-0300', 8)"
    )
    ok(pgferry("migrate", "follow", *db, "--until-caught-up"))
    assert_same(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*), sum(n) FROM tag").fetchone() == (ROWS, 15)
