"""Reminders (writes): create the messages of a run, send due SMS through a gateway, record
delivery receipts.

- `messages_for_run` is called by `zige.certification.services.run_execute` inside the
  transaction that stores the run's decisions: a reminder exists if and only if its decision
  does. The unique constraint on (recipient, due_on, channel, kind) makes re-runs harmless.
- `messages_cancel_for_terminated` is called by the roster import, in its transaction, for the
  people it terminates (待遇状态 终止): what of theirs has not gone out yet is cancelled.
- `messages_reassign` is called by the roster import, in its transaction, for the people it
  moves to another unit: what of theirs has not gone out yet goes to the new unit.
- `messages_send_due` claims a batch of due SMS with a lease, calls the gateway for each and
  records the outcome; it honours quiet hours and the rate limit and reads the time only
  through the `clock` it is given. A message whose earlier attempt was cut short (a crash, a
  kill) is first looked up at the gateway by our id, so it is never sent twice.
- `receipts_record` stores delivery reports from the gateway's callback, each once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Trim
from django.db.models.lookups import Exact
from django.utils import timezone

from zige.accounts.masking import mask_phone
from zige.audit.services import audit_record
from zige.certification.models import Decision, Run
from zige.feeds import store
from zige.feeds.models import PushedResult
from zige.notifications.config import NotifyConfig, current, in_quiet_hours
from zige.notifications.content import (
    REASON_NO_MOBILE,
    REASON_SMS_UNDELIVERABLE,
    Rendered,
    TemplateError,
    check_templates,
    normalise_mobile,
    render,
)
from zige.notifications.gateways import PERMANENT, SENT, Gateway, GatewayUnavailable, Outcome, SmsRequest
from zige.notifications.models import (
    AttemptOutcome,
    Channel,
    DeliveryAttempt,
    DeliveryReceipt,
    Kind,
    Message,
    MessageStatus,
)
from zige.roster.models import BenefitStatus, Recipient

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


# ---------------------------------------------------------------------------------------------
# Creating the messages of a run


def _app_failures(as_of: date) -> dict[str, date]:
    """id_number -> date of the newest app certification, for everyone whose newest one failed
    (from the app_auth feed imports and the results the app pushed)."""
    con = duckdb.connect()
    try:
        pushed = [
            (id_number.upper(), timezone.localtime(at).date(), result)
            for id_number, at, result in PushedResult.objects.filter(kind="app_auth").values_list(
                "id_number", "auth_time", "result"
            )
        ]
        con.register(
            "pushed",
            pa.table(
                {
                    "id_number": pa.array([p[0] for p in pushed], pa.string()),
                    "event_date": pa.array([p[1] for p in pushed], pa.date32()),
                    "sub": pa.array([p[2] for p in pushed], pa.string()),
                }
            ),
        )
        parts = ["SELECT id_number, event_date, sub FROM pushed"]
        files = store.evidence_files("app_auth").existing()
        if files:
            parts.append(f"SELECT id_number, event_date, sub FROM {store.parquet_list_sql(files)}")
        rows = con.execute(
            f"""
            SELECT id_number, max(event_date) FILTER (WHERE sub = 'fail') AS failed_on
            FROM ({" UNION ALL ".join(parts)}) WHERE event_date <= ? AND id_number IS NOT NULL
            GROUP BY id_number
            HAVING max(event_date) FILTER (WHERE sub = 'fail')
                   > coalesce(max(event_date) FILTER (WHERE sub = 'pass'), DATE '0001-01-01')
            """,
            [as_of],
        ).fetchall()
    finally:
        con.close()
    return {str(id_number): failed_on for id_number, failed_on in rows}


@dataclass
class _Row:
    recipient_id: int
    unit_id: int
    kind: str
    due_on: date
    event_on: date | None
    name: str
    person_no: str
    mobile: str
    unit_phone: str
    app: str = ""


def messages_for_run(*, run_id: int, now: datetime, config: NotifyConfig | None = None) -> dict[str, int]:
    """Write the reminders and app-failure notices of a succeeded run (in the caller's
    transaction); returns counts. Existing messages (same person, deadline, channel, kind) stay
    as they are: nobody is reminded twice. Only a cancelled one that this run's decisions call
    for again (the stop, suspension or termination that cancelled it was reversed) is restored
    (`_restore_cancelled`).

    A back-dated run (`certification.selectors.later_run`: another succeeded run has a later
    as-of date, docs/rules.md §8.4) writes, restores and cancels nothing on its decisions: its
    stale stop would cancel a reminder the later run wrote, its `remind` would write one the
    later run did not call for. Only what the roll itself forces is cancelled, as by any run: the
    messages left of people now 终止 (`_cancel_for_terminated`). Audited `messages.skipped` with
    why (`skipped_because`, the later run and its as-of date, the cancellations), and recorded in
    its summary (`backdated`) for the run page."""
    from zige.certification.selectors import later_run
    from zige.certification.services import run_record_backdated

    config = config or current()
    problems = check_templates(config, unit=False)
    with transaction.atomic():
        run = Run.objects.get(pk=run_id)
        later = later_run(run=run)
        if later is not None:
            cancelled = _cancel_for_terminated(run_id=run_id, now=now)
            audit_record(
                action="messages.skipped", target_type="run_messages", target_id=run_id, at=now,
                after={"skipped_because": "backdated", "later_run": later.pk,
                       "later_as_of": later.as_of.isoformat(), "cancelled": cancelled},
            )  # fmt: skip
            run_record_backdated(run_id=run_id, part="messages", later=later)
            return {"created": 0, "skipped": 1, "cancelled": cancelled}
        recertified = _cancel_for_recertified(run=run, now=now)
        cancelled = _cancel_for_lost(run_id=run_id, now=now) + recertified
        if problems:  # nothing is lost: the next run creates them once the template is fixed
            audit_record(
                action="messages.skipped", target_type="run_messages", target_id=run_id, at=now,
                after={"problems": problems, "cancelled": cancelled, "cancelled_recertified": recertified},
            )  # fmt: skip
            return {"created": 0, "skipped": 1, "cancelled": cancelled}
        fields = ("recipient_id", "unit_id", "due_on", "certified_on", "status", "recipient__name",
                  "recipient__person_no", "recipient__mobile", "recipient__id_number", "unit__phone",
                  "recipient__has_social_card")  # fmt: skip
        found: list[tuple[dict[str, Any], str, date, date | None, str]] = []  # a row's makings

        home = home_province()

        def app(d: dict[str, Any]) -> str:
            return app_for(
                id_number=d["recipient__id_number"] or "",
                has_social_card=d["recipient__has_social_card"] or "",
                config=config,
                home=home,
            )

        reminders = Decision.objects.filter(run_id=run_id, remind=True, due_on__isnull=False)
        for d in reminders.exclude(_standing(Kind.REMINDER)).values(*fields):
            found.append((d, Kind.REMINDER, d["due_on"], None, app(d)))
        failures = _app_failures(run.as_of)
        if failures:
            candidates = (
                Decision.objects.filter(run_id=run_id, status__in=("eligible", "pending", "review"))
                .filter(recipient__id_number__in=list(failures))
                .exclude(_standing(Kind.APP_FAILED))
                .values(*fields)
            )
            for d in candidates:
                failed_on = failures[d["recipient__id_number"].upper()]
                if d["certified_on"] is not None and d["certified_on"] >= failed_on:
                    continue  # certified again after the failure (another way)
                found.append((d, Kind.APP_FAILED, d["due_on"] or failed_on, failed_on, app(d)))
        written = _written(sorted({d["recipient_id"] for d, *_ in found}))
        normalise = _normaliser(written)
        rows = [
            _row(d, kind, due_on, event_on, shown, normalise) for d, kind, due_on, event_on, shown in found
        ]
        new_rows, again, renumber = _not_yet_written(rows, written)
        restored = _restore_cancelled(again, run_id=run_id, now=now)
        renumbered = _renumber_restored(renumber)
        before = Message.objects.count()
        messages = [_message(row, run_id=run_id, now=now, config=config) for row in new_rows]
        Message.objects.bulk_create(messages, batch_size=2000, ignore_conflicts=True)
        created = Message.objects.count() - before
        counts = {
            "created": created,
            "candidates": len(rows),
            "sms": sum(1 for m in messages if m.channel == Channel.SMS),
            "unit": sum(1 for m in messages if m.channel == Channel.UNIT),
            "app_failed": sum(1 for m in messages if m.kind == Kind.APP_FAILED),
            "cancelled": cancelled,
            "cancelled_recertified": recertified,
            "restored": restored,
            "restored_new_mobile": renumbered,
        }
        audit_record(
            action="messages.created", target_type="run_messages", target_id=run_id, at=now, after=counts
        )
    return counts


# A run that finds someone dead (stop) or suspends them: whatever of theirs has not gone out yet
# must not (a reminder to certify on a dead person's phone, or on their unit's list).
NO_MESSAGE_STATUSES = ("stop", "suspend")
# Not gone out yet: queued, waiting to retry, on a unit's notice list. A message in flight
# (`sending`) is left to its sender.
UNSENT_STATUSES = (MessageStatus.QUEUED, MessageStatus.RETRYING, MessageStatus.LISTED)


def _cancel_unsent(messages: QuerySet[Message], *, why: str) -> int:
    return messages.filter(status__in=UNSENT_STATUSES).update(
        status=MessageStatus.CANCELLED, next_attempt_at=None, last_error=why
    )


def _cancel_for_lost(*, run_id: int, now: datetime) -> int:
    """Cancel the unsent messages of everyone this run stops or suspends, and of anyone the roll
    says is 终止 (the roster import that terminates someone cancels theirs at once,
    `messages_cancel_for_terminated`; these are messages left from before it did)."""
    lost = Decision.objects.filter(run_id=run_id, status__in=NO_MESSAGE_STATUSES).values("recipient_id")
    cancelled = _cancel_unsent(
        Message.objects.filter(recipient_id__in=lost),
        why=f"cancelled by run {run_id} at {now.isoformat()}: stopped or suspended",
    )
    return cancelled + _cancel_for_terminated(run_id=run_id, now=now)


def _cancel_for_recertified(*, run: Run, now: datetime) -> int:
    """Cancel the unsent reminders of everyone this run decides `eligible` with another deadline
    than the reminder's: the person has certified again (or the evidence moved the deadline), so
    a reminder that their certification expires on the old date is false — an SMS still waiting
    to go out, or a notice on the unit's list whose deadline has not passed by the run's date (a
    notice of a deadline already past is the unit's record of that cycle: it stays listed). The
    reminder of the person's current deadline stays. Each message says why, with the new deadline
    (已重新认证，新的到期日 YYYY-MM-DD); the run's `messages.created` counts them
    (`cancelled_recertified`, within `cancelled`). A run that later decides the old deadline
    again restores the message as for a reversed stop (`_restore_cancelled`). So is an unsent
    APP认证未通过 notice of someone certified since the failed attempt."""
    stale = (
        Message.objects.filter(
            kind=Kind.REMINDER,
            status__in=UNSENT_STATUSES,
            recipient__decisions__run_id=run.pk,
            recipient__decisions__status="eligible",
            recipient__decisions__due_on__isnull=False,
        )
        .filter(Q(channel=Channel.SMS) | Q(due_on__gte=run.as_of))
        .annotate(new_due_on=F("recipient__decisions__due_on"))
        .exclude(due_on=F("new_due_on"))
    )
    # A notice that the app's face check failed (APP认证未通过), still unsent, of someone this run
    # finds certified on or after the failed attempt (another way): it would ask them to try again
    # what they have done — as a run writes none for them (`messages_for_run`'s candidates).
    failed = Message.objects.filter(
        kind=Kind.APP_FAILED,
        status__in=UNSENT_STATUSES,
        event_on__isnull=False,
        recipient__decisions__run_id=run.pk,
        recipient__decisions__status="eligible",
        recipient__decisions__due_on__isnull=False,
        recipient__decisions__certified_on__gte=F("event_on"),
    ).annotate(new_due_on=F("recipient__decisions__due_on"))
    by_deadline: dict[date, list[int]] = {}
    for query in (stale, failed):
        for pk, new_due_on in query.values_list("pk", "new_due_on"):
            by_deadline.setdefault(new_due_on, []).append(pk)
    cancelled = 0
    for new_due_on, ids in sorted(by_deadline.items()):
        for chunk in store.in_lists(ids):
            cancelled += _cancel_unsent(
                Message.objects.filter(pk__in=chunk),
                why=f"cancelled by run {run.pk} at {now.isoformat()}: "
                f"已重新认证，新的到期日 {new_due_on.isoformat()}",
            )
    return cancelled


def _cancel_for_terminated(*, run_id: int, now: datetime) -> int:
    """Cancel the unsent messages of anyone the roll says is 终止: the roll's state now, not the
    run's decisions, so a back-dated run does it too."""
    return _cancel_unsent(
        Message.objects.filter(recipient__benefit_status=BenefitStatus.TERMINATED),
        why=f"cancelled by run {run_id} at {now.isoformat()}: benefit terminated (终止)",
    )


def messages_cancel_for_terminated(
    *, recipient_ids: Sequence[int], batch_id: int, now: datetime, actor: Any = None
) -> int:
    """Cancel the unsent messages of the people a roster import has just terminated (待遇状态
    终止), in the import's transaction; returns how many. A 终止 person is in no later run, so no
    run's decision would ever cancel them, and nobody whose pension has ended is asked to
    certify for it. Audited as `messages.cancelled` on the import (with the count), as a run's
    cancellations are counted in its `messages.created`."""
    cancelled = 0
    with transaction.atomic():
        for people in store.in_lists(sorted(set(recipient_ids))):
            cancelled += _cancel_unsent(
                Message.objects.filter(recipient_id__in=people),
                why=f"cancelled by import {batch_id} at {now.isoformat()}: benefit terminated (终止)",
            )
        if cancelled:
            audit_record(
                actor=actor, action="messages.cancelled", target_type="import", target_id=batch_id, at=now,
                after={"cancelled": cancelled, "terminated": len(set(recipient_ids)), "why": "terminated"},
            )  # fmt: skip
    return cancelled


def messages_reassign(
    *,
    recipient_ids: Sequence[int],
    batch_id: int,
    now: datetime,
    actor: Any = None,
    config: NotifyConfig | None = None,
) -> int:
    """The messages of these people that have not gone out yet (queued, retrying, or listed on a
    unit's notice list) and name another unit than the person's current one go to that unit;
    called by the roster import, in its transaction, for everyone whose 单位编号 changed
    (as their verification tasks do, `tasks_reassign`). Returns how many.

    A person without a mobile is reminded through the unit that has them now (notice 一(四)):
    left with the old unit, the notice would be on a list of a unit that no longer has the
    person (their name and 个人编号 shown to it) and on no list of the unit that does. The text is
    written again for the new unit (its phone is the {phone} of the templates); a template that
    does not render keeps the text. Audited as `messages.reassigned` on the import (how many,
    and each message's old and new unit)."""
    config = config or current()
    moved = 0
    units: dict[str, dict[str, str]] = {}
    with transaction.atomic():
        for people in store.in_lists(sorted(set(recipient_ids))):
            messages = (
                Message.objects.select_for_update(of=("self",))
                .select_related("unit", "recipient__unit")
                .filter(recipient_id__in=people, status__in=UNSENT_STATUSES)
                .exclude(unit_id=F("recipient__unit_id"))
                .order_by("pk")
            )
            for message in messages:
                person = message.recipient
                assert person is not None  # a unit's own SMS has no recipient and is not selected
                old_unit = message.unit.unit_no
                message.unit = person.unit
                try:
                    rendered = _render_for_person(
                        person, kind=message.kind, channel=message.channel, due_on=message.due_on, config=config,
                        reason=message.notice_reason,  # a failed SMS's notice stays one
                    )  # fmt: skip
                    message.text, message.params, message.segments = (
                        rendered.text, rendered.params, rendered.segments,
                    )  # fmt: skip
                except TemplateError:
                    pass
                message.save(update_fields=["unit", "text", "params", "segments"])
                units[str(message.pk)] = {"from": old_unit, "to": person.unit.unit_no}
                moved += 1
        if moved:
            audit_record(
                actor=actor, action="messages.reassigned", target_type="import", target_id=batch_id, at=now,
                after={"messages": moved, "units": units, "movers": len(set(recipient_ids))},
            )  # fmt: skip
    return moved


def home_province() -> str:
    """The province whose people certify in its own app (`ZIGE_HOME_PROVINCE`, as the ledger's)."""
    from zige.ledger.config import current as ledger_config

    return ledger_config().home_province


def app_for(*, id_number: str, has_social_card: str, config: NotifyConfig, home: str | None = None) -> str:
    """The app a person is told to certify in: 外省户籍人员 — an ID of another province and no
    social-security card, the 附件2 rule (`zige.ledger.selectors.other_province_q`) — certify on
    the national platform's (掌上12333, notice 三(二)3), everyone else on the province's."""
    home = home if home is not None else home_province()
    if has_social_card == "no" and id_number and not id_number.startswith(home):
        return config.remote_app_name
    return config.app_name


def _render_for_person(
    person: Recipient, *, kind: str, channel: str, due_on: date, config: NotifyConfig, reason: str
) -> Rendered:
    """A person's message written for the unit that has them now (its phone, the person's app,
    `app_for`): what a moved message and a failed SMS's unit notice are written as. Raises
    TemplateError as `render` does."""
    return render(
        config, kind=kind, channel=channel, name=person.name, due_on=due_on, person_no=person.person_no,
        unit_phone=person.unit.phone or "",
        app=app_for(id_number=person.id_number, has_social_card=person.has_social_card, config=config),
        reason=reason,
    )  # fmt: skip


def _standing(kind: str) -> Exists:
    """For a decision's row (`OuterRef`): its message of `kind` for its deadline is written
    already and not cancelled, on the channel the person's number gives now — an SMS to the very
    number on the roll (trimmed: `normalise_mobile` gave that number when the SMS was written,
    and gives it again), or a unit notice for someone with no number at all. Such a row would be
    looked up and left as it is (`_not_yet_written`), so the run does not load it: a province's
    daily run has some 116,000 reminders and 60,000 people whose last app certification failed,
    nearly all of them told the day before (docs/performance.md). Every other row — a number
    written otherwise, a cancelled message, a new deadline, an app failure's notice dated by the
    failure (no deadline) — goes through `_not_yet_written`."""
    mobile = Trim(Coalesce(OuterRef("recipient__mobile"), Value("")))
    return Exists(
        Message.objects.filter(recipient_id=OuterRef("recipient_id"), due_on=OuterRef("due_on"), kind=kind)
        .exclude(status=MessageStatus.CANCELLED)
        .filter(Q(channel=Channel.SMS, mobile=mobile) | Q(Exact(mobile, Value("")), channel=Channel.UNIT))
    )


def _row(
    d: dict[str, Any], kind: str, due_on: date, event_on: date | None, app: str,
    normalise: Callable[[str | None], str],
) -> _Row:  # fmt: skip
    return _Row(
        recipient_id=d["recipient_id"], unit_id=d["unit_id"], kind=kind, due_on=due_on, event_on=event_on,
        name=d["recipient__name"], person_no=d["recipient__person_no"],
        mobile=normalise(d["recipient__mobile"]), unit_phone=d["unit__phone"] or "", app=app,
    )  # fmt: skip


# The messages already written for some people: (person, deadline, channel, kind) → (id, status,
# the number an SMS went to).
_Written = dict[tuple[int, date, str, str], tuple[int, str, str]]


def _written(people: list[int]) -> _Written:
    written: _Written = {}
    for chunk in store.in_lists(people):
        for pk, recipient_id, due_on, channel, kind, status, mobile in Message.objects.filter(
            recipient_id__in=chunk
        ).values_list("pk", "recipient_id", "due_on", "channel", "kind", "status", "mobile"):
            written[(recipient_id, due_on, channel, kind)] = (pk, status, mobile)
    return written


def _normaliser(written: _Written) -> Callable[[str | None], str]:
    """`normalise_mobile`, told the numbers earlier SMS went to: each is what `normalise_mobile`
    gave then, and so its own normal form (11 digits, valid, a mobile's). A province's daily run
    has some 176,000 reminders to match against yesterday's, and parsing each number again with
    `phonenumbers` was a quarter of the reminders' time (docs/performance.md)."""
    known = {
        mobile for (_, _, channel, _), (_, _, mobile) in written.items() if channel == Channel.SMS and mobile
    }

    def normalise(value: str | None) -> str:
        text = (value or "").strip()
        return text if text in known else normalise_mobile(text)

    return normalise


def _not_yet_written(rows: list[_Row], written: _Written) -> tuple[list[_Row], list[int], dict[int, str]]:
    """The rows whose message (same person, deadline, channel and kind) no earlier run wrote, the
    ids of the cancelled messages that other rows call for again, and of those the SMS written
    to another number than the person's now (id → the number now, `_renumber_restored`).
    A daily run's reminders are mostly yesterday's (same people, same deadlines): the database's
    unique key would refuse them anyway, after each was rendered and sent to it — at a province's
    size the most of a run's time after its decisions."""
    new: list[_Row] = []
    again: set[int] = set()
    renumber: dict[int, str] = {}
    for row in rows:
        channel = _channel(row)
        found = written.get((row.recipient_id, row.due_on, channel, row.kind))
        if found is None:
            new.append(row)
        elif found[1] == MessageStatus.CANCELLED:
            again.add(found[0])
            if channel == Channel.SMS and found[2] != row.mobile:
                renumber[found[0]] = row.mobile
    return new, sorted(again), renumber


# Why a reversed stop, suspension or termination gets its reminder back here (the next run), and
# not where it is reversed: the reversal has many doors — a review's 确认健在 clearing a death
# record, a unit's 具备资格, a release or a sentence that ended, the roster turning 终止 back to
# 正常, with a payment reversal or resume in benefits beside them — and none of them knows
# whether the person is eligible again, what their deadline now is, or whether it falls within
# three months (docs/rules.md §2.6): only the next run's decision does, and the run already
# writes every reminder. So the run that decides `remind` again for the same person, deadline,
# channel and kind restores the message it finds cancelled (a deadline that moved gets a new
# message, as always). Restored, not written again: the one-message-per-deadline key holds, and
# the message keeps its attempt log, so an earlier attempt that may have reached the gateway (a
# timeout) is looked up before anything is sent again (`_deliver`): never two SMS.
def _restore_cancelled(ids: list[int], *, run_id: int, now: datetime) -> int:
    """Put cancelled messages back as they were before (queued, retrying after an attempt, or
    listed for the unit), now owed to this run's decision; returns how many."""
    restored = 0
    for chunk in store.in_lists(ids):
        restored += Message.objects.filter(pk__in=chunk, status=MessageStatus.CANCELLED).update(
            status=Case(
                When(channel=Channel.UNIT, then=Value(MessageStatus.LISTED.value)),
                When(attempts__gt=0, then=Value(MessageStatus.RETRYING.value)),
                default=Value(MessageStatus.QUEUED.value),
            ),
            next_attempt_at=Case(
                When(channel=Channel.SMS, then=Value(now)), default=None, output_field=DateTimeField()
            ),
            run_id=run_id,
            last_error="",
        )
    return restored


def _renumber_restored(renumber: dict[int, str]) -> int:
    """A restored SMS goes to the person's number now, not to the one it was written for (the
    number changed while it was cancelled); returns how many (`restored_new_mobile` in the run's
    `messages.created`). Its attempt log stays, as for any restored message."""
    renumbered = 0
    for pk, mobile in sorted(renumber.items()):
        renumbered += (
            Message.objects.filter(pk=pk, channel=Channel.SMS).exclude(mobile=mobile).update(mobile=mobile)
        )
    return renumbered


def _channel(row: _Row) -> str:
    return Channel.SMS if row.mobile else Channel.UNIT


def _message(row: _Row, *, run_id: int, now: datetime, config: NotifyConfig) -> Message:
    channel = _channel(row)
    try:
        rendered = render(
            config, kind=row.kind, channel=channel, name=row.name, due_on=row.due_on,
            person_no=row.person_no, unit_phone=row.unit_phone, app=row.app,
        )  # fmt: skip
        text, params, parts = rendered.text, rendered.params, rendered.segments
    except TemplateError:  # an unusually long name: one more SMS part rather than no message
        long = config.__class__(**{**config.__dict__, "max_segments": 99})
        rendered = render(
            long, kind=row.kind, channel=channel, name=row.name, due_on=row.due_on,
            person_no=row.person_no, unit_phone=row.unit_phone, app=row.app,
        )  # fmt: skip
        text, params, parts = rendered.text, rendered.params, rendered.segments
    return Message(
        recipient_id=row.recipient_id, unit_id=row.unit_id, run_id=run_id, kind=row.kind, channel=channel,
        due_on=row.due_on, event_on=row.event_on, mobile=row.mobile, text=text, params=params,
        segments=parts, created_at=now, next_attempt_at=now if channel == Channel.SMS else None,
        status=MessageStatus.QUEUED if channel == Channel.SMS else MessageStatus.LISTED,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Sending


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:48]


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    found: int = 0  # an interrupted earlier attempt that the gateway had accepted
    delivered_before: int = 0  # claimed, but a delivery report for it had come: not sent again
    redirected: int = 0  # written to the person's new number (the roll's changed) and sent there
    to_unit: int = 0  # not sent: the person has no mobile any more, the unit's notice list has it
    released: int = 0  # claimed, then given back (quiet hours began, rate limit)
    quiet: bool = False
    rate_limited: bool = False
    lost_lease: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


def backoff(config: NotifyConfig, attempts: int) -> timedelta:
    """Exponential: base, 2·base, 4·base … capped at backoff_max."""
    return timedelta(seconds=min(config.backoff_max_s, config.backoff_base_s * 2 ** max(0, attempts - 1)))


def _quiet(config: NotifyConfig, now: datetime) -> bool:
    return in_quiet_hours(config, timezone.localtime(now).time())


def _sent_last_minute(now: datetime) -> int:
    return (
        DeliveryAttempt.objects.filter(started_at__gt=now - timedelta(seconds=60), started_at__lte=now)
        .exclude(outcome__in=(AttemptOutcome.FOUND, AttemptOutcome.NOT_FOUND))
        .count()
    )


def _due(now: datetime) -> Q:
    waiting = Q(status__in=(MessageStatus.QUEUED, MessageStatus.RETRYING)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    abandoned = Q(status=MessageStatus.SENDING, lease_until__lt=now)  # its sender died
    return Q(channel=Channel.SMS) & (waiting | abandoned)


def _claim(*, now: datetime, token: str, limit: int, lease: timedelta) -> list[Message]:
    with transaction.atomic():
        qs = Message.objects.filter(_due(now)).order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        Message.objects.filter(pk__in=ids).filter(_due(now)).update(
            status=MessageStatus.SENDING, lease_owner=token, lease_until=now + lease
        )
    return list(Message.objects.filter(lease_owner=token, status=MessageStatus.SENDING).order_by("pk"))


def _release(messages: Iterable[Message], token: str) -> int:
    """Give claimed messages back untouched (their in-flight attempt, if any, stays)."""
    released = 0
    for m in messages:
        previous = MessageStatus.RETRYING if m.attempts else MessageStatus.QUEUED
        if m.attempt_log.filter(outcome=AttemptOutcome.IN_FLIGHT).exists():
            continue  # keep it SENDING: the lease runs out and the next sender looks it up first
        released += Message.objects.filter(pk=m.pk, lease_owner=token, status=MessageStatus.SENDING).update(
            status=previous, lease_owner="", lease_until=None
        )
    return released


def messages_send_due(
    *,
    gateway: Gateway,
    clock: Clock,
    worker: str | None = None,
    config: NotifyConfig | None = None,
    limit: int | None = None,
) -> SendReport:
    """Send the SMS that are due now, at most `limit` (default: the batch size), within the rate
    limit and outside quiet hours."""
    config = config or current()
    report = SendReport()
    now = clock()
    if _quiet(config, now):
        report.quiet = True
        return report
    budget = config.rate_per_minute - _sent_last_minute(now)
    if budget <= 0:
        report.rate_limited = True
        return report
    token = f"{worker or worker_name()}/{uuid.uuid4().hex[:12]}"
    claimed = _claim(
        now=now,
        token=token,
        limit=min(limit or config.batch_size, budget),
        lease=timedelta(seconds=config.lease_s),
    )
    report.claimed = len(claimed)
    for i, message in enumerate(claimed):
        now = clock()
        if _quiet(config, now):
            report.quiet = True
        elif _sent_last_minute(now) >= config.rate_per_minute:
            report.rate_limited = True
        if report.quiet or report.rate_limited:
            report.released += _release(claimed[i:], token)
            break
        try:
            _deliver(message, gateway=gateway, clock=clock, token=token, config=config, report=report)
        except Exception as exc:  # a bug or a database error for one message must not stop the rest
            logger.exception("sending message %s failed", message.pk)
            report.errors.append(f"{message.pk}: {type(exc).__name__}: {exc}")
    return report


def _deliver(
    message: Message, *, gateway: Gateway, clock: Clock, token: str, config: NotifyConfig, report: SendReport
) -> None:
    # The gateway reported it delivered already (an attempt answered with an error had reached it
    # after all, and its receipt came while the message was cancelled): never send it again.
    receipt = message.receipts.filter(delivered=True).order_by("pk").first()
    if receipt is not None:
        if Message.objects.filter(pk=message.pk, lease_owner=token, status=MessageStatus.SENDING).update(
            status=MessageStatus.DELIVERED, delivered_at=receipt.reported_at or receipt.received_at,
            sent_at=Coalesce(F("sent_at"), _last_attempt_started(), Value(clock())), next_attempt_at=None,
            provider_message_id=message.provider_message_id or receipt.provider_message_id,
            lease_owner="", lease_until=None,
        ):  # fmt: skip
            report.delivered_before += 1
        else:
            report.lost_lease += 1
        return
    # An attempt cut short (the sender died during the call) or timed out may have reached the
    # gateway: ask it whether it has our message before sending again.
    interrupted = list(
        message.attempt_log.filter(
            Q(outcome=AttemptOutcome.IN_FLIGHT) | Q(outcome=AttemptOutcome.TEMPORARY, code="timeout")
        ).order_by("number")
    )
    if interrupted:
        # An earlier sender died between calling the gateway and recording its answer: ask the
        # gateway whether it has our message before sending again.
        first = interrupted[0]
        try:
            found = gateway.lookup(
                out_id=message.out_id,
                mobile=message.mobile,
                sent_on=timezone.localtime(first.started_at).date(),
            )
        except GatewayUnavailable as exc:
            _finish(message, token=token, now=clock(), outcome=Outcome("temporary", code="lookup", detail=str(exc)),
                    attempt=None, config=config, report=report, provider=gateway.name)  # fmt: skip
            return
        now = clock()
        DeliveryAttempt.objects.filter(pk__in=[a.pk for a in interrupted]).update(
            finished_at=now,
            outcome=AttemptOutcome.FOUND if found else AttemptOutcome.NOT_FOUND,
            provider_message_id=found.provider_message_id if found else "",
        )
        if found is not None:
            report.found += 1
            _finish(message, token=token, now=now, outcome=found, attempt=None, config=config, report=report,
                    provider=gateway.name)  # fmt: skip
            return
    # The person's number changed or went since the SMS was written (a roster import between the
    # 02:00 run and the end of quiet hours): never to the old number.
    if not _to_current_mobile(message, token=token, now=clock(), config=config, report=report):
        return
    # Record the attempt before the call: if this process dies during it, the next sender knows.
    now = clock()
    with transaction.atomic():
        still_ours = Message.objects.filter(
            pk=message.pk, lease_owner=token, status=MessageStatus.SENDING
        ).update(attempts=message.attempts + 1, lease_until=now + timedelta(seconds=config.lease_s))
        if not still_ours:
            report.lost_lease += 1
            return
        message.attempts += 1
        attempt = DeliveryAttempt.objects.create(
            message=message, number=message.attempts, worker=token[:64], started_at=now
        )
    template_id = {
        Kind.APP_FAILED.value: config.template_app_failed_id,
        Kind.UNIT_DEADLINE.value: config.template_unit_deadline_id,
    }.get(message.kind, config.template_reminder_id)
    outcome = gateway.send(
        SmsRequest(
            out_id=message.out_id, mobile=message.mobile, text=message.text, template_id=template_id,
            params=dict(message.params), sign_name=config.sign_name,
        )
    )  # fmt: skip
    _finish(message, token=token, now=clock(), outcome=outcome, attempt=attempt, config=config, report=report,
            provider=gateway.name)  # fmt: skip


def _finish(
    message: Message,
    *,
    token: str,
    now: datetime,
    outcome: Outcome,
    attempt: DeliveryAttempt | None,
    config: NotifyConfig,
    report: SendReport,
    provider: str = "",
) -> None:
    with transaction.atomic():
        if attempt is not None:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                finished_at=now, outcome=outcome.status, code=outcome.code[:128], detail=outcome.detail[:2000],
                provider_message_id=outcome.provider_message_id[:128],
            )  # fmt: skip
        mine = Message.objects.filter(pk=message.pk, lease_owner=token, status=MessageStatus.SENDING)
        common: dict[str, Any] = {"lease_owner": "", "lease_until": None, "provider": provider[:16]}
        if outcome.status == SENT:
            updated = mine.update(
                status=MessageStatus.SENT, sent_at=now, provider_message_id=outcome.provider_message_id[:128],
                last_error="", **common,
            )  # fmt: skip
            report.sent += updated
        elif outcome.status == PERMANENT or message.attempts >= config.max_attempts:
            updated = mine.update(
                status=MessageStatus.FAILED, last_error=f"{outcome.code}: {outcome.detail}"[:2000], **common
            )
            report.failed += updated
            if updated:
                _to_unit_list(message, now=now, config=config, why=f"failed: {outcome.code}")
        else:
            updated = mine.update(
                status=MessageStatus.RETRYING, next_attempt_at=now + backoff(config, max(1, message.attempts)),
                last_error=f"{outcome.code}: {outcome.detail}"[:2000], **common,
            )  # fmt: skip
            report.retrying += updated
        if not updated:
            report.lost_lease += 1


# Why a person's SMS was not sent: the roll has no mobile number for them any more.
NO_MOBILE_ANY_MORE = "本人已无手机号码，改由单位通知"


def _to_current_mobile(
    message: Message, *, token: str, now: datetime, config: NotifyConfig, report: SendReport
) -> bool:
    """Just before a person's SMS is sent (claimed, ours): the number on the roll now. The same
    number: send it. Another mobile (a roster import corrected it): the message is written to
    it (audited `messages.mobile_changed`, both numbers masked) and sent there. None, or none
    that is a mainland mobile (docs/rules.md §2.6: the unit channel): the SMS is cancelled and
    the reminder goes on the unit's notice list, saying 本人无手机号码 (once per deadline and kind,
    as a run would write it; audited `messages.mobile_removed`). True when it is to be sent."""
    person_id = message.recipient_id
    if person_id is None:  # a unit's own SMS: `Unit.phone`, read by the sweep that wrote it
        return True
    raw = (Recipient.objects.filter(pk=person_id).values_list("mobile", flat=True).first() or "").strip()
    current = message.mobile if raw == message.mobile else normalise_mobile(raw)
    if current == message.mobile:
        return True
    mine = Message.objects.filter(pk=message.pk, lease_owner=token, status=MessageStatus.SENDING)
    with transaction.atomic():
        if current:
            if not mine.update(mobile=current):
                report.lost_lease += 1
                return False
            audit_record(
                action="messages.mobile_changed", target_type="message", target_id=message.pk, at=now,
                after={"from": mask_phone(message.mobile), "to": mask_phone(current)},
            )  # fmt: skip
            message.mobile = current
            report.redirected += 1
            return True
        if not mine.update(
            status=MessageStatus.CANCELLED, next_attempt_at=None, lease_owner="", lease_until=None,
            last_error=f"cancelled by the sender at {now.isoformat()}: {NO_MOBILE_ANY_MORE}",
        ):  # fmt: skip
            report.lost_lease += 1
            return False
        notice, _ = _unit_notice_for(
            message, now=now, config=config, why="no mobile", reason=REASON_NO_MOBILE
        )
        audit_record(
            action="messages.mobile_removed", target_type="message", target_id=message.pk, at=now,
            after={"from": mask_phone(message.mobile), "notice": notice.pk if notice else None,
                   "why": NO_MOBILE_ANY_MORE},
        )  # fmt: skip
        report.to_unit += 1
        return False


def _to_unit_list(message: Message, *, now: datetime, config: NotifyConfig, why: str) -> None:
    """A person's SMS that cannot reach them (the gateway refused the number for good, or the
    operator reported it undelivered: 空号, 停机) goes on their unit's notice list, in the
    caller's transaction: notice 一(四) 没有手机号码的退休人员由参保单位通知 — a dead number is no
    phone. The notice says so (`REASON_SMS_UNDELIVERABLE`, not 本人无手机号码). The notice is the unit message of the same person, deadline and kind (written once:
    the one-per-deadline key), for the person's current unit; audited `messages.to_unit_list`.
    A unit's own SMS (no person), a person whose pension is not in force, and a person whom the
    latest run stops or suspends (or, for a reminder, has certified again with another
    deadline: `_still_due`) get none."""
    notice, created = _unit_notice_for(
        message, now=now, config=config, why=why, reason=REASON_SMS_UNDELIVERABLE
    )
    if notice is not None and created:
        audit_record(
            action="messages.to_unit_list", target_type="message", target_id=message.pk, at=now,
            after={"notice": notice.pk, "unit_no": notice.unit.unit_no, "why": why[:200]},
        )  # fmt: skip


def _still_due(person: Recipient, message: Message) -> bool:
    """Whether the person's current decision (the latest run's, `latest_run`) still calls for a
    message of this deadline: not when it stops or suspends them (a run cancels their unsent
    messages, and no unit is to chase a person found dead), nor, for a reminder, when it has
    them eligible with another deadline (certified again: `_cancel_for_recertified`). Someone the
    latest run did not decide is still due."""
    from zige.certification.selectors import decision_in_run, latest_run

    run = latest_run()
    decision = decision_in_run(run=run, recipient=person) if run is not None else None
    if decision is None:
        return True
    if decision.status in NO_MESSAGE_STATUSES:
        return False
    return not (
        message.kind == Kind.REMINDER
        and decision.status == "eligible"
        and decision.due_on is not None
        and decision.due_on != message.due_on
    )


def _unit_notice_for(
    message: Message, *, now: datetime, config: NotifyConfig, why: str, reason: str
) -> tuple[Message | None, bool]:
    """The unit notice of a person's SMS (same person, deadline and kind) and whether it was
    written now, in the caller's transaction, for the person's current unit: one there already
    is returned as it is; None for a unit's own SMS, a 终止 person, or a unit template that does
    not render. `reason` is the notice's {reason}: 发给本人手机的短信无法送达 for a number that cannot
    be reached, 本人无手机号码 for a person who has none any more."""
    person = message.recipient
    if person is None or message.channel != Channel.SMS:
        return None, False
    person = Recipient.objects.select_related("unit").get(pk=person.pk)
    if person.benefit_status == BenefitStatus.TERMINATED or not _still_due(person, message):
        return None, False
    existing = (
        Message.objects.filter(
            recipient=person, due_on=message.due_on, channel=Channel.UNIT, kind=message.kind
        )
        .select_related("unit")
        .first()
    )
    if existing is not None:
        return existing, False
    try:
        rendered = _render_for_person(
            person,
            kind=message.kind,
            channel=Channel.UNIT,
            due_on=message.due_on,
            config=config,
            reason=reason,
        )
    except TemplateError:
        return None, False  # the template check on the overview page says why; the SMS is listed there
    notice = Message.objects.create(
        recipient=person, unit=person.unit, run_id=message.run_id, kind=message.kind,
        channel=Channel.UNIT, due_on=message.due_on, event_on=message.event_on, text=rendered.text,
        params=rendered.params, segments=rendered.segments, status=MessageStatus.LISTED, created_at=now,
        last_error=f"SMS #{message.pk} {why}"[:2000],
    )  # fmt: skip
    return notice, True


# ---------------------------------------------------------------------------------------------
# Delivery receipts


@dataclass(frozen=True)
class Report:
    provider_message_id: str
    out_id: str
    delivered: bool
    code: str
    reported_at: datetime | None
    raw: dict[str, Any]


def parse_reports(provider: str, payload: Any) -> list[Report]:
    """Aliyun SmsReport (`biz_id`, `out_id`, `success`, `err_code`) or Tencent 短信下发状态回调
    (`sid`, `report_status`, `errmsg`, `ext`), a list or one object. Raises ValueError."""
    items = payload if isinstance(payload, list) else [payload]
    reports = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("each report must be a JSON object")
        if provider == "aliyun":
            pid, out_id = str(item.get("biz_id", "")), str(item.get("out_id", ""))
            delivered = item.get("success") in (True, "true", "True", 1)
            code = str(item.get("err_code", ""))
            when = str(item.get("report_time", ""))
        else:
            pid = str(item.get("sid", ""))
            ext = item.get("ext")
            out_id = str(
                item.get("session_context")
                or (ext.get("session_context") if isinstance(ext, dict) else "")
                or ""
            )
            delivered = str(item.get("report_status", "")).upper() == "SUCCESS"
            code = str(item.get("errmsg", ""))
            when = str(item.get("user_receive_time", ""))
        if not pid and not out_id:
            raise ValueError("a report without a message id")
        reported_at = None
        try:
            local = datetime.fromisoformat(when.replace(" ", "T")) if when else None
            reported_at = timezone.make_aware(local) if local and timezone.is_naive(local) else local
        except ValueError:
            reported_at = None
        reports.append(Report(pid[:128], out_id, delivered, code[:64], reported_at, item))
    return reports


# The messages a delivery report moves: sent or being sent, reported before, or waiting to be sent
# again (an attempt answered with an error may have reached the gateway).
RECEIPT_STATUSES = (
    MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.RETRYING, MessageStatus.SENT,
    MessageStatus.UNDELIVERED,
)  # fmt: skip


def _last_attempt_started() -> Subquery:
    """For a message's row: when its last attempt began (when it was sent, as far as we know)."""
    return Subquery(
        DeliveryAttempt.objects.filter(message_id=OuterRef("pk"))
        .order_by("-number", "-pk")
        .values("started_at")[:1]
    )


def receipts_record(*, provider: str, reports: list[Report], now: datetime) -> dict[str, int]:
    """Store each report once and move its message to delivered / undelivered; a repeated
    report changes nothing. Reports for unknown messages are kept (message empty)."""
    counts = {"new": 0, "duplicate": 0, "unknown": 0}
    with transaction.atomic():
        for r in reports:
            message = None
            if r.out_id.startswith("zige-") and r.out_id[5:].isdigit():
                message = Message.objects.filter(pk=int(r.out_id[5:])).first()
            if message is None and r.provider_message_id:
                message = Message.objects.filter(provider_message_id=r.provider_message_id).first()
            key = r.provider_message_id or r.out_id
            try:
                with transaction.atomic():
                    DeliveryReceipt.objects.create(
                        message=message, provider=provider, provider_message_id=key, delivered=r.delivered,
                        code=r.code, reported_at=r.reported_at, received_at=now, raw=r.raw,
                    )  # fmt: skip
            except IntegrityError:
                counts["duplicate"] += 1
                continue
            counts["new"] += 1
            if message is None:
                counts["unknown"] += 1
                continue
            # A receipt may overtake the sender's own record of the send (SENDING), or report an
            # attempt that the gateway answered with an error but had accepted after all: the
            # message waits for a retry (RETRYING; QUEUED when a sender gave it back) and must
            # not go out again. Sent, then: when, if nobody recorded it, is its last attempt's.
            changed = Message.objects.filter(pk=message.pk, status__in=RECEIPT_STATUSES).update(
                status=MessageStatus.DELIVERED if r.delivered else MessageStatus.UNDELIVERED,
                delivered_at=(r.reported_at or now) if r.delivered else None,
                sent_at=Coalesce(F("sent_at"), _last_attempt_started(), Value(r.reported_at or now)),
                next_attempt_at=None,
                provider_message_id=message.provider_message_id or r.provider_message_id,
            )
            if changed and not r.delivered:
                _to_unit_list(message, now=now, config=current(), why=f"undelivered: {r.code}")
        if counts["new"]:
            audit_record(
                action="messages.receipts", target_type="provider", target_id=provider, at=now, after=counts
            )
    return counts
