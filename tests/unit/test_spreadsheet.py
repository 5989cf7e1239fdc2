"""`zige.spreadsheet.formula_safe`: text a spreadsheet would run as a formula gets a leading
apostrophe; everything else is left exactly as it is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zige.spreadsheet import formula_safe

FORMULAS = [
    '=HYPERLINK("http://x","点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1",
    # After leading spaces or tabs, and the full-width forms (a Chinese input method types them;
    # Excel and WPS read ＝1+1 as =1+1): these went through as they were.
    "  =1+1", " +cmd|' /C calc'!A0", "   -2+3", " @SUM(A1)", "  \t=1", "\u3000=1+1", " \u3000 =1",
    "＝1+1", "＋1", "－2+3", "＠SUM(A1)", "  ＝HYPERLINK(\"http://x\")", "\u3000＋1",
]  # fmt: skip
PLAIN = ["张三", "140105195001011234", "13812345678", "太原市 = 并州", "", "1,000", "   ", " 张三", "\u3000",
         "a=1", "张 ＝ 三", "\n=1"]  # fmt: skip


@pytest.mark.parametrize("value", FORMULAS)
def test_formula_starts_are_quoted(value: str) -> None:
    assert formula_safe(value) == "'" + value


@pytest.mark.parametrize("value", PLAIN)
def test_other_text_is_unchanged(value: str) -> None:
    assert formula_safe(value) == value


def test_none_and_numbers() -> None:
    assert (formula_safe(None), formula_safe(12), formula_safe(-3)) == ("", "12", "'-3")


SAMPLES = [*FORMULAS, *PLAIN, "'=already text", None]


def test_the_sql_form_writes_what_formula_safe_writes() -> None:
    """`zige.engine.sql.formula_safe_sql` (the batch's CSVs, written by DuckDB) is `formula_safe`
    value for value; NULL stays NULL (an empty cell, as `formula_safe(None)` writes it)."""
    import duckdb

    from zige.engine.sql import formula_safe_sql

    con = duckdb.connect()
    con.execute("CREATE TABLE t (n INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(SAMPLES)))
    got = [v for (v,) in con.execute(f"SELECT {formula_safe_sql('v')} FROM t ORDER BY n").fetchall()]
    assert got == [None if v is None else formula_safe(v) for v in SAMPLES]


# Text built from the characters that matter (every formula start, the blanks skipped before one,
# look-alikes that are not, a quote, a newline) and a few ordinary ones, in any order.
_CHARS = "=+-@\t\r ＝＋－＠\u3000\u00a0\n'a1张"


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.text(alphabet=_CHARS, max_size=6) | st.text(max_size=6), min_size=1, max_size=40))
def test_the_sql_form_agrees_with_formula_safe_on_any_text(values: list[str]) -> None:
    """`formula_safe_sql` through DuckDB and `formula_safe` give the same cell for the same text."""
    import duckdb

    from zige.engine.sql import formula_safe_sql

    con = duckdb.connect()
    con.execute("CREATE TABLE t (n INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    got = [v for (v,) in con.execute(f"SELECT {formula_safe_sql('v')} FROM t ORDER BY n").fetchall()]
    assert got == [formula_safe(v) for v in values]
