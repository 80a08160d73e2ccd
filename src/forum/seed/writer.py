"""Write the legacy database: stream batches into a temporary file, build the indexes, rename.

Speed comes from how the file is written: journal_mode=OFF and synchronous=OFF in one transaction
while generating, indexes built once a table is complete (a sort, not a b-tree insert per row), and
the rows made in a child process (numpy and string building cost about as much as SQLite's inserts,
and the GIL keeps a thread from helping). Long texts cross the process boundary as corpus offsets,
not strings. The page cache is 16 MiB and index sorts get no helper threads: larger caches and
PRAGMA threads did not make it faster on two cores, and they raise the memory ceiling.
At the end the journal goes back to DELETE (the rollback journal the legacy app used) and nothing
runs ANALYZE.

The file is written as PATH.tmp and renamed over PATH only when complete, so a failed or killed run
never leaves a half-written database under the real name.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import sqlite3
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forum.seed.indexes import INDEXES
from forum.seed.schema import MAX_SCALE, TABLES, planned_rows
from forum.seed.tables import (
    BatchMaker,
    activity_log_batch,
    forum_categories_batch,
    forum_replies_batch,
    forum_topics_batch,
    notifications_batch,
    tags_batch,
    topic_tags_batch,
    user_sessions_batch,
    wiki_pages_batch,
    wiki_revisions_batch,
)
from forum.seed.tally import Tallies, Totals
from forum.seed.users import users_batch
from forum.seed.world import Batch, World
from pgferry.errors import PgferryError, UsageError
from pgferry.events import Event, Listener, no_events

BATCH_ROWS = 10_000
STATS_UPDATED_AT = "2025-07-01 03:00:00"  # the nightly job that refreshed user_stats after the last activity

# Generation order, and the table whose row count sets the number of batches (topic_tags go by topic).
# user_stats is not here: it is filled from the tallies at the end.
MAKERS: tuple[tuple[BatchMaker, str], ...] = (
    (users_batch, "users"),
    (forum_categories_batch, "forum_categories"),
    (tags_batch, "tags"),
    (forum_topics_batch, "forum_topics"),
    (topic_tags_batch, "forum_topics"),
    (forum_replies_batch, "forum_replies"),
    (wiki_pages_batch, "wiki_pages"),
    (wiki_revisions_batch, "wiki_revisions"),
    (user_sessions_batch, "user_sessions"),
    (notifications_batch, "notifications"),
    (activity_log_batch, "activity_log"),
)


class SeedError(PgferryError):
    """Writing the database failed (disk full, I/O error): the partial file was removed."""


@dataclass
class SeedReport:
    """What `generate` wrote."""

    path: str
    scale: float
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    indexes: int = 0
    seconds: float = 0.0
    bytes: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0


def parse_scale(value: object) -> float:
    """A scale from a number or its text; UsageError unless 0 < scale <= MAX_SCALE."""
    try:
        scale = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"scale must be a number, got {value!r}") from None
    if not math.isfinite(scale) or scale <= 0 or scale > MAX_SCALE:
        raise UsageError(f"scale must be greater than 0 and at most {MAX_SCALE:g}, got {value}")
    return scale


def parse_seed(value: object) -> int:
    """A seed from an integer or its text; UsageError unless 0 <= seed < 2**63."""
    try:
        seed = int(str(value), 10)
    except ValueError:
        raise UsageError(f"seed must be a whole number, got {value!r}") from None
    if not 0 <= seed < 2**63:
        raise UsageError(f"seed must be between 0 and 2**63-1, got {value}")
    return seed


def check_target(path: str | os.PathLike[str], force: bool) -> Path:
    """The path to write, or a UsageError saying why it cannot be written."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target}: is a directory; give a file path for the database")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"{target}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{target}: directory {parent} is not writable")
    if target.exists() and not force:
        raise UsageError(f"{target}: file exists; pass --force to overwrite it")
    return target


def generate(
    path: str | os.PathLike[str],
    scale: float,
    seed: int,
    *,
    force: bool = False,
    events: Listener = no_events,
    parallel: bool = True,
) -> SeedReport:
    """Write the legacy forum database at `path`; same (scale, seed) gives the same `.dump`.

    `parallel` makes the rows in a child process (the default, twice as fast on two cores); without
    it everything runs in this process. Both write the same database.
    """
    scale, seed = parse_scale(scale), parse_seed(seed)
    target = check_target(path, force)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    report = SeedReport(path=str(target), scale=scale, seed=seed)
    started = time.perf_counter()
    world = World(seed, scale)
    child = _BatchProcess(world) if parallel else None
    try:
        batches = iter(child) if child else _batches(world)
        _write(tmp, world, batches, report, events)
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.Error | OSError):
            raise SeedError(f"{target}: writing the database failed ({exc})") from exc
        raise
    finally:
        if child:
            child.close()
    report.seconds = time.perf_counter() - started
    report.bytes = target.stat().st_size
    return report


def _batches(world: World) -> Iterator[Batch | Totals]:
    """Every batch of every table in order, counters stripped off and tallied, then the counter totals."""
    tallies = Tallies.scratch()
    try:
        for make, over in MAKERS:
            n = world.rows[over]
            for number, start in enumerate(range(0, n, BATCH_ROWS)):
                batch = make(world, number, start, min(n, start + BATCH_ROWS))
                for tally in batch.tallies:
                    tallies.add(tally)
                yield replace(batch, tallies=())
        yield from tallies.totals()
    finally:
        tallies.close()


def _produce(seed: int, scale: float, out: Any) -> None:
    """Child process: make every batch and hand it over; an error travels as its traceback text."""
    try:
        for batch in _batches(World(seed, scale)):
            out.put(batch)
        out.put(None)
    except BaseException:
        out.put(traceback.format_exc())


class _BatchProcess:
    """The items of `_batches`, made in a child process at most `depth` batches ahead (bounded memory).

    Started at once, before the database file is opened, so the child inherits no SQLite handle.
    """

    def __init__(self, world: World, depth: int = 4) -> None:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.slots = ctx.Queue(maxsize=depth)
        self.child = ctx.Process(
            target=_produce, args=(world.seed, world.scale, self.slots), name="forum-seed", daemon=True
        )
        self.child.start()

    def __iter__(self) -> Iterator[Batch | Totals]:
        while True:
            try:
                item = self.slots.get(timeout=1.0)
            except queue.Empty:
                if not self.child.is_alive():
                    raise SeedError(f"the batch process died (exit code {self.child.exitcode})") from None
                continue
            if item is None:
                return
            if isinstance(item, str):
                raise SeedError(f"making rows failed: {item.strip().splitlines()[-1]}\n{item}")
            yield item

    def close(self) -> None:
        if self.child.is_alive():
            self.child.terminate()
        self.child.join(timeout=5)
        self.slots.close()
        self.slots.cancel_join_thread()


def _write(tmp: Path, world: World, batches: Iterator[Batch | Totals], report: SeedReport, events: Listener) -> None:
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384", "locking_mode = EXCLUSIVE"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        for table in TABLES:
            conn.execute(table.create_sql())
        tallies = Tallies(conn)
        total = sum(planned_rows(world.scale).values())
        inserts = {t.name: t.insert_sql() for t in TABLES}
        pending = {t.name: [i for i in INDEXES if i.table == t.name] for t in TABLES}
        built = 0

        def build_indexes(table: str) -> None:
            # Once a table is complete its indexes are built, while the batch process makes the next table.
            nonlocal built
            for index in pending.pop(table):
                conn.execute(index.create_sql())
                built += 1
                events(Event("seed", "indexes", built, len(INDEXES), "indexes"))

        current, done = None, 0
        for batch in batches:
            if isinstance(batch, Totals):
                tallies.load(batch)
                continue
            if batch.table != current:
                if current:
                    build_indexes(current)
                current = batch.table
                report.rows[current] = 0
            conn.executemany(inserts[batch.table], batch.rows())
            report.rows[batch.table] += batch.size
            done += batch.size
            events(Event("seed", "rows", done, total, detail=batch.table))
        tallies.apply(STATS_UPDATED_AT)
        report.rows["user_stats"] = report.rows["users"]  # one row per user
        events(Event("seed", "rows", total, total, detail="user_stats"))
        for table in list(pending):
            build_indexes(table)
        conn.execute("COMMIT")
        report.indexes = built
        report.rows = {t.name: report.rows.get(t.name, 0) for t in TABLES}
        conn.execute("PRAGMA locking_mode = NORMAL")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
