"""`zige.spreadsheet.formula_safe`: text a spreadsheet would run as a formula gets a leading
apostrophe; everything else is left exactly as it is."""

from __future__ import annotations

import pytest

from zige.spreadsheet import formula_safe


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://x","点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"],
)
def test_formula_starts_are_quoted(value: str) -> None:
    assert formula_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["张三", "140105195001011234", "13812345678", "太原市 = 并州", "", "1,000"])
def test_other_text_is_unchanged(value: str) -> None:
    assert formula_safe(value) == value


def test_none_and_numbers() -> None:
    assert (formula_safe(None), formula_safe(12), formula_safe(-3)) == ("", "12", "'-3")


SAMPLES = [
    '=HYPERLINK("http://x","点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1",
    "张三", "140105195001011234", "'=already text", "太原市 = 并州", "", None,
]  # fmt: skip


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
