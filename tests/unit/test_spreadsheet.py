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
