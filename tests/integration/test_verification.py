"""Verification tasks (zige.verification.services): creation from runs, never twice, closing by
themselves, every transition, the unit's report, the bureau's review, the workbook, the sweep."""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.db import IntegrityError, connection, transaction
from PIL import Image

from tests.factories import NOW, RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from tests.sessions import SecondSession
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.certification.models import Decision, Run, RunStatus
from zige.engine.forms import write_pending_workbook
from zige.feeds.models import ImportBatch
from zige.roster.models import Recipient
from zige.verification import services
from zige.verification.models import (
    ACTIVE,
    TRANSITIONS,
    Attachment,
    Submission,
    TaskEvent,
    TaskReminder,
    TaskStatus,
    VerificationTask,
)
from zige.verification.services import (
    Evidence,
    Report,
    SubmissionInvalid,
    TaskNotFound,
    TransitionRefused,
    form1_apply,
    review_resolve,
    submission_review,
    task_submit,
    tasks_for_run,
    tasks_sweep,
)
from zige.verification.uploads import EVERYTHING, upload_check

pytestmark = pytest.mark.django_db
AS_OF = date(2026, 11, 30)
_seq = iter(range(500, 10_000))


def young(unit: Any = None, **kw: Any) -> Recipient:
    """A recipient aged 66 (not a special group by age)."""
    n = next(_seq)
    extra = {"unit": unit} if unit is not None else {}
    return RecipientFactory(
        id_number=make_id(n, birth=date(1960, 5, 1) + timedelta(days=n // 1000)), **extra, **kw
    )


def old(unit: Any = None, **kw: Any) -> Recipient:
    """A recipient aged 86 (高龄)."""
    n = next(_seq)
    extra = {"unit": unit} if unit is not None else {}
    return RecipientFactory(
        id_number=make_id(n, birth=date(1940, 3, 1) + timedelta(days=n // 1000)), **extra, **kw
    )


def run_with(
    rows: list[tuple[Recipient, str, str]], *, as_of: date = AS_OF, due_on: date | None = date(2026, 1, 15)
) -> Run:
    """A succeeded run whose decisions are (recipient, status, reason)."""
    run = Run.objects.create(as_of=as_of, status=RunStatus.SUCCEEDED, created_at=NOW, recipients=len(rows))
    for person, status, reason in rows:
        Decision.objects.create(
            run=run, recipient=person, unit=person.unit, status=status, reason=reason,
            evidence_kind="rail" if status == "review" else "", evidence_date=date(2026, 6, 1) if status == "review" else None,
            due_on=due_on if status != "review" else date(2027, 6, 1),
        )  # fmt: skip
    return run


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"


def photo() -> Evidence:
    return Evidence("on_site", upload_check(name="visit.jpg", data=jpeg(), allowed=EVERYTHING))


def written() -> Evidence:
    return Evidence("written", upload_check(name="signed.pdf", data=PDF, allowed=EVERYTHING))


def eligible_report(**kw: Any) -> Report:
    fields: dict[str, Any] = {"method": "visit", "result": "eligible", "confirmed_on": date(2026, 12, 2),
                              "address": "太原市小店区坞城路 1 号", "health": "良好"}  # fmt: skip
    fields.update(kw)
    return Report(**fields)


LATER = NOW + timedelta(days=3)


@pytest.fixture
def unit() -> Any:
    return UnitFactory()


@pytest.fixture
def unit_op(unit: Any) -> Any:
    return UnitOperatorFactory(unit=unit, username="unit_maker")


@pytest.fixture
def officer() -> Any:
    return UserFactory(username="checker", role=Role.BUREAU_OPERATOR)


# --- tasks from runs -------------------------------------------------------------------------


def test_pending_goes_to_the_unit_and_review_to_the_bureau(unit: Any) -> None:
    pending, review, fine = young(unit), young(unit), young(unit)
    run = run_with([(pending, "pending", "no_evidence"), (review, "review", "alive_after_death"),
                    (fine, "eligible", "rail")])  # fmt: skip
    counts = tasks_for_run(run_id=run.pk, now=NOW)
    assert counts == {"created_unit": 1, "created_review": 1, "auto_closed": 0}
    unit_task = VerificationTask.objects.get(recipient=pending)
    assert (unit_task.kind, unit_task.status, unit_task.deadline) == ("unit", "open", date(2027, 2, 28))
    assert unit_task.period == "due:2026-01-15"
    review_task = VerificationTask.objects.get(recipient=review)
    assert (review_task.kind, review_task.period) == ("review", "alive_after_death:2026-06-01")
    assert not VerificationTask.objects.filter(recipient=fine).exists()
    assert TaskEvent.objects.filter(to_status="open").count() == 2
    assert AuditEvent.objects.filter(action="tasks.for_run", target_id=str(run.pk)).count() == 1


def test_deadline_is_configurable(unit: Any, settings: Any) -> None:
    settings.ZIGE_VERIFICATION_DAYS = 45
    person = young(unit)
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    assert VerificationTask.objects.get(recipient=person).deadline == AS_OF + timedelta(days=45)


def test_never_twice_for_the_same_person_and_period(unit: Any) -> None:
    person = young(unit)
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    again = run_with([(person, "pending", "no_evidence")], as_of=AS_OF + timedelta(days=1))
    assert tasks_for_run(run_id=again.pk, now=NOW)["created_unit"] == 0
    # another period while the first task is still active: still one active task
    third = run_with(
        [(person, "pending", "no_evidence")], as_of=AS_OF + timedelta(days=2), due_on=date(2026, 2, 1)
    )
    assert tasks_for_run(run_id=third.pk, now=NOW)["created_unit"] == 0
    assert VerificationTask.objects.filter(recipient=person).count() == 1
    task = VerificationTask.objects.get(recipient=person)
    # the database refuses a second task for the same person and period, and a second active one
    for period in (task.period, "due:2025-01-01"):
        with pytest.raises(IntegrityError), transaction.atomic():
            VerificationTask.objects.create(
                recipient=person, unit=unit, kind="unit", period=period, run=task.run, as_of=AS_OF,
                reason="no_evidence", deadline=task.deadline, created_at=NOW, updated_at=NOW,
            )  # fmt: skip


def test_a_new_period_after_the_task_ended_is_a_new_task(unit: Any) -> None:
    person = young(unit)
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    tasks_for_run(
        run_id=run_with([(person, "eligible", "app_auth")], as_of=AS_OF + timedelta(days=1)).pk, now=NOW
    )
    later = run_with([(person, "pending", "no_evidence")], as_of=date(2027, 12, 30), due_on=date(2027, 12, 1))
    assert tasks_for_run(run_id=later.pk, now=NOW)["created_unit"] == 1
    assert list(VerificationTask.objects.filter(recipient=person).order_by("pk").values_list("status", flat=True)) == [
        "auto_closed", "open"]  # fmt: skip


def test_closes_by_itself_when_a_later_run_certifies_the_person(unit: Any) -> None:
    certified, dead, still = young(unit), young(unit), young(unit)
    first = run_with([(p, "pending", "no_evidence") for p in (certified, dead, still)])
    tasks_for_run(run_id=first.pk, now=NOW)
    second = run_with([(certified, "eligible", "app_auth"), (dead, "stop", "death"), (still, "pending", "no_evidence")],
                      as_of=AS_OF + timedelta(days=7))  # fmt: skip
    assert tasks_for_run(run_id=second.pk, now=LATER)["auto_closed"] == 2
    task = VerificationTask.objects.get(recipient=certified)
    assert task.status == "auto_closed" and task.closed_by_run == second and task.closed_at == LATER
    assert "具备资格（手机APP刷脸认证" in task.closed_reason and "app_auth" not in task.closed_reason
    dead_reason = VerificationTask.objects.get(recipient=dead).closed_reason
    assert "收到死亡信息" in dead_reason and "death" not in dead_reason
    assert VerificationTask.objects.get(recipient=still).status == "open"
    assert TaskEvent.objects.filter(task=task, from_status="open", to_status="auto_closed").count() == 1
    event = AuditEvent.objects.get(action="tasks.for_run", target_id=str(second.pk))
    assert event.after["auto_closed"] == 2 and event.after["auto_closed_by_run"] == second.pk


def _stops_on_a_confirmed_loss(people: list[Recipient], day: date, *, as_of: date) -> Run:
    """A succeeded run that stops `people` on a confirmed loss (`unit_confirmed_lost`, rules §1)
    dated `day`: a unit's approved 丧失资格 or the bureau's 确认死亡 finding."""
    run = Run.objects.create(as_of=as_of, status=RunStatus.SUCCEEDED, created_at=NOW, recipients=len(people))
    for person in people:
        Decision.objects.create(
            run=run, recipient=person, unit=person.unit, status="stop", reason="unit_confirmed_lost",
            evidence_kind="unit_confirmed_lost", evidence_date=day, action="stop",
        )  # fmt: skip
    return run


def test_a_confirmed_loss_closes_the_person_s_other_unit_task(unit: Any, unit_op: Any, officer: Any) -> None:
    """Walkthrough: 张三's unit task was open when a home visit found him dead; the bureau's
    确认死亡 finding (a `unit_confirm` 丧失资格 row) stopped him, yet the unit was still asked to
    confirm a dead man. A stop on a confirmed loss closes the person's unit task as a death
    record's does (auto_closed, the run named, a Chinese reason, an event, pinned in the run's
    audit row); a report already with the bureau (submitted) is left to the bureau."""
    from zige.ledger.services import visit_record

    dead, reported = young(unit), young(unit)
    tasks_for_run(run_id=run_with([(p, "pending", "no_evidence") for p in (dead, reported)]).pk, now=NOW)
    unit_task = VerificationTask.objects.get(recipient=dead, kind="unit")
    submitted = VerificationTask.objects.get(recipient=reported, kind="unit")
    task_submit(task_id=submitted.pk, user=unit_op, report=eligible_report(), now=LATER)
    visit_record(actor=officer, recipient=dead, visited_on=AS_OF, visitor="社区网格员", outcome="dead",
                 notes="家属称已去世", now=NOW)  # fmt: skip
    review = VerificationTask.objects.get(recipient=dead, kind="review")
    review_resolve(task_id=review.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 10, 1),
                   now=LATER)  # fmt: skip
    assert VerificationTask.objects.get(pk=unit_task.pk).status == "open"

    run = _stops_on_a_confirmed_loss([dead, reported], date(2026, 10, 1), as_of=AS_OF + timedelta(days=7))
    assert tasks_for_run(run_id=run.pk, now=LATER)["auto_closed"] == 1
    closed = VerificationTask.objects.get(pk=unit_task.pk)
    assert (closed.status, closed.closed_by_run, closed.closed_at) == ("auto_closed", run, LATER)
    assert closed.closed_reason == (
        f"认证批次 #{run.pk} 收到确认丧失资格信息（单位确认丧失资格或社保局疑点核查确认死亡，2026-10-01），"
        "已按停发处理，单位无需再核实"
    )
    assert TaskEvent.objects.filter(task=closed, from_status="open", to_status="auto_closed").count() == 1
    assert VerificationTask.objects.get(pk=submitted.pk).status == "submitted"
    assert VerificationTask.objects.get(pk=review.pk).status == "resolved"
    event = AuditEvent.objects.get(action="tasks.for_run", target_id=str(run.pk))
    assert event.after["auto_closed"] == 1 and event.after["auto_closed_by_run"] == run.pk


def test_the_unit_report_that_is_the_loss_evidence_is_not_handled_again(
    task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    """The unit's own 丧失资格 report, approved, is the loss record the run stops on: its task is
    already approved (final, in the approval's transaction, as its evidence); the run closes
    nothing and writes no event for it."""
    report = eligible_report(result="lost", lost_reason="死亡", lost_on=date(2026, 10, 3))
    task_submit(task_id=task.pk, user=unit_op, report=report, now=LATER)
    submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    events = TaskEvent.objects.filter(task=task).count()
    run = _stops_on_a_confirmed_loss([task.recipient], date(2026, 10, 3), as_of=AS_OF + timedelta(days=7))
    assert tasks_for_run(run_id=run.pk, now=LATER)["auto_closed"] == 0
    again = VerificationTask.objects.get(pk=task.pk)
    assert (again.status, again.closed_by_run) == ("approved", None)
    assert TaskEvent.objects.filter(task=task).count() == events


def test_an_approval_whose_row_the_evidence_import_rejects_says_why(
    task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    """A report submitted before 丧失时间 was checked against the birth date: the approval's import
    rejects its row (bad_date). Before, the message said 导入 #N：已完成 — a failure named as done."""
    report = eligible_report(result="lost", lost_reason="死亡", lost_on=date(2026, 10, 3))
    task_submit(task_id=task.pk, user=unit_op, report=report, now=LATER)
    Submission.objects.filter(task=task).update(lost_on=date(1900, 1, 1))
    with pytest.raises(TransitionRefused) as refused:
        submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    message = str(refused.value)
    assert "日期无法识别" in message and "1900-01-01" in message and "已完成" not in message
    assert "请退回单位" in message
    assert VerificationTask.objects.get(pk=task.pk).status == "submitted"
    assert Submission.objects.get(task=task).approved is None


def test_the_audit_row_pins_every_task_a_run_closes_by_itself(unit: Any) -> None:
    """More than the 1,000 ids an audit row once listed: the row keeps the count, the run they
    are found by and a digest of all their ids; the list from the database matches it."""
    from click.testing import CliRunner

    from zige.cli import main
    from zige.verification.selectors import auto_closed_check, auto_closed_digest

    people = Recipient.objects.bulk_create(RecipientFactory.build_batch(1005, unit=unit))
    first = run_with([])
    Decision.objects.bulk_create(
        [Decision(run=first, recipient=p, unit=unit, status="pending", reason="no_evidence", due_on=date(2026, 1, 15))
         for p in people]
    )  # fmt: skip
    tasks_for_run(run_id=first.pk, now=NOW)
    second = run_with([], as_of=AS_OF + timedelta(days=7))
    Decision.objects.bulk_create(
        [Decision(run=second, recipient=p, unit=unit, status="eligible", reason="app_auth") for p in people]
    )
    assert tasks_for_run(run_id=second.pk, now=LATER)["auto_closed"] == 1005

    closed = sorted(VerificationTask.objects.filter(status="auto_closed").values_list("pk", flat=True))
    assert len(closed) == 1005
    assert TaskEvent.objects.filter(task__closed_by_run=second, to_status="auto_closed").count() == 1005
    event = AuditEvent.objects.get(action="tasks.for_run", target_id=str(second.pk))
    assert event.after["auto_closed"] == 1005 and event.after["auto_closed_by_run"] == second.pk
    assert event.after["auto_closed_sha256"] == auto_closed_digest(closed)
    assert len(str(event.after)) < 500, "a count and a digest, not the ids"
    check = auto_closed_check(run_id=second.pk)
    assert check.task_ids == closed and check.audit_seq == event.seq and check.problem == ""

    listed = CliRunner().invoke(main, ["tasks", "auto-closed", str(second.pk)])
    assert listed.exit_code == 0, listed.stderr
    assert [int(line) for line in listed.stdout.split()] == closed
    assert f"closed 1005 task(s) by itself, as its audit row says (seq {event.seq}" in listed.stderr

    # Raw SQL moves one task to another run's list: the list no longer matches the audit row.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE verification_verificationtask SET closed_by_run_id = %s WHERE id = %s",
            [first.pk, closed[0]],
        )
    assert "lists 1004 task(s); the audit row (seq" in auto_closed_check(run_id=second.pk).problem
    moved = CliRunner().invoke(main, ["tasks", "auto-closed", str(second.pk)])
    assert moved.exit_code == 1 and "recorded 1005 with another digest" in moved.stderr
    assert (
        CliRunner().invoke(main, ["tasks", "auto-closed", str(first.pk)]).exit_code == 1
    )  # its row: 0 closed


def test_a_back_dated_run_opens_and_closes_no_task(unit: Any) -> None:
    """Rules §8.4: a run as of an earlier date than a run that already succeeded is not the
    current truth. Its stale `eligible` and death would close the tasks the later run still
    wants verified, its stale `pending` would put a person the later run certified on the
    unit's 待核实 list: it opens and closes none. Its `tasks.for_run` row says why (the later
    run) with zero counts, so the auditor's check of its closed tasks holds, and its summary
    records it for the run page."""
    from zige.verification.selectors import auto_closed_check

    waiting, reported, certified = young(unit), young(unit), young(unit)
    first = run_with([(waiting, "pending", "no_evidence"), (reported, "pending", "no_evidence")])
    tasks_for_run(run_id=first.pk, now=NOW)
    latest = run_with([(waiting, "pending", "no_evidence"), (reported, "pending", "no_evidence"),
                       (certified, "eligible", "rail")], as_of=AS_OF + timedelta(days=31))  # fmt: skip
    tasks_for_run(run_id=latest.pk, now=NOW)
    stale = run_with([(waiting, "eligible", "app_auth"), (reported, "stop", "death"),
                      (certified, "pending", "no_evidence")], as_of=AS_OF + timedelta(days=7))  # fmt: skip
    before = sorted(VerificationTask.objects.values_list("pk", "recipient_id", "status"))
    assert tasks_for_run(run_id=stale.pk, now=LATER) == {
        "created_unit": 0,
        "created_review": 0,
        "auto_closed": 0,
    }
    assert sorted(VerificationTask.objects.values_list("pk", "recipient_id", "status")) == before
    assert not VerificationTask.objects.filter(recipient=certified).exists()
    assert not TaskEvent.objects.filter(at=LATER).exists()
    event = AuditEvent.objects.get(action="tasks.for_run", target_id=str(stale.pk))
    assert event.after["skipped_because"] == "backdated" and event.after["later_run"] == latest.pk
    assert event.after["later_as_of"] == (AS_OF + timedelta(days=31)).isoformat()
    assert (event.after["created_unit"], event.after["created_review"], event.after["auto_closed"]) == (
        0,
        0,
        0,
    )
    assert auto_closed_check(run_id=stale.pk).problem == ""
    stale.refresh_from_db()
    assert stale.summary["backdated"]["skipped"] == ["tasks"]
    assert stale.summary["backdated"]["later_run"] == latest.pk


def test_the_database_keeps_the_closing_run_on_auto_closed_tasks_only(unit: Any) -> None:
    person, other = young(unit), young(unit)
    first = run_with([(person, "pending", "no_evidence"), (other, "pending", "no_evidence")])
    tasks_for_run(run_id=first.pk, now=NOW)
    second = run_with([(person, "eligible", "app_auth")], as_of=AS_OF + timedelta(days=7))
    tasks_for_run(run_id=second.pk, now=LATER)
    closed = VerificationTask.objects.get(recipient=person, status="auto_closed")
    still = VerificationTask.objects.get(recipient=other, status="open")
    for statement, pk in (
        ("UPDATE verification_verificationtask SET closed_by_run_id = NULL WHERE id = %s", closed.pk),
        (f"UPDATE verification_verificationtask SET closed_by_run_id = {second.pk} WHERE id = %s", still.pk),
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [pk])


def test_a_submitted_task_is_not_closed_under_the_bureau(unit: Any, unit_op: Any) -> None:
    person = young(unit)
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    task = VerificationTask.objects.get(recipient=person)
    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(), now=LATER)
    tasks_for_run(
        run_id=run_with([(person, "eligible", "app_auth")], as_of=AS_OF + timedelta(days=7)).pk, now=LATER
    )
    assert VerificationTask.objects.get(pk=task.pk).status == "submitted"


# --- the transition table --------------------------------------------------------------------

STATUSES = [s.value for s in TaskStatus]
PAIRS = [(a, b) for a in STATUSES for b in STATUSES if a != b]


@pytest.mark.parametrize(("before", "after"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_allowed_or_refused(before: str, after: str, unit: Any) -> None:
    from tests.factories import verification_task

    task = verification_task(young(unit), status=before)
    locked = VerificationTask.objects.select_for_update().get(pk=task.pk)  # type: ignore[attr-defined]
    events = TaskEvent.objects.count()
    if (before, after) in TRANSITIONS:
        # only a run closes a task by itself, and it is named on the task (a check constraint)
        by_run = {"closed_by_run_id": locked.run_id} if after == "auto_closed" else {}
        services._transition(locked, after, actor=None, now=LATER, note="test", **by_run)
        task.refresh_from_db()  # type: ignore[attr-defined]
        assert task.status == after  # type: ignore[attr-defined]
        assert (task.closed_at is None) == (after in ACTIVE)  # type: ignore[attr-defined]
        assert TaskEvent.objects.count() == events + 1
        assert AuditEvent.objects.filter(action=f"task.{after}", target_id=str(task.pk)).exists()  # type: ignore[attr-defined]
    else:
        with pytest.raises(TransitionRefused):
            services._transition(locked, after, actor=None, now=LATER)
        task.refresh_from_db()  # type: ignore[attr-defined]
        assert task.status == before  # type: ignore[attr-defined]
        assert TaskEvent.objects.count() == events


def test_the_table_has_no_way_out_of_a_final_status() -> None:
    assert {a for a, _ in TRANSITIONS} <= ACTIVE
    assert {"approved", "resolved", "auto_closed"} <= {b for _, b in TRANSITIONS}


def test_the_database_refuses_an_unknown_status(unit: Any) -> None:
    from tests.factories import verification_task

    task = verification_task(young(unit))
    with pytest.raises(IntegrityError), transaction.atomic():
        VerificationTask.objects.filter(pk=task.pk).update(status="lost_in_the_post")  # type: ignore[attr-defined]


# --- the unit's report -----------------------------------------------------------------------


@pytest.fixture
def task(unit: Any) -> VerificationTask:
    person = young(unit, benefit_status="normal", monthly_amount=Decimal("3100.00"))
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    return VerificationTask.objects.get(recipient=person)


@pytest.fixture
def old_task(unit: Any) -> VerificationTask:
    person = old(unit)
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    return VerificationTask.objects.get(recipient=person)


REPORT_ERRORS = [
    ("no method", {"method": ""}, "method"),
    ("other without how", {"method": "other"}, "method_note"),
    ("no result", {"result": ""}, "result"),
    ("no date", {"confirmed_on": None}, "confirmed_on"),
    ("date in the future", {"confirmed_on": date(2027, 1, 1)}, "confirmed_on"),
    ("eligible without address", {"address": ""}, "address"),
    ("eligible without health", {"health": " "}, "health"),
    ("lost without reason", {"result": "lost", "lost_on": date(2026, 10, 3)}, "lost_reason"),
    ("lost without date", {"result": "lost", "lost_reason": "死亡"}, "lost_on"),
    # Before: accepted, and the bureau's approval then failed (审核结果写入比对数据失败).
    ("lost before birth", {"result": "lost", "lost_reason": "死亡", "lost_on": date(1900, 1, 1)}, "lost_on"),
    ("unreachable without written statement", {"result": "unreachable"}, "written"),
]


@pytest.mark.parametrize(("what", "change", "field"), REPORT_ERRORS, ids=[r[0] for r in REPORT_ERRORS])
def test_report_errors(
    what: str, change: dict[str, Any], field: str, task: VerificationTask, unit_op: Any
) -> None:
    with pytest.raises(SubmissionInvalid) as refused:
        task_submit(task_id=task.pk, user=unit_op, report=eligible_report(**change), now=LATER)
    assert field in [f for f, _ in refused.value.errors]
    assert VerificationTask.objects.get(pk=task.pk).status == "open"
    assert not Submission.objects.exists()


SAYS_NOTHING = [
    ("address", "不详", "现居住地", "实际居住的地址"),
    ("address", " 无 ", "现居住地", "实际居住的地址"),
    ("address", "-", "现居住地", "实际居住的地址"),
    ("address", "电话无人接听", "现居住地", "未联系到本人"),
    ("health", "未知", "健康状况", "无异常"),
    ("health", "不清楚", "健康状况", "无异常"),
    ("health", "空", "健康状况", "无异常"),
    ("health", "/", "健康状况", "无异常"),
    ("health", "？", "健康状况", "无异常"),
    ("health", "本人失联", "健康状况", "未联系到本人"),
]


@pytest.mark.parametrize(("field", "value", "label", "instead"), SAYS_NOTHING)
def test_a_single_persons_report_refuses_what_the_workbook_refuses(
    field: str, value: str, label: str, instead: str, task: VerificationTask, unit_op: Any, tmp_path: Path
) -> None:
    """具备资格 with a 现居住地 / 健康状况 that says nothing (不详, 未知, -, ? …) or says the person
    was not reached is refused on the task page as in the bulk 附件1 upload: one check
    (`confirmed_fact_error`), a message that says what to write instead."""
    with pytest.raises(SubmissionInvalid) as refused:
        task_submit(task_id=task.pk, user=unit_op, report=eligible_report(**{field: value}), now=LATER)
    messages = [m for f, m in refused.value.errors if f == field]
    assert messages and instead in messages[0], refused.value.errors
    assert not Submission.objects.exists()
    cells = {"确认方式": "电话", "现居住地": "太原市迎泽区", "健康状况": "良好", label: value}
    result = form1_apply(user=unit_op, data=_form1(tmp_path / "form1.xlsx", [task], {0: cells}), now=LATER)
    assert result.applied == 0
    same = messages[0].split("；联系不上本人的")[0]  # each path adds its own way to report 无法联系
    assert next(e.reason for e in result.errors if e.field == label).startswith(same)


@pytest.mark.parametrize("health", ["无", "无异常", "无疾病", "良好", "暂无异常"])
def test_health_nothing_wrong_is_accepted_on_the_task_page_and_in_the_workbook(
    health: str, unit: Any, unit_op: Any, tmp_path: Path
) -> None:
    """A unit's clerk writes 「无」 in 健康状况 for 无异常 / 无疾病: accepted on both paths (an
    address of 「无」 is not, above)."""
    first, second = _pending_tasks(unit, 2)
    submission = task_submit(task_id=first.pk, user=unit_op, report=eligible_report(health=health), now=LATER)
    assert (submission.result, submission.health) == ("eligible", health)
    cells = {"确认方式": "电话", "现居住地": "太原市迎泽区", "健康状况": health}
    result = form1_apply(user=unit_op, data=_form1(tmp_path / "form1.xlsx", [second], {0: cells}), now=LATER)
    assert (result.applied, result.errors) == (1, [])
    assert Submission.objects.get(task=second).health == health


def test_the_very_old_need_an_on_site_photo_and_a_written_confirmation(
    old_task: VerificationTask, unit_op: Any
) -> None:
    for files, missing in (
        ([], {"on_site", "written"}),
        ([photo()], {"written"}),
        ([written()], {"on_site"}),
    ):
        with pytest.raises(SubmissionInvalid) as refused:
            task_submit(task_id=old_task.pk, user=unit_op, report=eligible_report(), files=files, now=LATER)
        assert {f for f, _ in refused.value.errors} == missing
        assert "高龄" in str(refused.value)
    # a PDF is not an on-site photo
    pdf_as_photo = Evidence("on_site", written().upload)
    with pytest.raises(SubmissionInvalid):
        task_submit(
            task_id=old_task.pk,
            user=unit_op,
            report=eligible_report(),
            files=[pdf_as_photo, written()],
            now=LATER,
        )
    submission = task_submit(
        task_id=old_task.pk, user=unit_op, report=eligible_report(), files=[photo(), written()], now=LATER
    )
    assert sorted(submission.attachments.values_list("role", "file_kind")) == [
        ("on_site", "jpeg"),
        ("written", "pdf"),
    ]
    assert VerificationTask.objects.get(pk=old_task.pk).status == "submitted"


def test_the_bureau_cannot_report_for_a_unit_and_another_unit_cannot_either(
    task: VerificationTask, officer: Any
) -> None:
    with pytest.raises(Exception) as refused:
        task_submit(task_id=task.pk, user=officer, report=eligible_report(), now=LATER)
    assert type(refused.value).__name__ == "PermissionDenied"
    stranger = UnitOperatorFactory(unit=UnitFactory())
    with pytest.raises(TaskNotFound):
        task_submit(task_id=task.pk, user=stranger, report=eligible_report(), now=LATER)


# --- the bureau's review ---------------------------------------------------------------------


def test_approval_becomes_unit_confirm_evidence_once(
    task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(), now=LATER)
    before = ImportBatch.objects.count()
    submission = submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    assert submission.approved is True and submission.reviewed_by == officer
    batch = submission.evidence_batch
    assert batch is not None and (batch.kind, batch.status, batch.rows_used) == (
        "unit_confirm",
        "succeeded",
        1,
    )
    assert ImportBatch.objects.count() == before + 1
    assert VerificationTask.objects.get(pk=task.pk).status == "approved"
    from zige.feeds.selectors import evidence_for_person

    kinds = [(r.get("kind") or r.get("feed_kind"), str(r.get("event_date") or r.get("date"))) for r in
             evidence_for_person(id_number=task.recipient.id_number)]  # fmt: skip
    assert ("unit_confirm", "2026-12-02") in kinds, kinds
    # approving again is refused and imports nothing
    with pytest.raises(TransitionRefused):
        submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    assert ImportBatch.objects.count() == before + 1
    # the same content imported again is a duplicate: the import service's own guard
    again = services._import_evidence(submission, user=officer, now=LATER)
    assert again.pk == batch.pk


LOST = {"result": "lost", "lost_reason": "死亡", "lost_on": date(2026, 10, 3)}


@pytest.fixture
def own_store(settings: Any, tmp_path: Path) -> Path:
    """An evidence store and upload folder of this test's own, to look at the files."""
    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return tmp_path


def _unit_confirm_evidence(person: Recipient) -> list[dict[str, Any]]:
    from zige.feeds.selectors import evidence_for_person

    return [r for r in evidence_for_person(id_number=person.id_number) if r["kind"] == "unit_confirm"]


def _nothing_of_the_approval(task: VerificationTask) -> None:
    """No trace of an approval that did not commit: no evidence any run or page reads, no
    import of it, no payment proposal, the report not approved."""
    from zige.feeds import store

    assert _unit_confirm_evidence(task.recipient) == []
    assert store.live_manifests("unit_confirm") == []
    assert not ImportBatch.objects.filter(kind="unit_confirm").exists()
    assert _actions(task.recipient) == []
    assert not Submission.objects.filter(task=task, approved=True).exists()
    assert VerificationTask.objects.get(pk=task.pk).status != "approved"


def _store_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_locks" not in p.parts
    )


def test_a_report_returned_between_the_check_and_the_approval_never_becomes_evidence(
    task: VerificationTask, unit_op: Any, officer: Any, own_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reviewer x approves a 丧失资格 report; reviewer y returns it after x's maker-checker check
    and evidence import, before x's approval (the interleaving, made deterministic by running
    y's return right after the import). x is refused, and the person's 'lost' — which would
    make the next run stop the pension — is nowhere: evidence exists only with an approval.
    (Here y's return runs in x's connection, so x's rollback takes it too; between two
    connections y waits for x's lock: the PostgreSQL test below.)"""
    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(**LOST), now=LATER)
    other = UserFactory(username="second_checker", role=Role.BUREAU_OPERATOR)
    real = services._import_evidence

    def import_then_returned(submission: Submission, **kwargs: Any) -> Any:
        batch = real(submission, **kwargs)
        submission_review(task_id=task.pk, user=other, approve=False, note="死亡证明不清楚", now=LATER)
        return batch

    monkeypatch.setattr(services, "_import_evidence", import_then_returned)
    with pytest.raises(TransitionRefused, match="已被他人处理"):
        submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    _nothing_of_the_approval(task)
    assert _store_files(own_store / "evidence") == []
    assert _store_files(own_store / "uploads") == []


@pytest.mark.parametrize("cleaned", [True, False], ids=["failure", "process killed"])
def test_a_crash_between_the_evidence_import_and_the_approval_leaves_no_evidence(
    cleaned: bool, task: VerificationTask, unit_op: Any, officer: Any, own_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The approval fails after its evidence was imported: nothing of it stays. With the clean-up
    (an exception) its files are gone too; when the process is killed nothing cleans up, and the
    files left are listed by no succeeded import, so nothing reads them. Approving again then
    stores the result once."""
    from zige.feeds import store

    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(**LOST), now=LATER)
    real = services._import_evidence

    def import_then_crash(submission: Submission, **kwargs: Any) -> Any:
        real(submission, **kwargs)
        raise RuntimeError("the process stops here")

    with monkeypatch.context() as patch:
        patch.setattr(services, "_import_evidence", import_then_crash)
        if not cleaned:
            patch.setattr(store, "discard", lambda path: None)
        with pytest.raises(RuntimeError):
            submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    _nothing_of_the_approval(task)
    assert VerificationTask.objects.get(pk=task.pk).status == "submitted"
    left = _store_files(own_store / "evidence")
    if cleaned:
        assert left == [] and _store_files(own_store / "uploads") == []
    else:
        assert any(f.endswith(".parquet") for f in left)  # there, and read by nothing
    submission = submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    assert submission.evidence_batch is not None and submission.evidence_batch.status == "succeeded"
    assert [(r["kind"], r["date"]) for r in _unit_confirm_evidence(task.recipient)] == [
        ("unit_confirm", date(2026, 10, 3))
    ]
    assert [a[0] for a in _actions(task.recipient)] == ["stop"]


@pytest.mark.django_db(transaction=True)
def test_between_two_connections_a_return_waits_for_the_approval_and_is_refused(
    unit: Any, unit_op: Any, officer: Any, own_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, two sessions: x approves; after x's evidence import, y tries to return the
    report and waits on x's lock until x commits (checked with pg_blocking_pids, not a sleep);
    then y is refused. The approval and its evidence are there, once; y changed nothing."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks between two sessions: PostgreSQL")
    person = young(unit, benefit_status="normal", monthly_amount=Decimal("3100.00"))
    tasks_for_run(run_id=run_with([(person, "pending", "no_evidence")]).pk, now=NOW)
    task = VerificationTask.objects.get(recipient=person)
    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(**LOST), now=LATER)
    other = UserFactory(username="second_checker", role=Role.BUREAU_OPERATOR)
    real = services._import_evidence
    y = SecondSession(
        lambda: submission_review(
            task_id=task.pk, user=other, approve=False, note="死亡证明不清楚", now=LATER
        )
    )

    def import_then_y_tries(submission: Submission, **kwargs: Any) -> Any:
        batch = real(submission, **kwargs)
        y.start_until_blocked()
        return batch

    monkeypatch.setattr(services, "_import_evidence", import_then_y_tries)
    submission = submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    y.join()
    assert submission.approved is True
    assert len(y.outcome) == 1 and isinstance(y.outcome[0], TransitionRefused), y.outcome
    assert VerificationTask.objects.get(pk=task.pk).status == "approved"
    assert list(Submission.objects.filter(task=task).values_list("approved", "reviewed_by")) == [
        (True, officer.pk)
    ]
    assert len(_unit_confirm_evidence(person)) == 1


def test_maker_is_never_checker(task: VerificationTask, unit_op: Any) -> None:
    submission = task_submit(task_id=task.pk, user=unit_op, report=eligible_report(), now=LATER)
    with pytest.raises(Exception) as refused:  # a unit operator may not review at all
        submission_review(task_id=task.pk, user=unit_op, approve=True, note="", now=LATER)
    assert type(refused.value).__name__ == "PermissionDenied"
    # a bureau user who made the report (e.g. an account whose role changed) may not check it
    unit_op.role = Role.BUREAU_OPERATOR
    unit_op.unit = None
    unit_op.save()
    with pytest.raises(Exception) as refused:
        submission_review(task_id=task.pk, user=unit_op, approve=True, note="", now=LATER)
    assert type(refused.value).__name__ == "PermissionDenied"
    # and the database refuses it too
    with pytest.raises(IntegrityError), transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(reviewed_by=submission.submitted_by)


def test_return_needs_a_reason_then_the_unit_resubmits(
    old_task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    task_submit(
        task_id=old_task.pk, user=unit_op, report=eligible_report(), files=[photo(), written()], now=LATER
    )
    with pytest.raises(SubmissionInvalid):
        submission_review(task_id=old_task.pk, user=officer, approve=False, note=" ", now=LATER)
    returned = submission_review(
        task_id=old_task.pk, user=officer, approve=False, note="照片看不清，请重拍", now=LATER
    )
    assert returned.approved is False
    assert VerificationTask.objects.get(pk=old_task.pk).status == "returned"
    # resubmitted without new files: the earlier ones stay with the report
    second = task_submit(task_id=old_task.pk, user=unit_op, report=eligible_report(health="一般"), now=LATER)
    assert second.number == 2 and second.attachments.count() == 2
    submission_review(task_id=old_task.pk, user=officer, approve=True, note="", now=LATER)
    history = list(TaskEvent.objects.filter(task=old_task).order_by("pk").values_list("to_status", flat=True))
    assert history == ["open", "submitted", "returned", "submitted", "approved"]


def _actions(person: Recipient) -> list[tuple[str, str, int | None, Decimal | None, str]]:
    from zige.benefits.models import PaymentAction

    return list(
        PaymentAction.objects.filter(recipient=person).values_list(
            "kind", "effective_month", "months", "amount", "source"
        )
    )


PAYMENT_CASES = [
    # result, recipient status, expected action (kind, month, months, amount) per docs/rules.md §5
    (
        "lost",
        "normal",
        ("stop", "2026-11", 1, Decimal("3100.00")),
    ),  # lost 2026-10-03, paid through Dec? as of 12-03
    ("unreachable", "normal", ("suspend", "2027-01", 0, Decimal("0.00"))),
    ("eligible", "suspended", ("resume", "2027-01", 6, Decimal("18600.00"))),
    ("eligible", "normal", None),
]


@pytest.mark.parametrize(
    ("result", "benefit", "expected"), PAYMENT_CASES, ids=[f"{c[0]}-{c[1]}" for c in PAYMENT_CASES]
)
def test_approval_proposes_the_payment_change(
    result: str, benefit: str, expected: Any, task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    person = task.recipient
    Recipient.objects.filter(pk=person.pk).update(
        benefit_status=benefit, status_since=date(2026, 7, 10) if benefit == "suspended" else None
    )
    change = {"lost": {"result": "lost", "lost_reason": "死亡", "lost_on": date(2026, 10, 3)},
              "unreachable": {"result": "unreachable", "confirmed_on": date(2026, 12, 2)}}.get(result, {})  # fmt: skip
    files = [written()] if result == "unreachable" else []
    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(**change), files=files, now=LATER)
    submission = submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    actions = _actions(person)
    if expected is None:
        assert actions == [] and submission.payment_ref == ""
    else:
        # as of 2026-12-03 (LATER): paid through 2026-12
        kind, month, months, amount = expected
        if result == "lost":
            month, months, amount = "2026-11", 2, Decimal("6200.00")
        assert actions == [(kind, month, months, amount, "verification")]
        assert submission.payment_ref.startswith("payment_action:")


def test_approval_back_pays_an_imprisoned_person_from_the_month_after_release(
    task: VerificationTask, unit_op: Any, officer: Any, tmp_path: Path
) -> None:
    """A 暂停 person suspended for imprisonment (停发原因 服刑) whom the unit confirms alive: back pay
    from the month after their release (docs/rules.md §5.3), as a run gives it — the release is in
    the evidence store, imported like any feed."""
    from zige.feeds.services import import_execute, import_submit

    person = task.recipient
    Recipient.objects.filter(pk=person.pk).update(
        benefit_status="suspended", status_since=date(2025, 3, 1), status_reason="服刑"
    )
    release = tmp_path / "release_2026.csv"
    release.write_text(
        f"身份证号,姓名,释放日期\n{person.id_number},{person.name},2026-09-15\n", encoding="utf-8"
    )
    batch = import_submit(
        source=release, file_name=release.name, kind=None, user=officer, now=NOW, enqueue=False
    )
    assert import_execute(batch_id=batch.pk, now=NOW).rows_used == 1
    task_submit(task_id=task.pk, user=unit_op, report=eligible_report(), now=LATER)
    submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    # as of 2026-12-03: 2026-10 … 2026-12, not from 2025-03 (prison) and not nothing
    assert _actions(person) == [("resume", "2027-01", 3, Decimal("9300.00"), "verification")]


# --- the review queue ------------------------------------------------------------------------


@pytest.fixture
def review_task(unit: Any) -> VerificationTask:
    person = young(unit, monthly_amount=Decimal("2500.00"))
    tasks_for_run(run_id=run_with([(person, "review", "alive_after_death")]).pk, now=NOW)
    return VerificationTask.objects.get(recipient=person)


def test_review_resolution_fraud_opens_a_case(review_task: VerificationTask, officer: Any) -> None:
    from zige.benefits.models import FraudCase

    with pytest.raises(SubmissionInvalid):  # a death date is needed
        review_resolve(task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领", now=LATER)
    review_resolve(
        task_id=review_task.pk,
        user=officer,
        finding="fraud",
        note="家属冒领",
        death_date=date(2026, 5, 20),
        now=LATER,
    )
    task = VerificationTask.objects.get(pk=review_task.pk)
    assert (task.status, task.finding) == ("resolved", "fraud")
    case = FraudCase.objects.get(recipient=task.recipient)
    assert case.amount_obtained == Decimal("17500.00")  # 2026-06 … 2026-12: 7 months × 2500
    assert _actions(task.recipient) == [("stop", "2026-06", 7, Decimal("17500.00"), "verification")]
    with pytest.raises(TransitionRefused):
        review_resolve(task_id=review_task.pk, user=officer, finding="alive", note="again", now=LATER)


def test_a_fraud_finding_names_the_persons_case_not_ended_instead_of_opening_a_second(
    review_task: VerificationTask, officer: Any
) -> None:
    """One fraud case not ended per person (`one_open_fraud_case_per_person`): a 疑似冒领 finding
    on a person whose case an officer opened on the page is resolved and names that case; it is
    neither refused nor a second case."""
    from zige.benefits.models import FraudCase
    from zige.benefits.services import fraud_case_open

    manual = fraud_case_open(recipient=review_task.recipient, amount_obtained=Decimal("5000.00"), opened_by=officer,
                             source_ref="举报", note="", now=NOW)  # fmt: skip
    review_resolve(task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领",
                   death_date=date(2026, 5, 20), now=LATER)  # fmt: skip
    task = VerificationTask.objects.get(pk=review_task.pk)
    assert (task.status, task.finding) == ("resolved", "fraud")
    assert list(FraudCase.objects.filter(recipient=task.recipient)) == [manual]
    assert f"fraud_case:{manual.pk}" in task.payment_ref


def _run_proposes(person: Recipient, kind: str, month: str, months: int, amount: str, *,
                  by: Any = None) -> Any:  # fmt: skip
    """A succeeded run (started by `by`) whose decision for the person is `kind` with these
    figures, its payment actions proposed; returns the person's proposal."""
    from zige.benefits.models import PaymentAction
    from zige.benefits.services import payment_actions_for_run

    run = Run.objects.create(as_of=AS_OF, status=RunStatus.SUCCEEDED, created_at=NOW, created_by=by)
    Decision.objects.create(
        run=run, recipient=person, unit=person.unit, status=kind, reason="death", action=kind,
        effective_month=month, months=months, amount=Decimal(amount),
    )  # fmt: skip
    assert payment_actions_for_run(run_id=run.pk, now=NOW) == 1
    return PaymentAction.objects.get(recipient=person, kind=kind, run=run)


def _review_with_approved(unit: Any, kind: str, month: str, months: int, amount: str) -> tuple[Any, Any, Any]:
    """A person with a 疑点核查 task and a run's `kind` action already approved by a second
    person: (person, review task, action)."""
    from zige.benefits.services import payment_action_approve

    person = young(unit, monthly_amount=Decimal("2500.00"))
    tasks_for_run(run_id=run_with([(person, "review", "alive_after_death")]).pk, now=NOW)
    review = VerificationTask.objects.get(recipient=person)
    action = _run_proposes(person, kind, month, months, amount)
    payment_action_approve(action_id=action.pk, user=UserFactory(username="second", role=Role.BUREAU_ADMIN),
                           now=NOW)  # fmt: skip
    return person, review, action


def _stop_follows_the_finding(person: Any, by_run: Any, review_task: Any, officer: Any) -> tuple[Any, Any]:
    """The run's stop has become the bureau finding's (rules §8.6): 2026-06, 7 months × 2500 as of
    2026-12-03, still awaiting approval, with the finding's reference and officer; its revision
    audited once (`payment_action.revised_by_finding`) with those figures after, and nothing
    declined. (stop, the revision's audit event) for the test's own checks of what came before."""
    from zige.benefits.models import ActionState, PaymentAction

    assert _actions(person) == [("stop", "2026-06", 7, Decimal("17500.00"), "verification")]
    stop = PaymentAction.objects.get(recipient=person)
    assert (stop.pk, stop.state, stop.source_ref, stop.proposed_by) == (
        by_run.pk, ActionState.PROPOSED, f"review:{review_task.pk}", officer)  # fmt: skip
    event = AuditEvent.objects.get(action="payment_action.revised_by_finding")
    assert (event.target_type, event.target_id, event.actor) == ("payment_action", str(stop.pk), "checker")
    assert event.after == {"effective_month": "2026-06", "months": 7, "amount": "17500.00",
                           "source": "verification", "source_ref": f"review:{review_task.pk}",
                           "proposed_by": "checker", "recipient": person.pk}  # fmt: skip
    assert not AuditEvent.objects.filter(action="payment_action.proposal_declined").exists()
    return stop, event


def test_a_death_finding_revises_a_runs_stop_still_awaiting_approval(
    review_task: VerificationTask, officer: Any
) -> None:
    """Rules §8.6: a run proposed the stop from 2026-08; the bureau's finding dates the death in
    May. The stop still awaiting approval follows the finding: from 2026-06, 2026-06 … 2026-12
    = 7 months × 2500 (as of 2026-12-03), audited; one stop, one recovery case for that amount.
    The finding's officer made the figures and cannot approve them; a checker who saw the run's
    figures cannot approve the new ones with the old view."""
    from zige.benefits.models import ActionState, PaymentAction, RecoveryCase
    from zige.benefits.services import BenefitsError, payment_action_approve

    person = review_task.recipient
    starter = UserFactory(username="starter", role=Role.BUREAU_OPERATOR)
    by_run = _run_proposes(person, "stop", "2026-08", 5, "12500.00", by=starter)
    seen_before = by_run.figures
    review_resolve(
        task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    stop, event = _stop_follows_the_finding(person, by_run, review_task, officer)
    assert VerificationTask.objects.get(pk=review_task.pk).payment_ref.startswith(f"payment_action:{stop.pk}")
    assert event.before == {"effective_month": "2026-08", "months": 5, "amount": "12500.00", "source": "run",
                            "source_ref": f"run:{by_run.run_id}", "proposed_by": "starter"}  # fmt: skip
    second = UserFactory(username="second", role=Role.BUREAU_ADMIN)
    with pytest.raises(BenefitsError, match="已按最新核实结论更新"):
        payment_action_approve(action_id=stop.pk, user=second, now=LATER, seen=seen_before)
    with pytest.raises(BenefitsError, match="提出人不能审批"):
        payment_action_approve(action_id=stop.pk, user=officer, now=LATER, seen=stop.figures)
    assert PaymentAction.objects.get(pk=stop.pk).state == ActionState.PROPOSED
    assert not RecoveryCase.objects.exists()
    # The run's initiator did not make these figures: they may check them.
    payment_action_approve(action_id=stop.pk, user=starter, now=LATER, seen="2026-06|7|17500.00")
    assert RecoveryCase.objects.get(action__recipient=person).amount == Decimal("17500.00")


def test_a_unit_report_of_a_loss_revises_a_runs_stop_still_awaiting_approval(
    task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    """The unit's 丧失资格 report, approved by the bureau, dates the loss 2026-10-03: the run's
    stop from 2026-12 becomes 2026-11, 2 months × 3100 (as of 2026-12-03)."""
    from zige.benefits.models import PaymentAction

    person = task.recipient
    by_run = _run_proposes(person, "stop", "2026-12", 0, "0.00")
    report = eligible_report(result="lost", lost_reason="死亡", lost_on=date(2026, 10, 3))
    task_submit(task_id=task.pk, user=unit_op, report=report, now=LATER)
    submission = submission_review(task_id=task.pk, user=officer, approve=True, note="", now=LATER)
    assert _actions(person) == [("stop", "2026-11", 2, Decimal("6200.00"), "verification")]
    stop = PaymentAction.objects.get(recipient=person)
    assert (stop.pk, stop.source_ref, stop.proposed_by) == (by_run.pk, f"verification:{task.pk}-1", officer)
    assert submission.payment_ref == f"payment_action:{stop.pk}"
    assert (
        AuditEvent.objects.filter(action="payment_action.revised_by_finding", target_id=str(stop.pk)).count()
        == 1
    )


def test_a_death_finding_of_the_same_month_adopts_the_runs_stop(
    review_task: VerificationTask, officer: Any
) -> None:
    """Rules §8.6: the finding dates the death in the month the run did (stop from 2026-06), but
    as of 2026-12-03 that is 7 months × 2500, not the run's 6. The stop still awaiting approval
    becomes the finding's all the same — its figures, reference and proposer — audited; a checker
    who saw the run's figures cannot approve the new ones with the old view."""
    from zige.benefits.models import ActionState, PaymentAction
    from zige.benefits.services import BenefitsError, payment_action_approve

    person = review_task.recipient
    by_run = _run_proposes(person, "stop", "2026-06", 6, "15000.00")
    seen_before = by_run.figures
    review_resolve(
        task_id=review_task.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 5, 3), now=LATER
    )  # fmt: skip
    stop, event = _stop_follows_the_finding(person, by_run, review_task, officer)
    assert event.before == {"effective_month": "2026-06", "months": 6, "amount": "15000.00", "source": "run",
                            "source_ref": f"run:{by_run.run_id}", "proposed_by": None}  # fmt: skip
    second = UserFactory(username="second", role=Role.BUREAU_ADMIN)
    with pytest.raises(BenefitsError, match="已按最新核实结论更新"):
        payment_action_approve(action_id=stop.pk, user=second, now=LATER, seen=seen_before)
    assert PaymentAction.objects.get(pk=stop.pk).state == ActionState.PROPOSED


def test_a_death_finding_of_the_same_figures_adopts_the_runs_stop(
    review_task: VerificationTask, officer: Any
) -> None:
    """The run's figures are the finding's (2026-06, 7 months as of 2026-12-03): the stop becomes
    the finding's — source, reference, proposer — and the change is audited; the same finding
    again changes nothing more."""
    from zige.benefits.models import PaymentAction
    from zige.benefits.services import payment_action_propose

    person = review_task.recipient
    by_run = _run_proposes(person, "stop", "2026-06", 7, "17500.00")
    review_resolve(
        task_id=review_task.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 5, 3), now=LATER
    )  # fmt: skip
    stop = PaymentAction.objects.get(recipient=person)
    assert (stop.pk, stop.source, stop.source_ref, stop.proposed_by, stop.figures) == (
        by_run.pk, "verification", f"review:{review_task.pk}", officer, by_run.figures)  # fmt: skip
    event = AuditEvent.objects.get(action="payment_action.revised_by_finding")
    assert (event.before["source"], event.before["months"], event.after["source"], event.after["months"]) == (
        "run", 7, "verification", 7)  # fmt: skip
    again = payment_action_propose(
        recipient=person, kind="stop", effective_month="2026-06", months=7, amount=Decimal("17500.00"),
        source="verification", source_ref=f"review:{review_task.pk}", proposed_by=officer, now=LATER,
    )  # fmt: skip
    assert again.pk == stop.pk
    assert AuditEvent.objects.filter(action="payment_action.revised_by_finding").count() == 1


def test_a_confirmed_death_of_the_runs_month_is_not_withdrawn_by_the_next_run(
    review_task: VerificationTask, officer: Any
) -> None:
    """A run proposes the stop from 2026-06; the officer confirms the death on 2026-05-03 (so from
    2026-06 too), having checked the records of life after it. The next run decides 疑点核查 (life
    recorded after the death) and no longer calls for the stop: it used to withdraw it, leaving a
    confirmed death unstopped. The finding adopted the stop: it stays proposed."""
    from zige.benefits.models import ActionState, PaymentAction
    from zige.benefits.services import payment_actions_for_run

    person = review_task.recipient
    by_run = _run_proposes(person, "stop", "2026-06", 6, "15000.00")
    review_resolve(
        task_id=review_task.pk, user=officer, finding="dead", note="死亡证明，已核实死亡后的生存信息",
        death_date=date(2026, 5, 3), now=LATER, confirm_alive_after=True,
    )  # fmt: skip
    next_run = run_with([(person, "review", "alive_after_lost")], as_of=date(2026, 12, 31))
    assert payment_actions_for_run(run_id=next_run.pk, now=LATER) == 0
    stop = PaymentAction.objects.get(pk=by_run.pk)
    assert (stop.state, stop.source, stop.source_ref, stop.figures) == (
        ActionState.PROPOSED, "verification", f"review:{review_task.pk}", "2026-06|7|17500.00")  # fmt: skip
    assert not AuditEvent.objects.filter(action="payment_action.withdrawn_by_run").exists()


def _finding(person: Recipient, ref: str, month: str, months: int, by: Any) -> Any:
    """A verification's stop for the person (`ref`: `review:N` the bureau's, `verification:N-k` a
    unit's report), at 2500 a month."""
    from zige.benefits.services import payment_action_propose

    return payment_action_propose(
        recipient=person, kind="stop", effective_month=month, months=months, amount=Decimal(2500 * months),
        source="verification", source_ref=ref, proposed_by=by, now=LATER,
    )  # fmt: skip


@pytest.mark.parametrize("month, months", [("2026-09", 4), ("2026-06", 7)])
def test_a_unit_report_does_not_revise_the_bureaus_fraud_finding(
    review_task: VerificationTask, officer: Any, month: str, months: int
) -> None:
    """Rules §8.6: the bureau's 疑似冒领 finding stops from 2026-06, 7 months = 17,500 (the fraud
    case's amount). A unit's report approved later (another month, or the same) would have
    shortened or taken over that stop: the bureau's finding outranks it — declined and audited,
    the stop stays the bureau's."""
    from zige.benefits.models import FraudCase, PaymentAction

    person = review_task.recipient
    review_resolve(
        task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    stop = PaymentAction.objects.get(recipient=person)
    other = UserFactory(username="other", role=Role.BUREAU_OPERATOR)
    assert _finding(person, "verification:999-1", month, months, other).pk == stop.pk
    stop.refresh_from_db()
    assert (stop.effective_month, stop.months, stop.amount, stop.source_ref, stop.proposed_by) == (
        "2026-06", 7, Decimal("17500.00"), f"review:{review_task.pk}", officer)  # fmt: skip
    assert FraudCase.objects.get(recipient=person).amount_obtained == stop.amount
    assert not AuditEvent.objects.filter(action="payment_action.revised_by_finding").exists()
    declined = AuditEvent.objects.get(action="payment_action.proposal_declined")
    assert (declined.target_id, declined.actor, declined.after["source_ref"], declined.after["months"]) == (
        str(stop.pk), "other", "verification:999-1", months)  # fmt: skip


def test_a_later_bureau_finding_revises_an_earlier_ones_stop(
    review_task: VerificationTask, officer: Any
) -> None:
    """Rules §8.6: a later finding of the bureau's is the newest fact, also about an earlier
    finding's stop still awaiting approval: it is revised (audited), as it would be for a unit's
    report. A unit's report revises a unit's report's stop too."""
    from zige.benefits.models import PaymentAction

    person = review_task.recipient
    review_resolve(
        task_id=review_task.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    stop = PaymentAction.objects.get(recipient=person)
    other = UserFactory(username="other", role=Role.BUREAU_OPERATOR)
    assert _finding(person, "review:999", "2026-05", 8, other).pk == stop.pk
    stop.refresh_from_db()
    assert (stop.effective_month, stop.months, stop.amount, stop.source_ref, stop.proposed_by) == (
        "2026-05", 8, Decimal("20000.00"), "review:999", other)  # fmt: skip
    event = AuditEvent.objects.get(action="payment_action.revised_by_finding")
    assert (event.before["source_ref"], event.after["source_ref"]) == (
        f"review:{review_task.pk}",
        "review:999",
    )
    assert not AuditEvent.objects.filter(action="payment_action.proposal_declined").exists()

    unit_person = young(review_task.recipient.unit, monthly_amount=Decimal("2500.00"))
    first = _finding(unit_person, "verification:998-1", "2026-09", 4, officer)
    assert _finding(unit_person, "verification:999-1", "2026-08", 5, other).pk == first.pk
    first.refresh_from_db()
    assert (first.effective_month, first.source_ref, first.proposed_by) == (
        "2026-08",
        "verification:999-1",
        other,
    )


def _later_finding(person: Recipient, officer: Any, finding: str, died: date, **kw: Any) -> VerificationTask:
    """Another 疑点核查 task of the person (a later visit), resolved with this finding — a date
    of death later than the first finding's is taken over it, with the reason (`review_resolve`)."""
    kw = {"confirm_later_death": True, "later_death_reason": "再次核查改定死亡日期", **kw}
    task = VerificationTask.objects.create(
        recipient=person, unit=person.unit, kind="review", as_of=AS_OF, reason="visit_dead", period="later",
        deadline=date(2027, 2, 28), created_at=LATER, updated_at=LATER,
    )  # fmt: skip
    return review_resolve(task_id=task.pk, user=officer, finding=finding, note="再次核查", death_date=died,
                          now=LATER + timedelta(hours=1), confirm_alive_after=True, **kw)  # fmt: skip


@pytest.mark.parametrize("later", ["dead", "fraud"])
def test_a_later_finding_revising_the_date_of_death_revises_the_open_fraud_case(
    review_task: VerificationTask, officer: Any, later: str
) -> None:
    """疑似冒领 dated 2026-05-20 opened a case for 2026-06 … 2026-12 = 7 × 2500 = 17,500. A later
    finding dates the death 2026-07-10: 2026-08 … 2026-12 = 12,500 obtained after it. The open
    case (not fined yet) follows, audited in the same transaction with both amounts; a later
    疑似冒领 opens no second case for the same death; the finding names the case."""
    from zige.benefits.models import FraudCase

    person = review_task.recipient
    review_resolve(
        task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    case = FraudCase.objects.get(recipient=person)
    assert case.amount_obtained == Decimal("17500.00")
    task = _later_finding(person, officer, later, date(2026, 7, 10))
    assert list(FraudCase.objects.filter(recipient=person).values_list("pk", "amount_obtained", "status")) == [
        (case.pk, Decimal("12500.00"), "open")]  # fmt: skip
    event = AuditEvent.objects.get(action="fraud_case.amount_revised_by_finding")
    assert (event.target_id, event.actor, event.before) == (
        str(case.pk),
        "checker",
        {"amount_obtained": "17500.00"},
    )
    assert event.after == {"amount_obtained": "12500.00", "source_ref": f"review:{task.pk}",
                           "death_date": "2026-07-10", "recipient": person.pk}  # fmt: skip
    assert f"fraud_case:{case.pk}" in VerificationTask.objects.get(pk=task.pk).payment_ref
    resolved = AuditEvent.objects.get(action="task.resolved", target_id=str(task.pk))
    assert (
        resolved.after["fraud_cases_followed"] == [case.pk] and "fraud_cases_to_correct" not in resolved.after
    )
    assert _actions(person) == [("stop", "2026-08", 5, Decimal("12500.00"), "verification")]


def test_a_later_finding_of_the_same_date_leaves_the_fraud_case(
    review_task: VerificationTask, officer: Any
) -> None:
    """A later 确认死亡 of the same date of death revises nothing: the case keeps the amount the
    疑似冒领 stated (not recomputed from the months)."""
    from zige.benefits.models import FraudCase

    person = review_task.recipient
    review_resolve(task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领",
                   death_date=date(2026, 5, 20), amount_obtained=Decimal("9000.00"), now=LATER)  # fmt: skip
    _later_finding(person, officer, "dead", date(2026, 5, 20))
    assert FraudCase.objects.get(recipient=person).amount_obtained == Decimal("9000.00")
    assert not AuditEvent.objects.filter(action="fraud_case.amount_revised_by_finding").exists()


@pytest.mark.parametrize("state", ["fined", "closed"])
def test_a_later_finding_leaves_a_fined_fraud_case_and_says_it_needs_a_manual_correction(
    review_task: VerificationTask, officer: Any, state: str
) -> None:
    """The fine was decided on 17,500: a later date of death does not change the amount silently.
    The case stays as it is; the finding's audit record and page name it for a manual correction
    (the amounts before and after), in Chinese."""
    from zige.benefits.models import FraudCase
    from zige.benefits.services import fraud_case_close, fraud_case_fine
    from zige.verification.selectors import fraud_cases_to_correct

    person = review_task.recipient
    review_resolve(
        task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    case = FraudCase.objects.get(recipient=person)
    fraud_case_fine(case_id=case.pk, fine=Decimal("35000.00"), user=officer, now=LATER)
    if state == "closed":
        fraud_case_close(case_id=case.pk, user=officer, now=LATER, reason="移送法院强制执行")
    task = _later_finding(person, officer, "fraud", date(2026, 7, 10))
    case.refresh_from_db()
    assert (case.status, case.amount_obtained, case.fine) == (state, Decimal("17500.00"), Decimal("35000.00"))
    assert FraudCase.objects.filter(recipient=person).count() == 1  # no second case for the same death
    assert not AuditEvent.objects.filter(action="fraud_case.amount_revised_by_finding").exists()
    resolved = AuditEvent.objects.get(action="task.resolved", target_id=str(task.pk))
    assert resolved.after["fraud_cases_to_correct"] == [
        {"case": case.pk, "status": state, "amount_obtained": "17500.00", "amount_now": "12500.00"}]  # fmt: skip
    (left,) = fraud_cases_to_correct(VerificationTask.objects.get(pk=task.pk))
    assert f"欺诈案件 #{case.pk} 的骗取金额仍为 17500.00 元" in left.message
    assert "应为 12500.00 元" in left.message and "人工更正" in left.message


def test_a_death_finding_after_an_approved_stop_is_declined_and_audited(
    review_task: VerificationTask, officer: Any
) -> None:
    """An approved stop is what its checker signed: the finding's other month is not applied
    (no second stop, no edit); its figures are in the audit for the officer, who reverses the
    stop and proposes again if the finding is right."""
    from zige.benefits.models import ActionState, RecoveryCase
    from zige.benefits.services import payment_action_approve

    person = review_task.recipient
    by_run = _run_proposes(person, "stop", "2026-08", 5, "12500.00")
    payment_action_approve(
        action_id=by_run.pk, user=UserFactory(username="second", role=Role.BUREAU_ADMIN), now=NOW
    )
    review_resolve(
        task_id=review_task.pk, user=officer, finding="fraud", note="家属冒领", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    assert _actions(person) == [("stop", "2026-08", 5, Decimal("12500.00"), "run")]
    by_run.refresh_from_db()
    assert by_run.state == ActionState.APPROVED
    declined = AuditEvent.objects.get(action="payment_action.proposal_declined")
    assert (declined.target_id, declined.after["effective_month"], declined.after["in_force_state"]) == (
        str(by_run.pk), "2026-06", "approved")  # fmt: skip
    assert not AuditEvent.objects.filter(action="payment_action.revised_by_finding").exists()
    assert RecoveryCase.objects.get(action__recipient=person).amount == Decimal("12500.00")


def test_a_death_finding_supersedes_a_suspension_still_awaiting_approval(
    review_task: VerificationTask, officer: Any
) -> None:
    """A run proposed a suspension (长期联系不到); the bureau then finds the person dead. The stop
    is proposed and the suspension, still awaiting approval, is withdrawn (audited): nobody is
    suspended and stopped for one death. An approved suspension is left to the officer."""
    from zige.benefits.models import ActionState, PaymentAction

    person = review_task.recipient
    suspension = _run_proposes(person, "suspend", "2026-12", 0, "0.00")
    review_resolve(
        task_id=review_task.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    stop = PaymentAction.objects.get(recipient=person, kind="stop")
    assert (stop.state, stop.effective_month, stop.months, stop.amount) == (
        ActionState.PROPOSED, "2026-06", 7, Decimal("17500.00"))  # fmt: skip
    suspension.refresh_from_db()
    assert (suspension.state, suspension.closed_by, suspension.closed_at) == (
        ActionState.WITHDRAWN,
        officer,
        LATER,
    )
    assert f"停发 #{stop.pk}" in suspension.close_reason
    event = AuditEvent.objects.get(action="payment_action.superseded_by_finding")
    assert (event.target_id, event.actor, event.before, event.after["state"], event.after["superseded_by"]) == (
        str(suspension.pk), "checker", {"state": "proposed"}, "withdrawn", stop.pk)  # fmt: skip


def test_a_death_finding_withdraws_a_resume_still_awaiting_approval(
    review_task: VerificationTask, officer: Any
) -> None:
    """A run proposed a resume (补发 through today's month) for a 暂停 person; the bureau then
    finds the person dead. The resume, still awaiting approval, is withdrawn with the stop
    (before, another officer could approve both and both went out in one export)."""
    from zige.benefits.models import ActionState, PaymentAction
    from zige.benefits.services import payment_actions_for_run

    person = review_task.recipient
    Recipient.objects.filter(pk=person.pk).update(benefit_status="suspended", status_since=date(2026, 6, 1))
    run = Run.objects.create(as_of=AS_OF, status=RunStatus.SUCCEEDED, created_at=NOW)
    Decision.objects.create(
        run=run, recipient=person, unit=person.unit, status="eligible", reason="app_auth", action="resume",
        effective_month="2026-12", months=6, amount=Decimal("15000.00"),
    )  # fmt: skip
    assert payment_actions_for_run(run_id=run.pk, now=NOW) == 1
    resume = PaymentAction.objects.get(recipient=person, kind="resume")
    review_resolve(
        task_id=review_task.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    stop = PaymentAction.objects.get(recipient=person, kind="stop")
    resume.refresh_from_db()
    assert (resume.state, resume.closed_by) == (ActionState.WITHDRAWN, officer)
    assert "不再按认证批次补发" in resume.close_reason and f"停发 #{stop.pk}" in resume.close_reason
    event = AuditEvent.objects.get(action="payment_action.superseded_by_finding")
    assert (event.target_id, event.after["superseded_by"]) == (str(resume.pk), stop.pk)


def test_a_death_finding_leaves_an_approved_suspension_to_the_officer(unit: Any, officer: Any) -> None:
    from zige.benefits.models import ActionState, PaymentAction

    person, review, suspension = _review_with_approved(unit, "suspend", "2026-12", 0, "0.00")
    review_resolve(
        task_id=review.pk, user=officer, finding="dead", note="死亡证明", death_date=date(2026, 5, 20), now=LATER
    )  # fmt: skip
    suspension.refresh_from_db()
    assert suspension.state == ActionState.APPROVED
    assert PaymentAction.objects.get(recipient=person, kind="stop").state == ActionState.PROPOSED
    assert not AuditEvent.objects.filter(action="payment_action.superseded_by_finding").exists()


def test_an_alive_finding_withdraws_the_stops_still_awaiting_approval(
    review_task: VerificationTask, officer: Any
) -> None:
    """Rules §8.5: a run (or an earlier finding) proposed a stop; the bureau then finds the
    person alive. The stop still awaiting approval is withdrawn in the finding's transaction,
    audited with a Chinese reason naming the finding: a checker can no longer stop a living
    person. An officer's own proposal is the officer's to withdraw."""
    from zige.benefits.models import ActionState, PaymentAction

    person = review_task.recipient
    stop = _run_proposes(person, "stop", "2026-08", 5, "12500.00")
    review_resolve(task_id=review_task.pk, user=officer, finding="alive", note="本人来访", now=LATER,
                   files=[photo(), written()])  # fmt: skip
    stop.refresh_from_db()
    assert (stop.state, stop.closed_by, stop.closed_at) == (ActionState.WITHDRAWN, officer, LATER)
    assert f"疑点核查任务 #{review_task.pk}" in stop.close_reason and "确认健在" in stop.close_reason
    event = AuditEvent.objects.get(action="payment_action.withdrawn_by_finding")
    assert (event.target_id, event.actor, event.before, event.after["state"], event.after["review_task"]) == (
        str(stop.pk), "checker", {"state": "proposed"}, "withdrawn", review_task.pk)  # fmt: skip
    resolved = AuditEvent.objects.get(action="task.resolved", target_id=str(review_task.pk))
    assert resolved.after["withdrawn_stops"] == [stop.pk]
    assert not PaymentAction.objects.filter(recipient=person, state__in=["proposed", "approved"]).exists()


def test_an_alive_finding_leaves_an_approved_stop_to_the_correction_path(unit: Any, officer: Any) -> None:
    from zige.benefits.models import ActionState
    from zige.benefits.selectors import stops_left_to_correction

    person, review, stop = _review_with_approved(unit, "stop", "2026-08", 5, "12500.00")
    assert stops_left_to_correction(person.pk) == [stop]
    review_resolve(task_id=review.pk, user=officer, finding="alive", note="本人来访", now=LATER,
                   files=[photo(), written()])  # fmt: skip
    stop.refresh_from_db()
    assert stop.state == ActionState.APPROVED
    assert not AuditEvent.objects.filter(action="payment_action.withdrawn_by_finding").exists()


def test_review_alive_resumes_a_suspended_person(review_task: VerificationTask, officer: Any) -> None:
    Recipient.objects.filter(pk=review_task.recipient_id).update(
        benefit_status="suspended", status_since=date(2026, 9, 1)
    )
    review_resolve(
        task_id=review_task.pk,
        user=officer,
        finding="alive",
        note="本人来访",
        now=LATER,
        files=[photo(), written()],
    )
    assert _actions(review_task.recipient) == [("resume", "2027-01", 4, Decimal("10000.00"), "verification")]


def test_a_video_is_no_written_statement(task: VerificationTask, review_task: VerificationTask, unit_op: Any,
                                         officer: Any) -> None:  # fmt: skip
    """三(一)4: 无法联系 needs a written statement. Before, a video uploaded as 书面确认材料 on the
    task page counted as one (the workbook's written file already refused videos)."""
    from tests.unit.test_verification_uploads import mp4_bytes

    video = Evidence("written", upload_check(name="说明.mp4", data=mp4_bytes(), allowed=EVERYTHING))
    with pytest.raises(SubmissionInvalid, match="不能作为书面确认材料") as refused:
        task_submit(task_id=task.pk, user=unit_op, report=eligible_report(result="unreachable"), files=[video],
                    now=LATER)  # fmt: skip
    assert "written" in [f for f, _ in refused.value.errors]
    assert not Submission.objects.exists() and not Attachment.objects.exists()
    with pytest.raises(SubmissionInvalid, match="不能作为书面确认材料"):
        review_resolve(
            task_id=review_task.pk, user=officer, finding="alive", note="x", now=LATER, files=[video]
        )
    scan = Evidence("written", upload_check(name="说明.jpg", data=jpeg(), allowed=EVERYTHING))
    task_submit(
        task_id=task.pk, user=unit_op, report=eligible_report(result="unreachable"), files=[scan], now=LATER
    )
    assert Submission.objects.get(task=task).attachments.get().file_kind == "jpeg"


def test_an_alive_finding_needs_evidence_files_stored_and_audited_with_it(
    review_task: VerificationTask, officer: Any, settings: Any, tmp_path: Path
) -> None:
    from zige.benefits.models import PaymentAction

    with pytest.raises(SubmissionInvalid, match="确认健在须上传"):  # a note alone is not evidence
        review_resolve(task_id=review_task.pk, user=officer, finding="alive", note="电话确认", now=LATER)
    not_a_photo = Evidence("on_site", upload_check(name="scan.jpg", data=PDF, allowed=EVERYTHING))
    with pytest.raises(SubmissionInvalid, match="不是图片或视频"):
        review_resolve(
            task_id=review_task.pk, user=officer, finding="alive", note="x", now=LATER, files=[not_a_photo]
        )
    assert VerificationTask.objects.get(pk=review_task.pk).status == "open"
    assert not Attachment.objects.exists() and not PaymentAction.objects.exists()

    paper = written()
    review_resolve(task_id=review_task.pk, user=officer, finding="alive", note="本人来访，签字确认", now=LATER,
                   files=[paper])  # fmt: skip
    task = VerificationTask.objects.get(pk=review_task.pk)
    assert (task.status, task.finding) == ("resolved", "alive")
    stored = Attachment.objects.get(task=task)
    assert (stored.submission_id, stored.role, stored.file_kind, stored.uploaded_by) == (
        None,
        "written",
        "pdf",
        officer,
    )
    assert (Path(settings.DATA_DIR) / "attachments" / stored.stored_path).read_bytes() == PDF
    audit = AuditEvent.objects.get(action="task.resolved", target_id=str(task.pk))
    assert audit.after["files"] == [
        {"attachment": stored.pk, "role": "written", "name": "signed.pdf", "kind": "pdf", "sha256": stored.sha256,
         "size": len(PDF), "scan": "not_scanned"}
    ]  # fmt: skip


def test_an_alive_finding_for_a_special_group_person_needs_photo_and_written_confirmation(
    unit: Any, officer: Any
) -> None:
    person = old(unit)  # 86: 高龄
    tasks_for_run(run_id=run_with([(person, "review", "alive_after_death")]).pk, now=NOW)
    task = VerificationTask.objects.get(recipient=person)
    with pytest.raises(SubmissionInvalid) as refused:
        review_resolve(task_id=task.pk, user=officer, finding="alive", note="x", now=LATER, files=[written()])
    assert [f for f, _ in refused.value.errors] == ["on_site"]
    review_resolve(
        task_id=task.pk, user=officer, finding="alive", note="上门核实", now=LATER, files=[photo(), written()]
    )
    assert sorted(Attachment.objects.filter(task=task).values_list("role", flat=True)) == [
        "on_site",
        "written",
    ]


def test_a_death_finding_needs_no_file_but_keeps_the_ones_given(
    review_task: VerificationTask, officer: Any
) -> None:
    review_resolve(task_id=review_task.pk, user=officer, finding="dead", note="火化证明", death_date=date(2026, 10, 3),
                   now=LATER, files=[written()])  # fmt: skip
    assert Attachment.objects.filter(task=review_task).count() == 1


def test_an_evidence_file_belongs_to_a_report_or_a_finding_never_both_or_none(review_task: VerificationTask,
                                                                              officer: Any) -> None:  # fmt: skip
    facts = {"role": "written", "file_kind": "pdf", "original_name": "a.pdf", "sha256": "0" * 64, "size": 1,
             "stored_path": "00/x.pdf", "scan": "not_scanned", "uploaded_by": officer, "uploaded_at": NOW}  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Attachment.objects.create(**facts)  # no owner
    report = Submission.objects.create(
        task=review_task, number=1, method="visit", result="eligible", confirmed_on=AS_OF, submitted_by=officer,
        submitted_at=NOW,
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Attachment.objects.create(**facts, task=review_task, submission=report)  # two owners
    assert Attachment.objects.create(**facts, task=review_task).submission_id is None  # a finding's file


def test_unit_tasks_are_not_resolved_and_review_tasks_not_reported(task: VerificationTask, review_task: VerificationTask,
                                                                    unit_op: Any, officer: Any) -> None:  # fmt: skip
    with pytest.raises(TransitionRefused):
        review_resolve(task_id=task.pk, user=officer, finding="alive", note="x", now=LATER)
    with pytest.raises(TransitionRefused):
        task_submit(task_id=review_task.pk, user=unit_op, report=eligible_report(), now=LATER)


# --- the sweep -------------------------------------------------------------------------------


def test_reminders_once_per_threshold_then_overdue_suspends(task: VerificationTask, settings: Any) -> None:
    deadline = task.deadline  # 2027-02-28
    at = lambda day: NOW.replace(year=day.year, month=day.month, day=day.day)  # noqa: E731
    assert tasks_sweep(now=at(deadline - timedelta(days=31)))["reminders"] == 0
    assert tasks_sweep(now=at(deadline - timedelta(days=30)))["reminders"] == 1
    assert tasks_sweep(now=at(deadline - timedelta(days=20)))["reminders"] == 0
    assert tasks_sweep(now=at(deadline - timedelta(days=6)))["reminders"] == 1
    assert tasks_sweep(now=at(deadline - timedelta(days=1)))["reminders"] == 0
    assert sorted(TaskReminder.objects.filter(task=task).values_list("days_before", flat=True)) == [7, 30]
    assert tasks_sweep(now=at(deadline))["overdue"] == 0
    counts = tasks_sweep(now=at(deadline + timedelta(days=1)))
    assert counts == {"reminders": 0, "overdue": 1, "suspensions": 1, "unit_sms": 0}
    task.refresh_from_db()
    assert task.status == "overdue" and task.escalated_at is not None
    # paid in advance through March 2027 (the month of the sweep): one month already paid
    assert _actions(task.recipient) == [("suspend", "2027-03", 1, Decimal("3100.00"), "overdue")]
    assert tasks_sweep(now=at(deadline + timedelta(days=2)))["overdue"] == 0


def test_a_late_eligible_report_withdraws_the_suspension_its_overdue_task_proposed(
    task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    """Before: the suspension stayed proposed after the bureau approved the unit's late 具备资格,
    and a checker approving the list suspended a person just confirmed eligible."""
    from zige.benefits.models import PaymentAction

    late = NOW.replace(year=2027, month=3, day=5)
    assert tasks_sweep(now=late)["suspensions"] == 1
    suspension = PaymentAction.objects.get(recipient=task.recipient, kind="suspend")
    task_submit(
        task_id=task.pk, user=unit_op, report=eligible_report(confirmed_on=date(2027, 3, 4)), now=late
    )
    submission_review(task_id=task.pk, user=officer, approve=True, note="", now=late)
    suspension.refresh_from_db()
    assert (suspension.state, suspension.closed_by) == ("withdrawn", officer)
    assert "单位核实任务" in suspension.close_reason
    event = AuditEvent.objects.get(action="payment_action.withdrawn_by_report", target_id=str(suspension.pk))
    assert event.after["task"] == task.pk and event.before == {"state": "proposed"}


def test_a_run_that_certifies_the_person_withdraws_the_overdue_suspension(task: VerificationTask) -> None:
    """Before: the overdue task closed by itself (the person did an app face check) but its
    suspension stayed proposed, to be approved by a checker working down the list."""
    from zige.benefits.models import PaymentAction

    late = NOW.replace(year=2027, month=3, day=5)
    tasks_sweep(now=late)
    suspension = PaymentAction.objects.get(recipient=task.recipient, kind="suspend")
    run = run_with([(task.recipient, "eligible", "app_auth")], as_of=date(2027, 3, 6))
    assert tasks_for_run(run_id=run.pk, now=late + timedelta(days=1))["auto_closed"] == 1
    suspension.refresh_from_db()
    assert (suspension.state, suspension.closed_by) == ("withdrawn", None)
    assert f"认证批次 #{run.pk} 已确认具备资格" in suspension.close_reason
    event = AuditEvent.objects.get(
        action="payment_action.withdrawn_by_certification", target_id=str(suspension.pk)
    )
    assert (event.after["run"], event.after["task"]) == (run.pk, task.pk)


def test_a_late_unreachable_report_keeps_the_overdue_suspension(
    task: VerificationTask, unit_op: Any, officer: Any
) -> None:
    from zige.benefits.models import PaymentAction

    late = NOW.replace(year=2027, month=3, day=5)
    tasks_sweep(now=late)
    report = eligible_report(result="unreachable", confirmed_on=date(2027, 3, 4))
    task_submit(task_id=task.pk, user=unit_op, report=report, files=[written()], now=late)
    submission_review(task_id=task.pk, user=officer, approve=True, note="", now=late)
    assert PaymentAction.objects.get(recipient=task.recipient, kind="suspend").state == "proposed"
    assert not AuditEvent.objects.filter(action="payment_action.withdrawn_by_report").exists()


def test_a_task_reported_while_the_sweep_runs_is_not_made_overdue_and_the_sweep_goes_on(
    task: VerificationTask, unit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep lists the late tasks, then locks each: a unit report committed in between (the
    task now `submitted`) made the transition refused and rolled back the whole sweep."""
    from zige.verification import services

    other = young(unit)
    tasks_for_run(run_id=run_with([(other, "pending", "no_evidence")]).pk, now=NOW)
    other_task = VerificationTask.objects.get(recipient=other)
    locked = services._lock

    def lock_after_a_report(task_id: int) -> VerificationTask:
        if task_id == task.pk:
            VerificationTask.objects.filter(pk=task_id).update(status="submitted")
        return locked(task_id)

    monkeypatch.setattr(services, "_lock", lock_after_a_report)
    counts = tasks_sweep(now=NOW.replace(year=2027, month=3, day=5))
    assert counts["overdue"] == 1
    assert VerificationTask.objects.get(pk=task.pk).status == "submitted"
    assert VerificationTask.objects.get(pk=other_task.pk).status == "overdue"


def test_overdue_without_suspension_when_configured_off(task: VerificationTask, settings: Any) -> None:
    settings.ZIGE_OVERDUE_SUSPENDS = False
    counts = tasks_sweep(now=NOW.replace(year=2027, month=3, day=5))
    assert counts["overdue"] == 1 and counts["suspensions"] == 0
    assert _actions(task.recipient) == []


# --- a person moves to another unit ----------------------------------------------------------


def test_an_overdue_task_of_a_person_who_moved_restarts_with_the_new_unit(
    task: VerificationTask, settings: Any
) -> None:
    """The new unit gets its own three months, not a task that is overdue the day it arrives;
    the proposed suspension stays with the bureau; the reminders start over."""
    at = lambda day: NOW.replace(year=day.year, month=day.month, day=day.day)  # noqa: E731
    tasks_sweep(now=at(task.deadline - timedelta(days=30)))
    tasks_sweep(now=at(task.deadline + timedelta(days=1)))  # overdue, suspension proposed
    task.refresh_from_db()
    assert task.status == "overdue" and task.payment_ref and task.reminders.count() == 1
    new_unit = UnitFactory()
    Recipient.objects.filter(pk=task.recipient_id).update(unit=new_unit)
    moved_at = at(date(2027, 3, 10))
    assert services.tasks_reassign(recipient_ids=[task.recipient_id], now=moved_at, source="（测试）") == [
        task.pk
    ]
    task.refresh_from_db()
    assert (task.unit_id, task.status, task.deadline) == (new_unit.pk, "open", date(2027, 6, 10))
    assert task.escalated_at is None and task.closed_at is None and not task.reminders.exists()
    event = task.events.order_by("-pk").first()
    assert (event.from_status, event.to_status) == ("overdue", "open") and "暂停发放建议" in event.note
    audit = AuditEvent.objects.get(action="task.reassigned", target_id=str(task.pk))
    assert audit.before["status"] == "overdue" and audit.after["deadline"] == "2027-06-10"
    assert _actions(task.recipient) == [("suspend", "2027-03", 1, Decimal("3100.00"), "overdue")]  # untouched
    assert tasks_sweep(now=at(date(2027, 5, 11)))["reminders"] == 1  # 30 days before the new deadline


def test_a_move_never_shortens_a_deadline_nor_touches_closed_or_review_tasks(unit: Any) -> None:
    from tests.factories import verification_task

    person = young(unit)
    closed = verification_task(person, status="approved")
    VerificationTask.objects.filter(pk=closed.pk).update(period="due:2025")  # type: ignore[attr-defined]
    open_task = verification_task(person)  # deadline 2027-02-28
    review = verification_task(person, kind="review")
    new_unit = UnitFactory()
    Recipient.objects.filter(pk=person.pk).update(unit=new_unit)
    moved = services.tasks_reassign(recipient_ids=[person.pk], now=NOW - timedelta(days=60))  # 2026-10-01
    assert sorted(moved) == sorted([open_task.pk, review.pk])  # type: ignore[attr-defined]
    rows = {t.pk: t for t in VerificationTask.objects.all()}
    assert rows[open_task.pk].deadline == date(2027, 2, 28)  # type: ignore[attr-defined]  # later than 3 months on
    assert rows[review.pk].unit_id == new_unit.pk and rows[review.pk].deadline == date(2027, 2, 28)  # type: ignore[attr-defined]
    assert rows[closed.pk].unit_id == unit.pk  # type: ignore[attr-defined]  # history as it was
    assert services.tasks_reassign(recipient_ids=[person.pk], now=NOW) == []  # nothing left to move


# --- a person terminated (待遇状态 终止) by a roster import -----------------------------------


def _roster(path: Path, rows: list[tuple[Recipient, str]]) -> Path:
    """A roster file naming these people with these 待遇状态."""
    header = "个人编号,姓名,身份证号,单位编号,单位名称,待遇状态,月养老金,联系电话,退休日期,上次认证日期"
    lines = [header] + [
        f"{p.person_no},{p.name},{p.id_number},{p.unit.unit_no},{p.unit.name},{status},{p.monthly_amount},"
        f"13812345678,2010-01-01,2025-10-01"
        for p, status in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_roster_import_that_terminates_a_person_closes_their_unit_tasks(
    unit: Any, unit_op: Any, officer: Any, settings: Any, tmp_path: Path
) -> None:
    """docs/rules.md §8.1: 终止 takes a person out of every later run and cancels what was waiting
    on the unit's list. Before: the unit task of a person terminated while it was open stayed open
    for ever (no later run closes it) — on the unit's 附件1, reminded before its deadline and
    escalated as overdue by the sweep. Now the import closes it (auto_closed, naming the import,
    audited, in the import's transaction); a report already with the bureau and a review task
    are the bureau's and stay; a suspension an overdue task proposed stays with the bureau."""
    from zige.benefits.models import PaymentAction
    from zige.feeds.services import import_execute, import_submit
    from zige.verification.selectors import form1_rows

    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    gone, late, reported, reviewed, stays = (young(unit) for _ in range(5))
    run = run_with([(gone, "pending", "no_evidence"), (late, "pending", "no_evidence"),
                    (reported, "pending", "no_evidence"), (reviewed, "review", "alive_after_death"),
                    (stays, "pending", "no_evidence")])  # fmt: skip
    tasks_for_run(run_id=run.pk, now=NOW)
    task = {t.recipient_id: t for t in VerificationTask.objects.filter(kind="unit")}
    VerificationTask.objects.filter(pk=task[late.pk].pk).update(deadline=date(2026, 11, 1))
    assert tasks_sweep(now=NOW)["overdue"] == 1  # `late` is escalated, a suspension proposed
    task_submit(task_id=task[reported.pk].pk, user=unit_op, report=eligible_report(), now=LATER)
    roster = _roster(tmp_path / "roster.csv", [(gone, "终止"), (late, "终止"), (reported, "终止"),
                                               (reviewed, "终止"), (stays, "正常")])  # fmt: skip
    batch = import_submit(source=roster, file_name=roster.name, kind="roster", user=officer, now=LATER,
                          enqueue=False)  # fmt: skip
    batch = import_execute(batch_id=batch.pk, now=LATER)
    assert batch.status == "succeeded", batch.message

    status = {t.recipient_id: (t.kind, t.status, t.closed_by_import_id, t.closed_by_run_id)
              for t in VerificationTask.objects.all()}  # fmt: skip
    assert status == {
        gone.pk: ("unit", "auto_closed", batch.pk, None),
        late.pk: ("unit", "auto_closed", batch.pk, None),
        reported.pk: ("unit", "submitted", None, None),  # with the bureau: its report, its decision
        reviewed.pk: ("review", "open", None, None),  # the bureau's 疑点核查
        stays.pk: ("unit", "open", None, None),
    }
    closed = VerificationTask.objects.get(pk=task[late.pk].pk)
    assert closed.closed_at == LATER and f"名册导入 #{batch.pk}" in closed.closed_reason
    event = closed.events.order_by("-pk").first()
    assert (event.from_status, event.to_status) == ("overdue", "auto_closed") and "暂停发放建议" in event.note
    audit = AuditEvent.objects.get(action="task.auto_closed", target_id=str(closed.pk))
    assert (audit.actor, audit.before, audit.after["import"], audit.after["why"]) == (
        "checker", {"status": "overdue"}, batch.pk, "terminated",
    )  # fmt: skip
    assert PaymentAction.objects.get(recipient=late, kind="suspend").state == "proposed"  # the bureau's
    # Nothing of theirs on the unit's 附件1, reminded or escalated any more.
    _, rows = form1_rows(user=officer, unit_no=unit.unit_no)
    assert [r["person_no"] for r in rows] == [stays.person_no]
    assert tasks_sweep(now=NOW.replace(year=2027, month=1, day=29))["reminders"] == 1  # `stays` only
    assert tasks_sweep(now=NOW.replace(year=2027, month=3, day=1))["overdue"] == 1
    assert set(TaskReminder.objects.values_list("task__recipient", flat=True)) == {stays.pk}
    # What closed a task is named on it, exactly one, and only on an auto-closed task.
    for statement, pk in (
        (f"UPDATE verification_verificationtask SET closed_by_import_id = {batch.pk} WHERE id = %s",
         task[stays.pk].pk),
        ("UPDATE verification_verificationtask SET closed_by_import_id = NULL WHERE id = %s", closed.pk),
        (f"UPDATE verification_verificationtask SET closed_by_run_id = {run.pk} WHERE id = %s", closed.pk),
    ):  # fmt: skip
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [pk])
    # Going back before the field stops, naming the tasks an import closed.
    import importlib

    from django.apps import apps

    migration = importlib.import_module("zige.verification.migrations.0006_task_closed_by_import")
    with pytest.raises(RuntimeError, match=f"#{closed.pk} \\(import {batch.pk}\\)"):
        migration.refuse_tasks_closed_by_an_import(apps, None)


def test_a_terminated_person_s_task_left_open_is_neither_listed_reminded_nor_escalated(
    unit: Any, officer: Any
) -> None:
    """A task left open from before imports closed them (or the roll changed by hand): the sweep
    and the unit's 附件1 skip a 终止 person all the same, and propose no suspension."""
    from zige.verification.selectors import form1_rows

    ended, stays = young(unit), young(unit)
    tasks_for_run(run_id=run_with([(ended, "pending", "no_evidence"), (stays, "pending", "no_evidence")]).pk,
                  now=NOW)  # fmt: skip
    Recipient.objects.filter(pk=ended.pk).update(benefit_status="terminated")
    _, rows = form1_rows(user=officer, unit_no=unit.unit_no)
    assert [r["person_no"] for r in rows] == [stays.person_no]
    assert tasks_sweep(now=NOW.replace(year=2027, month=1, day=29))["reminders"] == 1
    counts = tasks_sweep(now=NOW.replace(year=2027, month=3, day=1))
    assert (counts["overdue"], counts["suspensions"]) == (1, 1)
    assert VerificationTask.objects.get(recipient=ended).status == "open"
    assert not TaskReminder.objects.filter(task__recipient=ended).exists()


# --- the filled-in 附件1 workbook -------------------------------------------------------------


def _form1(path: Path, tasks: list[VerificationTask], fill: dict[int, dict[str, str]]) -> bytes:
    """The unit's 附件1 as the engine writes it, with the 确认 columns filled per row index."""
    rows = [{"person_no": t.recipient.person_no, "name": t.recipient.name, "id_number": t.recipient.id_number,
             "sex": "男", "reason": "no_evidence"} for t in tasks]  # fmt: skip
    write_pending_workbook(
        path, unit_no=tasks[0].unit.unit_no, unit_name=tasks[0].unit.name, as_of=AS_OF, rows=rows
    )
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    header = {str(c.value): c.column for r in ws.iter_rows(min_row=4, max_row=5) for c in r if c.value}
    first = 7  # title, unit line, two header rows, the 栏目 row
    for i, values in fill.items():
        for label, value in values.items():
            if label not in header:  # an extra column (确认结果, 确认日期) after the form's own
                header[label] = ws.max_column + 1
                ws.cell(row=4, column=header[label], value=label)
            ws.cell(row=first + i, column=header[label], value=value)
    wb.save(path)
    return path.read_bytes()


def test_workbook_with_faulty_rows_applies_nothing(unit: Any, unit_op: Any, tmp_path: Path) -> None:
    people = [young(unit) for _ in range(4)] + [old(unit)]
    tasks_for_run(run_id=run_with([(p, "pending", "no_evidence") for p in people]).pk, now=NOW)
    tasks = list(VerificationTask.objects.filter(unit=unit).order_by("recipient__person_no"))
    data = _form1(tmp_path / "form1.xlsx", tasks, {
        0: {"确认方式": "上门走访", "现居住地": "太原市迎泽区", "健康状况": "良好"},
        1: {"确认方式": "电话", "现居住地": "", "健康状况": "一般"},  # no address
        2: {"丧失原因": "死亡", "丧失时间": "2026年13月2日"},  # no such day
        # row 3 left empty: skipped
        4: {"确认方式": "视频", "现居住地": "晋中市", "健康状况": "卧床"},  # 86 years old: needs photo + written
    })  # fmt: skip
    result = form1_apply(user=unit_op, data=data, now=LATER)
    assert result.applied == 0
    found = {(e.row, e.field) for e in result.errors}
    assert {(8, "现居住地"), (9, "丧失时间"), (11, "现场确认图片或视频"), (11, "书面确认材料")} <= found, (
        result.errors
    )
    assert (7, "确认方式") not in found
    assert not Submission.objects.exists()
    assert set(VerificationTask.objects.filter(unit=unit).values_list("status", flat=True)) == {"open"}


def test_workbook_applies_every_filled_row_in_one_go(unit: Any, unit_op: Any, tmp_path: Path) -> None:
    people = [young(unit) for _ in range(4)]
    tasks_for_run(run_id=run_with([(p, "pending", "no_evidence") for p in people]).pk, now=NOW)
    tasks = list(VerificationTask.objects.filter(unit=unit).order_by("recipient__person_no"))
    data = _form1(tmp_path / "form1.xlsx", tasks, {
        0: {"确认方式": "上门走访", "现居住地": "太原市迎泽区", "健康状况": "良好"},
        1: {"丧失原因": "死亡", "丧失时间": "2026-10-02"},
        2: {"确认方式": "无法联系"},
    })  # fmt: skip
    scan = upload_check(name="stamped.pdf", data=PDF, allowed=EVERYTHING)
    result = form1_apply(user=unit_op, data=data, now=LATER, written=scan)
    assert (result.applied, result.skipped, result.errors) == (3, 1, [])
    got = {
        s.task.recipient_id: (s.result, s.method, s.source) for s in Submission.objects.select_related("task")
    }
    assert got == {
        tasks[0].recipient_id: ("eligible", "visit", "workbook"),
        tasks[1].recipient_id: ("lost", "other", "workbook"),
        tasks[2].recipient_id: ("unreachable", "other", "workbook"),
    }
    assert Submission.objects.get(task=tasks[1]).lost_on == date(2026, 10, 2)
    assert Attachment.objects.filter(role="written").count() == 3
    assert VerificationTask.objects.get(pk=tasks[3].pk).status == "open"


def test_workbook_rows_of_another_unit_are_errors(unit: Any, unit_op: Any, tmp_path: Path) -> None:
    other_unit = UnitFactory()
    stranger = young(other_unit)
    tasks_for_run(run_id=run_with([(stranger, "pending", "no_evidence")]).pk, now=NOW)
    data = _form1(tmp_path / "form1.xlsx", list(VerificationTask.objects.filter(unit=other_unit)),
                  {0: {"确认方式": "电话", "现居住地": "x", "健康状况": "良好"}})  # fmt: skip
    result = form1_apply(user=unit_op, data=data, now=LATER)
    assert [(e.row, e.field) for e in result.errors] == [(7, "个人编号")]
    assert not Submission.objects.exists()


def _one_cell_a_row_at_xfd(rows: int) -> bytes:
    """A workbook of `rows` rows, each one cell in the sheet's last column (XFD), the sheet's
    declared extent A1:XFD<rows>: a few KB packed."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1:XFD{rows}"/><sheetData>'
        + "".join(f'<row r="{i}"><c r="XFD{i}"><v>1</v></c></row>' for i in range(1, rows + 1))
        + "</sheetData></worksheet>"
    )
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relations = "http://schemas.openxmlformats.org/package/2006/relationships"
    office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{relations}">'
        f'<Relationship Id="rId1" Type="{office}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{office}">'
        '<sheets><sheet name="s" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{relations}">'
        f'<Relationship Id="rId1" Type="{office}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return packed.getvalue()


def test_a_workbook_wider_or_longer_than_a_form1_is_read_within_bounds(
    unit: Any, unit_op: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sheet that says it is 16,384 columns wide is read 40 columns wide (a 2,000-row one took
    300 MB before), and a sheet longer than a unit's list, or unpacking to more than the limit,
    is refused with a message, before anything is applied."""
    import tracemalloc

    from zige.verification import services

    data = _one_cell_a_row_at_xfd(2000)
    assert len(data) < 20_000
    tracemalloc.start()
    try:
        result = form1_apply(user=unit_op, data=data, now=LATER)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(e.row, e.field) for e in result.errors] == [(0, "文件")] and "找不到表头" in result.errors[
        0
    ].reason
    assert peak < 40 * 1024 * 1024, f"{peak / 1024 / 1024:.0f} MB"

    people = [young(unit) for _ in range(4)]
    tasks_for_run(run_id=run_with([(p, "pending", "no_evidence") for p in people]).pk, now=NOW)
    tasks = list(VerificationTask.objects.filter(unit=unit).order_by("recipient__person_no"))
    form = _form1(tmp_path / "form1.xlsx", tasks, {0: {"确认方式": "电话", **ADDRESS}})
    length = openpyxl.load_workbook(io.BytesIO(form), read_only=True).worksheets[0].max_row
    monkeypatch.setattr(services, "FORM1_MAX_ROWS", length - 1)
    refused = form1_apply(user=unit_op, data=form, now=LATER)
    assert [e.reason for e in refused.errors] == [f"工作表超过 {length - 1} 行：请上传系统下发的本单位附件1"]
    monkeypatch.setattr(services, "FORM1_MAX_ROWS", length)
    monkeypatch.setattr(services, "FORM1_MAX_UNPACKED_BYTES", 1024)
    refused = form1_apply(user=unit_op, data=form, now=LATER)
    assert "解压后" in refused.errors[0].reason and "超过上限" in refused.errors[0].reason
    assert not Submission.objects.exists()
    monkeypatch.setattr(services, "FORM1_MAX_UNPACKED_BYTES", 10 * 1024 * 1024)
    assert form1_apply(user=unit_op, data=form, now=LATER).applied == 1


ACCEPTED = "上门走访、视频、电话、来访、无法联系"
ADDRESS, HEALTH = {"现居住地": "太原市迎泽区", "健康状况": "良好"}, {}


def _pending_tasks(unit: Any, n: int) -> list[VerificationTask]:
    people = [young(unit) for _ in range(n)]
    tasks_for_run(run_id=run_with([(p, "pending", "no_evidence") for p in people]).pk, now=NOW)
    return list(VerificationTask.objects.filter(unit=unit).order_by("recipient__person_no"))


def _scan() -> Any:
    return upload_check(name="stamped.pdf", data=PDF, allowed=EVERYTHING)


def test_workbook_never_reports_people_the_unit_did_not_reach_as_eligible(
    unit: Any, unit_op: Any, tmp_path: Path
) -> None:
    """The walkthrough's two rows: free text that says the person was not reached is refused
    (naming the row, the column and the accepted values), never read as 具备资格（电话/上门走访）."""
    tasks = _pending_tasks(unit, 2)
    data = _form1(tmp_path / "form1.xlsx", tasks, {
        0: {"确认方式": "电话无人接听", "现居住地": "不详", "健康状况": "不详"},
        1: {"确认方式": "多次上门未见到本人，联系不到", "现居住地": "不详", "健康状况": "不详"},
    })  # fmt: skip
    result = form1_apply(user=unit_op, data=data, now=LATER, written=_scan())
    assert result.applied == 0
    by_row = {(e.row, e.field): e.reason for e in result.errors}
    for row, text in ((7, "电话无人接听"), (8, "多次上门未见到本人，联系不到")):
        reason = by_row[(row, "确认方式")]
        assert f"“{text}”不是可选的确认方式" in reason and ACCEPTED in reason
        assert "联系不上本人的请选择“无法联系”" in reason
    assert not Submission.objects.exists()
    assert set(VerificationTask.objects.filter(unit=unit).values_list("status", flat=True)) == {"open"}


@pytest.mark.parametrize(
    ("cells", "column", "says"),
    [
        ({"确认方式": "微信", **ADDRESS}, "确认方式", f"“微信”不是可选的确认方式，只能填写：{ACCEPTED}"),
        ({"确认方式": "上门", **ADDRESS}, "确认方式", ACCEPTED),
        ({"确认方式": "其他", **ADDRESS}, "确认方式", "任务页面逐人上报"),
        ({"确认方式": "电话", "现居住地": "不详", "健康状况": "良好"}, "现居住地", "须填写确知的现居住地"),
        ({"确认方式": "电话", "现居住地": "太原市", "健康状况": "家属称本人失联"}, "健康状况", "未联系到本人"),
        ({"确认方式": "无法联系", "确认结果": "具备资格"}, "确认结果", "确认结果却是“具备资格”"),
        ({"确认方式": "电话", **ADDRESS, "确认结果": "具备资格，家属代接"}, "确认结果", "具备资格、丧失资格、无法联系"),
        ({"确认方式": "电话", **ADDRESS, "丧失原因": "死亡", "丧失时间": "2026-10-02", "确认结果": "具备资格"},
         "丧失原因", "确认结果却是“具备资格”"),
        ({"确认方式": "上门走访", **ADDRESS, "丧失原因": "死亡", "丧失时间": "2026-10-02"}, "现居住地", "只填写一组"),
    ],
)  # fmt: skip
def test_workbook_refuses_what_it_cannot_read_for_certain(
    unit: Any, unit_op: Any, tmp_path: Path, cells: dict[str, str], column: str, says: str
) -> None:
    """确认方式 and 确认结果 are closed lists; a row that says two things, or 具备资格 with words
    of an unreached person or an unknown address or health, is refused, never guessed."""
    tasks = _pending_tasks(unit, 1)
    data = _form1(tmp_path / "form1.xlsx", tasks, {0: cells})
    result = form1_apply(user=unit_op, data=data, now=LATER, written=_scan())
    assert result.applied == 0
    assert any(e.row == 7 and e.field == column and says in e.reason for e in result.errors), result.errors
    assert not Submission.objects.exists()


def test_workbook_unreachable_needs_the_written_statement_and_keeps_the_words(
    unit: Any, unit_op: Any, tmp_path: Path
) -> None:
    """无法联系 needs a written statement as on the task page (三(一)4): without the stamped scan the
    row is refused, telling the unit how; with it, the report is 无法联系 with the unit's words."""
    tasks = _pending_tasks(unit, 1)
    cells = {"确认方式": "无法联系", "现居住地": "不详", "健康状况": "不详"}
    data = _form1(tmp_path / "form1.xlsx", tasks, {0: cells})
    refused = form1_apply(user=unit_op, data=data, now=LATER)
    assert [(e.row, e.field) for e in refused.errors] == [(7, "书面确认材料")]
    assert "任务页面逐人上报" in refused.errors[0].reason and not Submission.objects.exists()
    result = form1_apply(user=unit_op, data=data, now=LATER, written=_scan())
    assert (result.applied, result.errors) == (1, [])
    s = Submission.objects.get()
    assert (s.result, s.method, s.method_note, s.address, s.health) == (
        "unreachable",
        "other",
        "无法联系",
        "不详",
        "不详",
    )
    assert s.note == "附件1第7行原文：确认方式“无法联系”"


def test_workbook_accepts_the_form_s_values_and_keeps_what_the_unit_wrote(
    unit: Any, unit_op: Any, tmp_path: Path
) -> None:
    tasks = _pending_tasks(unit, 3)
    data = _form1(tmp_path / "form1.xlsx", tasks, {
        0: {"确认方式": "电话", **ADDRESS},
        1: {"确认方式": "上门　走访", "现居住地": "晋中市榆次区", "健康状况": "一般", "确认结果": "具备资格"},
        2: {"确认方式": "电话", "确认结果": "无法联系"},  # tried by phone, not reached
    })  # fmt: skip
    result = form1_apply(user=unit_op, data=data, now=LATER, written=_scan())
    assert (result.applied, result.errors) == (3, [])
    got = {s.task_id: (s.result, s.method, s.method_note, s.note) for s in Submission.objects.all()}
    assert got == {
        tasks[0].pk: ("eligible", "phone", "", "附件1第7行原文：确认方式“电话”"),
        tasks[1].pk: ("eligible", "visit", "", "附件1第8行原文：确认方式“上门　走访”；确认结果“具备资格”"),
        tasks[2].pk: ("unreachable", "phone", "", "附件1第9行原文：确认方式“电话”；确认结果“无法联系”"),
    }


def test_not_a_workbook(unit_op: Any) -> None:
    result = form1_apply(user=unit_op, data=b"<html>not excel</html>", now=LATER)
    assert result.applied == 0 and result.errors and result.errors[0].row == 0


def test_a_task_created_meanwhile_does_not_fail_the_run(unit: Any) -> None:
    """The bulk insert meets a task another run made after the candidates were chosen: the
    database refuses the batch, the conflict-skipping insert writes the others."""
    first, second = young(unit), young(unit)
    run = run_with([(first, "pending", "no_evidence"), (second, "pending", "no_evidence")])
    rows = [
        (p.pk, unit.pk, "unit", "due:2026-01-15", "open", run.pk, AS_OF, "no_evidence", "", None, date(2027, 2, 28), NOW,
         NOW, "", "", "", "")
        for p in (first, second)
    ]  # fmt: skip
    services._tasks_insert(rows[:1])
    services._tasks_insert(rows)  # the first row conflicts now
    assert VerificationTask.objects.filter(run=run).count() == 2


def test_the_schedule_sweeps_once_a_day(task: VerificationTask) -> None:
    from zige.notifications import jobs

    late = NOW.replace(year=2027, month=3, day=5)
    done = jobs.tasks_sweep_daily(clock=lambda: late)
    assert done is not None and done.status == "succeeded" and done.detail["overdue"] == 1
    assert (
        jobs.tasks_sweep_daily(clock=lambda: late + timedelta(hours=2)) is None
    )  # same day: claimed already
    assert VerificationTask.objects.get(pk=task.pk).status == "overdue"
