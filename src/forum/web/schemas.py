"""Request bodies and parameter limits: what the API accepts, declared once for validation and OpenAPI.

Every string has a maximum length and every id a range, so bad input becomes a 422 with a message
before it reaches the database (an id past 2**63 would otherwise overflow SQLite's integer binding,
a lone surrogate would fail to encode: both 500s). Responses are the store's records.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1
MAX_CONTENT = 20_000
MAX_WIKI = 100_000


def _storable(text: str) -> str:
    """Refuse text a backend cannot store: lone surrogates (valid in JSON escapes, not in UTF-8) and
    NUL (PostgreSQL's text cannot hold U+0000)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if "\x00" in text:
        raise ValueError("text must not contain NUL (U+0000)")
    return text


NO_NUL = r"^[^\x00]*$"  # said in the schema too, so a client (or schemathesis) knows NUL is refused


def _text(min_length: int, max_length: int, pattern: str = NO_NUL) -> object:
    return Annotated[
        str, Field(min_length=min_length, max_length=max_length, pattern=pattern), AfterValidator(_storable)
    ]


Username = _text(3, 50, r"^[A-Za-z0-9_.-]+$")
# Whitespace spelled out, not \s: JSON Schema (ECMA) and Python's re disagree on U+0085.
Email = _text(3, 255, r"^[^@ \t\n\r\f\v\x00]+@[^@ \t\n\r\f\v\x00]+\.[^@ \t\n\r\f\v\x00]+$")
Password = _text(8, 128)
Title = _text(1, 255)
Content = _text(1, MAX_CONTENT)
# Tags are stored in lower case; the pattern admits either case so the schema says what is accepted.
TagName = Annotated[_text(1, 50, r"^[A-Za-z0-9][A-Za-z0-9+#._-]*$"), AfterValidator(str.lower)]  # type: ignore[misc]
Slug = _text(1, 200, r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
Comment = _text(1, 255)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
SlugPath = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
TagPath = Annotated[str, Path(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9+#._-]*$")]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description="The next_cursor of the previous page."),
]
SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=100,
        pattern=NO_NUL,
        description="Text to find in titles, any case; % and _ are literal.",
    ),
    AfterValidator(_storable),
]
Status = Literal["open", "closed", "archived"]


class _Body(BaseModel):
    # No whitespace stripping: the schema could not say it (Python's whitespace is not JSON Schema's).
    model_config = ConfigDict(extra="forbid")


class RegisterIn(_Body):
    username: Username  # type: ignore[valid-type]
    email: Email  # type: ignore[valid-type]
    password: Password  # type: ignore[valid-type]
    display_name: _text(1, 100) | None = None  # type: ignore[valid-type]


class LoginIn(_Body):
    username: _text(1, 255)  # type: ignore[valid-type]
    password: _text(1, 128)  # type: ignore[valid-type]


class TopicIn(_Body):
    category_id: int = Field(ge=1, le=MAX_ID)
    title: Title  # type: ignore[valid-type]
    content: Content  # type: ignore[valid-type]
    tags: list[TagName] = Field(default_factory=list, max_length=10)  # type: ignore[valid-type]


class TopicEdit(_Body):
    title: Title | None = None  # type: ignore[valid-type]
    content: Content | None = None  # type: ignore[valid-type]


class ReplyIn(_Body):
    content: Content  # type: ignore[valid-type]


class WikiIn(_Body):
    slug: Slug  # type: ignore[valid-type]
    title: Title  # type: ignore[valid-type]
    content: _text(1, MAX_WIKI)  # type: ignore[valid-type]
    comment: Comment | None = None  # type: ignore[valid-type]


class WikiEdit(_Body):
    content: _text(1, MAX_WIKI)  # type: ignore[valid-type]
    title: Title | None = None  # type: ignore[valid-type]
    comment: Comment | None = None  # type: ignore[valid-type]
    minor: bool = False


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorOut(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


class Marked(BaseModel):
    marked: int


class Health(BaseModel):
    status: str
    mode: str
    pid: int  # the server process that answered (one of several with `forum serve --workers N`)
    database: dict[str, object]
    cache: dict[str, object] | None = None  # pgferry.runtime.cache's stats() when the caches are on
