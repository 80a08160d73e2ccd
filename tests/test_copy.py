"""pgferry copy and verify against a real PostgreSQL, on a database full of the cases pgloader gets wrong."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.errors import PgferryError, TargetError, UsageError
from pgferry.events import Event
from pgferry.migrate import control
from pgferry.migrate.errors import CopyDataError
from pgferry.migrate.names import NameCollisionError
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.plan import MigrationPlan
from pgferry.migrate.run import copy_database
from pgferry.migrate.verify import verify_copy

LONG_A = "a" * 63 + "_one"
LONG_B = "a" * 63 + "_two"

ZOO = """
CREATE TABLE plain_pk (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL,
    created_at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')), seen_epoch DATETIME,
    is_active INTEGER NOT NULL DEFAULT 1, meta TEXT DEFAULT 'null');
CREATE INDEX idx_active_score ON plain_pk (score DESC) WHERE is_active = 1;
CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
CREATE TABLE "Mixed Case" ("Select" TEXT, "from" INTEGER, "quote""d" TEXT, "where" REAL);
CREATE TABLE wr (a TEXT, b INTEGER, c BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE st (k INTEGER PRIMARY KEY, v ANY, t TEXT) STRICT;
CREATE TABLE gen (x REAL, y REAL GENERATED ALWAYS AS (x * 2) STORED, z REAL AS (x + 1) VIRTUAL);
CREATE TABLE floats (id INTEGER PRIMARY KEY, f REAL);
CREATE TABLE ints (id INTEGER PRIMARY KEY, i INTEGER);
CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB, big TEXT);
CREATE TABLE short_varchar (id INTEGER PRIMARY KEY, s VARCHAR(10));
CREATE TABLE empty_one (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE dupes (a INTEGER, b TEXT);
CREATE TABLE nocase (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE);
CREATE TABLE child (id INTEGER PRIMARY KEY, wa TEXT, wb INTEGER,
    FOREIGN KEY (wa, wb) REFERENCES wr (a, b) ON DELETE CASCADE);
CREATE TABLE mixed_int (id INTEGER PRIMARY KEY, n INTEGER);
CREATE VIRTUAL TABLE docs USING fts5(body);
CREATE TRIGGER trg_auto AFTER INSERT ON auto BEGIN SELECT 1; END;
CREATE VIEW active_names AS SELECT name FROM plain_pk WHERE is_active = 1;
"""


def build_zoo(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(ZOO)
    conn.executemany(
        "INSERT INTO plain_pk (id, name, score, created_at, seen_epoch, is_active, meta) VALUES (?,?,?,?,?,?,?)",
        [
            (
                i,
                f"name\t{i}\\x\nline",
                i / 7,
                f"2024-01-{1 + i % 28:02d} 10:00:00",
                1_700_000_000 + i,
                i % 2,
                json.dumps({"i": i, "nested": [i, None]}),
            )
            for i in range(1, 301)
        ],
    )
    conn.executemany("INSERT INTO auto (v) VALUES (?)", [("a",), ("b",)])
    conn.execute("UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'auto'")
    conn.execute("INSERT INTO \"Mixed Case\" VALUES ('x', 1, 'q\"', 2.5)")
    conn.executemany("INSERT INTO wr VALUES (?, ?, ?)", [("k", 1, b"\x00\x01"), ("k", 2, None), ("z", 1, b"")])
    conn.executemany("INSERT INTO st VALUES (?, ?, ?)", [(1, 5, "a"), (2, "text", "b"), (3, 1.5, None)])
    conn.executemany("INSERT INTO gen (x) VALUES (?)", [(1.5,), (None,), (-2.0,)])
    extremes = [1e308, 5e-324, -0.0, math.inf, -math.inf, 0.1, -1.7976931348623157e308, 123456789.123456789]
    conn.executemany("INSERT INTO floats VALUES (?, ?)", list(enumerate(extremes, start=1)))
    conn.executemany("INSERT INTO ints VALUES (?, ?)", [(1, 2**63 - 1), (2, -(2**63)), (3, 0)])
    conn.executemany("INSERT INTO blobs VALUES (?, ?, ?)", [(1, b"\x00" * 10 + b"\xff", "x" * (5 * 1024 * 1024))])
    conn.executemany("INSERT INTO short_varchar VALUES (?, ?)", [(1, "y" * 50), (2, "short")])
    conn.executemany("INSERT INTO dupes VALUES (?, ?)", [(1, "same"), (1, "same"), (2, None)])
    conn.executemany("INSERT INTO nocase VALUES (?, ?)", [(1, "Ann@Example.com"), (2, "bob@example.com")])
    conn.executemany("INSERT INTO child VALUES (?, ?, ?)", [(1, "k", 1), (2, None, None)])
    conn.executemany("INSERT INTO mixed_int VALUES (?, ?)", [(1, 5), (2, "five")])
    conn.execute("INSERT INTO docs VALUES ('full text')")
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zoo(tmp_path_factory.mktemp("zoo") / "zoo.db")


@pytest.fixture
def copied(zoo: Path, pg_dsn: str):  # type: ignore[no-untyped-def]
    report = copy_database(zoo, pg_dsn, CopyOptions(jobs=2, chunk_rows=64))
    with psycopg.connect(pg_dsn) as conn:
        yield report, conn


def column_type(conn: psycopg.Connection, table: str, column: str) -> str:
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = %s",
        [f'"{table}"', column],
    ).fetchone()
    assert row is not None, f"{table}.{column} missing"
    return row[0]


def test_the_plan_is_stored_and_used_by_verify(copied, zoo: Path, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    """The control schema keeps the plan the tables were made from; a later verify renders values the
    same way even when the source changed since (here: a new census would widen plain_pk.score)."""
    report, conn = copied
    stored = control.read_plan(conn, "public")
    assert stored is not None and MigrationPlan.from_dict(stored) == report.plan
    changed = zoo.parent / "changed.db"
    changed.write_bytes(zoo.read_bytes())
    with sqlite3.connect(changed) as src:
        src.execute("UPDATE plain_pk SET score = 'not a number' WHERE id = 7")
    verdict = {t.table: t for t in verify_copy(changed, pg_dsn).tables}
    assert verdict["plain_pk"].differing_keys == [[7]]
    assert all(v.identical for name, v in verdict.items() if name != "plain_pk")


def test_copy_is_verified_identical(copied, zoo: Path, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    report, _conn = copied
    assert report.rows == 300 + 2 + 1 + 3 + 3 + 3 + 8 + 3 + 1 + 2 + 0 + 3 + 2 + 2 + 2
    verdict = verify_copy(zoo, pg_dsn)
    assert verdict.identical, [t for t in verdict.tables if not t.identical]


def test_types_follow_the_data(copied) -> None:  # type: ignore[no-untyped-def]
    _report, conn = copied
    assert column_type(conn, "plain_pk", "score") == "double precision"  # never 4-byte real
    assert column_type(conn, "plain_pk", "created_at") == "timestamp without time zone"
    assert column_type(conn, "plain_pk", "seen_epoch") == "timestamp with time zone"
    assert column_type(conn, "plain_pk", "is_active") == "boolean"
    assert column_type(conn, "plain_pk", "meta") == "jsonb"
    assert column_type(conn, "st", "v") == "text"  # ANY holding int/text/real
    assert column_type(conn, "short_varchar", "s") == "text"  # VARCHAR(10) holding 50 characters
    assert column_type(conn, "mixed_int", "n") == "text"  # text in an INTEGER column
    assert column_type(conn, "blobs", "b") == "bytea"
    assert column_type(conn, "nocase", "email") == "citext"


def test_report_names_every_widened_column(copied) -> None:  # type: ignore[no-untyped-def]
    report, _conn = copied
    noted = {(c["table"], c["column"]) for c in report.choices if c["note"]}
    assert {("mixed_int", "n"), ("short_varchar", "s"), ("st", "v")} <= noted


def test_epoch_integers_are_instants_not_years(copied) -> None:  # type: ignore[no-untyped-def]
    _report, conn = copied
    conn.execute("SET TimeZone = 'UTC'")
    (value,) = conn.execute("SELECT seen_epoch::text FROM plain_pk WHERE id = 1").fetchone()
    assert value == "2023-11-14 22:13:21+00"


def test_constraints_defaults_and_indexes_survive(copied) -> None:  # type: ignore[no-untyped-def]
    _report, conn = copied
    assert conn.execute(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'plain_pk'::regclass AND attname = 'name'"
    ).fetchone() == (True,)
    indexdef = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_active_score'").fetchone()[0]
    assert "(score DESC) WHERE (is_active = true)" in indexdef
    default = conn.execute(
        "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'plain_pk'::regclass "
        "AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'plain_pk'::regclass "
        "AND attname = 'created_at')"
    ).fetchone()[0]
    assert "now()" in default  # evaluated per insert, not a quoted literal or a frozen time
    conn.execute("INSERT INTO plain_pk (name) VALUES ('new')")  # identity, defaults, boolean default
    row = conn.execute("SELECT id, is_active, meta, created_at IS NOT NULL FROM plain_pk WHERE name = 'new'").fetchone()
    assert row == (301, True, None, True)
    fk = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'child'::regclass AND contype = 'f'"
    ).fetchone()[0]
    assert "(wa, wb) REFERENCES wr(a, b) ON DELETE CASCADE" in fk
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO nocase (email) VALUES ('ANN@example.COM')")


def test_autoincrement_continues_above_sqlite_sequence(copied) -> None:  # type: ignore[no-untyped-def]
    _report, conn = copied
    (new_id,) = conn.execute("INSERT INTO auto (v) VALUES ('c') RETURNING id").fetchone()
    assert new_id == 1001


def test_odd_names_values_and_internal_tables(copied, zoo: Path) -> None:  # type: ignore[no-untyped-def]
    report, conn = copied
    # plain names fold to lower case like unquoted SQL; reserved words and odd names stay quoted
    assert conn.execute('SELECT "select", "from", "quote""d", "where" FROM "Mixed Case"').fetchone() == (
        "x",
        1,
        'q"',
        2.5,
    )
    floats = [r[0] for r in conn.execute("SELECT f FROM floats ORDER BY id")]
    with sqlite3.connect(zoo) as source:  # SQLite itself stores -0.0 as 0.0: the source is the truth
        expected = [r[0] for r in source.execute("SELECT f FROM floats ORDER BY id")]
    assert [(f, math.copysign(1, f)) for f in floats] == [(f, math.copysign(1, f)) for f in expected]
    assert floats[:2] == [1e308, 5e-324] and floats[3:6] == [math.inf, -math.inf, 0.1]
    assert [r[0] for r in conn.execute("SELECT i FROM ints ORDER BY id")] == [2**63 - 1, -(2**63), 0]
    assert conn.execute("SELECT b, length(big) FROM blobs").fetchone() == (b"\x00" * 10 + b"\xff", 5 * 1024 * 1024)
    assert conn.execute("SELECT x, y FROM gen ORDER BY x NULLS LAST").fetchall() == [
        (-2.0, -4.0),
        (1.5, 3.0),
        (None, None),
    ]
    assert conn.execute("SELECT count(*) FROM dupes WHERE a = 1").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM empty_one").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM active_names").fetchone() == (150,)
    tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert not any(t.startswith("sqlite_") or t.startswith("docs") for t in tables)
    not_carried = {(s.kind, s.name) for s in report.not_carried}
    assert ("virtual table", "docs") in not_carried and ("trigger", "trg_auto") in not_carried


def test_verify_finds_tampering(copied, zoo: Path, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    _report, conn = copied
    conn.execute("UPDATE plain_pk SET score = score + 1 WHERE id = 42")
    conn.execute("DELETE FROM dupes WHERE b IS NULL")
    conn.execute("INSERT INTO dupes VALUES (1, 'same')")
    conn.commit()
    verdict = {t.table: t for t in verify_copy(zoo, pg_dsn).tables}
    assert verdict["plain_pk"].differing_keys == [[42]]
    assert (verdict["dupes"].missing_in_target, verdict["dupes"].extra_in_target) == (1, 1)
    assert verdict["floats"].identical


def test_names_colliding_at_63_bytes_get_hashed_names(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "long.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f'CREATE TABLE "{LONG_A}" (x)')
        conn.execute(f'CREATE TABLE "{LONG_B}" (x)')
    report = copy_database(path, pg_dsn)
    targets = {r.source: r.target for r in report.renamed if r.kind == "table"}
    assert set(targets) == {LONG_A, LONG_B} and len(set(targets.values())) == 2
    assert all(t.startswith("a" * 54 + "_") and len(t) == 63 for t in targets.values())


def test_column_names_colliding_at_63_bytes_get_hashed_names(tmp_path: Path, pg_dsn: str) -> None:
    # SQLite names are case-insensitive for ASCII, so truncation is how two columns can collide.
    path = tmp_path / "cols.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f'CREATE TABLE t ("{LONG_A}" TEXT, "{LONG_B}" TEXT)')
        conn.execute("INSERT INTO t VALUES ('one', 'two')")
    report = copy_database(path, pg_dsn)
    targets = {r.source: r.target for r in report.renamed if r.kind == "column" and r.table == "t"}
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(f'SELECT "{targets[LONG_A]}", "{targets[LONG_B]}" FROM t').fetchone()
    assert row == ("one", "two")
    assert verify_copy(path, pg_dsn).identical


def bad_utf8_db(path: Path) -> Path:
    """A copy stopped after its first chunk, planned while every text was UTF-8; then row 11 came, not UTF-8.
    (Text that is not UTF-8 when the census runs becomes bytea: see test_copy_real_files.)"""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO notes VALUES (?, ?)", [(i, f"ok {i}") for i in range(1, 11)])
    return path


def stopped_then_bad_utf8(path: Path, dsn: str) -> Path:
    def stop(event: Event) -> None:
        if event.phase == "copy" and event.done >= 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_database(bad_utf8_db(path), dsn, CopyOptions(chunk_rows=5, jobs=1), events=stop)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO notes VALUES (11, CAST(X'6f6b20ff21' AS TEXT))")
        conn.execute("INSERT INTO notes VALUES (12, 'after')")
    return path


def test_invalid_utf8_stops_naming_table_row_and_column(tmp_path: Path, pg_dsn: str) -> None:
    path = stopped_then_bad_utf8(tmp_path / "bad.db", pg_dsn)
    with pytest.raises(CopyDataError, match=r"'notes', row key \[11\], column 'body': invalid UTF-8"):
        copy_database(path, pg_dsn, CopyOptions(chunk_rows=5, jobs=1, resume=True))


def test_invalid_utf8_reject_mode_keeps_every_other_row(tmp_path: Path, pg_dsn: str) -> None:
    rejects = tmp_path / "rejects.jsonl"
    path = stopped_then_bad_utf8(tmp_path / "bad.db", pg_dsn)
    options = CopyOptions(chunk_rows=5, jobs=1, resume=True, on_error="reject", reject_file=str(rejects))
    report = copy_database(path, pg_dsn, options)
    assert report.rejected == 1
    (line,) = rejects.read_text().splitlines()
    record = json.loads(line)
    assert record["key"] == [11]
    assert record["row"] == {"id": {"integer": 11}, "body": {"text_hex": "6f6b20ff21"}}  # the bytes, restorable
    with psycopg.connect(pg_dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM notes ORDER BY id")] == [*range(1, 11), 12]
    # verify reads the bad text too, and names the row the copy left out instead of stopping on it
    [verdict] = verify_copy(path, pg_dsn, plan=report.plan).tables
    assert verdict.differing_keys == [[11]] and verdict.missing_in_target == 1


def test_nul_bytes_in_text_are_kept_as_bytea(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "nul.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
        conn.execute("INSERT INTO t VALUES (1, 'a' || char(0) || 'b'), (2, 'plain')")
    report = copy_database(path, pg_dsn)
    assert any("NUL" in (c["note"] or "") for c in report.choices)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT s FROM t ORDER BY id").fetchall() == [(b"a\x00b",), (b"plain",)]
    assert verify_copy(path, pg_dsn).identical


def test_non_empty_target_without_resume_is_refused(zoo: Path, pg_dsn: str) -> None:
    copy_database(zoo, pg_dsn)
    with pytest.raises(TargetError, match="not empty"):
        copy_database(zoo, pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE TABLE other.mine (x int)")
    with pytest.raises(UsageError, match="nothing to resume"):
        copy_database(zoo, pg_dsn, CopyOptions(schema="other", resume=True))


def test_cli_errors_are_one_line_without_password(zoo: Path, pg_dsn: str, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_password = pg_dsn.replace("password=", "password=wrong")
    cases = [
        ([str(tmp_path / "missing.db"), pg_dsn], "no such file"),
        ([__file__, pg_dsn], "not a SQLite database"),
        ([str(zoo), bad_password], "password authentication failed"),
        ([str(zoo), "host=127.0.0.1 port=1 user=x password=hunter2 connect_timeout=2"], "cannot connect"),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["copy", *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert "hunter2" not in result.output and "wrongp" not in result.output.replace("wrong***", "")
        assert len(result.output.strip().splitlines()) == 1


def test_cli_copy_json_and_dry_run(zoo: Path, pg_dsn: str) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["copy", str(zoo), "--dry-run"])
    assert dry.exit_code == 0 and "CREATE TABLE" in dry.output and "-- NOT CARRIED virtual table docs" in dry.output
    # What the run builds as it goes is in the dry run too: views, ANALYZE, the fallback for refused defaults.
    assert 'CREATE OR REPLACE VIEW "public"."active_names" AS' in dry.output
    assert 'ANALYZE "public"."plain_pk";' in dry.output
    assert 'ALTER TABLE "public"."plain_pk" ALTER COLUMN "is_active" SET DEFAULT' in dry.output
    result = runner.invoke(main, ["copy", str(zoo), pg_dsn, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["verify"]["identical"] is True and payload["rows"] > 300
    assert "password" not in payload["target"] or "***" in payload["target"]


def test_errors_share_one_root() -> None:
    assert issubclass(CopyDataError, PgferryError) and issubclass(NameCollisionError, PgferryError)


def test_nul_after_a_date_and_tables_wider_than_printf(tmp_path: Path, pg_dsn: str) -> None:
    """Rows are rendered by printf(), whose %s stops at a NUL byte: a date-looking text with a NUL must
    not be taken for a date (and truncated), and a table wider than printf's 127 arguments still copies."""
    path = tmp_path / "edge.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, at DATETIME)")
        conn.executemany(
            "INSERT INTO d VALUES (?, ?)", [(1, "2024-01-01 10:00:00"), (2, "2024-01-01 10:00:00\x00junk")]
        )
        columns = ", ".join(f"c{i} TEXT" for i in range(130))
        conn.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {columns})")
        conn.execute(
            f"INSERT INTO wide VALUES (1, {', '.join('?' * 130)})", [f"v{i}" if i % 3 else None for i in range(130)]
        )
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    assert verify_copy(path, pg_dsn, plan=report.plan).identical
    with psycopg.connect(pg_dsn) as pg:
        assert column_type(pg, "d", "at") == "bytea"
        assert pg.execute("SELECT at FROM d WHERE id = 2").fetchone()[0] == b"2024-01-01 10:00:00\x00junk"
        row = pg.execute("SELECT c1, c0, c128, c129 FROM wide").fetchone()
        assert row == ("v1", None, "v128", None)


def test_an_empty_file_is_an_empty_database(tmp_path: Path, pg_dsn: str) -> None:
    """SQLite opens a zero-byte file as an empty database; so does pgferry (nothing to copy, no error)."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    assert report.tables == [] and verify_copy(path, pg_dsn).identical


def test_a_refused_foreign_key_names_the_orphan_key(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "orphans.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent (id))")
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.executemany("INSERT INTO child VALUES (?, ?)", [(1, 1), (2, 99)])
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    assert not [s for s in report.skipped if s.kind == "foreign_key"]  # kept NOT VALID, never dropped
    [unvalidated] = report.unvalidated
    assert (unvalidated.table, unvalidated.references, unvalidated.rows, unvalidated.keys) == (
        "child",
        "parent",
        1,
        [[2]],
    )
    assert sum(t.rows for t in report.tables) == 3  # the rows are all there; the constraint is not validated


def test_progress_reports_census_then_rows(zoo: Path, pg_dsn: str) -> None:
    census: list[tuple[int, int]] = []
    rows: dict[str, tuple[int, int]] = {}
    copy_database(
        zoo,
        pg_dsn,
        CopyOptions(jobs=2, chunk_rows=64),
        events=lambda e: (
            census.append((e.done, e.total or 0))
            if e.phase == "census"
            else rows.__setitem__(e.task, (e.done, e.total or 0))
        ),
    )
    assert census and census[-1][0] == census[-1][1] and [d for d, _ in census] == sorted(d for d, _ in census)
    assert rows["plain_pk"] == (300, 300)


def test_a_corrupt_page_is_one_error_naming_the_table(tmp_path: Path, pg_dsn: str) -> None:
    """The schema reads fine, a data page does not: one line naming the table, no traceback."""
    path = tmp_path / "corrupt.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO big VALUES (?, ?)", [(i, "x" * 500) for i in range(4000)])
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["copy", str(path), pg_dsn])
    assert result.exit_code == 2
    assert "table 'big' cannot be read" in result.output and "Traceback" not in result.output


def test_a_null_blob_stays_null(copied) -> None:  # type: ignore[no-untyped-def]
    """NULL, empty and non-empty BLOBs arrive as they are (the CSV once sent NULL as an empty bytea:
    SQLite's hex(NULL) is '', and verify's own rendering agreed with it)."""
    _report, conn = copied
    rows = conn.execute("SELECT a, b, c IS NULL, c FROM wr ORDER BY a, b").fetchall()
    assert rows == [("k", 1, False, b"\x00\x01"), ("k", 2, True, None), ("z", 1, False, b"")]


def test_verify_tells_a_null_blob_from_an_empty_one(copied, zoo: Path, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    _report, conn = copied
    conn.execute("UPDATE wr SET c = '' WHERE a = 'k' AND b = 2")
    conn.commit()
    verdict = {t.table: t for t in verify_copy(zoo, pg_dsn).tables}
    assert verdict["wr"].differing_keys == [["k", 2]]
    assert all(v.identical for name, v in verdict.items() if name != "wr")
