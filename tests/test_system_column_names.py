"""Columns named like PostgreSQL's system columns (xmin, xmax, ctid, ...) are renamed, never a failed copy.

GIS tables commonly hold bounding boxes as xmin/ymin/xmax/ymax; CREATE TABLE in PostgreSQL refuses
those names, and a view reading `xmin` there would silently get transaction ids instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from pgferry.migrate.names import SYSTEM_COLUMNS, map_names
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.migrate.verify import verify_copy


def test_a_system_column_name_gets_a_free_name() -> None:
    mapping = map_names(["id", "XMIN", "xmin_", "ctid", "Ymin"], "column", reserved=SYSTEM_COLUMNS)
    assert mapping == {"id": "id", "XMIN": "xmin__", "xmin_": "xmin_", "ctid": "ctid_", "Ymin": "ymin"}
    kept = map_names(["XMIN"], "column", keep_case=True, reserved=SYSTEM_COLUMNS)
    assert kept == {"XMIN": "XMIN"}  # quoted and case-sensitive: not the system column


def test_a_bounding_box_table_is_copied_with_its_names_renamed(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "gis.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE bbox (id INTEGER PRIMARY KEY, xmin REAL NOT NULL, ymin REAL, xmax REAL, ymax REAL,
                               CHECK (xmin <= xmax));
            CREATE INDEX bbox_x ON bbox (xmin, xmax);
            CREATE VIEW wide AS SELECT id, xmax - xmin AS width FROM bbox WHERE xmin > 0;
            """
        )
        conn.executemany("INSERT INTO bbox VALUES (?, ?, ?, ?, ?)", [(i, i / 2, 0.0, i + 1.5, 1.0) for i in range(20)])
    conn.close()
    report = copy_database(path, pg_dsn, CopyOptions(jobs=1))
    notes = {c["column"]: c["note"] for c in report.choices if c["note"]}
    assert notes == {
        "xmin": "renamed to xmin_: xmin is a PostgreSQL system column name",
        "xmax": "renamed to xmax_: xmax is a PostgreSQL system column name",
    }
    assert report.skipped == [] and verify_copy(path, pg_dsn, plan=report.plan).identical
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT sum(xmin_), sum(xmax_) FROM bbox").fetchone() == (95.0, 220.0)
        assert pg.execute("SELECT count(*), max(width) FROM wide").fetchone() == (19, 11.0)
        index = pg.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'bbox_x'").fetchone()[0]
        assert "(xmin_, xmax_)" in index
        check = pg.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'bbox'::regclass AND contype = 'c'"
        ).fetchone()[0]
        assert "xmin_ <= xmax_" in check
