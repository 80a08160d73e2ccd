"""Quoting round-trips through a real SQLite: any name and any text come back as they went in."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from pgferry.sqltext import quote_ident, quote_literal, sql_literal

# SQLite text cannot hold NUL inside SQL source; everything else, quotes included, must survive.
TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)


@given(name=TEXT.filter(bool))
def test_any_name_quoted_is_that_name(name: str) -> None:
    conn = sqlite3.connect(":memory:")
    cursor = conn.execute(f"SELECT 1 AS {quote_ident(name)}")
    assert cursor.description[0][0] == name


@given(text=TEXT)
def test_any_text_quoted_is_that_text(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    assert conn.execute(f"SELECT {quote_literal(text)}").fetchone()[0] == text


@given(value=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | TEXT)
def test_sql_literal_keeps_value_and_type(value: object) -> None:
    conn = sqlite3.connect(":memory:")
    assert conn.execute(f"SELECT {sql_literal(value)}").fetchone()[0] == value
