"""A small SQL lexer shared by the .sql splitter and the fingerprint fallback.

It only needs to know where strings, quoted identifiers, comments, numbers and parameter markers
begin and end, for SQLite and PostgreSQL text alike; it does not parse. Keeping one lexer means the
splitter and the fingerprints agree on what is inside a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

# Order matters: longer and more specific alternatives first.
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>
        [Ee]'(?:[^'\\]|\\.|'')*'                              # PostgreSQL E'...' (backslash escapes)
      | (?:[XxBbNn]|[Uu]&)?'(?:[^']|'')*'                     # '...', X'..', B'..', N'..', U&'..'
      | \$(?P<tag>(?:[^\W\d]\w*)?)\$.*?\$(?P=tag)\$          # PostgreSQL $tag$...$tag$
    )
  | (?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<number>0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op>::|<>|!=|<=|>=|==|\|\||->>|->|<<|>>|@>|<@|\#>>|\#>|%%)
  | (?P<param>\?\d*|[:@$][^\W\d][\w$]*|\$\d+|(?<![\w\]):]):\d+|%\([^)]*\)s|%s)  # `:1` not in a[1:2]
  | (?P<word>[^\W\d][\w$]*)
  | (?P<semi>;)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Starts of tokens that may span lines: if one of these does not close, more text is needed.
_OPENER = re.compile(r"""(?:[Ee]|[XxBbNn]|[Uu]&)?'|"|`|\[|/\*|\$(?:[^\W\d]\w*)?\$""")

QUOTED_KINDS = frozenset({"string", "ident", "comment"})


class Token(NamedTuple):
    kind: str  # ws comment string ident number op param word semi other unterminated
    start: int
    end: int


def scan(text: str, pos: int = 0, *, final: bool = True) -> Iterator[Token]:
    """Yield tokens of `text` from `pos`.

    With final=False the scan stops before a token that touches the end of `text` or an opened
    string/comment that does not close, because more text may change it (streaming). With
    final=True an unclosed string, quoted identifier or dollar quote becomes one `unterminated`
    token to the end, an unclosed block comment a comment, and an unclosed `[` a plain character.
    """
    n = len(text)
    match = _TOKEN.match
    opener = _OPENER.match
    while pos < n:
        m = match(text, pos)
        assert m is not None  # `other` matches any character
        kind = m.lastgroup or "other"
        if kind == "tag":  # lastgroup can name the inner group of a dollar quote
            kind = "string"
        end = m.end()
        if kind not in QUOTED_KINDS:
            o = opener(text, pos)
            if o is not None:
                if not final:
                    return
                head = o.group()
                if head == "/*":
                    kind, end = "comment", n
                elif head != "[":
                    kind, end = "unterminated", n
        if not final and end == n:
            return
        yield Token(kind, pos, end)
        pos = end
