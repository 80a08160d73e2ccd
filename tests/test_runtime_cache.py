"""pgferry.runtime.cache on a real redis-server (pgferry's throwaway one): single flight per process
and one load across processes, never a value older than a returned write, Redis killed and restarted
under traffic, versions, stale-while-recompute, and the L1-only cache."""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from docs_examples import run_example
from pgferry.runtime.cache import Cache, CachePolicy
from pgferry.runtime.cache.server import LocalRedis, throwaway_redis

WORKER = Path(__file__).with_name("cache_worker.py")


@pytest.fixture
def ns() -> str:
    return f"t{secrets.token_hex(4)}"


def test_a_cold_key_is_loaded_once_per_process_at_l1_and_once_in_all_at_l2(redis_server: LocalRedis, ns: str) -> None:
    procs, threads = 4, 100
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "stampede", redis_server.url, ns, str(procs), str(threads)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    results = []
    for w in workers:
        out, _ = w.communicate(timeout=120)
        assert w.returncode == 0
        results.append(json.loads(out))
    client = redis.Redis.from_url(redis_server.url)
    assert int(client.get(f"test:{ns}:loads") or 0) == 1  # the loader ran once in all four processes
    for r in results:
        assert r["errors"] == [] and r["stats"]["l2"]["errors"] == 0
        assert r["seen"] == ["the value"] * threads
        l1 = r["stats"]["l1"]
        assert l1["misses"] + l1["hits"] == threads
        assert l1["misses"] - l1["waits"] == 1  # one thread per process went on to L2, the rest waited for it
        assert l1["wait_timeouts"] == 0
    assert sum(r["stats"]["l2"]["recomputes"] for r in results) == 1


def _item_db(path: Path) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
    conn.execute("INSERT INTO item VALUES (1, 0)")
    conn.close()
    return path


def _reader(path: Path) -> tuple[sqlite3.Connection, threading.Lock]:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10), threading.Lock()


def test_a_read_in_another_process_after_a_write_returned_is_never_the_old_value(
    redis_server: LocalRedis, ns: str, tmp_path: Path
) -> None:
    db = _item_db(tmp_path / "item.db")
    conn, conn_lock = _reader(db)

    def load() -> int:
        with conn_lock:
            return int(conn.execute("SELECT value FROM item WHERE id = 1").fetchone()[0])

    cache = Cache(redis_server.url, CachePolicy(namespace=ns))
    stop = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:  # readers refilling the key all the time, racing every write
        while not stop.is_set():
            try:
                cache.get("item:1", load, tags=["item:1"])
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=hammer) for _ in range(3)]
    for r in readers:
        r.start()
    writer = subprocess.Popen(
        [sys.executable, str(WORKER), "writer", redis_server.url, ns, str(db), "60"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        for expected in range(1, 61):
            written = int(writer.stdout.readline())
            assert written == expected
            assert cache.get("item:1", load, tags=["item:1"]) == written
            writer.stdin.write("next\n")
            writer.stdin.flush()
    finally:
        stop.set()
        for r in readers:
            r.join()
        writer.stdin.close()
        writer.wait(timeout=30)
        cache.close()
    assert errors == []
    assert writer.returncode == 0
    levels = cache.stats()["levels"]
    assert levels["l1"]["hits"] > 0 and levels["l2"]["recomputes"] >= 60


def test_redis_killed_and_restarted_under_traffic_no_error_and_the_cache_comes_back(tmp_path: Path) -> None:
    db = _item_db(tmp_path / "item.db")
    conn, conn_lock = _reader(db)
    loads = 0

    def load() -> int:
        nonlocal loads
        with conn_lock:
            loads += 1
            return int(conn.execute("SELECT value FROM item WHERE id = 1").fetchone()[0])

    def write(value: int) -> None:
        with cache.invalidating() as tags, conn_lock:
            conn.execute("UPDATE item SET value = ? WHERE id = 1", (value,))
            tags.add("item:1")

    # a generous command timeout: on a loaded machine a slow answer would count as Redis down again
    policy = CachePolicy(namespace="kill", retry_min_s=0.01, retry_max_s=0.05, redis_timeout_s=2.0)
    with throwaway_redis() as server:
        cache = Cache(server.url, policy)
        errors: list[BaseException] = []
        stale: list[tuple[int, int]] = []
        value = 0

        def traffic(rounds: int) -> None:
            nonlocal value
            for i in range(rounds):
                try:
                    if i % 5 == 0:
                        value += 1
                        write(value)
                    got = cache.get("item:1", load, tags=["item:1"])
                    if got != value:
                        stale.append((got, value))
                except BaseException as exc:
                    errors.append(exc)

        traffic(50)
        assert cache.stats()["levels"]["l1"]["hits"] > 0
        server.kill()  # mid-traffic: a crash, the data is gone
        traffic(50)
        assert cache.stats()["redis"]["up"] is False
        bypass = cache.stats()["levels"]["l2"]["bypass"]
        assert bypass > 0
        server.start()  # the same port
        for _ in range(2000):  # the next caller after the retry time finds it: bounded, not timed
            traffic(1)
            if cache.stats()["redis"]["up"]:
                break
        hits_before = cache.stats()["levels"]["l1"]["hits"]
        for _ in range(400):  # bounded: L1 serves again once Redis answers (its stamps can be read)
            traffic(5)
            if cache.stats()["levels"]["l1"]["hits"] > hits_before:
                break
        cache.close()
    assert errors == [] and stale == []
    assert cache.stats()["redis"]["up"] is True
    assert cache.stats()["levels"]["l1"]["hits"] > hits_before  # caching again, on its own


def test_a_new_version_never_reads_the_old_shape(redis_server: LocalRedis, ns: str) -> None:
    cache = Cache(redis_server.url, CachePolicy(namespace=ns))
    assert cache.get("k", lambda: {"old": 1}, version="1") == {"old": 1}
    other = Cache(redis_server.url, CachePolicy(namespace=ns))  # another process: nothing in its L1
    assert other.get("k", lambda: ("new", 2), version="2") == ("new", 2)
    assert other.get("k", lambda: "unused", version="1") == {"old": 1}  # the old version is still its own


def test_a_value_past_fresh_is_served_while_one_caller_recomputes(redis_server: LocalRedis, ns: str) -> None:
    policy = CachePolicy(namespace=ns, fresh_s=0.001, l1_ttl_s=0.001)
    first = Cache(redis_server.url, policy)
    assert first.get("k", lambda: "v1") == "v1"
    second = Cache(redis_server.url, policy)
    remote = second.remote
    assert remote is not None
    token = remote.lock(remote.value_key("1:k"))  # another process is recomputing it
    assert token is not None
    assert second.get("k", lambda: "v2") == "v1"  # the previous value, not a wait
    assert second.stats()["levels"]["l2"]["stale"] == 1
    remote.unlock(remote.value_key("1:k"), token)
    third = Cache(redis_server.url, policy)
    assert third.get("k", lambda: "v2") == "v2"  # past fresh and the lock free: this caller recomputes
    assert third.stats()["levels"]["l2"]["recomputes"] == 1


def test_an_invalidated_value_is_never_served_stale(redis_server: LocalRedis, ns: str) -> None:
    cache = Cache(redis_server.url, CachePolicy(namespace=ns))
    assert cache.get("k", lambda: "old", tags=["a"]) == "old"
    other = Cache(redis_server.url, CachePolicy(namespace=ns))
    remote = other.remote
    assert remote is not None
    token = remote.lock(remote.value_key("1:k"))
    cache.invalidate(["a"])
    assert other.get("k", lambda: "new", tags=["a"]) == "new"  # waited for the lock, then loaded: never "old"
    assert other.stats()["levels"]["l2"]["stale"] == 0
    assert token is not None


def test_an_invalidation_waits_out_a_redis_that_stopped_answering_for_a_moment(ns: str) -> None:
    """Redis paused (SIGSTOP) as a write invalidates: its first tries time out, and it tries again
    until Redis answers, so another process that reaches Redis never serves the old value (given up
    at once, the other process's L1 and L2 would go on serving it under the old generation)."""
    with throwaway_redis() as server:
        policy = CachePolicy(namespace=ns, redis_timeout_s=0.1, retry_min_s=0.05)
        writer, reader = Cache(server.url, policy), Cache(server.url, policy)
        assert reader.get("k", lambda: "old", tags=["a"]) == "old"
        server.pause()
        waking = threading.Timer(0.5, server.resume)
        waking.start()
        try:
            writer.invalidate(["a"])
        finally:
            waking.join()
            server.resume()
        assert writer.stats()["levels"]["l2"]["errors"] >= 1  # it did time out first
        assert reader.get("k", lambda: "new", tags=["a"]) == "new"


def test_without_redis_the_cache_is_l1_and_invalidates_this_process() -> None:
    cache = Cache(None, CachePolicy(namespace="local"))
    assert cache.get("k", lambda: 1, tags=["x"]) == 1
    assert cache.get("k", lambda: 2, tags=["x"]) == 1
    with cache.invalidating() as tags:
        tags.add("x")
    assert cache.get("k", lambda: 3, tags=["x"]) == 3
    assert cache.stats()["levels"]["l1"]["invalidations"] == 1
    assert cache.stats()["redis"] is None


def test_the_docs_example_runs(redis_server: LocalRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    run_example("runtime.md", "## Caches")
