"""The limits a payment action's figures are held to (docs/payments.md, "Figures beyond the
limits"): past them a figure is a typing slip in the data, not money to move. An officer's
proposal of such figures is refused; a run's is held for review and withdraws the person's run
proposal still awaiting approval (`zige.benefits.services._hold_beyond_limits`); the person's
page says so beside the run's figures."""

from __future__ import annotations

from decimal import Decimal

MONEY_LIMIT = Decimal(10) ** 14  # the amount columns are DecimalField(max_digits=16, decimal_places=2)
# More months than a pension can have been paid (100 years): a typing slip, refused before months ×
# 月养老金 overflows the amount column (SQLite stores it and then cannot read the row back).
MONTHS_LIMIT = 1200


def beyond_limits(*, months: int | None, amount: Decimal | int | str | None) -> str:
    """Why figures are past what any pension can be (more than `MONTHS_LIMIT` months, or an
    amount of 14 integer digits or more), or "" when they are not."""
    if months is not None and months > MONTHS_LIMIT:
        return f"月数 {months} 超出允许范围（不超过 {MONTHS_LIMIT} 个月）"
    if amount is not None and abs(Decimal(amount)) >= MONEY_LIMIT:
        return f"金额 {Decimal(amount):,.2f} 元超出允许范围（不超过 14 位整数）"
    return ""
