"""L1 confirmed by the invalidation stream (pgferry.runtime.cache.follower), on a real redis-server: a hit
asks Redis nothing; another process's write reaches this process's L1 through the stream; a reader
whose follower stalls stops serving L1 before the write that it missed returns; a gap in the stream's
numbers or a new epoch drops L1 whole; a write returns once every follower that may serve acknowledged
it, and waits confirm_s out when one lags, fell silent only just, or the epoch is too young to trust."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator

import pytest
import redis

from pgferry.runtime.cache import Cache, CachePolicy
from pgferry.runtime.cache.remote import RedisError, RemoteCache
from pgferry.runtime.cache.server import LocalRedis


@pytest.fixture
def caches(redis_server: LocalRedis) -> Iterator[tuple[Cache, Cache, str]]:
    """A reader and a writer (two processes' caches) on one namespace."""
    ns = f"f{secrets.token_hex(4)}"
    policy = CachePolicy(namespace=ns, redis_timeout_s=2.0)
    reader, writer = Cache(redis_server.url, policy), Cache(redis_server.url, policy)
    try:
        yield reader, writer, ns
    finally:
        reader.close()
        writer.close()


@contextlib.contextmanager
def processes(redis_server: LocalRedis, n: int, confirm_s: float, epoch_age_s: float) -> Iterator[list[Cache]]:
    """`n` caches (processes) on a fresh namespace whose epoch was born `epoch_age_s` ago (Redis's clock)."""
    ns = f"f{secrets.token_hex(4)}"
    client = redis.Redis.from_url(redis_server.url)
    seconds, micros = client.time()
    client.set(f"{ns}:epoch", f"{secrets.token_hex(8)}@{int(seconds * 1000 + micros // 1000 - epoch_age_s * 1000)}")
    policy = CachePolicy(namespace=ns, redis_timeout_s=2.0, confirm_s=confirm_s)
    caches = [Cache(redis_server.url, policy) for _ in range(n)]
    try:
        waiting = threading.Event()
        for _ in range(400):  # until each follower has read the stream (and acknowledged its position)
            if client.hlen(f"{ns}:acks") == n:
                break
            waiting.wait(0.005)
        assert client.hlen(f"{ns}:acks") == n
        yield caches
    finally:
        for cache in caches:
            cache.close()


def confirms(cache: Cache) -> tuple[int, int]:
    """(writes acknowledged by every follower, writes that waited confirm_s out) of this cache."""
    l1 = cache.stats()["levels"]["l1"]
    return l1["confirm_acks"], l1["confirm_timeouts"]


def dropped(reader: Cache) -> bool:
    """Whether L1 stops serving "k" within a bounded wait (the follower reads every few milliseconds)."""
    waiting = threading.Event()
    for _ in range(400):
        if reader.peek("k", tags=["t"]) is None:
            return True
        waiting.wait(0.005)
    return False


def test_an_l1_hit_asks_redis_nothing(caches: tuple[Cache, Cache, str], monkeypatch: pytest.MonkeyPatch) -> None:
    reader, _writer, _ns = caches
    assert reader.get("k", lambda: "v", tags=["t"]) == "v"

    def no_redis(*args: object, **kwargs: object) -> None:
        raise AssertionError("an L1 hit asked Redis")

    for name in ("stamp", "get", "lock"):
        monkeypatch.setattr(RemoteCache, name, no_redis)
    assert [reader.get("k", lambda: "loaded again", tags=["t"]) for _ in range(50)] == ["v"] * 50
    assert reader.peek("k", tags=["t"]) == "v"
    assert reader.stats()["levels"]["l1"]["hits"] == 51


def test_another_processs_write_reaches_l1_through_the_stream(caches: tuple[Cache, Cache, str]) -> None:
    reader, writer, _ns = caches
    assert reader.get("k", lambda: "old", tags=["t"]) == "old"
    assert reader.get("other", lambda: "kept", tags=["u"]) == "kept"
    writer.invalidate(["t"])  # returns confirm_s after publishing: the reader's follower has applied it
    assert reader.peek("k", tags=["t"]) is None
    assert reader.get("k", lambda: "new", tags=["t"]) == "new"
    assert reader.peek("other", tags=["u"]) == "kept"  # a tag nobody wrote keeps its values


def test_a_tag_may_hold_any_character(caches: tuple[Cache, Cache, str]) -> None:
    reader, writer, _ns = caches
    odd = 'page:"a\nb"'
    assert reader.get("k", lambda: "old", tags=[odd]) == "old"
    assert reader.get("other", lambda: "kept", tags=["a", "b"]) == "kept"
    writer.invalidate([odd])
    assert reader.peek("k", tags=[odd]) is None
    assert reader.peek("other", tags=["a", "b"]) == "kept"  # not split into "a" and "b"


def test_a_reader_whose_follower_stalls_stops_serving_l1_before_the_write_returns(
    caches: tuple[Cache, Cache, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer, _ns = caches
    assert reader.get("k", lambda: "old", tags=["t"]) == "old"
    stalled, release = threading.Event(), threading.Event()
    reading = RemoteCache.read_stream

    def stall(self: RemoteCache, after: str, count: int, follower: str, applied: int) -> object:
        if self is reader.remote:  # the reader's follower reads nothing new until released
            stalled.set()
            release.wait(30)
        return reading(self, after, count, follower, applied)

    monkeypatch.setattr(RemoteCache, "read_stream", stall)
    try:
        assert stalled.wait(10)
        writer.invalidate(["t"])  # the reader's follower never saw it: it confirmed before the publish
        assert confirms(writer) == (0, 1)  # so the write waited confirm_s out
        assert reader.peek("k", tags=["t"]) is None  # its confirmation is older than confirm_s now
        assert reader.get("k", lambda: "new", tags=["t"]) == "new"  # L2's stamp, read from Redis
        assert reader.stats()["levels"]["l1"]["bypass"] >= 1
    finally:
        release.set()


def test_entries_trimmed_unread_drop_l1_whole(caches: tuple[Cache, Cache, str], redis_server: LocalRedis) -> None:
    reader, _writer, ns = caches
    assert reader.get("k", lambda: "old", tags=["t"]) == "old"
    client = redis.Redis.from_url(redis_server.url)
    seq = int(client.incrby(f"{ns}:seq", 5))  # four entries the reader will never read (trimmed, say)
    client.xadd(f"{ns}:invalidations", {"n": seq, "t": "unrelated"})
    assert dropped(reader)  # what the missing entries invalidated is unknown: all gone
    assert reader.get("k", lambda: "reloaded", tags=["t"]) == "old"  # L2 still holds it under its stamp


def test_a_new_epoch_drops_l1_whole(caches: tuple[Cache, Cache, str], redis_server: LocalRedis) -> None:
    reader, _writer, ns = caches
    assert reader.get("k", lambda: "old", tags=["t"]) == "old"
    redis.Redis.from_url(redis_server.url).delete(f"{ns}:epoch")  # a Redis restarted empty looks like this
    assert dropped(reader)
    assert reader.get("k", lambda: "new", tags=["t"]) == "new"  # and L2's old stamp is gone with the epoch


def test_redis_errors_leave_l1_unconfirmed_not_served(
    caches: tuple[Cache, Cache, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, _writer, _ns = caches
    assert reader.get("k", lambda: "old", tags=["t"]) == "old"

    def down(self: RemoteCache, after: str, count: int, follower: str, applied: int) -> object:
        raise RedisError("down")

    monkeypatch.setattr(RemoteCache, "read_stream", down)
    assert dropped(reader)


def test_a_write_returns_once_every_follower_acknowledged_it(redis_server: LocalRedis) -> None:
    with processes(redis_server, 3, confirm_s=30.0, epoch_age_s=600) as (writer, *readers):
        for reader in readers:
            assert reader.get("k", lambda: "old", tags=["t"]) == "old"
        writer.invalidate(["t"])  # without the acknowledgements this would take 30 s and count a timeout
        assert confirms(writer) == (1, 0)
        assert all(reader.peek("k", tags=["t"]) is None for reader in readers)  # each applied it first


def test_a_follower_that_fell_silent_holds_writes_until_it_cannot_be_serving(redis_server: LocalRedis) -> None:
    with processes(redis_server, 3, confirm_s=0.5, epoch_age_s=600) as (writer, reader, gone):
        gone.close()  # a process that died: its last acknowledgement stays behind in Redis
        writer.invalidate(["t"])
        assert confirms(writer) == (0, 1)  # it was heard from within 2 x confirm_s: it might be serving
        threading.Event().wait(1.2)  # past 2 x confirm_s: it cannot be serving any more
        assert reader.get("k", lambda: "old", tags=["t"]) == "old"
        writer.invalidate(["t"])
        assert confirms(writer) == (1, 1) and reader.peek("k", tags=["t"]) is None


def test_a_young_epoch_is_not_trusted_with_acknowledgements(redis_server: LocalRedis) -> None:
    """A Redis that restarted empty lost every acknowledgement, while followers of the old one may serve
    for up to confirm_s: writes wait confirm_s out until the epoch is older than that (twice, here)."""
    with processes(redis_server, 2, confirm_s=1.0, epoch_age_s=0) as (writer, reader):
        assert reader.get("k", lambda: "old", tags=["t"]) == "old"
        writer.invalidate(["t"])
        assert confirms(writer) == (0, 1) and reader.peek("k", tags=["t"]) is None


def test_a_write_held_by_a_silent_follower_looks_for_its_acknowledgement_at_the_followers_cadence(
    redis_server: LocalRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An acknowledgement comes with a follower's read of the stream (every follow_s): a write that
    waits looks that often, not every millisecond (which cost a write 50 Redis calls in confirm_s)."""
    looks = []
    asking = RemoteCache.acked

    def counted(self: RemoteCache, number: int, fresh_s: float) -> bool:
        looks.append(number)
        return asking(self, number, fresh_s)

    monkeypatch.setattr(RemoteCache, "acked", counted)
    with processes(redis_server, 2, confirm_s=0.5, epoch_age_s=600) as (writer, gone):
        gone.close()  # heard from within 2 x confirm_s and silent since: the write waits confirm_s out
        writer.invalidate(["t"])
        assert confirms(writer) == (0, 1)
    policy = writer.policy
    assert 1 <= len(looks) <= policy.confirm_s / policy.follow_s + 5, len(looks)  # every 1 ms: about 500
