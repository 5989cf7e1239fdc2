"""The command line's default dates are China Standard Time (settings.TIME_ZONE), not the host's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

# 20:00 UTC on 2031-06-30 is 04:00 on 2031-07-01 in China Standard Time.
UTC_EVENING = datetime(2031, 6, 30, 20, 0, tzinfo=UTC)


class _Stop(Exception):
    pass


@pytest.fixture
def china_morning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock where the UTC date and the China date differ (Django's `now`, which
    `timezone.localdate` reads, and the host's `date.today()` both moved)."""
    import datetime as stdlib_datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: UTC_EVENING)

    class _Date(stdlib_datetime.date):
        @classmethod
        def today(cls) -> date:  # the host clock, in UTC as on the servers
            return UTC_EVENING.date()

    monkeypatch.setattr("zige.cli.date", _Date, raising=False)


def test_today_is_the_china_date(china_morning: None) -> None:
    from zige.cli_common import today

    assert today() == date(2031, 7, 1)


def test_demo_defaults_to_the_china_date(
    china_morning: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import zige.demo
    from zige.cli import main

    seen: list[date] = []

    def generate_province(_dir: Path, *, as_of: date, **_kw: object) -> None:
        seen.append(as_of)
        raise _Stop

    monkeypatch.setattr(zige.demo, "generate_province", generate_province)
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--dir", str(tmp_path), "--recipients", "10"])
    assert isinstance(result.exception, _Stop), result.output
    assert seen == [date(2031, 7, 1)]
