"""The one SQL string literal of both engines (``Dialect.literal``): any string reads back as itself,
escaped as the dialect requires; a string that cannot be SQL text (a lone surrogate) is refused."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from withdrawal.population.sql import Dialect, SparkDialect

DUCK = Dialect()
HARD = ("", "'", "''", "it's", "\\", "a\\'b", "\\'; DROP TABLE t; --", "a\x00b", "\x00", "%_|", "\r\n\t\x7f",
        "é 東京 😀 \u200b", "C:\\Users\\O'Brien\\export")
"""Quotes, backslashes (an escape in Spark, not in DuckDB), NUL (kept), control characters, Unicode."""


@settings(max_examples=300, deadline=None)
@given(text=st.text())  # every code point but the surrogates (which no SQL text can hold): NUL included
@example(text="'\\\x00")
def test_any_string_round_trips_through_the_literal_on_duckdb(text: str) -> None:
    con = duckdb.connect()
    assert con.execute(f"SELECT {DUCK.literal(text)}").fetchone() == (text,)
    # in a list, as the IN tests use them: each value is one literal, never two or none
    assert con.execute(f"SELECT ? IN {DUCK.literals(['x', text])}", [text]).fetchone() == (True,)


@pytest.mark.parametrize("text", HARD)
def test_the_hard_cases_round_trip_on_duckdb(text: str) -> None:
    assert duckdb.connect().execute(f"SELECT {DUCK.literal(text)}").fetchone() == (text,)


def test_the_spellings_of_a_quote_and_a_backslash() -> None:
    assert DUCK.literal("O'Brien\\x") == "'O''Brien\\x'"
    assert SparkDialect().literal("O'Brien\\x") == "'O\\'Brien\\\\x'"
    assert DUCK.literals(("a", "b")) == "('a', 'b')"


@pytest.mark.parametrize("d", [Dialect(), SparkDialect()])
def test_a_string_that_cannot_be_sql_text_is_refused(d: Dialect) -> None:
    with pytest.raises(ValueError, match="cannot be an SQL string literal"):
        d.literal("a\ud800b")
