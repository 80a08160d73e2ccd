"""What a split did, kept in the database itself (table `_pgferry_split`) so `--revert` can undo it.

The record lives next to the data it describes: a copied or restored file carries it, and no
state is kept in memory or beside the file. One row per split table, the details as JSON
(plan, stage, original CREATE TABLE text, index SQL, AUTOINCREMENT counter, statistics rows, the
sync triggers' names). `children` is kept for records written by pgferry before expand/contract.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from pgferry.split.sqltext import fold
from pgferry.sqlite.control import ControlTable

RECORDS = ControlTable(
    "_pgferry_split",
    (("table_name", "TEXT PRIMARY KEY"), ("record", "TEXT NOT NULL"), ("applied_at", "TEXT NOT NULL")),
    key="table_name",
)
RECORD_TABLE = RECORDS.name


@dataclass
class ChildTable:
    """A table whose foreign keys pointed at the split table and now point at the core table."""

    name: str
    original_sql: str
    split_sql: str


@dataclass
class SplitRecord:
    table: str
    plan: dict[str, Any]
    original_sql: str
    indexes: list[list[str]]  # [name, sql] of the original table's explicit indexes, in creation order
    sequence: int | None  # sqlite_sequence.seq of the original table (AUTOINCREMENT), if any
    stat1: list[list[Any]] = field(default_factory=list)  # sqlite_stat1 rows of the table and its indexes
    children: list[ChildTable] = field(default_factory=list)
    kept_indexes: list[str] = field(default_factory=list)
    applied_at: str = ""
    version: str = ""
    stage: str = "expand"  # "expand": the table keeps every column, triggers keep the new tables in step;
    # "contract": the moved columns are gone from the table, the new tables hold them
    triggers: list[str] = field(default_factory=list)  # names of the sync triggers the split made
    contracted_at: str = ""
    contracted_sql: str = ""  # the table's CREATE TABLE text after the contract (checked before a revert)
    dropped_indexes: list[str] = field(default_factory=list)  # indexes the contract could not keep

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SplitRecord:
        data = json.loads(text)
        data["children"] = [ChildTable(**c) for c in data.get("children", [])]
        return cls(**data)

    @property
    def new_tables(self) -> list[str]:
        tables = [f["table"] for f in self.plan.get("side", [])]
        tables += [f["table"] for f in self.plan.get("key_value", [])]
        return tables


def read_records(conn: sqlite3.Connection) -> list[SplitRecord]:
    return [SplitRecord.from_json(row["record"]) for row in RECORDS.read(conn)]


def find_record(conn: sqlite3.Connection, table: str) -> SplitRecord | None:
    for record in read_records(conn):
        if fold(record.table) == fold(table):
            return record
    return None


def write_record(conn: sqlite3.Connection, record: SplitRecord, *, replace: bool = False) -> None:
    row = {"table_name": record.table, "record": record.to_json(), "applied_at": record.applied_at}
    RECORDS.write(conn, row, replace=replace)


def delete_record(conn: sqlite3.Connection, table: str) -> None:
    """Forget a reverted split; the record table goes too when it is empty, leaving no trace."""
    RECORDS.delete(conn, table)
    RECORDS.drop(conn, only_if_empty=True)
