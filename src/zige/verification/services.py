"""Verification tasks (核实任务): writes.

- `tasks_for_run`: called by `run_execute` inside the transaction that stores a run's decisions.
  Every `pending` recipient gets a task for their unit (notice 二(三), 三(一)1: 3个月内完成核实确认),
  every `review` recipient a task in the bureau's review queue — never twice for the same person
  and period (database constraints) — and every active task whose person the run certifies
  (`eligible`) or finds dead (a death record, or a confirmed loss: a unit's approved 丧失资格, the
  bureau's 确认死亡 finding) closes by itself (`auto_closed`, with the reason).
- `tasks_reassign`: called by the roster import for people whose unit changed: their active tasks
  go to the new unit, which gets its own time (deadline restarted, an overdue task open again).
- `task_submit`: the unit's report (附件1's fields) with evidence files; for the special groups
  (very old, sick, immobile: notice 三(一)2) an on-site photo or video and a written
  confirmation are required; for 无法联系 a written statement (notice 三(一)4).
- `form1_apply`: the filled-in 附件1 workbook for many people: every row validated, all or nothing.
- `submission_review`: the bureau approves or returns a report (maker-checker). An approval
  becomes `unit_confirm` evidence (through the feeds app's import service, in the approval's own
  transaction: evidence exists if and only if the approval committed) and, where the result
  changes payment, a proposed payment action (`zige.benefits.services.payment_action_propose`).
- `review_resolve`: the bureau's finding on a review-queue task (alive / dead / fraud).
- `review_from_visit`: a home visit of the service ledger (服务台账) that found the person dead
  goes to the bureau's review queue as a review task (or joins the person's open one); the visit
  itself changes no payment.
- `tasks_sweep`: the daily pass: reminders 30 and 7 days before the deadline (and one SMS per
  unit and threshold to the unit's mobile, `zige.notifications.unit_messages`), overdue tasks
  escalated to the bureau and, with `ZIGE_OVERDUE_SUSPENDS`, a proposed suspension.

Every status change follows `models.TRANSITIONS`, is written with a `TaskEvent` and audited in
the same transaction. Nothing here reads the clock: callers pass `now`.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from zige import rules
from zige.accounts.models import Role, User
from zige.accounts.scoping import can_operate
from zige.audit.services import audit_record
from zige.calendar import add_months
from zige.certification.models import Decision, Run
from zige.engine.forms import PENDING_METHOD_CHOICES, PENDING_METHODS, PENDING_UNREACHABLE
from zige.engine.kinds import is_imprisonment_reason
from zige.engine.labels import KIND_ZH, REASON_ZH, REJECT_REASON_ZH
from zige.ids import birth_date_of
from zige.notifications.unit_messages import DueTask, unit_deadline_messages
from zige.reports.explain import BUREAU_FINDING, describe_record
from zige.roster.models import BenefitStatus, Recipient
from zige.verification import config
from zige.verification.models import (
    ACTIVE,
    AWAITING_UNIT,
    TRANSITIONS,
    Attachment,
    AttachmentRole,
    Finding,
    Method,
    Result,
    Submission,
    TaskEvent,
    TaskKind,
    TaskReminder,
    TaskStatus,
    VerificationTask,
)
from zige.verification.selectors import (
    alive_finding_of,
    alive_records_after,
    death_findings,
    loss_records_until,
    superseded_findings,
)
from zige.verification.uploads import DOCUMENTS, IMAGES, VIDEOS, CheckedUpload, attachment_store

if TYPE_CHECKING:
    from zige.benefits.services import FindingCases

logger = logging.getLogger(__name__)

DEATH_REASONS = frozenset({"death", "cremation", "declared_dead"})
# A loss confirmed after verification (rules §1, notice 三(一)3): a unit's 丧失资格 approved by the
# bureau, a unit_confirm file's, or the bureau's 确认死亡 / 疑似冒领 finding (`_finding_csv`). A
# stop on it closes the person's unit task as a death record's does (`_auto_close`).
CONFIRMED_LOSS_REASON = "unit_confirmed_lost"
# A review opened by a home visit of the service ledger that found the person dead
# (`review_from_visit`): only the bureau's finding closes it, never a run.
VISIT_DEAD_REASON = "visit_dead"


class TransitionRefused(ValueError):
    """A status change the transition table does not allow. `str(exc)` is the user's message, in
    Chinese only; `detail` the English text for support staff."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class TaskNotFound(LookupError):
    """No such task for this user (another unit's task is not found either)."""


class SubmissionInvalid(ValueError):
    """The report has errors: `errors` is a list of (field, message)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


# ---------------------------------------------------------------------------------------------
# Pieces


def period_of(*, status: str, reason: str, due_on: date | None, evidence_date: date | None) -> str:
    """The certification cycle a decision belongs to: a pending person's missed deadline, a
    review's reason and the date of the record that raised it."""
    if status == "pending":
        return f"due:{due_on.isoformat() if due_on else 'none'}"
    return f"{reason}:{evidence_date.isoformat() if evidence_date else 'none'}"


def deadline_for(as_of: date) -> date:
    """三(一)1: 各参保单位接收到待核实人员名单后应于3个月内完成 (configurable)."""
    days = config.deadline_days()
    if days is not None:
        return as_of + timedelta(days=days)
    return add_months(as_of, config.deadline_months())


def born_on(id_number: str) -> date | None:
    """The birth date in an 18-digit ID number; None when it holds none."""
    if len(id_number) != 18:
        return None
    try:
        return birth_date_of(id_number)
    except ValueError:
        return None


def age_on(id_number: str, day: date) -> int | None:
    born = born_on(id_number)
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def special_reasons(recipient: Recipient, *, as_of: date) -> list[str]:
    """Why a person counts as unable to use the phone app (notice 三(一)2, 三(二)1): the special
    groups of the service ledger (服务台账: 高龄 from the ID's birth date, 高危 and 行动不便 as marked)
    when it is installed (`zige.ledger.selectors.groups_of`), else 80 or older on `as_of`."""
    age = age_on(recipient.id_number, as_of)
    try:
        from zige.ledger.models import Group
        from zige.ledger.selectors import groups_of
    except ImportError:  # no ledger: the age alone
        return [f"高龄（{age}岁）"] if age is not None and age >= config.special_age() else []
    found = []
    for group in groups_of(recipient=recipient, as_of=as_of):
        found.append(
            f"高龄（{age}岁）" if group == Group.VERY_OLD and age is not None else str(Group(group).label)
        )
    return found


def _local_day(now: datetime) -> date:
    return timezone.localtime(now).date() if timezone.is_aware(now) else now.date()


def _transition(
    task: VerificationTask,
    to: str,
    *,
    actor: User | None,
    now: datetime,
    note: str = "",
    audit_extra: Any = None,  # a mapping or None (Any: `**fields` of str may be passed alongside)
    **fields: Any,
) -> None:
    """Change a (locked) task's status per `TRANSITIONS`, with its event and the audit record
    (`audit_extra`: more facts for the record, e.g. the evidence files of a finding)."""
    before = task.status
    if (before, to) not in TRANSITIONS:
        raise TransitionRefused(
            f"任务 #{task.pk} 当前为“{TaskStatus(before).label}”，不能变为“{TaskStatus(to).label}”。",
            f"Task {task.pk} is {before}; it cannot become {to}.",
        )
    task.status = to
    task.updated_at = now
    if to not in ACTIVE:
        task.closed_at = now
    for name, value in fields.items():
        setattr(task, name, value)
    task.save()
    TaskEvent.objects.create(
        task=task, from_status=before, to_status=to, actor=actor, at=now, note=note[:500]
    )
    audit_record(
        actor=actor, action=f"task.{to}", target_type="verification_task", target_id=task.pk, at=now,
        before={"status": before},
        after={"status": to, "note": note[:500], **{k: str(v) for k, v in fields.items()}, **(audit_extra or {})},
    )  # fmt: skip


def _lock(task_id: int) -> VerificationTask:
    return VerificationTask.objects.select_for_update().select_related("recipient", "unit").get(pk=task_id)


def _scoped_task(task_id: int, user: User) -> VerificationTask:
    """A task the user may act on, locked. A unit operator: a task of their unit whose person is
    in their unit now (both: a task row that still names a person's old unit is not enough)."""
    qs = VerificationTask.objects.select_for_update().select_related("recipient", "unit")
    if user.role == Role.UNIT_OPERATOR:
        qs = qs.filter(unit_id=user.unit_id or 0, recipient__unit_id=user.unit_id or 0)
    try:
        return qs.get(pk=task_id)
    except VerificationTask.DoesNotExist:
        raise TaskNotFound(task_id) from None


# ---------------------------------------------------------------------------------------------
# From a run


def tasks_for_run(*, run_id: int, now: datetime) -> dict[str, int]:
    """Open the run's tasks and close those it makes moot (in the caller's transaction).

    One audit row, `tasks.for_run`, holds the counts and, for the tasks closed by themselves,
    not their ids (a province's run can close tens of thousands) but where they are and a
    digest of them: `auto_closed_by_run` (the tasks with `closed_by_run` = this run, each with
    its `TaskEvent`; the database keeps that column set exactly on `auto_closed` tasks, a final
    status) and `auto_closed_sha256` (`selectors.auto_closed_digest` of their ids). An auditor
    lists them and checks the list against the row with `zige tasks auto-closed RUN`
    (`selectors.auto_closed_check`).

    A back-dated run (`certification.selectors.later_run`: another succeeded run has a later
    as-of date, docs/rules.md §8.4) opens and closes nothing: its `eligible` or death would close
    a task the later run still wants verified, its `pending` would list for the unit a person the
    later run certified. Its `tasks.for_run` row has zero counts (the digest of no task: the
    auditor's check holds) and says why (`skipped_because`, the later run and its as-of date);
    its summary records it (`backdated`) for the run page."""
    from zige.certification.selectors import later_run
    from zige.certification.services import run_record_backdated
    from zige.verification.selectors import auto_closed_digest

    with transaction.atomic():
        run = Run.objects.get(pk=run_id)
        later = later_run(run=run)
        if later is not None:
            counts = {"created_unit": 0, "created_review": 0, "auto_closed": 0}
            audit_record(
                action="tasks.for_run", target_type="run_tasks", target_id=run_id, at=now,
                after={**counts, "auto_closed_by_run": run_id, "auto_closed_sha256": auto_closed_digest([]),
                       "skipped_because": "backdated", "later_run": later.pk,
                       "later_as_of": later.as_of.isoformat()},
            )  # fmt: skip
            run_record_backdated(run_id=run_id, part="tasks", later=later)
            return counts
        closed = _auto_close(run, now=now)
        created = _create(run, now=now)
        counts = {"created_unit": created[TaskKind.UNIT], "created_review": created[TaskKind.REVIEW],
                  "auto_closed": len(closed)}  # fmt: skip
        audit_record(
            action="tasks.for_run", target_type="run_tasks", target_id=run_id, at=now,
            after={**counts, "auto_closed_by_run": run_id, "auto_closed_sha256": auto_closed_digest(closed)},
        )  # fmt: skip
    return counts


def _auto_close(run: Run, *, now: datetime) -> list[int]:
    """Active tasks whose person this run certifies (eligible) or finds dead: closed by themselves.
    "Dead" is a stop on a death, cremation or declaration of death, or on a loss confirmed after
    verification (`unit_confirmed_lost`: a unit's approved 丧失资格, the bureau's 确认死亡 finding);
    only unit tasks still waiting for the unit (open, returned, overdue) are closed so — a report
    already with the bureau (submitted) is the bureau's, review tasks are the bureau's finding,
    and the task whose report or finding is the evidence is already final. Returns the ids of the tasks it closed, ascending: those its updates changed (a task whose
    status another transaction changed meanwhile is left alone, without an event)."""
    rows = list(
        VerificationTask.objects.filter(status__in=AWAITING_UNIT)
        .exclude(kind=TaskKind.REVIEW, reason=VISIT_DEAD_REASON)  # a reported death: the bureau decides
        .filter(recipient__decisions__run=run)
        .values_list(
            "pk", "status", "kind", "recipient__decisions__status", "recipient__decisions__reason",
            "recipient__decisions__evidence_kind", "recipient__decisions__evidence_date",
        )
    )  # fmt: skip
    closing: list[tuple[int, str, str]] = []
    certified_tasks: set[int] = set()
    for pk, status, kind, d_status, d_reason, d_kind, d_date in rows:
        if d_status == "eligible":
            certified_tasks.add(pk)
            basis = d_kind or d_reason or ""
            said = KIND_ZH.get(basis) or REASON_ZH.get(basis) or basis
            why = f"认证批次 #{run.pk} 已确认具备资格（{said} {d_date or ''}），单位无需再核实"
        elif d_status == "stop" and d_reason in DEATH_REASONS and kind == TaskKind.UNIT:
            said = REASON_ZH.get(d_reason, d_reason)
            why = f"认证批次 #{run.pk} 收到{said}信息（{d_date or ''}），已按停发处理，单位无需再核实"
        elif d_status == "stop" and d_reason == CONFIRMED_LOSS_REASON and kind == TaskKind.UNIT:
            # The report or finding that is this evidence has already ended its own task
            # (approved / resolved, in the transaction that imported it): only the person's
            # other unit task still waiting for the unit is closed here.
            why = (
                f"认证批次 #{run.pk} 收到确认丧失资格信息（单位确认丧失资格或社保局疑点核查确认死亡，"
                f"{d_date or ''}），已按停发处理，单位无需再核实"
            )
        else:
            continue
        closing.append((pk, status, why.strip()))
    if not closing:
        return []
    ids: list[int] = []
    for chunk_start in range(0, len(closing), 2000):
        chunk = closing[chunk_start : chunk_start + 2000]
        by_reason: dict[str, list[int]] = {}
        for pk, _, why in chunk:
            by_reason.setdefault(why, []).append(pk)
        for why, pks in by_reason.items():
            VerificationTask.objects.filter(pk__in=pks, status__in=AWAITING_UNIT).update(
                status=TaskStatus.AUTO_CLOSED, closed_at=now, updated_at=now, closed_reason=why[:300],
                closed_by_run=run,
            )  # fmt: skip
        done = set(
            VerificationTask.objects.filter(pk__in=[pk for pk, _, _ in chunk], closed_by_run=run).values_list(
                "pk", flat=True
            )
        )
        chunk = [c for c in chunk if c[0] in done]
        _events_insert([(pk, status, TaskStatus.AUTO_CLOSED, why) for pk, status, why in chunk], now=now)
        ids.extend(pk for pk, _, _ in chunk)
    if certified := sorted(set(ids) & certified_tasks):
        # The suspensions their overdue sweep proposed lost their ground with the certification.
        from zige.benefits.services import payment_suspensions_withdraw_certified

        payment_suspensions_withdraw_certified(task_ids=certified, run_id=run.pk, now=now)
    return sorted(ids)


_TASK_COLUMNS = (
    "recipient_id", "unit_id", "kind", "period", "status", "run_id", "as_of", "reason", "evidence_kind",
    "evidence_date", "deadline", "created_at", "updated_at", "closed_reason", "finding", "finding_note",
    "payment_ref",
)  # fmt: skip


def _tasks_insert(rows: list[tuple[Any, ...]]) -> None:
    """Many new tasks at once, rows in `_TASK_COLUMNS` order (COPY on PostgreSQL, executemany on
    SQLite: a province's pending people in seconds, no model instance per person). The
    candidates were checked against the existing tasks in this transaction; should another run
    have created one meanwhile, the database's unique constraints refuse the batch and the ORM's
    insert that skips conflicts takes over."""
    from zige.feeds.store import bulk_insert

    try:
        with transaction.atomic():
            bulk_insert(VerificationTask._meta.db_table, _TASK_COLUMNS, rows)
    except (IntegrityError, connection.Database.IntegrityError):  # type: ignore[attr-defined]  # the driver's own
        names = [c.removesuffix("_id") if c.endswith("_id") else c for c in _TASK_COLUMNS]
        VerificationTask.objects.bulk_create(
            [VerificationTask(**{f"{n}_id" if c.endswith("_id") else n: v for n, c, v in zip(names, _TASK_COLUMNS, row,
                                                                                               strict=True)})
             for row in rows],
            batch_size=2000, ignore_conflicts=True,
        )  # fmt: skip


def _events_insert(events: list[tuple[int, str, str, str]], *, now: datetime) -> None:
    """(task id, from, to, note) events, all at `now`, by the system."""
    from zige.feeds.store import bulk_insert, db_datetime

    at = db_datetime(now)
    bulk_insert(
        TaskEvent._meta.db_table,
        ("task_id", "from_status", "to_status", "at", "note"),
        ((pk, before, after, at, note[:500]) for pk, before, after, note in events),
    )


def _create(run: Run, *, now: datetime) -> dict[str, int]:
    decisions = list(
        Decision.objects.filter(run=run, status__in=("pending", "review")).values_list(
            "recipient_id", "unit_id", "status", "reason", "evidence_kind", "evidence_date", "due_on"
        )
    )
    created: dict[str, int] = {TaskKind.UNIT: 0, TaskKind.REVIEW: 0}
    if not decisions:
        return created
    wanted = {(d[0], TaskKind.UNIT if d[2] == "pending" else TaskKind.REVIEW) for d in decisions}
    people = {r for r, _ in wanted}
    active: set[tuple[int, str]] = set()
    seen: set[tuple[int, str, str]] = set()
    from zige.feeds.store import in_lists

    for chunk in in_lists(sorted(people)):
        for recipient_id, kind, period, status in VerificationTask.objects.filter(
            recipient_id__in=chunk
        ).values_list("recipient_id", "kind", "period", "status"):
            seen.add((recipient_id, kind, period))
            if status in ACTIVE:
                active.add((recipient_id, kind))
    deadline = deadline_for(run.as_of)
    from zige.feeds.store import db_datetime

    at = db_datetime(now)
    new: list[tuple[Any, ...]] = []
    for recipient_id, unit_id, status, reason, evidence_kind, evidence_date, due_on in decisions:
        kind = TaskKind.UNIT if status == "pending" else TaskKind.REVIEW
        period = period_of(status=status, reason=reason, due_on=due_on, evidence_date=evidence_date)
        if (recipient_id, kind) in active or (recipient_id, kind, period) in seen:
            continue
        new.append(
            (recipient_id, unit_id, kind.value, period, TaskStatus.OPEN.value, run.pk, run.as_of, reason,
             evidence_kind or "", evidence_date, deadline, at, at, "", "", "", "")
        )  # fmt: skip
    _tasks_insert(new)
    fresh = list(VerificationTask.objects.filter(run=run, events__isnull=True).values_list("pk", "kind"))
    _events_insert([(pk, "", TaskStatus.OPEN, f"认证批次 #{run.pk}") for pk, _ in fresh], now=now)
    for _, kind in fresh:
        created[TaskKind(kind)] += 1
    return created


# ---------------------------------------------------------------------------------------------
# From a home visit of the service ledger


def review_from_visit(*, visit: Any, actor: User, now: datetime) -> VerificationTask | None:
    """A home visit (服务台账, `zige.ledger`) that found the person dead goes to the bureau.

    Opens a 疑点核查 review task for the person (period `visit_dead:<visit id>`, no run, the
    deadline of a run's task counted from today), or, when the person already has an active
    review task, adds the visit to that one. Either way a `TaskEvent` and an audit record
    (`task.opened_from_visit` / `task.visit_added`) with the visit and its photo's SHA-256, in
    the caller's transaction. The caller links the visit (`HomeVisit.review_task`). Payment is
    never changed here: the officer confirms the death (with its date) through `review_resolve`,
    which proposes the stop for a second person to approve. None for a terminated (终止) person,
    whose payment has ended already.
    """
    with transaction.atomic():
        person = Recipient.objects.select_for_update().get(pk=visit.recipient_id)
        if person.benefit_status == "terminated":
            return None
        today = _local_day(now)
        note = (
            f"服务台账上门走访 #{visit.pk}（{visit.visited_on.isoformat()}，走访人 {visit.visitor}）"
            f"结果为已死亡，请社保局核实并确认死亡日期"
        )
        task = (
            VerificationTask.objects.select_for_update()
            .filter(recipient=person, kind=TaskKind.REVIEW, status__in=ACTIVE)
            .first()
        )
        if task is None:
            task = VerificationTask.objects.create(
                recipient=person, unit_id=person.unit_id, kind=TaskKind.REVIEW, period=f"{VISIT_DEAD_REASON}:{visit.pk}",
                status=TaskStatus.OPEN, run=None, as_of=today, reason=VISIT_DEAD_REASON, evidence_kind="home_visit",
                evidence_date=visit.visited_on, deadline=deadline_for(today), created_at=now, updated_at=now,
            )  # fmt: skip
            TaskEvent.objects.create(
                task=task, from_status="", to_status=task.status, actor=actor, at=now, note=note
            )
            action = "task.opened_from_visit"
        else:
            TaskEvent.objects.create(
                task=task, from_status=task.status, to_status=task.status, actor=actor, at=now, note=note
            )
            action = "task.visit_added"
        audit_record(
            actor=actor, action=action, target_type="verification_task", target_id=task.pk, at=now,
            after={"status": task.status, "recipient": person.pk, "person_no": person.person_no, "visit": visit.pk,
                   "visited_on": visit.visited_on.isoformat(), "outcome": visit.outcome,
                   "photo_sha256": visit.photo_sha256},
        )  # fmt: skip
    return task


# ---------------------------------------------------------------------------------------------
# A person moves to another unit


def tasks_reassign(
    *, recipient_ids: Iterable[int], now: datetime, actor: User | None = None, source: str = ""
) -> list[int]:
    """The active tasks (not final) of these people that name another unit than the person's
    current one go to that unit (called by the roster import, in its transaction, for everyone
    whose 单位编号 changed). Returns the tasks moved.

    The new unit gets its own time (notice 三(一)1: 3个月内): a unit task's deadline becomes the
    later of the old one and `deadline_for(the day of the move)`; an overdue task is open again
    (escalation cleared) and its reminders start over. A suspension the overdue task proposed
    stays with the bureau (待遇处理) to reject or approve: nothing here decides payment. Review
    tasks (the bureau's) keep their deadline. Final tasks keep their unit: the history of who
    verified stays as it was. Each move is a `TaskEvent` and an audit record `task.reassigned`.
    """
    from zige.feeds.store import in_lists

    today = _local_day(now)
    fresh = deadline_for(today)
    moved: list[int] = []
    with transaction.atomic():
        for chunk in in_lists(sorted(set(recipient_ids))):
            tasks = (
                VerificationTask.objects.select_for_update(of=("self",))
                .select_related("unit", "recipient__unit")
                .filter(recipient_id__in=chunk, status__in=ACTIVE)
                .exclude(unit_id=F("recipient__unit_id"))
                .order_by("pk")
            )
            for task in tasks:
                old_unit, new_unit = task.unit, task.recipient.unit
                before = {
                    "unit": old_unit.unit_no,
                    "status": task.status,
                    "deadline": task.deadline.isoformat(),
                }
                status = task.status
                cleared = 0
                if task.kind == TaskKind.UNIT:
                    task.deadline = max(task.deadline, fresh)
                    if status == TaskStatus.OVERDUE:
                        status = TaskStatus.OPEN
                        if (task.status, status) not in TRANSITIONS:  # the table allows it; stay honest
                            raise TransitionRefused(f"task {task.pk}: {task.status} -> {status}")
                        task.escalated_at = None
                    if task.deadline != date.fromisoformat(before["deadline"]):
                        cleared, _ = TaskReminder.objects.filter(task=task).delete()
                note = (
                    f"人员所属单位由“{old_unit}”变更为“{new_unit}”{source}，任务转交新单位"
                    + (f"，核实期限重新计算至 {task.deadline.isoformat()}" if task.kind == TaskKind.UNIT else "")
                    + ("；逾期时提出的暂停发放建议由社保局在待遇处理中审批或驳回" if task.payment_ref and
                       before["status"] == TaskStatus.OVERDUE else "")
                )  # fmt: skip
                task.unit = new_unit
                task.status = status
                task.updated_at = now
                task.save(update_fields=["unit", "status", "deadline", "escalated_at", "updated_at"])
                TaskEvent.objects.create(
                    task=task,
                    from_status=before["status"],
                    to_status=status,
                    actor=actor,
                    at=now,
                    note=note[:500],
                )
                audit_record(
                    actor=actor, action="task.reassigned", target_type="verification_task", target_id=task.pk,
                    at=now, before=before,
                    after={"unit": new_unit.unit_no, "status": status, "deadline": task.deadline.isoformat(),
                           "reminders_cleared": cleared, "source": source, "payment_ref": task.payment_ref},
                )  # fmt: skip
                moved.append(task.pk)
    return moved


def tasks_close_for_terminated(
    *, recipient_ids: Iterable[int], batch_id: int, now: datetime, actor: User | None = None
) -> list[int]:
    """The unit tasks still waiting for the unit (open, returned, overdue) of the people a roster
    import has just terminated (待遇状态 终止) close by themselves (`auto_closed`, naming the import:
    `closed_by_import`), in the import's transaction; returns their ids. A 终止 person is in no
    later run, so no run would ever close such a task: it would stay on the unit's 附件1, get
    reminders and be escalated as overdue for a pension that has ended (docs/rules.md §8.1).

    Left to the bureau: a unit's report already with it (`submitted` — the unit did its work, and
    the report, a 丧失资格 with its date of loss, is what the bureau approves to record the loss
    and the months paid after it; as a run leaves it, §1) and review tasks (疑点核查: the bureau's
    finding on a death or a 冒领, which the overpayment and a fraud case still need). A suspension
    an overdue task proposed stays with the bureau to reject or approve in 待遇处理 (the roster
    import decides no payment; the task's history says so). Each close is a `TaskEvent` and an
    audit record `task.auto_closed` (with the import)."""
    from zige.feeds.store import in_lists

    closed: list[int] = []
    with transaction.atomic():
        for chunk in in_lists(sorted(set(recipient_ids))):
            tasks = (
                VerificationTask.objects.select_for_update(of=("self",))
                .select_related("recipient", "unit")
                .filter(recipient_id__in=chunk, kind=TaskKind.UNIT, status__in=AWAITING_UNIT)
                .order_by("pk")
            )
            for task in tasks:
                note = f"名册导入 #{batch_id} 将此人待遇状态变更为终止，此人不再参加认证，单位无需再核实"
                if task.payment_ref and task.status == TaskStatus.OVERDUE:
                    note += "；逾期时提出的暂停发放建议由社保局在待遇处理中审批或驳回"
                task.closed_by_import_id = batch_id
                task.closed_reason = note[:300]
                _transition(
                    task, TaskStatus.AUTO_CLOSED, actor=actor, now=now, note=note,
                    audit_extra={"import": batch_id, "why": "terminated", "payment_ref": task.payment_ref},
                )  # fmt: skip
                closed.append(task.pk)
    return closed


# ---------------------------------------------------------------------------------------------
# The unit's report


@dataclass
class Report:
    """附件1's fields for one person."""

    method: str = ""
    result: str = ""
    confirmed_on: date | None = None
    address: str = ""
    health: str = ""
    lost_reason: str = ""
    lost_on: date | None = None
    method_note: str = ""
    note: str = ""


@dataclass(frozen=True)
class Evidence:
    role: str  # AttachmentRole
    upload: CheckedUpload


# The kinds each evidence role takes (the pages' file pickers offer the same): on-site evidence is
# a photo or a video; a written confirmation (书面确认材料, 书面说明 of 三(一)4) a scan or a photo of
# the paper — never a video, as the workbook's written file already was not.
ROLE_KINDS: dict[str, frozenset[str]] = {
    AttachmentRole.ON_SITE: IMAGES | VIDEOS,
    AttachmentRole.WRITTEN: IMAGES | DOCUMENTS,
}


def _kind_errors(files: Sequence[Evidence]) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for f in files:
        kinds = ROLE_KINDS.get(f.role)
        if kinds is None or f.upload.file_kind in kinds:
            continue
        if f.role == AttachmentRole.ON_SITE:
            errors.append(("files", f"“{f.upload.name}”不是图片或视频，不能作为现场确认图片或视频"))
        else:
            errors.append(("written", f"“{f.upload.name}”不是 PDF 扫描件或照片，不能作为书面确认材料"))
    return errors


def report_errors(
    report: Report,
    *,
    task: VerificationTask,
    today: date,
    files: Sequence[Evidence],
    carried: Sequence[Attachment] = (),
) -> list[tuple[str, str]]:
    """Everything wrong with a report, as (field, message); empty when it can be submitted."""
    errors: list[tuple[str, str]] = []
    if report.method not in Method.values:
        errors.append(("method", "请选择确认方式"))
    if report.method == Method.OTHER and not report.method_note.strip():
        errors.append(("method_note", "确认方式为“其他”时请说明方式"))
    if report.result not in Result.values:
        errors.append(("result", "请选择确认结果"))
    if report.confirmed_on is None:
        errors.append(("confirmed_on", "请填写确认日期"))
    elif report.confirmed_on > today:
        errors.append(("confirmed_on", "确认日期不能晚于今天"))
    elif report.confirmed_on < task.as_of - timedelta(days=366):
        errors.append(("confirmed_on", "确认日期早于本认证周期"))
    if report.result == Result.ELIGIBLE:
        for name, label in (("address", "现居住地"), ("health", "健康状况")):
            text = getattr(report, name)
            if not text.strip():
                errors.append((name, f"经确认具备领取资格的人员须填写{label}"))
            elif (problem := confirmed_fact_error(label, text)) is not None:
                errors.append(
                    (name, f"{problem}；联系不上本人的，确认结果请选择“{Result.UNREACHABLE.label}”")
                )
    if report.result == Result.LOST:
        if not report.lost_reason.strip():
            errors.append(("lost_reason", "经确认丧失领取资格的人员须填写丧失原因"))
        if report.lost_on is None:
            errors.append(("lost_on", "经确认丧失领取资格的人员须填写丧失时间"))
        elif report.lost_on > today:
            errors.append(("lost_on", "丧失时间不能晚于今天"))
        elif (born := born_on(task.recipient.id_number)) is not None and report.lost_on < born:
            # The approval's evidence import refuses such a row (bad_date, docs/rules.md §4): the
            # report could be submitted but never approved.
            errors.append(
                (
                    "lost_on",
                    f"丧失时间 {report.lost_on:%Y-%m-%d} 早于本人出生日期 {born:%Y-%m-%d}（按身份证号），请核对",
                )
            )
    for name, limit in (("address", 300), ("health", 100), ("lost_reason", 200), ("method_note", 100)):
        if len(getattr(report, name)) > limit:
            errors.append((name, f"不能超过 {limit} 个字"))
    on_site = [f for f in files if f.role == AttachmentRole.ON_SITE] + [
        a for a in carried if a.role == AttachmentRole.ON_SITE
    ]
    written = [f for f in files if f.role == AttachmentRole.WRITTEN] + [
        a for a in carried if a.role == AttachmentRole.WRITTEN
    ]
    errors += _kind_errors(files)
    if report.result == Result.ELIGIBLE:
        special = special_reasons(task.recipient, as_of=task.as_of)
        if special:  # 三(一)2: 现场确认图片或视频等佐证资料和书面确认材料
            if not on_site:
                errors.append(("on_site", f"{'、'.join(special)}人员须上传现场确认图片或视频"))
            if not written:
                errors.append(("written", f"{'、'.join(special)}人员须上传书面确认材料"))
    if report.result == Result.UNREACHABLE and not written:  # 三(一)4: 需出具书面材料
        errors.append(("written", "无法联系的人员须上传书面说明材料"))
    return errors


def _store_attachments(
    submission: Submission,
    files: Iterable[Evidence],
    carried: Iterable[Attachment],
    *,
    user: User,
    now: datetime,
) -> None:
    rows = []
    for f in files:
        stored = attachment_store(upload=f.upload)
        rows.append(
            Attachment(
                submission=submission, role=f.role, file_kind=stored.file_kind, original_name=f.upload.name,
                sha256=stored.sha256, size=stored.size, stored_path=stored.stored_path, scan=f.upload.scan,
                uploaded_by=user, uploaded_at=now,
            )
        )  # fmt: skip
    for a in carried:  # the files of a returned report stay with the next one
        rows.append(
            Attachment(
                submission=submission, role=a.role, file_kind=a.file_kind, original_name=a.original_name,
                sha256=a.sha256, size=a.size, stored_path=a.stored_path, scan=a.scan, uploaded_by=a.uploaded_by,
                uploaded_at=a.uploaded_at,
            )
        )  # fmt: skip
    Attachment.objects.bulk_create(rows)


def _carried(task: VerificationTask) -> list[Attachment]:
    last = task.submissions.order_by("-number").first()
    return list(last.attachments.all()) if last is not None and last.approved is False else []


def _submit_locked(
    task: VerificationTask,
    *,
    user: User,
    report: Report,
    files: Sequence[Evidence],
    now: datetime,
    source: str,
) -> Submission:
    if task.kind != TaskKind.UNIT:
        raise TransitionRefused(
            "疑点核查任务由社保局处理，单位不能上报。", "Review tasks are resolved by the bureau."
        )
    if task.status not in AWAITING_UNIT:
        raise TransitionRefused(
            f"任务 #{task.pk} 当前为“{TaskStatus(task.status).label}”，不能上报。",
            f"Task {task.pk} is {task.status}.",
        )
    carried = _carried(task)
    errors = report_errors(report, task=task, today=_local_day(now), files=files, carried=carried)
    if errors:
        raise SubmissionInvalid(errors)
    assert report.confirmed_on is not None  # checked by report_errors
    number = (task.submissions.aggregate(n=Max("number"))["n"] or 0) + 1
    submission = Submission.objects.create(
        task=task, number=number, method=report.method, method_note=report.method_note.strip(),
        address=report.address.strip(), health=report.health.strip(), result=report.result,
        confirmed_on=report.confirmed_on, lost_reason=report.lost_reason.strip() if report.result == Result.LOST else "",
        lost_on=report.lost_on if report.result == Result.LOST else None, note=report.note.strip(), source=source,
        submitted_by=user, submitted_at=now,
    )  # fmt: skip
    _store_attachments(submission, files, carried, user=user, now=now)
    _transition(
        task, TaskStatus.SUBMITTED, actor=user, now=now,
        note=f"第 {number} 次上报：{Result(report.result).label}（{Method(report.method).label}）",
    )  # fmt: skip
    return submission


def task_submit(
    *,
    task_id: int,
    user: User,
    report: Report,
    files: Sequence[Evidence] = (),
    now: datetime,
    source: str = "online",
) -> Submission:
    """The unit operator reports on one person (附件1 online). Raises `TaskNotFound` (not their
    unit), `TransitionRefused`, `SubmissionInvalid` (with every error), `PermissionDenied`."""
    if user.role != Role.UNIT_OPERATOR:
        raise PermissionDenied("only the unit reports its verification (the bureau reviews it)")
    with transaction.atomic():
        task = _scoped_task(task_id, user)
        return _submit_locked(task, user=user, report=report, files=files, now=now, source=source)


# ---------------------------------------------------------------------------------------------
# The filled-in 附件1 workbook


@dataclass(frozen=True)
class RowError:
    row: int  # as the spreadsheet shows it
    field: str
    reason: str
    person: str = ""  # the row's 姓名 and 个人编号 as written, for the clerk to find the row


@dataclass
class BulkResult:
    applied: int = 0
    skipped: int = 0  # rows the unit left unfilled
    errors: list[RowError] = field(default_factory=list)


# 确认方式 of 附件1 as the form's dropdown offers it (`zige.engine.forms.PENDING_METHOD_CHOICES`):
# the method of a confirmation, or 无法联系. Nothing else is read: free text is never turned into
# a method, let alone into 具备资格.
_METHODS: dict[str, str] = {m.label: m.value for m in Method if m.label in PENDING_METHODS}
# The optional extra column 确认结果, as the online form names the results.
_RESULTS: dict[str, str] = {str(r.label): r.value for r in Result}
# Words that say the unit did not reach the person (it tried and failed): such a row is never
# 具备资格, whatever column they are in.
_UNREACHED = ("无法联系", "联系不上", "联系不到", "未联系上", "没联系上", "未能联系", "未取得联系", "无人接听",
              "无人应答", "未接听", "不接电话", "失联", "未见到本人", "未见本人", "没见到本人", "见不到本人",
              "不见本人", "下落不明", "去向不明", "查无此人", "找不到本人", "空号", "停机", "关机")  # fmt: skip
# 现居住地 / 健康状况 that say nothing: whom the unit confirmed, it knows where and how they live.
_UNKNOWN = {"不详", "未知", "不清楚", "不知道", "不明", "暂无", "空", "-", "--", "—", "/", "?", "？"}
# Per column (`confirmed_fact_error`): 「无」 is no address, but in 健康状况 a unit's clerk writes it
# for 无异常 / 无疾病, so it is accepted there.
_SAYS_NOTHING: dict[str, frozenset[str]] = {
    "现居住地": frozenset(_UNKNOWN | {"无"}),
    "健康状况": frozenset(_UNKNOWN),
}
_WRITE_INSTEAD: dict[str, str] = {
    "现居住地": "请填写本人实际居住的地址（如“太原市小店区坞城路1号”）",
    "健康状况": "请填写本人的健康情况（如“良好”“无异常”“无”“患高血压”）",
}
_DATE_TEXT = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")


def parse_day(value: Any) -> date | None:
    """A date cell or text (2026-03-05, 2026/3/5, 2026.3.5, 2026年3月5日, 20260305); None if empty.
    Raises ValueError for text that is not a real day."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    found = _DATE_TEXT.match(text)
    if not found:
        raise ValueError(text)
    return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))


def _squash(text: str) -> str:
    """A cell's text without any whitespace (full-width spaces and line breaks too)."""
    return re.sub(r"\s+", "", text)


def _says_unreached(text: str) -> bool:
    return any(m in _squash(text) for m in _UNREACHED)


def confirmed_fact_error(label: str, text: str) -> str | None:
    """Why a 具备资格 report's 现居住地 or 健康状况 (`label`) cannot stand, or None: it says the
    person was not reached (无人接听, 未见到本人 …), or it says nothing (不详, 未知, -, ? …; for
    现居住地 also 无 — in 健康状况 「无」 means 无异常). The one check of the single-person report
    (`report_errors`) and of the bulk 附件1 upload (`_form1_outcome`); an empty value is the
    caller's own error (须填写). The message says what to write instead."""
    if _says_unreached(text):
        return f"“{text.strip()}”表明未联系到本人，不能作为具备资格上报"
    if text.strip() and _squash(text) in _SAYS_NOTHING[label]:
        return f"经确认具备领取资格的人员须填写确知的{label}，不能填“{text.strip()}”：{_WRITE_INSTEAD[label]}"
    return None


def _form1_outcome(filled: dict[str, str]) -> tuple[str, str, str] | list[tuple[str, str]]:
    """(result, method, method_note) of one filled 附件1 row, or its errors as (column, message).

    The result is what the row states, never guessed from free text: 确认方式 is one of the form's
    dropdown values (`PENDING_METHOD_CHOICES`) and 确认结果, if given, one of 具备资格 / 丧失资格 /
    无法联系. 无法联系 (either column) is 无法联系; the 经确认丧失领取资格 columns are 丧失资格; a
    method with 现居住地 and 健康状况 is 具备资格. A row that says two things, or a 具备资格 row whose
    words say the person was not reached (无人接听, 未见到本人 …) or whose 现居住地 / 健康状况 says
    nothing (不详 …: `confirmed_fact_error`, the single-person report's check too), is refused."""
    choices = "、".join(PENDING_METHOD_CHOICES)
    unreachable_hint = f"；联系不上本人的请选择“{PENDING_UNREACHABLE}”"
    method_text, stated = _squash(filled["确认方式"]), _squash(filled["确认结果"])
    errors: list[tuple[str, str]] = []
    if method_text and method_text not in PENDING_METHOD_CHOICES:
        if _says_unreached(method_text):
            hint = unreachable_hint
        elif method_text.startswith("其他"):
            hint = "；其他确认方式请在该人员的任务页面逐人上报并说明方式"
        else:
            hint = ""
        errors.append(
            (
                "确认方式",
                f"“{filled['确认方式']}”不是可选的确认方式，只能填写：{choices}（表内下拉列表）{hint}",
            )
        )
    if stated and stated not in _RESULTS:
        hint = unreachable_hint if _says_unreached(stated) else ""
        errors.append(
            ("确认结果", f"“{filled['确认结果']}”不是可选的确认结果，只能填写：{'、'.join(_RESULTS)}{hint}")
        )
    if errors:
        return errors
    unreachable = method_text == PENDING_UNREACHABLE
    lost = bool(filled["丧失原因"] or filled["丧失时间"])
    confirmed = bool(filled["现居住地"] or filled["健康状况"])
    if stated:
        result = _RESULTS[stated]
    elif unreachable:
        result = Result.UNREACHABLE
    elif lost:
        result = Result.LOST
    else:
        result = Result.ELIGIBLE
    if unreachable and result != Result.UNREACHABLE:
        errors.append(("确认结果", f"确认方式为“{PENDING_UNREACHABLE}”，确认结果却是“{filled['确认结果']}”"))
    if lost and result != Result.LOST:
        errors.append(("丧失原因", f"填写了丧失原因或丧失时间，确认结果却是“{Result(result).label}”"))
    if result == Result.LOST and confirmed:
        errors.append(
            (
                "现居住地",
                "同一行既填写了“经确认具备领取资格”栏目（现居住地、健康状况），又是丧失资格：请只填写一组",
            )
        )
    if result == Result.ELIGIBLE:
        if not method_text:
            errors.append(
                ("确认方式", f"经确认具备领取资格的人员须填写确认方式：{'、'.join(PENDING_METHODS)}")
            )
        for label in ("现居住地", "健康状况"):
            problem = confirmed_fact_error(label, filled[label])
            if problem is not None:
                errors.append((label, f"{problem}{unreachable_hint}"))
    if errors:
        return errors
    if method_text in _METHODS:
        return result, _METHODS[method_text], ""
    if unreachable:
        return result, Method.OTHER, PENDING_UNREACHABLE
    return result, Method.OTHER, "附件1未注明"  # the form puts 确认方式 under 具备资格 only


def _form1_note(number: int, filled: dict[str, str]) -> str:
    """What the unit wrote in the row's 确认方式 and 确认结果 cells, as written (the review page
    shows it as the report's 备注)."""
    said = [f"{label}“{filled[label]}”" for label in ("确认方式", "确认结果") if filled[label]]
    return f"附件1第{number}行原文：" + "；".join(said) if said else ""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# What a unit's 附件1 may span when read back. The form has 14 columns (and a unit may add a few:
# 确认结果, 确认日期); a unit's list is its people to verify. The reader looks no further: without
# a bound, openpyxl makes every row as wide as the sheet says it is (its <dimension>, or one stray
# cell at XFD), and a 52 KB workbook of one cell a row at XFD took 1.3 GB of memory. The packed
# parts' declared sizes bound what unzipping can produce (zipfile reads no more than them).
FORM1_MAX_COLUMNS = 40
FORM1_MAX_ROWS = 100_000
FORM1_MAX_UNPACKED_BYTES = 200 * 1024 * 1024


def _workbook_rows(data: bytes) -> tuple[dict[str, int], list[tuple[int, list[Any]]]]:
    """The header map (label -> column) and the data rows (spreadsheet row, values) of 附件1,
    read within `FORM1_MAX_COLUMNS` columns, `FORM1_MAX_ROWS` rows and `FORM1_MAX_UNPACKED_BYTES`
    unpacked (ValueError beyond them)."""
    import openpyxl

    with zipfile.ZipFile(io.BytesIO(data)) as package:
        unpacked = sum(member.file_size for member in package.infolist())
    if unpacked > FORM1_MAX_UNPACKED_BYTES:
        raise ValueError(
            f"工作簿解压后有 {unpacked / 1024 / 1024:,.0f} MB，超过上限 {FORM1_MAX_UNPACKED_BYTES // 1024 // 1024} MB："
            "请上传系统下发的附件1"
        )
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as f:
        f.write(data)
        f.flush()
        wb = openpyxl.load_workbook(f.name, read_only=True, data_only=True)
        try:
            rows: list[list[Any]] = []
            for values in wb.worksheets[0].iter_rows(values_only=True, max_col=FORM1_MAX_COLUMNS):
                if len(rows) == FORM1_MAX_ROWS:
                    raise ValueError(f"工作表超过 {FORM1_MAX_ROWS:,} 行：请上传系统下发的本单位附件1")
                rows.append(list(values))
        finally:
            wb.close()
    header_at = next(
        (i for i, r in enumerate(rows[:30]) if {"个人编号", "身份证号"} <= {_cell(v) for v in r}), None
    )
    if header_at is None:
        raise ValueError("找不到表头（须含“个人编号”和“身份证号”）：请上传系统下发的附件1")
    top = rows[header_at]
    below = rows[header_at + 1] if header_at + 1 < len(rows) else []
    columns: dict[str, int] = {}
    for i, v in enumerate(top):
        label = _cell(v)
        sub = _cell(below[i]) if i < len(below) else ""
        for name in (label, sub):
            if name and name not in columns and not name.startswith("经确认"):
                columns[name.replace("\n", "")] = i
    data_rows: list[tuple[int, list[Any]]] = []
    for n in range(header_at + 1, len(rows)):
        row = rows[n]
        first = _cell(row[0]) if row else ""
        if first == "栏目" or (n == header_at + 1 and any(_cell(v) in ("确认方式", "丧失原因") for v in row)):
            continue  # the lower header row and the numbered 栏目 row
        if first.startswith(("核实人", "填报", "说明")):
            break  # the signature lines under the table
        data_rows.append((n + 1, row))
    return columns, data_rows


def form1_apply(
    *, user: User, data: bytes, now: datetime, written: CheckedUpload | None = None
) -> BulkResult:
    """Apply a filled-in 附件1 workbook: one report per filled row, all in one transaction or
    nothing. `written`: the scanned, stamped form, attached to every row as the written
    confirmation. Rows left empty in the 确认 columns are skipped."""
    if user.role != Role.UNIT_OPERATOR:
        raise PermissionDenied("only the unit reports its verification")
    result = BulkResult()
    try:
        columns, rows = _workbook_rows(data)
    except ValueError as exc:
        result.errors.append(RowError(0, "文件", str(exc)))
        return result
    except Exception:  # not a workbook at all
        result.errors.append(RowError(0, "文件", "无法读取：请上传 .xlsx 格式的附件1"))
        return result
    today = _local_day(now)

    def value(row: list[Any], label: str) -> Any:
        i = columns.get(label)
        return row[i] if i is not None and i < len(row) else None

    planned: list[tuple[int, Report]] = []
    people: dict[int, str] = {}  # row number -> 姓名 个人编号, to name the row of an error
    seen: dict[str, int] = {}
    tasks = {
        t.recipient.person_no: t
        for t in VerificationTask.objects.select_related("recipient", "unit").filter(
            unit_id=user.unit_id or 0,
            recipient__unit_id=user.unit_id or 0,
            kind=TaskKind.UNIT,
            status__in=AWAITING_UNIT,
        )
    }
    files = [Evidence(AttachmentRole.WRITTEN, written)] if written is not None else []
    with transaction.atomic():
        for number, row in rows:
            person_no = _cell(value(row, "个人编号"))
            people[number] = " ".join(v for v in (_cell(value(row, "姓名")), person_no) if v)
            filled = {k: _cell(value(row, k)) for k in ("确认方式", "现居住地", "健康状况", "丧失原因", "丧失时间",
                                                         "确认结果", "确认日期")}  # fmt: skip
            if not person_no:
                if any(filled.values()):
                    result.errors.append(RowError(number, "个人编号", "缺少个人编号"))
                continue  # the signature lines under the table
            if not any(filled.values()):
                result.skipped += 1
                continue
            if person_no in seen:
                result.errors.append(RowError(number, "个人编号", f"与第 {seen[person_no]} 行重复"))
                continue
            seen[person_no] = number
            task = tasks.get(person_no)
            if task is None:
                result.errors.append(RowError(number, "个人编号", "不是本单位待核实（未上报）的人员"))
                continue
            id_number = _cell(value(row, "身份证号")).upper().lstrip("'")
            if id_number and id_number != task.recipient.id_number.upper():
                result.errors.append(RowError(number, "身份证号", "与名册不符"))
                continue
            report = Report(
                address=filled["现居住地"], health=filled["健康状况"], lost_reason=filled["丧失原因"]
            )
            try:
                report.lost_on = parse_day(value(row, "丧失时间"))
            except ValueError:
                result.errors.append(RowError(number, "丧失时间", f"不是有效日期：{filled['丧失时间']}"))
                continue
            try:
                report.confirmed_on = parse_day(value(row, "确认日期")) or today
            except ValueError:
                result.errors.append(RowError(number, "确认日期", f"不是有效日期：{filled['确认日期']}"))
                continue
            outcome = _form1_outcome(filled)
            if isinstance(outcome, list):
                result.errors.extend(RowError(number, name, message) for name, message in outcome)
                continue
            report.result, report.method, report.method_note = outcome
            report.note = _form1_note(number, filled)
            label = {"method": "确认方式", "method_note": "确认方式", "result": "确认结果", "confirmed_on": "确认日期",
                     "address": "现居住地", "health": "健康状况", "lost_reason": "丧失原因", "lost_on": "丧失时间",
                     "on_site": "现场确认图片或视频", "written": "书面确认材料", "files": "附件"}  # fmt: skip
            problems = report_errors(report, task=task, today=today, files=files, carried=_carried(task))
            if problems:
                for name, message in problems:
                    hint = {"on_site": "（请在该人员的任务页面逐人上传）",
                            "written": "（请随表上传加盖公章的附件1扫描件，或在该人员的任务页面逐人上报）"}.get(name, "")  # fmt: skip
                    result.errors.append(RowError(number, label.get(name, name), message + hint))
                continue
            planned.append((number, report))
        if result.errors:
            transaction.set_rollback(True)
            result.errors = [replace(e, person=people.get(e.row, "")) for e in result.errors]
            return result
        for number, report in planned:
            person = next(p for p, n in seen.items() if n == number)
            task = _lock(tasks[person].pk)
            _submit_locked(task, user=user, report=report, files=files, now=now, source="workbook")
            result.applied += 1
        audit_record(
            actor=user, action="tasks.workbook_applied", target_type="unit", target_id=user.unit_id or "", at=now,
            after={"applied": result.applied, "skipped": result.skipped},
        )  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------
# The bureau's review


def _recipient_facts(recipient: Recipient) -> rules.Recipient:
    return rules.Recipient(
        person_no=recipient.person_no, id_number=recipient.id_number,
        benefit_status="suspended" if recipient.benefit_status == "suspended" else "normal",
        status_since=recipient.status_since, status_reason=recipient.status_reason,
        monthly_amount=recipient.monthly_amount,
    )  # fmt: skip


def payment_change(
    *, recipient: Recipient, status: str, evidence_date: date | None, as_of: date
) -> rules.Action | None:
    """The payment change a verified status implies, per docs/rules.md §5 (the same function as
    the runs: `zige.rules.payment_action`): 丧失资格 → stop from the month after the loss;
    无法联系 → suspend from the month after the confirmation; 具备资格 for a 暂停 person →
    resume with back pay."""
    decision = rules.Decision(
        status=status, reason="", evidence_kind="unit_confirm", evidence_date=evidence_date, certified_on=None,  # type: ignore[arg-type]
        due_on=None, remind=False, channel=None, action=None,
    )  # fmt: skip
    facts = _recipient_facts(recipient)
    return rules.payment_action(
        recipient=facts, decision=decision, latest_release=_latest_release(facts, status, as_of), as_of=as_of
    )


def _latest_release(facts: rules.Recipient, status: str, as_of: date) -> date | None:
    """The person's latest 刑满释放 record dated on or before `as_of`, where the payment change
    needs it: a 暂停 person suspended for imprisonment and found eligible is back-paid from the
    month after release (docs/rules.md §5.3), as in the runs (`rules.decide`)."""
    if not (
        status == "eligible"
        and facts.benefit_status == "suspended"
        and is_imprisonment_reason(facts.status_reason or "")
    ):
        return None
    from zige.feeds.selectors import evidence_for_person

    releases = [
        r["date"]
        for r in evidence_for_person(id_number=facts.id_number)
        if r["kind"] == "release" and r["date"] is not None and r["date"] <= as_of
    ]
    return max(releases, default=None)


def _propose(
    *,
    recipient: Recipient,
    action: rules.Action | None,
    source: str,
    source_ref: str,
    user: User | None,
    now: datetime,
) -> str:
    if action is None:
        return ""
    from zige.benefits.services import payment_action_propose

    try:
        made = payment_action_propose(
            recipient=recipient, kind=action.action, effective_month=action.effective_month, months=action.months,
            amount=action.amount, source=source, source_ref=source_ref, proposed_by=user, now=now,
        )  # fmt: skip
    except ValueError as exc:  # the benefits service refused (its message is for the user)
        raise TransitionRefused(f"待遇处理建议未能生成：{exc}") from exc
    return f"payment_action:{getattr(made, 'pk', '')}"


def _evidence_csv(submission: Submission) -> bytes:
    """The approved result as one `unit_confirm` feed row (docs/rules.md §3). A 丧失资格 is dated
    on the day of the loss (the engine stops from the month after it), the others on the day of
    the confirmation. The task and report numbers make the file the report's own: approving it
    again could only produce the same bytes, which the import service records as a duplicate."""
    task = submission.task
    day = (
        submission.lost_on
        if submission.result == Result.LOST and submission.lost_on
        else submission.confirmed_on
    )
    method = Method(submission.method).label if submission.method != Method.OTHER else (
        submission.method_note or Method.OTHER.label
    )  # fmt: skip
    header = "身份证号,姓名,确认日期,确认方式,确认结果,核实任务\n"
    line = ",".join(
        _csv_cell(v)
        for v in (task.recipient.id_number, task.recipient.name, day.isoformat(), method,
                  Result(submission.result).label, f"{task.pk}-{submission.number}")
    )  # fmt: skip
    return (header + line + "\n").encode("utf-8")


def _csv_cell(value: str) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    if text[:1] in ("=", "+", "-", "@"):
        text = "'" + text
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text


def _finding_csv(task: VerificationTask, *, finding: str, death_date: date) -> bytes:
    """The bureau's 确认死亡 / 疑似冒领 finding as one `unit_confirm` row with 确认结果 丧失资格
    (docs/rules.md §1: a confirmation, after verification, that the person lost eligibility —
    notice 三(一)3 — is the loss record `unit_confirmed_lost`), dated on the day of the death as an
    approved unit report of a loss is: the next run stops from the month after it, or decides
    疑点核查 when alive evidence is dated after it (§2.1). 确认方式 names the finding and its task
    (`reports.explain` says so on the person page); the task number makes the file the finding's
    own (a task is resolved once)."""
    method = f"{BUREAU_FINDING}{Finding(finding).label}，核查任务#{task.pk}"
    header = "身份证号,姓名,确认日期,确认方式,确认结果,核实任务\n"
    line = ",".join(
        _csv_cell(v)
        for v in (task.recipient.id_number, task.recipient.name, death_date.isoformat(), method,
                  Result.LOST.label, f"{task.pk}-finding")
    )  # fmt: skip
    return (header + line + "\n").encode("utf-8")


EVIDENCE_KIND = "unit_confirm"


@dataclass
class _Imported:
    """What an approval's evidence import wrote that its transaction must take back if it rolls
    back: the new batch's evidence files and its upload (none for a duplicate of an earlier
    batch, whose files are that batch's)."""

    evidence_path: str = ""
    stored_path: str = ""

    def discard(self) -> None:
        from zige.feeds import store

        if self.evidence_path:
            store.discard(store.batch_written(self.evidence_path))
        store.upload_discard(self.stored_path)


def _import_evidence(
    submission: Submission, *, user: User, now: datetime, written: _Imported | None = None
) -> Any:
    """Through the feeds app's public import service, synchronously; returns the batch that
    holds the row (the earlier one when the same content was imported before). Called by
    `submission_review` inside the approval's transaction: the batch becomes `succeeded` — its
    row evidence — only when that transaction commits; `written` collects what to discard if it
    does not."""
    content = _evidence_csv(submission)
    name = f"unit_confirm_task{submission.task_id}_{submission.number}.csv"
    return _import_row(content, name=name, user=user, now=now, written=written)


def _import_row(content: bytes, *, name: str, user: User, now: datetime, written: _Imported | None) -> Any:
    """One `unit_confirm` row (`content`, a CSV file named `name`) through the feeds app's public
    import service, in the caller's transaction (see `_import_evidence`)."""
    from zige.feeds.models import ImportStatus
    from zige.feeds.services import import_execute, import_submit

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(content)
        batch = import_submit(
            source=path, file_name=name, kind=EVIDENCE_KIND, user=user, now=now, enqueue=False
        )
    if written is not None:
        written.stored_path = batch.stored_path
    if batch.status == ImportStatus.QUEUED:
        batch = import_execute(batch_id=batch.pk, now=now)
    if written is not None and batch.status == ImportStatus.SUCCEEDED:
        written.evidence_path = batch.evidence_path
    if batch.status == ImportStatus.DUPLICATE and batch.duplicate_of_id:
        return batch.duplicate_of
    if batch.status == ImportStatus.SUCCEEDED and batch.rows_used + batch.duplicate_rows != 1:
        # The import ran, but did not take the row: say why, not the import's 已完成.
        reject = batch.rejects.order_by("pk").first()
        why = (
            f"{reject.field}“{reject.value}”：{REJECT_REASON_ZH.get(reject.reason, reject.reason)}"
            if reject is not None
            else "该行未被采用"
        )
        raise TransitionRefused(
            f"审核结果未能写入比对数据（导入 #{batch.pk}：{why}）。请退回单位核对后重新上报。",
            f"The result was not taken as evidence (import {batch.pk}: row rejected).",
        )
    if batch.status != ImportStatus.SUCCEEDED or batch.rows_used + batch.duplicate_rows != 1:
        raise TransitionRefused(
            f"审核结果写入比对数据失败（导入 #{batch.pk}：{batch.message or ImportStatus(batch.status).label}）。",
            f"The result could not be stored as evidence (import {batch.pk}, {batch.status}).",
        )
    return batch


def _reviewable(task_id: int, user: User, *, again: bool = False) -> tuple[VerificationTask, Submission]:
    """The task (locked) and its latest report, when that report waits for review and `user`
    did not make it."""
    task = _lock(task_id)
    submission = Submission.objects.select_for_update().filter(task=task).order_by("-number").first()
    if task.status != TaskStatus.SUBMITTED or submission is None or submission.approved is not None:
        if again:
            raise TransitionRefused(
                f"任务 #{task.pk} 已被他人处理。", f"Task {task.pk} was reviewed meanwhile."
            )
        raise TransitionRefused(
            f"任务 #{task.pk} 当前为“{TaskStatus(task.status).label}”，没有待审核的上报。",
            "Nothing to review.",
        )
    if submission.submitted_by_id == user.pk:
        raise PermissionDenied("上报人不能审核自己的上报（经办与复核分离）。")
    return task, submission


def submission_review(*, task_id: int, user: User, approve: bool, note: str, now: datetime) -> Submission:
    """Approve or return the latest report of a task (bureau staff; never the report's maker).

    An approval and its evidence are one transaction: the maker-checker check, the import of
    the result as a `unit_confirm` row, the payment proposal and the task's approval commit
    together or not at all — a report that is returned meanwhile, refused or interrupted never
    becomes evidence that the next run would act on (a 丧失资格 stops the pension).

    Why inside the transaction rather than an import of its own kept pending: a feed import's
    commit point is the transaction that marks its batch `succeeded`, and only a succeeded
    batch's manifest is read by anything (runs, person pages, compaction; `zige.feeds.store`).
    Run inside this transaction, that mark is a savepoint that commits with the approval, so
    the evidence is invisible until the approval commits, with no new state for imports. The
    Parquet files are renamed into place before, as for every import: if the transaction rolls
    back they are discarded here (with the upload, when no batch refers to it); after a crash
    they are files no succeeded batch lists, ignored like those of any interrupted import. The
    kind's import lock (`EvidenceStore.import_lock`) is taken before the transaction and held
    to its commit, as an import holds it from reading the stored rows to its commit; approvals
    therefore wait for each other and for `unit_confirm` file imports."""
    if not can_operate(user):
        raise PermissionDenied("only bureau staff review verifications")
    note = note.strip()
    if not approve and not note:
        raise SubmissionInvalid([("note", "退回时须填写原因")])
    if not approve:
        with transaction.atomic():
            task, submission = _reviewable(task_id, user)
            _review_record(task, submission, user=user, approve=False, note=note, batch=None, now=now)
        return submission
    from zige.feeds import store

    written = _Imported()
    with store.evidence_store().import_lock(EVIDENCE_KIND):
        try:
            with transaction.atomic():
                task, submission = _reviewable(task_id, user)
                batch = _import_evidence(submission, user=user, now=now, written=written)
                # The import ran the feeds app's code in this transaction: read the task and
                # its report again before changing them.
                task, submission = _reviewable(task_id, user, again=True)
                _review_record(task, submission, user=user, approve=True, note=note, batch=batch, now=now)
        except BaseException:
            written.discard()
            raise
    return submission


def _review_record(
    task: VerificationTask, submission: Submission, *, user: User, approve: bool, note: str, batch: Any,
    now: datetime,
) -> None:  # fmt: skip
    """The review on the (locked) report and task; for an approval, the payment proposal."""
    submission.reviewed_by = user
    submission.reviewed_at = now
    submission.approved = approve
    submission.review_note = note
    if approve:
        submission.evidence_batch = batch
        status = {Result.LOST: "stop", Result.UNREACHABLE: "suspend", Result.ELIGIBLE: "eligible"}[
            Result(submission.result)
        ]
        day = submission.lost_on if submission.result == Result.LOST else submission.confirmed_on
        action = payment_change(
            recipient=task.recipient, status=status, evidence_date=day, as_of=_local_day(now)
        )
        submission.payment_ref = _propose(
            recipient=task.recipient, action=action, source="verification",
            source_ref=f"verification:{task.pk}-{submission.number}", user=user, now=now,
        )  # fmt: skip
        if submission.result == Result.ELIGIBLE:
            from zige.benefits.services import payment_suspensions_withdraw_reported

            payment_suspensions_withdraw_reported(
                recipient_id=task.recipient_id, task_id=task.pk, confirmed_on=submission.confirmed_on, user=user,
                now=now,
            )  # fmt: skip
    submission.save()
    _transition(
        task, TaskStatus.APPROVED if approve else TaskStatus.RETURNED, actor=user, now=now,
        note=(f"审核通过：{Result(submission.result).label}" if approve else f"退回：{note}"),
        **({"payment_ref": submission.payment_ref} if approve else {}),
    )  # fmt: skip


def finding_errors(
    *, task: VerificationTask, finding: str, files: Sequence[Evidence]
) -> list[tuple[str, str]]:
    """What the evidence files of a finding lack. 确认健在 says the records of a death or a loss
    were wrong (notice 四(二)) and clears them for every later run (docs/rules.md §8.5), so it
    needs evidence: at least one on-site photo or video or written confirmation; for a person in
    a special group (三(一)2: 现场确认图片或视频等佐证资料和书面确认材料) both. Files of the on-site
    kind are photos or videos. The special groups as of the task's date, as the task page says."""
    errors: list[tuple[str, str]] = []
    errors += _kind_errors(files)
    if finding == Finding.ALIVE:
        on_site = any(f.role == AttachmentRole.ON_SITE for f in files)
        written = any(f.role == AttachmentRole.WRITTEN for f in files)
        special = special_reasons(task.recipient, as_of=task.as_of)
        if special:
            if not on_site:
                errors.append(("on_site", f"{'、'.join(special)}人员确认健在须上传现场确认图片或视频"))
            if not written:
                errors.append(("written", f"{'、'.join(special)}人员确认健在须上传书面确认材料"))
        elif not (on_site or written):
            errors.append(("files", "确认健在须上传现场确认图片或视频，或书面确认材料（至少一份）"))
    return errors


def _store_finding_files(
    task: VerificationTask, files: Sequence[Evidence], *, user: User, now: datetime
) -> list[dict[str, Any]]:
    """The finding's evidence files, stored like a report's (by content, outside the web root);
    returns their facts for the audit record of the finding."""
    stored_rows = []
    for f in files:
        stored = attachment_store(upload=f.upload)
        stored_rows.append(
            Attachment.objects.create(
                task=task, role=f.role, file_kind=stored.file_kind, original_name=f.upload.name, sha256=stored.sha256,
                size=stored.size, stored_path=stored.stored_path, scan=f.upload.scan, uploaded_by=user, uploaded_at=now,
            )
        )  # fmt: skip
    return [
        {"attachment": a.pk, "role": a.role, "name": a.original_name, "kind": a.file_kind, "sha256": a.sha256,
         "size": a.size, "scan": a.scan}
        for a in stored_rows
    ]  # fmt: skip


def review_resolve(
    *,
    task_id: int,
    user: User,
    finding: str,
    note: str,
    now: datetime,
    death_date: date | None = None,
    amount_obtained: Decimal | None = None,
    files: Sequence[Evidence] = (),
    confirm_alive_after: bool = False,
    confirm_later_death: bool = False,
    later_death_reason: str = "",
) -> VerificationTask:
    """The bureau's finding on a review-queue task (疑点核查, notice 四(二)):

    - `alive` 确认健在: every stop of the person still awaiting approval that a run, a
      verification or a task proposed is withdrawn (`payment_stops_withdraw_alive`, audited; an
      approved or exported one is left to the correction path and named on the finding page), a
      暂停 person is resumed with back pay (a proposal), and the person's loss
      records and declarations of missing dated on or before today are cleared: later runs no
      longer count them (`selectors.alive_findings`, docs/rules.md §8.5); the reminders their
      stop or suspension cancelled come back with the next run that finds them due
      (`zige.notifications.services.messages_for_run`), not here;
    - `dead` 确认死亡: payment stops from the month after `death_date` (the months paid since
      are the overpayment to recover);
    - `fraud` 疑似冒领: as `dead`, and a fraud case is opened for the amount collected after
      the death (`amount_obtained`, by default the months paid since × 月养老金).

    A `dead` or `fraud` finding becomes evidence in its own transaction, as an approved unit
    report does (`submission_review`): one `unit_confirm` row 丧失资格 dated `death_date`
    (`_finding_csv`), imported through the feeds app's import service, so that the next run
    decides 丧失资格 — or 疑点核查 when alive evidence is dated after the death (docs/rules.md
    §2.1). When the person has such alive evidence (trips, check-ups, face checks …) dated after
    `death_date`, the finding is refused with the latest of them unless `confirm_alive_after`
    says the officer has checked them: records of life after a death are a sign of 冒领 (notice
    四(二)) and must not be passed over unseen.

    `files`: the evidence of the finding (on-site photos or videos, written confirmation, other),
    checked by content by the caller (`uploads.upload_check`); `alive` needs some
    (`finding_errors`). They are stored with the task and listed in the finding's audit record.
    """
    if not can_operate(user):
        raise PermissionDenied("only bureau staff resolve review tasks")
    errors: list[tuple[str, str]] = []
    if finding not in Finding.values:
        errors.append(("finding", "请选择核查结论"))
    if not note.strip():
        errors.append(("note", "请填写核查说明"))
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is None:
        errors.append(("death_date", "确认死亡或疑似冒领时须填写死亡日期"))
    today = _local_day(now)
    if death_date is not None and death_date > today:
        errors.append(("death_date", "死亡日期不能晚于今天"))
    if errors:
        raise SubmissionInvalid(errors)
    dies = finding in (Finding.DEAD, Finding.FRAUD)
    from zige.feeds import store

    written = _Imported()
    # A death becomes `unit_confirm` evidence: the kind's import lock from before the
    # transaction to its commit, as for an approval (`submission_review`).
    with store.evidence_store().import_lock(EVIDENCE_KIND) if dies else nullcontext():
        try:
            with transaction.atomic():
                return _resolve_locked(
                    task_id, user=user, finding=finding, note=note, now=now, today=today, death_date=death_date,
                    amount_obtained=amount_obtained, files=files, confirm_alive_after=confirm_alive_after,
                    confirm_later_death=confirm_later_death, later_death_reason=later_death_reason,
                    written=written,
                )  # fmt: skip
        except BaseException:
            written.discard()
            raise


def alive_after_death_error(*, recipient: Recipient, death_date: date, today: date) -> tuple[str, str] | None:
    """The form's warning when the person has alive evidence dated after `death_date` (up to
    today): how many records, and the latest, e.g. 「死亡日期2026-08-01之后仍有2条生存信息，最近一条：
    2026-09-01 在太原市中心医院健康体检（checkup_2026.csv）…」. None when there is none."""
    after = alive_records_after(id_number=recipient.id_number, after=death_date, until=today)
    if not after:
        return None
    latest = after[0]
    source = f"（{latest['file_name']}）" if latest.get("file_name") else ""
    return (
        "confirm_alive_after",
        f"死亡日期{death_date.isoformat()}之后仍有{len(after)}条生存信息，最近一条："
        f"{_day_text(latest['date'])} {describe_record(latest)}{source}。死亡后的乘车、体检、刷脸认证等记录"
        "是冒领的迹象（通知四(二)），下次认证将列为疑点核查、暂不停发：请逐条核实。确认死亡日期无误的，"
        "请勾选“已核实死亡日期之后的生存信息”后再提交；系他人冒用的，请选择“疑似冒领”。",
    )


def earliest_recorded_death(*, recipient: Recipient, today: date) -> dict[str, Any] | None:
    """The person's earliest recorded death up to today: a death, cremation, declaration of
    death or a unit's / the bureau's 丧失资格 (`rules.loss_kind`; a declaration of missing is no
    date of death), as `selectors.loss_records_until` lists them, except those a 确认健在 cleared
    (dated on or before its day, docs/rules.md §8.5: the person was found alive after them) and
    the loss records of death findings a later one superseded (`superseded_findings`). None when
    there is none."""
    alive = alive_finding_of(recipient.pk)
    superseded = {f.death_date for f in superseded_findings(recipient_id=recipient.pk).get(recipient.pk, [])}

    def counts(r: dict[str, Any]) -> bool:
        kind = rules.loss_kind(rules.Record(kind=r["kind"], day=r["date"], sub=r["sub"] or ""))
        if kind is None or (alive is not None and r["date"] <= alive[0]):
            return False
        return not (kind == "unit_confirmed_lost" and r["date"] in superseded)

    deaths = [r for r in loss_records_until(id_number=recipient.id_number, until=today) if counts(r)]
    return min(deaths, key=lambda r: r["date"]) if deaths else None


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def later_death_error(
    *, recipient: Recipient, death_date: date, today: date
) -> tuple[tuple[str, str], dict[str, Any]] | None:
    """The form's refusal when `death_date` is later than the person's earliest recorded death
    (`earliest_recorded_death`): the record's date, what it is and the months between, e.g.
    「死亡日期2026-08-01晚于已有记录的最早死亡日期2026-05-10（死亡…），相差3个月…」, and the same
    facts for the audit record. None when the date is on or before every record (or none)."""
    recorded = earliest_recorded_death(recipient=recipient, today=today)
    if recorded is None or death_date <= recorded["date"]:
        return None
    months = _months_between(recorded["date"], death_date)
    source = f"（{recorded['file_name']}）" if recorded.get("file_name") else ""
    message = (
        f"死亡日期{death_date.isoformat()}晚于已有记录的最早死亡日期{_day_text(recorded['date'])}"
        f"（{describe_record(recorded)}{source}），相差{months}个月：以较晚的日期计算，多发月数和冒领金额"
        "将少算。请按记录填写死亡日期；确以本次核查的日期为准的，请勾选“以本次核查的死亡日期为准”并填写说明。"
    )
    facts = {
        "earliest_date": _day_text(recorded["date"]),
        "earliest_record": describe_record(recorded),
        "file_name": recorded.get("file_name") or "",
        "months_later": months,
    }
    return ("confirm_later_death", message), facts


def _day_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value or "")


def _resolve_locked(
    task_id: int, *, user: User, finding: str, note: str, now: datetime, today: date, death_date: date | None,
    amount_obtained: Decimal | None, files: Sequence[Evidence], confirm_alive_after: bool,
    confirm_later_death: bool, later_death_reason: str, written: _Imported,
) -> VerificationTask:  # fmt: skip
    """`review_resolve` inside its transaction."""
    task = _lock(task_id)
    if task.kind != TaskKind.REVIEW:
        raise TransitionRefused("单位核实任务须由单位上报后审核。", "Unit tasks are reviewed, not resolved.")
    if task.status not in ("open", "overdue"):  # checked again by the transition table
        raise TransitionRefused(
            f"任务 #{task.pk} 当前为“{TaskStatus(task.status).label}”，不能再记录结论。",
            f"Task {task.pk} is {task.status}.",
        )
    problems = finding_errors(task=task, finding=finding, files=files)
    alive_after: dict[str, Any] | None = None
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is not None:
        warning = alive_after_death_error(recipient=task.recipient, death_date=death_date, today=today)
        if warning is not None:
            if not confirm_alive_after:
                problems.append(warning)
            else:
                alive_after = {"confirmed": True, "warning": warning[1]}
    later_death: dict[str, Any] | None = None
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is not None:
        later = later_death_error(recipient=task.recipient, death_date=death_date, today=today)
        if later is not None:
            if not confirm_later_death:
                problems.append(later[0])
            elif not later_death_reason.strip():
                problems.append(
                    ("later_death_reason", "以本次核查的死亡日期为准的，须填写说明（为何晚于已有的死亡记录）")
                )
            else:
                later_death = {"confirmed": True, **later[1], "reason": later_death_reason.strip()}
    if problems:
        raise SubmissionInvalid(problems)
    batch = None
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is not None:
        content = _finding_csv(task, finding=finding, death_date=death_date)
        batch = _import_row(
            content, name=f"unit_confirm_review{task.pk}.csv", user=user, now=now, written=written
        )
        # The import ran the feeds app's code in this transaction: read the task again.
        task = _lock(task_id)
    ref = f"review:{task.pk}"
    withdrawn: list[int] = []
    # A death on or before an earlier 确认健在's day: this finding overrides it (rules §8.5).
    overrides = None
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is not None:
        earlier = alive_finding_of(task.recipient_id)
        if earlier is not None and death_date <= earlier[0]:
            overrides = {"review_task": earlier[1], "found_on": earlier[0].isoformat()}
    # The earlier death findings of another date this one supersedes (rules §8.5, the latest
    # finding wins): their loss records no longer count (`selectors.superseded_findings`).
    supersedes = []
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is not None:
        supersedes = [
            {"review_task": pk, "death_date": _day_text(day)}
            for pk, day in death_findings(recipient_id=task.recipient_id)
            .exclude(pk=task.pk)
            .exclude(death_date=death_date)
            .order_by("closed_at", "pk")
            .values_list("pk", "death_date")
        ]  # fmt: skip
    if finding == Finding.ALIVE:
        from zige.benefits.services import payment_stops_withdraw_alive

        # A living person is not stopped: the stops still awaiting approval go (rules §8.5).
        withdrawn = [
            a.pk
            for a in payment_stops_withdraw_alive(
                recipient_id=task.recipient_id, task_id=task.pk, found_on=today, user=user, now=now
            )
        ]
        action = payment_change(recipient=task.recipient, status="eligible", evidence_date=today, as_of=today)
    else:
        action = payment_change(
            recipient=task.recipient, status="stop", evidence_date=death_date, as_of=today
        )
    payment = _propose(recipient=task.recipient, action=action, source="verification", source_ref=ref,
                       user=user, now=now)  # fmt: skip
    obtained = amount_obtained if amount_obtained is not None else (action.amount if action else Decimal(0))
    if finding == Finding.FRAUD and obtained <= 0:
        raise SubmissionInvalid([("amount_obtained", "冒领金额须大于 0：请填写冒领金额")])
    cases = None
    if finding in (Finding.DEAD, Finding.FRAUD) and death_date is not None:
        cases = _follow_fraud_cases(task, finding=finding, death_date=death_date, obtained=obtained,
                                    stated=amount_obtained is not None, ref=ref, user=user, now=now)  # fmt: skip
        named = cases.live if finding == Finding.FRAUD else cases.followed  # the case this finding is about
        payment = " ".join([payment, *(f"fraud_case:{c.pk}" for c in named)]).strip()
    if finding == Finding.FRAUD and not (cases is not None and cases.live):
        from zige.benefits.services import FraudCaseNotEnded, fraud_case_open

        try:
            case = fraud_case_open(recipient=task.recipient, amount_obtained=obtained, opened_by=user,
                                   source_ref=ref, note=note.strip(), now=now)  # fmt: skip
        except FraudCaseNotEnded as exc:  # one case not ended per person: the finding names it
            case = exc.case
        except ValueError as exc:
            raise TransitionRefused(f"冒领案件未能立案：{exc}") from exc
        payment = f"{payment} fraud_case:{case.pk}".strip()
    stored = _store_finding_files(task, files, user=user, now=now)
    _transition(
        task, TaskStatus.RESOLVED, actor=user, now=now, note=f"{Finding(finding).label}：{note.strip()}",
        finding=finding, finding_note=note.strip(), payment_ref=payment[:64], death_date=death_date,
        audit_extra={
            "files": stored, "death_date": death_date.isoformat() if death_date else None,
            **({"evidence_batch": batch.pk} if batch is not None else {}),
            **({"alive_after_death": alive_after} if alive_after is not None else {}),
            **({"later_than_recorded_death": later_death} if later_death is not None else {}),
            **({"withdrawn_stops": withdrawn} if withdrawn else {}),
            **({"overrides_alive": overrides} if overrides is not None else {}),
            **({"supersedes_findings": supersedes} if supersedes else {}),
            **({"fraud_cases_followed": [c.pk for c in cases.followed]} if cases and cases.followed else {}),
            **({"fraud_cases_to_correct": cases.to_correct} if cases and cases.to_correct else {}),
        },
    )  # fmt: skip
    return task


def _follow_fraud_cases(
    task: VerificationTask, *, finding: str, death_date: date, obtained: Decimal, stated: bool, ref: str,
    user: User, now: datetime,
) -> FindingCases:  # fmt: skip
    """A 确认死亡 / 疑似冒领 after an earlier bureau finding opened a fraud case for the person:
    the case follows the amount obtained after this finding's date of death
    (`benefits.services.fraud_cases_follow_finding`: an open case takes it, audited; a fined or
    closed one is left and named for a manual correction). The amount changes when this finding
    revises the date of death of the person's previous death finding, or when a 疑似冒领 states
    its amount; a finding of the same date without one leaves the case as it is. Returns the
    service's `FindingCases` (a 疑似冒领 opens no second case for a death that has one)."""
    from zige.benefits.services import fraud_cases_follow_finding

    previous = (
        death_findings(recipient_id=task.recipient_id)
        .exclude(pk=task.pk)
        .order_by("-closed_at", "-pk")
        .values_list("death_date", flat=True)
        .first()
    )  # fmt: skip
    revises = previous is not None and previous != death_date
    follows = revises or (finding == Finding.FRAUD and stated)
    try:
        return fraud_cases_follow_finding(
            recipient=task.recipient, amount_obtained=obtained if follows else None, death_date=death_date,
            source_ref=ref, user=user, now=now,
        )  # fmt: skip
    except ValueError as exc:  # the benefits service refused (its message is for the user)
        raise TransitionRefused(f"冒领案件金额未能更新：{exc}") from exc


# ---------------------------------------------------------------------------------------------
# The daily sweep


def tasks_sweep(*, now: datetime) -> dict[str, int]:
    """Reminders before the deadline (once per task and threshold), overdue tasks escalated to
    the bureau and, by `ZIGE_OVERDUE_SUSPENDS`, a proposed suspension (notice 三(一)4: 长期联系不到
    … 暂停发放)."""
    today = _local_day(now)
    counts = {"reminders": 0, "overdue": 0, "suspensions": 0, "unit_sms": 0}
    with transaction.atomic():
        thresholds = config.reminder_days()
        # A 终止 person's tasks are closed by the import that terminated them
        # (`tasks_close_for_terminated`); one left from before that is neither reminded nor
        # escalated (and no suspension is proposed for a pension that has ended).
        active = VerificationTask.objects.filter(kind=TaskKind.UNIT, status__in=("open", "returned")).exclude(
            recipient__benefit_status=BenefitStatus.TERMINATED
        )
        if thresholds:
            due_soon = list(
                active.filter(
                    deadline__gte=today, deadline__lte=today + timedelta(days=max(thresholds))
                ).values_list("pk", "deadline", "unit_id")
            )
            reminded = set(
                TaskReminder.objects.filter(task_id__in=[pk for pk, _, _ in due_soon]).values_list(
                    "task_id", "days_before"
                )
            )
            new = []
            to_text = []
            for pk, deadline, unit_id in due_soon:
                left = (deadline - today).days
                threshold = min(t for t in thresholds if left <= t)
                if any((pk, t) in reminded for t in thresholds if t <= threshold):
                    continue
                new.append(TaskReminder(task_id=pk, days_before=threshold, created_at=now,
                                        text=f"核实任务 #{pk} 将于 {deadline.isoformat()} 到期（还有 {left} 天）"))  # fmt: skip
                to_text.append(DueTask(unit_id=unit_id, days_before=threshold, deadline=deadline))
            TaskReminder.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
            counts["reminders"] = len(new)
            # One SMS per unit and threshold to the unit's mobile, sent later by the SMS sender.
            counts["unit_sms"] = unit_deadline_messages(tasks=to_text, day=today, now=now)["unit_sms"]
        late = list(active.filter(deadline__lt=today).select_related("recipient").order_by("pk"))
        suspends = config.overdue_suspends()
        for task in late:
            task = _lock(task.pk)
            if task.status not in ("open", "returned") or task.deadline >= today:
                # Changed since it was listed (the unit reported, the person moved to another
                # unit with a new deadline): not overdue — and one such task must not fail the
                # whole sweep (its reminders, the other tasks) with a refused transition.
                continue
            note = f"已超过核实期限 {task.deadline.isoformat()}，上报社保局"
            payment = ""
            if suspends and task.recipient.benefit_status == "normal":
                action = payment_change(recipient=task.recipient, status="suspend", evidence_date=task.deadline,
                                        as_of=today)  # fmt: skip
                payment = _propose(recipient=task.recipient, action=action, source="overdue",
                                   source_ref=f"overdue:{task.pk}", user=None, now=now)  # fmt: skip
                if payment:
                    counts["suspensions"] += 1
                    note += "，建议暂停发放"
            _transition(
                task,
                TaskStatus.OVERDUE,
                actor=None,
                now=now,
                note=note,
                escalated_at=now,
                payment_ref=payment,
            )
            counts["overdue"] += 1
        audit_record(
            action="tasks.swept",
            target_type="verification",
            target_id=today.isoformat(),
            at=now,
            after=counts,
        )
    return counts
