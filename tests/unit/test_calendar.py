"""Calendar arithmetic of the contract: due_on = C + 12 calendar months clamped to the month end
(spec §1), D + 3 calendar months for reminders (§2), months counted for payments (§8).

Expected values are written out from the spec's own example (2024-02-29 -> 2025-02-28) and the
calendar, not computed with the module under test.
"""

from __future__ import annotations

import calendar
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zige.calendar import add_months, month_index, month_label

ADD_MONTHS = [
    ("1-due-spec-example-leap-day-plus-12", "2024-02-29", 12, "2025-02-28"),
    ("1-due-leap-day-plus-24", "2024-02-29", 24, "2026-02-28"),
    ("1-due-leap-day-plus-48-is-leap-again", "2024-02-29", 48, "2028-02-29"),
    ("1-due-jan-31-plus-12-no-clamp", "2025-01-31", 12, "2026-01-31"),
    ("1-due-ordinary-day-plus-12", "2025-06-15", 12, "2026-06-15"),
    ("1-due-dec-31-plus-12", "2025-12-31", 12, "2026-12-31"),
    ("1-due-feb-28-plus-12-into-leap-year-stays-28", "2027-02-28", 12, "2028-02-28"),
    ("cal-jan-31-plus-1-clamped-to-feb-28", "2025-01-31", 1, "2025-02-28"),
    ("cal-jan-31-plus-1-clamped-to-feb-29-leap", "2024-01-31", 1, "2024-02-29"),
    ("cal-jan-30-plus-1-clamped", "2025-01-30", 1, "2025-02-28"),
    ("cal-jan-28-plus-1-exists", "2025-01-28", 1, "2025-02-28"),
    ("cal-mar-31-plus-1-clamped-to-apr-30", "2025-03-31", 1, "2025-04-30"),
    ("cal-aug-31-plus-1-clamped-to-sep-30", "2025-08-31", 1, "2025-09-30"),
    ("cal-jul-31-plus-1-exists", "2025-07-31", 1, "2025-08-31"),
    ("cal-dec-15-plus-1-across-year", "2025-12-15", 1, "2026-01-15"),
    ("cal-zero-months-is-identity", "2025-06-15", 0, "2025-06-15"),
    ("cal-negative-month-clamped", "2026-03-31", -1, "2026-02-28"),
    ("cal-negative-across-year", "2026-01-15", -1, "2025-12-15"),
    ("2-remind-D-plus-3-mar-31-to-jun-30", "2026-03-31", 3, "2026-06-30"),
    ("2-remind-D-plus-3-nov-30-to-feb-28", "2025-11-30", 3, "2026-02-28"),
    ("2-remind-D-plus-3-nov-30-to-feb-29-leap", "2027-11-30", 3, "2028-02-29"),
    ("2-remind-D-plus-3-dec-31-across-year", "2025-12-31", 3, "2026-03-31"),
    ("2-remind-D-plus-3-leap-day", "2028-02-29", 3, "2028-05-29"),
]


@pytest.mark.parametrize(("start", "months", "expected"), [pytest.param(*r[1:], id=r[0]) for r in ADD_MONTHS])
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(date.fromisoformat(start), months) == date.fromisoformat(expected)


MONTHS_BETWEEN = [
    ("8-same-month", "2026-03-01", "2026-03-31", 0),
    ("8-next-month", "2026-02-28", "2026-03-01", 1),
    ("8-across-year", "2025-12-31", "2026-01-01", 1),
    ("8-death-dec-to-D-mar", "2025-12-10", "2026-03-31", 3),
    ("8-whole-year", "2025-03-31", "2026-03-01", 12),
]


@pytest.mark.parametrize(
    ("earlier", "later", "months"), [pytest.param(*r[1:], id=r[0]) for r in MONTHS_BETWEEN]
)
def test_month_index_counts_calendar_months(earlier: str, later: str, months: int) -> None:
    assert month_index(date.fromisoformat(later)) - month_index(date.fromisoformat(earlier)) == months


MONTH_LABELS = [
    ("8-effective-month-after-dec-death-is-next-january", "2025-12-10", 1, "2026-01"),
    ("8-effective-month-after-nov", "2025-11-30", 1, "2025-12"),
    ("8-month-of-D", "2026-03-31", 0, "2026-03"),
    ("8-month-after-D", "2026-03-31", 1, "2026-04"),
    ("8-zero-padded", "2026-09-01", 0, "2026-09"),
    ("8-month-before-january", "2026-01-15", -1, "2025-12"),
]


@pytest.mark.parametrize(("day", "offset", "label"), [pytest.param(*r[1:], id=r[0]) for r in MONTH_LABELS])
def test_month_label(day: str, offset: int, label: str) -> None:
    assert month_label(month_index(date.fromisoformat(day)) + offset) == label


# --- properties ----------------------------------------------------------------------------------------

DAYS = st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31))
MONTHS = st.integers(-120, 120)


@given(DAYS, MONTHS)
def test_property_add_months_lands_in_the_right_month_clamped(day: date, months: int) -> None:
    result = add_months(day, months)
    assert month_index(result) == month_index(day) + months
    last = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(day.day, last)


@given(DAYS, st.integers(1, 120))
def test_property_add_positive_months_moves_forward(day: date, months: int) -> None:
    assert add_months(day, months) > day


@given(DAYS, DAYS, MONTHS)
def test_property_add_months_is_monotone(a: date, b: date, months: int) -> None:
    early, late = sorted((a, b))
    assert add_months(early, months) <= add_months(late, months)


@given(DAYS)
def test_property_month_label_is_year_dash_month(day: date) -> None:
    assert month_label(month_index(day)) == f"{day.year:04d}-{day.month:02d}"
