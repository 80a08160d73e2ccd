"""The route of a live migration: where an application's statements go, and whether a switch is
announced (a freeze).

`sqlite`: SQLite only (before a migration, and after a rollback). `dual`: SQLite answers, PostgreSQL
runs the same statements in shadow (dual writes, shadow reads). `postgres`: PostgreSQL only (after
the cutover). A freeze is the cutover's announcement: writers that see it wait instead of queuing
for SQLite's write lock (whose busy handler is unfair), and it lapses at `freeze_until` by itself,
so a killed cutover cannot stop writers for ever.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pgferry.errors import UsageError


class Route(StrEnum):
    SQLITE = "sqlite"
    DUAL = "dual"
    POSTGRES = "postgres"

    @classmethod
    def parse(cls, value: str) -> Route:
        """The route named `value`; a UsageError listing the routes otherwise."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise UsageError(f"route must be one of {', '.join(r.value for r in cls)}, not {value!r}") from None


@dataclass(frozen=True)
class RouteState:
    route: Route = Route.SQLITE
    freeze_until: float | None = None  # unix time (time.time()) a freeze lapses at; None: no freeze
    version: int = 0  # one more at every change: a reader can tell a flip it has not seen yet
    note: str | None = None

    def frozen(self, now: float | None = None) -> bool:
        """Whether writers must wait now: a freeze is announced and has not lapsed."""
        return self.freeze_until is not None and (time.time() if now is None else now) < self.freeze_until

    def describe(self) -> dict[str, object]:
        """For `settings()` and a status line."""
        return {"route": self.route.value, "frozen": self.frozen(), "version": self.version, "note": self.note}


UNSET = RouteState()  # a file that never had a route: SQLite only


def from_row(row: Mapping[str, Any] | None) -> RouteState | None:
    """The state a control row holds (route, freeze_until, version, note); None for no row."""
    if row is None:
        return None
    freeze = row["freeze_until"]
    return RouteState(Route(row["route"]), None if freeze is None else float(freeze), int(row["version"]), row["note"])
