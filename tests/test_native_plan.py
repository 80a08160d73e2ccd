"""The native-schema plan end to end on a real PostgreSQL: `pgferry advise` writes it from a plain copy and
its workload, the user edits it (drops an entry, turns a CHECK into an enum), `pgferry copy --native-plan`
carries it out (partitions, BRIN and trigram indexes, CHECK, enum type, all found in the catalog) and the
copy verifies identical; `--dry-run` shows the DDL; a bad plan is one line and exit 2."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgdatabases import fresh_database
from pgferry.advise.advisor import advise
from pgferry.advise.native import NativeOptions
from pgferry.advise.native_plan_out import native_plan
from pgferry.cli import main
from pgferry.migrate.native_plan import NativePlan, load_native_plan
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import LocalCluster

LOOSE = NativeOptions(min_rows=1_000, brin_min_pages=8)  # small tables, so small thresholds

SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY, happened_at TEXT NOT NULL, kind TEXT NOT NULL, note TEXT);
CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'draft');
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("native_plan") / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    kinds, statuses = ("click", "view", "buy"), ("draft", "live", "gone")
    conn.executemany(
        "INSERT INTO events VALUES (?, datetime(1735689600 + ? * 600, 'unixepoch'), ?, ?)",
        [(i, i, kinds[i % 3], f"note {i}") for i in range(1, 3001)],
    )
    conn.executemany(
        "INSERT INTO docs VALUES (?, ?, ?)",
        [(i, f"title {i:05d} about sqlite", statuses[i % 3]) for i in range(1, 1201)],
    )
    conn.executemany(
        "INSERT INTO users VALUES (?, ?, datetime(1735689600 + ? * 3600, 'unixepoch'))",
        [(i, f"user{i}", i) for i in range(1, 1501)],
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def written_plan(pg_cluster: LocalCluster, source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The plan advise writes on a plain copy of `source` after its workload ran."""
    out = tmp_path_factory.mktemp("native_plan_out") / "native.toml"
    with fresh_database(pg_cluster.dsn()) as dsn:
        copy_database(source, dsn, CopyOptions(jobs=2))
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            pg.execute("ANALYZE")
            pg.execute("SELECT pg_stat_statements_reset()")
        with psycopg.connect(dsn, autocommit=True) as pg:
            for word in ("%sqlite%", "%0042%", "%about%"):
                pg.execute("SELECT id FROM docs WHERE title ILIKE %s", [word])
            pg.execute("SELECT id FROM events WHERE happened_at >= %s", ["2025-01-10"])
        with psycopg.connect(dsn, autocommit=True) as pg:
            native_plan(advise(pg, native=LOOSE).native).dump(out)
        yield out


def catalog(dsn: str) -> dict[str, object]:
    with psycopg.connect(dsn) as pg:
        indexes = {
            r[0]: r[1] for r in pg.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        }
        checks = {
            r[0]: r[1]
            for r in pg.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'"
                " AND connamespace = 'public'::regnamespace"
            )
        }
        partitioned = [r[0] for r in pg.execute("SELECT partrelid::regclass::text FROM pg_partitioned_table")]
        enums = {
            r[0]: r[1]
            for r in pg.execute(
                "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t"
                " JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname"
            )
        }
        column_type = pg.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'docs'::regclass"
            " AND attname = 'status'"
        ).fetchone()
        extensions = [r[0] for r in pg.execute("SELECT extname FROM pg_extension")]
    return {
        "indexes": indexes,
        "checks": checks,
        "partitioned": partitioned,
        "enums": enums,
        "status_type": column_type[0] if column_type else None,
        "extensions": extensions,
    }


def test_advise_writes_each_proposal_with_its_evidence_and_the_refusals(written_plan: Path) -> None:
    text = written_plan.read_text()
    plan = load_native_plan(written_plan)
    kinds = {(e.kind, e.table, e.column) for e in plan.entries}
    assert {
        ("partition", "events", "happened_at"),
        ("brin", "events", "happened_at"),
        ("trigram", "docs", "title"),
        ("check", "docs", "status"),
        ("check", "events", "kind"),
    } <= kinds
    assert not any(e.kind == "partition" and e.table == "users" for e in plan.entries)
    partition = next(e for e in plan.entries if e.kind == "partition")
    assert partition.widen_keys  # its surrogate key (id) gets the time column
    assert "# evidence: rows 3,000" in text and "correlation 1" in text
    assert "partitioned as proposed, each of its about" in text  # the BRIN on events, partitioned too
    assert next(e for e in plan.entries if (e.kind, e.column) == ("check", "status")).values == (
        "draft",
        "gone",
        "live",
    )
    assert "# not partitioned: users (created_at): unique key (name) does not include created_at" in text


def test_the_edited_plan_is_carried_out_by_the_copy_and_verifies_identical(
    pg_dsn: str, source: Path, written_plan: Path, tmp_path: Path
) -> None:
    plan = load_native_plan(written_plan)
    entries = [e for e in plan.entries if (e.kind, e.column) != ("check", "kind")]  # the user drops one
    entries = [replace(e, kind="enum") if e.column == "status" else e for e in entries]  # and wants an enum
    edited = tmp_path / "edited.toml"
    NativePlan(entries).dump(edited)
    copied = CliRunner().invoke(main, ["copy", str(source), pg_dsn, "--native-plan", str(edited), "--jobs", "2"])
    assert copied.exit_code == 0, copied.output
    found = catalog(pg_dsn)
    assert found["partitioned"] == ["events"]
    indexes = found["indexes"]
    assert isinstance(indexes, dict)
    brin = [d for d in indexes.values() if "USING brin (happened_at)" in d and "public.events " in d]
    assert brin, indexes
    assert any("USING gin (title gin_trgm_ops)" in d and "docs" in d for d in indexes.values())
    assert "pg_trgm" in found["extensions"]  # type: ignore[operator]
    assert found["enums"] == {"docs_status_enum": ["draft", "gone", "live"]}
    assert found["status_type"] == "docs_status_enum"
    assert not any("kind" in d for d in found["checks"].values())  # type: ignore[union-attr]
    verified = CliRunner().invoke(main, ["verify", str(source), pg_dsn])
    assert verified.exit_code == 0, verified.output
    with psycopg.connect(pg_dsn) as pg:  # the enum's DEFAULT and values as the application writes them
        pg.execute("INSERT INTO docs (title) VALUES ('new')")
        assert pg.execute("SELECT status::text FROM docs WHERE title = 'new'").fetchone() == ("draft",)
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            pg.execute("INSERT INTO docs (title, status) VALUES ('x', 'other')")


def test_dry_run_shows_the_plans_ddl(source: Path, written_plan: Path) -> None:
    plan = load_native_plan(written_plan)
    entries = [replace(e, kind="enum") if e.column == "status" else e for e in plan.entries]
    edited = written_plan.with_name("dry.toml")
    NativePlan(entries).dump(edited)
    result = CliRunner().invoke(main, ["copy", str(source), "--dry-run", "--native-plan", str(edited)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert 'CREATE EXTENSION IF NOT EXISTS "pg_trgm";' in out
    assert """CREATE TYPE "public"."docs_status_enum" AS ENUM ('draft', 'gone', 'live');""" in out
    assert '"status" "public"."docs_status_enum" DEFAULT \'draft\'::"public"."docs_status_enum" NOT NULL' in out
    assert 'PARTITION BY RANGE ("happened_at")' in out
    assert 'CREATE INDEX "events_happened_at_brin" ON "public"."events" USING brin ("happened_at");' in out
    assert 'USING gin ("title" gin_trgm_ops);' in out
    assert """CHECK ("kind" IN ('buy', 'click', 'view'))""" in out


BAD = [
    ('kind = "brni"\ntable = "events"\ncolumn = "happened_at"', "unknown kind 'brni' (kinds: partition, brin"),
    ('kind = "brin"\ntable = "evnets"\ncolumn = "happened_at"', "no table 'evnets' in the source"),
    ('kind = "trigram"\ntable = "docs"\ncolumn = "titel"', "table 'docs' has no column 'titel'"),
    ('kind = "check"\ntable = "docs"\ncolumn = "status"\nvalues = ["draft", "live"]', "values the plan does not list"),
    ('kind = "partition"\ntable = "events"\ncolumn = "happened_at"\nunit = "year"', "'unit' must be one of"),
    ('kind = "partition"\ntable = "events"\ncolumn = "happened_at"\nunit = "month"', "widen_keys = true"),
    ('kind = "brin"\ntable = "docs"\ncolumn = "id"\nvalues = ["a"]', "'values' does not go with kind 'brin'"),
]


@pytest.mark.parametrize(("entry", "message"), BAD)
def test_a_bad_plan_is_one_line_naming_what_is_wrong_and_exit_2(
    source: Path, tmp_path: Path, entry: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"format = 1\n\n[[proposal]]\n{entry}\n")
    result = CliRunner().invoke(main, ["copy", str(source), "--dry-run", "--native-plan", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_the_cli_writes_the_plan(pg_cluster: LocalCluster, source: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.toml"
    with fresh_database(pg_cluster.dsn()) as dsn:
        copy_database(
            source, dsn, CopyOptions(jobs=2, partitions=("events=happened_at:week",), partition_widen_keys=True)
        )
        result = CliRunner().invoke(main, ["advise", dsn, "--min-rows", "1000", "--native-plan-out", str(out)])
    assert result.exit_code == 0, result.output
    plan = load_native_plan(out)  # events is partitioned already: no partition proposed
    assert ("check", "docs", "status") in {(e.kind, e.table, e.column) for e in plan.entries}
    assert not any(e.kind == "partition" for e in plan.entries)


def test_an_enum_type_the_target_has_already_is_one_line_and_exit_2(pg_dsn: str, source: Path, tmp_path: Path) -> None:
    plan = tmp_path / "enum.toml"
    NativePlan.from_dict(
        {"proposal": [{"kind": "enum", "table": "docs", "column": "status", "values": ["draft", "gone", "live"]}]}
    ).dump(plan)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE TYPE docs_status_enum AS ENUM ('x')")
    result = CliRunner().invoke(main, ["copy", str(source), pg_dsn, "--native-plan", str(plan)])
    assert result.exit_code == 2, result.output
    assert 'type "docs_status_enum" already exists' in result.output and "Traceback" not in result.output


def test_an_enum_on_a_sampled_table_is_checked_row_by_row_and_verifies(pg_dsn: str, tmp_path: Path) -> None:
    """Above 10,000 rows the copy types from a sample and checks every value as it goes: the enum's
    column too (its values were all checked against the list before the copy)."""
    path = tmp_path / "big.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, kind TEXT NOT NULL)")
    conn.executemany("INSERT INTO big VALUES (?, ?)", [(i, ("a", "b", "c")[i % 3]) for i in range(1, 12_001)])
    conn.commit()
    conn.close()
    plan = tmp_path / "big.toml"
    NativePlan.from_dict(
        {"proposal": [{"kind": "enum", "table": "big", "column": "kind", "values": ["a", "b", "c"]}]}
    ).dump(plan)
    result = CliRunner().invoke(main, ["copy", str(path), pg_dsn, "--native-plan", str(plan), "--json"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(pg_dsn) as pg:
        counts = pg.execute("SELECT kind, count(*) FROM big GROUP BY kind ORDER BY kind").fetchall()
        kind_type = pg.execute("SELECT pg_typeof(kind)::text FROM big LIMIT 1").fetchone()
    assert counts == [("a", 4000), ("b", 4000), ("c", 4000)] and kind_type == ("big_kind_enum",)
