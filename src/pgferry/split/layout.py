"""Where every column of a split table lives, and the SQL expressions that read it back.

The triggers, the data copy, the contract and the revert all need the same facts (which table holds
a column, how a side table joins the core, how the key is written); computing them once here
keeps them in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.split.plan import Family, SplitError, SplitPlan
from pgferry.split.sqltext import TableText, fold, parse_create_table
from pgferry.sqlite.schema import Column, Table
from pgferry.sqltext import quote_ident as q
from pgferry.sqltext import quote_literal

CORE_ALIAS = "_c"


def rowid_name(table: Table) -> str:
    """A name that reaches the table's rowid: one of rowid, _rowid_, oid that no column hides."""
    if table.rowid_name is not None:
        return table.rowid_name
    raise SplitError(f"table {table.name!r} has columns named rowid, _rowid_ and oid: its rowids cannot be kept")


@dataclass(frozen=True)
class Layout:
    table: Table
    plan: SplitPlan
    text: TableText

    @classmethod
    def of(cls, table: Table, plan: SplitPlan) -> Layout:
        return cls(table=table, plan=plan, text=parse_create_table(table.sql))

    # --- facts ---------------------------------------------------------------------------------

    @property
    def key(self) -> list[str]:
        return list(self.table.primary_key)

    @property
    def has_rowid(self) -> bool:
        return not self.table.without_rowid

    @property
    def copies_rowid(self) -> bool:
        """Rowid must be copied explicitly: a rowid table whose rowid is not a column."""
        return self.has_rowid and self.table.rowid_alias is None

    def column(self, name: str) -> Column:
        for column in self.table.columns:
            if fold(column.name) == fold(name):
                return column
        raise KeyError(name)

    def writable(self, names: list[str]) -> list[str]:
        """The columns among `names` an INSERT may name (not generated), in table order."""
        wanted = {fold(n) for n in names}
        return [c.name for c in self.table.columns if fold(c.name) in wanted and not c.generated]

    @property
    def core_columns(self) -> list[str]:
        wanted = {fold(n) for n in self.plan.core_columns}
        return [c.name for c in self.table.columns if fold(c.name) in wanted]

    def family_columns(self, family: Family) -> list[str]:
        wanted = {fold(n) for n in family.columns}
        return [c.name for c in self.table.columns if fold(c.name) in wanted]

    def alias(self, family: Family) -> str:
        return f"_s{self.plan.families.index(family) + 1}"

    # --- SQL fragments -------------------------------------------------------------------------

    def key_match(self, left: str, right: str) -> str:
        """`left.k = right.k AND ...` for the key columns (left/right are aliases or NEW/OLD)."""
        return " AND ".join(f"{left}.{q(k)} = {right}.{q(k)}" for k in self.key)

    def key_changed(self) -> str:
        return "(" + " OR ".join(f"NEW.{q(k)} IS NOT OLD.{q(k)}" for k in self.key) + ")"

    def _kv_on(self, family: Family, alias: str, name: str) -> str:
        match = self.key_match(alias, CORE_ALIAS)
        return f"{match} AND {alias}.{q(family.name_column)} = {quote_literal(name)}"

    def read_expr(self, name: str) -> str:
        """How the view reads column `name` from the new tables.

        Side tables are LEFT JOINed on their key (SQLite drops such a join when a non-aggregate
        query uses none of its columns); key-value columns are correlated subqueries, evaluated
        only when a query reads the column. One LEFT JOIN per key-value column was measured 3x
        slower for aggregates over the view (SQLite 3.40 keeps unused joins in aggregate queries).
        """
        family = self.plan.family_of(name)
        if family is None:
            return f"{CORE_ALIAS}.{q(name)}"
        if family.kind == "side":
            return f"{self.alias(family)}.{q(name)}"
        column = self.column(name).name
        return (
            f"(SELECT _kv.{q(family.value_column)} FROM {q(family.table)} AS _kv "
            f"WHERE {self._kv_on(family, '_kv', column)})"
        )

    def select_sql(self, with_rowid: bool = False, columns: list[str] | None = None, source: str | None = None) -> str:
        """SELECT of the original table's rows: core columns from `source` (quoted SQL; the table by
        default), moved ones from the new tables (the revert's source after a contract, and the check
        that the two sides are in step)."""
        names = columns if columns is not None else [c.name for c in self.table.columns]
        exprs = [f"{CORE_ALIAS}.{rowid_name(self.table)}"] if with_rowid else []
        exprs += [f"{self.read_expr(n)} AS {q(n)}" for n in names]
        body = ",\n  ".join(exprs)
        return f"SELECT\n  {body}\nFROM {self.from_sql(source)}"

    def from_sql(self, source: str | None = None) -> str:
        """The FROM clause `read_expr` needs: `source` (the table by default) as the core alias, and
        each side table LEFT JOINed on the key."""
        joins = "".join(
            f"\n  LEFT JOIN {q(f.table)} AS {self.alias(f)} ON {self.key_match(self.alias(f), CORE_ALIAS)}"
            for f in self.plan.side
        )
        return f"{source or q(self.table.name)} AS {CORE_ALIAS}{joins}"
