"""Split on tables that are not the forum's: odd names, composite and non-integer keys, WITHOUT
ROWID, STRICT, self-references, referencing tables with their own indexes and triggers; and the
refusals, each one line, exit code 2, database untouched."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgferry.cli import main
from pgferry.split import SplitPlan, propose
from pgferry.split.apply import apply_split
from pgferry.split.contract import contract_split
from pgferry.split.plan import Family, SplitError
from pgferry.split.revert import revert_split
from split_util import cells, snapshot

ODD = """
CREATE TABLE "Peo ""ple" (
    "Id" INTEGER PRIMARY KEY AUTOINCREMENT,
    [Full Name] TEXT NOT NULL COLLATE NOCASE,
    `e-mail` VARCHAR(80) UNIQUE,
    "Boss" INTEGER REFERENCES "Peo ""ple" ("Id"),
    score REAL CHECK (score >= 0),  -- a comment inside the body
    "Bio Text" TEXT, "Bio Lang" TEXT DEFAULT 'en' NOT NULL,
    "x 1" TEXT, "x 2" TEXT, "x 3" TEXT,
    CONSTRAINT name_len CHECK (length([Full Name]) < 100)
);
CREATE INDEX "idx boss" ON "Peo ""ple" ("Boss");
CREATE INDEX idx_bio ON "Peo ""ple" ("Bio Text" COLLATE NOCASE) WHERE "Bio Text" IS NOT NULL;
CREATE INDEX idx_span ON "Peo ""ple" ([Full Name], "Bio Text");
CREATE TABLE pets (
    pid INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES "Peo ""ple" ("Id") ON DELETE CASCADE,
    name TEXT
);
CREATE INDEX pets_owner ON pets (owner);
CREATE TABLE pet_log (id INTEGER PRIMARY KEY, what TEXT);
CREATE TRIGGER pets_log AFTER INSERT ON pets BEGIN INSERT INTO pet_log (what) VALUES (NEW.name); END;
CREATE VIEW named_pets AS SELECT p.name, o.[Full Name] FROM pets p JOIN "Peo ""ple" o ON o."Id" = p.owner;
"""


def _odd_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(ODD)
        for i in range(1, 41):
            conn.execute(
                'INSERT INTO "Peo ""ple" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                (
                    i,
                    f"Name {i}",
                    f"p{i}@x" if i % 3 else None,
                    None if i == 1 else 1 + i % 3,
                    i / 3 if i % 2 else None,
                    f"bio {i}" if i % 4 == 0 else None,
                    "fr" if i % 4 == 0 else "en",
                    f"a{i}" if i % 5 == 0 else None,
                    f"b{i}" if i % 7 == 0 else None,
                    i if i % 5 == 0 else None,
                ),
            )
        conn.executemany("INSERT INTO pets (owner, name) VALUES (?, ?)", [(1 + i % 40, f"pet{i}") for i in range(60)])
        conn.execute("DELETE FROM pets WHERE pid = 60")  # AUTOINCREMENT counter above max(pid)
        conn.execute("DELETE FROM \"Peo \"\"ple\" WHERE \"Id\" = 40")  # fmt: skip


def odd_plan() -> SplitPlan:
    return SplitPlan(
        table='Peo "ple',
        key=["Id"],
        core_table='Peo "ple',
        core_columns=["Id", "Full Name", "e-mail", "Boss", "score"],
        families=[
            Family("side", "People Bio", ["Bio Text", "Bio Lang"]),
            Family("key_value", "people x", ["x 1", "x 2", "x 3"], "which", "what"),
        ],
    )


WRITES = [
    'INSERT INTO "Peo ""ple" ([Full Name], "Bio Text", "x 2") VALUES (\'New\', \'hi\', \'nb\')',
    'INSERT INTO "Peo ""ple" ("Id", [Full Name], "x 3") VALUES (100, \'Hundred\', 7)',
    'UPDATE "Peo ""ple" SET "Bio Text" = NULL WHERE "Id" = 4',
    'UPDATE "Peo ""ple" SET "x 1" = \'z\', score = 9.5 WHERE "Id" BETWEEN 10 AND 12',
    'DELETE FROM "Peo ""ple" WHERE "Id" = 39',
    "INSERT INTO pets (owner, name) VALUES (100, 'rex')",
]


def test_odd_schema_split_writes_contract_and_exact_revert(tmp_path: Path) -> None:
    db, reference = tmp_path / "odd.db", tmp_path / "reference.db"
    _odd_db(db)
    shutil.copyfile(db, reference)
    before = snapshot(db)
    report = apply_split(db, odd_plan())
    assert report.stage == "expand" and report.rebuilt_tables == [] and report.dropped_indexes == []
    conn = sqlite3.connect(db)
    # the expand leaves the table, its indexes, the referencing table and the view as they were
    after = snapshot(db)
    assert after["data"]['Peo "ple'] == before["data"]['Peo "ple'] and after["data"]["pets"] == before["data"]["pets"]
    assert set(before["schema"]) <= set(after["schema"])
    side_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'People Bio'").fetchone()[0]
    assert "a comment inside the body" in side_sql and "DEFAULT 'en' NOT NULL" in side_sql
    assert 'REFERENCES "Peo ""ple"' in side_sql
    assert conn.execute('SELECT which, what FROM "people x" WHERE "Id" = 5 ORDER BY which').fetchall() == [
        ("x 1", "a5"),
        ("x 3", "5"),  # TEXT affinity, as in the original column
    ]
    conn.close()
    results = []
    for target in (db, reference):  # rowcount and lastrowid as on the unsplit table
        with sqlite3.connect(target) as conn:
            results.append([(c.rowcount, c.lastrowid) for c in (conn.execute(sql) for sql in WRITES)])
    assert results[0] == results[1] and [r[0] for r in results[0]] == [1, 1, 1, 3, 1, 1]
    assert [r[1] for r in results[0][:2]] == [41, 100]
    with sqlite3.connect(db) as conn:  # the new tables followed, and a write on them comes back
        assert conn.execute('SELECT "Bio Text" FROM "People Bio" WHERE "Id" = 41').fetchone() == ("hi",)
        assert conn.execute('SELECT "Bio Text", "Bio Lang" FROM "People Bio" WHERE "Id" = 4').fetchone() == (None, "fr")
        assert conn.execute('SELECT what FROM "people x" WHERE "Id" = 100').fetchone() == ("7",)
        assert conn.execute('UPDATE "People Bio" SET "Bio Text" = \'side\' WHERE "Id" = 8').rowcount == 1
        assert conn.execute('SELECT "Bio Text" FROM "Peo ""ple" WHERE "Id" = 8').fetchone() == ("side",)
        conn.execute('DELETE FROM "people x" WHERE "Id" = 100')
        assert conn.execute('SELECT "x 3" FROM "Peo ""ple" WHERE "Id" = 100').fetchone() == (None,)
    with sqlite3.connect(reference) as ref:
        ref.execute('UPDATE "Peo ""ple" SET "Bio Text" = \'side\' WHERE "Id" = 8')
        ref.execute('UPDATE "Peo ""ple" SET "x 3" = NULL WHERE "Id" = 100')
    with sqlite3.connect(db) as conn, sqlite3.connect(reference) as ref:
        select = 'SELECT * FROM "Peo ""ple" ORDER BY "Id"'
        assert cells(conn, select) == cells(ref, select)
        assert conn.execute("SELECT * FROM pet_log").fetchall() == ref.execute("SELECT * FROM pet_log").fetchall()
    revert_split(db, 'peo "PLE')  # from the expand stage
    assert snapshot(db) == snapshot(reference)

    apply_split(db, odd_plan(), measure=False)
    contracted = contract_split(db, 'Peo "ple')
    assert contracted.moved_indexes == ["idx_bio"] and contracted.dropped_indexes == ["idx_span"]
    with sqlite3.connect(db) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'Peo \"ple'").fetchone()[0]
        assert "Bio Text" not in sql and "x 1" not in sql and "CONSTRAINT name_len" in sql
        assert conn.execute("SELECT tbl_name FROM sqlite_master WHERE name = 'idx_bio'").fetchone() == ("People Bio",)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('idx boss', 'pets_log')").fetchone() == (
            2,
        )
        cursor = conn.execute('INSERT INTO "Peo ""ple" ([Full Name]) VALUES (\'After\')')
        assert (cursor.rowcount, cursor.lastrowid) == (1, 101)  # the AUTOINCREMENT counter carried over
        conn.execute('INSERT INTO "People Bio" ("Id", "Bio Text") VALUES (101, \'late\')')
    with sqlite3.connect(reference) as ref:
        ref.execute('INSERT INTO "Peo ""ple" ([Full Name], "Bio Text") VALUES (\'After\', \'late\')')
    revert_split(db, 'Peo "ple')  # from the contract stage
    assert snapshot(db) == snapshot(reference)


def test_composite_text_key_without_rowid_and_strict(tmp_path: Path) -> None:
    db, reference = tmp_path / "c.db", tmp_path / "r.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE Item (shop TEXT, sku TEXT, price INT NOT NULL, a TEXT, b TEXT, c TEXT, d REAL, e REAL,
                               PRIMARY KEY (shop, sku)) WITHOUT ROWID, STRICT;
            CREATE TABLE line (id INTEGER PRIMARY KEY, shop TEXT, sku TEXT,
                               FOREIGN KEY (shop, sku) REFERENCES item (shop, sku));
            CREATE TABLE note (shop TEXT, sku TEXT, body TEXT, PRIMARY KEY (shop, sku));
            """
        )
        for i in range(30):
            conn.execute(
                "INSERT INTO Item VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("s" + str(i % 3), f"k{i}", i, *(f"v{i}" if i % 4 == 0 else None for _ in range(3)),
                 *(float(i) if i % 5 == 0 else None for _ in range(2))),
            )  # fmt: skip
            conn.execute("INSERT INTO line (shop, sku) VALUES (?, ?)", ("s" + str(i % 3), f"k{i}"))
        conn.execute("INSERT INTO note VALUES ('s0', 'k0', 'n')")  # a rowid table with a text key
    shutil.copyfile(db, reference)
    plan = propose(db, "item")
    assert plan.key == ["shop", "sku"] and {f.kind for f in plan.families} == {"side"}
    apply_split(db, plan, measure=False)
    writes = [
        "INSERT INTO Item (shop, sku, price, b, e) VALUES ('s9', 'new', 1, 'bb', 2.5)",
        "UPDATE Item SET sku = 'moved', a = 'x' WHERE shop = 's0' AND sku = 'k0'",
        "DELETE FROM Item WHERE sku = 'k4'",
    ]
    for target in (db, reference):
        with sqlite3.connect(target) as conn:
            for sql in writes:
                conn.execute(sql)
    with sqlite3.connect(db) as conn, sqlite3.connect(reference) as ref:
        assert cells(conn, "SELECT * FROM Item ORDER BY 1, 2") == cells(ref, "SELECT * FROM Item ORDER BY 1, 2")
    revert_split(db, "Item")
    assert snapshot(db) == snapshot(reference)

    # a rowid table whose key is not the rowid: rowids are kept through split and revert
    shutil.copyfile(db, reference)
    apply_split(db, _note_plan(), measure=False)
    revert_split(db, "note")
    assert snapshot(db) == snapshot(reference)


def _note_plan() -> SplitPlan:
    return SplitPlan("note", ["shop", "sku"], "note", ["shop", "sku"], [Family("side", "note_body", ["body"])])


# --- refusals --------------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, c TEXT, d INT,
                            e TEXT CHECK (e IS NULL OR e <> a));
            CREATE TABLE nopk (a, b);
            CREATE VIEW v AS SELECT id FROM t;
            CREATE TABLE trig (id INTEGER PRIMARY KEY, x);
            CREATE TRIGGER trig_t AFTER INSERT ON trig BEGIN SELECT 1; END;
            """
        )
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [(i, "a", "b", "c", i, "e") for i in range(5)])
    return db


def _plan_file(tmp_path: Path, plan: SplitPlan) -> str:
    path = tmp_path / "plan.json"
    plan.dump(path)
    return str(path)


def _refused(db: Path, args: list[str], message: str) -> None:
    before = snapshot(db) if db.exists() else None
    result = CliRunner().invoke(main, ["split", str(db), *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert snapshot(db) == before if before is not None else not db.exists()


T_PLAN = SplitPlan("t", ["id"], "t", ["id", "a", "d"], [Family("side", "t_side", ["b", "c", "e"])])


def test_refusals(small: Path, tmp_path: Path) -> None:
    _refused(small, ["v", "--apply"], "is a view, not a table")
    _refused(small, ["nopk", "--apply"], "has no PRIMARY KEY")
    _refused(small, ["nothere"], "no table named 'nothere'")
    nothing = SplitPlan("trig", ["id"], "trig", ["id", "x"], [])  # a table with triggers may be split, but
    _refused(small, ["trig", "--plan", _plan_file(tmp_path, nothing), "--apply"], "moves no column out")
    _refused(tmp_path / "missing.db", ["t"], "no such file")
    unknown = SplitPlan("t", ["id"], "t", ["id", "a", "d", "zzz"], [Family("side", "t_side", ["b", "c", "e"])])
    _refused(small, ["t", "--plan", _plan_file(tmp_path, unknown), "--apply"], "names column 'zzz'")
    missing = SplitPlan("t", ["id"], "t", ["id", "a"], [Family("side", "t_side", ["b", "c", "e"])])
    _refused(small, ["t", "--plan", _plan_file(tmp_path, missing), "--apply"], "column 'd' of 't' is not in the plan")
    moved_key = SplitPlan("t", ["id"], "t", ["a", "d"], [Family("side", "t_side", ["id", "b", "c", "e"])])
    _refused(small, ["t", "--plan", _plan_file(tmp_path, moved_key), "--apply"], "must stay in the core table")
    mixed = SplitPlan("t", ["id"], "t", ["id", "a", "e"], [Family("key_value", "t_kv", ["b", "c", "d"])])
    _refused(small, ["t", "--plan", _plan_file(tmp_path, mixed), "--apply"], "different type affinities")
    clash = SplitPlan("t", ["id"], "t", ["id", "a", "d"], [Family("side", "nopk", ["b", "c", "e"])])
    _refused(small, ["t", "--plan", _plan_file(tmp_path, clash), "--apply"], "name of an existing object")
    _refused(small, ["t", "--plan", _plan_file(tmp_path, T_PLAN), "--auto"], "not both")
    _refused(small, ["nopk", "--plan", _plan_file(tmp_path, T_PLAN)], "is for table 't'")
    elsewhere = SplitPlan("t", ["id"], "t_core", ["id", "a", "d"], [Family("side", "t_side", ["b", "c", "e"])])
    _refused(small, ["t", "--plan", _plan_file(tmp_path, elsewhere), "--apply"], "the core stays the table")
    _refused(small, ["t", "--revert"], "is not split here")


def test_failure_half_way_rolls_back(small: Path, tmp_path: Path) -> None:
    # e's CHECK names column a, which stays in the core: the side table cannot be created
    _refused(small, ["t", "--plan", _plan_file(tmp_path, T_PLAN), "--apply"], "nothing was changed")


def test_already_split_and_parts_of_a_split(small: Path, tmp_path: Path) -> None:
    plan = SplitPlan("t", ["id"], "t", ["id", "a", "d", "e"], [Family("side", "t_side", ["b", "c"])])
    result = CliRunner().invoke(main, ["split", str(small), "t", "--plan", _plan_file(tmp_path, plan), "--apply"])
    assert result.exit_code == 0, result.output
    _refused(small, ["t", "--apply"], "is already split")
    _refused(small, ["t_side", "--apply"], "made by the split of 't'")
    with pytest.raises(SplitError, match="already split"):
        propose(small, "T")
    # a revert that would lose data is refused: a side row without its core row
    with sqlite3.connect(small) as conn:
        conn.execute("INSERT INTO t_side (id, b) VALUES (999, 'orphan')")
    _refused(small, ["t", "--revert"], "would be lost")
    with sqlite3.connect(small) as conn:
        conn.execute("DELETE FROM t_side WHERE id = 999")
        conn.execute("ALTER TABLE t_side ADD COLUMN extra TEXT")
    _refused(small, ["t", "--revert"], "was altered since the split")
    with sqlite3.connect(small) as conn:
        conn.execute("ALTER TABLE t_side DROP COLUMN extra")
    result = CliRunner().invoke(main, ["split", str(small), "t", "--revert", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["reverted"] is True


def test_null_in_a_text_primary_key(tmp_path: Path) -> None:
    """SQLite lets a TEXT primary key hold NULL; split refuses such rows, and a write through the view
    that would create one fails instead of losing its side values."""
    db = tmp_path / "n.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE n (k TEXT PRIMARY KEY, a TEXT, b TEXT)")
        conn.execute("INSERT INTO n VALUES (NULL, 'x', 'y')")
    plan = SplitPlan("n", ["k"], "n", ["k", "a"], [Family("side", "n_side", ["b"])])
    _refused(db, ["n", "--plan", _plan_file(tmp_path, plan), "--apply"], "NULL in the primary key")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE n SET k = 'key' WHERE k IS NULL")
    apply_split(db, plan, measure=False)
    with sqlite3.connect(db) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="NULL in the primary key"):
            conn.execute("INSERT INTO n (a, b) VALUES ('p', 'q')")
        with pytest.raises(sqlite3.IntegrityError, match="NULL in the primary key"):
            conn.execute("UPDATE n SET k = NULL")
        assert conn.execute("SELECT * FROM n").fetchall() == [("key", "x", "y")]


def test_updates_that_only_change_storage_class_or_case(tmp_path: Path) -> None:
    """1 -> 1.0 in an untyped column and 'a' -> 'A' in a NOCASE column compare equal in SQL, yet they
    are writes the original table would store: the view's UPDATE trigger must not skip them."""
    db, reference = tmp_path / "u.db", tmp_path / "r.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, core TEXT, v, w TEXT COLLATE NOCASE)")
        conn.execute("INSERT INTO u VALUES (1, 'c', 1, 'a')")
    shutil.copyfile(db, reference)
    apply_split(db, SplitPlan("u", ["id"], "u", ["id", "core"], [Family("side", "u_side", ["v", "w"])]))
    for target in (db, reference):
        with sqlite3.connect(target) as conn:
            conn.execute("UPDATE u SET v = 1.0")
            conn.execute("UPDATE u SET w = 'A'")
    with sqlite3.connect(db) as conn:
        assert cells(conn, "SELECT v, w FROM u") == [(("float", 1.0), ("str", "A"))]
    revert_split(db, "u")
    assert snapshot(db) == snapshot(reference)


def test_wide_key_value_family(tmp_path: Path) -> None:
    """70 sparse columns in one key-value table (more than SQLite could join): one subquery each."""
    db, reference = tmp_path / "many.db", tmp_path / "r.db"
    names = [f"attr {i}" for i in range(70)]
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TABLE m (id INTEGER PRIMARY KEY, {', '.join(f'{chr(34)}{n}{chr(34)} TEXT' for n in names)})"
        )
        for i in range(1, 31):
            conn.execute(f'INSERT INTO m (id, "attr {i}", "attr {i + 35}") VALUES (?, ?, ?)', (i, f"v{i}", i))
    shutil.copyfile(db, reference)
    apply_split(db, SplitPlan("m", ["id"], "m", ["id"], [Family("key_value", "m_kv", names)]), measure=False)
    with sqlite3.connect(db) as conn, sqlite3.connect(reference) as ref:
        assert conn.execute("SELECT count(*) FROM m_kv").fetchone() == (60,)
        assert cells(conn, "SELECT * FROM m ORDER BY id") == cells(ref, "SELECT * FROM m ORDER BY id")
        for c in (conn, ref):
            c.execute('UPDATE m SET "attr 3" = NULL, "attr 69" = ? WHERE id = 3', ("x",))
            c.execute('INSERT INTO m (id, "attr 0") VALUES (100, 1)')
        assert conn.execute("SELECT name, value FROM m_kv WHERE id IN (3, 100) ORDER BY id").fetchall() == [
            ("attr 38", "3"),
            ("attr 69", "x"),
            ("attr 0", "1"),
        ]
    contract_split(db, "m")
    revert_split(db, "m")
    assert snapshot(db) == snapshot(reference)
