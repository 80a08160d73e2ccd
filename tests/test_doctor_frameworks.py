"""The doctor and tune on real framework projects (Django 5, SQLAlchemy 2) with planted defects,
their workloads captured through pgferry's wrapper in each framework's own parameter style.

Planted (tests/apps/django_shop, tests/apps/sqla_shop): filters on three unindexed columns, an N+1
loop in `order_report`, a request making two writes with no transaction. Not defects: two writes in
one transaction (Django's atomic(); SQLAlchemy's flush, inside the transaction Python's sqlite3
opens implicitly), and Django's DEBUG-mode `SELECT QUOTE(?)` statements.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from apps.runner import project, run, seeded
from pgferry.cli import main
from pgferry.workload import read_workload

PLANTED = {"django_shop": ("shop_customer", "shop_order"), "sqla_shop": ("customer", "orders")}


def _capture(name: str, tmp_path: Path, **env: str) -> tuple[Path, Path]:
    app = project(name, tmp_path)
    db, log = tmp_path / f"{name}.db", tmp_path / f"{name}.jsonl"
    run(app, "seed", f"sqlite:{db}", **env)
    assert run(app, "capture", f"sqlite:{db}", PGFERRY_TEST_WORKLOAD=str(log), **env).splitlines()[-1] == "ok"
    return db, log


def _cli(*args: str) -> dict[str, Any]:
    done = CliRunner().invoke(main, [*args, "--json"])
    assert done.exit_code == 0, done.output
    data: dict[str, Any] = json.loads(done.output)
    return data


def _check_doctor(name: str, db: Path, log: Path) -> dict[str, Any]:
    customers, orders = PLANTED[name]
    report = _cli("doctor", str(db), "--workload", str(log))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        by_kind.setdefault(finding["kind"], []).append(finding)
    indexes = {(f["table"], tuple(c.strip('"') for c in f["columns"])) for f in by_kind.get("missing_index", [])}
    assert {(customers, ("email",)), (customers, ("city",)), (orders, ("status",))} <= indexes
    [loop] = by_kind["n_plus_one"]
    assert loop["evidence"]["call_site"].startswith("__main__:order_report"), loop["evidence"]
    assert loop["evidence"]["requests"] == 4 and loop["evidence"]["per_request"]["median"] == 25
    [unguarded] = by_kind["missing_transaction"]  # not the transaction in checkout
    sites = {w["call_site"].split(":")[1] for w in unguarded["evidence"]["writes"]}
    assert sites == {"sign_up" if name == "django_shop" else "adjust"}, unguarded["evidence"]
    assert unguarded["evidence"]["requests"] == 4
    for finding in report["findings"]:  # every site is the application's
        for site in [finding["evidence"].get("call_site")] + [
            s["site"] for s in finding["evidence"].get("call_sites", [])
        ]:
            assert site is None or site.startswith("__main__:"), finding
    return report


def _check_tune(db: Path, log: Path, tmp_path: Path) -> dict[str, Any]:
    tuned = tmp_path / "tuned.db"
    shutil.copy(db, tuned)
    result = _cli("tune", str(tuned), "--workload", str(log), "--apply")
    replay = result["replay"]
    assert len(replay["fingerprints"]) >= 7 and replay["unusable"] == []
    for fp in replay["fingerprints"]:
        assert fp["before_median_ms"] is not None and fp["after_median_ms"] is not None, fp
    assert replay["after_total_kops"] < replay["before_total_kops"]  # the three indexes do less work
    assert _cli("tune", str(tuned), "--workload", str(log))["plan"]["steps"] == []
    return result


def test_django_workload_in_format_style(tmp_path: Path) -> None:
    db, log = _capture("django_shop", tmp_path)
    statements = list(read_workload(log))
    assert any("%s" in s.sql for s in statements)  # the style Django hands its cursor
    quoted = [s for s in statements if s.sql.startswith("SELECT QUOTE(")]
    assert quoted and all(s.internal == "django.db.backends.sqlite3.operations" for s in quoted)
    report = _check_doctor("django_shop", db, log)
    assert report["workload"]["unusable"] == [
        {
            "reason": "run by the framework on its own account (introspection, migrations, query logging)",
            "statements": len(quoted),
            "examples": report["workload"]["unusable"][0]["examples"],
        }
    ]
    assert report["workload"]["fingerprints"] == len({s.sql for s in statements if s.internal is None})
    _check_tune(db, log, tmp_path)


@pytest.mark.parametrize("style", ["named", "qmark"])
def test_sqlalchemy_workload(style: str, tmp_path: Path) -> None:
    db, log = _capture("sqla_shop", tmp_path, SHOP_PARAMSTYLE=style)
    statements = list(read_workload(log))
    writes = [s for s in statements if s.sql.startswith("INSERT")]
    flushes = [s for s in writes if s.site and ":checkout:" in s.site]
    assert len(flushes) == 8 and all(s.tx for s in flushes)  # inside the driver's implicit transaction
    assert len({s.tx for s in flushes}) == 4  # one per flush
    if style == "named":
        assert all(isinstance(s.params, dict) for s in writes)
    report = _check_doctor("sqla_shop", db, log)
    assert {r["reason"] for r in report["workload"]["unusable"]} <= {
        "run by the framework on its own account (introspection, migrations, query logging)"
    }
    _check_tune(db, log, tmp_path)


def _indexes(db: Path, table: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))
        }


def test_index_advice_on_a_django_database_goes_through_its_models(tmp_path: Path) -> None:
    """Django rebuilds a SQLite table from its model on most migrations: an index tune creates behind its back
    goes at the next rebuild, and one dropped behind its back comes back. So the doctor says to declare both in
    the model, and tune does not drop Django's own index."""
    db, log = _capture("django_shop", tmp_path)
    report = _cli("doctor", str(db), "--workload", str(log))
    assert report["framework"] == "Django"
    [prefix] = [f for f in report["findings"] if f["kind"] == "redundant_index" and f["table"] == "shop_orderline"]
    assert prefix["reason"] == "prefix_covered" and prefix["fix"]["auto"] is False
    assert "db_index=False" in prefix["fix"]["description"] and "creates it again" in prefix["fix"]["description"]
    [email] = [f for f in report["findings"] if f["kind"] == "missing_index" and f["columns"] == ["email"]]
    assert email["fix"]["auto"] is True and "Meta.indexes" in email["fix"]["description"]

    tuned = _cli("tune", str(db), "--workload", str(log), "--apply")
    assert prefix["index"] not in {s["index"] for s in tuned["plan"]["steps"]}  # Django's index is left alone
    assert email["index"] in _indexes(db, "shop_customer")
    run(project("django_shop", tmp_path / "again"), "remake", f"sqlite:{db}")
    assert email["index"] not in _indexes(db, "shop_customer")  # what the advice warns of: the rebuild dropped it

    with sqlite3.connect(db) as conn:  # and an index of Django's dropped in the file comes back
        conn.execute(f'DROP INDEX "{prefix["index"]}"')
    run(project("django_shop", tmp_path / "third"), "remake", f"sqlite:{db}")
    assert prefix["index"] in _indexes(db, "shop_orderline")


def test_index_advice_on_an_alembic_database_goes_through_its_models(tmp_path: Path) -> None:
    """Alembic's autogenerate compares the models with the database: the index tune adds for a foreign key is
    in the next revision's drops unless the model declares it, which is what the doctor's fix says."""
    app, db = seeded("sqla_catalog", tmp_path)
    report = _cli("doctor", str(db))
    assert report["framework"] == "SQLAlchemy (Alembic)"
    [fk] = [f for f in report["findings"] if f["kind"] == "fk_without_index"]
    assert "index=True on the model" in fk["fix"]["description"] and "would drop it" in fk["fix"]["description"]
    assert run(app, "diff", f"sqlite:{db}").split() == []
    _cli("tune", str(db), "--only", "fk_without_index", "--apply")
    [(op, name)] = [line.split() for line in run(app, "diff", f"sqlite:{db}").splitlines()]
    assert op == "remove_index" and name in _indexes(db, fk["table"])
