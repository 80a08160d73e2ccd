"""The traffic generator's pure parts (hypothesis) and its refusals."""

from __future__ import annotations

import random

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from forum.cli import main
from forum.traffic import TrafficError, TrafficReport, check_loopback, parse_server_timing
from forum.traffic.mix import MIX, WRITES, Zipf, next_action
from forum.traffic.stats import percentile

REPORT_KEYS = [
    "users", "duration_s", "requests", "errors", "errors_by_status", "throughput_rps", "latency_ms",
    "queries_per_request", "by_endpoint",
]  # fmt: skip


@given(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False).map(lambda f: round(f, 3)))
def test_server_timing_round_trip(queries: int, ms: float) -> None:
    header = f'db;desc="queries={queries}";dur={ms:.3f}'
    assert parse_server_timing(header) == (queries, float(f"{ms:.3f}"))
    assert parse_server_timing(f"cache;dur=1, {header}") == (queries, float(f"{ms:.3f}"))


@pytest.mark.parametrize("header", [None, "", "db;dur=3", 'app;desc="queries=3";dur=1', "garbage"])
def test_server_timing_without_db_metric(header: str | None) -> None:
    assert parse_server_timing(header) is None


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_an_element_and_monotone(values: list[float], p: float, q: float) -> None:
    ordered = sorted(values)
    low, high = sorted((p, q))
    assert percentile(ordered, low) in ordered
    assert percentile(ordered, low) <= percentile(ordered, high)
    assert percentile(ordered, 100) == ordered[-1]


@given(st.integers(1, 500), st.integers(0, 2**32))
def test_zipf_draws_stay_in_range(n: int, seed: int) -> None:
    rng = random.Random(seed)
    zipf = Zipf(n)
    assert all(0 <= zipf.draw(rng) < n for _ in range(50))


def test_zipf_favours_the_head() -> None:
    rng, zipf = random.Random(1), Zipf(1000)
    draws = [zipf.draw(rng) for _ in range(20_000)]
    assert draws.count(0) > draws.count(10) > draws.count(500)
    assert sum(d < 100 for d in draws) > 0.6 * len(draws)


@given(st.integers(0, 2**32))
def test_users_without_a_session_only_read(seed: int) -> None:
    rng = random.Random(seed)
    names = {next_action(rng, can_write=False) for _ in range(200)}
    assert names and not names & WRITES and "notifications" not in names
    assert names <= set(MIX)


def test_report_has_exactly_the_documented_shape() -> None:
    report = TrafficReport(users=3, duration_s=2.0, elapsed_s=2.0)
    report.add("topic_view", 10.0, 200, 1)
    report.add("topic_view", 30.0, 503, 3)
    report.add("reply_create", 20.0, "timeout", None)
    data = report.to_dict()
    assert list(data) == REPORT_KEYS
    assert data["requests"] == 3 and data["errors"] == 2 and data["errors_by_status"] == {"503": 1, "timeout": 1}
    assert data["throughput_rps"] == 1.5 and data["queries_per_request"] == 2.0
    view = data["by_endpoint"]["topic_view"]
    assert list(view) == ["requests", "errors", "latency_ms", "queries_per_request"]
    assert view["latency_ms"] == {"p50": 10.0, "p95": 30.0, "p99": 30.0}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:1/", "http://[::1]:8080", "http://127.3.2.1"]
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert check_loopback(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8000", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:80", "http://0.0.0.0:1"]
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(TrafficError):
        check_loopback(url)


def test_cli_refuses_in_one_line() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["traffic", "--url", "http://192.0.2.1:80", "--users", "2", "--duration", "1"])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "not a loopback address" in result.output
    result = runner.invoke(main, ["traffic", "--url", "http://127.0.0.1:9", "--users", "2", "--duration", "1"])
    assert result.exit_code == 2 and result.output.startswith("Error: cannot reach")


def test_searches_are_a_small_share_of_the_mix_and_look_for_words_of_titles() -> None:
    from forum.traffic.mix import READ_HEAVY, Popular
    from forum.traffic.run import User, World, next_request

    assert sum(MIX.values()) == 100 and 0 < MIX["search"] <= 5 and READ_HEAVY["search"] <= MIX["search"]
    world = World(*(Popular([1], 0) for _ in range(2)), Popular(["a"], 0), Popular(["a"], 0), [], Popular([1], 0),
                  Popular(["vacuum", "locks"], 3))  # fmt: skip
    requests = [next_request(User(0, random.Random(i)), world, True, {"search": 1}) for i in range(20)]
    assert {(name, method, path) for name, method, path, _ in requests} == {("search", "GET", "/search")}
    assert {r[3]["params"]["q"] for r in requests} == {"vacuum", "locks"}
