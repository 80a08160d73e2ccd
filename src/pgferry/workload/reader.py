"""Read a workload, one statement at a time, from a JSON Lines log or a plain .sql file.

Both readers stream (memory does not grow with the file), so a day of captured statements can be
summarized on a small machine. `.gz` files are decompressed on the fly.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, cast

from pgferry.errors import WorkloadError
from pgferry.workload.lex import scan
from pgferry.workload.record import Statement

Format = Literal["jsonl", "sql"]

_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json", ".log"}
_CHUNK = 1 << 16


def detect_format(path: str | os.PathLike[str]) -> Format:
    """`.sql` -> sql; `.jsonl`, `.ndjson`, `.json`, `.log` -> jsonl (a `.gz` after them is allowed);
    anything else: jsonl when the first non-blank character is `{`, else sql."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] == ".sql":
        return "sql"
    if suffixes and suffixes[-1] in _JSONL_SUFFIXES:
        return "jsonl"
    with _open_binary(p) as f:
        try:
            while chunk := f.read(4096):
                stripped = chunk.lstrip()
                if stripped:
                    return "jsonl" if stripped[:1] == b"{" else "sql"
        except (OSError, EOFError, zlib.error) as exc:
            raise WorkloadError(f"cannot read workload file {p}: {exc}") from None
    return "jsonl"


def read_workload(
    path: str | os.PathLike[str], *, format: Format | None = None, strict: bool = False
) -> Iterator[Statement]:
    """Yield the statements of a workload file (JSON Lines or .sql, see docs/workload-format.md).

    Raises WorkloadError naming the file (and the line, for malformed content). A last JSON line
    cut short by a crash (no newline, not valid JSON) is skipped unless `strict`.
    """
    p = Path(path)
    if not p.exists():
        raise WorkloadError(f"workload file not found: {p}")
    if p.is_dir():
        raise WorkloadError(f"workload file {p} is a directory, expected a .jsonl or .sql file")
    fmt = format or detect_format(p)
    if fmt == "jsonl":
        return _read_jsonl(p, strict=strict)
    if fmt == "sql":
        return _read_sql(p)
    raise WorkloadError(f"unknown workload format {fmt!r}: use 'jsonl' or 'sql'")


def _open_binary(path: Path) -> IO[bytes]:
    try:
        if path.suffix.lower() == ".gz":
            return cast(IO[bytes], gzip.open(path, "rb"))  # a GzipFile is a binary file
        return open(path, "rb")  # closed by the caller's with-block
    except OSError as exc:
        raise WorkloadError(f"cannot open workload file {path}: {exc.strerror or exc}") from None


def _read_jsonl(path: Path, *, strict: bool) -> Iterator[Statement]:
    with _open_binary(path) as f:
        lineno = 0
        try:
            for lineno, raw in enumerate(f, 1):  # lineno is also used after the loop
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw)
                except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                    if not strict and not raw.endswith(b"\n"):
                        return  # the line in flight when the writer crashed
                    raise WorkloadError(f"{path}, line {lineno}: not valid JSON ({_reason(exc)})") from None
                try:
                    yield Statement.from_dict(data)
                except WorkloadError as exc:
                    raise WorkloadError(f"{path}, line {lineno}: {exc}") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise WorkloadError(f"cannot read workload file {path} after line {lineno}: {exc}") from None


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    return str(exc)


def _read_sql(path: Path) -> Iterator[Statement]:
    splitter = SqlSplitter()
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        try:
            while chunk := text.read(_CHUNK):
                for sql in splitter.feed(chunk):
                    yield Statement(sql=sql)
            for sql in splitter.finish():
                yield Statement(sql=sql)
        except UnicodeDecodeError as exc:
            raise WorkloadError(f"{path}, near line {splitter.line}: not UTF-8 ({exc.reason})") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise WorkloadError(f"cannot read workload file {path}: {exc}") from None
        except _Unterminated as exc:
            raise WorkloadError(
                f"{path}, line {exc.line}: unterminated quoted string or identifier (a missing closing quote)"
            ) from None


# --- splitting .sql text ---------------------------------------------------------------------------

# Token classes and transitions of SQLite's sqlite3_complete(): a `;` ends a statement except inside
# CREATE TRIGGER, where only `; END ;` does (so `CASE ... END;` in a trigger body does not).
_SEMI, _WS, _OTHER, _EXPLAIN, _CREATE, _TEMP, _TRIGGER, _END = range(8)
_KEYWORDS = {
    "explain": _EXPLAIN,
    "create": _CREATE,
    "temp": _TEMP,
    "temporary": _TEMP,
    "trigger": _TRIGGER,
    "end": _END,
}
_TRANS = (
    # SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END
    (1, 0, 2, 3, 4, 2, 2, 2),  # 0 invalid (start of input)
    (1, 1, 2, 3, 4, 2, 2, 2),  # 1 start (after a complete statement)
    (1, 2, 2, 2, 2, 2, 2, 2),  # 2 normal
    (1, 3, 3, 2, 4, 2, 2, 2),  # 3 explain
    (1, 4, 2, 2, 2, 4, 5, 2),  # 4 create
    (6, 5, 5, 5, 5, 5, 5, 5),  # 5 trigger body
    (6, 6, 5, 5, 5, 5, 5, 7),  # 6 semicolon inside a trigger body
    (1, 7, 5, 5, 5, 5, 5, 5),  # 7 END after a semicolon inside a trigger body
)


class _Unterminated(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class SqlSplitter:
    """Split SQL text fed in pieces into statements, the way sqlite3.complete_statement sees them.

    Quotes ('...', "...", `...`, [...], E'...', $tag$...$tag$), comments and trigger bodies are
    respected; comments before and after a statement and its final `;` are dropped; empty
    statements are skipped.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._pos = 0  # scanned up to here
        self._start: int | None = None  # first non-blank token of the statement being read
        self._end = 0  # end of its last non-blank token (trailing comments are left out)
        self._state = 0
        self.line = 1  # line number of self._buf[0]

    def feed(self, text: str, *, final: bool = False) -> list[str]:
        """Add text; return the statements it completed."""
        self._buf += text
        buf = self._buf
        out: list[str] = []
        cut = 0
        for tok in scan(buf, self._pos, final=final):
            self._pos = tok.end
            kind = tok.kind
            if kind == "unterminated":
                raise _Unterminated(self.line + buf.count("\n", 0, tok.start))
            if kind in ("ws", "comment"):
                cls = _WS
            elif kind == "semi":
                cls = _SEMI
            elif kind == "word":
                cls = _KEYWORDS.get(_word(buf, tok.start, tok.end), _OTHER)
            else:
                cls = _OTHER
            if cls != _WS and cls != _SEMI and self._start is None:
                self._start = tok.start
            self._state = _TRANS[self._state][cls]
            if cls == _SEMI and self._state == 1:
                if self._start is not None:
                    out.append(buf[self._start : self._end])
                self._start = None
                cut = tok.end
            elif cls != _WS and self._start is not None:
                self._end = tok.end
        if cut:
            self.line += buf.count("\n", 0, cut)
            self._buf = buf[cut:]
            self._pos -= cut
            if self._start is not None:
                self._start -= cut
                self._end -= cut
        return out

    def finish(self) -> list[str]:
        """End of input: return the last statement, if it had no closing `;`."""
        out = self.feed("", final=True)
        if self._start is not None:
            out.append(self._buf[self._start : self._end].removesuffix(";").rstrip())
        self._buf, self._pos, self._start, self._end, self._state = "", 0, None, 0, 0
        return out


def _word(buf: str, start: int, end: int) -> str:
    """Lower-cased word, only for the few words the state machine cares about (short check first)."""
    return buf[start:end].lower() if end - start <= 9 else ""


def split_sql(text: str) -> list[str]:
    """Split a whole SQL script into statements (see SqlSplitter)."""
    splitter = SqlSplitter()
    return splitter.feed(text) + splitter.finish()
