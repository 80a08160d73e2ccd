"""What a column's declared type asks the census to check, and the SQL that checks it.

A declared `decimal(10,2)`, `time`, `char(32)` or `char(39)` suggests a PostgreSQL type (numeric(10,2),
time, uuid, inet) that holds the values only if every one of them fits. Those checks cost a scan's
worth of work per column, so the census runs them only for columns whose declaration calls for them,
in the scan it makes anyway. Each check is an aggregate over the non-NULL values: "every text is" a
format (1/0, NULL without texts), or a count of numbers that do not fit.
"""

from __future__ import annotations

import ipaddress
import re
import sqlite3
from dataclasses import dataclass

DECIMAL = re.compile(r"^\s*(?:DECIMAL|NUMERIC|DEC|NUMBER)\b\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?", re.I)
CHAR_LENGTH = re.compile(r"^\s*(?:N?VAR)?CHAR(?:ACTER)?(?:\s+VARYING)?\s*\(\s*(\d+)\s*\)", re.I)
UUID_DECLARATIONS = re.compile(r"^\s*(?:UUID|GUID|UNIQUEIDENTIFIER|N?CHAR\s*\(\s*(?:32|36)\s*\))\s*$", re.I)
INET_DECLARATIONS = re.compile(r"^\s*(?:INET|IPADDRESS|N?CHAR\s*\(\s*(?:15|39)\s*\))\s*$", re.I)
TIME_OF_DAY = re.compile(r"^\s*TIME\s*(?:\(\s*\d\s*\))?\s*$", re.I)
# The SQL function the inet check calls: registered on the census's connection (check_functions).
IP_FUNCTION = "pgferry_is_ip"
HEX = "[0-9a-fA-F]"
UUID_GLOBS = (HEX * 32, "-".join(HEX * n for n in (8, 4, 4, 4, 12)))
TIME_GLOB = "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]"


@dataclass(frozen=True)
class Precision:
    """numeric(precision, scale) as declared; `precision` None for a bare DECIMAL or NUMERIC."""

    precision: int | None
    scale: int

    @property
    def pg_type(self) -> str:
        return "numeric" if self.precision is None else f"numeric({self.precision},{self.scale})"


def decimal_precision(declared: str) -> Precision | None:
    """The precision of a DECIMAL/NUMERIC declaration (None when the column declares no decimal)."""
    match = DECIMAL.match(declared)
    if match is None or re.search(r"\bINT", declared, re.I):
        return None
    if match.group(1) is None:
        return Precision(None, 0)
    precision, scale = int(match.group(1)), int(match.group(2) or 0)
    if not 1 <= precision <= 1000 or scale > precision:
        return Precision(None, 0)  # PostgreSQL would refuse the declaration: plain numeric
    return Precision(precision, scale)


def char_length(declared: str) -> int | None:
    """n of a CHAR(n) / VARCHAR(n) declaration."""
    match = CHAR_LENGTH.match(declared)
    return int(match.group(1)) if match else None


def declares_uuid(declared: str) -> bool:
    return bool(UUID_DECLARATIONS.match(declared))


def declares_inet(declared: str) -> bool:
    return bool(INET_DECLARATIONS.match(declared))


def declares_time_of_day(declared: str) -> bool:
    return bool(TIME_OF_DAY.match(declared))


def is_ip(value: object) -> bool:
    """An IPv4 or IPv6 address (optionally with a prefix length) PostgreSQL's inet reads back unchanged."""
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return True


def check_functions(conn: sqlite3.Connection) -> None:
    """Make the functions the checks call available on `conn`."""
    conn.create_function(IP_FUNCTION, 1, lambda v: int(is_ip(v)), deterministic=True)


def uuid_predicate(c: str) -> str:
    return f"({c} GLOB '{UUID_GLOBS[0]}' OR {c} GLOB '{UUID_GLOBS[1]}')"


def time_predicate(c: str) -> str:
    """'HH:MM:SS' or 'HH:MM:SS.ffffff' (at most microseconds, which PostgreSQL keeps), hours 00-23."""
    fraction = f"(length({c}) BETWEEN 10 AND 15 AND substr({c}, 9, 1) = '.' AND substr({c}, 10) NOT GLOB '*[^0-9]*')"
    return f"({c} GLOB '{TIME_GLOB}*' AND substr({c}, 1, 2) <= '23' AND (length({c}) = 8 OR {fraction}))"


def decimal_fits(c: str, precision: Precision) -> str:
    """A number numeric(p, s) holds exactly: fewer than p - s integer digits, at most s decimals. A REAL
    that SQLite's round() to s places gives back unchanged has a shortest repr with at most s decimals."""
    if precision.precision is None:
        return "1"
    limit = f"1e{precision.precision - precision.scale}"  # abs() of the smallest integer overflows
    return f"({c} > -{limit} AND {c} < {limit} AND (typeof({c}) = 'integer' OR round({c}, {precision.scale}) = {c}))"


# json_valid(col), json_valid("col"), json_valid(`col`) or json_valid([col]) in a CHECK
JSON_VALID_CALL = re.compile(r'\bjson_valid\s*\(\s*(?:"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|\[([^\]]+)\]|(\w+))\s*\)', re.I)


def json_validated(check: str) -> set[str]:
    """The columns (lower-cased) a CHECK passes to json_valid(): the ones it says hold JSON."""
    names = set()
    for double, back, bracket, bare in JSON_VALID_CALL.findall(check):
        names.add((double.replace('""', '"') or back.replace("``", "`") or bracket or bare).lower())
    return names


def every_text(c: str, predicate: str) -> str:
    """1 when every text value satisfies `predicate`, 0 when one does not, NULL without texts."""
    return f"min(CASE WHEN typeof({c}) = 'text' THEN {predicate} END)"


def declared_checks(c: str, declared: str) -> list[tuple[str, str]]:
    """(census field, aggregate) pairs the declaration of quoted column `c` calls for."""
    checks = []
    if declares_time_of_day(declared):
        checks.append(("texts_time", every_text(c, time_predicate(c))))
    if declares_uuid(declared):
        checks.append(("texts_uuid", every_text(c, uuid_predicate(c))))
    if declares_inet(declared):
        checks.append(("texts_inet", every_text(c, f"{IP_FUNCTION}({c})")))
    precision = decimal_precision(declared)
    if precision is not None and precision.precision is not None:
        fits = decimal_fits(c, precision)
        checks.append(("decimal_misfits", f"sum(CASE WHEN typeof({c}) IN ('integer', 'real') THEN NOT {fits} END)"))
    return checks
