"""What a statement asks of each table it reads: equality and range keys, order, columns used.

Index candidates come from here. sqlglot parses the statement; each query block (a SELECT, or the
WHERE of an UPDATE or DELETE) is read on its own, with references to outer blocks treated as values
(a correlated subquery looks rows up by them, like a join's inner loop). Only conjuncts of WHERE and
JOIN ... ON are used: an OR needs one index per branch, which the planner copy then judges anyway.
Unqualified columns are resolved against the schema (the one table of the block that has them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from pgferry.doctor.planner import PARAM_LIMIT
from pgferry.doctor.stats import KeyPart
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqlparse import parse_one
from pgferry.sqltext import quote_ident

ROWID_NAMES = frozenset({"rowid", "_rowid_", "oid"})
_EQ_NODES = (exp.EQ, exp.NullSafeEQ)
_RANGE_NODES = (exp.GT, exp.GTE, exp.LT, exp.LTE)

Resolver = Callable[[exp.Column], tuple[str, str] | None]  # a column -> (its alias, its name), None if unknown


@dataclass
class TableUse:
    """One table reference in one query block and the keys its predicates could use."""

    alias: str
    table: str
    eq: list[KeyPart] = field(default_factory=list)  # compared with values (parameters, literals, outer rows)
    join_eq: list[KeyPart] = field(default_factory=list)  # compared with another table of the same block
    ranges: list[KeyPart] = field(default_factory=list)
    order: list[KeyPart] = field(default_factory=list)
    group: list[KeyPart] = field(default_factory=list)
    columns: set[str] | None = field(default_factory=set)  # None: every column (SELECT *)

    def add(self, bucket: list[KeyPart], part: KeyPart) -> None:
        if all(p.sql != part.sql or p.collation != part.collation for p in bucket):
            bucket.append(part)


@dataclass
class StatementShape:
    uses: list[TableUse]
    aliases: dict[str, str]  # alias (as EXPLAIN QUERY PLAN prints it) -> table
    limit: int | None
    tables: set[str]

    @property
    def filters(self) -> dict[str, int]:
        """Predicate terms per alias: a LIMIT stops a loop early only when its access uses all of them."""
        out: dict[str, int] = {}
        for use in self.uses:
            out[use.alias] = max(out.get(use.alias, 0), len(use.eq) + len(use.ranges))
        return out


def analyze_statement(sql: str, schema: Schema, dialect: str = "sqlite") -> StatementShape | None:
    """The tables `sql` (in sqlglot's `dialect`) reads and what its predicates offer an index; None
    when it cannot be parsed. `schema` names the tables and their columns (a PostgreSQL catalog can
    be given in the same shape: pgferry.advise.catalog)."""
    try:
        tree = parse_one(sql, read=dialect)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    if tree is None:
        return None
    names = {t.name.lower(): t for t in schema.tables}
    aliases: dict[str, str] = {}
    for node in tree.find_all(exp.Table):
        known = names.get(node.name.lower())
        if known is not None:
            aliases[node.alias_or_name] = known.name
    uses: list[TableUse] = []
    for block in tree.find_all(exp.Select, exp.Update, exp.Delete):
        uses.extend(_block_uses(block, names))
    return StatementShape(uses, aliases, _limit(tree), {u.table for u in uses} | set(aliases.values()))


def _limit(tree: exp.Expr) -> int | None:
    if not isinstance(tree, exp.Select):
        return None
    total = 0
    for key in ("limit", "offset"):
        node = tree.args.get(key)
        if node is None:
            if key == "limit":
                return None
            continue
        value = node.args.get("expression") or node.this
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                total += int(value.this)
            except ValueError:
                total += PARAM_LIMIT
        else:
            total += PARAM_LIMIT
    return total or None


def _own_nodes(node: exp.Expression, root: exp.Expression) -> Iterator[exp.Expression]:
    """Nodes of `node` that belong to this block (not to nested SELECTs)."""
    yield node
    for child in node.iter_expressions():
        if isinstance(child, exp.Select | exp.Subquery) and child is not root:
            continue
        yield from _own_nodes(child, root)


def _block_sources(block: exp.Expression, names: dict[str, Table]) -> dict[str, str]:
    sources: dict[str, str] = {}
    tables: list[exp.Expression] = []
    if isinstance(block, exp.Select):
        from_ = block.args.get("from_") or block.args.get("from")
        if from_ is not None:
            tables.append(from_.this)
        tables.extend(j.this for j in block.args.get("joins") or [])
    else:
        tables.append(block.this)
        from_ = block.args.get("from_") or block.args.get("from")
        if from_ is not None:
            tables.append(from_.this)
    for node in tables:
        if isinstance(node, exp.Table):
            known = names.get(node.name.lower())
            if known is not None:
                sources[node.alias_or_name] = known.name
    return sources


def _block_uses(block: exp.Expression, names: dict[str, Table]) -> list[TableUse]:
    sources = _block_sources(block, names)
    if not sources:
        return []
    uses = {alias: TableUse(alias, table) for alias, table in sources.items()}
    columns_of = {
        alias: {c.name.lower(): c.name for c in names[table.lower()].columns} for alias, table in sources.items()
    }

    def resolve(col: exp.Column) -> tuple[str, str] | None:
        """(alias, column name) for a column of this block; None for outer references and unknowns."""
        qualifier = col.table
        name = col.name.lower()
        if qualifier:
            if qualifier not in sources:
                return None
            if name in ROWID_NAMES and name not in columns_of[qualifier]:
                return None
            real = columns_of[qualifier].get(name)
            return (qualifier, real) if real else None
        owners = [a for a, cols in columns_of.items() if name in cols]
        if len(owners) != 1:
            return None
        return owners[0], columns_of[owners[0]][name]

    def refs(node: exp.Expression) -> set[str]:
        out = set()
        for n in _own_nodes(node, block):
            if isinstance(n, exp.Column):
                hit = resolve(n)
                if hit:
                    out.add(hit[0])
        return out

    def key_of(node: exp.Expression, collation: str | None) -> tuple[str, KeyPart] | None:
        if isinstance(node, exp.Collate):
            collation = _collation(node) or collation
            node = node.this
        if isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Column):
            hit = resolve(node)
            if hit is None:
                return None
            alias, column = hit
            table = names[sources[alias].lower()]
            if column == table.rowid_alias:
                return None  # the table's own b-tree already finds rows by it
            return alias, KeyPart(quote_ident(column), collation, False, column)
        if isinstance(node, exp.Func | exp.Binary) and not node.find(exp.Select, exp.Placeholder, exp.Star):
            owners = refs(node)
            if len(owners) != 1 or any(
                isinstance(n, exp.Column) and resolve(n) is None for n in node.find_all(exp.Column)
            ):
                return None
            alias = next(iter(owners))

            def unqualified(n: exp.Expr) -> exp.Expr:
                hit = resolve(n) if isinstance(n, exp.Column) else None
                return exp.column(hit[1], quoted=True) if hit else n

            plain = node.copy().transform(unqualified)
            return alias, KeyPart(plain.sql(dialect="sqlite"), collation)
        return None

    def compare(left: exp.Expression, right: exp.Expression, bucket: str, collation: str | None) -> None:
        hit = key_of(left, collation)
        if hit is None:
            return
        alias, part = hit
        others = refs(right)
        if alias in others:
            return
        use = uses[alias]
        if bucket == "eq":
            use.add(use.join_eq if others else use.eq, part)
        elif not others:
            use.add(use.ranges, part)

    for cond in _conditions(block):
        for term in _conjuncts(cond):
            collation = _comparison_collation(term)
            if isinstance(term, (*_EQ_NODES, exp.Is)):
                compare(term.this, term.expression, "eq", collation)
                if not isinstance(term, exp.Is):
                    compare(term.expression, term.this, "eq", collation)
            elif isinstance(term, exp.In):
                compare(term.this, exp.Null(), "eq", collation)
            elif isinstance(term, _RANGE_NODES):
                compare(term.this, term.expression, "range", collation)
                compare(term.expression, term.this, "range", collation)
            elif isinstance(term, exp.Between):
                compare(term.this, exp.Null(), "range", collation)

    def is_rowid(term: exp.Expression) -> bool:
        inner = term.this if isinstance(term, exp.Ordered) else term
        if not isinstance(inner, exp.Column):
            return False
        hit = resolve(inner)
        if hit is None:
            return inner.name.lower() in ROWID_NAMES and len(sources) == 1
        return bool(hit[1] == names[sources[hit[0]].lower()].rowid_alias)

    _order_keys(block, "order", uses, key_of, is_rowid)
    _order_keys(block, "group", uses, key_of, is_rowid)
    _columns(block, uses, resolve)
    return list(uses.values())


def _conditions(block: exp.Expression) -> Iterator[exp.Expression]:
    where = block.args.get("where")
    if where is not None:
        yield where.this
    for join in block.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            yield on


def _conjuncts(node: exp.Expression) -> Iterator[exp.Expression]:
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    elif isinstance(node, exp.Paren):
        yield from _conjuncts(node.this)
    else:
        yield node


def _collation(node: exp.Collate) -> str | None:
    value = node.expression
    name = value.name if hasattr(value, "name") else str(value)
    return name.strip("'\"").upper() or None


def _comparison_collation(term: exp.Expression) -> str | None:
    for side in (term.args.get("this"), term.args.get("expression")):
        if isinstance(side, exp.Collate):
            return _collation(side)
    return None


def _order_keys(block: exp.Expression, key: str, uses: dict[str, TableUse], key_of, parts_rowid) -> None:  # type: ignore[no-untyped-def]
    node = block.args.get(key)
    if node is None:
        return
    parts: list[tuple[str, KeyPart]] = []
    terms = list(node.expressions)
    # All terms descending: an ascending index read backwards gives that order (rowid ties included),
    # where a DESC key would not (its rowids still ascend).
    all_desc = key == "order" and all(isinstance(t, exp.Ordered) and t.args.get("desc") for t in terms)
    # A trailing rowid (`ORDER BY updated_at DESC, id DESC`) is the tie-break every index already ends with.
    while terms and parts_rowid(terms[-1]):
        terms.pop()
    for term in terms:
        desc = bool(term.args.get("desc")) if isinstance(term, exp.Ordered) else False
        inner = term.this if isinstance(term, exp.Ordered) else term
        collation = _collation(inner) if isinstance(inner, exp.Collate) else None
        hit = key_of(inner, collation)
        if hit is None:
            return  # a position, an alias, an expression over several tables: no single index helps
        alias, part = hit
        parts.append((alias, KeyPart(part.sql, part.collation, desc and not all_desc, part.column)))
    if not parts or len({alias for alias, _ in parts}) != 1:
        return
    use = uses[parts[0][0]]
    target = use.order if key == "order" else use.group
    target.extend(p for _a, p in parts)


def _columns(block: exp.Expression, uses: dict[str, TableUse], resolve: Resolver) -> None:
    for node in _own_nodes(block, block):
        if isinstance(node, exp.Star) and isinstance(node.parent, exp.Select):
            for use in uses.values():
                use.columns = None
        elif isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                if node.table in uses:
                    uses[node.table].columns = None
                continue
            hit = resolve(node)
            columns = None if hit is None else uses[hit[0]].columns
            if hit is not None and columns is not None:
                columns.add(hit[1])
