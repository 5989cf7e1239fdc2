"""Payment actions and cases: writes. Placeholder until the benefits work lands."""

from __future__ import annotations

from datetime import datetime


def payment_actions_for_run(*, run_id: int, now: datetime) -> None:
    """Propose the payment actions a run implies (not yet implemented)."""
