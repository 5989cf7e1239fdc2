"""SMS to a unit whose verification tasks near their deadline (核实任务到期提醒，短信).

`unit_deadline_messages` is called by `zige.verification.services.tasks_sweep` inside the
transaction that writes the sweep's `TaskReminder` rows: the SMS exists if and only if its
reminders do. For every unit and threshold with new reminders that day it writes ONE `Message`
(kind `unit_deadline`, channel `sms`) to the unit's contact mobile: how many tasks, the earliest
deadline. A unit whose `phone` is not a mainland mobile number (a landline, nothing) gets none
— its staff see the reminders on the task page. The unique constraint
`one_unit_sms_per_threshold_day` makes a second SMS for the same unit, threshold and day
impossible. The gateway is called later, by the same sender as the recipients' SMS
(`services.messages_send_due`: lease, retries, quiet hours, rate limit, receipts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime

from django.db import transaction

from zige.audit.services import audit_record
from zige.notifications.config import NotifyConfig, current
from zige.notifications.content import (
    TemplateError,
    check_unit_template,
    normalise_mobile,
    render_unit_deadline,
)
from zige.notifications.models import Channel, Kind, Message, MessageStatus
from zige.roster.models import Unit


@dataclass(frozen=True)
class DueTask:
    """A task the sweep has just reminded its unit of."""

    unit_id: int
    days_before: int
    deadline: date


def unit_mobile(phone: str | None) -> str:
    """The unit's number to text (11 digits), or '' (a landline, nothing): the recipients' rule."""
    return normalise_mobile(phone)


def unit_deadline_messages(
    *, tasks: Iterable[DueTask], day: date, now: datetime, config: NotifyConfig | None = None
) -> dict[str, int]:
    """Write one SMS per unit and threshold of `tasks` (in the caller's transaction); returns
    counts: `unit_sms` written, `unit_no_mobile` units without a mobile number."""
    config = config or current()
    groups: dict[tuple[int, int], list[date]] = {}
    for t in tasks:
        groups.setdefault((t.unit_id, t.days_before), []).append(t.deadline)
    counts = {"unit_sms": 0, "unit_no_mobile": 0}
    if not groups or not config.unit_sms:
        return counts
    with transaction.atomic():
        problems = check_unit_template(config)
        if problems:  # the reminders stand; the SMS are not written (audited, shown by `zige status`)
            audit_record(action="messages.skipped", target_type="unit_deadline_messages",
                         target_id=day.isoformat(), at=now, after={"problems": problems})  # fmt: skip
            return counts
        units = {
            pk: (unit_no, unit_mobile(phone))
            for pk, unit_no, phone in Unit.objects.filter(pk__in=sorted({u for u, _ in groups})).values_list(
                "pk", "unit_no", "phone"
            )
        }
        messages = []
        no_mobile: set[int] = set()
        for (unit_id, days_before), deadlines in sorted(groups.items()):
            unit_no, mobile = units[unit_id]
            if not mobile:
                no_mobile.add(unit_id)
                continue
            messages.append(
                _message(unit_id=unit_id, unit_no=unit_no, mobile=mobile, days_before=days_before,
                         deadlines=deadlines, day=day, now=now, config=config)
            )  # fmt: skip
        written = Message.objects.filter(kind=Kind.UNIT_DEADLINE, sweep_day=day)
        before = written.count()
        Message.objects.bulk_create(messages, batch_size=2000, ignore_conflicts=True)
        counts = {"unit_sms": written.count() - before, "unit_no_mobile": len(no_mobile)}
        audit_record(action="messages.created", target_type="unit_deadline_messages",
                     target_id=day.isoformat(), at=now, after=counts)  # fmt: skip
    return counts


def _message(
    *, unit_id: int, unit_no: str, mobile: str, days_before: int, deadlines: list[date], day: date,
    now: datetime, config: NotifyConfig,
) -> Message:  # fmt: skip
    earliest = min(deadlines)
    try:
        rendered = render_unit_deadline(
            config, unit_no=unit_no, count=len(deadlines), due_on=earliest, days_before=days_before
        )
    except TemplateError:  # an unusually long unit number: one more SMS part rather than no SMS
        rendered = render_unit_deadline(
            replace(config, max_segments=99), unit_no=unit_no, count=len(deadlines), due_on=earliest,
            days_before=days_before,
        )  # fmt: skip
    return Message(
        recipient=None, run=None, unit_id=unit_id, kind=Kind.UNIT_DEADLINE, channel=Channel.SMS, due_on=earliest,
        mobile=mobile, text=rendered.text, params=rendered.params, segments=rendered.segments,
        days_before=days_before, sweep_day=day, task_count=len(deadlines), created_at=now, next_attempt_at=now,
        status=MessageStatus.QUEUED,
    )  # fmt: skip
