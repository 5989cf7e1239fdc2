"""Settings of the verification work, each from Django settings or else the environment.

| name | default | meaning |
|---|---|---|
| `ZIGE_VERIFICATION_MONTHS` | 3 | the unit's deadline after the run (notice 三(一)1: 3个月内) |
| `ZIGE_VERIFICATION_DAYS` | (unset) | a deadline in days instead (overrides the months) |
| `ZIGE_REMINDER_DAYS` | `30,7` | reminders to the unit this many days before the deadline |
| `ZIGE_OVERDUE_SUSPENDS` | 1 | an overdue task proposes a suspension (notice 三(一)4) |
| `ZIGE_SPECIAL_AGE` | 80 | age from which a person counts as very old (高龄) |
| `ZIGE_UPLOAD_MAX_IMAGE_BYTES` | 10 MB | largest photo |
| `ZIGE_UPLOAD_MAX_VIDEO_BYTES` | 50 MB | largest video |
| `ZIGE_UPLOAD_MAX_PDF_BYTES` | 20 MB | largest PDF |
| `ZIGE_UPLOAD_MAX_FILES` | 20 | most evidence files in one report (all three kinds together) |
| `ZIGE_UPLOAD_MAX_TOTAL_BYTES` | 200 MB | most bytes of evidence files in one report |
| `ZIGE_VIRUS_SCAN` | (unset) | `module:function` taking (path) -> bool (clean), or a shell command with `{path}`; exit 0 = clean |
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings


def _value(name: str, default: Any) -> Any:
    if hasattr(settings, name):
        return getattr(settings, name)
    return os.environ.get(name, default)


def deadline_months() -> int:
    return int(_value("ZIGE_VERIFICATION_MONTHS", 3))


def deadline_days() -> int | None:
    value = _value("ZIGE_VERIFICATION_DAYS", None)
    return int(value) if value not in (None, "") else None


def reminder_days() -> tuple[int, ...]:
    value = _value("ZIGE_REMINDER_DAYS", "30,7")
    if isinstance(value, list | tuple):
        return tuple(sorted((int(v) for v in value), reverse=True))
    return tuple(sorted((int(v) for v in str(value).split(",") if v.strip()), reverse=True))


def overdue_suspends() -> bool:
    value = _value("ZIGE_OVERDUE_SUSPENDS", "1")
    return (
        value
        if isinstance(value, bool)
        else str(value).strip().lower() not in ("0", "false", "no", "off", "")
    )


def special_age() -> int:
    return int(_value("ZIGE_SPECIAL_AGE", 80))


def max_bytes(file_kind: str) -> int:
    if file_kind in ("jpeg", "png", "webp"):
        return int(_value("ZIGE_UPLOAD_MAX_IMAGE_BYTES", 10 * 1024 * 1024))
    if file_kind in ("mp4", "mov"):
        return int(_value("ZIGE_UPLOAD_MAX_VIDEO_BYTES", 50 * 1024 * 1024))
    return int(_value("ZIGE_UPLOAD_MAX_PDF_BYTES", 20 * 1024 * 1024))


def max_files() -> int:
    return int(_value("ZIGE_UPLOAD_MAX_FILES", 20))


def max_total_bytes() -> int:
    return int(_value("ZIGE_UPLOAD_MAX_TOTAL_BYTES", 200 * 1024 * 1024))


def virus_scan() -> str:
    return str(_value("ZIGE_VIRUS_SCAN", "") or "")
