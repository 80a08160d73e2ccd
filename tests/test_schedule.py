"""The copy pipeline's scheduler: order by dependencies and priority, stop on the first failure."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgferry.migrate.plan import MigrationPlan, Step, TablePlan
from pgferry.migrate.run import copy_order
from pgferry.migrate.schedule import Scheduler, Task


def _recorder() -> tuple[list[str], threading.Lock]:
    return [], threading.Lock()


def test_tasks_run_after_what_they_wait_for_and_return_results() -> None:
    done, lock = _recorder()

    def step(name: str) -> str:
        with lock:
            done.append(name)
        return name.upper()

    scheduler = Scheduler({"data": 2, "ddl": 2})
    scheduler.add(Task("copy-a", lambda: step("copy-a"), "data"))
    scheduler.add(Task("copy-b", lambda: step("copy-b"), "data"))
    scheduler.add(Task("index-a", lambda: step("index-a"), "ddl", {"copy-a"}))
    scheduler.add(Task("fk", lambda: step("fk"), "ddl", {"index-a", "copy-b"}))
    results = scheduler.run()
    assert results == {"copy-a": "COPY-A", "copy-b": "COPY-B", "index-a": "INDEX-A", "fk": "FK"}
    assert done.index("copy-a") < done.index("index-a") < done.index("fk")
    assert done.index("copy-b") < done.index("fk")


def test_one_thread_runs_ready_tasks_by_priority() -> None:
    done, _lock = _recorder()
    scheduler = Scheduler({"one": 1})
    for name, priority in (("small", 5), ("big", -100), ("medium", 0)):
        scheduler.add(Task(name, lambda n=name: done.append(n), "one", priority=priority))
    scheduler.run()
    assert done == ["big", "medium", "small"]


def test_pools_run_concurrently() -> None:
    """A task in one pool can wait for a running task of another pool: they overlap, not queue."""
    started = threading.Event()
    scheduler = Scheduler({"data": 1, "ddl": 1})
    scheduler.add(Task("long", lambda: started.wait(timeout=10), "data"))
    scheduler.add(Task("signal", started.set, "ddl"))
    results = scheduler.run()
    assert results["long"] is True  # the event was set while "long" was running


def test_first_failure_stops_new_tasks_and_is_raised() -> None:
    done, _lock = _recorder()
    scheduler = Scheduler({"one": 1})

    def boom() -> None:
        raise RuntimeError("copy failed on table t")

    scheduler.add(Task("fails", boom, "one", priority=0))
    scheduler.add(Task("later", lambda: done.append("later"), "one", priority=1))
    scheduler.add(Task("after", lambda: done.append("after"), "one", {"fails"}))
    with pytest.raises(RuntimeError, match="copy failed on table t"):
        scheduler.run()
    assert done == []


def test_failure_waits_for_running_tasks_of_other_threads() -> None:
    finished = threading.Event()
    scheduler = Scheduler({"a": 1, "b": 1})

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    def boom() -> None:
        raise ValueError("bad")

    scheduler.add(Task("slow", slow, "a"))
    scheduler.add(Task("boom", boom, "b"))
    with pytest.raises(ValueError):
        scheduler.run()
    assert finished.is_set()


def test_unknown_dependency_pool_and_duplicates_are_refused() -> None:
    scheduler = Scheduler({"one": 1})
    scheduler.add(Task("a", lambda: None, "one", {"missing"}))
    with pytest.raises(ValueError, match="unknown tasks"):
        scheduler.run()
    with pytest.raises(ValueError, match="duplicate"):
        scheduler.add(Task("a", lambda: None, "one"))
    with pytest.raises(ValueError, match="unknown pool"):
        scheduler.add(Task("b", lambda: None, "elsewhere"))
    with pytest.raises(ValueError):
        Scheduler({"none": 0})


def test_a_cycle_is_an_error_not_a_hang() -> None:
    scheduler = Scheduler({"one": 2})
    scheduler.add(Task("a", lambda: None, "one", {"b"}))
    scheduler.add(Task("b", lambda: None, "one", {"a"}))
    with pytest.raises(RuntimeError, match="cycle"):
        scheduler.run()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30),
            st.integers(min_value=1, max_value=3),
        )
    )
)
def test_random_acyclic_graphs_respect_every_edge(graph: tuple[int, list[tuple[int, int]], int]) -> None:
    n, edges, threads = graph
    done, lock = _recorder()
    scheduler = Scheduler({"p": threads, "q": 1})
    after = {i: {f"t{min(a, b)}" for a, b in edges if max(a, b) == i and a != b} for i in range(n)}
    for i in range(n):

        def step(name: str = f"t{i}") -> None:
            with lock:
                done.append(name)

        scheduler.add(Task(f"t{i}", step, "p" if i % 2 else "q", after[i]))
    scheduler.run()
    assert sorted(done) == sorted(f"t{i}" for i in range(n))
    for i in range(n):
        for before in after[i]:
            assert done.index(before) < done.index(f"t{i}")


def test_a_small_parent_of_big_children_is_copied_before_them() -> None:
    def table(name: str, rows: int) -> TablePlan:
        return TablePlan(name, name, [], (), rows)

    def fk(child: str, parent: str) -> Step:
        return Step("foreign_key", child, f"{child}_fk", "ALTER TABLE ...", references=parent)

    plan = MigrationPlan(
        "public",
        [table("users", 20), table("replies", 600), table("topics", 30), table("logs", 100)],
        [fk("replies", "users"), fk("replies", "topics"), fk("topics", "users")],
        [],
        [],
    )
    order = copy_order(plan)
    assert sorted(order, key=order.__getitem__) == ["users", "topics", "replies", "logs"]
