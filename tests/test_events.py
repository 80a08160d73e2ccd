"""Progress events: the Phases producer's contract, the terminal bars drawn from events, and the
producers (doctor, tune, split, verify, seed) that report through them."""

from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from forum.seed import generate
from pgferry.bars import EventBars
from pgferry.doctor import diagnose
from pgferry.events import Event, Phases, fan_out, no_events
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify
from pgferry.split.apply import run_steps
from pgferry.split.ddl import Script


def last_by_task(events: list[Event]) -> dict[tuple[str, str], Event]:
    return {(e.phase, e.task): e for e in events}


def test_phases_start_advance_finish() -> None:
    seen: list[Event] = []
    steps = Phases(seen.append, "tune")
    steps.start("applying", 2)
    steps.advance(detail="index a")
    steps.start("replaying")  # finishes "applying" at the count it reached
    steps.advance(3)
    steps.finish()
    steps.advance()  # no task: nothing
    assert [(e.task, e.done, e.total, e.detail) for e in seen] == [
        ("applying", 0, 2, ""),
        ("applying", 1, 2, "index a"),
        ("applying", 2, 2, ""),
        ("replaying", 0, None, ""),
        ("replaying", 3, None, ""),
        ("replaying", 3, 3, ""),
    ]
    assert all(e.phase == "tune" and e.unit == "steps" for e in seen)
    assert [e.finished for e in seen] == [False, False, True, False, False, True]


def test_fan_out_calls_each_listener_and_skips_none() -> None:
    a: list[Event] = []
    b: list[Event] = []
    listener = fan_out(a.append, None, b.append)
    listener(Event("copy", "t", 1, 2))
    assert a == b == [Event("copy", "t", 1, 2)]
    assert fan_out(None) is no_events


def test_bars_keep_row_counts_and_put_finished_steps_away() -> None:
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    bars = EventBars(progress)
    bars(Event("copy", "users", 5, 10))
    bars(Event("copy", "users", 10, 10))
    bars(Event("doctor", "reading the schema", 0, None, "steps"))
    bars(Event("doctor", "reading the schema", 1, 1, "steps"))
    bars(Event("split", "splitting users", 1, 4, "steps", detail="create the core table"))
    tasks = {t.description: t for t in progress.tasks}
    copy, schema = tasks["[dim]copy[/dim] users"], tasks["[dim]doctor[/dim] reading the schema"]
    split = next(t for d, t in tasks.items() if d.startswith("[dim]split[/dim] splitting users"))
    assert copy.visible and copy.completed == 10 and copy.fields["rate"].endswith("rows/s")
    assert not schema.visible
    assert split.visible and "create the core table" in split.description and split.fields["rate"] == ""


def test_bars_make_one_bar_per_task_under_threads() -> None:
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    bars = EventBars(progress)

    def work(n: int) -> None:
        for done in range(50):
            bars(Event("copy", f"t{n % 3}", done, 50))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.description for t in progress.tasks) == [f"[dim]copy[/dim] t{i}" for i in range(3)]


def small_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
        conn.execute("CREATE TABLE b (a_id INTEGER REFERENCES a(id), note TEXT)")
        conn.executemany("INSERT INTO a VALUES (?, ?, ?)", [(i, f"n{i}", i % 7) for i in range(500)])
        conn.executemany("INSERT INTO b VALUES (?, ?)", [(i % 500, "x") for i in range(800)])
    return path


def test_doctor_finishes_every_task_it_starts(tmp_path: Path) -> None:
    seen: list[Event] = []
    diagnose(small_db(tmp_path / "d.db"), events=seen.append)
    last = last_by_task(seen)
    assert ("doctor", "reading the schema") in last
    assert all(e.finished for e in last.values()), [e for e in last.values() if not e.finished]


def test_split_steps_are_counted_with_their_purpose(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    script = Script()
    script.add("make t", "CREATE TABLE t (x)")
    script.add("fill t", "INSERT INTO t VALUES (1)")
    seen: list[Event] = []
    run_steps(conn, script, seen.append, "splitting t")
    assert [(e.done, e.total, e.detail) for e in seen] == [(0, 2, ""), (1, 2, "make t"), (2, 2, "fill t"), (2, 2, "")]


def test_copy_and_verify_report_every_table_verified(tmp_path: Path, pg_dsn: str) -> None:
    seen: list[Event] = []
    job = copy_and_verify(small_db(tmp_path / "v.db"), pg_dsn, CopyOptions(jobs=2), events=seen.append)
    assert job.identical
    verified = {e.task: e for e in seen if e.phase == "verify"}
    assert {t: (e.done, e.total) for t, e in verified.items()} == {"a": (500, 500), "b": (800, 800)}


def test_seed_reports_rows_and_indexes(tmp_path: Path) -> None:
    seen: list[Event] = []
    report = generate(tmp_path / "f.db", scale=0.01, seed=7, events=seen.append, parallel=False)
    last = last_by_task(seen)
    rows = [e for e in seen if e.task == "rows"]
    assert rows[-1].finished and {e.detail for e in rows} >= {"users", "user_stats"}
    assert [e.done for e in rows] == sorted(e.done for e in rows)
    assert last[("seed", "indexes")].finished and last[("seed", "indexes")].done == report.indexes
