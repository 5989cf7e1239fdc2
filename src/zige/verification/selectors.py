"""Verification tasks (reads), scoped to the user: a unit operator sees their own unit's only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, F, Min, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from zige.accounts.scoping import scope_by_unit_field, sees_bureau_reviews
from zige.roster.selectors import person_matches
from zige.verification.models import (
    ACTIVE,
    AWAITING_UNIT,
    Attachment,
    Finding,
    Submission,
    TaskKind,
    TaskReminder,
    TaskStatus,
    VerificationTask,
)

DUE_SOON_DAYS = 30


def _scoped(qs: QuerySet[Any], user: Any, task: str = "") -> QuerySet[Any]:
    """Rows of tasks (`task`: the path to the task, "" for the tasks themselves) the user may see.

    A unit operator: tasks of their unit whose person is in their unit now. Both conditions:
    the roster import moves a person's active tasks with them (`services.tasks_reassign`), and a
    task row that still names the old unit (a closed task, or one missed) never lets the old
    unit reach the person (defence in depth), and only unit-verification tasks: the bureau's
    疑点核查 (`review`) tasks, their findings and files are the bureau's own work
    (`scoping.sees_bureau_reviews`), not found for a unit (404). Bureau roles and auditors:
    every task.
    """
    qs = scope_by_unit_field(qs, user, f"{task}unit_id")
    qs = scope_by_unit_field(qs, user, f"{task}recipient__unit_id")
    if not sees_bureau_reviews(user):
        qs = qs.exclude(**{f"{task}kind": TaskKind.REVIEW})
    return qs


def tasks_visible(*, user: Any) -> QuerySet[VerificationTask]:
    return _scoped(VerificationTask.objects.select_related("recipient", "unit"), user)


DEADLINE_WINDOWS = ("late", "soon")  # 已过截止日期, 30 天内到期 (`TaskFilters.due`)


@dataclass(frozen=True)
class TaskFilters:
    """The task list's filters but the status (the status chips count under these).

    `q`: one person, by 个人编号 or 身份证号 (whole; a lower-case x is read as X) or the start
    of their name. `due`: `late` (the unit's to do, past the deadline) or `soon` (the unit's to
    do, due within DUE_SOON_DAYS of `today`); a report waiting for the bureau is neither."""

    today: date
    kind: str = ""
    unit_no: str = ""
    reason: str = ""
    q: str = ""
    due: str = ""

    @property
    def any(self) -> bool:
        return any((self.kind, self.unit_no, self.reason, self.q, self.due in DEADLINE_WINDOWS))

    def apply(self, qs: QuerySet[VerificationTask]) -> QuerySet[VerificationTask]:
        if self.kind:
            qs = qs.filter(kind=self.kind)
        if self.unit_no:
            qs = qs.filter(unit__unit_no=self.unit_no)
        if self.reason:
            qs = qs.filter(reason=self.reason)
        if self.q:
            qs = qs.filter(person_matches(self.q, path="recipient__"))
        if self.due == "late":
            qs = qs.filter(status__in=AWAITING_UNIT, deadline__lt=self.today)
        elif self.due == "soon":
            soon = self.today + timedelta(days=DUE_SOON_DAYS)
            qs = qs.filter(status__in=AWAITING_UNIT, deadline__gte=self.today, deadline__lte=soon)
        return qs


def tasks_list(
    *, user: Any, status: str = "", filters: TaskFilters | None = None, active_only: bool = True
) -> QuerySet[VerificationTask]:
    """Tasks by deadline (soonest first), then person; with no status, the active ones."""
    qs = tasks_visible(user=user)
    if filters is not None:
        qs = filters.apply(qs)
    if status:
        qs = qs.filter(status=status)
    elif active_only:
        qs = qs.filter(status__in=ACTIVE)
    return qs.order_by("deadline", "recipient__person_no")


def task_reasons(*, user: Any) -> list[str]:
    """The reasons (the decisions' reason codes) of the tasks the user sees, for the filter."""
    return list(tasks_visible(user=user).order_by("reason").values_list("reason", flat=True).distinct())


# The statuses of a task in hand, each a column of `unit_progress` named by its value.
PROGRESS_STATUSES = (TaskStatus.OPEN, TaskStatus.RETURNED, TaskStatus.SUBMITTED, TaskStatus.OVERDUE)


def unit_progress(*, user: Any, today: date) -> QuerySet[Any]:
    """各单位核实进度: per unit with unit-verification tasks still in hand (the unit's to do, or
    reported and waiting for the bureau), how many are 待核实, 已退回, 已逾期 (escalated),
    已上报待审核, how many of the unit's to do are past their deadline (`late`, whether the
    sweep has marked them yet or not), and the nearest deadline of those left to do. Rows are
    dicts (`unit__unit_no`, `unit__name`, `active`, one count for each of `PROGRESS_STATUSES`,
    `late`, `nearest`), the latest first: most late, then the
    nearest deadline, then most in hand. The bureau's 疑点核查 tasks are its own work, not a unit's: left out."""
    awaiting = Q(status__in=AWAITING_UNIT)
    qs = tasks_visible(user=user).filter(kind=TaskKind.UNIT, status__in=ACTIVE)
    return (
        qs.order_by()
        .values("unit__unit_no", "unit__name")
        .annotate(
            active=Count("pk"),
            **{status: Count("pk", filter=Q(status=status)) for status in PROGRESS_STATUSES},
            late=Count("pk", filter=awaiting & Q(deadline__lt=today)),
            nearest=Min("deadline", filter=awaiting),
        )
        .order_by("-late", F("nearest").asc(nulls_last=True), "-active", "unit__unit_no")
    )


def tasks_of_person(*, user: Any, recipient_id: int, limit: int = 10) -> list[VerificationTask]:
    """The person's verification tasks the user may see (a unit operator: its own unit's, no
    bureau 疑点核查), newest first, for the person page."""
    qs = tasks_visible(user=user).filter(recipient_id=recipient_id)
    return list(qs.order_by("-created_at", "-pk")[:limit])


def review_queue(*, user: Any) -> QuerySet[VerificationTask]:
    """What waits for the bureau: reports to review, review-queue tasks, overdue (escalated) tasks."""
    qs = tasks_visible(user=user).filter(
        Q(status="submitted") | Q(kind=TaskKind.REVIEW, status__in=("open", "overdue")) | Q(status="overdue")
    )
    # The queue shows each task's latest report: one query for the page, not one per row.
    newest = Prefetch(
        "submissions", queryset=Submission.objects.order_by("-number"), to_attr="submissions_newest"
    )
    return qs.order_by("deadline", "pk").prefetch_related(newest)


def next_in_review_queue(*, user: Any, after: VerificationTask) -> VerificationTask | None:
    """下一条: the task after `after` in the user's review queue (`review_queue`: its scope and
    its order, deadline then number), from the top again past the end; None when nothing else
    waits. For the page a finding lands on, so the officer goes on to the next task."""
    qs = review_queue(user=user).exclude(pk=after.pk)
    later = qs.filter(Q(deadline__gt=after.deadline) | Q(deadline=after.deadline, pk__gt=after.pk)).first()
    return later or qs.first()


def status_counts(*, user: Any, filters: TaskFilters | None = None) -> dict[str, int]:
    """Tasks by status (under `filters`, when given)."""
    qs = tasks_visible(user=user)
    if filters is not None:
        qs = filters.apply(qs)
    rows = qs.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    return dict(rows)


def due_soon_count(*, user: Any, today: date) -> int:
    return (
        tasks_visible(user=user)
        .filter(status__in=("open", "returned"), deadline__lte=today + timedelta(days=DUE_SOON_DAYS))
        .count()
    )


def reminders_for(*, user: Any, limit: int = 20) -> QuerySet[TaskReminder]:
    return (
        _scoped(TaskReminder.objects.select_related("task", "task__recipient"), user, "task__")
        .filter(task__status__in=("open", "returned"))
        .order_by("-created_at")[:limit]
    )


def task_get(*, user: Any, pk: int) -> VerificationTask:
    try:
        return tasks_visible(user=user).get(pk=pk)
    except VerificationTask.DoesNotExist:
        raise Http404("no such task") from None


def submissions_of(task: VerificationTask) -> list[Submission]:
    return list(
        task.submissions.select_related("submitted_by", "reviewed_by", "evidence_batch")
        .prefetch_related("attachments")
        .order_by("-number")
    )


def attachment_get(*, user: Any, pk: int) -> Attachment:
    """An evidence file of a task the user may see: a report's (through its submission) or a
    finding's (the task's own); 404 otherwise."""
    found = Attachment.objects.select_related("submission").filter(pk=pk).first()
    if found is None:
        raise Http404("no such attachment")
    task_get(user=user, pk=found.owner_task_id)  # the same scope as the task page: 404 outside it
    return found


def finding_attachments(task: VerificationTask) -> list[Attachment]:
    """The evidence files of the bureau's finding on a review task."""
    return list(task.finding_attachments.select_related("uploaded_by").order_by("pk"))


def form1_rows(*, user: Any, unit_no: str) -> tuple[Any, list[dict[str, str]]]:
    """The unit and its open unit-verification tasks as rows of 附件1 (engine/forms.py's format).

    The list the unit works from (notice 三(一)1): one row per person whose task still waits for
    the unit's report (open, returned or overdue), by deadline then 个人编号. A unit operator only
    ever gets their own unit (404 for another one), and only the people in it now.

    ID numbers are full only for the roles that may reveal them (`scoping.can_reveal`: bureau
    staff, the unit's operator); anyone else (an auditor) gets them masked, as on every page.
    """
    from zige.accounts.masking import mask_id
    from zige.accounts.scoping import can_reveal
    from zige.engine.outputs import BENEFIT_STATUS_ZH, evidence_text
    from zige.ids import sex_of
    from zige.roster.models import BenefitStatus, Unit

    unit = Unit.objects.filter(unit_no=unit_no).first()
    if unit is None or (getattr(user, "unit_id", None) is not None and user.unit_id != unit.pk):
        raise Http404("no such unit")
    # A 终止 person is asked for nothing (their tasks close with the import that terminated them,
    # `services.tasks_close_for_terminated`; one left from before that is not listed).
    tasks = (
        tasks_visible(user=user)
        .filter(unit=unit, kind=TaskKind.UNIT, status__in=AWAITING_UNIT)
        .exclude(recipient__benefit_status=BenefitStatus.TERMINATED)
        .order_by("deadline", "recipient__person_no")
    )
    full = can_reveal(user)
    rows = []
    for task in tasks:
        person = task.recipient
        rows.append(
            {
                "person_no": person.person_no,
                "name": person.name,
                "sex": person.sex or sex_of(person.id_number),
                "id_number": person.id_number if full else mask_id(person.id_number),
                "benefit_status": BENEFIT_STATUS_ZH.get(person.benefit_status, ""),
                "status_since": person.status_since.isoformat() if person.status_since else "",
                "status_reason": person.status_reason or "",
                "address": person.address or "",
                "health": person.health or "",
                "status": "pending",
                "reason": task.reason,
                "evidence": evidence_text(task.evidence_kind, task.evidence_date),
            }
        )
    return unit, rows


def alive_findings(*, recipient_id: int | None = None) -> dict[int, tuple[date, int]]:
    """Per person a resolved review found alive (确认健在, `services.review_resolve`): the day up
    to which their loss records and declarations of missing are cleared, and the task of the
    latest such finding. Those dated on or before that day are no longer evidence (docs/rules.md
    §8.5); later ones are. The latest bureau finding wins: a 确认死亡 / 疑似冒领 resolved after the
    person's latest 确认健在 ends its clearance on the day before its date of death (the death and
    the loss records from that day on count again; earlier ones stay cleared). With several such
    death findings, the latest one's date applies, also over the earlier ones': the clearance
    reaches the day before it, up to the 确认健在's day or an earlier death finding's date if
    later — so an earlier finding's loss record dated after the 确认健在 and before the latest
    date of death is cleared, and the next run stops the person on the latest finding, not the
    one it revised. `recipient_id`:
    that person's only. Not scoped: the run and the person page (already scoped) read it."""
    qs = VerificationTask.objects.filter(
        kind=TaskKind.REVIEW, status=TaskStatus.RESOLVED, closed_at__isnull=False,
        finding__in=[Finding.ALIVE, Finding.DEAD, Finding.FRAUD],
    )  # fmt: skip
    if recipient_id is not None:
        qs = qs.filter(recipient_id=recipient_id)
    alive: dict[int, int] = {}
    found: dict[int, tuple[date, int]] = {}
    # How far the latest death finding's clearance may reach: the 确认健在's day, or the latest
    # date of death of an earlier death finding since, if later — the latest finding revised it.
    reach: dict[int, date] = {}
    # Few rows (one a resolved review), in the order they were found: a 确认健在 replaces the
    # person's clearance, a later death finding ends it before its date of death (the latest
    # death finding's date, as a later finding replaces an earlier one).
    rows = qs.order_by("closed_at", "pk").values_list(
        "recipient_id", "closed_at", "pk", "finding", "death_date"
    )
    for person, closed_at, pk, finding, death_date in rows:
        if finding == Finding.ALIVE:
            day = timezone.localtime(closed_at).date()
            alive[person], found[person], reach[person] = pk, (day, pk), day
        elif person in alive and death_date is not None:
            found[person] = (min(reach[person], death_date - timedelta(days=1)), alive[person])
            reach[person] = max(reach[person], death_date)
    return found


@dataclass(frozen=True)
class SupersededFinding:
    """A 确认死亡 / 疑似冒领 whose date of death a later one revised: its date of death (the date of
    its own loss record, a `unit_confirm` row 丧失资格), its review task and the task of the
    latest death finding that superseded it."""

    death_date: date
    task: int
    superseded_by: int


def death_findings(*, recipient_id: int | None = None) -> QuerySet[VerificationTask]:
    """The bureau's death findings (确认死亡 / 疑似冒领, `services.review_resolve`: a resolved review
    task with a date of death), `recipient_id`'s only when given. Resolved tasks are closed
    (`closed_at` set, a database constraint), so they order by when they were found. Not scoped."""
    qs = VerificationTask.objects.filter(
        kind=TaskKind.REVIEW, status=TaskStatus.RESOLVED, finding__in=[Finding.DEAD, Finding.FRAUD],
        death_date__isnull=False,
    )  # fmt: skip
    return qs if recipient_id is None else qs.filter(recipient_id=recipient_id)


def superseded_findings(*, recipient_id: int | None = None) -> dict[int, list[SupersededFinding]]:
    """Per person, the bureau's death findings (确认死亡 / 疑似冒领, `services.review_resolve`)
    that a later one superseded: the latest bureau finding wins (docs/rules.md §8.5), also
    with no 确认健在 before it, so the latest death finding's date of death is the person's. Every
    earlier death finding with another date is superseded: its own loss record (the
    `unit_confirm` 丧失资格 row dated on its date of death) is no evidence for later runs, which
    stop the person on the latest finding — as its payment stop does — not on the one it
    revised (when the latest is later, the earlier record would otherwise be the earliest
    loss, §1). An earlier finding of the same date is the same record and stays. The record
    stays in the evidence store and on the person's page, marked with the superseding task.
    `recipient_id`: that person's only. Not scoped: the run and the person page read it."""
    qs = death_findings(recipient_id=recipient_id)
    by_person: dict[int, list[tuple[int, date]]] = {}
    for person, pk, death_date in qs.order_by("closed_at", "pk").values_list(
        "recipient_id", "pk", "death_date"
    ):
        if death_date is not None:  # filtered above; the column is nullable
            by_person.setdefault(person, []).append((pk, death_date))
    found: dict[int, list[SupersededFinding]] = {}
    for person, findings in by_person.items():
        latest, latest_date = findings[-1]
        earlier = [
            SupersededFinding(death_date=day, task=pk, superseded_by=latest)
            for pk, day in findings[:-1]
            if day != latest_date
        ]
        if earlier:
            found[person] = earlier
    return found


@dataclass(frozen=True)
class FraudCaseToCorrect:
    """A fraud case a later death finding would have revised but could not (fined or closed, or
    nothing obtained after the new date of death): the case, its status, the amount it still has
    and the amount after the finding's date of death."""

    case: int
    status: str
    amount_obtained: str
    amount_now: str

    @property
    def message(self) -> str:
        from zige.benefits.models import FraudStatus

        if self.status == FraudStatus.OPEN:
            why = "按本次核查的死亡日期已无冒领金额，请核实后对该案件作不予处罚等处理"
        else:
            why = (
                f"按本次核查的死亡日期应为 {self.amount_now} 元；该案件{FraudStatus(self.status).label}，"
                "金额不能再自动更改，请人工更正"
            )
        return f"欺诈案件 #{self.case} 的骗取金额仍为 {self.amount_obtained} 元，{why}。"


def fraud_cases_to_correct(task: VerificationTask) -> list[FraudCaseToCorrect]:
    """The fraud cases the task's finding left for a manual correction (its `task.resolved`
    audit record, `fraud_cases_to_correct`: `services._follow_fraud_cases`)."""
    if task.kind != TaskKind.REVIEW or task.status != TaskStatus.RESOLVED:
        return []
    from zige.audit.selectors import record_of

    resolved = record_of(
        action="task.resolved", target_type="verification_task", target_id=task.pk, newest=True
    )
    rows = resolved.get("fraud_cases_to_correct") or []
    return [
        FraudCaseToCorrect(
            case=int(r["case"]),
            status=str(r["status"]),
            amount_obtained=str(r["amount_obtained"]),
            amount_now=str(r["amount_now"]),
        )
        for r in rows
    ]


def alive_finding_of(recipient_id: int) -> tuple[date, int] | None:
    """The person's latest 确认健在 finding: its day and task (whatever death finding followed
    it), for the finding form to say that a death on or before that day overrides it."""
    qs = VerificationTask.objects.filter(
        recipient_id=recipient_id, kind=TaskKind.REVIEW, status=TaskStatus.RESOLVED,
        finding=Finding.ALIVE, closed_at__isnull=False,
    )  # fmt: skip
    latest = qs.order_by("-closed_at", "-pk").values_list("closed_at", "pk").first()
    if latest is None:
        return None
    return timezone.localtime(latest[0]).date(), latest[1]


def alive_records_after(*, id_number: str, after: date, until: date) -> list[dict[str, Any]]:
    """The person's alive evidence (docs/rules.md §3: trips, check-ups, successful face checks, a
    unit's 具备资格 …) dated after `after` and on or before `until`, newest first: the records
    of life after a claimed death that make a run decide 疑点核查 (§2.1, a sign of 冒领, notice
    四(二)). Records as `zige.feeds.selectors.evidence_for_person` gives them. Not scoped: the
    caller has checked that the user may see the person."""
    from zige import rules
    from zige.feeds.selectors import evidence_for_person

    found = []
    for record in evidence_for_person(id_number=id_number):
        day = record["date"]
        if day is None or not after < day <= until:
            continue
        if rules.is_alive(rules.Record(kind=record["kind"], day=day, sub=record["sub"] or "")):
            found.append(record)
    return found


def loss_records_until(*, id_number: str, until: date) -> list[dict[str, Any]]:
    """The person's loss records (docs/rules.md §2.1-2.2: death, cremation, a court's declaration
    of death or of missing, a unit's or the bureau's 丧失资格) dated on or before `until`,
    newest first — what a 疑点核查 weighs against the records of life, shown on the task so the
    officer can see the recorded dates of death before entering a finding's 死亡日期. Records as
    `zige.feeds.selectors.evidence_for_person` gives them. Not scoped: the caller has checked
    that the user may see the person."""
    from zige import rules
    from zige.feeds.selectors import evidence_for_person

    found = []
    for record in evidence_for_person(id_number=id_number):
        day = record["date"]
        if day is None or day > until:
            continue
        one = rules.Record(kind=record["kind"], day=day, sub=record["sub"] or "")
        if rules.loss_kind(one) is not None or (record["kind"] == "declared" and one.sub == "missing"):
            found.append(record)
    return found


# ---------------------------------------------------------------------------------------------
# The tasks a run closed by itself, against its audit row (`services.tasks_for_run`)


def auto_closed_digest(task_ids: Iterable[int]) -> str:
    """SHA-256 (hex) of task ids as the audit row `tasks.for_run` pins them: ascending, decimal,
    joined by commas, no spaces, no newline (`printf '12,15,20' | sha256sum`)."""
    text = ",".join(str(pk) for pk in sorted(task_ids))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def tasks_auto_closed_by(*, run_id: int) -> list[int]:
    """The ids of the tasks run `run_id` closed by itself, ascending (each has a `TaskEvent` to
    `auto_closed`). Not scoped: for the command line (`zige tasks auto-closed`)."""
    return list(
        VerificationTask.objects.filter(closed_by_run_id=run_id).order_by("pk").values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class AutoClosedCheck:
    run_id: int
    task_ids: list[int]  # as the database lists them now
    audit_seq: int | None  # the run's `tasks.for_run` audit row, None when there is none
    recorded_count: int | None
    recorded_sha256: str

    @property
    def problem(self) -> str:
        """Empty when the database's list is the one the audit row pinned."""
        if self.audit_seq is None:
            return f"run {self.run_id} has no tasks.for_run audit row (not a succeeded run?)"
        if not self.recorded_sha256:
            return f"the audit row (seq {self.audit_seq}) pins no digest (written before it did)"
        if (
            self.recorded_count != len(self.task_ids)
            or auto_closed_digest(self.task_ids) != self.recorded_sha256
        ):
            return (
                f"the database lists {len(self.task_ids)} task(s); the audit row (seq {self.audit_seq}) "
                f"recorded {self.recorded_count} with another digest"
            )
        return ""


def auto_closed_check(*, run_id: int) -> AutoClosedCheck:
    """The tasks run `run_id` closed by itself, checked against its audit row: the same count and
    the same digest, or a problem that says what differs."""
    from zige.audit.models import AuditEvent

    event = (
        AuditEvent.objects.filter(action="tasks.for_run", target_type="run_tasks", target_id=str(run_id))
        .order_by("seq")
        .first()
    )
    after = (event.after if event is not None else None) or {}
    return AutoClosedCheck(
        run_id=run_id,
        task_ids=tasks_auto_closed_by(run_id=run_id),
        audit_seq=event.seq if event is not None else None,
        recorded_count=after.get("auto_closed"),
        recorded_sha256=str(after.get("auto_closed_sha256") or ""),
    )


def unit_deadline(*, recipient_id: int, as_of: date) -> date:
    """The unit's deadline for a pending person, as the person page says it: their active unit
    task's own deadline (set when the run that created it ran, moved by a reassignment); with no
    such task yet, the one a task created by the run as of `as_of` gets (`deadline_for`)."""
    from zige.verification.services import deadline_for

    task = (
        VerificationTask.objects.filter(recipient_id=recipient_id, kind=TaskKind.UNIT, status__in=ACTIVE)
        .order_by("-created_at", "-pk")
        .values_list("deadline", flat=True)
        .first()
    )
    return task if task is not None else deadline_for(as_of)
