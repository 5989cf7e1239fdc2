"""Calendar arithmetic the rules need: month indexes and clamped month addition."""

from __future__ import annotations

import calendar as _calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, clamped to the month end (2024-02-29 + 12 -> 2025-02-28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def month_index(day: date) -> int:
    """Months since year 0: consecutive months differ by one."""
    return day.year * 12 + day.month - 1


def month_label(index: int) -> str:
    """`YYYY-MM` for a month index."""
    year, month = divmod(index, 12)
    return f"{year:04d}-{month + 1:02d}"
