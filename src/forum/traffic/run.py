"""`forum traffic`: simulated users against a running forum, on loopback, bounded in time and count.

Three phases: discover (categories, open topics, wiki pages, popular tags), sign up one account per
user (not measured; a few at a time, retried when the server is busy), then the measured run: every
user loops over the mix until the deadline (or the request budget), each request timed on the
client and its statement count read from the Server-Timing header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from forum.traffic.acks import Acknowledged
from forum.traffic.mix import MIX, Popular, next_action
from forum.traffic.stats import TrafficReport, parse_server_timing
from pgferry.errors import UsageError

log = logging.getLogger("forum.traffic")

MAX_USERS = 1000
MAX_DURATION_S = 3600.0
REQUEST_TIMEOUT_S = 30.0
SIGNUP_CONCURRENCY = 4
SIGNUP_TRIES = 6
_WORD = re.compile(r"[a-z]{4,}")  # a word of a title worth searching for


class TrafficError(UsageError):
    """The target cannot be used: not loopback, unreachable, not a forum."""


def check_loopback(url: str) -> str:
    """The URL without a trailing slash, if it is http(s) on a loopback address; else TrafficError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TrafficError(f"{url!r} is not an http:// URL")
    host = parts.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise TrafficError(f"{host} is not a loopback address: forum traffic only targets 127.0.0.1, ::1 or localhost")
    return url.rstrip("/")


@dataclass(frozen=True)
class TrafficOptions:
    users: int
    duration_s: float
    seed: int = 42
    think_ms: float = 0.0  # mean of an exponential pause between a user's requests; 0: none
    max_requests: int | None = None
    timeline: bool = False  # keep every request's time, endpoint, latency and status (TrafficReport.timeline)
    mix: dict[str, int] | None = None  # endpoint weights (forum.traffic.mix.MIX's names); None: MIX
    acknowledge: bool = False  # note every write answered 2xx (TrafficReport.acknowledged, forum.traffic.acks)

    def check(self) -> None:
        if not 1 <= self.users <= MAX_USERS:
            raise TrafficError(f"--users must be between 1 and {MAX_USERS}")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise TrafficError(f"--duration must be more than 0 and at most {MAX_DURATION_S:g} seconds")
        if self.max_requests is not None and self.max_requests < 1:
            raise TrafficError("--max-requests must be at least 1")
        if self.mix is not None and (not self.mix or set(self.mix) - set(MIX) or min(self.mix.values()) < 0):
            raise TrafficError(f"a traffic mix weighs some of {', '.join(MIX)} (0 or more each)")


@dataclass
class World:
    """What the users act on, found before the run."""

    categories: Popular[int]
    topics: Popular[int]
    pages: Popular[str]
    editable: Popular[str]
    tags: list[str]
    users: Popular[int]
    words: Popular[str]  # words of the topics' titles, for searches


@dataclass
class User:
    """One simulated user: its choices and its session. Each user sends through a client of its own
    (its own cookie jar, so the read-your-writes cookie of one user's writes never goes with another
    user's reads; the connection pool is shared)."""

    index: int
    rng: random.Random
    headers: dict[str, str] = field(default_factory=dict)
    unread: list[int] = field(default_factory=list)


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    if response.status_code != 200:
        raise TrafficError(f"GET {path} answered {response.status_code}: is this a forum server?")
    return response.json()


async def discover(client: httpx.AsyncClient, seed: int) -> World:
    try:
        categories = [c["id"] for c in await _get(client, "/categories")]
    except httpx.TransportError as exc:
        raise TrafficError(f"cannot reach {client.base_url}: {exc}") from None
    topics: list[int] = []
    authors: set[int] = set()
    words: set[str] = set()
    for category in categories:
        page = await _get(client, f"/categories/{category}/topics", limit=100)
        topics += [t["id"] for t in page["topics"] if not t["is_locked"]]
        authors.update(t["author"]["id"] for t in page["topics"])
        words.update(w for t in page["topics"] for w in _WORD.findall(str(t.get("title", "")).lower()))
    listing = await _get(client, "/wiki", limit=100)
    slugs = [p["slug"] for p in listing["pages"]]
    editable = []
    for slug in slugs[:60]:
        page = await _get(client, f"/wiki/{slug}")
        if not page["is_locked"] and not page["is_protected"]:
            editable.append(slug)
    tags = [t["name"] for t in await _get(client, "/tags", limit=50)]
    if not topics or not categories:
        raise TrafficError("the forum has no open topics to read: seed it first (forum seed)")
    return World(
        Popular(categories, seed),
        Popular(topics, seed + 1),
        Popular(slugs, seed + 2),
        Popular(editable, seed + 3),
        tags,
        Popular(sorted(authors), seed + 4),
        Popular(sorted(words) or ["sqlite"], seed + 5),
    )


async def sign_up(users: list[tuple[User, httpx.AsyncClient]], run_id: str) -> int:
    """Register every user (a few at a time, retried on 429/503); returns how many failed."""
    slots = asyncio.Semaphore(SIGNUP_CONCURRENCY)

    async def one(user: User, client: httpx.AsyncClient) -> bool:
        name = f"t{run_id}_{user.index}"
        body = {"username": name, "email": f"{name}@traffic.example", "password": secrets.token_urlsafe(12)}
        async with slots:
            for attempt in range(SIGNUP_TRIES):
                try:
                    response = await client.post("/auth/register", json=body)
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 201:
                    user.headers = {"Authorization": f"Bearer {response.json()['token']}"}
                    return True
                await asyncio.sleep(0.05 * 2**attempt * (1 + user.rng.random()))
        return False

    results = await asyncio.gather(*(one(u, c) for u, c in users))
    return results.count(False)


def next_request(
    user: User, world: World, can_write: bool, mix: dict[str, int] | None = None
) -> tuple[str, str, str, dict[str, Any]]:
    """The user's next action: (endpoint name, method, path, httpx keyword arguments). Also what
    bench/forum_journey.py writes out for wrk, so both generators send the same mix."""
    name = next_action(user.rng, can_write, mix)
    if name == "notification_read" and not user.unread:
        name = "notifications"
    if name == "wiki_edit" and not world.editable:
        name = "wiki_view"
    return (name, *_request(name, user, world))


def _request(name: str, user: User, world: World) -> tuple[str, str, dict[str, Any]]:
    """(method, path, httpx keyword arguments) for one action."""
    rng = user.rng
    if name == "topic_view":
        return "GET", f"/topics/{world.topics.draw(rng)}", {"params": {"limit": 50}}
    if name == "topic_list":
        return "GET", f"/categories/{world.categories.draw(rng)}/topics", {"params": {"limit": 20}}
    if name == "wiki_view":
        return "GET", f"/wiki/{world.pages.draw(rng)}", {}
    if name == "wiki_history":
        return "GET", f"/wiki/{world.pages.draw(rng)}/revisions", {"params": {"limit": 10}}
    if name == "user_stats":
        return "GET", f"/users/{world.users.draw(rng)}/stats", {}
    if name == "notifications":
        return "GET", "/notifications", {"params": {"limit": 20}}
    if name == "search":
        return "GET", "/search", {"params": {"q": world.words.draw(rng), "limit": 20}}
    if name == "notification_read":
        return "POST", f"/notifications/{user.unread.pop()}/read", {}
    if name == "reply_create":
        body = {"content": f"Reply {rng.randrange(10**6)} from user {user.index}: have you tried WAL?"}
        return "POST", f"/topics/{world.topics.draw(rng)}/replies", {"json": body}
    if name == "topic_create":
        tags = rng.sample(world.tags, k=min(len(world.tags), rng.randrange(4)))
        body = {
            "category_id": world.categories.draw(rng),
            "title": f"Question {rng.randrange(10**6)}",
            "content": "Our SQLite database locks up at lunchtime. Ideas?",
            "tags": tags,
        }
        return "POST", "/topics", {"json": body}
    if name == "wiki_edit":
        slug = world.editable.draw(rng)
        body = {"content": f"Revised by traffic user {user.index} ({rng.randrange(10**6)}).", "comment": "traffic"}
        return "PUT", f"/wiki/{slug}", {"json": body}
    raise ValueError(f"unknown action {name}")


async def _user_loop(
    user: User,
    client: httpx.AsyncClient,
    world: World,
    report: TrafficReport,
    deadline: float,
    budget: list[int],
    opts: TrafficOptions,
    stop: threading.Event | None,
) -> None:
    can_write = bool(user.headers)
    while time.monotonic() < deadline and budget[0] > 0 and (stop is None or not stop.is_set()):
        budget[0] -= 1
        name, method, path, kwargs = next_request(user, world, can_write, opts.mix)
        sent_at, t0 = time.time(), time.perf_counter()
        status: int | str
        queries = None
        try:
            response = await client.request(method, path, headers=user.headers, **kwargs)
            status = response.status_code
            timing = parse_server_timing(response.headers.get("server-timing"))
            queries = timing[0] if timing else None
            if name == "notifications" and status == 200:
                user.unread = [n["id"] for n in response.json()["notifications"] if not n["is_read"]][:5]
            if report.acknowledged is not None and 200 <= status < 300 and "json" in kwargs:
                report.acknowledged.record(name, path, kwargs["json"], response.json())
        except httpx.TimeoutException:
            status = "timeout"
        except httpx.TransportError as exc:  # named: a reset keep-alive reads apart from a server gone
            status = f"transport:{type(exc).__name__}"
        report.add(name, (time.perf_counter() - t0) * 1000, status, queries, sent_at)
        if opts.think_ms > 0:
            await asyncio.sleep(user.rng.expovariate(1 / opts.think_ms) / 1000)


async def run_traffic_async(url: str, opts: TrafficOptions, stop: threading.Event | None = None) -> TrafficReport:
    opts.check()
    base = check_loopback(url)
    limits = httpx.Limits(max_connections=opts.users + 4, max_keepalive_connections=opts.users + 4)
    async with httpx.AsyncHTTPTransport(limits=limits) as pool:  # one pool; closed once, here

        def client() -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S, transport=pool)

        world = await discover(client(), opts.seed)
        users = [(User(i, random.Random(opts.seed * 1_000_003 + i)), client()) for i in range(opts.users)]
        failed = await sign_up(users, secrets.token_hex(3))
        if failed:
            log.warning("%d of %d users could not sign up: they only read", failed, opts.users)
        report = TrafficReport(users=opts.users, duration_s=opts.duration_s, timeline=[] if opts.timeline else None)
        report.acknowledged = Acknowledged() if opts.acknowledge else None
        budget = [opts.max_requests if opts.max_requests is not None else 10**12]
        start = time.monotonic()
        deadline = start + opts.duration_s
        await asyncio.gather(*(_user_loop(u, c, world, report, deadline, budget, opts, stop) for u, c in users))
        report.elapsed_s = time.monotonic() - start
    return report


def run_traffic(url: str, opts: TrafficOptions, stop: threading.Event | None = None) -> TrafficReport:
    """Run simulated users against the forum at `url` (loopback only) and return what was measured;
    `stop` (set from another thread) ends the run before its duration, each user after its request."""
    return asyncio.run(run_traffic_async(url, opts, stop))
