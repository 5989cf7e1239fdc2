"""Settings of reminders and unattended operation, from the environment (docs/notifications.md).

No Django import: `zige.web.settings` builds `ZIGE_NOTIFICATIONS` from `os.environ` with
`from_environ`; code reads it with `current()`, tests replace it with `dataclasses.replace`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time


class ConfigError(ValueError):
    pass


def _hhmm(text: str, name: str) -> time:
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a time HH:MM") from None


def _optional_time(text: str, name: str) -> time | None:
    return None if text.lower() in ("", "off", "none") else _hhmm(text, name)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekly(text: str, name: str) -> tuple[int, time] | None:
    """`sun 04:00` -> (6, 04:00) (Monday is 0, as `date.weekday`); `off` -> None."""
    if text.lower() in ("", "off", "none"):
        return None
    day, _, at = text.strip().partition(" ")
    if day.lower()[:3] not in WEEKDAYS:
        raise ConfigError(f"{name}={text!r} is not a weekday and a time, e.g. 'sun 04:00'")
    return WEEKDAYS.index(day.lower()[:3]), _hhmm(at, name)


@dataclass(frozen=True)
class NotifyConfig:
    gateway: str = "file"  # file | http
    provider: str = "aliyun"  # aliyun | tencent (http gateway)
    sms_url: str = ""
    access_key_id: str = ""
    access_key_secret: str = ""
    sdk_app_id: str = ""  # Tencent SmsSdkAppId
    region: str = "cn-hangzhou"
    sign_name: str = "山西人社"
    template_reminder_id: str = ""
    template_app_failed_id: str = ""
    template_unit_deadline_id: str = ""  # the unit's SMS about its tasks' deadlines
    outbox_file: str = ""  # file gateway: JSON lines; default ZIGE_DATA_DIR/sms/outbox.jsonl
    timeout_s: float = 10.0
    quiet_start: time = time(21, 0)  # no SMS from quiet_start ...
    quiet_end: time = time(8, 0)  # ... until quiet_end (local time)
    rate_per_minute: int = 60
    max_attempts: int = 8
    backoff_base_s: int = 60
    backoff_max_s: int = 3600
    lease_s: int = 120
    batch_size: int = 50
    callback_token: str = ""
    province: str = "14"
    app_name: str = "民生山西"
    # 外省户籍人员 (附件2) certify on the national platform's app (notice 三(二)3)
    remote_app_name: str = "掌上12333"
    service_points: str = "社区（村）社保服务站或县级社保经办机构"
    service_phone: str = "12333"
    template_reminder: str = ""  # override of the province's text (placeholders: see content.py)
    template_app_failed: str = ""
    template_unit: str = ""
    template_unit_deadline: str = ""
    unit_sms: bool = True  # the verification sweep texts a unit's mobile about its tasks' deadlines
    max_segments: int = 2
    daily_run_at: time | None = time(2, 0)  # None: no daily run
    daily_run_window_h: int = 6  # a scheduler started later than this after daily_run_at waits a day
    summary_at: time | None = time(7, 30)  # None: no summary
    # The weekly compaction of the evidence store (weekday, Monday 0; local time); None: none.
    store_compact_at: tuple[int, time] | None = (6, time(4, 0))
    schedule: bool = True  # `zige worker` runs the schedule beside the task queue
    inbox_settle_s: int = 30  # a file is picked up once it has not changed for this long
    tick_s: float = 30.0


def from_environ(env: Mapping[str, str]) -> NotifyConfig:
    def get(name: str, default: str = "") -> str:
        return env.get(name, default).strip()

    quiet = get("ZIGE_QUIET_HOURS", "21:00-08:00")
    if quiet.lower() in ("", "none", "off"):
        quiet_start = quiet_end = time(0, 0)
    else:
        start, _, end = quiet.partition("-")
        quiet_start, quiet_end = _hhmm(start, "ZIGE_QUIET_HOURS"), _hhmm(end, "ZIGE_QUIET_HOURS")
    gateway = get("ZIGE_SMS_GATEWAY", "file")
    provider = get("ZIGE_SMS_PROVIDER", "aliyun")
    if gateway not in ("file", "http"):
        raise ConfigError(f"ZIGE_SMS_GATEWAY={gateway!r}: expected file or http")
    if provider not in ("aliyun", "tencent"):
        raise ConfigError(f"ZIGE_SMS_PROVIDER={provider!r}: expected aliyun or tencent")
    d = NotifyConfig()
    return NotifyConfig(
        gateway=gateway,
        provider=provider,
        sms_url=get("ZIGE_SMS_URL"),
        access_key_id=get("ZIGE_SMS_KEY_ID"),
        access_key_secret=get("ZIGE_SMS_KEY_SECRET"),
        sdk_app_id=get("ZIGE_SMS_SDK_APP_ID"),
        region=get("ZIGE_SMS_REGION", d.region),
        sign_name=get("ZIGE_SMS_SIGN_NAME", d.sign_name),
        template_reminder_id=get("ZIGE_SMS_TEMPLATE_ID"),
        template_app_failed_id=get("ZIGE_SMS_TEMPLATE_ID_APP_FAILED"),
        template_unit_deadline_id=get("ZIGE_SMS_TEMPLATE_ID_UNIT_DEADLINE"),
        outbox_file=get("ZIGE_SMS_OUTBOX_FILE"),
        timeout_s=float(get("ZIGE_SMS_TIMEOUT", "10")),
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        rate_per_minute=int(get("ZIGE_SMS_RATE_PER_MINUTE", "60")),
        max_attempts=int(get("ZIGE_SMS_MAX_ATTEMPTS", "8")),
        callback_token=get("ZIGE_SMS_CALLBACK_TOKEN"),
        province=get("ZIGE_PROVINCE", d.province),
        app_name=get("ZIGE_APP_NAME", d.app_name),
        remote_app_name=get("ZIGE_REMOTE_APP_NAME", d.remote_app_name),
        service_points=get("ZIGE_SERVICE_POINTS", d.service_points),
        service_phone=get("ZIGE_SERVICE_PHONE", d.service_phone),
        template_reminder=get("ZIGE_SMS_TEXT_REMINDER"),
        template_app_failed=get("ZIGE_SMS_TEXT_APP_FAILED"),
        template_unit=get("ZIGE_UNIT_NOTICE_TEXT"),
        template_unit_deadline=get("ZIGE_SMS_TEXT_UNIT_DEADLINE"),
        unit_sms=get("ZIGE_UNIT_SMS", "1").lower() not in ("0", "off", "no", "false"),
        max_segments=int(get("ZIGE_SMS_MAX_SEGMENTS", "2")),
        daily_run_at=_optional_time(get("ZIGE_DAILY_RUN_AT", "02:00"), "ZIGE_DAILY_RUN_AT"),
        summary_at=_optional_time(get("ZIGE_SUMMARY_AT", "07:30"), "ZIGE_SUMMARY_AT"),
        store_compact_at=_weekly(get("ZIGE_STORE_COMPACT_AT", "sun 04:00"), "ZIGE_STORE_COMPACT_AT"),
        schedule=get("ZIGE_SCHEDULE", "1") not in ("0", "off", "no"),
        lease_s=int(get("ZIGE_SMS_LEASE_SECONDS", "120")),
        batch_size=int(get("ZIGE_SMS_BATCH_SIZE", "50")),
        backoff_base_s=int(get("ZIGE_SMS_BACKOFF_SECONDS", "60")),
        inbox_settle_s=int(get("ZIGE_INBOX_SETTLE_SECONDS", "30")),
        tick_s=float(get("ZIGE_SCHEDULER_TICK_SECONDS", "30")),
    )


def current() -> NotifyConfig:
    from django.conf import settings

    config = getattr(settings, "ZIGE_NOTIFICATIONS", None)
    return config if isinstance(config, NotifyConfig) else NotifyConfig()


def in_quiet_hours(config: NotifyConfig, local: time) -> bool:
    """True when `local` (a wall-clock time in the bureau's zone) is inside the quiet hours."""
    start, end = config.quiet_start, config.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end
