"""Index advice from the workload pg_stat_statements saw: each statement's generic plan without and
with every candidate index (HypoPG), the candidates chosen greedily by the time they would save,
net of what they would cost the workload's writes, and a reason for every statement none helps.

Estimates, said as such in the report:
- time saved by an index on a statement = its total time x the share of its plan cost the index
  removes (the planner's cost, not a measurement);
- write cost of an index = for each INSERT and DELETE on its table, and each UPDATE that sets one of
  its columns (other UPDATEs may stay HOT), its total time / (the table's indexes + 1): one more index
  takes about one index's share of such a write (heap + each index).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from pgferry.advise.candidates import Candidate, candidates_of
from pgferry.advise.catalog import Catalog, read_catalog
from pgferry.advise.existing import IndexFinding, redundant_indexes
from pgferry.advise.hypo import HypoSession, Plan, Unplannable
from pgferry.advise.native import NativeOptions, NativeReport, native_advice
from pgferry.advise.parameters import parameter_values
from pgferry.advise.workload import Statement, read_statements
from pgferry.advise.writes import WriteLoad, index_write_ms, write_loads

LOW_COST = 50.0  # a plan cheaper than this has nothing worth an index (Dexter: "low initial cost")
MIN_SAVING = 0.2  # an index must cut a statement's cost by a fifth to count for it


@dataclass
class Helped:
    fingerprint: str
    query: str
    calls: int
    cost_before: float
    cost_after: float
    saved_ms: float
    measured_before_ms: float | None = None  # --measure: the generic plan run without and with the real index
    measured_after_ms: float | None = None

    @property
    def saving(self) -> float:
        return 1 - self.cost_after / self.cost_before


@dataclass
class Proposal:
    table: str
    columns: tuple[str, ...]
    include: tuple[str, ...]
    definition: str
    helps: list[Helped]
    saved_ms: float
    write_cost_ms: float
    estimated_bytes: int | None
    where: str = ""  # a partial index's predicate

    @property
    def net_ms(self) -> float:
        return self.saved_ms - self.write_cost_ms

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["net_ms"] = round(self.net_ms, 3)
        for helped, source in zip(data["helps"], self.helps, strict=True):
            helped["saving"] = round(source.saving, 4)
        return data


@dataclass(frozen=True)
class NotHelped:
    fingerprint: str
    query: str
    reason: str


@dataclass
class AdviceReport:
    statements: int
    workload: list[Statement] = field(default_factory=list)  # what pg_stat_statements saw, heaviest first
    proposals: list[Proposal] = field(default_factory=list)
    not_helped: list[NotHelped] = field(default_factory=list)
    existing: list[IndexFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    native: NativeReport = field(default_factory=NativeReport)  # partitions, BRIN, trigram, value lists
    plans: dict[str, list[str]] = field(default_factory=dict)  # fingerprint -> its generic plan's outline

    def as_dict(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "workload": [w.as_dict() for w in self.workload],
            "proposals": [p.as_dict() for p in self.proposals],
            "not_helped": [asdict(n) for n in self.not_helped],
            "existing": [f.as_dict() for f in self.existing],
            "notes": self.notes,
            "native": self.native.as_dict(),
            "plans": self.plans,
        }


def advise(
    pg: psycopg.Connection[Any],
    limit: int = 200,
    min_calls: int = 1,
    measure: bool = False,
    native: NativeOptions | None = None,
) -> AdviceReport:
    """Advice for the database `pg` is connected to (a direct or a PgBouncer connection: one
    transaction holds the backend HypoPG's indexes live in). `measure` builds each proposal for real
    in that transaction and times the statements it helps without and with it (writes to its table
    wait meanwhile; everything is rolled back). `native`: the thresholds of the native-schema
    proposals (pgferry.advise.native)."""
    statements = read_statements(pg, limit, min_calls)
    catalog = read_catalog(pg)
    report = AdviceReport(len(statements), statements, existing=redundant_indexes(catalog))
    report.notes.append(
        "savings are the planner's cost share times each statement's total time; write costs are each write "
        "statement's time shared among its table's indexes: estimates, to be confirmed by measuring"
    )
    options: dict[Candidate, list[Helped]] = {}
    with HypoSession.open(pg) as session:
        for stmt in statements:
            if stmt.kind == "insert":
                continue
            base = _base_plan(session, stmt)
            if isinstance(base, Plan):
                report.plans[stmt.fingerprint] = list(base.lines)
            reason = _try(session, stmt, base, catalog, options)
            if reason is not None:
                report.not_helped.append(NotHelped(stmt.fingerprint, stmt.query, reason))
        loads = write_loads(statements, catalog)
        report.proposals = _choose(session, options, loads, catalog)
        if measure:
            for proposal in report.proposals:
                report.notes += _measure(session, proposal, pg, catalog)
        report.native = native_advice(pg, session, catalog, statements, native)
    report.not_helped += _outweighed(options, report.proposals, loads, catalog)
    return report


def _measure(session: HypoSession, proposal: Proposal, pg: psycopg.Connection[Any], catalog: Catalog) -> list[str]:
    """Time each statement the proposal helps without and with the index built for real, its
    parameters given real values (pgferry.advise.parameters); a note for each one PostgreSQL would not
    run (its measurements stay None)."""
    values = {h.fingerprint: parameter_values(pg, h.query, catalog) for h in proposal.helps}
    notes = []
    timed = []
    for helped in proposal.helps:
        try:
            helped.measured_before_ms = session.run_ms(helped.query, values[helped.fingerprint])
            timed.append(helped)
        except Unplannable as exc:
            notes.append(f"not measured: {helped.query[:100]}: {exc}")
    with session.real(proposal.definition):
        for helped in timed:
            helped.measured_after_ms = session.run_ms(helped.query, values[helped.fingerprint])
    return notes


def _outweighed(
    options: dict[Candidate, list[Helped]], chosen: list[Proposal], loads: list[WriteLoad], catalog: Catalog
) -> list[NotHelped]:
    """The statements an index would speed up whose every such index costs the writes more."""
    covered = {h.fingerprint for p in chosen for h in p.helps}
    out: dict[str, NotHelped] = {}
    for candidate, helps in options.items():
        cost = write_cost(candidate, loads, catalog)
        for helped in helps:
            if helped.fingerprint in covered or helped.fingerprint in out:
                continue
            reason = (
                f"an index on {candidate.label()} would save about {helped.saved_ms:,.1f} ms but cost the writes "
                f"about {cost:,.1f} ms"
            )
            out[helped.fingerprint] = NotHelped(helped.fingerprint, helped.query, reason)
    return list(out.values())


def _base_plan(session: HypoSession, stmt: Statement) -> Plan | str:
    """`stmt`'s generic plan with the indexes it has, or why PostgreSQL would not plan it."""
    try:
        return session.plan(stmt.query)
    except Unplannable as exc:
        return f"cannot be planned as a generic plan: {exc}"


def _try(
    session: HypoSession, stmt: Statement, base: Plan | str, catalog: Catalog, options: dict[Candidate, list[Helped]]
) -> str | None:
    """Plan `stmt` (its plan now: `base`) with each candidate; record those that help; the reason when
    none does."""
    found = candidates_of(stmt.query, catalog)
    candidates = found.candidates
    if not found.tables:
        return "no candidate tables (it reads none of this database's tables, or it could not be parsed)"
    if not candidates and found.served:
        return f"already served by {', '.join(sorted(found.served))}"
    if not candidates:
        return "no candidate indexes: its predicates name no column an index could lead with"
    if isinstance(base, str):
        return base
    if base.cost < LOW_COST:
        return f"low initial cost ({base.cost:.1f})"
    best = 0.0
    for candidate in candidates:
        with session.hypothetical(candidate.definition(catalog.qualified[candidate.table])) as name:
            after = session.plan(stmt.query)
        saving = 1 - after.cost / base.cost
        best = max(best, saving)
        if after.uses(name) and saving >= MIN_SAVING:
            options.setdefault(candidate, []).append(
                Helped(stmt.fingerprint, stmt.query, stmt.calls, base.cost, after.cost, stmt.total_ms * saving)
            )
    if best < MIN_SAVING:
        return f"no candidate cut its cost by {MIN_SAVING:.0%} or more (best {best:.0%})"
    return None


def write_cost(candidate: Candidate, loads: list[WriteLoad], catalog: Catalog) -> float:
    """What one more index like `candidate` costs the workload's writes (pgferry.advise.writes)."""
    columns = set(candidate.columns) | set(candidate.include) | set(candidate.where_columns)
    return index_write_ms(candidate.table, columns, loads, catalog)


def _choose(
    session: HypoSession, options: dict[Candidate, list[Helped]], loads: list[WriteLoad], catalog: Catalog
) -> list[Proposal]:
    """Greedy: the candidate with the most net time saved, then the next over the statements left."""
    chosen: list[Proposal] = []
    covered: set[str] = set()
    while True:
        best: Proposal | None = None
        for candidate, helps in options.items():
            left = [h for h in helps if h.fingerprint not in covered]
            if not left:
                continue
            saved = sum(h.saved_ms for h in left)
            cost = write_cost(candidate, loads, catalog)
            definition = candidate.definition(catalog.qualified[candidate.table])
            proposal = Proposal(
                candidate.table,
                candidate.columns,
                candidate.include,
                definition,
                left,
                saved,
                cost,
                None,
                candidate.where,
            )
            if proposal.net_ms > 0 and (best is None or proposal.net_ms > best.net_ms):
                best = proposal
        if best is None:
            return chosen
        with session.hypothetical(best.definition) as name:
            best.estimated_bytes = session.size(name)
        chosen.append(best)
        covered.update(h.fingerprint for h in best.helps)
