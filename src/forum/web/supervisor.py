"""uvicorn's supervisor of `forum serve --workers N`, telling prometheus_client when a worker is gone.

Each worker writes its metrics to files of its own in the parent's throwaway directory
(pgferry.runtime.multiprocess). When a worker exits (it died and uvicorn replaced it, or SIGHUP or
SIGTTOU retired it), its live gauges (requests in flight, its pool) must stop counting while its
counters keep counting: `mark_dead` for every pid no longer among the workers, checked each time
uvicorn checks on them (every half second).
"""

from __future__ import annotations

import socket
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from pgferry.runtime.multiprocess import mark_dead


class Supervisor(Multiprocess):
    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_path: Path) -> None:
        super().__init__(config, sockets)
        self.metrics_path = metrics_path
        self.known: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self.forget_gone()

    def forget_gone(self) -> None:
        """mark_dead for each worker pid seen before and gone now."""
        alive = {p.pid for p in self.processes if p.pid is not None}
        for pid in sorted(self.known - alive):
            mark_dead(pid, self.metrics_path)
        self.known = alive
