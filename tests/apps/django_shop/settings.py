"""Settings of the Django shop: SQLite at PGFERRY_TEST_DB ("sqlite:PATH"), DEBUG on (Django then
quotes every statement's parameters with `SELECT QUOTE(?)` for its query log: the doctor must not
take those for the application's)."""

import os

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PGFERRY_TEST_DB"].removeprefix("sqlite:")}
}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "shop",
]  # contenttypes has migrations: django_migrations exists, as in every project
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
DEBUG = True
SECRET_KEY = "test"
