"""copy --into-existing on a real PostgreSQL: the target's tables (made here by hand, as a framework
would) are filled from a SQLite file, every value converted to the target column's type; misfits,
bad values, tables that hold rows, foreign keys without superuser, sequences, resume, dry run, verify."""

from __future__ import annotations

import datetime
import decimal
import json
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from pgferry.cli import main
from pgferry.errors import TargetError, UsageError
from pgferry.migrate import source
from pgferry.migrate.converters import converter_for
from pgferry.migrate.errors import CopyDataError
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify, copy_database
from pgferry.migrate.verify import verify_copy

UTC = datetime.UTC

SOURCE = """
CREATE TABLE "Things" (
    id INTEGER PRIMARY KEY, "Name" VARCHAR(20) NOT NULL, uid CHAR(32), took BIGINT, at DATETIME,
    flag BOOL, price DECIMAL, n INTEGER, span DATETIME, mood VARCHAR(5), doc TEXT, raw JSON, starts TIME
);
"""

TARGET = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE things (
    id bigserial PRIMARY KEY, name varchar(20) NOT NULL, uid uuid, took interval, at timestamptz,
    flag boolean, price numeric(10,2), n numeric, span interval, mood mood, doc jsonb, raw json,
    starts time, created timestamptz NOT NULL DEFAULT now()
);
"""


def thing(i: int) -> tuple[object, ...]:
    return (
        i,
        f"thing {i} é",
        uuid.UUID(int=i * 7919).hex,
        i * 86_400_000_000 + i,  # i days and i microseconds
        f"2024-03-{i % 28 + 1:02d} 12:00:0{i % 10}.{i:06d}",
        i % 2,
        i + 0.25,
        2**62 + i,
        # SQLAlchemy's Interval: 1970-01-01 plus the duration; i = 3 is minus an hour
        "1969-12-31 23:00:00.000000" if i == 3 else f"1970-01-{i % 28 + 1:02d} 0{i % 10}:00:00.{i:06d}",
        "happy" if i % 3 else "sad",
        json.dumps({"i": i, "tags": ["a"]}),
        "7" if i % 2 else '"text"',
        f"{i % 24:02d}:30:00",
    )


def build_source(path: Path, rows: int = 40) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(SOURCE)
        conn.executemany(f"INSERT INTO Things VALUES ({', '.join('?' * 13)})", [thing(i) for i in range(1, rows + 1)])
    conn.close()
    return path


def make_target(dsn: str, ddl: str = TARGET) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ddl)


def test_every_value_is_converted_to_the_target_type(tmp_path: Path, pg_dsn: str) -> None:
    db = build_source(tmp_path / "s.db")
    make_target(pg_dsn)
    job = copy_and_verify(db, pg_dsn, CopyOptions(jobs=2, into_existing=True))
    assert job.identical, job.verify
    assert any("Things -> things (matched ignoring case)" in n for n in job.copy.notes)
    assert any("things.created: not in the source, left to its default" in n for n in job.copy.notes)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        row = conn.execute(
            "SELECT name, uid, took, at, flag, price, n, span, mood::text, doc, raw, starts FROM things WHERE id = 3"
        ).fetchone()
        assert row == (
            "thing 3 é",
            uuid.UUID(int=3 * 7919),
            datetime.timedelta(days=3, microseconds=3),
            datetime.datetime(2024, 3, 4, 12, 0, 3, 3, tzinfo=UTC),
            True,
            decimal.Decimal("3.25"),
            decimal.Decimal(2**62 + 3),
            datetime.timedelta(hours=-1),
            "sad",
            {"i": 3, "tags": ["a"]},
            7,
            datetime.time(3, 30),
        )
        assert conn.execute("SELECT span, raw FROM things WHERE id = 4").fetchone() == (
            datetime.timedelta(days=4, hours=4, microseconds=4),
            "text",
        )
        # the sequence is above the copied keys: the application's next insert gets a new id
        new = conn.execute("INSERT INTO things (name) VALUES ('new') RETURNING id").fetchone()
        assert new == (41,)


def test_a_source_that_does_not_fit_the_target_is_refused_naming_every_misfit(tmp_path: Path, pg_dsn: str) -> None:
    db = build_source(tmp_path / "s.db")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orphan (x INTEGER)")
    conn.close()
    make_target(pg_dsn, TARGET.replace("starts time,", "").replace("DEFAULT now()", ""))
    with pytest.raises(TargetError) as caught:
        copy_database(db, pg_dsn, CopyOptions(jobs=1, into_existing=True))
    message = str(caught.value)
    assert "source table 'orphan' has no table" in message
    assert "column Things.starts has no column in 'things'" in message
    assert "things.created is NOT NULL without a default" in message
    with psycopg.connect(pg_dsn) as conn:  # nothing was written
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (0,)


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("uid", "not-a-uuid", "invalid input syntax for type uuid"),
        ("price", 1.005, "not exactly numeric(10,2): 1.005"),  # numeric(10,2) would round it
        ("span", "yesterday", 'invalid input syntax for type interval: "yesterday"'),
        ("mood", "angry", "enum mood"),
        ("Name", "x" * 21, "too long"),
    ],
)
def test_a_value_the_target_type_cannot_hold_is_refused_naming_key_and_column(
    tmp_path: Path, pg_dsn: str, column: str, value: object, said: str
) -> None:
    db = build_source(tmp_path / "s.db")
    with sqlite3.connect(db) as conn:
        conn.execute(f'UPDATE Things SET "{column}" = ? WHERE id = 17', [value])
    conn.close()
    make_target(pg_dsn)
    with pytest.raises(CopyDataError) as caught:
        copy_database(db, pg_dsn, CopyOptions(jobs=1, into_existing=True))
    message = str(caught.value)
    assert "table 'Things'" in message and "row key [17]" in message
    assert f"column {column!r}" in message and said in message
    rejects = tmp_path / "rejects.jsonl"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE things")
    report = copy_database(
        db,
        pg_dsn,
        CopyOptions(jobs=1, into_existing=True, on_error="reject", reject_file=str(rejects), resume=False),
    )
    assert report.rejected == 1 and report.rows == 39
    assert json.loads(rejects.read_text())["key"] == [17]


def test_tables_that_hold_rows_are_refused_unless_truncated_in_one_statement(tmp_path: Path, pg_dsn: str) -> None:
    db = build_source(tmp_path / "s.db")
    make_target(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO things (name) VALUES ('made by migrate'), ('and another')")
    with pytest.raises(TargetError, match=r"already hold rows: things \(2 rows\).*--truncate-existing"):
        copy_database(db, pg_dsn, CopyOptions(jobs=1, into_existing=True))
    with pytest.raises(UsageError, match="--truncate-existing goes with --into-existing"):
        CopyOptions(truncate_existing=True)
    job = copy_and_verify(db, pg_dsn, CopyOptions(jobs=1, into_existing=True, truncate_existing=True))
    assert job.identical
    assert any("one TRUNCATE): things (2 rows)" in n for n in job.copy.notes)


FAMILY_SOURCE = """
CREATE TABLE a_child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES z_parent (id));
CREATE TABLE z_parent (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE node (id INTEGER PRIMARY KEY, up INTEGER REFERENCES node (id), label TEXT);
"""

FAMILY_TARGET = """
CREATE TABLE z_parent (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);
CREATE TABLE a_child (id bigserial PRIMARY KEY, parent_id integer NOT NULL REFERENCES z_parent (id));
CREATE TABLE node (id integer PRIMARY KEY, up integer REFERENCES node (id) DEFERRABLE, label text);
"""


def _as_owner(pg_dsn: str) -> str:
    """A DSN of a role that owns the database but is no superuser: what an application has."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'pgferry_app'").fetchone():
            conn.execute("CREATE ROLE pgferry_app LOGIN PASSWORD 'app' NOSUPERUSER")
        dbname = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{dbname}" OWNER TO pgferry_app')
        conn.execute("ALTER SCHEMA public OWNER TO pgferry_app")
    return make_conninfo(pg_dsn, user="pgferry_app", password="app")


def test_foreign_keys_hold_without_superuser_parents_first_and_self_references_in_order(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "ROWS_PER_PART", 500)  # several parts per table, copied by two workers
    db = tmp_path / "family.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(FAMILY_SOURCE)
        conn.executemany("INSERT INTO z_parent VALUES (?, ?)", [(i, f"p{i}") for i in range(1, 301)])
        conn.executemany("INSERT INTO a_child VALUES (?, ?)", [(i, i % 300 + 1) for i in range(1, 3001)])
        # each node points at an earlier one, and node 5 at node 6, later in the same chunk
        conn.executemany("INSERT INTO node VALUES (?, ?, ?)", [(i, i - 1 or None, "n") for i in range(1, 2001)])
        conn.execute("UPDATE node SET up = 6 WHERE id = 5")
    conn.close()
    app = _as_owner(pg_dsn)
    make_target(app, FAMILY_TARGET)
    job = copy_and_verify(db, app, CopyOptions(jobs=2, chunk_rows=100, into_existing=True))
    assert job.identical, job.verify
    notes = "\n".join(job.copy.notes)
    assert "tables copied parents first; 1 of 2 deferrable" in notes
    assert "node references itself: its parts are copied one after another" in notes
    assert job.copy.plan is not None and job.copy.plan.table("a_child").after == ["z_parent"]
    with psycopg.connect(app) as conn:
        parts = conn.execute("SELECT source_table, count(*) FROM pgferry.copy_progress GROUP BY 1 ORDER BY 1")
        assert parts.fetchall() == [("a_child", 2), ("node", 2), ("z_parent", 1)]
    with psycopg.connect(app) as conn:
        valid = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated")
        assert valid.fetchone() == (2,)
        assert conn.execute("INSERT INTO z_parent (name) VALUES ('new') RETURNING id").fetchone() == (301,)
        assert conn.execute("INSERT INTO a_child (parent_id) VALUES (301) RETURNING id").fetchone() == (3001,)


def test_an_interrupted_copy_resumes_and_a_later_verify_reads_the_stored_plan(tmp_path: Path, pg_dsn: str) -> None:
    db = build_source(tmp_path / "s.db", rows=500)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE Things SET uid = 'broken' WHERE id = 420")
    conn.close()
    make_target(pg_dsn)
    with pytest.raises(CopyDataError, match="row key \\[420\\]"):
        copy_database(db, pg_dsn, CopyOptions(jobs=1, chunk_rows=100, into_existing=True))
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (400,)  # four chunks committed
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE Things SET uid = ? WHERE id = 420", [uuid.uuid4().hex])
    conn.close()
    report = copy_database(db, pg_dsn, CopyOptions(jobs=1, chunk_rows=100, into_existing=True, resume=True))
    assert report.resumed and report.rows == 500
    verdict = verify_copy(db, pg_dsn)  # no plan passed: the stored one
    assert verdict.identical, verdict
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE things SET took = took + interval '1 microsecond' WHERE id = 250")
    result = CliRunner().invoke(main, ["verify", str(db), pg_dsn, "--json"])
    assert result.exit_code == 1, result.output
    table = json.loads(result.output)["tables"][0]
    assert table["differing_keys"] == [[250]] and table["differing_columns"] == {"took": 1}


def test_dry_run_prints_the_mapping_and_each_conversion(tmp_path: Path, pg_dsn: str) -> None:
    db = build_source(tmp_path / "s.db")
    make_target(pg_dsn)
    result = CliRunner().invoke(main, ["copy", str(db), pg_dsn, "--into-existing", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "-- Things -> public.things: 40 rows" in out
    assert "--   uid -> uid uuid: 32 hex digits as a UUID" in out
    assert "--   took -> took interval: integer microseconds as an interval" in out
    assert "--   span -> span interval: a DATETIME since 1970-01-01 as an interval (SQLAlchemy's Interval)" in out
    assert "--   price -> price numeric(10,2): numbers kept exact; one the type would round is refused" in out
    assert "--   at -> at timestamptz: date-times without a zone taken as UTC" in out
    assert "SELECT setval('public.things_id_seq'::regclass" in out
    with psycopg.connect(pg_dsn) as conn:  # a dry run writes nothing
        assert conn.execute("SELECT to_regnamespace('pgferry')").fetchone() == (None,)
    empty = CliRunner().invoke(main, ["copy", str(db), "--into-existing", "--dry-run"])
    assert empty.exit_code == 2 and "give POSTGRES_DSN" in empty.output


def test_each_conversion_reverses_to_the_original_sqlite_value(tmp_path: Path, pg_dsn: str) -> None:
    """What rollback stands on: the target's values, reversed by their converter, are the SQLite ones."""
    db = build_source(tmp_path / "s.db")
    make_target(pg_dsn)
    report = copy_database(db, pg_dsn, CopyOptions(jobs=1, into_existing=True))
    assert report.plan is not None
    columns = report.plan.table("Things").columns
    names = ", ".join(f'"{c.source}"' for c in columns)
    with sqlite3.connect(db) as conn:
        original = conn.execute(f"SELECT {names} FROM Things ORDER BY id").fetchall()
    conn.close()
    with psycopg.connect(pg_dsn) as pg:
        copied = pg.execute(f"SELECT {', '.join(c.target for c in columns)} FROM things ORDER BY id").fetchall()
    reversed_rows = [
        tuple(None if v is None else converter_for(c).reverse(v) for c, v in zip(columns, row, strict=True))
        for row in copied
    ]
    back = sqlite3.connect(":memory:")  # under the original declarations: their affinity applies again
    back.executescript(SOURCE)
    back.executemany(f"INSERT INTO Things ({names}) VALUES ({', '.join('?' * len(columns))})", reversed_rows)
    again = back.execute(f"SELECT {names} FROM Things ORDER BY id").fetchall()
    for before, after in zip(original, again, strict=True):
        for column, value, returned in zip(columns, before, after, strict=True):
            if column.source == "doc":  # jsonb's spacing and key order: equal as JSON
                value, returned = json.loads(value), json.loads(returned)
            assert (value, type(value)) == (returned, type(returned)), (column.source, value, returned)
