"""Moving the rows of one run: worker threads copy parts (key ranges) chunk by chunk, from the
source's snapshot (pgferry.migrate.source) through the render (render) into the sink (sink).

A table typed from a sample is copied guarded: a value the sample missed is refused, and the table is
re-planned from a full census while its other parts wait (TableGate), then copied again if its types
changed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg
from psycopg import sql

from pgferry.events import Event, Listener
from pgferry.migrate import control
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.converters import same_conversion
from pgferry.migrate.errors import REFUSALS, is_decode_error, refusal
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.plan import Skipped, Step, TablePlan
from pgferry.migrate.rejects import Record, read_record
from pgferry.migrate.render import Render, render_table
from pgferry.migrate.report import Replan
from pgferry.migrate.sink import RejectPolicy, Sink
from pgferry.migrate.source import Source
from pgferry.pg.connect import connect
from pgferry.sqlite.census import take_census
from pgferry.sqlite.connect import text_as
from pgferry.sqlite.keyset import Key
from pgferry.sqlite.schema import Table

Recreate = Callable[[psycopg.Connection, TablePlan], list[Skipped]]


class TableGate:
    """One table's chunks against a re-plan of that table: chunks run side by side, a re-plan runs
    alone, and `generation` counts the re-plans that changed the table, so a part can tell that its
    rows so far were dropped with the old table."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.replanning = False
        self.generation = 0
        self.finished: set[int] = set()  # parts done in this generation

    @contextlib.contextmanager
    def chunk(self) -> Iterator[int]:
        with self.cond:
            while self.replanning:
                self.cond.wait()
            self.active += 1
            generation = self.generation
        try:
            yield generation
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.cond:
            while self.replanning:
                self.cond.wait()
            self.replanning = True
            while self.active:
                self.cond.wait()
        try:
            yield
        finally:
            with self.cond:
                self.replanning = False
                self.cond.notify_all()


class Copier:
    """Moves the rows of one run; one instance shared by the worker threads."""

    def __init__(
        self,
        source: Source,
        dsn: str,
        options: CopyOptions,
        events: Listener,
        checkpoints: dict[tuple[str, int], Checkpoint] | None = None,
        recreate: Recreate | None = None,
    ):
        self.source, self.dsn, self.options, self.events = source, dsn, options, events
        self.policy = RejectPolicy(options.on_error, options.reject_file)
        self.sink = Sink(options.schema, self.policy, defer=source.plan.into_existing)
        self.copied: dict[str, int] = {}
        self.lock = threading.Lock()
        self.gates = {t.name: TableGate() for t in source.schema.tables}
        self.recreate = recreate
        self.replans: list[Replan] = []
        self.skipped: list[Skipped] = []
        self.renders: dict[str, tuple[TablePlan, int | None, Render]] = {}
        # Where each part starts over after a re-plan: parts are consecutive key ranges, so a part
        # starts where the one before it ends, and ends where it always did.
        self.restarts: dict[str, list[Checkpoint]] = {}
        for cp in sorted((checkpoints or {}).values(), key=lambda c: (c.table, c.part)):
            parts = self.restarts.setdefault(cp.table, [])
            start = parts[-1].upper_key if parts else None
            parts.append(Checkpoint(cp.table, cp.part, start, cp.upper_key, 0, False))
            self.copied[cp.table] = self.copied.get(cp.table, 0) + cp.rows

    @property
    def rejected(self) -> dict[str, int]:
        return self.policy.rejected

    def _render(self, table: Table) -> Render:
        """The render of the plan of the moment, made again only after a re-plan changed it."""
        plan = self.source.plan.table(table.name)
        cached = self.renders.get(table.name)
        if cached is not None and cached[0] is plan and cached[1] == plan.sampled_rows:
            return cached[2]
        paged = replace(plan, key=tuple(table.primary_key)) if self.source.pages_by_key(table) else plan
        render = render_table(table, paged, self.options.schema)
        self.renders[table.name] = (plan, plan.sampled_rows, render)
        return render

    def run_part(self, table: Table, checkpoint: Checkpoint) -> None:
        """Copy one part; a part that re-planned its table also copies again the parts finished before."""
        pending = [(checkpoint, 0)]
        while pending:
            part, generation = pending.pop(0)
            pending += self._copy_part(table, part, generation)

    def _restart_point(self, table: str, part: int) -> Checkpoint:
        return next(cp for cp in self.restarts[table] if cp.part == part)

    def _copy_part(self, table: Table, checkpoint: Checkpoint, generation: int) -> list[tuple[Checkpoint, int]]:
        gate = self.gates[table.name]
        last, rows = checkpoint.last_key, checkpoint.rows
        chunk_rows = self.options.chunk_rows
        self._advance(table.name, 0)  # the table shows up (and its rate's clock starts) now
        redo: list[tuple[Checkpoint, int]] = []
        with self.source.borrow() as conn, connect(self.dsn) as pg, self.source.naming(table):
            cursor = conn.cursor()
            while True:
                refused: Exception | None = None
                with gate.chunk() as current:
                    if current != generation:  # the table was re-planned: this part starts over
                        last, rows, generation = self._restart_point(table.name, checkpoint.part).last_key, 0, current
                    render = self._render(table)
                    at = replace(checkpoint, last_key=last, rows=rows)
                    # chunked: this chunk in a read transaction of its own (the snapshot's otherwise)
                    with self.source.reading(conn):
                        try:
                            with text_as(conn, bytes if render.grouped else str):
                                batches = render.batches(cursor, last, checkpoint.upper_key, chunk_rows)
                                scanned, last_seen = self.sink.stream(pg, render.target, batches, chunk_rows, at)
                            copied = scanned
                        except REFUSALS as exc:
                            if isinstance(exc, sqlite3.OperationalError) and not is_decode_error(exc):
                                raise
                            if render.guarded:
                                refused = exc
                            else:
                                scanned, copied, last_seen = self._careful_chunk(cursor, pg, render, at)
                    self.source.after_chunk()
                    if refused is None:
                        if scanned:
                            last = last_seen
                            rows += copied
                            self._advance(table.name, copied)
                        if scanned < chunk_rows:
                            if scanned == 0:
                                self.sink.checkpoint(pg, replace(at, last_key=last, rows=rows, done=True))
                            with gate.cond:
                                gate.finished.add(checkpoint.part)
                            return redo
                if refused is not None:
                    redo += self._replan(table, generation, conn, pg, refused)

    def _careful_chunk(
        self, cursor: sqlite3.Cursor, pg: psycopg.Connection, render: Render, at: Checkpoint
    ) -> tuple[int, int, Key | None]:
        """Materialise a refused chunk and name or reject its bad values: (scanned, copied, last key).
        A rejected row is read again whole (same snapshot, this thread's connection) for the reject file."""
        chunk_rows = self.options.chunk_rows

        def bad_value(table: str, key: Key, column: str, value: str, problem: str, row: Record | None) -> None:
            if row is None and self.policy.on_error == "reject":
                row = read_record(cursor.connection, render.table, render.keyset, key)
            self.policy.bad_value(table, key, column, value, problem, row)

        batch, scanned, last_seen = render.careful_rows(cursor, at.last_key, at.upper_key, chunk_rows, bad_value)
        if scanned == 0:
            return 0, 0, None
        done = scanned < chunk_rows
        at = replace(at, last_key=last_seen, done=done)
        copied = self.sink.write(pg, render.target, batch, render.plan, at, bad_value)
        return scanned, copied, last_seen

    def _replan(
        self, table: Table, generation: int, conn: sqlite3.Connection, pg: psycopg.Connection, refused: Exception
    ) -> list[tuple[Checkpoint, int]]:
        """A value broke the sampled types of `table`: take its full census and plan it again.

        Same types: the table keeps its rows and goes on unguarded. Other types: the table is
        dropped and created again, every part starts over (the finished ones are returned, for
        this worker to copy again), in one transaction with the checkpoints and the stored plan,
        so a kill at any point resumes from a consistent state.
        """
        gate = self.gates[table.name]
        with gate.exclusive():
            if gate.generation != generation:
                return []  # another worker re-planned the table already
            old = self.source.plan.table(table.name)
            with self.source.naming(table):
                census = take_census(conn, table)
            fresh = self.source.plan_with(census, self.options)
            new = fresh.table(table.name)
            new.partition = old.partition  # the same partitions (laid out from the snapshot's span)
            changes = [
                f"{o.source}: {o.choice.pg_type} -> {n.choice.pg_type}"
                for o, n in zip(old.columns, new.columns, strict=True)
                if not same_conversion(o.choice, n.choice)
            ]
            changes += [
                f"{o.source}: {'NOT NULL' if o.notnull else 'nullable'} -> {'NOT NULL' if n.notnull else 'nullable'}"
                for o, n in zip(old.columns, new.columns, strict=True)
                if o.notnull != n.notnull
            ]
            self.replans.append(Replan(table.name, refusal(refused), changes))
            plan = self.source.plan
            if not changes:  # the sample was right: keep the rows, stop guarding
                old.columns[:] = [replace(o, choice=n.choice) for o, n in zip(old.columns, new.columns, strict=True)]
                old.notes, old.sampled_rows = new.notes, None
                with pg.transaction():
                    control.save_plan(pg, self.options.schema, plan.to_dict())
                return []
            plan.tables[plan.tables.index(old)] = new
            plan.steps = swap_steps(plan.steps, fresh.steps, table.name)
            plan.extensions = sorted(set(plan.extensions) | set(fresh.extensions))
            redo = []
            with pg.transaction():
                for extension in fresh.extensions:
                    pg.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
                pg.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(self.options.schema, old.target)))
                if self.recreate is not None:
                    self.skipped += self.recreate(pg, new)
                for restart in self.restarts.get(table.name, []):
                    control.save_checkpoint(pg, self.options.schema, restart)
                    if restart.part in gate.finished:
                        redo.append((restart, generation + 1))
                control.save_plan(pg, self.options.schema, plan.to_dict())
            gate.generation += 1
            gate.finished.clear()
            with self.lock:
                self.copied[table.name] = 0
            return redo

    def _advance(self, table: str, rows: int) -> None:
        with self.lock:
            self.copied[table] = self.copied.get(table, 0) + rows
            done = self.copied[table]
        self.events(Event("copy", table, done, self.source.plan.table(table).rows))


def swap_steps(steps: list[Step], fresh: list[Step], table: str) -> list[Step]:
    """`steps` with those of `table` taken from `fresh` (a plan built after a re-plan of it)."""
    mine = [step for step in fresh if step.table == table]
    return [step for step in steps if step.table != table] + mine
