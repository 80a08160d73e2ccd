"""`pgferry advise` on a real PostgreSQL with pg_stat_statements and HypoPG: a missing index proposed
for the statement that needs it, reasons for the statements none helps, a write-heavy table given
fewer proposals than the same reads on a read-only table, duplicate / prefix-covered / unused
indexes found, and the same advice through PgBouncer in transaction pooling."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from forum.services import Forum
from pgdatabases import dbname
from pgferry.advise.advisor import AdviceReport, advise
from pgferry.advise.candidates import Candidate, candidates_of
from pgferry.advise.catalog import read_catalog
from pgferry.advise.parameters import parameter_values
from pgferry.advise.workload import read_statements
from pgferry.cli import main
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import LocalCluster
from pgferry.pg.pgbouncer import throwaway_pgbouncer
from pgferry.workload import capture

ROWS = 30_000


def twins(pg: psycopg.Connection[Any], tables: tuple[str, ...], columns: dict[str, str], values: str) -> None:
    """Tables of one shape (an id and `columns`: name -> type), each with ROWS rows of `values` (SQL of
    g, 1 to ROWS): the same data, so that only the workload tells them apart."""
    names = ", ".join(columns)
    for table in tables:
        pg.execute(
            f"CREATE TABLE {table} (id bigserial PRIMARY KEY, {', '.join(f'{c} {t}' for c, t in columns.items())})"
        )
        pg.execute(f"INSERT INTO {table} ({names}) SELECT {values} FROM generate_series(1, {ROWS}) g")


def make_workload(dsn: str, hot_writes: int = 0) -> None:
    """`orders` (read-only) and `events` (the same shape, written `hot_writes` times) read by customer,
    and `legacy` with redundant indexes; every statement run with server-side parameters ($1), as an
    application's driver sends them."""
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        twins(
            pg,
            ("orders", "events"),
            {"customer_id": "int NOT NULL", "status": "text NOT NULL", "total": "numeric NOT NULL"},
            "g % 3000, 'open', g",
        )
        pg.execute("CREATE TABLE tiny (id int PRIMARY KEY, v int)")
        pg.execute("INSERT INTO tiny SELECT g, g % 5 FROM generate_series(1, 20) g")
        pg.execute("CREATE TABLE legacy (id bigserial PRIMARY KEY, a int, b int)")
        pg.execute("CREATE INDEX legacy_a ON legacy (a)")
        pg.execute("CREATE INDEX legacy_a_again ON legacy (a)")
        pg.execute("CREATE INDEX legacy_b ON legacy (b)")
        pg.execute("CREATE INDEX legacy_b_a ON legacy (b, a)")
        pg.execute("ANALYZE")
        pg.execute("SELECT pg_stat_statements_reset()")
        for i in range(60):
            for table in ("orders", "events"):
                pg.execute(f"SELECT id, total FROM {table} WHERE customer_id = %s", [i], prepare=False)
            pg.execute("SELECT total FROM orders WHERE id = %s", [i + 1])
            pg.execute("SELECT count(*) FROM orders")
            pg.execute("SELECT id FROM tiny WHERE v = %s", [i % 5])
            pg.execute("SELECT %s::int + 1 AS next", [i])  # reads no table
        for i in range(hot_writes):  # moves rows between customers: every index on customer_id is written
            pg.execute("UPDATE events SET customer_id = (customer_id + 1) %% 3000 WHERE id = %s", [i % ROWS + 1])
        for i in range(hot_writes // 10):  # an UPDATE of another column may stay HOT: no cost to such an index
            pg.execute("UPDATE orders SET total = total + 1 WHERE id = %s", [i % ROWS + 1])


def proposed(report: AdviceReport) -> set[tuple[str, tuple[str, ...]]]:
    return {(p.table, p.columns) for p in report.proposals}


def test_the_missing_index_is_proposed_and_the_others_are_explained(pg_dsn: str) -> None:
    make_workload(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        report = advise(pg)
    assert ("orders", ("customer_id",)) in proposed(report)
    best = next(p for p in report.proposals if p.table == "orders")
    assert best.saved_ms > 0 and best.estimated_bytes and best.helps[0].saving >= 0.2
    assert "WHERE customer_id = $1" in best.helps[0].query
    reasons = {n.query: n.reason for n in report.not_helped}
    assert any(r == "already served by orders_pkey" for q, r in reasons.items() if "WHERE id = $1" in q)
    assert any("no candidate indexes" in r for q, r in reasons.items() if "count(*)" in q)
    assert any(r.startswith("low initial cost") for q, r in reasons.items() if "FROM tiny" in q)
    assert any(r.startswith("no candidate tables") for q, r in reasons.items() if "+ $2 AS next" in q), reasons
    assert not any("pg_extension" in q for q in reasons)  # pgferry's own and the catalog's statements left out
    found = {(f.kind, f.index) for f in report.existing}
    assert ("duplicate", "legacy_a_again") in found and ("covered", "legacy_b") in found
    assert ("unused", "legacy_b_a") in found  # no scan since the statistics were reset (pg_stat_user_indexes)
    assert all(f.index != "legacy_pkey" for f in report.existing)  # a constraint is never proposed for removal
    with psycopg.connect(pg_dsn) as pg:  # nothing was left behind: hypothetical indexes only, rolled back
        assert pg.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'").fetchone() == (1,)


def test_a_write_heavy_table_gets_fewer_proposals_than_the_same_reads_on_a_read_only_one(pg_dsn: str) -> None:
    make_workload(pg_dsn, hot_writes=20_000)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        report = advise(pg)
    tables = [p.table for p in report.proposals]
    assert tables.count("orders") > tables.count("events")
    orders = next(p for p in report.proposals if p.table == "orders")
    assert orders.write_cost_ms == 0  # its updates set another column: they may stay HOT
    reasons = [n.reason for n in report.not_helped if "FROM events WHERE customer_id" in n.query]
    assert len(reasons) == 1 and "but cost the writes" in reasons[0]  # it would help; the report says why not


def test_candidates_are_single_multi_column_and_covering_and_proposals_rank_by_calls_times_saving(
    pg_dsn: str,
) -> None:
    """One statement shape on two identical tables, run 80 times on one and 20 on the other: the
    candidates include each column alone, the equality columns followed by the ORDER BY, and that index
    covering the other column read (INCLUDE); both get the multi-column index, the busier table first,
    with four times the time saved for the same share of its cost."""
    query = "SELECT id, opened_at FROM {} WHERE project_id = %s AND state = %s ORDER BY opened_at DESC LIMIT 20"
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        columns = {"project_id": "int", "state": "text", "opened_at": "timestamptz", "body": "text"}
        values = "g % 300, (ARRAY['open', 'closed', 'held'])[g % 3 + 1], now() - g * interval '1 minute', 'x'"
        twins(pg, ("busy", "quiet"), columns, values)
        pg.execute("ANALYZE")
        pg.execute("SELECT pg_stat_statements_reset()")
        for table, calls in (("busy", 80), ("quiet", 20)):
            for i in range(calls):
                pg.execute(query.format(table), [i, "open"], prepare=False)
        found = candidates_of(query.format("busy").replace("%s", "$1", 1).replace("%s", "$2"), read_catalog(pg))
        report = advise(pg)
    keys = ("project_id", "state", "opened_at")
    assert {Candidate("busy", ("project_id",)), Candidate("busy", ("state",))} <= set(found.candidates)
    assert Candidate("busy", keys) in found.candidates
    assert Candidate("busy", keys, ("id",)) in found.candidates  # covering: the other column it reads
    assert [(p.table, p.columns) for p in report.proposals] == [("busy", keys), ("quiet", keys)]
    busy, quiet = (p.helps[0] for p in report.proposals)
    assert (busy.calls, quiet.calls) == (80, 20) and busy.saving == pytest.approx(quiet.saving)
    assert report.proposals[0].saved_ms > 2 * report.proposals[1].saved_ms  # total time x the share saved


def test_a_statement_reading_one_more_column_gets_a_covering_index(pg_dsn: str) -> None:
    """`sum(priority) ... WHERE project_id = $1`: with the table's pages all visible, an index on
    project_id INCLUDE (priority) answers it from the index alone, and wins over the plain one."""
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        twins(pg, ("tickets",), {"project_id": "int", "priority": "int", "body": "text"}, "g % 300, g % 5, 'x'")
        # the throwaway cluster commits asynchronously: VACUUM marks pages all-visible once the WAL is flushed
        pg.execute("CHECKPOINT")
        pg.execute("VACUUM ANALYZE tickets")
        pg.execute("SELECT pg_stat_statements_reset()")
        for i in range(40):
            pg.execute("SELECT sum(priority) FROM tickets WHERE project_id = %s", [i], prepare=False)
        report = advise(pg)
    (proposal,) = report.proposals
    assert (proposal.columns, proposal.include) == (("project_id",), ("priority",)), proposal.definition
    assert proposal.definition.endswith('("project_id") INCLUDE ("priority")')
    (plan,) = [lines for lines in report.plans.values() if any("tickets" in line for line in lines)]
    assert plan == ["Aggregate", "  -> Seq Scan on tickets"]  # before it: the plan advise started from


def on_two_backends(dsn: str) -> None:
    """Two server connections behind `dsn` (a round-robin PgBouncer), and proof that one client's
    consecutive transactions then meet different backends: a hypothetical index made in one is gone in
    the next. Advice that did not keep to one transaction would differ (or fail) from here on."""
    first, second = psycopg.connect(dsn, autocommit=True), psycopg.connect(dsn, autocommit=True)
    with first, second, first.transaction(), second.transaction():  # both at once: PgBouncer opens two
        first.execute("SELECT 1")
        second.execute("SELECT 1")
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        pids = {pg.execute("SELECT pg_backend_pid()").fetchone() for _ in range(4)}
        assert len(pids) == 2, pids
        pg.execute("SELECT * FROM hypopg_create_index('CREATE INDEX ON orders (customer_id)')")
        assert pg.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone() == (0,)
        pg.execute("SELECT hypopg_reset()")  # the other backend's, left behind by the statement before
        assert pg.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone() == (0,)


def test_through_pgbouncer_the_advice_is_the_same(pg_cluster: LocalCluster, pg_dsn: str) -> None:
    """HypoPG's indexes live in one backend; through PgBouncer in transaction pooling one client's
    transactions go to whichever backend is next (round robin here, so they really do alternate)."""
    make_workload(pg_dsn)
    with throwaway_pgbouncer(pg_cluster.dsn(), default_pool_size=2, server_round_robin=True) as bouncer:
        pooled_dsn = bouncer.dsn(dbname(pg_dsn))
        on_two_backends(pooled_dsn)
        direct = CliRunner().invoke(main, ["advise", pg_dsn, "--json"])
        pooled = CliRunner().invoke(main, ["advise", pooled_dsn, "--json"])
        on_two_backends(pooled_dsn)  # advise's transactions did not make the backends one
    assert direct.exit_code == 0 and pooled.exit_code == 0, pooled.output
    shape = lambda out: {(p["table"], tuple(p["columns"])) for p in json.loads(out)["proposals"]}  # noqa: E731
    assert shape(pooled.output) == shape(direct.output) and ("orders", ("customer_id",)) in shape(direct.output)
    costs = lambda out: [[h["cost_after"] for h in p["helps"]] for p in json.loads(out)["proposals"]]  # noqa: E731
    assert costs(pooled.output) == costs(direct.output)  # each planned with its hypothetical index, every time


def test_on_the_migrated_forum_a_planted_missing_index_is_proposed_estimated_and_measured(
    seeded_db: Path, pg_dsn: str
) -> None:
    copy_database(seeded_db, pg_dsn, CopyOptions(jobs=1))  # the default copy a user makes
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        leading = pg.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'forum_replies' AND indexdef LIKE '%(topic_id%'"
        ).fetchone()
        assert leading == (0,)  # `forum seed` plants it: no index finds a topic's replies, in SQLite or the copy
        pg.execute("ANALYZE")
        pg.execute("SELECT pg_stat_statements_reset()")
        topics = [t for (t,) in pg.execute("SELECT id FROM forum_topics ORDER BY id LIMIT 40")]
    forum = Forum.open(pg_dsn, "optimized")
    try:
        for topic in topics:  # the forum's own topic view, on its PostgreSQL backend
            forum.topics.view(topic, limit=50, cursor=None)
    finally:
        forum.close()
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        report = advise(pg, measure=True)
    proposal = next(p for p in report.proposals if p.table == "forum_replies")
    assert proposal.columns[0] == "topic_id" and proposal.estimated_bytes  # HypoPG's estimate of its size
    view = next(h for h in proposal.helps if "json_agg" in h.query)  # the topic view it speeds up
    assert view.cost_after < view.cost_before  # the planner's estimate with the hypothetical index
    assert view.measured_before_ms is not None and view.measured_after_ms is not None
    assert view.measured_after_ms < view.measured_before_ms  # and the real index, built and timed


def test_the_doctors_report_gains_a_postgresql_section(pg_dsn: str, seeded_db: Path, tmp_path: Path) -> None:
    make_workload(pg_dsn)
    html = tmp_path / "report.html"
    done = CliRunner().invoke(main, ["doctor", str(seeded_db), "--postgres", pg_dsn, "--html", str(html), "--json"])
    assert done.exit_code == 0, done.output
    advice = json.loads(done.output)["postgres"]
    assert any(p["table"] == "orders" for p in advice["proposals"])
    page = html.read_text()
    assert "<h2>PostgreSQL (pgferry advise)</h2>" in page and "orders" in page and "legacy_a_again" in page


def sqlite_shop(path: Path, log: Path) -> None:
    """`orders` as make_workload has it, in SQLite, read by customer as an application would (captured)."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT NOT NULL, status TEXT NOT NULL,"
        " total NUMERIC NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO orders (customer_id, status, total) VALUES (?, 'open', ?)", [(g % 3000, g) for g in range(ROWS)]
    )
    conn.commit()
    app = capture(conn, log)
    for i in range(60):
        app.execute("SELECT id, total FROM orders WHERE customer_id = ?", (i,)).fetchall()
    app.close()


def test_the_doctors_report_puts_a_statements_sqlite_and_postgresql_plans_side_by_side(
    pg_dsn: str, tmp_path: Path
) -> None:
    """The same statement captured on SQLite and seen by pg_stat_statements has one fingerprint on both
    sides, so the report's row for it shows both databases' calls, times and plans."""
    make_workload(pg_dsn)
    database, log, html = tmp_path / "shop.db", tmp_path / "capture.jsonl", tmp_path / "report.html"
    sqlite_shop(database, log)
    args = ["doctor", str(database), "--workload", str(log), "--postgres", pg_dsn, "--html", str(html), "--json"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    (on_sqlite,) = [f for f in report["charts"]["fingerprints"] if "FROM orders WHERE customer_id" in f["text"]]
    (on_postgres,) = [w for w in report["postgres"]["workload"] if "FROM orders WHERE customer_id" in w["query"]]
    assert on_sqlite["id"] == on_postgres["fingerprint"]
    assert on_sqlite["calls"] == 60 and on_postgres["calls"] == 60
    assert any(line.startswith("SCAN orders") for line in on_sqlite["plan"]), on_sqlite["plan"]
    assert any("Seq Scan on orders" in line for line in report["postgres"]["plans"][on_postgres["fingerprint"]])
    side = html.read_text().split("<h3>The same statements on both sides</h3>", 1)[1].split("</table>", 1)[0]
    (row,) = [r for r in side.split("<tr>") if "FROM orders WHERE customer_id" in r]
    assert "<pre>SCAN orders" in row and "Seq Scan on orders" in row
    assert "SQLite plan" in side and "PostgreSQL plan" in side


def test_a_filter_every_lookup_repeats_makes_the_proposal_a_partial_index(pg_dsn: str) -> None:
    """`deleted_at IS NULL` and `NOT done` have no value for pg_stat_statements to hide: the candidates
    include the partial index, HypoPG plans it, and it wins where most rows are filtered out."""
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for table, flag in (("posts", "deleted_at timestamptz"), ("tasks", "done boolean NOT NULL")):
            pg.execute(
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, author_id int NOT NULL, {flag}, body text NOT NULL)"
            )
        # 95% of the posts deleted, 90% of the tasks done
        pg.execute(
            "INSERT INTO posts (author_id, deleted_at, body) SELECT g % 500,"
            " CASE WHEN g % 20 = 0 THEN NULL ELSE now() END, repeat('x', 80)"
            f" FROM generate_series(1, {ROWS}) g"
        )
        pg.execute(
            "INSERT INTO tasks (author_id, done, body) SELECT g % 500, g % 10 <> 0, repeat('x', 80)"
            f" FROM generate_series(1, {ROWS}) g"
        )
        pg.execute("ANALYZE")
        pg.execute("SELECT pg_stat_statements_reset()")
        for i in range(40):
            pg.execute("SELECT id, body FROM posts WHERE author_id = %s AND deleted_at IS NULL", [i])
            pg.execute("SELECT count(*) FROM tasks t WHERE t.author_id = %s AND NOT t.done", [i])
        report = advise(pg)
    wheres = {p.table: p.where for p in report.proposals}
    assert wheres == {"posts": '"deleted_at" IS NULL', "tasks": 'NOT "done"'}, [p.definition for p in report.proposals]
    posts = next(p for p in report.proposals if p.table == "posts")
    assert posts.columns[0] == "author_id" and posts.definition.endswith('WHERE "deleted_at" IS NULL')
    assert "deleted_at IS NULL" in posts.helps[0].query
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        full = pg.execute(
            "SELECT hypopg_relation_size(indexrelid) FROM hypopg_create_index('CREATE INDEX ON posts (author_id)')"
        ).fetchone()
    assert full is not None and posts.estimated_bytes is not None and posts.estimated_bytes < full[0] / 5


def test_the_parameter_lookups_of_measure_are_not_counted_as_workload(pg_dsn: str) -> None:
    """`advise --measure` looks up a real value for each parameter with a SELECT on the application's
    table; tagged as advise's own, a later advise does not read it as the application's statement."""
    make_workload(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        query = "SELECT id, total FROM orders WHERE customer_id = $1"
        assert parameter_values(pg, query, read_catalog(pg)) == {1: "0"}  # the most frequent customer_id
        texts = [s.query for s in read_statements(pg, limit=1000)]
        assert any("FROM orders WHERE customer_id" in t for t in texts)  # the application's own
        assert not [t for t in texts if "GROUP BY" in t], texts  # the lookup: advise's, not the workload's
        assert not any("GROUP BY" in h.query for p in advise(pg).proposals for h in p.helps)


def test_measure_survives_a_parameter_whose_stand_in_is_not_a_value_of_its_type(pg_dsn: str) -> None:
    """`day <> $2` says nothing of a value to look up, so $2 is tried as '0', which is no date: that run
    fails after its PREPARE, the prepared statement must go with it (it outlives the savepoint's rollback),
    and the NULL run after it must work; nothing prepared is left on the connection (through PgBouncer
    the next client of that server connection would find it)."""
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pg.execute("CREATE TABLE bookings (id bigserial PRIMARY KEY, guest_id int NOT NULL, day date NOT NULL)")
        pg.execute(
            "INSERT INTO bookings (guest_id, day) SELECT g % 2000, date '2024-01-01' + g % 300"
            f" FROM generate_series(1, {ROWS}) g"
        )
        pg.execute("ANALYZE")
        pg.execute("SELECT pg_stat_statements_reset()")
        for i in range(20):
            pg.execute("SELECT id FROM bookings WHERE guest_id = %s AND day <> %s", [i, "2024-02-01"], prepare=False)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        report = advise(pg, measure=True)
        (proposal,) = report.proposals
        assert proposal.table == "bookings" and proposal.columns[0] == "guest_id"
        (helped,) = proposal.helps
        assert helped.measured_before_ms is not None and helped.measured_after_ms is not None
        assert pg.execute("SELECT name FROM pg_prepared_statements").fetchall() == []
