"""Process trees from /proc for the benchmarks: descendants, CPU seconds, CPU affinity.

CPU seconds are the figure a busy machine does not move the way it moves wall time: sampled before and
after a run, the difference is that tree's share of the work.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's), [] when it is gone."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p not in out:
            out.append(p)
            todo += children(p)
    return out


def cpu_ticks(pid: int, *, reaped: bool) -> int:
    """utime + stime of `pid` (+ cutime + cstime: its exited children, when `reaped`)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of proc(5))
    return ticks + int(fields[13]) + int(fields[14]) if reaped else ticks


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by `root`, its live descendants and the children it has reaped."""
    return (cpu_ticks(root, reaped=True) + sum(cpu_ticks(p, reaped=False) for p in descendants(root)[1:])) / TICK


def postmaster_pid(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().split()[0])


def pin(root: int, cpus: set[int]) -> None:
    """Restrict every thread of `root` and its live descendants to `cpus` (children forked later inherit it)."""
    for pid in descendants(root):
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(task), cpus)
        except OSError:  # gone meanwhile
            pass
