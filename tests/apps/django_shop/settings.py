"""Settings of the Django shop: the database comes from PGFERRY_TEST_DB ("sqlite:PATH" or a libpq DSN:
`database` makes either, and the live writer switches to PostgreSQL with it), DEBUG on (Django then
quotes every statement's parameters with `SELECT QUOTE(?)` for its query log: the doctor must not
take those for the application's)."""

import os

import psycopg


def database(target: str) -> dict[str, object]:
    """Django's settings for one database: SQLite for "sqlite:PATH", else PostgreSQL (psycopg 3)."""
    if target.startswith("sqlite:"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": target.removeprefix("sqlite:")}
    params = psycopg.conninfo.conninfo_to_dict(target)
    names = {"NAME": "dbname", "USER": "user", "PASSWORD": "password", "HOST": "host", "PORT": "port"}
    return {"ENGINE": "django.db.backends.postgresql", **{key: params.get(name, "") for key, name in names.items()}}


DATABASES = {"default": database(os.environ["PGFERRY_TEST_DB"])}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "shop",
]  # contenttypes has migrations: django_migrations exists, as in every project
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
DEBUG = True
SECRET_KEY = "test"
