"""Token-level editing of the CREATE statements SQLite keeps in sqlite_master.

A split must recreate tables whose text the user wrote (constraints, collations, ON CONFLICT
clauses, comments) and, on revert, give back that text byte for byte. Re-rendering from a parsed
model would lose details, so this module edits the original text instead: it splits a CREATE
TABLE body into its items at top-level commas, drops or keeps items, renames the table in the
header and re-points REFERENCES clauses, leaving every other character as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.errors import UsageError
from pgferry.sqltext import quote_ident
from pgferry.workload.lex import Token, scan

__all__ = [
    "TableText",
    "fold",
    "ident_value",
    "parse_create_table",
    "rename_index_target",
    "repoint_references",
]

TABLE_CONSTRAINT_WORDS = frozenset({"constraint", "primary", "unique", "check", "foreign"})


def fold(name: str) -> str:
    """SQLite compares identifiers case-insensitively for ASCII letters only."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ident_value(text: str) -> str:
    """The name an identifier token stands for: quotes removed and doubled quotes undone."""
    if len(text) >= 2:
        first, last = text[0], text[-1]
        if first == '"' and last == '"':
            return text[1:-1].replace('""', '"')
        if first == "`" and last == "`":
            return text[1:-1].replace("``", "`")
        if first == "[" and last == "]":
            return text[1:-1]
        if first == "'" and last == "'":  # SQLite accepts a string where a name is expected
            return text[1:-1].replace("''", "'")
    return text


def _tokens(sql: str) -> list[Token]:
    return [t for t in scan(sql) if t.kind not in ("ws", "comment")]


def _is_name(tok: Token) -> bool:
    return tok.kind in ("word", "ident", "string")


@dataclass(frozen=True)
class Item:
    """One item of a CREATE TABLE body: a column definition or a table constraint."""

    text: str  # as written, with the whitespace and comments before it
    column: str | None  # the column's name, None for a table constraint
    names: frozenset[str]  # folded identifiers the item mentions (to find what a constraint uses)


@dataclass(frozen=True)
class TableText:
    """A CREATE TABLE statement cut into header, body items and tail (WITHOUT ROWID, STRICT)."""

    header: str  # up to and including the opening parenthesis
    items: tuple[Item, ...]
    tail: str  # from the closing parenthesis to the end

    def column_item(self, name: str) -> Item:
        for item in self.items:
            if item.column is not None and fold(item.column) == fold(name):
                return item
        raise KeyError(name)

    @property
    def constraints(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.column is None)

    def render(self, name: str | None = None, keep: set[str] | None = None) -> str:
        """The statement, renamed to `name` and with only the columns in `keep` (folded) when given."""
        items = [i for i in self.items if keep is None or i.column is None or fold(i.column) in keep]
        header = self.header if name is None else f"CREATE TABLE {quote_ident(name)} ("
        return header + ",".join(i.text for i in items) + self.tail


def parse_create_table(sql: str) -> TableText:
    """Cut a CREATE TABLE statement into its items; UsageError when the text is not one."""
    toks = list(scan(sql))
    depth = 0
    open_at = close_at = -1
    commas: list[int] = []
    for tok in toks:
        if tok.kind != "other":
            continue
        ch = sql[tok.start]
        if ch == "(":
            depth += 1
            if depth == 1 and open_at < 0:
                open_at = tok.start
        elif ch == ")":
            depth -= 1
            if depth == 0 and open_at >= 0 and close_at < 0:
                close_at = tok.start
        elif ch == "," and depth == 1 and close_at < 0 and open_at >= 0:
            commas.append(tok.start)
    if open_at < 0 or close_at < 0:
        raise UsageError(f"cannot read the CREATE TABLE statement: {sql[:80]!r}")
    bounds = [open_at + 1, *[c + 1 for c in commas]]
    ends = [*commas, close_at]
    items = tuple(_item(sql[start:end]) for start, end in zip(bounds, ends, strict=True))
    return TableText(header=sql[: open_at + 1], items=items, tail=sql[close_at:])


def _item(text: str) -> Item:
    toks = _tokens(text)
    names = frozenset(fold(ident_value(text[t.start : t.end])) for t in toks if t.kind in ("word", "ident"))
    if not toks:
        return Item(text, None, names)
    first = toks[0]
    word = text[first.start : first.end]
    if first.kind == "word" and word.lower() in TABLE_CONSTRAINT_WORDS:
        return Item(text, None, names)
    return Item(text, ident_value(word), names)


def repoint_references(sql: str, old: str, new: str) -> str:
    """Rewrite `REFERENCES old` to `REFERENCES "new"` everywhere in a CREATE TABLE statement."""
    out: list[str] = []
    pos = 0
    toks = _tokens(sql)
    for i, tok in enumerate(toks[:-1]):
        if tok.kind == "word" and sql[tok.start : tok.end].lower() == "references":
            target = toks[i + 1]
            if _is_name(target) and fold(ident_value(sql[target.start : target.end])) == fold(old):
                out.append(sql[pos : target.start])
                out.append(quote_ident(new))
                pos = target.end
    out.append(sql[pos:])
    return "".join(out)


def references(sql: str, name: str) -> bool:
    """Whether a CREATE TABLE statement has a REFERENCES clause naming `name`."""
    return repoint_references(sql, name, "\x00") != sql


def rename_index_target(sql: str, table: str) -> str:
    """Point `CREATE [UNIQUE] INDEX name ON table (...)` at another table, keeping the rest."""
    toks = _tokens(sql)
    for i, tok in enumerate(toks[:-1]):
        if tok.kind == "word" and sql[tok.start : tok.end].lower() == "on":
            target = toks[i + 1]
            return sql[: target.start] + quote_ident(table) + sql[target.end :]
    raise UsageError(f"cannot read the CREATE INDEX statement: {sql[:80]!r}")


def mentioned_names(sql: str) -> frozenset[str]:
    """Folded identifiers in a piece of SQL (index keys, WHERE clauses): what columns it may use."""
    return frozenset(fold(ident_value(sql[t.start : t.end])) for t in _tokens(sql) if t.kind in ("word", "ident"))
