"""pgferry.runtime's statement metrics: the labels a statement's text gets, and the histogram a real
forum request fills on each backend it runs on (SQLite here; PostgreSQL in the API suite's cases)."""

from __future__ import annotations

import re
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from forum_fixtures import Api
from pgferry.runtime import Unavailable, querystats
from pgferry.runtime.metrics import QueryMetrics, labels_of
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy


@pytest.mark.parametrize(
    ("sql", "labels"),
    [
        ("SELECT id FROM forum_topics WHERE id = ?", ("select", "forum_topics")),
        ('select * from "public"."Users" u join x on 1', ("select", "users")),
        ("INSERT INTO notifications (a) VALUES ($1)", ("insert", "notifications")),
        ("UPDATE ONLY wiki_pages SET a = 1", ("update", "wiki_pages")),
        ("DELETE FROM user_sessions WHERE id = ?", ("delete", "user_sessions")),
        ("BEGIN", ("begin", "-")),
        ("PRAGMA journal_mode", ("other", "-")),
        ("WITH t AS (SELECT 1) SELECT * FROM t", ("with", "t")),
    ],
)
def test_labels_are_the_operation_and_the_first_table(sql: str, labels: tuple[str, str]) -> None:
    assert labels_of(sql) == labels


def test_an_observer_sees_each_statement_once_with_its_error_kind() -> None:
    metrics = QueryMetrics(CollectorRegistry()).start()
    try:
        with querystats.timed(lambda exc: None, "SELECT 1 FROM t"):
            pass
        with pytest.raises(ZeroDivisionError), querystats.timed(lambda exc: None, "UPDATE t SET a = 1"):
            raise ZeroDivisionError
    finally:
        metrics.stop()
    with querystats.timed(lambda exc: None, "SELECT 1 FROM t"):  # stopped: not counted
        pass
    text = generate_latest(metrics.registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("db_query_duration_seconds_count", (("operation", "select"), ("table", "t")))] == 1
    assert samples[("db_query_errors_total", (("kind", "ZeroDivisionError"), ("operation", "update")))] == 1


@pytest.mark.parametrize("api", ["optimized"], indirect=True)
def test_the_forum_serves_the_statement_histogram(api: Api) -> None:
    assert api.client.get("/categories").status_code == 200
    text = api.client.get("/metrics").text
    assert 'db_query_duration_seconds_count{operation="select",table="forum_categories"}' in text


@pytest.mark.parametrize("api", ["postgres", "replica"], indirect=True)
def test_the_forum_on_postgresql_serves_its_pool_and_replica_lag(api: Api) -> None:
    assert api.client.get("/categories").status_code == 200
    text = api.client.get("/metrics").text
    assert 'db_pool_connections{database="primary",state="in_use"}' in text
    assert 'db_pool_max_connections{database="primary"}' in text
    if api.pair is not None:  # the replica case: its health and its lag by the heartbeat
        assert 'pgferry_replica_up{replica="replica-1"} 1.0' in text
        for _ in range(100):  # bounded: the lag is absent until the replica has replayed a first heartbeat
            lag = re.search(r'^pgferry_replica_lag_seconds\{replica="replica-1"\} (\S+)$', text, re.MULTILINE)
            if lag is not None:
                break
            time.sleep(0.1)
            text = api.client.get("/metrics").text
        assert lag is not None and float(lag.group(1)) >= 0, text


def test_a_real_backends_error_is_counted_by_its_unavailable_kind(pg_dsn: str) -> None:
    """A statement PostgreSQL cancels at its statement_timeout is Unavailable(kind="statement_timeout"):
    the kind, not the exception's class, labels the error counter."""
    metrics = QueryMetrics(CollectorRegistry()).start()
    db = PostgresDatabase(pg_dsn, PostgresPolicy(pool_min=1, pool_max=1, statement_timeout_ms=50))
    try:
        with pytest.raises(Unavailable) as raised:
            db.one("SELECT pg_sleep(5) AS slept")
        assert raised.value.kind == "statement_timeout"
    finally:
        db.close()
        metrics.stop()
    labels = {"operation": "select", "kind": "statement_timeout"}
    assert metrics.registry.get_sample_value("db_query_errors_total", labels) == 1
