"""What `zige certify` and `zige demo` print after a run: counts and amounts with separators."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from zige import cli


def test_the_summary_prints_amounts_and_reminders_readably(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=buffer, width=200, color_system=None))
    summary = {
        "as_of": "2026-11-30", "status": {"eligible": 3}, "status_reason": {"eligible/app_auth": 3}, "recipients": 3,
        "files": [], "reconciles": True,
        "totals": {"rows_read": 3, "rows_used": 3, "rows_rejected": 0, "duplicate_rows": 0},
        "actions": {"stop": {"count": 1204, "amount": "24975057.1"}},
        "reminders": {"total": 2902, "channel": {"sms": 2244, "unit": 658}},
    }  # fmt: skip
    cli._print_summary(summary, Path("out"))
    text = buffer.getvalue()
    assert "stop 1,204 (24,975,057.10 yuan)" in text
    assert "reminders: 2,902 (sms 2,244, unit 658)" in text and "{" not in text
