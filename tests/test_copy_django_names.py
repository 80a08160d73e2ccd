"""A Django 5 project's SQLite file, copied: its constraints are where Django's own PostgreSQL
migration puts them, and Django's next migration (which names them) runs on the copy.

Django runs in a subprocess (its settings are process-wide): `migrate` on SQLite, then pgferry copies
the file, then `migrate` on an empty PostgreSQL schema for comparison, and `migrate` to 0002 on the
copy, which drops the named constraints and the foreign key by what Django expects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg

from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database

MODELS = """
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)


class Book(models.Model):
    title = models.CharField(max_length=200)
    pages = models.IntegerField()
    author = models.ForeignKey(Author, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(pages__gt=0), name="book_pages_positive"),
            models.UniqueConstraint(fields=["title", "author"], name="book_title_per_author"),
        ]
"""

MIGRATION_1 = """
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Author",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="Book",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("title", models.CharField(max_length=200)),
                ("pages", models.IntegerField()),
                ("author", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="shelf.author")),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(pages__gt=0), name="book_pages_positive"),
                    models.UniqueConstraint(fields=["title", "author"], name="book_title_per_author"),
                ],
            },
        ),
    ]
"""

MIGRATION_2 = """
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("shelf", "0001_initial")]
    operations = [
        migrations.RemoveConstraint(model_name="book", name="book_pages_positive"),
        migrations.RemoveConstraint(model_name="book", name="book_title_per_author"),
        migrations.AlterField(
            model_name="author", name="name", field=models.CharField(max_length=100)
        ),
        migrations.AlterField(
            model_name="book",
            name="author",
            field=models.ForeignKey(
                db_constraint=False, on_delete=django.db.models.deletion.CASCADE, to="shelf.author"
            ),
        ),
    ]
"""

RUNNER = """
import json, sys
import django
from django.conf import settings

database = json.loads(sys.argv[1])
settings.configure(
    DATABASES={"default": database},
    INSTALLED_APPS=["shelf"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
)
django.setup()
from django.core.management import call_command
call_command("migrate", "shelf", *sys.argv[2:], verbosity=0)
"""


def _project(root: Path) -> Path:
    app = root / "shelf"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(textwrap.dedent(MODELS))
    (app / "migrations" / "__init__.py").write_text("")
    (app / "migrations" / "0001_initial.py").write_text(textwrap.dedent(MIGRATION_1))
    (root / "run.py").write_text(textwrap.dedent(RUNNER))
    return root


def _migrate(root: Path, database: dict[str, object], *target: str) -> None:
    done = subprocess.run(
        [sys.executable, str(root / "run.py"), json.dumps(database), *target],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _postgres(dsn: str, schema: str) -> dict[str, object]:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params["dbname"],
        "USER": params["user"],
        "PASSWORD": params.get("password", ""),
        "HOST": params["host"],
        "PORT": params["port"],
        "OPTIONS": {"options": f"-c search_path={schema}"},
    }


def _constraints(pg: psycopg.Connection, schema: str) -> dict[tuple[str, str], tuple[str, list[str], bool, bool]]:
    """(table, name) -> (type, columns, deferrable, deferred) of the app's tables."""
    rows = pg.execute(
        "SELECT c.relname, k.conname, k.contype, "
        " array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)"
        "  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),"
        " k.condeferrable, k.condeferred FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname LIKE 'shelf\\_%%' AND k.contype IN ('p', 'u', 'c', 'f')",
        [schema],
    ).fetchall()
    return {(r[0], r[1]): (r[2], list(r[3]), r[4], r[5]) for r in rows}


def test_a_django_file_copies_to_the_constraints_django_makes_and_migrates_on(tmp_path: Path, pg_dsn: str) -> None:
    root = _project(tmp_path / "project")
    sqlite_path = tmp_path / "django.sqlite3"
    _migrate(root, {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_path)})
    copy_database(sqlite_path, pg_dsn, CopyOptions(jobs=2))
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA native")
    _migrate(root, _postgres(pg_dsn, "native"))
    with psycopg.connect(pg_dsn) as pg:
        copied, native = _constraints(pg, "public"), _constraints(pg, "native")
    # Named by the models, primary keys and unique=True fields: the same names as Django's own migration.
    assert {k: v for k, v in copied.items() if v[0] != "f"} == {k: v for k, v in native.items() if v[0] != "f"}
    assert ("shelf_book", "book_pages_positive") in copied and ("shelf_book", "book_title_per_author") in copied
    # Django's SQLite schema names no foreign key (its PostgreSQL one hashes a name); the copy has
    # PostgreSQL's default name, on the same columns, DEFERRABLE INITIALLY DEFERRED as Django makes it.
    assert sorted(v for v in copied.values() if v[0] == "f") == sorted(v for v in native.values() if v[0] == "f")
    assert [k[1] for k, v in copied.items() if v[0] == "f"] == ["shelf_book_author_id_fkey"]
    assert all(v[2:] == (True, True) for v in copied.values() if v[0] == "f")
    # Django's next migration drops the named constraints by name and finds the others by introspection.
    (root / "shelf" / "migrations" / "0002_loosen.py").write_text(textwrap.dedent(MIGRATION_2))
    _migrate(root, _postgres(pg_dsn, "public"))
    with psycopg.connect(pg_dsn) as pg:
        left = _constraints(pg, "public")
    assert sorted(k[1] for k in left) == ["shelf_author_pkey", "shelf_book_pkey"]
