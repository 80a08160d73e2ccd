"""The issue's acceptance on the forum: a seeded legacy database (scale 0.1) and a workload captured
from `forum serve --mode legacy` under `forum traffic`. pgferry itself knows nothing of the forum:
the answer key comes from the seed (forum.seed.indexes, forum.seed.schema)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest

from converge import ALL_KINDS, assert_converges
from forum.seed import generate
from forum.seed.indexes import REDUNDANT
from forum.seed.schema import USERS_FAMILIES
from forum.traffic.run import TrafficOptions, run_traffic
from forum.web.process import running_server
from pgferry.doctor import Report, diagnose
from pgferry.tune import index_set, run_script, tune

pytestmark = pytest.mark.slow

# The plan's Day 1-2 hot-path indexes, as (table, leading columns an equivalent must start with).
HOT_PATHS = {
    ("forum_replies", ("topic_id",)),
    ("forum_topics", ("category_id", "status", "updated_at")),
    ("notifications", ("user_id", "is_read", "created_at")),
    ("user_sessions", ("session_token",)),
    ("wiki_revisions", ("page_id", "created_at")),
}


@pytest.fixture(scope="module")
def forum(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("forum")
    db = base / "forum.db"
    generate(db, scale=0.1, seed=42)
    log = base / "legacy.jsonl"
    with running_server(db, "legacy", capture=log) as server:
        run_traffic(server.url, TrafficOptions(users=2, duration_s=8.0, seed=42, max_requests=600))
        # The traffic's mix makes a topic with tags likely, not certain (and legacy may refuse it as
        # locked): one more, once the traffic is over, makes the finding below deterministic.
        with httpx.Client(base_url=server.url, timeout=30) as client:
            grant = client.post(
                "/auth/register", json={"username": "doctor_probe", "email": "probe@example.org", "password": "x" * 12}
            )
            assert grant.status_code == 201, grant.text
            headers = {"Authorization": f"Bearer {grant.json()['token']}"}
            topic = {"category_id": 1, "title": "probe", "content": "probe", "tags": ["probe-one", "probe-two"]}
            created = client.post("/topics", json=topic, headers=headers)
            assert created.status_code == 201, created.text
    return db, log


@pytest.fixture(scope="module")
def report(forum: tuple[Path, Path]) -> Report:
    db, log = forum
    return diagnose(db, log)


def test_hot_path_index_equivalents_are_found(report: Report) -> None:
    found = {(f.table, tuple(c.split()[0].strip('"') for c in f.columns)) for f in report.by_kind("missing_index")}
    for table, lead in HOT_PATHS:
        assert any(t == table and cols[: len(lead)] == lead for t, cols in found), (table, lead, found)


def test_redundant_indexes_with_the_right_reasons(report: Report) -> None:
    expected = {i.name: i.category for i in REDUNDANT}
    got = {f.index: f.reason for f in report.by_kind("redundant_index")}
    right = [name for name, reason in expected.items() if got.get(name) == reason]
    assert len(right) >= 140, Counter((expected[n], got.get(n)) for n in expected if got.get(n) != expected[n])
    assert Counter(got[n] for n in right) == Counter(expected.values())


def test_users_is_wide_with_its_families(report: Report) -> None:
    wide = {f.table: f for f in report.by_kind("wide_table")}
    families = [set(f["columns"]) for f in wide["users"].evidence["families"]]
    for name in ("social", "avatar", "profile"):
        assert set(USERS_FAMILIES[name]) in families, name
    plan = wide["users"].fix.plan
    kv = [set(t["columns"]) for t in plan["key_value"]]
    assert set(USERS_FAMILIES["social"]) in kv


def test_topic_view_n_plus_one_with_call_sites(report: Report) -> None:
    loops = [f for f in report.by_kind("n_plus_one") if "forum_replies" in f.evidence["parent"]["statement"]]
    assert loops
    ev = loops[0].evidence
    assert ev["statement"].startswith("SELECT") and "FROM users WHERE id = ?" in ev["statement"]
    assert ev["call_site"] and ev["parent"]["call_site"]


def test_topic_with_tags_missing_transaction(report: Report) -> None:
    found = [
        f
        for f in report.by_kind("missing_transaction")
        if f.evidence["writes"][0]["statement"].startswith("INSERT INTO forum_topics")
    ]
    assert found
    statements = " ".join(w["statement"] for w in found[0].evidence["writes"])
    assert "tags" in statements and "topic_tags" in statements
    assert all(w["call_site"] for w in found[0].evidence["writes"])


def test_tune_apply_then_rollback(forum: tuple[Path, Path], tmp_path: Path) -> None:
    db, log = forum
    copy = tmp_path / "tuned.db"
    shutil.copyfile(db, copy)
    original = index_set(copy)
    script = tmp_path / "rollback.sql"
    result = tune(copy, log, apply=True, rollback_path=script)
    assert result.applied is not None and result.applied.ok
    assert result.before is not None and result.after is not None
    # VM instructions, not the clock: the replayed workload does at least 10x less work
    assert result.before.total_kops >= 10 * result.after.total_kops
    run_script(copy, script.read_text())
    assert index_set(copy) == original


def test_doctor_and_tune_converge(forum: tuple[Path, Path], tmp_path: Path) -> None:
    """doctor -> tune --apply -> doctor -> tune on the forum and its captured workload: nothing undone,
    no second step."""
    db, log = forum
    copy = tmp_path / "forum.db"
    shutil.copy(db, copy)
    assert_converges(copy, log, ALL_KINDS)
