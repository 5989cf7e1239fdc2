"""Verification tasks (核实任务): writes. Placeholder until the verification work lands."""

from __future__ import annotations

from datetime import datetime


def tasks_for_run(*, run_id: int, now: datetime) -> None:
    """Open a task for every pending/review recipient of the run (not yet implemented)."""
