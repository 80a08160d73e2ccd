"""This process's reader of the invalidation stream: what lets L1 serve without asking Redis.

A thread reads the stream (pgferry.runtime.cache.remote: every write's tags, numbered) and bumps the
tags' generations in this process (`on_tags`), so an L1 entry of an invalidated tag is a miss. A read
of the stream that reached its end *confirms* L1 as of the moment that read was sent: every
invalidation published before then has been applied. L1 serves only while its last confirmation is
younger than `policy.confirm_s`, and a write's invalidation waits `confirm_s` after its publish before
it returns (pgferry.runtime.cache.tiered). So once a write has returned, any process that serves from
L1 confirmed after the write's entry was in the stream: it has applied it. No lookup pays a round
trip to Redis for that.

Each read also acknowledges, in Redis, the number of the last entry this follower applied (before the
read, in the same script). A write returns as soon as every follower that read the stream within
2 x `confirm_s` has acknowledged its entry (RemoteCache.acked): usually a few milliseconds, as a follower
that read entries reads again at once. A follower that fell silent stopped serving by then; one that
reads but lags holds the write for `confirm_s` at most, as before.

L1 is dropped whole (`on_reset`) when the follower cannot know what it missed: a new epoch (Redis
restarted empty, or an invalidation missed Redis and rotated it), or a gap in the entries' numbers
(entries trimmed before it read them). While Redis does not answer, nothing is confirmed and L1 is
not served (the callers go to L2 and, Redis being down, to the database).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence

from pgferry.runtime.cache.policy import CachePolicy
from pgferry.runtime.cache.remote import RedisError, RemoteCache

log = logging.getLogger("pgferry.runtime.cache")

READ_COUNT = 1_000  # entries per read of the stream
NEVER = float("-inf")


class Follower:
    def __init__(
        self,
        remote: RemoteCache,
        policy: CachePolicy,
        on_tags: Callable[[Sequence[str]], None],
        on_reset: Callable[[], None],
    ) -> None:
        self._remote = remote
        self._policy = policy
        self._on_tags = on_tags
        self._on_reset = on_reset
        self._confirmed_at = NEVER  # time.monotonic() when the last read that reached the end was sent
        self.name = f"{os.getpid()}-{secrets.token_hex(4)}"  # this follower in the acknowledgements
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgferry-cache-follower", daemon=True)
        self._thread.start()

    def confirmed(self, wait_s: float) -> bool:
        """Whether L1 may serve now; when its confirmation is too old, wait up to `wait_s` for the next
        (a reader thread waiting here gives the follower its turn on a busy interpreter)."""
        if self.following:
            return True  # without the lock: every lookup asks, and a contended lock convoys the threads
        deadline = time.monotonic() + wait_s
        with self._changed:
            while True:
                if self.following:
                    return True
                now = time.monotonic()
                if now >= deadline or self._stop.is_set():
                    return False
                self._changed.wait(deadline - now)

    def _run(self) -> None:
        epoch: str | None = None
        after, expected = "0-0", 0
        backoff = self._policy.retry_min_s
        while not self._stop.is_set():
            try:
                if epoch is None:  # start (or start again) at the stream's end, under the current epoch
                    self._remote.flush_if_pending()
                    epoch, seq, after = self._remote.stream_position()
                    if epoch is None:
                        self._remote.ensure_epoch()
                        continue
                    expected = seq + 1
                    self._on_reset()
                sent = time.monotonic()
                now_epoch, entries = self._remote.read_stream(after, READ_COUNT, self.name, expected - 1)
                if now_epoch != epoch:
                    log.info("the cache's epoch changed (Redis restarted or a flush): L1 dropped")
                    epoch = None
                    continue
                for entry_id, number, tags in entries:
                    if number != expected:  # entries trimmed unread: what they invalidated is unknown
                        log.warning("the cache missed %d invalidations: L1 dropped", number - expected)
                        self._on_reset()
                    elif tags is None:  # not written by publish(): what it invalidated is unknown
                        log.warning("an unreadable invalidation entry %s: L1 dropped", entry_id)
                        self._on_reset()
                    elif tags:
                        self._on_tags(tags)
                    after, expected = entry_id, number + 1
                backoff = self._policy.retry_min_s
                if len(entries) < READ_COUNT:  # at the end: everything published before `sent` is applied
                    with self._changed:
                        self._confirmed_at = sent
                        self._changed.notify_all()
                    if not entries:  # after entries, read again at once: it acknowledges them
                        self._stop.wait(self._policy.follow_s)
            except RedisError as exc:  # not confirmed meanwhile; the next read checks the epoch and numbers
                self._remote.failed(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._policy.retry_max_s)
            except Exception:  # a bug must not end the thread: L1 would stay unconfirmed for good, silently
                log.exception("the cache's invalidation follower failed; starting again")
                epoch = None
                self._stop.wait(backoff)

    @property
    def following(self) -> bool:
        """Whether the last read that reached the stream's end is younger than confirm_s (no wait)."""
        return time.monotonic() - self._confirmed_at < self._policy.confirm_s

    def stop(self) -> None:
        """Tell the thread to end (it does within follow_s); close() also waits for it."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=self._policy.follow_s + self._policy.redis_timeout_s + 1.0)
