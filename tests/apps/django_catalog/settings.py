"""Settings of the test Django project: the database comes from PGFERRY_TEST_DB ("sqlite:PATH" or a
libpq DSN), so one project runs on the SQLite file and on its PostgreSQL copy."""

import os

import psycopg

target = os.environ["PGFERRY_TEST_DB"]
if target.startswith("sqlite:"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": target[len("sqlite:") :]}}
else:
    params = psycopg.conninfo.conninfo_to_dict(target)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": params["dbname"],
            "USER": params.get("user", ""),
            "PASSWORD": params.get("password", ""),
            "HOST": params.get("host", ""),
            "PORT": params.get("port", ""),
        }
    }
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "catalog"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Europe/Paris"  # not UTC: aware datetimes must survive the move in any zone
SECRET_KEY = "test"
