"""The legacy forum database: planted defects asserted from the file itself, determinism, CLI errors.

Every check reads the SQLite file (sqlite_master, PRAGMA index_list / index_xinfo / table_info, the
rows) and classifies what it finds on its own; the generator's list (`describe`) is only the answer
the classification is compared with.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from forum.cli import main
from forum.seed import SeedError, defect_counts, describe, generate, summarize
from forum.seed import writer as seed_writer

SQLITE3 = "/usr/bin/sqlite3"
SCALE = 0.01
# The plan's "Day 1-2" indexes, by the columns they lead with: none may exist, nor anything leading alike.
PLAN_LEADING = {
    "forum_replies": "topic_id",
    "forum_topics": "category_id",
    "wiki_pages": "slug",
    "user_sessions": "session_token",
    "notifications": "user_id",
    "wiki_revisions": "page_id",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "forum.db"
    generate(path, SCALE, 42)
    return path


@pytest.fixture
def db(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]


def dump(path: Path) -> str:
    return subprocess.run([SQLITE3, str(path), ".dump"], check=True, capture_output=True, text=True).stdout


# --- the users god table -----------------------------------------------------------------------------


def test_users_has_42_columns_and_93_percent_of_optional_cells_null(db: sqlite3.Connection) -> None:
    info = db.execute("SELECT name, \"notnull\", pk FROM pragma_table_info('users')").fetchall()
    assert len(info) == 42
    optional = [name for name, notnull, pk in info if not notnull and not pk]
    assert len(optional) == 32
    users = db.execute("SELECT count(*) FROM users").fetchone()[0]
    nulls = sum(db.execute(f'SELECT count(*) FROM users WHERE "{c}" IS NULL').fetchone()[0] for c in optional)
    assert nulls / (users * len(optional)) == pytest.approx(0.93, abs=0.015)


def test_users_column_families_are_filled_together(db: sqlite3.Connection) -> None:
    avatar = ["avatar_position_x", "avatar_position_y", "avatar_scale", "avatar_rotation", "avatar_border_color"]
    profile = ["display_name", "bio", "avatar_url", "location", "website_url"]
    for family in (avatar, profile):
        any_set = " OR ".join(f'"{c}" IS NOT NULL' for c in family)
        all_set = " AND ".join(f'"{c}" IS NOT NULL' for c in family)
        n_any = db.execute(f"SELECT count(*) FROM users WHERE {any_set}").fetchone()[0]
        n_all = db.execute(f"SELECT count(*) FROM users WHERE {all_set}").fetchone()[0]
        assert n_any > 0
        assert n_any == n_all
    social = ["github_url", "mastodon_url", "discord_username", "steam_url", "bluesky_url", "twitch_username"]
    filled = " + ".join(f'("{c}" IS NOT NULL)' for c in social)
    per_user = [r[0] for r in db.execute(f"SELECT {filled} FROM users WHERE {filled} > 0")]
    assert len(per_user) < 0.2 * db.execute("SELECT count(*) FROM users").fetchone()[0]  # few users...
    assert sum(per_user) / len(per_user) >= 1.5  # ...and those have several links


def test_username_and_email_are_unique(db: sqlite3.Connection) -> None:
    unique = set()
    for name, is_unique, origin in db.execute("SELECT name, \"unique\", origin FROM pragma_index_list('users')"):
        if is_unique and origin == "u":
            unique |= {r[0] for r in db.execute("SELECT name FROM pragma_index_info(?)", (name,))}
    assert {"username", "email"} <= unique


# --- indexes ------------------------------------------------------------------------------------------


def index_keys(conn: sqlite3.Connection, index: str) -> tuple[tuple[str, int, str], ...]:
    """(column, desc, collation) of each key column of an index, in order."""
    rows = conn.execute("SELECT name, desc, coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno", (index,))
    return tuple(rows.fetchall())


def classify_indexes(conn: sqlite3.Connection) -> dict[str, str | None]:
    """Every CREATE INDEX index -> its redundancy category, found from the schema and the data alone."""
    order = {name: n for n, (name,) in enumerate(conn.execute("SELECT name FROM sqlite_master ORDER BY rowid"))}
    found: dict[str, str | None] = {}
    for table in tables(conn):
        pk_rows = conn.execute("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,))
        pk = tuple((name, 0, "BINARY") for (name,) in pk_rows)
        listed = conn.execute("SELECT name, origin, partial FROM pragma_index_list(?)", (table,)).fetchall()
        assert not any(partial for _, _, partial in listed)
        keys = {name: index_keys(conn, name) for name, _, _ in listed}
        uniques = {keys[name] for name, origin, _ in listed if origin == "u"}
        created = sorted((name for name, origin, _ in listed if origin == "c"), key=order.__getitem__)
        seen: set[tuple] = set()
        for name in created:
            key = keys[name]
            if key == pk:
                found[name] = "duplicates_primary_key"
            elif key in uniques:
                found[name] = "duplicates_unique"
            elif key in seen:  # the same key as an index created before it
                found[name] = "exact_duplicate"
            elif any(len(other) > len(key) and other[: len(key)] == key for other in keys.values()):
                found[name] = "prefix_covered"
            elif len(key) == 1 and distinct(conn, table, key[0][0]) <= 5:
                found[name] = "low_selectivity"
            else:
                found[name] = None
            seen.add(key)
    return found


def distinct(conn: sqlite3.Connection, table: str, column: str) -> int:
    return conn.execute(f'SELECT count(DISTINCT "{column}") FROM "{table}"').fetchone()[0]


def test_redundant_indexes_are_what_their_category_says(db: sqlite3.Connection) -> None:
    found = classify_indexes(db)
    counts = Counter(c for c in found.values() if c)
    assert 145 <= sum(counts.values()) <= 155
    assert counts == Counter(defect_counts(describe(SCALE)))
    for category in ("exact_duplicate", "prefix_covered", "duplicates_primary_key", "duplicates_unique"):
        assert counts[category] >= 4, category
    assert counts["low_selectivity"] >= 10
    planted = {d.name: d.category for d in describe(SCALE) if d.kind == "redundant_index"}
    assert {n: c for n, c in found.items() if c} == planted
    # the legitimate indexes include a NOCASE look-alike of UNIQUE(username): a collation is not a duplicate
    assert found["idx_users_username_nocase"] is None


def test_big_tables_get_few_redundant_indexes(db: sqlite3.Connection) -> None:
    per_table = Counter(d.table for d in describe(SCALE) if d.kind == "redundant_index")
    assert per_table["forum_replies"] <= 2
    assert per_table["forum_categories"] >= 20


def test_none_of_the_plans_day_1_2_indexes_exists(db: sqlite3.Connection) -> None:
    leading = defaultdict(set)
    for table in tables(db):
        for (name,) in db.execute("SELECT name FROM pragma_index_list(?)", (table,)):
            first = db.execute("SELECT name FROM pragma_index_info(?) WHERE seqno = 0", (name,)).fetchone()[0]
            leading[table].add(first)
    for table, column in PLAN_LEADING.items():
        assert column not in leading[table], f"an index on {table} leads with {column}"
    assert leading["users"]  # the check reads real index lists


# --- storage habits and data shapes -----------------------------------------------------------------------


def test_timestamps_are_iso_text_and_booleans_are_0_or_1(db: sqlite3.Connection) -> None:
    checked = 0
    for table in tables(db):
        for name, decl in db.execute("SELECT name, type FROM pragma_table_info(?)", (table,)):
            values = [r[0] for r in db.execute(f'SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL')]
            if decl == "DATETIME":
                assert all(isinstance(v, str) and TIMESTAMP.match(v) for v in values), (table, name)
                for v in values[:50]:
                    datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
                checked += 1
            elif decl == "BOOLEAN":
                assert set(values) <= {0, 1}, (table, name)
    assert checked >= 20


def test_json_is_stored_as_text_and_parses(db: sqlite3.Connection) -> None:
    for table, column in (("notifications", "payload"), ("activity_log", "metadata")):
        rows = db.execute(f'SELECT typeof("{column}"), "{column}" FROM "{table}"').fetchall()
        assert rows
        assert {kind for kind, _ in rows} == {"text"}
        assert all(isinstance(json.loads(text), dict) for _, text in rows)


def test_legacy_storage_settings(db_path: Path, db: sqlite3.Connection) -> None:
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "sqlite_sequence" in names  # AUTOINCREMENT on some tables
    assert "sqlite_stat1" not in names  # ANALYZE never ran
    assert summarize(db_path).journal_mode == "delete"
    assert not Path(f"{db_path}-wal").exists()
    declared = db.execute("SELECT type FROM pragma_table_info('users') WHERE name = 'username'").fetchone()[0]
    assert declared == "VARCHAR(50)"
    assert db.execute("SELECT count(*) FROM pragma_foreign_key_list('forum_replies')").fetchone()[0] == 2
    duplicated = db.execute("SELECT count(*) FROM (SELECT slug FROM wiki_pages GROUP BY slug HAVING count(*) > 1)")
    assert duplicated.fetchone()[0] >= 1  # slug is not unique, and it shows


def test_topic_popularity_is_zipf_like(db: sqlite3.Connection) -> None:
    counts = [r[0] for r in db.execute("SELECT count(*) FROM forum_replies GROUP BY topic_id ORDER BY 1 DESC")]
    topics = db.execute("SELECT count(*) FROM forum_topics").fetchone()[0]
    top = math.ceil(topics / 100)
    assert sum(counts[:top]) / sum(counts) > 0.10  # the top 1% of topics: ten times a uniform share


def test_reply_lengths_are_200_to_2000_mostly_short(db: sqlite3.Connection) -> None:
    lengths = sorted(r[0] for r in db.execute("SELECT length(content) FROM forum_replies"))
    assert lengths[0] >= 200
    assert lengths[-1] <= 2000
    assert lengths[len(lengths) // 2] < 800


def test_activity_grows_over_three_years(db: sqlite3.Connection) -> None:
    first, last, span = db.execute(
        "SELECT sum(created_at < '2023-07-01'), sum(created_at >= '2024-07-01'), "
        "julianday(max(created_at)) - julianday(min(created_at)) FROM forum_replies"
    ).fetchone()
    assert last > 1.5 * first
    assert 1000 < span < 1100  # about three years


def test_rows_follow_what_they_point_at(db: sqlite3.Connection) -> None:
    early = db.execute(
        "SELECT count(*) FROM forum_replies AS r JOIN forum_topics AS t ON t.id = r.topic_id "
        "WHERE r.created_at <= t.created_at"
    ).fetchone()[0]
    assert early == 0
    drift = db.execute(
        "SELECT count(*) FROM forum_topics AS t LEFT JOIN (SELECT topic_id, count(*) AS n, max(created_at) AS last "
        "FROM forum_replies GROUP BY topic_id) AS r ON r.topic_id = t.id "
        "WHERE t.reply_count != coalesce(r.n, 0) OR t.last_reply_at IS NOT r.last"
    ).fetchone()[0]
    assert drift == 0  # the denormalised counters match the rows
    stats = db.execute(
        "SELECT count(*) FROM user_stats AS s WHERE s.reply_count != "
        "(SELECT count(*) FROM forum_replies AS r WHERE r.user_id = s.user_id)"
    ).fetchone()[0]
    assert stats == 0


def test_row_counts_scale_linearly(db_path: Path) -> None:
    rows = summarize(db_path).tables
    assert rows["forum_replies"] == 6000
    assert rows["users"] == rows["user_stats"] == 200
    assert rows["forum_categories"] == 20
    assert 9_000 < sum(rows.values()) < 11_000


# --- determinism and files ------------------------------------------------------------------------------


def test_same_arguments_give_the_same_dump(tmp_path: Path, db_path: Path) -> None:
    again = tmp_path / "again.db"
    in_process = tmp_path / "in-process.db"
    other = tmp_path / "other.db"
    generate(again, SCALE, 42)
    generate(in_process, SCALE, 42, parallel=False)
    generate(other, SCALE, 43)
    reference = dump(db_path)
    assert "INSERT INTO forum_replies" in reference or 'INSERT INTO "forum_replies"' in reference
    assert dump(again) == reference
    assert dump(in_process) == reference
    assert dump(other) != reference


def test_a_failed_run_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(seed_writer, "MAKERS", (*seed_writer.MAKERS[:2], (broken, "tags")))
    target = tmp_path / "broken.db"
    with pytest.raises(SeedError, match="disk on fire"):
        generate(target, SCALE, 1)
    assert list(tmp_path.iterdir()) == []


def test_force_overwrites_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f.db"
    target.write_text("not a database")
    generate(target, SCALE, 5, force=True)
    assert target.read_bytes().startswith(b"SQLite format 3\x00")
    assert not (tmp_path / "f.db.tmp").exists()


# --- the CLI ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "abc"], "scale must be a number"),
        (["--scale", "0"], "greater than 0"),
        (["--scale", "-1"], "greater than 0"),
        (["--scale", "1000"], "at most 100"),
        (["--scale", "nan"], "greater than 0"),
        (["--seed", "x1"], "seed must be a whole number"),
        (["--out", "{missing}/forum.db"], "does not exist"),
        (["--out", "{tmp}"], "is a directory"),
        (["--out", "{existing}"], "--force"),
        ([], "nothing to do"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    existing = tmp_path / "existing.db"
    existing.write_text("keep me")
    paths = {"missing": str(tmp_path / "nope"), "tmp": str(tmp_path), "existing": str(existing)}
    argv = ["seed", "--scale", "0.01", *(a.format(**paths) for a in args)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert existing.read_text() == "keep me"


def test_cli_describe_without_out_lists_the_defects() -> None:
    result = CliRunner().invoke(main, ["seed", "--describe", "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    for text in ("exact_duplicate", "prefix_covered", "low_selectivity", "idx_forum_replies_topic_user", "avatar"):
        assert text in result.output


def test_cli_seeds_and_describes_as_one_json_object(tmp_path: Path) -> None:
    target = tmp_path / "cli.db"
    args = ["seed", "--scale", "0.01", "--seed", "7", "--out", str(target), "--describe", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert sum(payload["database"]["tables"].values()) == payload["report"]["total_rows"]
    assert payload["database"]["indexes"] == payload["report"]["indexes"]
    assert sum(payload["redundant_indexes"].values()) == 150
    assert target.exists()
