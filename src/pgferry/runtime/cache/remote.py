"""L2's side of Redis (redis-py): tag generations, values, the stampede lock, the invalidation stream,
and whether Redis is up.

Every key embeds the namespace. `stamp(tags)` reads the epoch and each tag's generation in one
MGET; the epoch is a random word set when missing, so a Redis that restarted empty (generations back
at 0) can never match a stamp taken before. An invalidation that could not reach Redis rotates the
epoch (a flush of everything) at this process's next contact, before it reads anything.

`publish(tags)` is one script, so atomic: the next number of the invalidation sequence, the tags
appended to the invalidation stream under it, and each tag's generation incremented. Numbers in the
stream are consecutive, so a reader of the stream (pgferry.runtime.cache.follower) knows when it
missed entries (trimmed before it read them) and drops its whole L1 instead of serving from it.

Redis down: a command that fails or times out (`redis_timeout_s`) marks it down; until the retry
time (doubling from `retry_min_s` to `retry_max_s`) callers go to the database without trying, then
the next caller tries again. No read is retried inside a request; a write's invalidation is, for up
to `invalidate_s` (pgferry.runtime.cache.tiered).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pgferry.dsn import redact
from pgferry.runtime.cache.codec import Stamp
from pgferry.runtime.cache.counters import Counters
from pgferry.runtime.cache.policy import CachePolicy

log = logging.getLogger("pgferry.runtime.cache")

# delete the lock only if it is still ours: a loader past its deadline must not free another's lock
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

# KEYS: the sequence, the stream, then each tag's generation; ARGV: the tags (a JSON list), the stream's length
_PUBLISH = """
local n = redis.call('incr', KEYS[1])
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'n', n, 't', ARGV[1])
for i = 3, #KEYS do redis.call('incr', KEYS[i]) end
return n
"""
STREAM_LENGTH = 100_000  # entries the invalidation stream keeps (about): a reader further behind drops its L1

RedisError = redis.RedisError
RedisTimeout = redis.TimeoutError  # a Redis that answers late (paused, starved), not one that is gone


class RemoteCache:
    def __init__(self, url: str, policy: CachePolicy, counters: Counters) -> None:
        self.url = url
        self.policy = policy
        self._counters = counters
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=policy.redis_timeout_s,
            socket_connect_timeout=policy.redis_timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._release = self._client.register_script(_RELEASE)
        self._publish = self._client.register_script(_PUBLISH)
        self._ns = policy.namespace
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._backoff = policy.retry_min_s
        self._down = False
        self._flush_pending = False

    # --- health -------------------------------------------------------------------------------------

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    @property
    def up(self) -> bool:
        return not self._down

    def failed(self, exc: BaseException) -> None:
        """A command failed: Redis is down until the next retry time."""
        self._counters.add("l2", "errors")
        with self._lock:
            self._down_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.policy.retry_max_s)
            first, self._down = not self._down, True
        if first:
            log.warning("Redis at %s unavailable (%s): serving from the database", redact(self.url), exc)

    def _ok(self) -> None:
        if self._down:
            with self._lock:
                self._down, self._backoff = False, self.policy.retry_min_s
            log.warning("Redis at %s answers again: caching resumes", redact(self.url))

    # --- keys ---------------------------------------------------------------------------------------

    def value_key(self, key: str) -> str:
        return f"{self._ns}:v:{key}"

    def _gen_key(self, tag: str) -> str:
        return f"{self._ns}:g:{tag}"

    @property
    def _epoch_key(self) -> str:
        return f"{self._ns}:epoch"

    @property
    def _stream_key(self) -> str:
        return f"{self._ns}:invalidations"

    @property
    def _seq_key(self) -> str:
        return f"{self._ns}:seq"

    # --- commands (each raises RedisError; the caller decides) ------------------------------------------

    def stamp(self, tags: Sequence[str]) -> Stamp:
        """The epoch and each tag's generation now (one round trip; two when the epoch is new)."""
        self.flush_if_pending()
        keys = [self._epoch_key, *(self._gen_key(t) for t in tags)]
        values = self._client.mget(keys)
        if values[0] is None:
            self.ensure_epoch()
            values = self._client.mget(keys)
        self._ok()
        return tuple("0" if v is None else v.decode() for v in values)  # type: ignore[union-attr]

    def flush_if_pending(self) -> None:
        """Rotate the epoch if an invalidation of this process missed Redis (missed_invalidation)."""
        if self._flush_pending:
            self._client.delete(self._epoch_key)
            self._flush_pending = False
            log.warning("an invalidation missed Redis while it was down: every cached value was dropped")

    def publish(self, tags: Sequence[str]) -> int:
        """A new generation for each tag and the tags on the invalidation stream (one round trip,
        atomic); the entry's number. Generation keys have no TTL: Redis must evict only keys with one
        (volatile-*), or not at all."""
        keys = [self._seq_key, self._stream_key, *(self._gen_key(t) for t in tags)]
        n = self._publish(keys=keys, args=[json.dumps(list(tags)), STREAM_LENGTH])
        self._ok()
        return int(n)

    def stream_position(self) -> tuple[str | None, int, str]:
        """(epoch, the last entry's number, its id) at one instant (a transaction): where a reader of
        the stream starts. The epoch is None when Redis has none yet."""
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self._epoch_key)
        pipe.get(self._seq_key)
        pipe.xrevrange(self._stream_key, count=1)
        epoch, seq, last = pipe.execute()
        self._ok()
        return _text(epoch), int(seq or 0), last[0][0].decode() if last else "0-0"

    def ensure_epoch(self) -> None:
        """An epoch word where Redis has none (a fresh or restarted Redis); another's if it set one first."""
        self._client.set(self._epoch_key, secrets.token_hex(8), nx=True)

    def read_stream(self, after: str, count: int) -> tuple[str | None, list[tuple[str, int, list[str] | None]]]:
        """The epoch now, then the stream's entries after id `after` (at most `count`): (epoch, [(id,
        number, tags)]). It does not block: Redis times a blocked read out only at its cron's tick
        (100 ms at the default hz), far too coarse for confirming."""
        pipe = self._client.pipeline(transaction=False)
        pipe.get(self._epoch_key)
        pipe.xread({self._stream_key: after}, count=count)
        epoch, found = pipe.execute()
        self._ok()
        entries = []
        for _stream, items in found or []:
            for entry_id, fields in items:
                tags = _tags(fields.get(b"t"))
                entries.append((entry_id.decode(), int(fields[b"n"]), tags))
        return _text(epoch), entries

    def missed_invalidation(self) -> None:
        """An invalidation could not reach Redis: drop everything at the next contact."""
        self._flush_pending = True

    def get(self, key: str) -> bytes | None:
        blob = self._client.get(key)
        return blob  # type: ignore[return-value]

    def put(self, key: str, blob: bytes) -> None:
        self._client.set(key, blob, px=int(self.policy.keep_s * 1000))

    def lock(self, key: str) -> str | None:
        """The stampede lock of `key` with its deadline, or None when another caller holds it."""
        token = secrets.token_hex(8)
        got = self._client.set(f"{self._ns}:l:{key}", token, nx=True, px=int(self.policy.lock_s * 1000))
        return token if got else None

    def unlock(self, key: str, token: str) -> None:
        self._release(keys=[f"{self._ns}:l:{key}"], args=[token])

    def close(self) -> None:
        self._client.close()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _tags(field: bytes | None) -> list[str] | None:
    """An entry's tags (a JSON list: a tag may hold any character); None when the field is not one (the
    reader then cannot know what the entry invalidated)."""
    try:
        found = json.loads(field) if field is not None else None
    except ValueError:
        return None
    return [str(t) for t in found] if isinstance(found, list) else None
