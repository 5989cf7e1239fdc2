"""Settings of the ledger and of 附件2, from the environment (docs/special-groups.md).

- `ZIGE_SPECIAL_AGE` (80): the age from which a person counts as very old (高龄); the same
  setting the verification app reads.
- `ZIGE_LEDGER_PERIOD` (`year`): the visiting period. `year` is the certification year, 1 January
  of the as-of date's year through the as-of date; a number `N` is the N months up to the as-of
  date (`12`: the 12 months a certification lasts).
- `ZIGE_HOME_PROVINCE` (`14`, Shanxi) and `ZIGE_INSURED_REGION` (default `<province>0000`): who is
  from another province, and 附件2's 参保地行政区划 (as `zige certify --home-province/--insured-region`).
- `ZIGE_REMOTE_CERT_KINDS` (`app_auth`): the feed kinds that carry the results of remote
  certification (the national platform's 掌上12333 face check arrives as 手机APP刷脸认证).

Each is also read from a Django setting of the same name. Tests replace the whole object:
`settings.ZIGE_LEDGER = LedgerConfig(...)`.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class LedgerConfig:
    very_old_age: int = 80
    period: str = "year"  # "year" or a number of months
    home_province: str = "14"
    insured_region: str = ""
    remote_kinds: tuple[str, ...] = ("app_auth",)

    @property
    def region_code(self) -> str:
        return self.insured_region or f"{self.home_province}0000"

    def period_start(self, as_of: date) -> date:
        """The first day of the visiting period that ends on `as_of` (both included)."""
        if self.period == "year":
            return date(as_of.year, 1, 1)
        months = int(self.period)
        return _months_before(as_of, months) + timedelta(days=1)


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def from_environ(env: Mapping[str, str]) -> LedgerConfig:
    try:
        age = int(env.get("ZIGE_SPECIAL_AGE", "80"))
    except ValueError:
        raise ConfigError("ZIGE_SPECIAL_AGE must be a whole number of years") from None
    if not 50 <= age <= 120:
        raise ConfigError(f"ZIGE_SPECIAL_AGE={age} is outside 50..120")
    period = env.get("ZIGE_LEDGER_PERIOD", "year").strip().lower() or "year"
    if period != "year" and not (period.isdigit() and 1 <= int(period) <= 36):
        raise ConfigError(f"ZIGE_LEDGER_PERIOD={period!r}: use 'year' or a number of months (1..36)")
    province = env.get("ZIGE_HOME_PROVINCE", "14").strip()
    if not (len(province) == 2 and province.isdigit()):
        raise ConfigError(f"ZIGE_HOME_PROVINCE must be two digits, not {province!r}")
    region = env.get("ZIGE_INSURED_REGION", "").strip()
    if region and not (len(region) == 6 and region.isdigit()):
        raise ConfigError(f"ZIGE_INSURED_REGION must be a 6-digit 行政区划 code, not {region!r}")
    kinds = tuple(k.strip() for k in env.get("ZIGE_REMOTE_CERT_KINDS", "app_auth").split(",") if k.strip())
    return LedgerConfig(
        very_old_age=age, period=period, home_province=province, insured_region=region, remote_kinds=kinds
    )


def current() -> LedgerConfig:
    configured = getattr(settings, "ZIGE_LEDGER", None)
    if isinstance(configured, LedgerConfig):
        return configured
    env = dict(os.environ)
    for name in _NAMES:  # a Django setting of the same name wins over the environment
        if hasattr(settings, name):
            env[name] = str(getattr(settings, name))
    return from_environ(env)


_NAMES = (
    "ZIGE_SPECIAL_AGE",
    "ZIGE_LEDGER_PERIOD",
    "ZIGE_HOME_PROVINCE",
    "ZIGE_INSURED_REGION",
    "ZIGE_REMOTE_CERT_KINDS",
)
