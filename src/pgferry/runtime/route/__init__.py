"""The route of a live migration (sqlite, dual, postgres) and its freeze, kept in the SQLite file's
control table and mirrored in PostgreSQL's control schema; read by `pgferry.runtime.routed.Router`.

Layout: `state` (the values), `control` (the SQLite row; `set_route`, `freeze`, `thaw`), `mirror`
(the PostgreSQL row), `reader` (lock-free peeks). See docs/runtime.md, "The route and dual writes".
"""

from __future__ import annotations

from pgferry.runtime.route.control import ROUTE_TABLE, freeze, read_route, set_route, thaw
from pgferry.runtime.route.reader import RouteReader
from pgferry.runtime.route.state import Route, RouteState

__all__ = ["ROUTE_TABLE", "Route", "RouteReader", "RouteState", "freeze", "read_route", "set_route", "thaw"]
