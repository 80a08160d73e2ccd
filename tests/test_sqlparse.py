"""pgferry parses quietly without changing sqlglot's logging for the application around it."""

from __future__ import annotations

import logging

import pytest
import sqlglot

import pgferry.doctor.predicates
import pgferry.sqlite.schema  # modules that used to reset sqlglot's level at import
from pgferry.sqlparse import parse_one, quiet_sqlglot

# sqlglot warns that it does not support this and falls back to a Command
UNSUPPORTED = "VACUUM INTO 'backup.db'"


def test_the_applications_sqlglot_logger_keeps_its_level_and_records() -> None:
    assert logging.getLogger("sqlglot").level == logging.NOTSET
    assert pgferry.doctor.predicates.analyze_statement  # imported: nothing changed at import


def test_warnings_are_dropped_while_pgferry_parses(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        sqlglot.parse_one(UNSUPPORTED, read="sqlite")
        outside = len(caplog.records)
        caplog.clear()
        parse_one(UNSUPPORTED)
        with quiet_sqlglot():
            sqlglot.parse_one(UNSUPPORTED, read="sqlite")
        inside = len(caplog.records)
        sqlglot.parse_one(UNSUPPORTED, read="sqlite")  # quiet again only inside the block
    assert outside >= 1 and inside == 0 and len(caplog.records) >= 1
