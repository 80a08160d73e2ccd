"""`pgferry split users --auto --apply` on the seeded forum database: reads through the view are the
old rows cell by cell, writes through the view land in the right tables, and --revert after writes
equals the same writes made on the original table."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgferry.cli import main
from split_util import cells, snapshot


@pytest.fixture
def db(db_copy: Path) -> Path:
    """A fresh copy of the session's seeded forum database (tests/forum_fixtures.py)."""
    return db_copy


def split(db: Path, *args: str) -> dict:
    result = CliRunner().invoke(main, ["split", str(db), "users", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_table_stays_real_and_the_new_tables_hold_the_moved_values(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        before = cells(conn, "SELECT * FROM users ORDER BY id")
        names = [d[0] for d in conn.execute("SELECT * FROM users").description]
    report = split(db, "--auto", "--apply")
    assert report["rows"] == 200 and report["stage"] == "expand"
    assert report["size"]["before"]["method"] == "dbstat" and report["size"]["after"]["total_bytes"] > 0
    assert {r["label"].split(" (")[0] for r in report["reads"]} >= {"scan filtering on a core column"}
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT type FROM sqlite_master WHERE name = 'users'").fetchone() == ("table",)
    assert [d[0] for d in conn.execute("SELECT * FROM users").description] == names
    after = cells(conn, "SELECT * FROM users ORDER BY id")
    assert len(after) == len(before) == 200
    for old, new in zip(before, after, strict=True):
        assert old == new
    # joins and filters see the same data
    q = "SELECT u.username, count(r.id) FROM users u JOIN forum_replies r ON r.user_id = u.id GROUP BY u.id"
    assert conn.execute(q).fetchall()
    # the referencing tables are untouched and the data has no new violation
    assert (
        '"users_core"' not in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'forum_replies'").fetchone()[0]
    )
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # no side row where the whole family is NULL
    for fam in report["plan"]["side"]:
        any_value = " OR ".join(f'"{c}" IS NOT NULL' for c in fam["columns"])
        total = conn.execute(f'SELECT count(*) FROM "{fam["table"]}"').fetchone()[0]
        assert total == conn.execute(f'SELECT count(*) FROM "{fam["table"]}" WHERE {any_value}').fetchone()[0]
    conn.close()


PROFILE = ("display_name", "bio", "avatar_url", "location", "website_url")


def _new_user(conn: sqlite3.Connection, name: str, **extra: object) -> None:
    cols = {
        "username": name,
        "email": f"{name}@example.test",
        "password_hash": "x",
        "created_at": "2024-01-01 00:00:00",
        "updated_at": "2024-01-01 00:00:00",
        **extra,
    }
    conn.execute(
        f"INSERT INTO users ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        tuple(cols.values()),
    )


def test_writes_on_the_table_land_in_the_new_tables(db: Path) -> None:
    report = split(db, "--auto", "--apply")
    plan = report["plan"]
    profile = next(f["table"] for f in plan["side"] if "bio" in f["columns"])
    kv = plan["key_value"][0]["table"]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    _new_user(conn, "plain")
    (uid,) = conn.execute("SELECT id FROM users WHERE username = 'plain'").fetchone()
    assert uid == 201  # AUTOINCREMENT continues where the original table was
    row = conn.execute("SELECT role, status, email_verified, login_count FROM users WHERE id = ?", (uid,))
    assert row.fetchone() == ("user", "active", 0, 0)  # the table's own defaults
    for table in [f["table"] for f in plan["side"]] + [kv]:
        assert conn.execute(f'SELECT count(*) FROM "{table}" WHERE id = ?', (uid,)).fetchone()[0] == 0

    _new_user(conn, "rich", bio="hello", github_url="https://github.com/rich", twitch_username="rich")
    (rid,) = conn.execute("SELECT id FROM users WHERE username = 'rich'").fetchone()
    assert conn.execute(f'SELECT bio, display_name FROM "{profile}" WHERE id = ?', (rid,)).fetchone() == ("hello", None)
    assert conn.execute(f'SELECT name, value FROM "{kv}" WHERE id = ? ORDER BY name', (rid,)).fetchall() == [
        ("github_url", "https://github.com/rich"),
        ("twitch_username", "rich"),
    ]

    conn.execute("UPDATE users SET login_count = login_count + 1, bio = NULL, github_url = NULL WHERE id = ?", (rid,))
    assert conn.execute("SELECT login_count FROM users WHERE id = ?", (rid,)).fetchone() == (1,)
    assert conn.execute(f'SELECT count(*) FROM "{profile}" WHERE id = ?', (rid,)).fetchone() == (0,)
    assert conn.execute(f'SELECT name FROM "{kv}" WHERE id = ?', (rid,)).fetchall() == [("twitch_username",)]
    conn.execute("UPDATE users SET location = 'Oslo', twitch_username = 'r2' WHERE username = 'rich'")
    assert conn.execute(f'SELECT location FROM "{profile}" WHERE id = ?', (rid,)).fetchone() == ("Oslo",)
    assert conn.execute(f'SELECT value FROM "{kv}" WHERE id = ?', (rid,)).fetchall() == [("r2",)]

    # INSERT OR IGNORE that conflicts changes nothing, not even the side tables of another row
    conn.execute("INSERT OR IGNORE INTO users (username, email, password_hash, created_at, updated_at, bio) "
                 "VALUES ('rich', 'other@x', 'x', '2024', '2024', 'intruder')")  # fmt: skip
    assert conn.execute(f'SELECT count(*) FROM "{profile}" WHERE bio = ?', ("intruder",)).fetchone() == (0,)

    # changing the key moves the side rows along
    conn.execute("UPDATE users SET id = 9999 WHERE id = ?", (rid,))
    assert conn.execute(f'SELECT location FROM "{profile}" WHERE id = 9999').fetchone() == ("Oslo",)
    assert conn.execute(f'SELECT value FROM "{kv}" WHERE id = 9999').fetchall() == [("r2",)]
    assert conn.execute(f'SELECT count(*) FROM "{profile}" WHERE id = ?', (rid,)).fetchone() == (0,)

    # deletes go everywhere; a referenced user cannot be deleted when foreign keys are enforced
    conn.execute("DELETE FROM users WHERE id = 9999")
    for table in ["users", profile, kv]:
        assert conn.execute(f'SELECT count(*) FROM "{table}" WHERE id = 9999').fetchone() == (0,)
    referenced = conn.execute("SELECT user_id FROM forum_replies LIMIT 1").fetchone()[0]
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM users WHERE id = ?", (referenced,))
    assert conn.execute("SELECT count(*) FROM users WHERE id = ?", (referenced,)).fetchone() == (1,)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


WRITES = [
    ("INSERT INTO users (username, email, password_hash, created_at, updated_at, bio, steam_url, avatar_scale) "
     "VALUES ('new1', 'n1@x', 'h', '2024-01-01', '2024-01-01', 'bio1', 'https://s/1', 120)", ()),
    ("INSERT INTO users (username, email, password_hash, created_at, updated_at) "
     "VALUES ('new2', 'n2@x', 'h', '2024-01-02', '2024-01-02')", ()),
    ("UPDATE users SET bio = 'changed', psn_id = 'psn', timezone = 'UTC' WHERE id = 3", ()),
    ("UPDATE users SET display_name = NULL, bio = NULL, avatar_url = NULL, location = NULL, website_url = NULL "
     "WHERE id IN (SELECT id FROM users WHERE bio IS NOT NULL ORDER BY id LIMIT 2)", ()),
    ("UPDATE users SET login_count = login_count + 10 WHERE status = 'active'", ()),
    ("DELETE FROM users WHERE id = 200", ()),  # the highest id: AUTOINCREMENT must not reuse it
    ("DELETE FROM users WHERE id IN (5, 6)", ()),
    ("INSERT INTO users (username, email, password_hash, created_at, updated_at, github_url) "
     "VALUES ('new3', 'n3@x', 'h', '2024-01-03', '2024-01-03', 'https://g/3')", ()),
    ("UPDATE users SET id = 5000 WHERE username = 'new3'", ()),
]  # fmt: skip


def test_revert_after_writes_equals_writes_on_the_original(db: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    shutil.copyfile(db, reference)
    original = snapshot(db)
    split(db, "--auto", "--apply")
    for target in (db, reference):  # through the view, and straight into the original table
        with sqlite3.connect(target) as conn:
            for sql, params in WRITES:
                conn.execute(sql, params)
    with sqlite3.connect(db) as conn:
        through_view = cells(conn, "SELECT * FROM users ORDER BY id")
    with sqlite3.connect(reference) as conn:
        assert cells(conn, "SELECT * FROM users ORDER BY id") == through_view
    reverted = split(db, "--revert")
    assert reverted["reverted"] and reverted["rows"] == 200 + 3 - 3
    assert snapshot(db) == snapshot(reference)
    assert snapshot(db)["schema"] == original["schema"]  # same CREATE text for every object


def test_revert_without_writes_gives_back_the_same_database(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("ANALYZE")
    original = snapshot(db)
    split(db, "--auto", "--apply")
    split(db, "--revert")
    assert snapshot(db) == original  # including sqlite_stat1 and sqlite_sequence


def test_preview_changes_nothing_and_prints_the_sql(db: Path) -> None:
    original = snapshot(db)
    out = db.parent / "plan.toml"
    result = CliRunner().invoke(main, ["split", str(db), "users", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "CREATE VIEW" not in result.output and 'AFTER UPDATE ON "users"' in result.output
    assert snapshot(db) == original and out.exists()
    payload = split(db, "--plan", str(out))
    assert payload["applied"] is False and payload["plan"]["table"] == "users"
    assert not any(step["sql"].startswith(("DROP", "ALTER")) for step in payload["sql"])  # the expand only adds


def test_workload_hot_columns_stay_in_core_and_hot_reads_are_timed(db: Path) -> None:
    from pgferry.workload import Statement

    log = db.parent / "workload.jsonl"
    statements = [Statement("SELECT id, username, bio FROM users WHERE id = ?", [7], ms=0.5)] * 20
    statements += [Statement("SELECT count(*) FROM users WHERE status = ?", ["active"], ms=3.0)] * 5
    statements += [Statement("SELECT * FROM forum_topics WHERE id = ?", [1], ms=9.0)]  # another table
    log.write_bytes(b"".join(s.to_line() for s in statements))
    preview = split(db, "--workload", str(log))
    assert "bio" in preview["plan"]["core_columns"]  # a hot statement reads it: it stays in the core
    assert [h["calls"] for h in preview["hot_statements"]] == [5, 20]  # by total time, users only
    report = split(db, "--workload", str(log), "--apply")
    labels = [r["label"] for r in report["reads"]]
    assert len(labels) == 2 and all(label.startswith("hot read") for label in labels)
    assert all(r["before_ms"] is not None and r["after_view_ms"] is not None for r in report["reads"])
    assert all(r["after_core_ms"] is not None for r in report["reads"])  # both use core columns only
