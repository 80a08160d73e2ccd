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
# Redis's clock in milliseconds, for the scripts below
_NOW_MS = "local t = redis.call('time') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

# KEYS: the epoch; ARGV: a new random word. The epoch is the word and Redis's time at its birth: a write
# does not trust the followers' acknowledgements until every follower of an older epoch stopped serving.
_ENSURE_EPOCH = (
    _NOW_MS
    + """
if redis.call('exists', KEYS[1]) == 0 then redis.call('set', KEYS[1], ARGV[1] .. '@' .. now) end
return 1
"""
)

# KEYS: the epoch, the stream, the acknowledgements; ARGV: the id to read after, how many, the follower,
# the number of the last entry it applied. The acknowledgement is written before the read, in one script:
# a read that reached Redis always left its follower's position and Redis's time.
_FOLLOW = (
    _NOW_MS
    + """
redis.call('hset', KEYS[3], ARGV[3], ARGV[4] .. ' ' .. now)
local found = redis.call('xread', 'COUNT', ARGV[2], 'STREAMS', KEYS[2], ARGV[1])
return {redis.call('get', KEYS[1]), found}
"""
)

# KEYS: the epoch, the acknowledgements; ARGV: an entry's number, how recent (ms) an acknowledgement must
# be for its follower to be possibly serving, after how long (ms) a silent follower is forgotten.
# 1 when every follower that may serve from L1 has applied the entry, else 0.
_ACKED = (
    _NOW_MS
    + """
local epoch = redis.call('get', KEYS[1])
if not epoch then return 0 end
local born = tonumber(string.match(epoch, '@(%d+)$'))
if not born or now - born < tonumber(ARGV[2]) then return 0 end
local acks = redis.call('hgetall', KEYS[2])
for i = 1, #acks, 2 do
  local applied, at = string.match(acks[i + 1], '^(%-?%d+) (%d+)$')
  if not applied then return 0 end
  local age = now - tonumber(at)
  if age <= tonumber(ARGV[2]) then
    if tonumber(applied) < tonumber(ARGV[1]) then return 0 end
  elseif age > tonumber(ARGV[3]) then
    redis.call('hdel', KEYS[2], acks[i])
  end
end
return 1
"""
)
FORGET_MS = 60_000  # a follower silent this long is dropped from the acknowledgements
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
        self._follow = self._client.register_script(_FOLLOW)
        self._acked = self._client.register_script(_ACKED)
        self._ensure_epoch = self._client.register_script(_ENSURE_EPOCH)
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

    @property
    def _acks_key(self) -> str:
        return f"{self._ns}:acks"

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
        """An epoch where Redis has none (a fresh or restarted Redis); another's if it set one first."""
        self._ensure_epoch(keys=[self._epoch_key], args=[secrets.token_hex(8)])

    def read_stream(
        self, after: str, count: int, follower: str, applied: int
    ) -> tuple[str | None, list[tuple[str, int, list[str] | None]]]:
        """Acknowledge that `follower` applied every entry up to number `applied`, then read the epoch
        and the stream's entries after id `after` (at most `count`): (epoch, [(id, number, tags)]). It
        does not block: Redis times a blocked read out only at its cron's tick (100 ms at the default
        hz), far too coarse for confirming."""
        epoch, found = self._follow(
            keys=[self._epoch_key, self._stream_key, self._acks_key], args=[after, count, follower, applied]
        )
        self._ok()
        entries = []
        for _stream, items in found or []:
            for entry_id, flat in items:
                fields = dict(zip(flat[::2], flat[1::2], strict=False))
                entries.append((entry_id.decode(), int(fields[b"n"]), _tags(fields.get(b"t"))))
        return _text(epoch), entries

    def acked(self, number: int, fresh_s: float) -> bool:
        """Whether every follower that may serve from its L1 has applied entry `number`: each one that
        read the stream within `fresh_s` (a follower silent longer confirmed nothing since, and stopped
        serving), once the epoch is older than `fresh_s` (followers of a Redis that restarted empty left
        no acknowledgement)."""
        done = self._acked(keys=[self._epoch_key, self._acks_key], args=[number, int(fresh_s * 1000), FORGET_MS])
        self._ok()
        return bool(done)

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
