"""`forum serve --capture FILE`: the workload log, with credentials kept out of it.

Statement parameters are worth keeping (a doctor replays and EXPLAINs them), but two of them are
secrets: password hashes and session-token hashes. They are replaced by "<redacted>" before the
line is written; everything else goes through as captured.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from pgferry.workload.capture import JsonlSink
from pgferry.workload.record import Statement

REDACTED = "<redacted>"
_SECRET = re.compile(r"^(\$argon2|\$2[aby]\$|[0-9a-f]{64}$)")


def _clean(value: Any) -> Any:
    if isinstance(value, str) and _SECRET.match(value):
        return REDACTED
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


class RedactingSink:
    """A JsonlSink that blanks password and token hashes in parameters."""

    def __init__(self, path: str | Path) -> None:
        self._inner = JsonlSink(path)

    def write(self, statement: Statement) -> None:
        if statement.params is not None:
            statement = dataclasses.replace(statement, params=_clean(statement.params))
        self._inner.write(statement)

    def close(self) -> None:
        self._inner.close()
