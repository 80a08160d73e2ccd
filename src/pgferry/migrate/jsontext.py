"""JSON values between SQLite and PostgreSQL: the forms verify compares, the line of a json column, and
the way back. jsonb reorders keys, drops duplicates and spacing and keeps every digit of a number; json
keeps the text as it came (and is what a column gets when a text holds \\u0000, which jsonb cannot hold).
"""

from __future__ import annotations

import json
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

# json where a text holds the escape \u0000, else jsonb (pgferry.migrate.types).
JSON_TYPES = ("jsonb", "json")
# Numbers compared as decimals, at any precision: jsonb keeps every digit, a double would not.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _json_number(text: str) -> tuple[str, Decimal]:
    value = Decimal(text).normalize(EXACT)
    return "number", value.copy_abs() if value.is_zero() else value  # jsonb reads -0 as 0


def _json_object(pairs: list[tuple[str, Any]]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return "object", tuple(sorted(dict(pairs).items()))  # the last of duplicate keys wins, as in jsonb


def json_value(text: str) -> Any:
    """A JSON text as jsonb sees it: keys sorted (duplicates gone), numbers exact (1e+20 equals
    100000000000000000000, true does not equal 1), spacing and escapes gone; JSON null is not SQL NULL."""
    return "json", json.loads(text, parse_float=_json_number, parse_int=_json_number, object_pairs_hook=_json_object)


def json_line(c: str, pg_type: str) -> str | None:
    """Checksum text (pgferry.migrate.checksum): json keeps the text as it came, so its ::text is the
    source text; jsonb's is not (no line form)."""
    return f"CAST({c} AS TEXT)" if pg_type == "json" else None


def json_reverse(value: Any) -> str:
    """jsonb's own text form (its key order and spacing): equal to the source under json.loads."""
    return json.dumps(value, ensure_ascii=False)
