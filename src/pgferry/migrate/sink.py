"""Writing chunks into PostgreSQL: COPY and the chunk's checkpoint commit in one transaction, so a
kill at any point leaves the checkpoint naming exactly the last row in the target.

A value PostgreSQL refuses either stops the copy, naming table, row key, column and value, or (with
`--on-error reject`) goes to the reject file and the rest of the chunk is written.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from pgferry import killpoints
from pgferry.migrate import control
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.errors import REFUSED_BY_POSTGRES, CopyDataError, copy_error_position
from pgferry.migrate.plan import TablePlan
from pgferry.migrate.rejects import Record, reject_line
from pgferry.pg.connect import first_line
from pgferry.sqlite.keyset import Key


class RejectPolicy:
    """What a bad value does: stop the copy (`stop`), or count its row and write it to the reject
    file (`reject`). Shared by the worker threads."""

    def __init__(self, on_error: str, reject_file: str | None) -> None:
        self.on_error = on_error
        self.path = Path(reject_file) if reject_file else None
        self.rejected: dict[str, int] = {}
        self.lock = threading.Lock()

    def bad_value(self, table: str, key: Key, column: str, value: str, problem: str, row: Record | None) -> None:
        """Stop, or count the row and write it whole (`row`, pgferry.migrate.rejects) to the reject file."""
        message = f"table {table!r}, row key {key}, column {column!r}: {problem}; value {value}"
        if self.on_error != "reject":
            raise CopyDataError(message + " (use --on-error reject to write such rows to a reject file)")
        line = reject_line(table, key, column, value, problem, row)
        with self.lock:
            self.rejected[table] = self.rejected.get(table, 0) + 1
            if self.path is not None:
                with self.path.open("a") as handle:
                    handle.write(line)


class Sink:
    """The target side of one copy: COPY statements and checkpoints in schema `schema`."""

    def __init__(self, schema: str, policy: RejectPolicy, defer: bool = False) -> None:
        """`defer`: each chunk's transaction defers the deferrable constraints to its commit (tables an
        application made, pgferry.migrate.existing: a row may point at one later in its chunk)."""
        self.schema, self.policy, self.defer = schema, policy, defer

    def _deferred(self, pg: psycopg.Connection) -> None:
        if self.defer:
            pg.execute("SET CONSTRAINTS ALL DEFERRED")

    def checkpoint(self, pg: psycopg.Connection, checkpoint: Checkpoint) -> None:
        """Record `checkpoint` alone (a part found finished)."""
        with pg.transaction():
            control.save_checkpoint(pg, self.schema, checkpoint)

    def stream(
        self,
        pg: psycopg.Connection,
        target: sql.Composed,
        batches: Iterable[tuple[bytes | str, int, Key]],
        chunk_rows: int,
        checkpoint: Checkpoint,
    ) -> tuple[int, Key | None]:
        """COPY one chunk as it is read, a few thousand rows at a time, and its checkpoint, in one
        transaction: memory stays flat whatever the chunk size. Raises on the first bad value.

        `checkpoint` is where the chunk starts; returns (rows, last key)."""
        scanned, last = 0, None
        with pg.transaction():
            self._deferred(pg)
            with pg.cursor() as cur, cur.copy(target, writer=QueuedLibpqWriter(cur)) as copy:
                for lines, rows, key in batches:
                    copy.write(lines)
                    scanned, last = scanned + rows, key
            if scanned:
                done = scanned < chunk_rows
                control.save_checkpoint(
                    pg,
                    self.schema,
                    Checkpoint(
                        checkpoint.table, checkpoint.part, last, checkpoint.upper_key, checkpoint.rows + scanned, done
                    ),
                )
                killpoints.reached("copy:before_chunk_commit")
        if scanned:
            killpoints.reached("copy:after_chunk_commit")
        return scanned, last

    def write(
        self,
        pg: psycopg.Connection,
        target: sql.Composed,
        batch: list[tuple[Any, ...]],
        plan: TablePlan,
        checkpoint: Checkpoint,
        bad_value: Callable[[str, Key, str, str, str, Record | None], None],
    ) -> int:
        """COPY a materialised chunk of (line, *key) rows and `checkpoint` (rows counted before the
        chunk) in one transaction; a refused row goes to `bad_value` (RejectPolicy.bad_value, its row
        read by the caller), which stops the copy or rejects it, and the rest is written again.
        Returns the rows written."""
        lines = [row[0] for row in batch]
        while True:
            try:
                with pg.transaction():
                    self._deferred(pg)
                    if lines:
                        with pg.cursor() as cur, cur.copy(target) as copy:
                            copy.write("".join(lines))
                    control.save_checkpoint(
                        pg,
                        self.schema,
                        Checkpoint(
                            checkpoint.table,
                            checkpoint.part,
                            checkpoint.last_key,
                            checkpoint.upper_key,
                            checkpoint.rows + len(lines),
                            checkpoint.done,
                        ),
                    )
                return len(lines)
            except REFUSED_BY_POSTGRES as exc:
                index, column = copy_error_position(exc)
                column = column or exc.diag.column_name  # a NOT NULL refusal names it there
                if index is None or index >= len(lines):
                    detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""  # a key at commit
                    raise CopyDataError(
                        f"table {checkpoint.table!r}: PostgreSQL refused a chunk: {first_line(exc)}{detail}"
                    ) from None
                key = list(batch[index][1:])
                fields = next(csv.reader([lines[index]]))
                shown = fields[_column_position(plan, column)] if column else lines[index][:80]
                source = next((c.source for c in plan.copied_columns if c.target == column), column)
                named = source or "(not named by PostgreSQL)"
                bad_value(checkpoint.table, key, named, repr(shown[:80]), first_line(exc), None)
                del lines[index]
                batch = batch[:index] + batch[index + 1 :]


def _column_position(plan: TablePlan, target_column: str) -> int:
    for position, column in enumerate(plan.copied_columns):
        if column.target == target_column:
            return position
    return 0
