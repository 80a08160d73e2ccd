"""Real-world SQLite files that once stopped the copy: each class gets a small fixture built here, is copied
into a real PostgreSQL, verified identical, and its changes are named in the copy report."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.errors import PgferryError
from pgferry.events import Event
from pgferry.migrate import control
from pgferry.migrate.names import MAX_IDENTIFIER_BYTES
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.report import CopyReport
from pgferry.migrate.run import copy_and_verify, copy_database
from pgferry.migrate.verify import verify_copy


def build(path: Path, script: str, rows: dict[str, list[tuple[object, ...]]] | None = None) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
        for table, values in (rows or {}).items():
            marks = ", ".join("?" * len(values[0]))
            conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', values)
    return path


def copied_identical(path: Path, dsn: str, **options: object) -> CopyReport:
    job = copy_and_verify(path, dsn, CopyOptions(**options))  # type: ignore[arg-type]
    assert job.verify is not None and job.verify.identical, [t for t in job.verify.tables if not t.identical]
    # verify on its own (from the plan the copy stored) agrees
    assert verify_copy(path, dsn, schema=job.copy.schema).identical
    return job.copy


def notes_of(report: CopyReport) -> list[str]:
    return [f"{c['table']}.{c['column']}: {c['note']}" for c in report.choices if c["note"]] + [
        f"{s.kind} {s.name}: {s.reason}" for s in report.skipped
    ]


# 1. NULLs in a primary key that is not the rowid ---------------------------------------------------


def test_nulls_in_a_primary_key_become_a_unique_index_on_nullable_columns(tmp_path: Path, pg_dsn: str) -> None:
    path = build(
        tmp_path / "pknull.db",
        """
        CREATE TABLE counters (id integer auto_increment primary key, label TEXT);
        CREATE TABLE crs (auth_name TEXT, code TEXT, name TEXT, PRIMARY KEY (auth_name, code));
        CREATE TABLE refs (id INTEGER PRIMARY KEY, auth_name TEXT, code TEXT,
            FOREIGN KEY (auth_name, code) REFERENCES crs (auth_name, code));
        """,
        {
            "counters": [(1, "a"), (None, "b"), (None, "c"), (4, "d")],
            "crs": [("EPSG", "4326", "WGS 84"), ("EPSG", None, "x"), (None, None, "y"), (None, "1", "z")],
            "refs": [(1, "EPSG", "4326"), (2, None, None)],
        },
    )
    report = copied_identical(path, pg_dsn, jobs=2, chunk_rows=2)
    notes = notes_of(report)
    assert any("counters" in n and "id" in n and "NULL" in n for n in notes), notes
    assert any("crs" in n and "auth_name" in n and "code" in n for n in notes), notes
    with psycopg.connect(pg_dsn) as conn:
        nullable = conn.execute(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name IN ('counters', 'crs') AND column_name IN ('id', 'auth_name', 'code') ORDER BY 1, 2"
        ).fetchall()
        assert nullable == [("counters", "id", "YES"), ("crs", "auth_name", "YES"), ("crs", "code", "YES")]
        unique = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'crs'::regclass AND indisunique"
        ).fetchall()
        assert len(unique) == 1
        assert conn.execute("SELECT count(*) FROM crs WHERE code IS NULL").fetchone() == (2,)
        assert conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'refs'::regclass AND contype = 'f'"
        ).fetchone() == (1,)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO crs VALUES ('EPSG', '4326', 'again')")


def test_a_null_key_met_after_the_sample_is_named_by_column(tmp_path: Path, pg_dsn: str) -> None:
    """A big table is typed from a sample, which misses the NULL key: the refusal names table and column,
    the table is re-planned from the full census, and the copy is identical."""
    rows = [(f"k{i}", i) for i in range(30_000)]
    rows[17_777] = (None, 17_777)
    path = build(tmp_path / "late.db", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);", {"t": rows})
    report = copied_identical(path, pg_dsn, chunk_rows=5_000)
    [replan] = report.replanned
    assert replan.table == "t" and replan.changes == ["k: NOT NULL -> nullable"], replan
    assert any("k (1 NULLs)" in n for n in notes_of(report))


def test_a_null_key_in_a_resumed_copy_names_table_key_and_column(tmp_path: Path, pg_dsn: str) -> None:
    """The plan stored by the first run said NOT NULL; a NULL key the source gained since is named."""
    path = build(tmp_path / "grown.db", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);", {"t": [("a", 1), ("b", 2)]})

    def stop(event: Event) -> None:
        if event.phase == "copy" and event.done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=1, jobs=1), events=stop)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO t VALUES (NULL, 3)")
    with pytest.raises(PgferryError, match=r"table 't', row key \[\d+\], column 'k': null value"):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=1, jobs=1, resume=True))


# 2. A WITHOUT ROWID table keyed by a BLOB (and by every other storage class), resumed ----------------


def test_blob_and_float_keys_checkpoint_losslessly_and_resume(tmp_path: Path, pg_dsn: str) -> None:
    keys = [
        (bytes([i % 256, i // 256, 0]), i * 0.1 if i % 3 else float(i) * 1e300, f"t{i}\x01é", i) for i in range(3000)
    ]
    keys.append((b"", -0.0, "", -(2**63)))
    path = build(
        tmp_path / "blobkey.db",
        "CREATE TABLE blobs (b BLOB, f REAL, s TEXT, i INTEGER, PRIMARY KEY (b, f, s, i)) WITHOUT ROWID;",
        {"blobs": keys},
    )
    stop_after = 1_000

    def stop(event: Event) -> None:
        if event.phase == "copy" and event.done >= stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=250, jobs=1), events=stop)
    with psycopg.connect(pg_dsn) as conn:
        [checkpoint] = control.read_checkpoints(conn, "public").values()
        assert checkpoint.rows >= stop_after and not checkpoint.done
        assert checkpoint.last_key is not None and isinstance(checkpoint.last_key[0], bytes)
    copied_identical(path, pg_dsn, chunk_rows=250, jobs=1, resume=True)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (3001,)


def test_text_not_utf8_met_on_resume_is_rejected_by_its_blob_and_text_key(tmp_path: Path, pg_dsn: str) -> None:
    """The careful path reads the chunk as bytes: BLOB keys stay bytes, text keys become text again, so
    the bad row is left out by its own key and the checkpoint is a key SQLite compares as before."""
    rows = [(bytes([i]), f"t{i}", f"ok {i}") for i in range(1, 41)]
    path = build(
        tmp_path / "w.db", "CREATE TABLE w (k BLOB, t TEXT, body TEXT, PRIMARY KEY (k, t)) WITHOUT ROWID;", {"w": rows}
    )

    def stop(event: Event) -> None:
        if event.phase == "copy" and event.done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=10, jobs=1), events=stop)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE w SET body = CAST(x'ff' AS TEXT) WHERE k = x'19'")
    with pytest.raises(PgferryError, match=r"table 'w', row key \[b'\\x19', 't25'\], column 'body': invalid UTF-8"):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=10, jobs=1, resume=True))
    options = CopyOptions(chunk_rows=10, jobs=1, resume=True, on_error="reject")  # counted, no file
    report = copy_database(path, pg_dsn, options)
    assert report.rejected == 1
    with psycopg.connect(pg_dsn) as conn:
        keys = [bytes(r[0]) for r in conn.execute("SELECT k FROM w ORDER BY k")]
    assert keys == [bytes([i]) for i in range(1, 41) if i != 0x19]


def test_checkpoint_keys_round_trip_exactly(pg_dsn: str) -> None:
    key = [b"\x00\xff", 0.1, -0.0, float("inf"), 2**63 - 1, -(2**63), "a\x00b", "é", None, 1e308]
    with psycopg.connect(pg_dsn) as conn:
        control.ensure_control_schema(conn)
        control.save_checkpoint(conn, "s", control.Checkpoint("t", 0, key, [5], 1, False))
        [back] = control.read_checkpoints(conn, "s").values()
    assert [(type(v), v) for v in back.last_key or []] == [(type(v), v) for v in key]
    assert str(back.last_key[2]) == "-0.0" and back.upper_key == [5]


# 3. Views: any spelling of CREATE VIEW, column lists, split's compatibility view ----------------------


def test_views_parsed_not_split_and_untranslatable_ones_reported(tmp_path: Path, pg_dsn: str) -> None:
    path = build(
        tmp_path / "views.db",
        """
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);
        CREATE VIEW newline AS
        SELECT name FROM items;
        create view lower_as as select id, price from items where price > 1;
        CREATE VIEW "with cols" (item, cost) AS SELECT name, price FROM items;
        CREATE VIEW zz_first AS SELECT item FROM "with cols";
        CREATE VIEW "Asked" AS SELECT name AS "Has AS inside" FROM items WHERE name GLOB 'a*';
        CREATE VIEW tabbed	AS	SELECT count(*) AS n FROM items;
        """,
        {"items": [(1, "apple", 2.5), (2, "pear", 0.5)]},
    )
    report = copied_identical(path, pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT name FROM newline ORDER BY 1").fetchall() == [("apple",), ("pear",)]
        assert conn.execute("SELECT id, price FROM lower_as").fetchall() == [(1, 2.5)]
        assert conn.execute('SELECT item, cost FROM "with cols" ORDER BY 1').fetchall() == [
            ("apple", 2.5),
            ("pear", 0.5),
        ]
        assert conn.execute("SELECT count(*) FROM zz_first").fetchone() == (2,)
        assert conn.execute("SELECT n FROM tabbed").fetchone() == (2,)
    [glob] = [s for s in report.skipped if s.kind == "view"]
    assert glob.name == "Asked" and "GLOB" in glob.reason


def test_a_split_database_copies_with_its_tables_and_triggers_reported(tmp_path: Path, pg_dsn: str) -> None:
    """During a split (expand) the wide table and its side table are both real tables kept in step by
    SQLite triggers: both copy and verify identical; the sync triggers are SQLite's and are reported."""
    from pgferry.split import SplitPlan
    from pgferry.split.apply import apply_split
    from pgferry.split.plan import Family

    path = build(
        tmp_path / "split.db",
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, bio TEXT, avatar BLOB);",
        {"people": [(i, f"p{i}", "bio" if i % 2 else None, None) for i in range(1, 21)]},
    )
    plan = SplitPlan("people", ["id"], "people", ["id", "name"], [Family("side", "people_profile", ["bio", "avatar"])])
    apply_split(path, plan, measure=False)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT type FROM sqlite_master WHERE name = 'people'").fetchone() == ("table",)
    report = copied_identical(path, pg_dsn)
    assert {s.kind for s in report.not_carried} == {"trigger"}, report.not_carried
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*), count(bio) FROM people").fetchone() == (20, 10)
        assert conn.execute("SELECT count(*) FROM people_profile").fetchone() == (10,)


# 4. Names longer than 63 bytes that collide once PostgreSQL truncates them --------------------------


def test_long_names_that_collide_get_unique_hashed_names_used_by_verify_and_resume(tmp_path: Path, pg_dsn: str) -> None:
    prefix = "PLBatteryAgent_EventBackward_BatteryConfigurationAndStatistics_"  # 63 bytes, like iOS PowerLog
    assert len(prefix) == MAX_IDENTIFIER_BYTES
    tables = [f"{prefix}{suffix}" for suffix in ("Cycle", "Charge", "Health")]
    long_column = "c" * 70
    script = "".join(
        f'CREATE TABLE "{t}" (id INTEGER PRIMARY KEY, "{long_column}_a" TEXT CHECK (length("{long_column}_a") < 9), '
        f'"{long_column}_b" TEXT, CHECK ("{long_column}_b" <> \'x\'));\n'
        f'CREATE INDEX "{t}_index_one" ON "{t}" ("{long_column}_a");\n'
        f'CREATE INDEX "{t}_index_two" ON "{t}" ("{long_column}_b");\n'
        for t in tables
    )
    script += "".join(f'CREATE VIEW "{t}_view" AS SELECT id FROM "{t}";\n' for t in tables)
    path = build(tmp_path / "powerlog.db", script, {t: [(i, f"a{i}", f"b{i}") for i in range(50)] for t in tables})

    def stop(event: Event) -> None:
        if event.phase == "copy" and event.done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # stopped part-way: the resume must find the same names
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=10, jobs=1), events=stop)
    report = copied_identical(path, pg_dsn, chunk_rows=10, resume=True)
    renamed = {(r["kind"], r["source"]): r["target"] for r in report.as_dict()["renamed"]}
    targets = [renamed[("table", t)] for t in tables]
    assert len(set(targets)) == 3 and all(len(t.encode()) <= MAX_IDENTIFIER_BYTES for t in targets)
    dry = CliRunner().invoke(main, ["copy", str(path), "--dry-run"]).output
    assert f"-- renamed table {tables[0]!r} -> {targets[0]!r}" in dry
    # deterministic: the same file gets the same names
    assert copy_database(path, pg_dsn, CopyOptions(schema="again")).as_dict()["renamed"] == report.as_dict()["renamed"]
    with psycopg.connect(pg_dsn) as conn:
        for target in targets:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name = %s ORDER BY ordinal_position",
                    [target],
                )
            ]
            assert len(columns) == 3 and len(set(columns)) == 3
            indexes = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s", [target]
            ).fetchone()
            checks = conn.execute(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = format('public.%%I', %s::text)::regclass "
                "AND contype = 'c'",
                [target],
            ).fetchone()
            assert indexes == (3,) and checks == (2,)  # primary key + 2 indexes; both CHECKs
    assert not [s for s in report.skipped if s.kind in ("index", "check")], report.skipped
    assert any(k == "index" for k, _s in renamed) and any(k == "column" for k, _s in renamed)
    with psycopg.connect(pg_dsn) as conn:
        for t in tables:
            view = renamed[("view", f"{t}_view")]
            assert conn.execute(f'SELECT count(*) FROM "{view}"').fetchone() == (50,)


# 5. Text that is not UTF-8 ---------------------------------------------------------------------------


def test_invalid_utf8_text_becomes_bytea_and_verifies(tmp_path: Path, pg_dsn: str) -> None:
    path = build(
        tmp_path / "latin1.db",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, title VARCHAR(20), ok TEXT);",
        {"notes": [(i, f"ok {i} é", f"t{i}", "fine ü") for i in range(1, 11)]},
    )
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO notes VALUES (11, CAST(x'c328' AS TEXT), CAST(x'e9' AS TEXT), 'plain')")
    report = copied_identical(path, pg_dsn, chunk_rows=4)
    by_column = {c["column"]: c for c in report.choices if c["table"] == "notes"}
    assert by_column["body"]["type"] == by_column["title"]["type"] == "bytea"
    assert "UTF-8" in by_column["body"]["note"] and by_column["ok"]["type"] == "text"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT body, title FROM notes WHERE id = 11").fetchone() == (b"\xc3(", b"\xe9")
        assert conn.execute("SELECT body FROM notes WHERE id = 1").fetchone() == ("ok 1 é".encode(),)


def test_invalid_utf8_after_the_sample_replans_to_bytea(tmp_path: Path, pg_dsn: str) -> None:
    path = build(
        tmp_path / "late.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);",
        {"t": [(i, f"v{i}") for i in range(1, 30_001)]},
    )
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE t SET s = CAST(x'6f6bff' AS TEXT) WHERE id = 17777")
    report = copied_identical(path, pg_dsn, chunk_rows=5_000)
    assert [c["type"] for c in report.choices if c["column"] == "s"] == ["bytea"]


# 6. Identities restart above what the target holds --------------------------------------------------


def test_identity_restarts_above_the_target_after_a_resume_of_a_grown_source(tmp_path: Path, pg_dsn: str) -> None:
    path = build(
        tmp_path / "grow.db",
        """
        CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT);
        CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
        """,
        {"posts": [(i, f"p{i}") for i in range(1, 3001)], "auto": [(i, "a") for i in range(1, 11)]},
    )

    def stop(event: Event) -> None:
        if event.phase == "copy" and event.task == "posts" and event.done >= 1000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=500, jobs=1), events=stop)
    with sqlite3.connect(path) as conn:  # the application writes on while the copy is down
        conn.executemany("INSERT INTO posts VALUES (?, ?)", [(i, f"new{i}") for i in range(3001, 5001)])
        conn.execute("INSERT INTO auto (v) VALUES ('b')")
        conn.execute("UPDATE sqlite_sequence SET seq = 900 WHERE name = 'auto'")
    copied_identical(path, pg_dsn, chunk_rows=500, jobs=1, resume=True)
    with psycopg.connect(pg_dsn) as conn:
        (new_id,) = conn.execute("INSERT INTO posts (body) VALUES ('from the app') RETURNING id").fetchone()  # type: ignore[misc]
        assert new_id == 5001
        (auto_id,) = conn.execute("INSERT INTO auto (v) VALUES ('app') RETURNING id").fetchone()  # type: ignore[misc]
        assert auto_id == 901


# 7. A page of random bytes inside a table ----------------------------------------------------------


def table_pages(path: Path, table: str) -> dict[str, list[int]]:
    with sqlite3.connect(path) as conn:
        pages: dict[str, list[int]] = {}
        for pageno, kind in conn.execute("SELECT pageno, pagetype FROM dbstat WHERE name = ? ORDER BY pageno", [table]):
            pages.setdefault(kind, []).append(pageno)
        return pages


def corrupt(path: Path, page: int, seed: int) -> None:
    size = 4096
    data = bytearray(path.read_bytes())
    data[(page - 1) * size : page * size] = random.Random(seed).randbytes(size)
    path.write_bytes(bytes(data))


def corrupt_db(path: Path) -> Path:
    return build(
        path,
        """
        CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE keyed (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
        """,
        {
            "small": [(i, "s") for i in range(10)],
            "big": [(i, "x" * 300) for i in range(30_000)],
            "keyed": [(f"k{i:05d}", "y" * 200) for i in range(3000)],
        },
    )


def assert_clean_error(args: list[str], table: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"table {table!r}" in result.output and "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("table", "kind", "position"),
    [("big", "leaf", 0.7), ("big", "internal", 0.5), ("keyed", "leaf", 0.5), ("keyed", "internal", 0.0)],
)
def test_a_page_of_random_bytes_names_its_table_in_copy(
    tmp_path: Path, pg_dsn: str, table: str, kind: str, position: float
) -> None:
    path = corrupt_db(tmp_path / "corrupt.db")
    pages = table_pages(path, table)[kind]
    corrupt(path, pages[int(position * (len(pages) - 1))], seed=7)
    assert_clean_error(["copy", str(path), pg_dsn], table)


def test_a_page_of_random_bytes_names_its_table_in_verify(tmp_path: Path, pg_dsn: str) -> None:
    path = corrupt_db(tmp_path / "corrupt.db")
    copy_database(path, pg_dsn, CopyOptions(jobs=2))
    leaves = table_pages(path, "big")["leaf"]
    corrupt(path, leaves[len(leaves) // 3], seed=11)
    assert_clean_error(["verify", str(path), pg_dsn], "big")


def test_a_corrupt_page_in_a_resumed_copy_names_its_table(tmp_path: Path, pg_dsn: str) -> None:
    path = corrupt_db(tmp_path / "corrupt.db")

    def stop(event: Event) -> None:
        if event.phase == "copy" and event.task == "big" and event.done >= 2000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_database(path, pg_dsn, CopyOptions(jobs=1, chunk_rows=1000), events=stop)
    leaves = table_pages(path, "big")["leaf"]
    corrupt(path, leaves[-5], seed=3)
    assert_clean_error(["copy", str(path), pg_dsn, "--resume", "--jobs", "1"], "big")
    with pytest.raises(PgferryError, match="table 'big'"):
        copy_database(path, pg_dsn, CopyOptions(jobs=1, resume=True))
