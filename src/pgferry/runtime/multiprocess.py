"""prometheus_client's multiprocess mode, for an application served by several processes on one port
(a scrape is answered by any one of them): every metric is written to a file per process in one
directory, and a scrape sums the files of all processes, those that exited included (their counters
and histograms keep counting towards the totals).

    with metrics_dir() as path:        # the parent, before it starts the workers
        ...                            # mark_dead(pid, path) for each worker that exits
    scrape_registry()                  # a worker's /metrics

prometheus_client chooses where values live when it is first imported, from PROMETHEUS_MULTIPROC_DIR:
the variable must be in a worker's environment when it starts, so the parent sets it (and serves
nothing itself) and spawned workers inherit it.

A collector that reads live state at a scrape (a pool's connections, a replica's lag) would show only
the process that answered. `LiveGauges` samples such a collector in each process instead, into
multiprocess gauges combined as the collector's `multiprocess_modes` say (livesum: the processes'
total; livemax, livemin), and its counters as increments; a dead process's live gauges are dropped by
`mark_dead`. prometheus_client cannot remove a series in this mode, so a series the collector stops
giving (a replica's lag while it is unreachable) is written as "no value": the value that loses under
its mode (-Inf under livemax, +Inf under livemin, 0 under livesum), and `scrape_registry` leaves out a
gauge whose combined value is infinite or NaN. Another process's real value still wins; when no
process has one the series is absent, as it is with one process.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

ENV = "PROMETHEUS_MULTIPROC_DIR"

# what a process writes for a series it no longer has, by mode: a value every real one beats
NO_VALUE = {"livemax": -math.inf, "max": -math.inf, "livemin": math.inf, "min": math.inf, "livesum": 0.0, "sum": 0.0}


def enabled() -> bool:
    """Whether this process writes its metrics to the multiprocess directory."""
    return bool(os.environ.get(ENV))


@contextlib.contextmanager
def metrics_dir() -> Iterator[Path]:
    """A throwaway directory for the workers' metric files, named in the environment the workers will
    inherit; removed, and the environment restored, when the block ends."""
    previous = os.environ.get(ENV)
    with tempfile.TemporaryDirectory(prefix="pgferry-metrics-") as tmp:
        os.environ[ENV] = tmp
        try:
            yield Path(tmp)
        finally:
            if previous is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = previous


def mark_dead(pid: int, path: Path) -> None:
    """Process `pid` has exited: its live gauges no longer count (its counters still do)."""
    mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def scrape_registry() -> CollectorRegistry:
    """A registry holding the sum of every process's metrics, for one scrape."""
    registry = CollectorRegistry()
    registry.register(_Valued(MultiProcessCollector(None)))  # type: ignore[no-untyped-call]
    return registry


class _Valued(Collector):
    """`source`'s metrics without the gauge samples no process had a value for (see NO_VALUE)."""

    def __init__(self, source: Collector) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            if family.type == "gauge":
                family.samples = [s for s in family.samples if math.isfinite(s.value)]
            yield family


class LiveGauges:
    """`collector`'s samples written into this process's multiprocess files now and every `every_s`,
    in a daemon thread: gauges combined by `modes` (metric name -> multiprocess mode, `livesum` when not
    named), counters as the increase since the last sample."""

    def __init__(self, collector: Collector, modes: Mapping[str, str], every_s: float = 1.0) -> None:
        self.collector, self.modes, self.every_s = collector, dict(modes), every_s
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}
        self._given: set[tuple[str, tuple[str, ...]]] = set()  # the gauge series of the last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-gauges", daemon=True)

    def start(self) -> LiveGauges:
        self.publish()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.publish()

    def publish(self) -> None:
        given: set[tuple[str, tuple[str, ...]]] = set()
        for family in self.collector.collect():
            for sample in family.samples:
                names, values = tuple(sample.labels), tuple(sample.labels.values())
                if family.type == "gauge":
                    gauge = self._gauge(family.name, family.documentation, names)
                    (gauge.labels(*values) if names else gauge).set(sample.value)
                    given.add((family.name, values))
                elif family.type == "counter" and sample.name == family.name + "_total":
                    key = (family.name, values)
                    increase = sample.value - self._last.get(key, 0.0)
                    self._last[key] = sample.value
                    if increase < 0:  # the source restarted from zero
                        increase = sample.value
                    if increase:
                        counter = self._counter(family.name, family.documentation, names)
                        (counter.labels(*values) if names else counter).inc(increase)
        for name, values in self._given - given:  # no longer given: "no value" (it cannot be removed)
            gauge = self._gauges[name]
            (gauge.labels(*values) if values else gauge).set(NO_VALUE.get(self.modes.get(name, "livesum"), math.nan))
        self._given = given

    def _gauge(self, name: str, documentation: str, labels: tuple[str, ...]) -> Gauge:
        if name not in self._gauges:
            mode = self.modes.get(name, "livesum")
            self._gauges[name] = Gauge(name, documentation, labels, registry=None, multiprocess_mode=mode)  # type: ignore[arg-type]
        return self._gauges[name]

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> Counter:
        if name not in self._counters:
            self._counters[name] = Counter(name, documentation, labels, registry=None)
        return self._counters[name]
