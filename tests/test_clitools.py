"""The CLI's error shape: a pgferry error or a database driver's error is one line and exit 2."""

from __future__ import annotations

import sqlite3

import click
import psycopg
import pytest
from click.testing import CliRunner

from pgferry.clitools import handle_errors
from pgferry.errors import SourceError


def _command(exc: BaseException) -> click.Command:
    @click.command()
    @handle_errors
    def boom() -> None:
        raise exc

    return boom


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (SourceError("db.sqlite: no such file"), "Error: db.sqlite: no such file"),
        (
            sqlite3.DatabaseError("database disk image is malformed"),
            "Error: SQLite said: database disk image is malformed",
        ),
        (
            psycopg.OperationalError("server closed the connection\nmore"),
            "Error: PostgreSQL said: server closed the connection",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(exc: BaseException, line: str) -> None:
    result = CliRunner().invoke(_command(exc))
    assert result.exit_code == 2
    assert result.output.strip() == line


def test_a_bug_is_not_hidden() -> None:
    result = CliRunner().invoke(_command(ValueError("a bug")))
    assert isinstance(result.exception, ValueError)
