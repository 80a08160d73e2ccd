"""The split proposal and the plan file: families found from NULL patterns, plan files round-trip and
are validated with clear messages."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from forum.seed import generate
from pgferry.errors import UsageError
from pgferry.split import SplitPlan, load_plan, parse_plan, propose
from pgferry.split.plan import Family


@pytest.fixture(scope="module")
def forum_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forum") / "forum.db"
    generate(path, scale=0.1, seed=42)
    return path


def test_forum_users_families(forum_db: Path) -> None:
    plan = propose(forum_db, "users")
    assert plan.core_table == "users" and plan.key == ["id"]
    assert {"id", "username", "email", "password_hash", "last_login", "login_count"} <= set(plan.core_columns)
    groups = {f.kind + ":" + f.columns[0]: set(f.columns) for f in plan.families}
    assert groups["side:display_name"] == {"display_name", "bio", "avatar_url", "location", "website_url"}
    assert groups["side:avatar_position_x"] == {
        "avatar_position_x",
        "avatar_position_y",
        "avatar_scale",
        "avatar_rotation",
        "avatar_border_color",
        "avatar_background",
    }
    social = groups["key_value:github_url"]
    assert len(social) == 11 and "twitch_username" in social
    assert plan.family_of("bio").table == "users_extra"
    assert plan.family_of("avatar_scale").table == "users_avatar"
    assert plan.profile.rows == 2000 and plan.profile.to_dict()["null_ratio"] > 0.6


def _wide_db(path: Path) -> None:
    rng = random.Random(7)
    with sqlite3.connect(path) as conn:
        conn.execute(
            'CREATE TABLE "Wide T" ("Key" INTEGER PRIMARY KEY, "a b" TEXT NOT NULL, x1 INT, x2 INT, x3 INT, '
            '"we""ird" TEXT, y1 TEXT, y2 TEXT, y3 TEXT, y4 TEXT, lone REAL)'
        )
        rows = []
        for i in range(1, 401):
            has_x = rng.random() < 0.2
            has_y = rng.random() < 0.3
            ys = [f"y{i}" if has_y and rng.random() < 0.3 else None for _ in range(4)]
            rows.append(
                (
                    i,
                    f"n{i}",
                    *(i if has_x else None for _ in range(3)),
                    "w" if has_x else None,
                    *ys,
                    rng.random() if rng.random() < 0.1 else None,
                )
            )
        conn.executemany(f'INSERT INTO "Wide T" VALUES ({",".join("?" * 11)})', rows)


def test_any_table_quoted_names(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    _wide_db(db)
    plan = propose(db, "wide t")  # names are case-insensitive, as in SQLite
    assert plan.table == "Wide T" and plan.key == ["Key"]
    kinds = {f.kind: f.columns for f in plan.families}
    assert kinds["side"] == ["x1", "x2", "x3", 'we"ird']
    assert kinds["key_value"] == ["y1", "y2", "y3", "y4"]
    assert "lone" in plan.core_columns  # filled independently of anything else


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_plan_file_round_trip(tmp_path: Path, forum_db: Path, fmt: str) -> None:
    plan = propose(forum_db, "users")
    path = tmp_path / f"plan.{fmt}"
    plan.dump(path)
    again = load_plan(path)
    assert again.to_dict() == plan.to_dict()
    if fmt == "json":
        assert json.loads(path.read_text())["format"] == 1


def test_plan_round_trip_odd_names() -> None:
    plan = SplitPlan(
        table='t "q"',
        key=["k"],
        core_table="t\\core\n",
        core_columns=["k", "é ü", "tab\there"],
        families=[Family("key_value", "kv", ["a'b", '"c"', "d"], "n", "v", note="x")],
        notes=["a \"note\" with 'quotes'"],
    )
    assert parse_plan(plan.dump(fmt="toml")).to_dict() == plan.to_dict()
    assert parse_plan(plan.dump(fmt="json"), fmt="json").to_dict() == plan.to_dict()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("table = ", "not valid TOML"),
        ('format = 2\ntable = "t"', "format 2 is not supported"),
        ('table = "t"\nkey = ["k"]\ncore_table = "c"\ncore_columns = ["k"]\ncolour = 1', "unknown field 'colour'"),
        ('table = "t"\nkey = "k"\ncore_table = "c"\ncore_columns = ["k"]', "'key' must be a list"),
        ('table = "t"\nkey = ["k"]\ncore_table = "c"\ncore_columns = ["k"]\n[[side]]\ntable = "s"', "'columns'"),
        ('key = ["k"]', "'table' must be a non-empty string"),
    ],
)
def test_bad_plan_files(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_plan(text, source="p.toml")


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="plan file not found"):
        load_plan(tmp_path / "nope.toml")
