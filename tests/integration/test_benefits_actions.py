"""Payment actions: proposal, maker-checker, every transition, reversals, proposals from runs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.factories import NOW, RecipientFactory, UserFactory
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.benefits.models import ActionSource, ActionState, PaymentAction, RecoveryCase, RecoveryStatus
from zige.benefits.services import (
    ACTION_TRANSITIONS,
    BenefitsError,
    payment_action_approve,
    payment_action_propose,
    payment_action_reject,
    payment_action_reverse,
    payment_action_withdraw,
    payment_actions_for_run,
    recovery_case_write_off_decide,
    recovery_case_write_off_propose,
)
from zige.certification.models import Decision, Run, RunStatus, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def maker() -> Any:
    return UserFactory(username="maker", role=Role.BUREAU_OPERATOR)


@pytest.fixture
def checker() -> Any:
    return UserFactory(username="checker", role=Role.BUREAU_ADMIN)


def propose(maker: Any, *, kind: str = "stop", month: str = "2026-09", months: int | str | None = "rules",
            amount: str | None = "rules", person: Any = None, source: str = "manual",
            figures_note: str = "") -> PaymentAction:  # fmt: skip
    person = person or RecipientFactory()
    # "rules": the months and amount the rules give (§5) as of NOW, paid through 2026-11.
    if months == "rules":  # a 正常 person's stop or suspension: the months from `month` through 2026-11
        months = max(0, 2026 * 12 + 11 - (int(month[:4]) * 12 + int(month[5:])) + 1)
    if amount == "rules":
        amount = None if months is None else f"{months * person.monthly_amount:.2f}"
    return payment_action_propose(
        recipient=person, kind=kind, effective_month=month, months=cast(int | None, months),
        amount=None if amount is None else Decimal(amount), source=source, source_ref="test",
        proposed_by=maker, now=NOW, figures_note=figures_note,
    )  # fmt: skip


def test_propose_is_audited_and_idempotent_while_live(maker: Any) -> None:
    person = RecipientFactory()
    first = propose(maker, person=person)
    again = propose(maker, person=person)
    assert again.pk == first.pk
    assert PaymentAction.objects.count() == 1
    assert AuditEvent.objects.filter(action="payment_action.proposed", target_id=str(first.pk)).count() == 1
    assert first.state == ActionState.PROPOSED and first.proposed_by == maker
    other_kind = propose(maker, person=person, kind="suspend", month="2026-10")
    assert other_kind.pk != first.pk


@pytest.mark.parametrize("kind", ["stop", "suspend"])
def test_a_second_manual_stop_or_suspension_in_another_month_is_refused(
    kind: str, maker: Any, checker: Any
) -> None:
    """Rules §8.6: one stop (and one suspension) on its way per person, whatever its month; the
    refusal names the action in force. Once it is closed, a new one may be proposed."""
    person = RecipientFactory()
    first = propose(maker, person=person, kind=kind, month="2026-09")
    with pytest.raises(BenefitsError, match=f"#{first.pk}（生效月份 2026-09"):
        propose(checker, person=person, kind=kind, month="2026-08")
    payment_action_approve(action_id=first.pk, user=checker, now=NOW)
    with pytest.raises(BenefitsError, match=f"#{first.pk}.*已审批"):
        propose(checker, person=person, kind=kind, month="2026-10")
    assert PaymentAction.objects.filter(recipient=person, kind=kind).count() == 1
    reversal = payment_action_reverse(action_id=first.pk, user=checker, reason="月份有误", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=maker, now=NOW)
    # Approved but not yet exported: the original is still on its way to the payment system.
    with pytest.raises(BenefitsError):
        propose(checker, person=person, kind=kind, month="2026-08")


def test_two_paths_stopping_one_death_give_one_stop_and_one_recovery_case(maker: Any, checker: Any) -> None:
    """A run stops the person from 2026-10; a verification then finds the death a month earlier.
    Both used to be live and approved: two stops, two recovery cases for one death. Now the run's
    proposal, still awaiting approval, follows the finding (rules §8.6): one stop, from 2026-09."""
    dead = RecipientFactory()
    run = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=run.pk, now=NOW) == 1
    by_run = PaymentAction.objects.get(recipient=dead)
    found = propose(maker, person=dead, month="2026-09", months=3, amount="9000.00", source="verification")
    assert found.pk == by_run.pk
    assert (found.effective_month, found.months, found.amount, found.source, found.proposed_by) == (
        "2026-09", 3, Decimal("9000.00"), ActionSource.VERIFICATION, maker)  # fmt: skip
    assert AuditEvent.objects.filter(
        action="payment_action.revised_by_finding", target_id=str(by_run.pk)
    ).exists()
    # An overdue task's suspension is no second suspension either.
    suspend = propose(maker, person=dead, kind="suspend", month="2026-12", months=0, amount="0.00",
                      source="overdue")  # fmt: skip
    assert propose(maker, person=dead, kind="suspend", month="2027-01", source="overdue").pk == suspend.pk
    payment_action_approve(action_id=by_run.pk, user=checker, now=NOW)
    # Approved: another finding's month is declined and audited, not applied.
    assert propose(maker, person=dead, month="2026-08", months=4, amount="12000.00", source="verification").pk == (
        by_run.pk)  # fmt: skip
    declined = AuditEvent.objects.filter(action="payment_action.proposal_declined").order_by("pk").last()
    assert declined is not None and declined.target_id == str(by_run.pk)
    assert (declined.after["effective_month"], declined.after["in_force"]) == ("2026-08", by_run.pk)
    assert PaymentAction.objects.filter(recipient=dead, kind="stop").count() == 1
    assert RecoveryCase.objects.get(action__recipient=dead).amount == Decimal("9000.00")


def test_a_finding_leaves_an_officers_own_stop_to_the_officer(maker: Any, checker: Any) -> None:
    """An officer's proposal carries the officer's figures: a finding's other month is declined and
    audited, as before (the officer withdraws it and proposes again)."""
    dead = RecipientFactory()
    by_hand = propose(maker, person=dead, month="2026-10", months=2, amount="6000.00")
    assert propose(checker, person=dead, month="2026-09", source="verification").pk == by_hand.pk
    by_hand.refresh_from_db()
    assert (by_hand.effective_month, by_hand.source, by_hand.proposed_by) == ("2026-10", "manual", maker)
    assert AuditEvent.objects.filter(action="payment_action.proposal_declined").count() == 1
    assert not AuditEvent.objects.filter(action="payment_action.revised_by_finding").exists()


def test_a_later_run_does_not_undo_a_findings_revision(maker: Any) -> None:
    """The finding's stop is no longer a run's proposal: the next run (which may not know the
    finding's date) neither revises it back nor withdraws it, nor proposes a second stop."""
    dead = RecipientFactory()
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    propose(maker, person=dead, month="2026-09", months=3, amount="9000.00", source="verification")
    run2 = _run([(dead, Status.STOP, "stop", "2026-10", 3, "9000.00")], date(2026, 12, 31))
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    assert list(PaymentAction.objects.filter(recipient=dead).values_list("effective_month", "months", "state")) == [
        ("2026-09", 3, ActionState.PROPOSED)]  # fmt: skip
    assert not AuditEvent.objects.filter(
        action__in=("payment_action.revised_by_run", "payment_action.withdrawn_by_run")
    ).exists()


def test_a_confirmed_stop_blocks_a_second_until_it_is_reversed(
    maker: Any, checker: Any, settings: Any, tmp_path: Any
) -> None:
    settings.DATA_DIR = tmp_path
    dead = RecipientFactory()
    stop = propose(maker, person=dead, month="2026-10")
    _confirm_all(maker, checker, NOW)
    stop.refresh_from_db()
    assert stop.state == ActionState.CONFIRMED
    assert propose(maker, person=dead, month="2026-08", source="verification").pk == stop.pk
    with pytest.raises(BenefitsError, match=f"#{stop.pk}.*已确认"):
        propose(maker, person=dead, month="2026-08")
    reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="死亡日期有误", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    again = propose(maker, person=dead, month="2026-08")
    assert again.pk not in (stop.pk, reversal.pk) and again.state == ActionState.PROPOSED


def test_the_database_allows_one_open_stop_per_person_whatever_the_month(maker: Any) -> None:
    action = propose(maker)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAction.objects.create(
            recipient=action.recipient, unit=action.unit, kind="stop", effective_month="2026-07",
            source="verification", proposed_at=NOW,
        )  # fmt: skip
    # A resume's month moves: two resumes in two months are the table's business, not this rule's.
    PaymentAction.objects.create(
        recipient=action.recipient, unit=action.unit, kind="resume", effective_month="2026-07",
        source="run", proposed_at=NOW,
    )  # fmt: skip
    PaymentAction.objects.create(
        recipient=action.recipient, unit=action.unit, kind="resume", effective_month="2026-08",
        source="run", proposed_at=NOW,
    )  # fmt: skip


def test_a_closed_proposal_frees_the_slot(maker: Any, checker: Any) -> None:
    person = RecipientFactory()
    first = propose(maker, person=person)
    payment_action_reject(action_id=first.pk, user=checker, reason="证据不足", now=NOW)
    second = propose(maker, person=person)
    assert second.pk != first.pk


def test_an_officer_s_figures_are_the_rules_months_times_the_monthly_pension(
    maker: Any, checker: Any
) -> None:
    """Rules §5: amount = months × 月养老金; a stop or suspension's months run from the effective
    month through the current month (paid in advance). Another figure is refused with the
    calculated one unless the officer writes why (kept, audited); a system path's wrong figure is
    refused outright."""
    person = RecipientFactory(monthly_amount=Decimal("2987.95"))
    with pytest.raises(
        BenefitsError, match=r"2 个月 × 月养老金 2,987\.95 元 = 5,975\.90 元，填写的是 99,999\.00 元"
    ):
        propose(maker, person=person, month="2026-10", months=2, amount="99999.00")
    with pytest.raises(BenefitsError, match="月数按规则应为 2 个月"):
        propose(maker, person=person, month="2026-10", months=3, amount="8963.85")
    with pytest.raises(BenefitsError, match="请填写月数"):
        propose(maker, person=person, month="2026-10", months=None, amount="5975.90")
    with pytest.raises(BenefitsError, match="金额与计算不符"):
        propose(None, person=person, month="2026-10", months=2, amount="99999.00", source="verification")
    with pytest.raises(BenefitsError, match=r"5,975\.90"):  # a reason of blanks is no reason
        propose(maker, person=person, month="2026-10", months=2, amount="99999.00", figures_note="  ")
    assert not PaymentAction.objects.exists()

    overridden = propose(
        maker, person=person, month="2026-10", months=2, amount="99999.00", figures_note="另有补差"
    )
    assert (overridden.amount, overridden.figures_note) == (Decimal("99999.00"), "另有补差")
    event = AuditEvent.objects.get(action="payment_action.proposed", target_id=str(overridden.pk))
    assert event.after["figures_note"] == "另有补差"
    assert event.after["calculated"]["amount"] == "5975.90" and event.after["calculated"]["months"] == 2
    payment_action_withdraw(action_id=overridden.pk, user=maker, reason="按计算金额重提", now=NOW)
    filled = propose(maker, person=person, month="2026-10", months=2, amount=None)
    assert filled.amount == Decimal("5975.90") and filled.figures_note == ""
    suspended = RecipientFactory(monthly_amount=Decimal("1000.0050"), benefit_status="suspended",
                                 status_since=date(2026, 9, 15))  # fmt: skip
    # A 暂停 person's stop: paid through the month before 状态变更日期 (§5.1), half-up to fen.
    with pytest.raises(BenefitsError, match="月数按规则应为 1 个月"):
        propose(maker, person=suspended, month="2026-08", months=4, amount="4000.02")
    assert propose(maker, person=suspended, month="2026-08", months=1, amount="1000.01").months == 1


def test_figures_with_a_written_reason_are_never_approved_in_bulk(maker: Any, checker: Any) -> None:
    """An officer's figures other than the calculation (kept with `figures_note`) are approved only
    on the action's own page, where the checker sees the calculation and the reason: bulk
    approval skips them with a message naming each (the amount and the calculation, or the
    months), audits nothing for them and approves the others as before."""
    from zige.benefits.services import payment_actions_approve_many

    person = RecipientFactory(name="钱七", monthly_amount=Decimal("2987.95"))
    amount = propose(
        maker, person=person, month="2026-10", months=2, amount="99999.00", figures_note="另有补差"
    )
    months = propose(maker, month="2026-10", months=3, amount="rules", figures_note="家属称上月已多领一月")
    plain = propose(maker, month="2026-10")
    assert amount.approve_one_by_one and months.approve_one_by_one and not plain.approve_one_by_one
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    result = payment_actions_approve_many(
        action_ids=[amount.pk, months.pk, plain.pk], user=checker, now=NOW,
        seen={a.pk: a.figures for a in (amount, months, plain)},
    )  # fmt: skip
    assert result.approved == [plain.pk] and result.refused == {}
    assert set(result.one_by_one) == {amount.pk, months.pk}
    assert result.one_by_one[amount.pk] == (
        f"待遇处理 #{amount.pk}（钱七）：金额 99,999.00 元与计算金额不符（2 个月 × 月养老金 2,987.95 元 = "
        "5,975.90 元），经办人已写明理由，须在该业务页面核对后逐笔审批"
    )
    assert "月数或生效月份与规则计算不符" in result.one_by_one[months.pk]
    assert {a.pk: a.state for a in PaymentAction.objects.all()} == {
        amount.pk: "proposed", months.pk: "proposed", plain.pk: "approved"}  # fmt: skip
    written = (
        AuditEvent.objects.filter(pk__gt=last)
        .order_by("pk")
        .values_list("action", "target_type", "target_id")
    )
    assert [w for w in written if w[1] == "payment_action"] == [
        ("payment_action.approved", "payment_action", str(plain.pk))
    ]
    # One by one, on its page: approved as before (the figures it showed).
    payment_action_approve(action_id=amount.pk, user=checker, now=NOW, seen=amount.figures)
    assert PaymentAction.objects.get(pk=amount.pk).state == ActionState.APPROVED


@pytest.mark.parametrize(
    ("kind", "month", "months", "amount", "message"),
    [
        ("cancel", "2026-09", 1, "1", "未知"),
        ("stop", "2026-13", 1, "1", "YYYY-MM"),
        ("stop", "202609", 1, "1", "YYYY-MM"),
        ("stop", "2026-09", -1, "1", "负数"),
        ("stop", "2026-09", 1, "-1", "负数"),
        ("stop", "2026-09", 1, "1.001", "两位小数"),
    ],
)
def test_propose_refuses_bad_values(
    maker: Any, kind: str, month: str, months: int, amount: str, message: str
) -> None:
    with pytest.raises(BenefitsError, match=message):
        propose(maker, kind=kind, month=month, months=months, amount=amount)


def test_unit_operators_and_auditors_cannot_propose() -> None:
    for role in (Role.AUDITOR, Role.UNIT_OPERATOR):
        user = UserFactory(role=Role.AUDITOR) if role == Role.AUDITOR else None
        if user is None:
            from tests.factories import UnitOperatorFactory

            user = UnitOperatorFactory()
        with pytest.raises(BenefitsError, match="社保局"):
            propose(user)


# --- maker-checker --------------------------------------------------------------------------


def test_the_proposer_can_never_approve(maker: Any, checker: Any) -> None:
    action = propose(maker)
    with pytest.raises(BenefitsError, match="提出人不能审批"):
        payment_action_approve(action_id=action.pk, user=maker, now=NOW)
    action.refresh_from_db()
    assert action.state == ActionState.PROPOSED
    approved = payment_action_approve(action_id=action.pk, user=checker, now=NOW)
    assert approved.state == ActionState.APPROVED and approved.approved_by == checker


def test_the_database_refuses_maker_as_checker(maker: Any, checker: Any) -> None:
    """A raw UPDATE around the service: the check constraint refuses it (SQLite and PostgreSQL)."""
    action = propose(maker)
    table = PaymentAction._meta.db_table
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET state = 'approved', approved_by_id = proposed_by_id, approved_at = %s WHERE id = %s",
            [NOW, action.pk],
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAction.objects.filter(pk=action.pk).update(
            state="approved", approved_by=maker, approved_at=NOW
        )
    # A different person passes the same constraint (the test can fail).
    with transaction.atomic():
        PaymentAction.objects.filter(pk=action.pk).update(
            state="approved", approved_by=checker, approved_at=NOW
        )
    action.refresh_from_db()
    assert action.approved_by == checker


def test_a_system_proposal_still_needs_a_human_approver(checker: Any) -> None:
    action = propose(None, source="run")
    assert action.proposed_by is None
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAction.objects.filter(pk=action.pk).update(state="approved")
    payment_action_approve(action_id=action.pk, user=checker, now=NOW)
    action.refresh_from_db()
    assert action.state == ActionState.APPROVED


# --- the transition table ---------------------------------------------------------------------

STATES = [s.value for s in ActionState]


@pytest.mark.parametrize("start", STATES)
@pytest.mark.parametrize("verb", ["approve", "reject", "withdraw"])
def test_every_user_transition_against_the_table(start: str, verb: str, maker: Any, checker: Any) -> None:
    action = propose(maker)
    fields: dict[str, Any] = {"state": start}
    if start in ("approved", "exported", "confirmed"):
        fields.update(approved_by=checker, approved_at=NOW)
    PaymentAction.objects.filter(pk=action.pk).update(**fields)
    target = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn"}[verb]
    call = {
        "approve": lambda: payment_action_approve(action_id=action.pk, user=checker, now=NOW),
        "reject": lambda: payment_action_reject(action_id=action.pk, user=checker, reason="不对", now=NOW),
        "withdraw": lambda: payment_action_withdraw(action_id=action.pk, user=maker, reason="", now=NOW),
    }[verb]
    before = AuditEvent.objects.count()
    if (start, target) in ACTION_TRANSITIONS:
        assert call().state == target
        assert AuditEvent.objects.filter(action=f"payment_action.{target}").count() == 1
        assert AuditEvent.objects.count() > before
    else:
        # A withdrawn action's approval says so, with the reason it was withdrawn.
        with pytest.raises(BenefitsError, match=r"状态不能从|已撤回，不能审批"):
            call()
        action.refresh_from_db()
        assert action.state == start
        assert AuditEvent.objects.count() == before


def test_the_table_is_the_documented_one() -> None:
    assert {
        ("proposed", "approved"), ("proposed", "rejected"), ("proposed", "withdrawn"),
        ("approved", "exported"), ("exported", "confirmed"), ("exported", "approved"),
    } == ACTION_TRANSITIONS  # fmt: skip


def test_only_the_proposer_withdraws_and_only_others_reject(maker: Any, checker: Any) -> None:
    action = propose(maker)
    with pytest.raises(BenefitsError, match="只有提出人"):
        payment_action_withdraw(action_id=action.pk, user=checker, reason="", now=NOW)
    with pytest.raises(BenefitsError, match="撤回"):
        payment_action_reject(action_id=action.pk, user=maker, reason="x", now=NOW)
    with pytest.raises(BenefitsError, match="理由"):
        payment_action_reject(action_id=action.pk, user=checker, reason=" ", now=NOW)
    system = propose(None, source="run")
    with pytest.raises(BenefitsError, match="系统提出的待遇处理不能撤回"):
        payment_action_withdraw(action_id=system.pk, user=checker, reason="", now=NOW)


# --- reversals ------------------------------------------------------------------------------


def test_a_reversal_is_a_new_action_through_approval(maker: Any, checker: Any) -> None:
    original = propose(maker)
    with pytest.raises(BenefitsError, match="驳回或撤回"):
        payment_action_reverse(action_id=original.pk, user=checker, reason="错了", now=NOW)
    payment_action_approve(action_id=original.pk, user=checker, now=NOW)
    reversal = payment_action_reverse(action_id=original.pk, user=checker, reason="死亡信息有误", now=NOW)
    original.refresh_from_db()
    assert original.state == ActionState.APPROVED  # never edited
    assert reversal.reverses == original and reversal.source == ActionSource.REVERSAL
    assert (reversal.kind, reversal.effective_month, reversal.months, reversal.amount) == (
        original.kind, original.effective_month, original.months, original.amount,
    )  # fmt: skip
    assert reversal.export_code == "reverse_stop" and reversal.state == ActionState.PROPOSED
    with pytest.raises(BenefitsError, match="已有撤销"):
        payment_action_reverse(action_id=original.pk, user=maker, reason="again", now=NOW)
    with pytest.raises(BenefitsError, match="提出人不能审批"):
        payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    payment_action_approve(action_id=reversal.pk, user=maker, now=NOW)
    with pytest.raises(BenefitsError, match="不能再撤销"):
        payment_action_reverse(action_id=reversal.pk, user=maker, reason="x", now=NOW)


def test_an_approved_stop_with_months_opens_a_recovery_case_and_its_reversal_cancels_it(
    maker: Any, checker: Any
) -> None:
    stop = propose(maker, months=3, amount="9000.00")
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    case = RecoveryCase.objects.get(action=stop)
    assert (case.amount, case.months, case.status) == (Decimal("9000.00"), 3, RecoveryStatus.OPEN)
    no_months = propose(maker, month="2026-12", months=0, amount="0.00")
    payment_action_approve(action_id=no_months.pk, user=checker, now=NOW)
    suspend = propose(maker, kind="suspend", month="2026-10", months=2, amount="6000.00")
    payment_action_approve(action_id=suspend.pk, user=checker, now=NOW)
    assert RecoveryCase.objects.count() == 1
    reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="人还活着", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    case.refresh_from_db()
    assert case.status == RecoveryStatus.CANCELLED


def test_a_reversal_is_not_approved_while_its_recovery_case_waits_for_a_write_off(
    maker: Any, checker: Any
) -> None:
    """Before: the reversal was approved, the pending write-off kept the case from being
    cancelled (silently), and the write-off could then be approved: 9,000.00 元 reported as
    written off for a stop that was reversed."""
    stop = propose(maker, months=3, amount="9000.00")
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    case = RecoveryCase.objects.get(action=stop)
    recovery_case_write_off_propose(case_id=case.pk, reason="继承人无财产", user=maker, now=NOW)
    reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="人还活着", now=NOW)
    with pytest.raises(BenefitsError, match=f"追回案件 #{case.pk} 的核销正在等待审批"):
        payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    reversal.refresh_from_db()
    case.refresh_from_db()
    assert (reversal.state, case.status) == (ActionState.PROPOSED, RecoveryStatus.WRITE_OFF_PROPOSED)
    assert not AuditEvent.objects.filter(
        action="payment_action.approved", target_id=str(reversal.pk)
    ).exists()
    recovery_case_write_off_decide(case_id=case.pk, approve=False, user=checker, now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    case.refresh_from_db()
    assert case.status == RecoveryStatus.CANCELLED
    assert AuditEvent.objects.filter(action="recovery_case.cancelled", target_id=str(case.pk)).exists()


@pytest.mark.parametrize("reversal_first", [False, True])
def test_a_written_off_case_whose_stop_is_reversed_is_cancelled(
    reversal_first: bool, maker: Any, checker: Any
) -> None:
    """A reversed stop's debt is never written off (docs/payments.md §3). Before: the write-off
    approved, then the stop's reversal approved — or the reversal proposed first and approved
    after the write-off — left the case 已核销 (stop_reversed False), still in the 追回统计 as
    9,000.00 written off, with its fraud case counted as arising from it. Now it is cancelled,
    out of the report, audited with the amount the write-off had taken."""
    from zige.benefits.selectors import recovery_report
    from zige.benefits.services import fraud_case_open

    stop = propose(maker, months=3, amount="9000.00")
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    case = RecoveryCase.objects.get(action=stop)
    fraud = fraud_case_open(recipient=stop.recipient, amount_obtained=Decimal("9000.00"), opened_by=maker,
                            source_ref="review:1", note="", now=NOW)  # fmt: skip
    assert fraud.recovery_case_id == case.pk
    if reversal_first:
        reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="人还活着", now=NOW)
    recovery_case_write_off_propose(case_id=case.pk, reason="继承人无财产", user=maker, now=NOW)
    recovery_case_write_off_decide(case_id=case.pk, approve=True, user=checker, now=NOW)
    case.refresh_from_db()
    assert case.status == RecoveryStatus.WRITTEN_OFF
    if not reversal_first:
        reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="人还活着", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    case.refresh_from_db()
    assert (case.status, case.stop_reversed, case.outstanding) == (
        RecoveryStatus.CANCELLED, True, Decimal("0.00"),
    )  # fmt: skip
    event = AuditEvent.objects.get(action="recovery_case.cancelled", target_id=str(case.pk))
    assert (event.before, event.after) == (
        {"status": "written_off"},
        {"status": "cancelled", "why": "stop reversed", "written_off": "9000.00"},
    )  # fmt: skip
    report = recovery_report()
    assert (report.total.cases, report.total.written_off, report.by_status) == (0, Decimal("0"), [])
    assert (report.fraud_recovery_cases, report.fraud_obtained_uncovered) == (0, Decimal("9000.00"))


def test_a_written_off_case_with_money_recovered_owes_it_back_when_its_stop_is_reversed(
    maker: Any, checker: Any
) -> None:
    """Kept as it was: the part recovered before the write-off is owed back (待返还)."""
    from zige.benefits.services import recovery_payment_record

    stop = propose(maker, months=3, amount="9000.00")
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    case = RecoveryCase.objects.get(action=stop)
    recovery_payment_record(case_id=case.pk, amount=Decimal("1000.00"), paid_on=date(2026, 11, 30),
                            method="现金", user=maker, now=NOW)  # fmt: skip
    recovery_case_write_off_propose(case_id=case.pk, reason="继承人无财产", user=maker, now=NOW)
    recovery_case_write_off_decide(case_id=case.pk, approve=True, user=checker, now=NOW)
    reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="人还活着", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    case.refresh_from_db()
    assert (case.status, case.refund_due) == (RecoveryStatus.REFUND_DUE, Decimal("1000.00"))


@pytest.mark.parametrize("months", [1201, 99_999_999_999, 10**22])
def test_months_beyond_any_pension_are_refused_before_anything_is_written(maker: Any, months: int) -> None:
    """Before: 99999999999 months with a written reason were stored (amount months × 月养老金 past
    the column's 16 digits), and on SQLite every page reading the row — the action list for
    everyone — failed with decimal.InvalidOperation; 10**22 failed the proposal with a 500."""
    person = RecipientFactory(monthly_amount=Decimal("2205.96"))
    with pytest.raises(BenefitsError, match=r"月数 \d+ 超出允许范围"):
        propose(maker, kind="suspend", month="2026-11", months=months, amount=None, person=person,
                figures_note="测试")  # fmt: skip
    assert not PaymentAction.objects.filter(recipient=person).exists()
    assert not AuditEvent.objects.filter(action="payment_action.proposed").exists()
    action = propose(maker, kind="suspend", month="2026-11", months=1200, amount=None, person=person,
                     figures_note="补录历史暂停")  # fmt: skip
    action.refresh_from_db()
    assert (action.months, action.amount) == (1200, Decimal("2647152.00"))


def test_a_second_resume_in_a_later_month_does_not_pay_the_back_pay_twice(maker: Any, checker: Any) -> None:
    """A resume's month is the month after the day it is proposed. Before: a December resume
    (back pay 2025-09..2026-11) on its way, a January proposal (a unit's 具备资格 approved, or an
    officer's) made a second resume for 2027-02 with the same months again — 补发 paid twice."""
    person = RecipientFactory(benefit_status="suspended", status_since=date(2025, 9, 1), status_reason="未认证",
                              monthly_amount=Decimal("3082.03"))  # fmt: skip
    first = payment_action_propose(
        recipient=person, kind="resume", effective_month="2026-12", months=15, amount=None, source="manual",
        source_ref="test", proposed_by=maker, now=NOW, note="本人来访",
    )  # fmt: skip
    assert first.amount == Decimal("46230.45")
    payment_action_approve(action_id=first.pk, user=checker, now=NOW)
    january = NOW + timedelta(days=40)
    again = payment_action_propose(
        recipient=person, kind="resume", effective_month="2027-02", months=17, amount=Decimal("52394.51"),
        source="verification", source_ref="verification:9-1", proposed_by=checker, now=january,
    )  # fmt: skip
    assert again.pk == first.pk
    declined = AuditEvent.objects.get(action="payment_action.proposal_declined")
    assert declined.after["in_force"] == first.pk and declined.after["effective_month"] == "2027-02"
    with pytest.raises(
        BenefitsError, match=f"该人员已有恢复发放 #{first.pk}（生效月份 2026-12，15 个月，46,230.45 元，"
    ):
        payment_action_propose(
            recipient=person, kind="resume", effective_month="2027-02", months=17, amount=None, source="manual",
            source_ref="test", proposed_by=checker, now=january, note="本人来访",
        )  # fmt: skip
    assert PaymentAction.objects.filter(recipient=person, kind="resume").count() == 1
    # Confirmed, and the person suspended again since (a later roster state): back pay for the
    # new suspension is another matter.
    PaymentAction.objects.filter(pk=first.pk).update(state=ActionState.CONFIRMED)
    person.status_since = date(2027, 1, 1)
    person.save(update_fields=["status_since"])
    later = payment_action_propose(
        recipient=person, kind="resume", effective_month="2027-02", months=1, amount=None, source="manual",
        source_ref="test", proposed_by=checker, now=january, note="再次暂停后经核实健在",
    )  # fmt: skip
    assert later.pk != first.pk and later.state == ActionState.PROPOSED


def test_the_database_allows_one_live_action_per_person_kind_month(maker: Any) -> None:
    action = propose(maker)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAction.objects.create(
            recipient=action.recipient, unit=action.unit, kind="stop", effective_month="2026-09",
            source="manual", proposed_at=NOW,
        )  # fmt: skip


# --- proposals from a run -------------------------------------------------------------------


def _run(decisions: list[tuple[Any, str, str, str, int | None, str | None]], as_of: date) -> Run:
    run = Run.objects.create(as_of=as_of, status=RunStatus.SUCCEEDED, created_at=NOW)
    for person, status, action, month, months, amount in decisions:
        Decision.objects.create(
            run=run, recipient=person, unit=person.unit, status=status, reason="death", action=action,
            effective_month=month, months=months, amount=None if amount is None else Decimal(amount),
        )  # fmt: skip
    return run


def test_a_run_proposes_one_action_per_decision_with_an_action_idempotently(checker: Any) -> None:
    dead, missing, back, fine = (RecipientFactory() for _ in range(4))
    rows = [
        (dead, Status.STOP, "stop", "2026-09", 3, "9000.00"),
        (missing, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00"),
        (back, Status.ELIGIBLE, "resume", "2026-12", 5, "15000.00"),
        (fine, Status.ELIGIBLE, "", "", None, None),
    ]
    run1 = _run(rows, date(2026, 11, 30))
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 3
    actions = PaymentAction.objects.order_by("recipient_id")
    assert [(a.recipient_id, a.kind, a.effective_month, a.months, a.amount, a.proposed_by_id, a.run_id)
            for a in actions] == [
        (dead.pk, "stop", "2026-09", 3, Decimal("9000.00"), None, run1.pk),
        (missing.pk, "suspend", "2026-10", 2, Decimal("6000.00"), None, run1.pk),
        (back.pk, "resume", "2026-12", 5, Decimal("15000.00"), None, run1.pk),
    ]  # fmt: skip
    event = AuditEvent.objects.get(action="payment_action.proposed_by_run")
    assert event.after["count"] == 3 and sorted(event.after["actions"]) == sorted(a.pk for a in actions)
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 0
    # The next month's run: the resume's month moved on, the others are the same: nothing new.
    run2 = _run(
        [(dead, Status.STOP, "stop", "2026-09", 4, "12000.00"),
         (missing, Status.SUSPEND, "suspend", "2026-10", 3, "9000.00"),
         (back, Status.ELIGIBLE, "resume", "2027-01", 6, "18000.00")],
        date(2026, 12, 31),
    )  # fmt: skip
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    # A rejected run proposal is not proposed again for the same month.
    stop = PaymentAction.objects.get(recipient=dead)
    payment_action_reject(action_id=stop.pk, user=checker, reason="核实中", now=NOW)
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    # After a confirmed resume, a new suspension (another kind, another month) is proposed.
    resume = PaymentAction.objects.get(recipient=back)
    payment_action_approve(action_id=resume.pk, user=checker, now=NOW)
    run3 = _run([(back, Status.SUSPEND, "suspend", "2027-03", 0, "0.00")], date(2027, 3, 31))
    assert payment_actions_for_run(run_id=run3.pk, now=NOW + timedelta(days=120)) == 1


def test_the_officer_who_started_a_run_is_the_maker_of_its_proposals(maker: Any, checker: Any) -> None:
    """A run's proposals are the act of the officer who started it: that officer cannot approve
    them — a back pay included — one by one, in bulk, or in the database; a second person can.
    A run started by the scheduler has no user: no proposer, and any officer approves."""
    from zige.benefits.services import payment_actions_approve_many

    dead, back = RecipientFactory(), RecipientFactory()
    run = _run(
        [(dead, Status.STOP, "stop", "2026-09", 3, "9000.00"),
         (back, Status.ELIGIBLE, "resume", "2026-12", 5, "15000.00")],
        date(2026, 11, 30),
    )  # fmt: skip
    Run.objects.filter(pk=run.pk).update(created_by=maker)
    assert payment_actions_for_run(run_id=run.pk, now=NOW) == 2
    resume, stop = PaymentAction.objects.filter(run=run).order_by("kind")
    assert (resume.kind, stop.kind) == ("resume", "stop")
    assert {stop.proposed_by_id, resume.proposed_by_id} == {maker.pk}
    with pytest.raises(BenefitsError, match=f"认证批次 #{run.pk} 由您发起"):
        payment_action_approve(action_id=resume.pk, user=maker, now=NOW)
    refused = payment_actions_approve_many(action_ids=[stop.pk, resume.pk], user=maker, now=NOW)
    assert refused.approved == [] and set(refused.refused) == {stop.pk, resume.pk}
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAction.objects.filter(pk=resume.pk).update(
            state="approved", approved_by=maker, approved_at=NOW
        )
    event = AuditEvent.objects.get(action="payment_action.proposed_by_run", target_id=str(run.pk))
    assert (event.actor, event.after["proposed_by"]) == ("maker", "maker")
    payment_action_approve(action_id=resume.pk, user=checker, now=NOW)
    assert PaymentAction.objects.get(pk=resume.pk).state == ActionState.APPROVED
    # The scheduler's run (no user): the system proposes, any officer approves.
    scheduled = _run([(RecipientFactory(), Status.STOP, "stop", "2026-10", 1, "3000.00")], date(2026, 12, 31))
    assert payment_actions_for_run(run_id=scheduled.pk, now=NOW) == 1
    system = PaymentAction.objects.get(run=scheduled)
    assert system.proposed_by_id is None
    payment_action_approve(action_id=system.pk, user=maker, now=NOW)


def test_a_run_is_read_once_for_its_as_of_date_and_its_maker(maker: Any) -> None:
    """`payment_actions_for_run` read the run's row twice, once for its as-of date (is it the
    latest?) and once for the officer who started it (the maker): it is read once now, with the
    officer, and proposes the same."""
    run = _run([(RecipientFactory(), Status.STOP, "stop", "2026-09", 3, "9000.00")], date(2026, 11, 30))
    Run.objects.filter(pk=run.pk).update(created_by=maker)
    with CaptureQueriesContext(connection) as queries:
        assert payment_actions_for_run(run_id=run.pk, now=NOW) == 1
    # the reads of the run's row (its columns selected), not the look-up of a later run
    # (`later_run`: the runs as of a later date)
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        and '"certification_run"."as_of"' in q["sql"].split(" FROM ")[0]
        and '"certification_run"."as_of" >' not in q["sql"]
    ]
    assert len(reads) == 1, reads
    action = PaymentAction.objects.get(run=run)
    assert (action.proposed_by, action.kind, action.months) == (maker, "stop", 3)


def test_the_migration_makes_the_initiator_the_maker_of_pending_run_proposals(
    maker: Any, checker: Any
) -> None:
    """Run proposals made before (no proposer) that still wait for approval get their run's
    initiator as proposer; decided ones and the scheduler's keep theirs; reversible."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("zige.benefits.migrations.0002_run_proposals_proposer")
    by_officer = _run([], date(2026, 11, 30))
    Run.objects.filter(pk=by_officer.pk).update(created_by=maker)
    scheduled = _run([], date(2026, 11, 30))

    def made(run: Run, state: str = "proposed", approved_by: Any = None) -> PaymentAction:
        person = RecipientFactory()
        return PaymentAction.objects.create(
            recipient=person, unit=person.unit, kind="stop", effective_month="2026-09", source="run",
            source_ref=f"run:{run.pk}", run=run, state=state, proposed_at=NOW, approved_by=approved_by,
            approved_at=NOW if approved_by else None,
        )  # fmt: skip

    pending, decided, system = made(by_officer), made(by_officer, "approved", maker), made(scheduled)
    migration.forward(apps, None)
    proposers = dict(PaymentAction.objects.values_list("pk", "proposed_by_id"))
    assert proposers == {pending.pk: maker.pk, decided.pk: None, system.pk: None}
    with pytest.raises(BenefitsError, match="由您发起"):
        payment_action_approve(action_id=pending.pk, user=maker, now=NOW)
    migration.backward(apps, None)
    assert set(PaymentAction.objects.values_list("proposed_by_id", flat=True)) == {None}


def test_a_pending_run_proposal_follows_the_latest_run(checker: Any) -> None:
    """Rules §8.6: pensions are paid in advance through the month of the as-of date, so a stop
    proposed as of 2026-11-30 (2 months) is 3 months as of 2026-12-31; the proposal still awaiting
    approval takes the later figure (audited), and approving it opens the recovery case for it."""
    dead, back = RecipientFactory(), RecipientFactory()
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6806.68"),
                 (back, Status.ELIGIBLE, "resume", "2026-12", 5, "15000.00")], date(2026, 11, 30))  # fmt: skip
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 2
    run2 = _run([(dead, Status.STOP, "stop", "2026-10", 3, "10210.02"),
                 (back, Status.ELIGIBLE, "resume", "2027-01", 6, "18000.00")], date(2026, 12, 31))  # fmt: skip
    later = NOW + timedelta(days=31)
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    stop = PaymentAction.objects.get(recipient=dead)
    resume = PaymentAction.objects.get(recipient=back)
    assert (stop.state, stop.effective_month, stop.months, stop.amount) == (
        ActionState.PROPOSED, "2026-10", 3, Decimal("10210.02"))  # fmt: skip
    assert (resume.effective_month, resume.months, resume.amount) == ("2027-01", 6, Decimal("18000.00"))
    assert stop.run_id == run1.pk  # still the run that proposed it
    event = AuditEvent.objects.get(action="payment_action.revised_by_run", target_id=str(run2.pk))
    revisions = {r["action"]: r for r in event.after["revisions"]}
    assert revisions[stop.pk]["before"] == {"effective_month": "2026-10", "months": 2, "amount": "6806.68"}
    assert revisions[stop.pk]["after"] == {"effective_month": "2026-10", "months": 3, "amount": "10210.02"}
    run2.refresh_from_db()
    assert run2.summary["payment_actions"] == {
        "proposed": {},
        "revised": {"resume": {"count": 1, "months": 6, "amount": "18000.00"},
                    "stop": {"count": 1, "months": 3, "amount": "10210.02"}},
        "withdrawn": {},
    }  # fmt: skip
    run1.refresh_from_db()
    assert run1.summary["payment_actions"]["proposed"]["stop"] == {
        "count": 1,
        "months": 2,
        "amount": "6806.68",
    }
    # The same figures again: nothing to revise, no event.
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    assert AuditEvent.objects.filter(action="payment_action.revised_by_run").count() == 1
    payment_action_approve(action_id=stop.pk, user=checker, now=later)
    assert RecoveryCase.objects.get(action=stop).amount == Decimal("10210.02")


def test_the_officer_whose_run_revised_a_proposal_is_its_maker(maker: Any, checker: Any) -> None:
    """A run's initiator is the maker of its proposals, and a revision's figures are the
    revising run's. Before: the scheduler's run proposed a stop (no proposer), the officer's run
    revised its figures and left the proposer empty, and the officer approved the figures their
    own run wrote (maker-checker bypassed). Now the revising run's initiator is the proposer —
    refused one by one, in bulk and by the database — and the earlier run's initiator, who no
    longer made these figures, may approve them; a scheduled run's revision has no maker."""
    from zige.benefits.services import payment_actions_approve_many

    dead, other = RecipientFactory(), RecipientFactory()
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6000.00"),
                 (other, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))  # fmt: skip
    Run.objects.filter(pk=run1.pk).update(created_by=checker)  # `other`'s stop: the checker's run
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    PaymentAction.objects.filter(recipient=dead).update(proposed_by=None)  # `dead`'s: the scheduler's
    run2 = _run([(dead, Status.STOP, "stop", "2026-06", 6, "18000.00"),
                 (other, Status.STOP, "stop", "2026-10", 3, "9000.00")], date(2026, 12, 31))  # fmt: skip
    Run.objects.filter(pk=run2.pk).update(created_by=maker)
    later = NOW + timedelta(days=31)
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    stop = PaymentAction.objects.get(recipient=dead)
    assert (stop.effective_month, stop.months, stop.amount, stop.run_id, stop.proposed_by) == (
        "2026-06", 6, Decimal("18000.00"), run1.pk, maker,
    )  # fmt: skip
    with pytest.raises(BenefitsError, match=f"待遇处理 #{stop.pk} 的数字由您发起的认证批次更新"):
        payment_action_approve(action_id=stop.pk, user=maker, now=later)
    bulk = payment_actions_approve_many(action_ids=[stop.pk], user=maker, now=later)
    assert bulk.approved == [] and set(bulk.refused) == {stop.pk}
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAction.objects.filter(pk=stop.pk).update(
            state="approved", approved_by=maker, approved_at=later
        )
    event = AuditEvent.objects.get(action="payment_action.revised_by_run", target_id=str(run2.pk))
    assert event.actor == "maker"
    revisions = {r["action"]: r for r in event.after["revisions"]}
    assert (revisions[stop.pk]["before"]["proposed_by"], revisions[stop.pk]["after"]["proposed_by"]) == (
        None, "maker",
    )  # fmt: skip
    # The checker's run proposed `other`'s stop; the maker's run wrote its figures now.
    theirs = PaymentAction.objects.get(recipient=other)
    assert theirs.proposed_by == maker
    assert revisions[theirs.pk]["before"]["proposed_by"] == "checker"
    payment_action_approve(action_id=theirs.pk, user=checker, now=later)
    assert PaymentAction.objects.get(pk=theirs.pk).state == ActionState.APPROVED
    # A scheduled run's revision: no maker, any officer approves.
    run3 = _run([(dead, Status.STOP, "stop", "2026-06", 7, "21000.00")], date(2027, 1, 31))
    payment_actions_for_run(run_id=run3.pk, now=later + timedelta(days=31))
    stop.refresh_from_db()
    assert (stop.months, stop.proposed_by) == (7, None)
    payment_action_approve(action_id=stop.pk, user=maker, now=later + timedelta(days=31))
    assert RecoveryCase.objects.get(action=stop).amount == Decimal("21000.00")


def test_approval_refuses_figures_a_run_revised_since_the_checker_saw_them(checker: Any) -> None:
    dead = RecipientFactory()
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6806.68")], date(2026, 11, 30))
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    stop = PaymentAction.objects.get(recipient=dead)
    seen = stop.figures
    assert seen == "2026-10|2|6806.68"
    run2 = _run([(dead, Status.STOP, "stop", "2026-10", 3, "10210.02")], date(2026, 12, 31))
    payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31))
    with pytest.raises(BenefitsError, match="已按最新认证批次更新"):
        payment_action_approve(action_id=stop.pk, user=checker, now=NOW + timedelta(days=31), seen=seen)
    stop.refresh_from_db()
    assert stop.state == ActionState.PROPOSED and not RecoveryCase.objects.exists()
    approved = payment_action_approve(
        action_id=stop.pk, user=checker, now=NOW + timedelta(days=31), seen="2026-10|3|10210.02"
    )
    assert approved.state == ActionState.APPROVED
    assert RecoveryCase.objects.get(action=stop).amount == Decimal("10210.02")


def test_approved_and_hand_made_proposals_are_never_revised(maker: Any, checker: Any) -> None:
    """Only the run's proposal still awaiting approval (`other`) takes the later run's figures."""
    dead, jailed, other = RecipientFactory(), RecipientFactory(), RecipientFactory()
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6806.68"),
                 (other, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))  # fmt: skip
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    stop = PaymentAction.objects.get(recipient=dead)
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    by_hand = propose(maker, person=jailed, kind="suspend", month="2026-10", months=2, amount="6000.00")
    run2 = _run([(dead, Status.STOP, "stop", "2026-10", 3, "10210.02"),
                 (jailed, Status.SUSPEND, "suspend", "2026-10", 3, "9000.00"),
                 (other, Status.STOP, "stop", "2026-10", 3, "9000.00")], date(2026, 12, 31))  # fmt: skip
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    stop.refresh_from_db()
    by_hand.refresh_from_db()
    assert (stop.state, stop.months, stop.amount) == (ActionState.APPROVED, 2, Decimal("6806.68"))
    assert (by_hand.months, by_hand.amount) == (2, Decimal("6000.00"))
    event = AuditEvent.objects.get(action="payment_action.revised_by_run")
    assert [r["recipient"] for r in event.after["revisions"]] == [other.pk]
    assert PaymentAction.objects.get(recipient=other).amount == Decimal("9000.00")


def test_a_back_dated_run_revises_nothing() -> None:
    dead = RecipientFactory()
    run2 = _run([(dead, Status.STOP, "stop", "2026-10", 3, "10210.02")], date(2026, 12, 31))
    payment_actions_for_run(run_id=run2.pk, now=NOW)
    earlier = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6806.68")], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=earlier.pk, now=NOW + timedelta(days=1)) == 0
    assert PaymentAction.objects.get(recipient=dead).amount == Decimal("10210.02")
    run3 = _run([(dead, Status.STOP, "stop", "2026-10", 4, "13613.36")], date(2027, 1, 31))
    assert payment_actions_for_run(run_id=run3.pk, now=NOW + timedelta(days=2)) == 0
    assert PaymentAction.objects.get(recipient=dead).amount == Decimal("13613.36")


def test_the_latest_run_withdraws_the_run_proposals_it_no_longer_calls_for(checker: Any) -> None:
    """Rules §8.6: a suspension proposed for someone the latest run finds eligible, and a stop
    for someone the latest run proposes nothing for (a review cleared the death record), are
    withdrawn by that run — audited once, counted in its summary — and can no longer be
    approved; a proposal the run still calls for stays."""
    missing, cleared, dead = RecipientFactory(), RecipientFactory(), RecipientFactory()
    run1 = _run([(missing, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00"),
                 (cleared, Status.STOP, "stop", "2026-10", 2, "6806.68"),
                 (dead, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))  # fmt: skip
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 3
    suspend = PaymentAction.objects.get(recipient=missing)
    stop = PaymentAction.objects.get(recipient=cleared)
    run2 = _run([(missing, Status.ELIGIBLE, "", "", None, None),
                 (cleared, Status.ELIGIBLE, "", "", None, None),
                 (dead, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 12, 31))  # fmt: skip
    later = NOW + timedelta(days=31)
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    suspend.refresh_from_db()
    stop.refresh_from_db()
    assert (suspend.state, suspend.closed_by_id, suspend.closed_at) == (ActionState.WITHDRAWN, None, later)
    assert stop.state == ActionState.WITHDRAWN and f"#{run2.pk}" in stop.close_reason
    assert PaymentAction.objects.get(recipient=dead).state == ActionState.PROPOSED
    event = AuditEvent.objects.get(action="payment_action.withdrawn_by_run")
    assert (event.target_type, event.target_id, event.actor) == ("run", str(run2.pk), "")
    assert event.after["count"] == 2
    assert {(w["action"], w["kind"], w["effective_month"], w["months"], w["amount"], w["decision"])
            for w in event.after["withdrawals"]} == {
        (suspend.pk, "suspend", "2026-10", 2, "6000.00", ""),
        (stop.pk, "stop", "2026-10", 2, "6806.68", ""),
    }  # fmt: skip
    run2.refresh_from_db()
    assert run2.summary["payment_actions"]["withdrawn"] == {
        "stop": {"count": 1, "months": 2, "amount": "6806.68"},
        "suspend": {"count": 1, "months": 2, "amount": "6000.00"},
    }
    with pytest.raises(BenefitsError):
        payment_action_approve(action_id=suspend.pk, user=checker, now=later)
    # The same run again: nothing more to withdraw, no second event.
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    assert AuditEvent.objects.filter(action="payment_action.withdrawn_by_run").count() == 1


def test_a_run_withdraws_a_proposal_of_another_kind_and_proposes_its_own() -> None:
    """A pending suspension for someone the latest run finds dead: the suspension is withdrawn
    and the stop proposed, in the same run."""
    person = RecipientFactory()
    run1 = _run([(person, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00")], date(2026, 11, 30))
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    run2 = _run([(person, Status.STOP, "stop", "2026-11", 2, "6000.00")], date(2026, 12, 31))
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 1
    assert dict(PaymentAction.objects.values_list("kind", "state")) == {
        "suspend": ActionState.WITHDRAWN, "stop": ActionState.PROPOSED,
    }  # fmt: skip


def test_approved_and_hand_made_proposals_are_never_withdrawn(maker: Any, checker: Any) -> None:
    """Only the run's proposal still awaiting approval (`pending`) is withdrawn."""
    approved, by_hand, by_task, pending = (RecipientFactory() for _ in range(4))
    run1 = _run([(approved, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00"),
                 (pending, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00")], date(2026, 11, 30))  # fmt: skip
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    waiting = PaymentAction.objects.get(recipient=pending)
    done = payment_action_approve(
        action_id=PaymentAction.objects.get(recipient=approved).pk, user=checker, now=NOW
    )
    manual = propose(maker, person=by_hand, kind="suspend", month="2026-10", months=2, amount="6000.00")
    task = propose(maker, person=by_task, kind="stop", month="2026-10", source="verification")
    run2 = _run([(p, Status.ELIGIBLE, "", "", None, None) for p in (approved, by_hand, by_task, pending)],
                date(2026, 12, 31))  # fmt: skip
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    states = dict(PaymentAction.objects.values_list("pk", "state"))
    assert states == {done.pk: ActionState.APPROVED, manual.pk: ActionState.PROPOSED,
                      task.pk: ActionState.PROPOSED, waiting.pk: ActionState.WITHDRAWN}  # fmt: skip
    event = AuditEvent.objects.get(action="payment_action.withdrawn_by_run")
    assert [w["action"] for w in event.after["withdrawals"]] == [waiting.pk]


def test_a_back_dated_run_withdraws_nothing() -> None:
    person = RecipientFactory()
    run2 = _run([(person, Status.SUSPEND, "suspend", "2026-11", 2, "6000.00")], date(2026, 12, 31))
    payment_actions_for_run(run_id=run2.pk, now=NOW)
    earlier = _run([(person, Status.ELIGIBLE, "", "", None, None)], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=earlier.pk, now=NOW + timedelta(days=1)) == 0
    assert PaymentAction.objects.get(recipient=person).state == ActionState.PROPOSED
    assert not AuditEvent.objects.filter(action="payment_action.withdrawn_by_run").exists()
    # The latest run that finds the person eligible does withdraw it.
    run3 = _run([(person, Status.ELIGIBLE, "", "", None, None)], date(2027, 1, 31))
    payment_actions_for_run(run_id=run3.pk, now=NOW + timedelta(days=2))
    assert PaymentAction.objects.get(recipient=person).state == ActionState.WITHDRAWN


def test_a_back_dated_run_proposes_nothing_and_says_why(maker: Any) -> None:
    """Rules §8.6: a run as of an earlier date than a run that already succeeded (re-running
    last month to check something) is not the current truth. Its stale stop would stop a
    person the later run found alive, its suspension and resume likewise: it proposes no action
    at all, audits that it did not (`payment_action.run_backdated`, with the later run and what
    its decisions would have proposed) and records it in its summary for the run page."""
    alive, found, back = RecipientFactory(), RecipientFactory(), RecipientFactory()
    latest = _run(
        [(p, Status.ELIGIBLE, "", "", None, None) for p in (alive, found, back)], date(2026, 12, 31)
    )
    assert payment_actions_for_run(run_id=latest.pk, now=NOW) == 0
    earlier = _run([(alive, Status.STOP, "stop", "2026-10", 2, "6000.00"),
                    (found, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00"),
                    (back, Status.ELIGIBLE, "resume", "2026-12", 5, "15000.00")], date(2026, 11, 30))  # fmt: skip
    Run.objects.filter(pk=earlier.pk).update(created_by=maker)
    assert payment_actions_for_run(run_id=earlier.pk, now=NOW + timedelta(days=1)) == 0
    assert not PaymentAction.objects.exists()
    event = AuditEvent.objects.get(action="payment_action.run_backdated")
    assert (event.target_type, event.target_id, event.actor) == ("run", str(earlier.pk), "maker")
    assert event.after == {
        "as_of": "2026-11-30", "later_run": latest.pk, "later_as_of": "2026-12-31",
        "kinds": {"resume": 1, "stop": 1, "suspend": 1},
    }  # fmt: skip
    earlier.refresh_from_db()
    assert earlier.summary["backdated"] == {
        "later_run": latest.pk, "later_as_of": "2026-12-31", "skipped": ["payment_actions"],
    }  # fmt: skip
    assert earlier.summary["payment_actions"] == {"proposed": {}, "revised": {}, "withdrawn": {}}
    # Called again for the same run: nothing more, no second event.
    assert payment_actions_for_run(run_id=earlier.pk, now=NOW + timedelta(days=1)) == 0
    assert AuditEvent.objects.filter(action="payment_action.run_backdated").count() == 1
    # A run of the latest date is not back-dated: it proposes what it calls for.
    same_day = _run([(alive, Status.STOP, "stop", "2026-12", 1, "3000.00")], date(2026, 12, 31))
    assert payment_actions_for_run(run_id=same_day.pk, now=NOW + timedelta(days=2)) == 1


def test_a_withdrawn_run_proposal_does_not_keep_a_later_run_from_proposing_again() -> None:
    """Withdrawn by a run, then called for again (the person missing once more, the same month):
    the later run proposes it anew."""
    person = RecipientFactory()
    run1 = _run([(person, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00")], date(2026, 11, 30))
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    run2 = _run([(person, Status.ELIGIBLE, "", "", None, None)], date(2026, 12, 31))
    payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31))
    run3 = _run([(person, Status.SUSPEND, "suspend", "2026-10", 4, "12000.00")], date(2027, 1, 31))
    assert payment_actions_for_run(run_id=run3.pk, now=NOW + timedelta(days=62)) == 1
    assert sorted(PaymentAction.objects.values_list("state", "run_id", "months")) == sorted([
        (ActionState.WITHDRAWN, run1.pk, 2), (ActionState.PROPOSED, run3.pk, 4),
    ])  # fmt: skip


def _confirm_all(maker: Any, checker: Any, at: Any) -> None:
    """Approve every proposed action, export the batch and confirm it (the payment system paid)."""
    from zige.benefits.services import export_batch_confirm, export_batch_create

    for action in PaymentAction.objects.filter(state=ActionState.PROPOSED):
        payment_action_approve(action_id=action.pk, user=checker, now=at)
    batch = export_batch_create(user=maker, now=at)
    assert batch is not None
    export_batch_confirm(batch_id=batch.pk, user=checker, ref="ZF-1", now=at)


def _roster_changes(person: Any, at: Any, **fields: Any) -> None:
    """A roster import at `at` that changes the person's fields (as `RecipientChange` rows)."""
    from zige.feeds.models import ImportBatch
    from zige.roster.models import RecipientChange

    batch = ImportBatch.objects.create(kind="roster", file_name="roster.csv", sha256=f"{at:%s}".zfill(64),
                                       created_at=at)  # fmt: skip
    for name, value in fields.items():
        RecipientChange.objects.create(recipient=person, batch=batch, field=name, old_value=str(getattr(person, name)),
                                       new_value=str(value), changed_at=at)  # fmt: skip
        setattr(person, name, value)
    person.save()


def test_a_second_suspension_by_the_office_gets_a_new_resume(
    maker: Any, checker: Any, settings: Any, tmp_path: Any
) -> None:
    """Spec §8, rules §8.6: the idempotence is keyed on the roster state, not on the kind of the
    latest action. A confirmed resume, the office suspends the person itself a year later, the
    person is found alive again: a new resume (with its back pay) is proposed."""
    settings.DATA_DIR = tmp_path
    person = RecipientFactory(benefit_status="suspended", status_since=date(2026, 6, 1), status_reason="失联")
    run1 = _run([(person, Status.ELIGIBLE, "resume", "2026-12", 6, "18000.00")], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 1
    _confirm_all(maker, checker, NOW)
    # The roster not yet updated (still 暂停 since 2026-06-01): the confirmed resume applies to it.
    run2 = _run([(person, Status.ELIGIBLE, "resume", "2027-01", 7, "21000.00")], date(2026, 12, 31))
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    _roster_changes(person, NOW + timedelta(days=40), benefit_status="normal", status_since=date(2027, 1, 1))
    # A year later the office suspends the person (roster 暂停 again, a new 状态变更日期).
    _roster_changes(
        person, NOW + timedelta(days=400), status_since=date(2027, 12, 1), benefit_status="suspended"
    )
    run3 = _run([(person, Status.ELIGIBLE, "resume", "2028-02", 2, "6000.00")], date(2028, 1, 31))
    assert payment_actions_for_run(run_id=run3.pk, now=NOW + timedelta(days=427)) == 1
    second = PaymentAction.objects.get(recipient=person, state=ActionState.PROPOSED)
    assert (second.kind, second.effective_month, second.amount) == ("resume", "2028-02", Decimal("6000.00"))
    # And not twice while it is on its way.
    run4 = _run([(person, Status.ELIGIBLE, "resume", "2028-03", 3, "9000.00")], date(2028, 2, 29))
    assert payment_actions_for_run(run_id=run4.pk, now=NOW + timedelta(days=456)) == 0


def test_a_suspension_after_a_manual_resume_is_proposed_again(
    maker: Any, checker: Any, settings: Any, tmp_path: Any
) -> None:
    """The mirror: a confirmed zige suspension, the office resumes the person by hand (roster 正常,
    no 状态变更日期), then a new prison sentence: the new suspension is proposed."""
    settings.DATA_DIR = tmp_path
    person = RecipientFactory()
    run1 = _run([(person, Status.SUSPEND, "suspend", "2026-10", 2, "6000.00")], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 1
    _confirm_all(maker, checker, NOW)
    _roster_changes(
        person, NOW + timedelta(days=20), benefit_status="suspended", status_since=date(2026, 12, 1)
    )
    _roster_changes(person, NOW + timedelta(days=200), benefit_status="normal", status_since=None)
    run2 = _run([(person, Status.SUSPEND, "suspend", "2027-09", 1, "3000.00")], date(2027, 9, 30))
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=304)) == 1
    assert PaymentAction.objects.filter(recipient=person, kind="suspend").count() == 2


def test_run_execute_calls_the_hook_in_its_transaction() -> None:
    """The certification service imports the hook by this name and signature."""
    import inspect

    from zige.benefits import services

    params = inspect.signature(services.payment_actions_for_run).parameters
    assert [(p.name, p.kind) for p in params.values()] == [
        ("run_id", inspect.Parameter.KEYWORD_ONLY), ("now", inspect.Parameter.KEYWORD_ONLY),
    ]  # fmt: skip


def test_a_real_run_proposes_the_stop_of_a_death_once(tmp_path: Any, settings: Any) -> None:
    """Through `run_execute`: the roster, a death record, two runs; one proposed stop (rules §5.1)."""
    import csv as csv_module
    from datetime import UTC, datetime

    from tests.factories import make_id
    from zige.certification.services import run_execute, run_submit
    from zige.feeds import services as feed_services

    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.RUNS_DIR = tmp_path / "runs"
    id_a = make_id(11, date(1950, 1, 1))

    def write(name: str, header: list[str], rows: list[list[str]]) -> Any:
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv_module.writer(handle).writerows([header, *rows])
        feed_services.import_submit(source=path, file_name=name, kind=None if name.startswith("death") else "roster",
                                    user=None, now=NOW, enqueue=False)  # fmt: skip
        from zige.feeds.models import ImportBatch

        batch = ImportBatch.objects.order_by("-pk").first()
        assert batch is not None
        if batch.status == "queued":
            feed_services.import_execute(batch_id=batch.pk, now=NOW)

    write(
        "roster.csv",
        [
            "个人编号",
            "姓名",
            "身份证号",
            "单位编号",
            "单位名称",
            "待遇状态",
            "月养老金",
            "联系电话",
            "退休日期",
            "上次认证日期",
        ],
        [["P001", "张三", id_a, "U1", "单位U1", "正常", "3000", "13812345678", "2010-01-01", "2026-01-15"]],
    )
    write("death_2026.csv", ["身份证号", "姓名", "死亡日期"], [[id_a, "张三", "2026-08-10"]])
    for when in (datetime(2026, 11, 30, 9, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC)):
        run = run_submit(as_of=date(2026, 11, 30), user=None, now=when, enqueue=False)
        run = run_execute(run_id=run.pk, now=when)
        assert run.status == RunStatus.SUCCEEDED, run.message
    action = PaymentAction.objects.get()
    assert (action.kind, action.effective_month, action.months, action.amount, action.source) == (
        "stop", "2026-09", 3, Decimal("9000.00"), "run",
    )  # fmt: skip
    assert action.proposed_by is None and action.state == ActionState.PROPOSED


def test_a_pending_proposal_of_a_run_an_officer_started_follows_the_latest_run(
    maker: Any, checker: Any
) -> None:
    """The run's initiator is recorded as its proposals' maker (maker-checker), and such a
    proposal is still the run's: a later run revises it as it revises the scheduler's. The
    figures are then the later run's, and so is the maker: none for a scheduled run, so the
    officer who started the first run may approve the figures they did not make."""
    dead = RecipientFactory()
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6806.68")], date(2026, 11, 30))
    Run.objects.filter(pk=run1.pk).update(created_by=maker)
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 1
    assert PaymentAction.objects.get(recipient=dead).proposed_by_id == maker.pk
    run2 = _run([(dead, Status.STOP, "stop", "2026-10", 3, "10210.02")], date(2026, 12, 31))
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    stop = PaymentAction.objects.get(recipient=dead)
    assert (stop.months, stop.amount, stop.proposed_by_id) == (3, Decimal("10210.02"), None)
    payment_action_approve(action_id=stop.pk, user=maker, now=NOW + timedelta(days=31))


# --- refund after a reversed stop (返还) -------------------------------------------------------


def _reversed_stop_with_money_back(maker: Any, checker: Any, *, repaid: str = "4000.00") -> RecoveryCase:
    """A stop of 3 months (9,000.00) approved, `repaid` recovered from the family, then the stop
    reversed (the person proved alive) and the reversal approved."""
    from zige.benefits.services import recovery_payment_record

    stop = propose(maker, months=3, amount="9000.00")
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    case = RecoveryCase.objects.get(action=stop)
    recovery_payment_record(case_id=case.pk, amount=Decimal(repaid), paid_on=date(2026, 11, 20), method="银行转账",
                            user=maker, now=NOW)  # fmt: skip
    reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="本人健在，死亡信息有误", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    case.refresh_from_db()
    return case


@pytest.mark.parametrize("repaid", ["4000.00", "9000.00"])
def test_a_reversed_stop_with_money_recovered_owes_a_refund_decided_by_two_people(
    maker: Any, checker: Any, repaid: str
) -> None:
    """Before: the approved reversal cancelled only a case with nothing recovered; one with money
    already taken back (repaying, or recovered in full) stayed as it was — still 退还中 with an
    outstanding debt, or 已追回 — and there was no way to record giving the money back. Now the
    case owes a refund of what was recovered (待返还, nothing outstanding); the maker records it
    (amount, date, reference: 返还待复核) and another person approves (已返还) or rejects it (back to
    待返还), each step audited."""
    from zige.benefits.services import recovery_refund_decide, recovery_refund_record

    case = _reversed_stop_with_money_back(maker, checker, repaid=repaid)
    assert (case.status, case.recovered, case.outstanding) == ("refund_due", Decimal(repaid), Decimal("0.00"))
    assert case.closed_at is None
    due = AuditEvent.objects.get(action="recovery_case.refund_due", target_id=str(case.pk))
    assert due.actor == "checker" and due.after["refund_due"] == repaid
    recovery_refund_record(case_id=case.pk, amount=Decimal(repaid), refunded_on=date(2026, 11, 30),
                           reference="ZZ-2026-0042", user=maker, now=NOW)  # fmt: skip
    case.refresh_from_db()
    assert (case.status, case.refund_amount, case.refund_ref, case.refund_by) == (
        "refund_recorded", Decimal(repaid), "ZZ-2026-0042", maker,
    )  # fmt: skip
    with pytest.raises(BenefitsError, match="登记返还的人不能复核自己的返还"):
        recovery_refund_decide(case_id=case.pk, approve=True, user=maker, now=NOW)
    with pytest.raises(BenefitsError, match="请填写驳回理由"):  # a rejection says why
        recovery_refund_decide(case_id=case.pk, approve=False, reason="  ", user=checker, now=NOW)
    assert RecoveryCase.objects.get(pk=case.pk).status == "refund_recorded"
    recovery_refund_decide(case_id=case.pk, approve=False, reason="回单号不符", user=checker, now=NOW)
    case.refresh_from_db()
    assert (case.status, case.refund_amount, case.refund_ref, case.refund_by) == (
        "refund_due",
        None,
        "",
        None,
    )
    rejected = AuditEvent.objects.get(action="recovery_case.refund_rejected", target_id=str(case.pk))
    assert rejected.after["reason"] == "回单号不符" and rejected.after["reference"] == "ZZ-2026-0042"
    # Anyone records it again; the checker is then whoever did not.
    recovery_refund_record(case_id=case.pk, amount=Decimal(repaid), refunded_on=date(2026, 11, 30),
                           reference="ZZ-2026-0043", user=checker, now=NOW)  # fmt: skip
    recovery_refund_decide(case_id=case.pk, approve=True, user=maker, now=NOW)
    case.refresh_from_db()
    assert (case.status, case.refund_approved_by, case.closed_at) == ("refunded", maker, NOW)
    assert case.outstanding == Decimal("0.00")
    assert [e.action for e in AuditEvent.objects.filter(target_type="recovery_case", target_id=str(case.pk))
            .order_by("seq")][-5:] == [
        "recovery_case.refund_due", "recovery_case.refund_recorded", "recovery_case.refund_rejected",
        "recovery_case.refund_recorded", "recovery_case.refunded",
    ]  # fmt: skip


def test_a_refund_is_of_what_was_recovered_dated_by_the_day_recorded_with_a_reference(
    maker: Any, checker: Any
) -> None:
    from zige.benefits.services import recovery_refund_record

    case = _reversed_stop_with_money_back(maker, checker)
    refusals = [
        ({"amount": Decimal("3999.99")}, r"返还金额应为已追回的 4,000\.00 元"),
        ({"amount": Decimal("4000.01")}, r"返还金额应为已追回的 4,000\.00 元"),
        ({"reference": " "}, "请填写返还凭证号"),
        ({"refunded_on": date(2026, 12, 1)}, r"返还日期（2026-12-01）不能晚于登记当天（2026-11-30）"),
    ]
    for change, message in refusals:
        call = {
            "amount": Decimal("4000.00"),
            "refunded_on": date(2026, 11, 30),
            "reference": "ZZ-1",
            **change,
        }
        with pytest.raises(BenefitsError, match=message):
            recovery_refund_record(case_id=case.pk, user=maker, now=NOW, **call)
    case.refresh_from_db()
    assert case.status == "refund_due" and case.refund_amount is None
    assert not AuditEvent.objects.filter(action="recovery_case.refund_recorded").exists()


def test_nothing_recovered_still_cancels_and_only_a_refund_due_case_takes_a_refund(
    maker: Any, checker: Any
) -> None:
    from zige.benefits.services import recovery_refund_decide, recovery_refund_record

    stop = propose(maker, months=3, amount="9000.00")
    payment_action_approve(action_id=stop.pk, user=checker, now=NOW)
    case = RecoveryCase.objects.get(action=stop)
    with pytest.raises(BenefitsError, match="状态不能从“已立案”变为“返还待复核”"):
        recovery_refund_record(case_id=case.pk, amount=Decimal("1.00"), refunded_on=date(2026, 11, 30),
                               reference="ZZ-1", user=maker, now=NOW)  # fmt: skip
    with pytest.raises(BenefitsError, match="没有待复核的返还"):
        recovery_refund_decide(case_id=case.pk, approve=True, user=checker, now=NOW)
    reversal = payment_action_reverse(action_id=stop.pk, user=maker, reason="人还活着", now=NOW)
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    case.refresh_from_db()
    assert case.status == RecoveryStatus.CANCELLED


@pytest.mark.parametrize("start", [s.value for s in RecoveryStatus])
def test_every_refund_step_against_its_table(start: str, maker: Any, checker: Any) -> None:
    """The refund steps move a case only along `REFUND_TRANSITIONS`, which no other step uses
    (a repayment, a notice or a write-off of a case owing a refund is refused: the recovery table
    never enters or leaves a refund state)."""
    from tests.factories import recovery_case
    from zige.benefits.services import (
        RECOVERY_TRANSITIONS,
        REFUND_TRANSITIONS,
        recovery_refund_decide,
        recovery_refund_record,
    )

    assert not REFUND_TRANSITIONS & RECOVERY_TRANSITIONS
    refund_states = {"refund_due", "refund_recorded", "refunded"}
    assert not {s for pair in RECOVERY_TRANSITIONS for s in pair} & refund_states
    case: Any = recovery_case(RecipientFactory(), amount="100.00")
    fields: dict[str, Any] = {"status": start, "recovered": Decimal("10.00")}
    if start in ("refund_recorded", "refunded"):
        fields.update(refund_amount=Decimal("10.00"), refund_ref="ZZ-1", refund_by=maker, refunded_on=DAY_)
    if start == "refunded":
        fields["refund_approved_by"] = checker
    if start in ("write_off_proposed", "written_off"):
        fields["write_off_by"] = maker
    if start == "written_off":
        fields["write_off_approved_by"] = checker
    RecoveryCase.objects.filter(pk=case.pk).update(**fields)
    steps = {
        "refund_recorded": lambda: recovery_refund_record(case_id=case.pk, amount=Decimal("10.00"),
                                                          refunded_on=DAY_, reference="ZZ-2", user=maker, now=NOW),
        "refunded": lambda: recovery_refund_decide(case_id=case.pk, approve=True, user=checker, now=NOW),
        "refund_due": lambda: recovery_refund_decide(case_id=case.pk, approve=False, reason="回单号不符", user=checker,
                                                     now=NOW),
    }  # fmt: skip
    for target, call in steps.items():
        RecoveryCase.objects.filter(pk=case.pk).update(**fields)
        # The checker's steps leave only a recorded refund (the table's other ways into 待返还
        # are the reversal's, `_recovery_case_cancel_for`).
        decided = target != "refund_recorded"
        if (start, target) in REFUND_TRANSITIONS and (not decided or start == "refund_recorded"):
            call()
            assert RecoveryCase.objects.get(pk=case.pk).status == target
        else:
            with pytest.raises(BenefitsError):
                call()
            assert RecoveryCase.objects.get(pk=case.pk).status == start


def test_the_database_holds_a_refund_to_two_people_and_to_what_was_recovered(
    maker: Any, checker: Any
) -> None:
    from tests.factories import recovery_case

    case: Any = recovery_case(RecipientFactory(), amount="100.00")
    RecoveryCase.objects.filter(pk=case.pk).update(recovered=Decimal("10.00"), status="refund_due")
    bad = [
        {"status": "refunded", "refund_amount": Decimal("10.00"), "refund_by": maker},  # no checker
        {
            "status": "refunded",
            "refund_amount": Decimal("10.00"),
            "refund_by": maker,
            "refund_approved_by": maker,
        },
        {
            "status": "refund_recorded",
            "refund_amount": Decimal("10.01"),
            "refund_by": maker,
        },  # over recovered
        {"status": "refund_recorded", "refund_amount": Decimal("0.00"), "refund_by": maker},
    ]
    for fields in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            RecoveryCase.objects.filter(pk=case.pk).update(**fields)
    RecoveryCase.objects.filter(pk=case.pk).update(
        status="refunded", refund_amount=Decimal("10.00"), refund_by=maker, refund_approved_by=checker
    )


DAY_ = date(2026, 11, 30)


# --- run proposals beyond the limits are held for review --------------------------------------


def test_a_run_holds_an_action_beyond_the_months_limit_for_review_instead_of_proposing_it(
    checker: Any,
) -> None:
    """An officer's proposal of more than MONTHS_LIMIT (1,200) months is refused
    (`payment_action_propose`); a run's went straight in: a death record dated a century ago (a
    typing slip the feed still accepts, after the ID's birth date) gave a stop of 1,387 months
    awaiting approval like any other, months × 月养老金 as its amount. Now the run proposes it not:
    it is held for review — audited `payment_action.held_by_run` with the person, kind and figures,
    counted in the run's summary (`payment_actions_held`) and listed by kind with the run's other
    changes (`reports.selectors.run_payment_actions`, change "held") — and the rest of the run's
    proposals go on as before."""
    from zige.benefits.limits import MONTHS_LIMIT
    from zige.benefits.services import RUN_ACTIONS_KEY
    from zige.reports.selectors import run_payment_actions

    century, limit, fine = (RecipientFactory(monthly_amount=Decimal("2000.00")) for _ in range(3))
    run = _run([
        (century, Status.STOP, "stop", "1911-03", 1387, "2774000.00"),
        (limit, Status.STOP, "stop", "1926-12", MONTHS_LIMIT, "2400000.00"),
        (fine, Status.SUSPEND, "suspend", "2026-10", 2, "4000.00"),
    ], date(2026, 11, 30))  # fmt: skip
    assert payment_actions_for_run(run_id=run.pk, now=NOW) == 2
    assert not PaymentAction.objects.filter(recipient=century).exists()
    assert PaymentAction.objects.get(recipient=limit).months == MONTHS_LIMIT
    event = AuditEvent.objects.get(action="payment_action.held_by_run", target_id=str(run.pk))
    assert event.after["count"] == 1
    assert event.after["held"] == [{
        "recipient": century.pk, "kind": "stop", "effective_month": "1911-03", "months": 1387,
        "amount": "2774000.00", "why": f"月数 1387 超出允许范围（不超过 {MONTHS_LIMIT} 个月）",
    }]  # fmt: skip
    run.refresh_from_db()
    assert run.summary["payment_actions_held"] == 1
    assert run.summary[RUN_ACTIONS_KEY]["proposed"]["stop"]["count"] == 1
    rows = {(r["action"], r["change"]): (r["n"], r["months"]) for r in run_payment_actions(run, checker)}
    assert rows[("stop", "held")] == (1, 1387) and rows[("stop", "proposed")] == (1, MONTHS_LIMIT)
    # The next run holds it again (nothing to approve in between), and proposes nothing twice.
    again = _run([(century, Status.STOP, "stop", "1911-03", 1387, "2774000.00")], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=again.pk, now=NOW) == 0
    assert not PaymentAction.objects.filter(recipient=century).exists()
    assert AuditEvent.objects.filter(action="payment_action.held_by_run").count() == 2


def test_a_run_that_holds_a_person_withdraws_the_earlier_run_s_proposal_awaiting_approval(
    maker: Any,
    checker: Any,
) -> None:
    """An earlier run proposed a stop within the limits (2026-10, 2 months); the later run's
    figures for the person are beyond them (the death date corrected to 1911-02, a typing slip).
    Before, the held decision was dropped before the run revised its proposals: the stop kept
    its old figures, which the latest data no longer support, and a checker could approve it.
    Now the later run withdraws it — a system transition, the reason on the action
    (超出上限…已暂缓，待人工复核), audited `payment_action.withdrawn_held_by_run` with its figures and
    the held ones — and names it in its held record (`withdrawn`); approval is refused with that
    reason, one by one and in bulk; the run page's tally shows it apart. The next run holds the
    person again and withdraws nothing more; once the record is corrected a run proposes anew."""
    from zige.benefits.limits import MONTHS_LIMIT
    from zige.benefits.services import RUN_ACTIONS_KEY, payment_actions_approve_many
    from zige.reports import selectors

    dead, other = (RecipientFactory(monthly_amount=Decimal("3000.00")) for _ in range(2))
    run1 = _run([(dead, Status.STOP, "stop", "2026-10", 2, "6000.00"),
                 (other, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))  # fmt: skip
    Run.objects.filter(pk=run1.pk).update(created_by=maker)
    assert payment_actions_for_run(run_id=run1.pk, now=NOW) == 2
    stop = PaymentAction.objects.get(recipient=dead)
    seen = stop.figures
    run2 = _run([(dead, Status.STOP, "stop", "1911-03", 1389, "4167000.00"),
                 (other, Status.STOP, "stop", "2026-10", 3, "9000.00")], date(2026, 12, 31))  # fmt: skip
    later = NOW + timedelta(days=31)
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    stop.refresh_from_db()
    why = f"月数 1389 超出允许范围（不超过 {MONTHS_LIMIT} 个月）"
    assert (stop.state, stop.closed_by_id, stop.closed_at) == (ActionState.WITHDRAWN, None, later)
    assert stop.close_reason == (
        f"认证批次 #{run2.pk} 的数字超出上限（{why}），已暂缓，待人工复核；原待审批的数字不再适用，系统撤回"
    )
    assert (stop.effective_month, stop.months, stop.amount) == (
        "2026-10",
        2,
        Decimal("6000.00"),
    )  # as proposed
    # The other person's proposal follows the run as before.
    assert PaymentAction.objects.get(recipient=other).months == 3
    held = AuditEvent.objects.get(action="payment_action.held_by_run", target_id=str(run2.pk))
    assert held.after["held"] == [{
        "recipient": dead.pk, "kind": "stop", "effective_month": "1911-03", "months": 1389,
        "amount": "4167000.00", "why": why, "withdrawn": stop.pk,
    }]  # fmt: skip
    event = AuditEvent.objects.get(action="payment_action.withdrawn_held_by_run")
    assert (event.target_type, event.target_id, event.actor) == ("run", str(run2.pk), "")
    assert event.after == {"count": 1, "withdrawals": [{
        "action": stop.pk, "recipient": dead.pk, "kind": "stop", "run": run1.pk,
        "effective_month": "2026-10", "months": 2, "amount": "6000.00",
        "held_figures": {"effective_month": "1911-03", "months": 1389, "amount": "4167000.00"}, "why": why,
    }]}  # fmt: skip
    # Not one the run "no longer calls for": its summary's withdrawals stay those.
    run2.refresh_from_db()
    assert run2.summary[RUN_ACTIONS_KEY]["withdrawn"] == {}
    assert run2.summary["payment_actions_held"] == 1
    rows = {
        (r["action"], r["change"]): (r["n"], r["months"])
        for r in selectors.run_payment_actions(run2, checker)
    }
    assert rows[("stop", "held_withdrawn")] == (1, 1389) and ("stop", "held") not in rows
    [listed] = selectors.run_held_actions(run2, checker)
    assert (listed["person"], listed["withdrawn"], listed["why"]) == (dead, stop.pk, why)
    # A checker cannot approve it: one by one (with the page's figures or without), nor in bulk.
    for figures in (seen, None):
        with pytest.raises(
            BenefitsError, match=f"待遇处理 #{stop.pk} 已撤回，不能审批：认证批次 #{run2.pk} 的数字超出上限"
        ):
            payment_action_approve(action_id=stop.pk, user=checker, now=later, seen=figures)
    bulk = payment_actions_approve_many(action_ids=[stop.pk], user=checker, now=later, seen={stop.pk: seen})
    assert bulk.approved == [] and bulk.refused_because == {stop.pk: "withdrawn"}
    assert bulk.refusals() == [
        (1, "已撤回（如最新认证批次的数字超出上限、已暂缓待人工复核），不能审批，原因见该业务页面")
    ]
    assert not RecoveryCase.objects.exists()
    # The same run again: nothing more withdrawn, nothing audited twice.
    assert payment_actions_for_run(run_id=run2.pk, now=later) == 0
    assert AuditEvent.objects.filter(action="payment_action.held_by_run").count() == 1
    assert AuditEvent.objects.filter(action="payment_action.withdrawn_held_by_run").count() == 1
    # The next run holds the person again (the record not yet corrected): no proposal.
    run3 = _run([(dead, Status.STOP, "stop", "1911-03", 1390, "4170000.00")], date(2027, 1, 31))
    assert payment_actions_for_run(run_id=run3.pk, now=later + timedelta(days=31)) == 0
    assert AuditEvent.objects.filter(action="payment_action.withdrawn_held_by_run").count() == 1
    assert "withdrawn" not in AuditEvent.objects.get(action="payment_action.held_by_run",
                                                     target_id=str(run3.pk)).after["held"][0]  # fmt: skip
    # Corrected: the withdrawn stop holds no slot, the next run proposes the right one.
    run4 = _run([(dead, Status.STOP, "stop", "2026-10", 5, "15000.00")], date(2027, 2, 28))
    assert payment_actions_for_run(run_id=run4.pk, now=later + timedelta(days=62)) == 1
    assert PaymentAction.objects.get(recipient=dead, state=ActionState.PROPOSED).run_id == run4.pk


def test_a_held_person_s_own_officer_s_finding_s_and_approved_actions_are_left_and_named(
    maker: Any,
    checker: Any,
) -> None:
    """The run withdraws only a run's proposal still awaiting approval, as for its revisions and
    withdrawals: an officer's own proposal (the officer's figures), a finding's stop (the
    bureau's established fact) and an approved stop (what the checker signed; the correction path)
    stay as they are; the held record names each (`in_force`) for the officer who reviews it."""
    from zige.reports import selectors

    by_hand, by_finding, approved = (RecipientFactory(monthly_amount=Decimal("3000.00")) for _ in range(3))
    manual = propose(maker, person=by_hand, kind="stop", month="2026-10")
    finding = propose(maker, person=by_finding, kind="stop", month="2026-10", source="verification")
    run1 = _run([(approved, Status.STOP, "stop", "2026-10", 2, "6000.00")], date(2026, 11, 30))
    payment_actions_for_run(run_id=run1.pk, now=NOW)
    signed = payment_action_approve(
        action_id=PaymentAction.objects.get(recipient=approved).pk, user=checker, now=NOW
    )
    run2 = _run([(p, Status.STOP, "stop", "1911-03", 1389, "4167000.00") for p in (by_hand, by_finding, approved)],
                date(2026, 12, 31))  # fmt: skip
    assert payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31)) == 0
    states = dict(PaymentAction.objects.values_list("pk", "state"))
    assert states == {manual.pk: ActionState.PROPOSED, finding.pk: ActionState.PROPOSED,
                      signed.pk: ActionState.APPROVED}  # fmt: skip
    assert not AuditEvent.objects.filter(action="payment_action.withdrawn_held_by_run").exists()
    held = AuditEvent.objects.get(action="payment_action.held_by_run").after["held"]
    assert {(r["recipient"], r.get("in_force"), r.get("withdrawn")) for r in held} == {
        (by_hand.pk, manual.pk, None), (by_finding.pk, finding.pk, None), (approved.pk, signed.pk, None),
    }  # fmt: skip
    assert {r["in_force"] for r in selectors.run_held_actions(run2, checker)} == {
        manual.pk,
        finding.pk,
        signed.pk,
    }


def test_a_back_dated_run_beyond_the_limits_holds_and_withdraws_nothing() -> None:
    """A back-dated run (rules §8.4) proposes, revises and withdraws nothing: its figures beyond
    the limits leave the later run's proposal awaiting approval as it is, and nothing is held."""
    dead = RecipientFactory()
    latest = _run([(dead, Status.STOP, "stop", "2026-10", 3, "9000.00")], date(2026, 12, 31))
    payment_actions_for_run(run_id=latest.pk, now=NOW)
    earlier = _run([(dead, Status.STOP, "stop", "1911-03", 1388, "4164000.00")], date(2026, 11, 30))
    assert payment_actions_for_run(run_id=earlier.pk, now=NOW + timedelta(days=1)) == 0
    stop = PaymentAction.objects.get(recipient=dead)
    assert (stop.state, stop.months, stop.run_id) == (ActionState.PROPOSED, 3, latest.pk)
    assert not AuditEvent.objects.filter(
        action__in=("payment_action.held_by_run", "payment_action.withdrawn_held_by_run")
    ).exists()
    assert AuditEvent.objects.filter(
        action="payment_action.run_backdated", target_id=str(earlier.pk)
    ).exists()


def test_bulk_approval_names_each_refusal_s_reason(maker: Any, checker: Any) -> None:
    """`payment_actions_approve_many` keeps each refusal's reason (`refused_because`, by id) and
    counts them for the message (`refusals`): own proposals, decided ones, revised ones, missing."""
    from zige.benefits.services import payment_actions_approve_many

    own = propose(checker, month="2026-10")
    decided = propose(maker, month="2026-10")
    payment_action_approve(action_id=decided.pk, user=checker, now=NOW)
    revised = propose(maker, month="2026-10")
    plain = propose(maker, month="2026-10")
    result = payment_actions_approve_many(
        action_ids=[own.pk, decided.pk, revised.pk, plain.pk, 999999], user=checker, now=NOW,
        seen={decided.pk: decided.figures, revised.pk: "2026-10|1|1.00", plain.pk: plain.figures},
    )  # fmt: skip
    assert result.approved == [plain.pk]
    assert result.refused_because == {
        own.pk: "own", decided.pk: "transition", revised.pk: "revised", 999999: "missing"
    }  # fmt: skip
    assert set(result.refused) == set(result.refused_because)  # the messages, as before
    assert result.refusals() == [
        (1, "为本人提出，需由另一名经办人员审批"),
        (1, "已被处理，不在待审批状态"),
        (1, "的生效月份、月数或金额已按最新认证批次或核实结论更新，请核对后再逐笔审批"),
        (1, "已不存在"),
    ]


def test_zige_status_names_the_current_run_and_the_actions_it_held() -> None:
    """`zige status` showed only the last run: after a look back at an earlier date it named that
    one, and the actions the current run held for review (beyond the limits) were on its page only.
    It names the current run and counts its held actions as something that needs a person."""
    import json

    from click.testing import CliRunner

    from zige.benefits.services import RUN_HELD_KEY
    from zige.notifications.cli import status

    current = Run.objects.create(as_of=date(2026, 11, 30), status=RunStatus.SUCCEEDED, created_at=NOW,
                                 finished_at=NOW, summary={RUN_HELD_KEY: 2})  # fmt: skip
    look_back = Run.objects.create(as_of=date(2026, 10, 31), status=RunStatus.SUCCEEDED,
                                   created_at=NOW + timedelta(hours=1), finished_at=NOW + timedelta(hours=1))  # fmt: skip
    shown = CliRunner().invoke(status, [])
    assert shown.exit_code == 1, shown.output  # something needs a person
    assert f"last run   #{look_back.pk} as of 2026-10-31" in shown.output
    assert f"current    #{current.pk} as of 2026-11-30 (the latest as-of date)" in shown.output
    assert f"run #{current.pk} held 2 payment action(s) beyond the limits for review" in shown.output
    data = json.loads(CliRunner().invoke(status, ["--json"]).output)
    assert (data["current_run"], data["payment_actions_held"]) == (current.pk, 2)
    # Nothing held, and the last run the current one: neither line.
    Run.objects.filter(pk=current.pk).update(summary={}, as_of=date(2026, 9, 30))
    quiet = CliRunner().invoke(status, []).output
    assert "current    #" not in quiet and "held" not in quiet
