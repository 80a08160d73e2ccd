"""pgferry.runtime.multiprocess, with real processes: a live collector's samples from two processes
combined by their modes (livesum, livemax, livemin), counters published as increments, a dead process's
live gauges dropped while its counters stay; the throwaway directory and the environment restored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.multiprocess import MultiProcessCollector

from pgferry.runtime import multiprocess

CHILD = """
import os
import sys
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pgferry.runtime.multiprocess import LiveGauges

value = {"v": float(sys.argv[1])}

class Live:
    def collect(self):
        for name in ("total", "worst", "best"):
            gauge = GaugeMetricFamily(name, name, labels=["db"])
            gauge.add_metric(["a"], value["v"])
            yield gauge
        waited = CounterMetricFamily("waited_seconds", "waited", labels=["db"])
        waited.add_metric(["a"], value["v"])
        yield waited

live = LiveGauges(Live(), {"total": "livesum", "worst": "livemax", "best": "livemin"})
live.publish()
value["v"] *= 3  # the gauges move to 3v; the counter grew by 2v, so it must read 3v, not 4v
live.publish()
print(os.getpid())
"""


def combined(path: Path) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in MultiProcessCollector(None, path=str(path)).collect()  # type: ignore[no-untyped-call]
        for sample in family.samples
    }


def test_live_samples_of_two_processes_are_combined_by_their_modes() -> None:
    outside = os.environ.get(multiprocess.ENV)
    with multiprocess.metrics_dir() as path:
        assert os.environ[multiprocess.ENV] == str(path) and path.is_dir()
        pids = []
        for value in ("1", "2"):
            child = subprocess.run([sys.executable, "-c", CHILD, value], capture_output=True, text=True, timeout=60)
            assert child.returncode == 0, child.stderr
            pids.append(int(child.stdout))
        assert combined(path) == {"total": 3 + 6, "worst": 6, "best": 3, "waited_seconds_total": 3 + 6}
        multiprocess.mark_dead(pids[1], path)  # the second process has exited
        assert combined(path) == {"total": 3, "worst": 3, "best": 3, "waited_seconds_total": 9}
    assert not path.exists()
    assert os.environ.get(multiprocess.ENV) == outside


GOING = """
import sys
from prometheus_client.core import GaugeMetricFamily
from pgferry.runtime.multiprocess import LiveGauges

readings = [None if v == "-" else float(v) for v in sys.argv[1:]]  # "-": the replica cannot be reached

class Replica:
    def collect(self):
        for name in ("lag", "up", "total"):
            gauge = GaugeMetricFamily(name, name, labels=["replica"])
            if readings[0] is not None:
                gauge.add_metric(["r"], readings[0])
            yield gauge

live = LiveGauges(Replica(), {"lag": "livemax", "up": "livemin", "total": "livesum"})
while readings:
    live.publish()
    readings.pop(0)
"""


def scraped(*runs: tuple[str, ...]) -> dict[str, float]:
    """The combined samples of one process per run, each publishing its readings in turn."""
    with multiprocess.metrics_dir():
        for readings in runs:
            child = subprocess.run([sys.executable, "-c", GOING, *readings], capture_output=True, text=True, timeout=60)
            assert child.returncode == 0, child.stderr
        return {s.name: s.value for family in multiprocess.scrape_registry().collect() for s in family.samples}


def test_a_series_a_process_stops_giving_is_no_value_not_its_last_one() -> None:
    assert scraped(("0.3",)) == {"lag": 0.3, "up": 0.3, "total": 0.3}
    assert scraped(("0.3", "-")) == {"total": 0}  # gone: not a stale 0.3 (a sum without it is 0)
    assert scraped(("0.3", "-"), ("0.2",)) == {"lag": 0.2, "up": 0.2, "total": 0.2}  # the other's reading
    assert scraped(("0.3", "-", "0.5"), ("0.25",)) == {"lag": 0.5, "up": 0.25, "total": 0.75}  # back again
