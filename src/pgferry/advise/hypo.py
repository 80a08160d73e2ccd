"""A statement's plan with and without a hypothetical index, through HypoPG.

HypoPG's indexes live in one backend, and pg_stat_statements' texts have $1, $2 where the values
were. So everything runs in ONE transaction (a transaction keeps its backend, through PgBouncer in
transaction pooling too), and each statement is planned as a generic plan: PREPARE, then EXPLAIN
EXECUTE with NULLs under `plan_cache_mode = force_generic_plan` (PostgreSQL 12+; the values do not
shape a generic plan). Each statement is prepared anew for every plan, since a prepared statement
keeps the plan it made before a hypothetical index existed. A statement that cannot be prepared (a
parameter whose type nothing says) is reported with PostgreSQL's reason. The session rolls back:
nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from pgferry.errors import TargetError
from pgferry.pg.connect import first_line, statement

_PARAM = re.compile(r"\$(\d+)")
_UNTYPED = re.compile(r"could not determine data type of parameter \$(\d+)")
PREPARED = "pgferry_advise"


@dataclass(frozen=True)
class Plan:
    cost: float
    indexes: tuple[str, ...]  # index names the plan uses
    lines: tuple[str, ...] = ()  # its outline, one node a line (as EXPLAIN's text names them)

    def uses(self, name: str) -> bool:
        return any(name in used for used in self.indexes)


class Unplannable(Exception):
    """PostgreSQL could not prepare or plan the statement; the message is its reason."""


class HypoSession:
    def __init__(self, pg: psycopg.Connection[Any]) -> None:
        self.pg = pg

    @classmethod
    @contextlib.contextmanager
    def open(cls, pg: psycopg.Connection[Any]) -> Iterator[HypoSession]:
        """The session, in a transaction on `pg` that is rolled back at the end."""
        with contextlib.suppress(psycopg.Error):
            pg.rollback()
        pg.autocommit = False
        try:
            try:
                pg.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            except psycopg.Error as exc:
                raise TargetError(f"HypoPG is not available here: {first_line(exc)}") from None
            pg.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            yield cls(pg)
        finally:
            with contextlib.suppress(psycopg.Error):
                pg.execute("SELECT hypopg_reset()")
            pg.rollback()
            pg.autocommit = True

    def _explain(self, query: str, options: str, values: dict[int, str | None] | None = None) -> dict[str, Any]:
        params = max((int(n) for n in _PARAM.findall(query)), default=0)
        types = ["unknown"] * params  # inferred from the context, where it says
        given = values or {}
        literals = [_literal(given.get(n)) for n in range(1, params + 1)]
        args = f"({', '.join(literals)})" if params else ""
        while True:
            try:
                row = self._explain_prepared(query, types, f"EXPLAIN ({options}) EXECUTE {PREPARED}{args}")
                break
            except psycopg.Error as exc:
                # pg_stat_statements turned a constant the context does not type (SELECT 0 AS part,
                # coalesce(x, '[]')) into a parameter: say it is text, as the constant was
                untyped = _UNTYPED.search(str(exc))
                if untyped is None or types[int(untyped.group(1)) - 1] != "unknown":
                    raise Unplannable(first_line(exc)) from None
                types[int(untyped.group(1)) - 1] = "text"
        assert row is not None
        document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
        return dict(document[0])

    def _explain_prepared(self, query: str, types: list[str], explain: str) -> Any:
        """`explain` run on `query` prepared as PREPARED with `types`. A prepared statement outlives the
        rollback of its savepoint: after a failure it is deallocated too, or the next PREPARE would fail
        (and, through PgBouncer, the next client of this server connection would find it)."""
        declared = f"({', '.join(types)})" if types else ""
        prepared = False
        try:
            with self.pg.transaction():  # a savepoint: a failure undoes only this
                self.pg.execute(statement(f"PREPARE {PREPARED}{declared} AS {query}"))
                prepared = True
                row = self.pg.execute(statement(explain)).fetchone()
                self.pg.execute(statement(f"DEALLOCATE {PREPARED}"))
                return row
        except psycopg.Error:
            # psycopg may have sent DEALLOCATE ALL itself after the rollback: ask before
            if (
                prepared
                and self.pg.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [PREPARED]).fetchone()
            ):
                self.pg.execute(statement(f"DEALLOCATE {PREPARED}"))
            raise

    def plan(self, query: str) -> Plan:
        """The generic plan of `query` as things stand (hypothetical indexes included)."""
        top = self._explain(query, "FORMAT JSON")["Plan"]
        return Plan(float(top["Total Cost"]), tuple(_index_names(top)), tuple(outline(top)))

    def run_ms(self, query: str, values: dict[int, str | None], runs: int = 3) -> float:
        """The best of `runs` executions of the generic plan with `values` for its parameters, '0' for
        the others, or NULL where '0' is not a value of their type (EXPLAIN ANALYZE, in this rolled-back
        transaction). Real indexes only: HypoPG's cannot execute."""
        given = {**{int(n): "0" for n in _PARAM.findall(query)}, **values}
        try:
            self._explain(query, "ANALYZE, FORMAT JSON", given)
        except Unplannable:
            given = values
        return min(float(self._explain(query, "ANALYZE, FORMAT JSON", given)["Execution Time"]) for _ in range(runs))

    @contextlib.contextmanager
    def real(self, definition: str) -> Iterator[None]:
        """The index built for real inside the transaction (it holds a SHARE lock on the table until the
        session ends: writes to it wait), dropped again after the block."""
        with self.pg.transaction():
            self.pg.execute(
                statement(definition.replace("CREATE INDEX ON", "CREATE INDEX pgferry_advise_measure ON", 1))
            )
            try:
                yield
            finally:
                self.pg.execute("DROP INDEX pgferry_advise_measure")

    @contextlib.contextmanager
    def hypothetical(self, definition: str) -> Iterator[str]:
        """A hypothetical index made from `definition` (CREATE INDEX ...) for the block; its name."""
        row = self.pg.execute("SELECT indexrelid, indexname FROM hypopg_create_index(%s)", [definition]).fetchone()
        assert row is not None
        try:
            yield str(row[1])
        finally:
            self.pg.execute("SELECT hypopg_drop_index(%s)", [row[0]])

    def size(self, name: str) -> int | None:
        """HypoPG's estimate of a hypothetical index's size in bytes."""
        row = self.pg.execute(
            "SELECT hypopg_relation_size(indexrelid) FROM hypopg_list_indexes WHERE index_name = %s", [name]
        ).fetchone()
        return None if row is None else int(row[0])


def _literal(value: str | None) -> str:
    """A parameter's value as an untyped literal (PostgreSQL casts it to the parameter's type)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _index_names(node: dict[str, Any]) -> list[str]:
    found = [node["Index Name"]] if "Index Name" in node else []
    for child in node.get("Plans", ()):
        found += _index_names(child)
    return found


def outline(node: dict[str, Any], depth: int = 0) -> list[str]:
    """A JSON plan's nodes as EXPLAIN's text names them (`Index Scan using i on t`), children indented
    under `->`, without the figures: what a reader compares with SQLite's EXPLAIN QUERY PLAN."""
    text = str(node["Node Type"])
    if "Index Name" in node:
        text += f" using {node['Index Name']}"
    if "Relation Name" in node:
        text += f" on {node['Relation Name']}"
        if node.get("Alias") not in (None, node["Relation Name"]):
            text += f" {node['Alias']}"
    lines = ["  " * depth + ("-> " if depth else "") + text]
    for child in node.get("Plans", ()):
        lines += outline(child, depth + 1)
    return lines
