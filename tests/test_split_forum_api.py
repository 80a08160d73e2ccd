"""The forum's API test suite, unchanged, against a database whose `users` table was split (legacy mode).

The suite's tests are collected again in this module; only the fixtures differ: the database copy is
split with `pgferry split users --auto --apply` before the app opens it, and the app runs in legacy
mode (the code that was not changed for the new schema). Two changes in the forum made it pass: the
store accepts `users` as a view, and registration looks the new id up by username when
`INSERT ... RETURNING id` returns NULL (it does on a view with INSTEAD OF triggers).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the whole suite again: about 40 s

import forum_fixtures  # noqa: E402
from pgferry.split import propose  # noqa: E402
from pgferry.split.apply import apply_split  # noqa: E402
from test_forum_api import *  # noqa: E402, F403  (the unchanged suite, re-collected with the fixtures below)


@pytest.fixture
def db_copy(seeded_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "forum.db"
    shutil.copy(seeded_db, path)
    apply_split(path, propose(path, "users"), measure=False)
    return path


@pytest.fixture
def api(db_copy: Path) -> Iterator[forum_fixtures.Api]:
    """The suite's `api` fixture, in legacy mode only."""
    forum = forum_fixtures.Forum.open(db_copy, "legacy", policy=forum_fixtures.FAST_AUTH)
    try:
        with forum_fixtures.TestClient(forum_fixtures.create_app(forum)) as client:
            yield forum_fixtures.Api(client, forum, db_copy, "legacy")
    finally:
        forum.close()
