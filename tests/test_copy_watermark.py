"""The seam change capture will stand on: a read made in the copy's own snapshot. Writes that land
while the copy runs are neither in the copied rows nor under the watermark, so catch-up from the
watermark misses nothing and repeats nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg

from pgferry.events import Event
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database


def test_the_watermark_and_the_rows_come_from_one_snapshot(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "live.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")  # the application keeps writing while the copy reads
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE changes (seq INTEGER PRIMARY KEY, item_id INTEGER)")
        for i in range(1, 301):
            conn.execute("INSERT INTO item VALUES (?, ?)", (i, f"n{i}"))
            conn.execute("INSERT INTO changes (item_id) VALUES (?)", (i,))
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    wrote: list[int] = []
    once = threading.Lock()  # copy workers call listeners from their threads

    def write_during_copy(event: Event) -> None:  # the first copy event: the snapshot is already taken
        with once:
            if event.phase == "copy" and not wrote:
                for i in range(301, 321):
                    writer.execute("INSERT INTO item VALUES (?, ?)", (i, f"late{i}"))
                    writer.execute("INSERT INTO changes (item_id) VALUES (?)", (i,))
                wrote.append(20)

    report = copy_database(
        path,
        pg_dsn,
        CopyOptions(jobs=2, chunk_rows=50),
        events=write_during_copy,
        watermark=lambda conn: conn.execute("SELECT max(seq) FROM changes").fetchone()[0],
    )
    writer.close()
    assert wrote and report.watermark == 300 and report.as_dict()["watermark"] == 300
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*), max(id) FROM item").fetchone() == (300, 300)
    with sqlite3.connect(path) as conn:
        late = conn.execute("SELECT count(*) FROM changes WHERE seq > ?", (report.watermark,)).fetchone()[0]
    assert late == 20  # exactly the writes catch-up will replay
