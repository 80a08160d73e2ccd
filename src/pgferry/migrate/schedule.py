"""Run tasks as soon as what they wait for is done, on a few named pools of threads.

A copy is a pipeline, not a sequence of phases: a table's indexes can be built while other tables
are still streaming, and a foreign key can be validated as soon as its two tables are finished.
Waiting for the slowest table at each phase boundary leaves cores idle; on two cores that was a
third of the wall time. The scheduler is deliberately small: a task names the tasks it runs after,
a pool and a priority; the first failure stops new tasks from starting and is raised once the
running ones have returned.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Task:
    name: str
    run: Callable[[], Any]
    pool: str = "default"
    after: set[str] = field(default_factory=set)
    priority: float = 0.0  # lower runs first among ready tasks of one pool


class Scheduler:
    def __init__(self, pools: dict[str, int]) -> None:
        if any(size < 1 for size in pools.values()):
            raise ValueError("every pool needs at least one thread")
        self.pools = dict(pools)
        self.tasks: dict[str, Task] = {}
        self.results: dict[str, Any] = {}

    def add(self, task: Task) -> Task:
        if task.name in self.tasks:
            raise ValueError(f"duplicate task {task.name!r}")
        if task.pool not in self.pools:
            raise ValueError(f"task {task.name!r}: unknown pool {task.pool!r}")
        self.tasks[task.name] = task
        return task

    def run(self) -> dict[str, Any]:
        """Run every task; returns {name: result}. Dependencies on unknown tasks are an error."""
        for task in self.tasks.values():
            unknown = task.after - self.tasks.keys()
            if unknown:
                raise ValueError(f"task {task.name!r} waits for unknown tasks {sorted(unknown)}")
        waiting = {name: set(task.after) for name, task in self.tasks.items()}
        dependents: dict[str, list[str]] = {name: [] for name in self.tasks}
        for name, task in self.tasks.items():
            for before in task.after:
                dependents[before].append(name)
        ready: dict[str, list[tuple[float, int, str]]] = {pool: [] for pool in self.pools}
        order = {name: i for i, name in enumerate(self.tasks)}
        lock = threading.Condition()
        state = _RunState(remaining=len(self.tasks))

        def push(name: str) -> None:
            task = self.tasks[name]
            heapq.heappush(ready[task.pool], (task.priority, order[name], name))

        for name, pending in waiting.items():
            if not pending:
                push(name)

        def worker(pool: str) -> None:
            while True:
                with lock:
                    while not ready[pool] and state.remaining and state.error is None:
                        if state.running == 0 and not any(ready.values()):
                            state.error = RuntimeError("tasks wait on each other in a cycle")
                            lock.notify_all()
                            break
                        lock.wait()
                    if state.error is not None or not state.remaining:
                        return
                    _priority, _n, name = heapq.heappop(ready[pool])
                    state.running += 1
                try:
                    result = self.tasks[name].run()
                except BaseException as exc:  # handed to the caller of run()
                    with lock:
                        state.running -= 1
                        if state.error is None:
                            state.error = exc
                        lock.notify_all()
                    return
                with lock:
                    self.results[name] = result
                    state.running -= 1
                    state.remaining -= 1
                    for after in dependents[name]:
                        waiting[after].discard(name)
                        if not waiting[after]:
                            push(after)
                    lock.notify_all()

        threads = [
            threading.Thread(target=worker, args=(pool,), name=f"pgferry-{pool}-{i}", daemon=True)
            for pool, size in self.pools.items()
            for i in range(size)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if state.error is not None:
            raise state.error
        return self.results


@dataclass
class _RunState:
    """What the workers of one run share, under its lock."""

    remaining: int
    running: int = 0
    error: BaseException | None = None
