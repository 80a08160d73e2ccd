"""Map SQLite identifiers to PostgreSQL ones without ever merging two names silently.

By default a plain name (letters, digits, underscores, not starting with a digit) is folded to
lower case, the way PostgreSQL folds unquoted identifiers, so application SQL that never quoted
names keeps working. Any other name (spaces, quotes, mixed case with `--keep-case`, unicode) is
kept exactly and always quoted. PostgreSQL truncates identifiers at 63 bytes; two names that fold
or truncate to the same identifier are an error naming both. A column named like one of
PostgreSQL's system columns (GIS tables' xmin/xmax are common) gets underscores appended; the plan
reports the rename.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pgferry.errors import UsageError

MAX_IDENTIFIER_BYTES = 63
# Names PostgreSQL keeps for every table's system columns: CREATE TABLE refuses a column so named.
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})
PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NameCollisionError(UsageError):
    """Two source names map to one PostgreSQL identifier."""


def fold(name: str, keep_case: bool = False) -> str:
    """The PostgreSQL identifier for a SQLite name (before length checks)."""
    if not keep_case and PLAIN.match(name):
        return name.lower()
    return name


def truncate(name: str) -> str:
    """What PostgreSQL will store for `name`: at most 63 bytes, never a split character."""
    encoded = name.encode("utf-8")
    if len(encoded) <= MAX_IDENTIFIER_BYTES:
        return name
    return encoded[:MAX_IDENTIFIER_BYTES].decode("utf-8", errors="ignore")


def identifier(name: str, keep_case: bool = False) -> str:
    """What PostgreSQL stores for a SQLite name, before any collision or system-name handling."""
    return truncate(fold(name, keep_case))


def map_names(
    names: Iterable[str], what: str, keep_case: bool = False, reserved: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Map each source name to its target identifier; raise when two collide.

    `what` names the namespace in the message ("table", "column of table \"x\"", "index"). A name
    that maps to one of `reserved` gets underscores appended until it is free.
    """
    names = list(names)
    taken = {identifier(name, keep_case) for name in names}
    mapping: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in names:
        target = fold(name, keep_case)
        stored = truncate(target)
        if stored in reserved:
            while stored in reserved or stored in taken:
                stored += "_"
            taken.add(stored)
            target = stored
        if stored in owner:
            other = owner[stored]
            why = "longer than 63 bytes and truncated" if stored != target else "equal after case folding"
            raise NameCollisionError(
                f"{what} names {other!r} and {name!r} both become {stored!r} in PostgreSQL ({why}); "
                "rename one in SQLite or use --keep-case"
            )
        owner[stored] = name
        mapping[name] = stored
    return mapping
