"""Foreign keys whose child rows point at parents that are not there: kept, never dropped.

A parent row the copy rejected (`--on-error reject`), or an orphan SQLite let in (its foreign keys are
off by default), makes PostgreSQL refuse `ADD FOREIGN KEY`. Dropping the constraint would let the
application write more orphans unseen. Instead it is added `NOT VALID`: PostgreSQL checks every new
write, and the report names the child table, how many rows violate it, some of their keys, and the
`ALTER TABLE ... VALIDATE CONSTRAINT` to run once the parents are back (`pgferry restore-rejects`
runs it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg_pool import ConnectionPool

from pgferry.migrate.ddl import ALREADY_DONE, refused_step
from pgferry.migrate.plan import Skipped, Step
from pgferry.pg.connect import statement

SAMPLE_KEYS = 5


@dataclass(frozen=True)
class UnvalidatedKey:
    """A foreign key added NOT VALID: `rows` child rows point at no parent."""

    table: str  # the child table (target name)
    constraint: str
    references: str  # the parent table (target name)
    rows: int
    keys: list[list[Any]]  # up to SAMPLE_KEYS of them: the child's primary key (else the foreign key columns)
    key_columns: list[str]
    validate_sql: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_foreign_key(pool: ConnectionPool, step: Step, schema: str, table: str) -> Skipped | UnvalidatedKey | None:
    """Run a foreign key step on `table` (target name); when child rows violate it, add it NOT VALID and
    say which. A step already done (a resumed copy) is looked up: it may have been added NOT VALID."""
    with pool.connection() as pg:
        try:
            pg.execute(statement(step.sql))
        except pgerrors.ForeignKeyViolation:
            pg.execute(statement(step.sql + " NOT VALID"))
        except ALREADY_DONE:
            pass
        except psycopg.Error as exc:
            return refused_step(step, exc)
        return unvalidated(pg, schema, table, step.name)


_CONSTRAINT = """
SELECT c.convalidated, p.relname, pn.nspname,
    ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[],
    ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)::text[],
    ARRAY(SELECT a.attname FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(n, i)
          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
          WHERE x.indrelid = c.conrelid AND x.indisprimary ORDER BY k.i)::text[]
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_class p ON p.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.contype = 'f' AND tn.nspname = %s AND t.relname = %s AND c.conname = %s
"""


def unvalidated(pg: psycopg.Connection, schema: str, table: str, constraint: str) -> UnvalidatedKey | None:
    """The rows violating a NOT VALID foreign key of `schema`.`table`; None when it is validated (or absent)."""
    found = pg.execute(_CONSTRAINT, [schema, table, constraint]).fetchone()
    if found is None or found[0]:
        return None
    _valid, parent, parent_schema, columns, ref_columns, primary_key = found
    shown = list(primary_key) or list(columns)
    child = sql.Identifier(schema, table)
    # MATCH SIMPLE: a row with a NULL in the key is not checked.
    present = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in columns)
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(c))
        for c, r in zip(columns, ref_columns, strict=True)
    )
    keys = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(c)) for c in shown)
    query = sql.SQL(
        "SELECT count(*) OVER (), {keys} FROM {child} c WHERE {present} AND NOT EXISTS "
        "(SELECT 1 FROM {parent} p WHERE {match}) ORDER BY {keys} LIMIT {limit}"
    ).format(
        keys=keys,
        child=child,
        present=present,
        parent=sql.Identifier(parent_schema, parent),
        match=match,
        limit=sql.Literal(SAMPLE_KEYS),
    )
    rows = pg.execute(query).fetchall()
    validate = sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(child, sql.Identifier(constraint))
    return UnvalidatedKey(
        table=table,
        constraint=constraint,
        references=parent,
        rows=int(rows[0][0]) if rows else 0,
        keys=[list(row[1:]) for row in rows],
        key_columns=shown,
        validate_sql=validate.as_string(pg),
    )


def validate_all(pg: psycopg.Connection, schema: str) -> tuple[list[str], list[UnvalidatedKey]]:
    """VALIDATE every NOT VALID foreign key of `schema`: (the ones now valid, the ones still violated)."""
    pending = pg.execute(
        "SELECT t.relname, c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE c.contype = 'f' AND NOT c.convalidated AND n.nspname = %s ORDER BY 1, 2",
        [schema],
    ).fetchall()
    validated, violated = [], []
    for table, constraint in pending:
        try:
            with pg.transaction():
                pg.execute(
                    sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                        sql.Identifier(schema, table), sql.Identifier(constraint)
                    )
                )
            validated.append(f"{table}.{constraint}")
        except pgerrors.ForeignKeyViolation:
            still = unvalidated(pg, schema, table, constraint)
            if still is not None:
                violated.append(still)
    return validated, violated
