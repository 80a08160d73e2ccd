"""PostgreSQL WAL positions (LSNs) as numbers: `16/B374D848` is two 32-bit halves in hex.

Positions are compared as integers (the text does not sort: `9/0` < `10/0`), and read-your-writes
passes one between processes as text, so the parser refuses anything PostgreSQL would not print.
"""

from __future__ import annotations

import re

_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
MAX_LSN = (1 << 64) - 1


def parse_lsn(text: str) -> int:
    """The position `text` names (`pg_lsn` text form); ValueError for anything else."""
    match = _LSN.match(text)
    if match is None:
        raise ValueError(f"not a WAL position (pg_lsn text such as 16/B374D848): {text[:40]!r}")
    return int(match.group(1), 16) << 32 | int(match.group(2), 16)


def format_lsn(position: int) -> str:
    """The `pg_lsn` text of `position`, as PostgreSQL prints it (upper-case hex, no leading zeros)."""
    if not 0 <= position <= MAX_LSN:
        raise ValueError(f"a WAL position is a 64-bit unsigned number, not {position}")
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def lsn_or_none(text: str | None) -> int | None:
    """`parse_lsn` for a value the server may return as NULL (a replica that replayed nothing yet)."""
    return None if text is None else parse_lsn(text)
