"""Fingerprints: one id for all statements that differ only in their values.

A workload repeats a few statement shapes with different literals and parameters; grouping by shape
is what makes timings comparable (N+1 detection, index advice, replay). The normalized text comes
from sqlglot's parse tree; text sqlglot cannot parse gets a token-level fallback, so fingerprint()
never raises. The rules are listed in docs/workload-format.md.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Literal, NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from pgferry.sqlparse import quiet_sqlglot
from pgferry.workload.lex import scan

Method = Literal["sqlglot", "regex"]

CACHE_SIZE = 16384


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """`id`: 16 hex digits (sha1 of `text`); `text`: the normalized statement; `method`: how."""

    id: str
    text: str
    method: Method


def fingerprint(sql: str, dialect: str = "sqlite") -> Fingerprint:
    """The fingerprint of `sql` read as `dialect` (a sqlglot dialect: "sqlite", "postgres", ...).

    Cached on (sql, dialect): workloads repeat their statements. Statements with their values
    inlined repeat only in shape, so a result is also cached on its token shape (see _by_shape).
    """
    return _fingerprint(sql, dialect)


# Token shape -> fingerprint. A result goes in only when it equals the result for the statement's
# parameter form (every value token written `?`): then every value the lexer saw was replaced where it
# stood, none was kept (ORDER BY 2, VARCHAR(20)) or turned into structure (a string alias), and a
# statement with the same shape (same tokens, same kind of value at each place, any contents) gets the
# same normalization without being parsed again. Counting replaced values is not enough: in
# `SELECT TRUE '' FROM t` sqlglot replaces the keyword TRUE and keeps the string as an alias.
# The property test test_shape_cache_never_changes_a_result checks this against uncached results.
_by_shape: dict[tuple[str, str], Fingerprint] = {}


@functools.lru_cache(maxsize=CACHE_SIZE)
def _fingerprint(sql: str, dialect: str) -> Fingerprint:
    lexed = _lex(sql)
    shape = (lexed.shape, dialect)
    known = _by_shape.get(shape)
    if known is not None:
        return known
    normalized = _normalize_sqlglot(lexed.prepared, dialect)
    if normalized is None:
        return _make(lexed.key, "regex")
    result = _make(normalized, "sqlglot")
    if lexed.prepared == lexed.params_form or _normalize_params_form(lexed.params_form, dialect) == normalized:
        if len(_by_shape) >= CACHE_SIZE:
            _by_shape.clear()
        _by_shape[shape] = result
    return result


@functools.lru_cache(maxsize=CACHE_SIZE)
def _normalize_params_form(params_form: str, dialect: str) -> str | None:
    """Cached apart: all the statements of one shape share their parameter form."""
    return _normalize_sqlglot(params_form, dialect)


def _make(text: str, method: Method) -> Fingerprint:
    return Fingerprint(hashlib.sha1(text.encode("utf-8")).hexdigest()[:16], text, method)


def shape_cache_entries() -> int:
    """How many token shapes have a cached result (tests: is the shape cache used?)."""
    return len(_by_shape)


def clear_cache() -> None:
    """Forget cached fingerprints (tests; memory)."""
    _fingerprint.cache_clear()
    _normalize_params_form.cache_clear()
    _by_shape.clear()


# --- sqlglot path ------------------------------------------------------------------------------------

_VALUES = (
    exp.Literal,
    exp.Boolean,
    exp.HexString,
    exp.BitString,
    exp.ByteString,
    exp.RawString,
    exp.National,
    exp.Placeholder,
    exp.Parameter,
    exp.JSONPath,  # '$.a' in json_extract / ->>: sqlglot parses it, but it is still a value
)
_LISTS = (exp.In, exp.Values, exp.Array)


def _normalize_sqlglot(prepared: str, dialect: str) -> str | None:
    """The normalized text, or None when sqlglot cannot parse it."""
    try:
        with quiet_sqlglot():
            trees = [t for t in sqlglot.parse(prepared, read=dialect) if t is not None]
            if not trees or not all(_is_statement(t) for t in trees):
                return None
            parts = []
            for tree in trees:
                _replace_values(tree)
                parts.append(
                    tree.sql(dialect=dialect, normalize=True, comments=False, unsupported_level=ErrorLevel.IGNORE)
                )
    except Exception:  # ParseError, TokenError, RecursionError...: use the fallback
        return None
    return "; ".join(parts)


def _is_statement(tree: exp.Expr) -> bool:
    if isinstance(tree, exp.Command) or tree.find(exp.Command) is not None:
        return False  # sqlglot gave up and kept raw text
    if isinstance(tree, exp.Query):
        return True
    # "SAVEPOINT x" parses as a column with an alias: an expression, not a statement
    return not isinstance(tree, exp.Condition | exp.Alias | exp.Identifier | exp.Var)


def _placeholder() -> exp.Placeholder:
    return exp.Placeholder(jdbc=True)  # rendered as `?` in every dialect


def _keeps_value(node: exp.Expression) -> bool:
    parent = node.parent
    if isinstance(parent, exp.DataTypeParam):  # VARCHAR(20): part of a type
        return True
    if isinstance(node, exp.Boolean) and isinstance(parent, exp.Is):  # IS TRUE
        return True
    if isinstance(node, exp.Literal) and not node.is_string:
        # ORDER BY 2 / GROUP BY 2 name a column by position (ORDER BY -1 is a position too, if a bad one)
        holder = parent.parent if isinstance(parent, exp.Neg) else parent
        if isinstance(holder, exp.Ordered) and isinstance(holder.parent, exp.Order):
            return True
        if isinstance(holder, exp.Group):
            return True
    return False


def _replace_values(tree: exp.Expr) -> None:
    """Literals and parameters -> `?`; `-?` -> `?`; lists of identical items (IN, VALUES, ARRAY) -> one."""
    for interval in list(tree.find_all(exp.Interval)):  # INTERVAL '5' MINUTE is one value
        if isinstance(interval.this, exp.Literal) and interval.parent is not None:
            interval.replace(_placeholder())
    for value in list(tree.find_all(*_VALUES)):
        if value.parent is not None and not _keeps_value(value):
            value.replace(_placeholder())
    for wrapper in reversed(list(tree.find_all(exp.Neg, exp.Paren))):
        if isinstance(wrapper.this, exp.Placeholder):
            wrapper.replace(_placeholder())
    for listing in tree.find_all(*_LISTS):
        items = listing.expressions
        if len(items) > 1 and all(item == items[0] for item in items[1:]):
            listing.set("expressions", [items[0]])


# --- token fallback ---------------------------------------------------------------------------------

_UNARY_AFTER = frozenset(
    [
        "(",
        ",",
        "=",
        "==",
        "<",
        ">",
        "<=",
        ">=",
        "<>",
        "!=",
        "*",
        "/",
        "%",
        "+",
        "-",
        "||",
        "select",
        "where",
        "and",
        "or",
        "not",
        "when",
        "then",
        "else",
        "case",
        "in",
        "is",
        "between",
        "like",
        "glob",
        "limit",
        "offset",
        "values",
        "by",
        "on",
        "having",
        "return",
        "set",
    ]
)


class _Lexed(NamedTuple):
    prepared: str  # for sqlglot: parameter markers as `?`, comments as spaces, `%%` as `%`
    key: str  # the token fallback normalization
    shape: str  # the same, with the kind of each value kept (?n number, ?' string, ?X' hex, ?p parameter...)
    params_form: str  # `prepared` with every value token written `?`: what the shape cache compares with


_VALUE_KINDS = frozenset({"string", "number", "param", "unterminated"})


def _lex(sql: str) -> _Lexed:
    """One lexer pass for both paths: sqlglot's input, the token fallback and the shape cache's keys."""
    prepared: list[str] = []
    params: list[str] = []
    toks: list[str] = []
    kinded: list[str] = []
    for tok in scan(sql):
        kind = tok.kind
        text = sql[tok.start : tok.end]
        if kind == "ws":
            prepared.append(text)
            params.append(text)
            continue
        if kind == "comment":
            prepared.append(" ")
            params.append(" ")
            continue
        if kind in _VALUE_KINDS:
            prepared.append("?" if kind == "param" else text)
            params.append("?")
            if toks and toks[-1] in ("-", "+") and (len(toks) == 1 or toks[-2] in _UNARY_AFTER):
                toks.pop()
            if kinded and kinded[-1] == "-" and (len(kinded) == 1 or kinded[-2] in _UNARY_AFTER):
                kinded.pop()
            toks.append("?")
            kinded.append(_value_kind(kind, text))
        else:
            if kind == "op" and text == "%%":  # psycopg's escaped percent
                text = "%"
            prepared.append(text)
            params.append(text)
            word = text.lower() if kind == "word" else text
            toks.append(word)
            kinded.append(word)
    while toks and toks[-1] == ";":
        toks.pop()
    while kinded and kinded[-1] == ";":
        kinded.pop()
    key = " ".join(_collapse_lists(toks))
    return _Lexed("".join(prepared), key, " ".join(_collapse_lists(kinded)), "".join(params))


def _value_kind(kind: str, text: str) -> str:
    """A value token's kind for the shape cache: values of different kinds can parse differently
    (`E'x'` is an alias in SQLite, `0x1F` one in PostgreSQL), so they must not share an entry."""
    if kind == "param":
        return "?p"
    if kind == "number":
        return "?x" if text[:2] in ("0x", "0X") else "?n"
    if kind == "string":
        return "?$" if text.startswith("$") else "?" + text[: text.index("'") + 1].upper()
    return "?u"


def normalize_tokens(sql: str) -> str:
    """The fallback normalization, on tokens (never raises):

    comments and whitespace go; strings, numbers and parameter markers become `?`; a sign before
    them goes; unquoted words are lower-cased; quoted identifiers are kept; `IN (?, ?, ...)` becomes
    `in ( ? )` and repeated identical `VALUES` rows one row; tokens are joined by single spaces.
    """
    return _lex(sql).key


def _collapse_lists(toks: list[str]) -> list[str]:
    out: list[str] = []
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        out.append(tok)
        i += 1
        if tok not in ("in", "values") or i >= n or toks[i] != "(":
            continue
        groups: list[list[str]] = []
        j = i
        while True:  # read `( ... )` groups separated by commas (VALUES) or one group (IN)
            end = _group_end(toks, j)
            if end is None:
                break
            groups.append(toks[j:end])
            j = end
            if tok == "in" or j + 1 >= n or toks[j] != "," or toks[j + 1] != "(":
                break
            j += 1
        if not groups:
            continue
        if tok == "in":
            inner = groups[0][1:-1]
            first = inner[0] if inner else ""
            if (
                len(inner) > 1
                and first.startswith("?")
                and all(t == (first if k % 2 == 0 else ",") for k, t in enumerate(inner))
            ):
                out.extend(["(", first, ")"])
                i = j
        elif all(g == groups[0] for g in groups[1:]):
            out.extend(groups[0])
            i = j
        else:
            continue
    return out


def _group_end(toks: list[str], start: int) -> int | None:
    """Index just past the `)` matching toks[start] == "(", or None."""
    depth = 0
    for k in range(start, len(toks)):
        if toks[k] == "(":
            depth += 1
        elif toks[k] == ")":
            depth -= 1
            if depth == 0:
                return k + 1
    return None
