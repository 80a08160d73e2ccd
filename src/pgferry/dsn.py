"""DSN handling that keeps passwords out of logs, reports and error messages."""

from __future__ import annotations

import re

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(dsn: str) -> str:
    """Return `dsn` with any password replaced by `***`, in URL or key=value form.

    Works on strings that are not valid DSNs too, because error messages may quote them.
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", dsn)
    text = _KV_PASSWORD.sub(lambda m: f"{m['head']}***", text)
    return re.sub(r"([?&]password=)[^&\s]*", r"\1***", text, flags=re.IGNORECASE)


def with_database(dsn: str, dbname: str) -> str:
    """Return a DSN equal to `dsn` but pointing at database `dbname`."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


_KV_START = re.compile(r"^\s*[a-z_]+\s*=", re.IGNORECASE)


def is_dsn(text: str) -> bool:
    """Whether `text` is a PostgreSQL connection string: a postgresql:// (or postgres://) URI, or a libpq
    `key=value` string that libpq parses."""
    if re.match(r"^postgres(?:ql)?://", text.strip(), re.IGNORECASE):
        return True
    if not _KV_START.match(text):
        return False
    try:
        conninfo_to_dict(text)
    except Exception:  # psycopg.ProgrammingError: not a libpq string after all
        return False
    return True
