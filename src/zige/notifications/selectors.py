"""Reminders (reads): a person's reminder history, a unit's notice list, a unit's deadline SMS,
the operator's status."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, Max, QuerySet

from zige.accounts.scoping import scope_by_unit_field, scope_recipients
from zige.notifications.models import InboxFile, InboxStatus, JobRun, Kind, Message, MessageStatus
from zige.roster.models import Recipient, Unit


def person_messages(recipient: Recipient, user: Any) -> QuerySet[Message]:
    return (
        scope_recipients(Message.objects.filter(recipient=recipient), user)
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-pk")
    )


def unit_notices(unit: Unit, user: Any, *, due_from: date | None = None) -> QuerySet[Message]:
    """The unit's notice list: its people without a mobile number who are to be reminded,
    nearest deadline first; with `due_from`, only the notices whose deadline is that day or later
    (the ones still to act on: a notice stays `listed`, so the list keeps every cycle's).
    "Its people" are the people in the unit now (docs/security.md): a notice written before a
    person moved is the new unit's, and never the old one's (the roster import also moves it,
    `services.messages_reassign`)."""
    qs = Message.objects.filter(recipient__unit=unit, channel="unit").exclude(status=MessageStatus.CANCELLED)
    if due_from is not None:
        qs = qs.filter(due_on__gte=due_from)
    return (
        scope_by_unit_field(qs, user, "recipient__unit_id")
        .select_related("recipient")
        .order_by("due_on", "recipient__person_no", "kind")
    )


def unit_sms(user: Any, unit: Unit | None = None) -> QuerySet[Message]:
    """The SMS sent to units about their verification tasks' deadlines, newest first: `unit`'s
    or every unit the user may see (a unit operator: their own only)."""
    qs = Message.objects.filter(kind=Kind.UNIT_DEADLINE)
    if unit is not None:
        qs = qs.filter(unit=unit)
    return scope_by_unit_field(qs, user, "unit_id").select_related("unit").order_by("-created_at", "-pk")


def outbox_counts() -> dict[str, int]:
    return dict(Message.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))


def latest_jobs() -> list[JobRun]:
    """The newest entry of each job (the scheduler's heartbeat: one per process)."""
    latest = JobRun.objects.values("job").annotate(last=Max("started_at"))
    rows = []
    for row in latest:
        job = JobRun.objects.filter(job=row["job"], started_at=row["last"]).order_by("-pk").first()
        if job is not None:
            rows.append(job)
    return sorted(rows, key=lambda j: j.job)


def latest_summary() -> JobRun | None:
    return JobRun.objects.filter(job="summary").order_by("-started_at").first()


def quarantined(limit: int = 20) -> list[InboxFile]:
    return list(InboxFile.objects.filter(status=InboxStatus.QUARANTINED).order_by("-picked_at")[:limit])


def failed_messages(limit: int = 20) -> list[Message]:
    return list(
        Message.objects.filter(status=MessageStatus.FAILED)
        .select_related("recipient", "unit")
        .order_by("-pk")[:limit]
    )
