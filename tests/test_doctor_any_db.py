"""The doctor runs on any SQLite file without a traceback: the awkward shapes real files have (empty
tables, a key and nothing else, virtual tables, WITHOUT ROWID, hundreds of tables, names past 63
bytes or needing quotes, views, triggers, no tables at all) and random schemas from hypothesis. The
library may raise pgferry's own errors; the CLI's `--json` prints one JSON object or one error line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgferry.cli import main
from pgferry.doctor import diagnose
from pgferry.doctor.html import render_html
from pgferry.errors import PgferryError
from pgferry.sqltext import quote_ident

LONG = "t" + "x" * 80  # 81 bytes: past PostgreSQL's 63
WIDE = ", ".join(f"c{i} TEXT" for i in range(25))
FILLED = ", ".join("'v'" for _ in range(25))

SHAPES: dict[str, list[str]] = {
    "no_tables": [],
    "empty_table": ["CREATE TABLE a (id INTEGER PRIMARY KEY, b TEXT); CREATE INDEX ia ON a (b)"],
    "empty_table_analyzed": ["CREATE TABLE a (id INTEGER PRIMARY KEY, b TEXT); CREATE INDEX ia ON a (b); ANALYZE"],
    "key_only": ["CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1), (2)"],
    "fts5": ["CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('hello world')"],
    "rtree": ["CREATE VIRTUAL TABLE r USING rtree(id, x0, x1); INSERT INTO r VALUES (1, 0, 1)"],
    "without_rowid": [
        "CREATE TABLE w (a TEXT, b INT, PRIMARY KEY (a, b)) WITHOUT ROWID; INSERT INTO w VALUES ('x', 1)"
    ],
    "320_tables": [
        "; ".join(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT, p INT REFERENCES t0 (id))" for i in range(320))
    ],
    "long_names": [
        f'CREATE TABLE "{LONG}" (id INTEGER PRIMARY KEY, "{LONG}c" TEXT, p INT REFERENCES "{LONG}" (id)); '
        f'CREATE INDEX "{LONG}_i" ON "{LONG}" ("{LONG}c"); INSERT INTO "{LONG}" VALUES (1, \'a\', 1)'
    ],
    "quoted_names": [
        'CREATE TABLE "we""ird t" ("c ""x""" TEXT, "select" INT, "a-b" INT REFERENCES "we""ird t" ("select")); '
        'INSERT INTO "we""ird t" VALUES (\'a\', 1, 1); CREATE INDEX "i""q" ON "we""ird t" ("a-b")'
    ],
    "view_and_trigger": [
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b TEXT); CREATE VIEW v AS SELECT * FROM a; "
        "CREATE TRIGGER tr AFTER INSERT ON a BEGIN UPDATE a SET b = 'x' WHERE id = new.id; END; "
        "INSERT INTO a VALUES (1, 'q')"
    ],
    "wide_empty": [f"CREATE TABLE w (id INTEGER PRIMARY KEY, {WIDE})"],
    "wide_no_key": [f"CREATE TABLE w ({WIDE}); INSERT INTO w (c0) VALUES ('a')"],
    "wide_full": [f"CREATE TABLE w (id INTEGER PRIMARY KEY, {WIDE}); INSERT INTO w VALUES (1, {FILLED})"],
    "wide_with_trigger": [
        f"CREATE TABLE w (id INTEGER PRIMARY KEY, {WIDE}); "
        "CREATE TRIGGER t AFTER UPDATE ON w BEGIN SELECT 1; END; INSERT INTO w (id) VALUES (1)"
    ],
    "generated_columns": [
        "CREATE TABLE g (id INTEGER PRIMARY KEY, a INT, b INT GENERATED ALWAYS AS (a * 2) STORED, c INT AS (a + 1)); "
        "INSERT INTO g (id, a) VALUES (1, 1)"
    ],
    "expression_and_partial_indexes": [
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b TEXT); CREATE INDEX ie ON a (lower(b)); "
        "CREATE INDEX ip ON a (b) WHERE b IS NOT NULL; INSERT INTO a VALUES (1, 'X')"
    ],
}


def _build(path: Path, scripts: list[str]) -> Path:
    conn = sqlite3.connect(path)
    for script in scripts:
        conn.executescript(script)
    conn.commit()
    conn.close()
    return path


def _doctor_everything(db: Path) -> dict[str, object]:
    """The library call, its JSON and HTML, the CLI's text and --json: all work or fail as pgferry."""
    try:
        report = diagnose(db, measure_writes=False)
    except PgferryError:
        report = None
    if report is not None:
        json.dumps(report.to_dict())
        render_html(report)
    text = CliRunner().invoke(main, ["doctor", str(db)])  # the rich rendering, too
    assert text.exception is None or isinstance(text.exception, SystemExit), text.output
    result = CliRunner().invoke(main, ["doctor", str(db), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if result.exit_code == 0:
        payload: dict[str, object] = json.loads(result.stdout)
        return payload
    assert result.stderr.startswith("Error: "), result.output
    return {}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_doctor_runs_on_awkward_files(tmp_path: Path, shape: str) -> None:
    db = _build(tmp_path / f"{shape}.db", SHAPES[shape])
    payload = _doctor_everything(db)
    assert payload, "the doctor reads every one of these files"
    kinds = {f["kind"] for f in payload["findings"]}  # type: ignore[attr-defined]
    if shape.startswith("wide_"):
        # nothing to move (empty, or every column filled) or no key: never a split plan for nothing
        for finding in payload["findings"]:  # type: ignore[attr-defined]
            if finding["kind"] == "wide_table" and finding["fix"].get("plan"):
                assert finding["evidence"]["families"], finding["title"]
    assert "integrity" not in kinds


NAMES = st.sampled_from(["id", "a", "b c", 'q"t', "select", "x" * 70, "Ünï", "order"])
TYPES = st.sampled_from(["INTEGER", "TEXT", "REAL", "BLOB", "", "VARCHAR(10)", "NUMERIC", "BOOLEAN"])
VALUES = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), st.binary(max_size=4), st.floats())


@st.composite
def schemas(draw: st.DrawFn) -> list[str]:
    """CREATE statements and rows for 1-4 tables with random names, types, keys, indexes and data."""
    out = []
    made: list[tuple[str, list[str]]] = []
    for t in range(draw(st.integers(1, 4))):
        name = f"{draw(NAMES)}_{t}"
        width = draw(st.sampled_from([1, 2, 5, 21, 24]))  # narrow, or wide enough for the wide-table check
        cols = [f"{c}{i}" if i else c for i, c in enumerate(draw(st.lists(NAMES, min_size=width, max_size=width)))]
        types = [draw(TYPES) for _ in cols]
        key = draw(st.sampled_from(["rowid_alias", "composite", "none", "without_rowid"]))
        defs = [f"{quote_ident(c)} {ty}".strip() for c, ty in zip(cols, types, strict=True)]
        suffix = ""
        if key == "rowid_alias":
            defs[0] = f"{quote_ident(cols[0])} INTEGER PRIMARY KEY"
        elif key in ("composite", "without_rowid"):
            defs.append(f"PRIMARY KEY ({', '.join(quote_ident(c) for c in cols[:2])})")
            suffix = " WITHOUT ROWID" if key == "without_rowid" else ""
        if made and draw(st.booleans()):
            parent, parent_cols = made[0]
            ref = f"{quote_ident(parent)} ({quote_ident(parent_cols[0])})"
            defs.append(f"FOREIGN KEY ({quote_ident(cols[-1])}) REFERENCES {ref}")
        out.append(f"CREATE TABLE {quote_ident(name)} ({', '.join(defs)}){suffix}")
        for n in range(draw(st.integers(0, 3))):
            keys = draw(st.lists(st.sampled_from(cols), min_size=1, max_size=3, unique=True))
            unique = "UNIQUE " if draw(st.booleans()) else ""
            out.append(
                f"CREATE {unique}INDEX IF NOT EXISTS {quote_ident(f'{name}_i{n}')} ON {quote_ident(name)} "
                f"({', '.join(quote_ident(k) for k in keys)})"
            )
        made.append((name, cols))
        if draw(st.booleans()):
            trigger = quote_ident(name + "_t")
            out.append(f"CREATE TRIGGER {trigger} AFTER UPDATE ON {quote_ident(name)} BEGIN SELECT 1; END")
        for r in range(draw(st.integers(0, 30))):
            row = [r if i == 0 and key == "rowid_alias" else draw(VALUES) for i in range(len(cols))]
            literal = ", ".join(_literal(v) for v in row)
            out.append(f"INSERT OR IGNORE INTO {quote_ident(name)} VALUES ({literal})")
    if draw(st.booleans()):
        out.append(f"CREATE VIEW v AS SELECT * FROM {quote_ident(made[0][0])}")
    if draw(st.booleans()):
        out.append("CREATE VIRTUAL TABLE fts USING fts5(body)")
    if draw(st.booleans()):
        out.append("ANALYZE")
    return out


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''").replace("\x00", "") + "'"


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schemas())
def test_doctor_never_raises_on_random_schemas(tmp_path: Path, statements: list[str]) -> None:
    db = tmp_path / "random.db"
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    for sql in statements:
        try:
            conn.execute(sql)
        except sqlite3.Error:
            continue  # a random statement SQLite refuses (a type it will not key, a duplicate): skipped
    conn.commit()
    conn.close()
    _doctor_everything(db)


def test_a_wide_table_with_nothing_to_move_gets_no_finding_and_no_plan(tmp_path: Path) -> None:
    """Every column filled in every row: no family moves out, so no split is proposed (it would only
    rebuild the table); `--split-plans` writes nothing for it."""
    rows = "; ".join(f"INSERT INTO w VALUES ({i}, {FILLED})" for i in range(1, 40))
    db = _build(tmp_path / "full.db", [f"CREATE TABLE w (id INTEGER PRIMARY KEY, {WIDE}); {rows}"])
    assert diagnose(db).by_kind("wide_table") == []
    plans = tmp_path / "plans"
    result = CliRunner().invoke(main, ["doctor", str(db), "--split-plans", str(plans)])
    assert result.exit_code == 0, result.output
    assert not list(plans.glob("*.toml")) if plans.exists() else True
