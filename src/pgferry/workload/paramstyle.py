"""Parameter markers of every DB-API style, rewritten to SQLite's `?` with the values in order.

A captured statement keeps the markers of the layer the capture wrapped: Django's cursor hands
`%s` to its own wrapper, psycopg-style code uses `%(name)s`, others use `:1` or `$1`. SQLite's
planner and the replay need `?` and a list. The markers are found with the workload lexer, so a
`%s`, `?` or `:name` inside a string literal, a quoted identifier or a comment is left alone; in
the format styles `%%` is the driver's escape for `%` and is unescaped (in literals too).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from pgferry.workload.lex import scan

Style = Literal["none", "qmark", "numeric", "named", "format", "pyformat"]


class ParamStyleError(ValueError):
    """A statement whose markers or parameters cannot be bound; `reason` is a short, stable label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


MIXED = "mixed parameter styles"
MISFIT = "parameters do not fit the markers"


@dataclass(frozen=True, slots=True)
class Markers:
    """A statement's markers: `sql` with each one written `?`, its `style`, and per marker (in order)
    the 0-based position or the name of the value it takes."""

    sql: str
    style: Style
    slots: tuple[int | str, ...]

    @property
    def count(self) -> int:
        return len(self.slots)


def _kind(text: str) -> tuple[str, int | str]:
    """(style, slot) of one marker token; positional slots of `?` and `%s` are filled in later (-1)."""
    if text == "?" or text == "%s":
        return ("qmark" if text == "?" else "format"), -1
    if text.startswith("%("):
        return "pyformat", text[2:-2]
    if text[0] in "?$:" and text[1:].isdigit():
        if int(text[1:]) == 0:
            raise ParamStyleError(MISFIT, f"marker {text}: numbers start at 1")
        return "numeric", int(text[1:]) - 1
    return "named", text[1:]


@functools.lru_cache(maxsize=4096)
def markers(sql: str) -> Markers:
    """The markers of `sql` (cached: a workload repeats its statements). Raises ParamStyleError
    when styles that cannot be bound together are mixed (`%s` with `?`, `:name` with `?`...)."""
    tokens = list(scan(sql))
    kinds: list[tuple[int, int, str, int | str]] = []  # start, end, style, slot
    for tok in tokens:
        if tok.kind == "param":
            style, slot = _kind(sql[tok.start : tok.end])
            kinds.append((tok.start, tok.end, style, slot))
    styles = {k[2] for k in kinds}
    if "qmark" in styles and "numeric" in styles:
        styles.discard("qmark")  # SQLite numbers a bare `?` after the largest `?NNN` so far
    if len(styles) > 1:
        raise ParamStyleError(MIXED, ", ".join(sorted(styles)))
    style = cast(Style, styles.pop() if styles else "none")
    out: list[str] = []
    slots: list[int | str] = []
    pos = 0
    highest = -1
    percent = style in ("format", "pyformat")
    for start, end, _style, slot in kinds:
        out.append(_unescape(sql, pos, start, tokens) if percent else sql[pos:start])
        out.append("?")
        if slot == -1:
            slot = highest + 1 if style != "format" else len(slots)
        if isinstance(slot, int):
            highest = max(highest, slot)
        slots.append(slot)
        pos = end
    out.append(_unescape(sql, pos, len(sql), tokens) if percent else sql[pos:])
    return Markers("".join(out), style, tuple(slots))


def _unescape(sql: str, start: int, end: int, tokens: list[Any]) -> str:
    """sql[start:end] with `%%` written `%`: in the format styles the driver (psycopg, Django's cursor)
    unescapes it everywhere, string literals included (`LIKE '100%%'`), so SQLite must see `%`."""
    parts: list[str] = []
    pos = start
    for tok in tokens:
        if tok.start < start or tok.end > end:
            continue
        text = sql[tok.start : tok.end]
        if (tok.kind == "op" and text == "%%") or (tok.kind == "string" and "%%" in text):
            parts.append(sql[pos : tok.start] + text.replace("%%", "%"))
            pos = tok.end
    parts.append(sql[pos:end])
    return "".join(parts)


def bind(m: Markers, params: Any) -> list[Any]:
    """The values for `m.sql`'s `?` markers, in order. Raises ParamStyleError when they do not fit."""
    if m.style == "none":
        if params and not isinstance(params, Mapping):
            raise ParamStyleError(MISFIT, f"no markers but {len(params)} values")
        return []
    names = [s for s in m.slots if isinstance(s, str)]
    if names:
        if isinstance(params, Mapping):
            missing = [n for n in dict.fromkeys(names) if n not in params]
            if missing:
                raise ParamStyleError(MISFIT, "no value for " + ", ".join(missing[:3]))
            return [params[s] for s in names]
        if m.style == "named" and isinstance(params, Sequence) and not isinstance(params, str | bytes):
            order = {n: k for k, n in enumerate(dict.fromkeys(names))}  # SQLite numbers names as they appear
            if len(params) != len(order):
                raise ParamStyleError(MISFIT, f"{len(order)} names but {len(params)} values")
            return [params[order[n]] for n in names]
        raise ParamStyleError(MISFIT, f"named markers but {type(params).__name__} values")
    if not isinstance(params, Sequence) or isinstance(params, str | bytes):
        raise ParamStyleError(MISFIT, f"positional markers but {type(params).__name__} values")
    wanted = max(s for s in m.slots if isinstance(s, int)) + 1
    if len(params) != wanted:
        raise ParamStyleError(MISFIT, f"{wanted} markers but {len(params)} values")
    return [params[s] for s in m.slots if isinstance(s, int)]


def to_sqlite(sql: str, params: Any, many: int | None = None) -> tuple[str, Any]:
    """`sql` with `?` markers and its values as a list (a list of lists for executemany), or None
    when the log kept no values. Raises ParamStyleError."""
    m = markers(sql)
    if params is None:
        return m.sql, None
    if many is not None:
        return m.sql, [bind(m, row) for row in params]
    return m.sql, bind(m, params)
