"""The router: the one `Database` an application's data layer runs on through a live migration,
sending each statement where the migration's route says (sqlite, dual, postgres).

The application writes its statements once, in its home dialect (SQLite's); the router finds each
statement's name (`translate.StatementMap`) and runs the same-named statement of the PostgreSQL
dialect with the same parameters where PostgreSQL is to answer.

    router = Router(Backend(sqlite_db, SQLITE), Backend(pg_db, POSTGRES), RouteReader("app.db"),
                    candidate=candidate_db, experiment=Experiment(DualPolicy(sample=0.1)))
    app = Backend(router, SQLITE)      # the application's backend: its SQL, the router's routing

Write transactions read the route inside themselves: on SQLite right after BEGIN IMMEDIATE, so a
cutover that holds the write lock while it flips the route is seen by every writer that waited for
the lock; on PostgreSQL (route `postgres`) as `SELECT ... FOR SHARE` of the mirrored route row, which
a rollback takes FOR UPDATE (route.mirror). Before that, a lock-free peek: during a freeze writers
wait here, polling, for at most `freeze_wait_s`, instead of queuing for the lock. A write outside a
transaction gets one of its own, for the same reason. Reads follow the route peeked when their unit
of work (`hold()`) began. On `dual`, SQLite answers and `dual.ShadowTransaction` / the experiment
run the candidate beside it.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Generic

from pgferry.runtime.backend import Backend
from pgferry.runtime.database import Database, Fetch, Params, Statements
from pgferry.runtime.dialect import S
from pgferry.runtime.dual.experiment import DualPolicy, Experiment
from pgferry.runtime.dual.log import DiscrepancyLog
from pgferry.runtime.dual.shadow import ShadowTransaction
from pgferry.runtime.errors import DialectError, Unavailable
from pgferry.runtime.route import mirror
from pgferry.runtime.route.control import SELECT_SQL, is_missing_table, state_of
from pgferry.runtime.route.reader import RouteReader
from pgferry.runtime.route.state import UNSET, Route, RouteState, from_row
from pgferry.runtime.translate import StatementMap

WAIT, RETRY = "wait", "retry"
PAUSES_KEPT = 10_000


PAUSE_BUCKETS_MS = (10, 50, 100, 500)  # the cutover's goals: p99 under 100 ms, never over 500 ms


def pause_histogram(ordered: list[float]) -> dict[str, int]:
    """How many pauses (seconds) fall in each bucket: "<=10" ... "<=500" milliseconds, then ">500"."""
    labels = [f"<={b}" for b in PAUSE_BUCKETS_MS] + [f">{PAUSE_BUCKETS_MS[-1]}"]
    counts = dict.fromkeys(labels, 0)
    for seconds in ordered:
        counts[labels[bisect.bisect_left(PAUSE_BUCKETS_MS, seconds * 1000)]] += 1
    return counts


def pause_summary(ordered: list[float]) -> dict[str, Any]:
    """count, p50, p99 and max in milliseconds of sorted pauses in seconds, and their histogram."""
    if not ordered:
        return {"count": 0}

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 3)

    return {
        "count": len(ordered),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 3),
        "histogram_ms": pause_histogram(ordered),
    }


@dataclass(frozen=True)
class RouterPolicy:
    """`freeze_wait_s`: how long a writer waits out a freeze before `Unavailable("route_frozen")`
    (above a cutover's lock timeout, 3 s by default); `poll_s`: how often it looks again."""

    freeze_wait_s: float = 5.0
    poll_s: float = 0.002


class _Reroute(Exception):
    """Thrown into a transaction opened on the side the route no longer names: it rolls back."""


def _undo(block: ExitStack) -> None:
    block.__exit__(_Reroute, _Reroute(), None)


def _call(db: Database, what: Fetch, sql: str, params: Params) -> Any:
    return db.one(sql, params) if what == "one" else db.all(sql, params) if what == "all" else db.run(sql, params)


class _Unit:
    """One thread's unit of work: its route, the connections it holds, its transaction's state."""

    __slots__ = ("depth", "held", "route", "shadow", "stack")

    def __init__(self, route: Route) -> None:
        self.route = route
        self.stack = ExitStack()
        self.held: set[str] = set()
        self.depth = 0  # transaction nesting
        self.shadow: ShadowTransaction | None = None  # the candidate's, in a dual transaction


class Router(Statements, Generic[S]):
    def __init__(
        self,
        home: Backend[S],
        postgres: Backend[S],
        routes: RouteReader,
        *,
        candidate: Database | None = None,
        experiment: Experiment | None = None,
        policy: RouterPolicy | None = None,
    ) -> None:
        if home.db.dialect != "sqlite":
            raise DialectError(f"a router's home is SQLite (the route lives in its file), not {home.db.dialect!r}")
        if candidate is not None and candidate.dialect != postgres.db.dialect:
            raise DialectError(
                f"the candidate speaks {candidate.dialect!r}, PostgreSQL's backend {postgres.db.dialect!r}"
            )
        self.home, self.postgres = home, postgres
        self.candidate = candidate if candidate is not None else postgres.db
        self.names = StatementMap(home.dialect, postgres.dialect)
        self.routes = routes
        self.experiment = experiment if experiment is not None else Experiment(DualPolicy())
        self.policy = policy or RouterPolicy()
        self._local = threading.local()
        self._mirror: bool | None = None  # whether PostgreSQL has the mirrored route row's table
        self._counts: collections.Counter[str] = collections.Counter()
        self._counts_lock = threading.Lock()
        self._pauses: collections.deque[float] = collections.deque(maxlen=PAUSES_KEPT)

    @property
    def dialect(self) -> str:
        return self.home.dialect.name

    @property
    def discrepancies(self) -> DiscrepancyLog:
        return self.experiment.log

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    # --- units of work ------------------------------------------------------------------------------

    def _unit(self) -> _Unit | None:
        unit: _Unit | None = getattr(self._local, "unit", None)
        return unit

    def _open_unit(self) -> _Unit:
        unit = _Unit(self.routes.peek().route)
        self._local.unit = unit
        return unit

    def _close_unit(self, unit: _Unit) -> None:
        self._local.unit = None
        unit.stack.close()

    def _hold(self, unit: _Unit, side: str) -> None:
        """Keep a connection of `side` for the rest of the unit (taken on first use)."""
        if side not in unit.held:
            db = self.home.db if side == "home" else self.postgres.db if side == "postgres" else self.candidate
            unit.stack.enter_context(db.hold())
            unit.held.add(side)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._unit() is not None:
            yield
            return
        unit = self._open_unit()
        try:
            self._hold(unit, "postgres" if unit.route is Route.POSTGRES else "home")
            yield
        finally:
            self._close_unit(unit)

    # --- statements ---------------------------------------------------------------------------------

    def fetch(self, sql: str, params: Params, what: Fetch) -> Any:
        name = self.names.name(sql)
        write = self.names.writes(name)
        unit = self._unit()
        if unit is None or (write and unit.depth == 0):
            with self.transaction() if write else self.hold():
                return self.fetch(sql, params, what)
        if unit.route is Route.POSTGRES:
            return _call(self.postgres.db, what, self.names.other_sql(name), params)
        result = _call(self.home.db, what, sql, params)
        if unit.route is Route.DUAL:
            other = self.names.other_sql(name)
            if unit.shadow is not None:
                if write or self.experiment.sampled(name):
                    unit.shadow.statement(name, other, params, what, result, write=write)
            elif self.experiment.sampled(name):
                run = lambda: self._candidate_read(unit, what, other, params)  # noqa: E731
                self.experiment.shadow_read(name, params, result, run)
        return result

    def _candidate_read(self, unit: _Unit, what: Fetch, sql: str, params: Params) -> Any:
        self._hold(unit, "candidate")
        return _call(self.candidate, what, sql, params)

    # --- transactions -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction on the side the route names, read inside it; nested, a savepoint."""
        unit = self._unit()
        if unit is not None and unit.depth > 0:
            with self._nested(unit):
                yield
            return
        own = unit is None
        unit = unit or self._open_unit()
        try:
            with self._outermost(unit):
                yield
        finally:
            if own:
                self._close_unit(unit)

    @contextlib.contextmanager
    def _nested(self, unit: _Unit) -> Iterator[None]:
        unit.depth += 1
        try:
            if unit.route is Route.POSTGRES:
                with self.postgres.db.transaction():
                    yield
            elif unit.shadow is None:
                with self.home.db.transaction():
                    yield
            else:
                with self.home.db.transaction(), unit.shadow.savepoint():
                    yield
        finally:
            unit.depth -= 1

    @contextlib.contextmanager
    def _outermost(self, unit: _Unit) -> Iterator[None]:
        control = self._begin(unit)
        shadow = unit.shadow
        unit.depth = 1
        try:
            try:
                yield
            except BaseException as exc:
                try:
                    if shadow is not None:
                        shadow.rollback()  # first: the write lock is still held for its sequence resync
                finally:
                    control.__exit__(type(exc), exc, exc.__traceback__)  # rolls back; the error goes on
                raise
            try:
                control.close()  # COMMIT
            except BaseException:
                if shadow is not None:
                    shadow.rollback()
                raise
            if shadow is not None:
                shadow.commit()
        finally:
            unit.depth = 0
            unit.shadow = None

    def _begin(self, unit: _Unit) -> ExitStack:
        """Open the transaction on the side the route names, waiting out a freeze."""
        deadline: float | None = None
        retries = 0
        began = time.monotonic()
        while True:
            state = self.routes.peek()
            if not state.frozen():
                entered = self._enter_postgres(unit) if state.route is Route.POSTGRES else self._enter_sqlite(unit)
                if isinstance(entered, ExitStack):
                    if deadline is not None or retries:  # it waited out a freeze, or the route moved under it
                        self._note_pause(time.monotonic() - began)
                    return entered
                retries += 1
                if entered == RETRY and retries <= 3:
                    continue
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.policy.freeze_wait_s
                self._count("freeze_waits")
            elif now >= deadline:
                self._count("freeze_timeouts")
                raise Unavailable(
                    f"the migration's route stayed frozen for {self.policy.freeze_wait_s:g} s "
                    "(a cutover or a rollback is under way); try again",
                    kind="route_frozen",
                )
            time.sleep(self.policy.poll_s)

    def _enter_sqlite(self, unit: _Unit) -> ExitStack | str:
        block = ExitStack()
        block.enter_context(self.home.db.transaction())  # BEGIN IMMEDIATE (after this thread's turn)
        try:
            state = self._route_in_transaction()
        except BaseException as exc:
            block.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if state.frozen() or state.route is Route.POSTGRES:
            _undo(block)
            return WAIT if state.frozen() else RETRY
        unit.route = state.route
        if state.route is Route.DUAL:
            unit.shadow = ShadowTransaction(self.experiment, self.candidate, self.routes.connection)
            unit.shadow.begin()
        return block

    def _route_in_transaction(self) -> RouteState:
        try:
            return state_of(self.home.db.one(SELECT_SQL))
        except sqlite3.OperationalError as exc:
            if is_missing_table(exc):
                return UNSET
            raise

    def _enter_postgres(self, unit: _Unit) -> ExitStack | str:
        block = ExitStack()
        block.enter_context(self.postgres.db.transaction())
        try:
            allowed = self._postgres_route_allows()
        except BaseException as exc:
            block.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if not allowed:
            _undo(block)
            return WAIT
        unit.route = Route.POSTGRES
        return block

    def _postgres_route_allows(self) -> bool:
        """Inside the PostgreSQL transaction: the mirrored row, FOR SHARE, still says postgres and is
        not frozen (no mirror: SQLite's route is the only word)."""
        db = self.postgres.db
        if self._mirror is None:
            self._mirror = bool(db.one(mirror.PRESENT_SQL)["present"])
        if not self._mirror:
            return True
        state = from_row(db.one(mirror.CHECK_SQL))
        return state is None or (state.route is Route.POSTGRES and not state.frozen())

    # --- what is in force ---------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The route, both sides' settings (PostgreSQL's may be an error: it does not answer for the
        caller on `sqlite` or `dual`), the experiment's counters and the breaker."""
        out: dict[str, Any] = {"backend": "router", **self.routes.peek().describe(), "sqlite": self.home.db.settings()}
        try:
            out["postgresql"] = self.postgres.db.settings()
        except Exception as exc:
            out["postgresql"] = {"error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}
        out["router"] = self.stats()
        out["dual"] = self.experiment.stats()
        return out

    def _note_pause(self, seconds: float) -> None:
        with self._counts_lock:
            self._pauses.append(seconds)

    def stats(self) -> dict[str, Any]:
        """Write transactions that waited out a freeze (`freeze_waits`), those it outlasted, and the
        pauses of the last PAUSES_KEPT that waited (a freeze, or a route that moved under them): the
        time from asking for the transaction to having it, as the writer saw it."""
        with self._counts_lock:
            pauses = sorted(self._pauses)
            counts = {"freeze_waits": 0, "freeze_timeouts": 0, **self._counts}
        return {**counts, "pauses": pause_summary(pauses)}

    def close(self) -> None:
        """Close both sides, the candidate, the route reader and the discrepancy log."""
        for db in dict.fromkeys([self.home.db, self.postgres.db, self.candidate]):
            db.close()
        self.routes.close()
        self.experiment.log.close()
