"""Capture the statements an application runs, by wrapping its DB-API connection.

`capture(conn, sink)` returns a connection that behaves like `conn` (attributes, context manager,
commit/rollback/close, row_factory, cursors) but times every execute/executemany/executescript and
writes a `Statement` to the sink: the SQL, its parameters, the duration, the request it ran for
(`request_scope`), the application's `module:function:line` and the UTC start time, the
transaction it ran in as the driver reports it (`tx`), and, for a statement a framework ran on its own
account (introspection, migrations, debug logging), the framework module that ran it (`internal`).

The site is the first frame that belongs to the application: frames of the standard library, of
pgferry, of the database drivers and of the ORM/framework packages are passed over, so a statement
an ORM issues while the application iterates a queryset is placed at the application's line.

The transaction is read from the driver after each statement (sqlite3's `in_transaction`,
psycopg's `info.transaction_status`): Python's sqlite3 opens a transaction before a write without
running a statement anyone can see, so a log of BEGIN and COMMIT statements alone cannot tell.

Written against DB-API, not sqlite3: a psycopg connection can be wrapped the same way. The timing
covers the execute call itself; for SQLite that is planning and the first step, not the fetching
of later rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import os
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Protocol, runtime_checkable

from pgferry.errors import WorkloadError
from pgferry.workload.frames import SiteFinder, TransactionTracker, in_transaction
from pgferry.workload.record import Statement

_UTC = dt.UTC


# --- sinks --------------------------------------------------------------------------------------


@runtime_checkable
class Sink(Protocol):
    """Where captured statements go."""

    def write(self, statement: Statement) -> None: ...


class MemorySink:
    """Keeps statements in a list (tests, or an application that inspects its own queries)."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self._lock = threading.Lock()

    def write(self, statement: Statement) -> None:
        with self._lock:
            self.statements.append(statement)

    def clear(self) -> None:
        with self._lock:
            self.statements.clear()

    def close(self) -> None:
        """Nothing to release; present so every sink can be closed the same way."""


class JsonlSink:
    """Appends one JSON line per statement to a file.

    Each line goes out in one `write(2)` on an O_APPEND descriptor, with no user-space buffer: a
    crash loses at most the line in flight, and threads (or processes) appending to the same file
    never interleave their lines.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WorkloadError(f"cannot open workload log {self.path} for appending: {exc.strerror}") from None
        self._lock = threading.Lock()

    def write(self, statement: Statement) -> None:
        data = statement.to_line()
        with self._lock:
            if self._fd is None:
                raise WorkloadError(f"workload log {self.path} is closed")
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- request scope --------------------------------------------------------------------------------

_REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("pgferry_workload_request", default=None)


def new_request_id() -> str:
    """A random 16-hex-digit id."""
    return secrets.token_hex(8)


@contextlib.contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Tag statements run inside the block with a request id (generated when None); yields the id.

    A contextvar: threads and asyncio tasks each see their own scope; nested scopes override and
    restore the outer one.
    """
    rid = request_id if request_id is not None else new_request_id()
    token = _REQUEST.set(rid)
    try:
        yield rid
    finally:
        _REQUEST.reset(token)


def current_request() -> str | None:
    """The request id of the enclosing `request_scope`, or None."""
    return _REQUEST.get()


# --- the wrappers ---------------------------------------------------------------------------------


class _Recorder:
    """What a connection and its cursors share: the sink and how to describe a statement."""

    __slots__ = ("_sites", "_tx", "conn", "owns_sink", "params", "sink")

    def __init__(self, conn: Any, sink: Sink, *, params: bool, skip_modules: Iterable[str], owns_sink: bool) -> None:
        self.conn = conn
        self.sink = sink
        self.params = params
        self.owns_sink = owns_sink
        self._sites = SiteFinder(skip_modules)
        self._tx = TransactionTracker()

    def ended(self) -> None:
        self._tx.ended()

    def in_transaction(self) -> bool | None:
        return in_transaction(self.conn)

    def record(
        self,
        sql: Any,
        params: Any,
        elapsed_ns: int,
        at: dt.datetime,
        *,
        many: int | None = None,
        error: BaseException | None = None,
        before: bool | None = None,
    ) -> None:
        ms = elapsed_ns / 1e6
        site, internal = self._sites.find(sys._getframe(1))
        self.sink.write(
            Statement(
                sql=sql if isinstance(sql, str) else self._text(sql),
                params=(
                    None if not self.params else _snapshot(params) if many is None else [_snapshot(r) for r in params]
                ),
                ms=ms,
                request=_REQUEST.get(),
                site=site,
                at=at,
                many=many,
                error=type(error).__name__ if error is not None else None,
                tx=self._tx.observe(before, self.in_transaction()),
                internal=internal,
            )
        )

    def _text(self, sql: Any) -> str:
        if isinstance(sql, bytes):
            return sql.decode("utf-8", "replace")
        as_string = getattr(sql, "as_string", None)  # psycopg.sql.Composed
        if as_string is not None:
            try:
                return str(as_string(self.conn))
            except Exception:  # a log must not break the statement
                pass
        return str(sql)


def _snapshot(params: Any) -> Any:
    """A copy of the parameters as they were when executed (the caller may reuse the object)."""
    if params is None:
        return None
    if isinstance(params, Mapping):
        return dict(params)
    if isinstance(params, list | tuple):
        return list(params)
    try:
        return list(params)
    except TypeError:
        return [params]


def _params_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    for key in ("parameters", "params", "vars", "seq_of_parameters", "params_seq"):
        if key in kwargs:
            return kwargs[key]
    return None


def _with_params_arg(args: tuple[Any, ...], kwargs: dict[str, Any], rows: list[Any]) -> tuple[Any, ...]:
    """Replace the parameter-sets argument by the materialized `rows` (positional or keyword)."""
    if args:
        return (rows, *args[1:])
    for key in ("seq_of_parameters", "params_seq", "parameters", "params"):
        if key in kwargs:
            kwargs[key] = rows
            break
    return args


class _Executes:
    """execute / executemany / executescript, timed and recorded; shared by both wrappers."""

    __slots__ = ()
    _rec: _Recorder

    def _target(self) -> Any:
        raise NotImplementedError

    def _wrap_result(self, result: Any) -> Any:
        raise NotImplementedError

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        before = self._rec.in_transaction()
        at = dt.datetime.now(_UTC)
        t0 = perf_counter_ns()
        try:
            result = self._target().execute(sql, *args, **kwargs)
        except BaseException as exc:
            self._rec.record(sql, _params_arg(args, kwargs), perf_counter_ns() - t0, at, error=exc, before=before)
            raise
        self._rec.record(sql, _params_arg(args, kwargs), perf_counter_ns() - t0, at, before=before)
        return self._wrap_result(result)

    def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        seq = _params_arg(args, kwargs)
        rows = list(seq) if seq is not None else []
        args = _with_params_arg(args, kwargs, rows)
        before = self._rec.in_transaction()
        at = dt.datetime.now(_UTC)
        t0 = perf_counter_ns()
        try:
            result = self._target().executemany(sql, *args, **kwargs)
        except BaseException as exc:
            elapsed = perf_counter_ns() - t0
            self._rec.record(sql, rows, elapsed, at, many=len(rows), error=exc, before=before)
            raise
        elapsed = perf_counter_ns() - t0
        self._rec.record(sql, rows, elapsed, at, many=len(rows), before=before)
        return self._wrap_result(result)

    def executescript(self, sql_script: Any, *args: Any, **kwargs: Any) -> Any:
        method = self._target().executescript  # AttributeError when the driver has none
        before = self._rec.in_transaction()
        at = dt.datetime.now(_UTC)
        t0 = perf_counter_ns()
        try:
            result = method(sql_script, *args, **kwargs)
        except BaseException as exc:
            self._rec.record(sql_script, None, perf_counter_ns() - t0, at, error=exc, before=before)
            raise
        self._rec.record(sql_script, None, perf_counter_ns() - t0, at, before=before)
        return self._wrap_result(result)


class CapturingCursor(_Executes):
    """A cursor whose execute* calls are recorded; everything else goes to the real cursor."""

    __slots__ = ("_connection", "_cur", "_rec")

    def __init__(self, cursor: Any, connection: CapturingConnection, recorder: _Recorder) -> None:
        object.__setattr__(self, "_cur", cursor)
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_rec", recorder)

    def _target(self) -> Any:
        return self._cur

    def _wrap_result(self, result: Any) -> Any:
        return self if result is self._cur else result

    @property
    def connection(self) -> CapturingConnection:
        connection: CapturingConnection = self._connection
        return connection

    @property
    def wrapped(self) -> Any:
        """The driver's own cursor."""
        return self._cur

    def __getattr__(self, name: str) -> Any:
        # object.__getattribute__: no recursion if the slot is unset (copy, pickle)
        return getattr(object.__getattribute__(self, "_cur"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cur, name, value)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)

    def __next__(self) -> Any:
        return next(self._cur)

    def __enter__(self) -> CapturingCursor:
        enter = getattr(self._cur, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc: Any) -> Any:
        exit_ = getattr(self._cur, "__exit__", None)
        if exit_ is not None:
            return exit_(*exc)
        self._cur.close()
        return None

    def __repr__(self) -> str:
        return f"<CapturingCursor {self._cur!r}>"


class CapturingConnection(_Executes):
    """A DB-API connection whose statements are recorded; everything else is the real connection's."""

    __slots__ = ("_conn", "_rec")

    def __init__(self, connection: Any, recorder: _Recorder) -> None:
        object.__setattr__(self, "_conn", connection)
        object.__setattr__(self, "_rec", recorder)

    def _target(self) -> Any:
        return self._conn

    def _wrap_result(self, result: Any) -> Any:
        # sqlite3 and psycopg return a cursor from connection.execute: keep recording through it
        if result is None:
            return None
        if result is self._conn:
            return self
        return CapturingCursor(result, self, self._rec)

    @property
    def wrapped(self) -> Any:
        """The driver's own connection."""
        return self._conn

    @property
    def sink(self) -> Sink:
        return self._rec.sink

    def cursor(self, *args: Any, **kwargs: Any) -> CapturingCursor:
        return CapturingCursor(self._conn.cursor(*args, **kwargs), self, self._rec)

    def commit(self) -> None:
        try:
            self._conn.commit()
        finally:
            self._rec.ended()

    def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._rec.ended()

    def close(self) -> None:
        """Close the connection, and the log too when `capture` opened it from a path."""
        try:
            self._conn.close()
        finally:
            if self._rec.owns_sink:
                close = getattr(self._rec.sink, "close", None)
                if close is not None:
                    close()

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_conn"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def __enter__(self) -> CapturingConnection:
        self._conn.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._conn.__exit__(*exc)

    def __repr__(self) -> str:
        return f"<CapturingConnection {self._conn!r}>"


def capture(
    connection: Any, sink: Sink | str | os.PathLike[str], *, params: bool = True, skip_modules: Iterable[str] = ()
) -> CapturingConnection:
    """Wrap a DB-API connection so every statement it runs is written to `sink`.

    `sink` is a Sink (MemorySink, JsonlSink, anything with `write(Statement)`) or a path, opened as
    a JsonlSink and closed with the connection. `params=False` leaves parameter values out of the
    log (secrets). `skip_modules` names more modules (an application's own db helper, say) whose
    frames are passed over when looking for the statement's site.
    """
    owns = isinstance(sink, str | os.PathLike)
    real_sink: Sink = JsonlSink(sink) if isinstance(sink, str | os.PathLike) else sink
    if not callable(getattr(real_sink, "write", None)):
        raise TypeError(f"sink must have a write(statement) method, got {type(sink).__name__}")
    recorder = _Recorder(connection, real_sink, params=params, skip_modules=skip_modules, owns_sink=owns)
    return CapturingConnection(connection, recorder)
