"""Which statements a replica may answer: reads that take no row locks and call nothing that writes.

Conservative by design: anything not plainly a read goes to the primary (a quoted identifier named
"update" included). What the text cannot show (a function that writes, called from a SELECT) a
replica refuses with `read-only transaction`, and the router sends that statement to the primary
and remembers it. A statement's verdict is kept, so a fixed statement set costs one lookup per call.
"""

from __future__ import annotations

import functools
import re

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_QUOTED = re.compile(r"'(?:[^']|'')*'|\$(\w*)\$.*?\$\1\$", re.S)
_READ_START = re.compile(r"^[\s(]*(SELECT|WITH|VALUES|TABLE|SHOW)\b", re.I)
_WRITES = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|INTO|FOR\s+(?:NO\s+KEY\s+)?UPDATE|FOR\s+(?:KEY\s+)?SHARE"
    r"|nextval|setval|set_config|pg_advisory\w*|pg_try_advisory\w*|pg_notify|txid_current"
    r"|pg_current_xact_id|pg_logical_emit_message|lo_\w+)\b",
    re.I,
)


@functools.lru_cache(maxsize=4096)
def reads_only(sql: str) -> bool:
    """Whether a replica may run `sql`: a SELECT (WITH, VALUES, TABLE, SHOW) that locks and writes nothing."""
    text = _QUOTED.sub("''", _COMMENTS.sub(" ", sql))
    return bool(_READ_START.match(text)) and _WRITES.search(text) is None
