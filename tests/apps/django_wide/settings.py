"""Settings of the wide-model Django project (split tests): the SQLite file comes from PGFERRY_TEST_DB."""

import os

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PGFERRY_TEST_DB"][len("sqlite:") :]}
}
INSTALLED_APPS = ["wide"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
SECRET_KEY = "test"
