"""Recovery cases (追回) and fraud cases (冒领): every transition, the 2–5× fine bound in the
service and in the database, write-off by two people, the blacklist, the report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import NOW, RecipientFactory, UnitFactory, UserFactory, fraud_case, recovery_case
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.benefits.models import Blacklist, FraudCase, FraudStatus, RecoveryCase, RecoveryStatus
from zige.benefits.selectors import frauds_of_recovery, recoveries_of_fraud, recovery_list, recovery_report
from zige.benefits.services import (
    FRAUD_TRANSITIONS,
    RECOVERY_TRANSITIONS,
    WRITE_OFF_REFUSALS,
    BenefitsError,
    blacklist_add,
    export_batch_confirm,
    export_batch_create,
    fine_bounds,
    fraud_case_close,
    fraud_case_collect,
    fraud_case_dismiss,
    fraud_case_fine,
    fraud_case_open,
    fraud_case_refer,
    payment_action_approve,
    payment_action_propose,
    payment_action_reverse,
    recovery_case_notify,
    recovery_case_write_off_decide,
    recovery_case_write_off_propose,
    recovery_payment_record,
)

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 30)  # the day of NOW in the bureau's time zone


@pytest.fixture
def officer() -> Any:
    return UserFactory(username="officer", role=Role.BUREAU_OPERATOR)


@pytest.fixture
def second() -> Any:
    return UserFactory(username="second", role=Role.BUREAU_ADMIN)


# --- recovery ---------------------------------------------------------------------------------


def test_notify_then_repay_in_instalments_until_recovered(officer: Any) -> None:
    case = recovery_case(RecipientFactory(), amount="9000.00")
    recovery_case_notify(case_id=case.pk, debtor_name="王小明", debtor_relation="子女（代领人）",
                         debtor_contact="13812345678", notified_on=DAY, user=officer, now=NOW)  # fmt: skip
    case.refresh_from_db()
    assert case.status == RecoveryStatus.NOTIFIED and case.debtor_name == "王小明"
    recovery_payment_record(
        case_id=case.pk, amount=Decimal("4000.00"), paid_on=DAY, method="银行转账", user=officer, now=NOW
    )
    case.refresh_from_db()
    assert (case.status, case.recovered) == (RecoveryStatus.REPAYING, Decimal("4000.00"))
    with pytest.raises(BenefitsError, match=r"超过未追回金额 5,000\.00"):
        recovery_payment_record(
            case_id=case.pk, amount=Decimal("5000.01"), paid_on=DAY, method="现金", user=officer, now=NOW
        )
    recovery_payment_record(
        case_id=case.pk, amount=Decimal("5000.00"), paid_on=DAY, method="现金", user=officer, now=NOW
    )
    case.refresh_from_db()
    assert (case.status, case.recovered, case.outstanding) == (
        RecoveryStatus.RECOVERED,
        Decimal("9000.00"),
        0,
    )
    assert case.closed_at == NOW
    with pytest.raises(BenefitsError):
        recovery_payment_record(
            case_id=case.pk, amount=Decimal("0.01"), paid_on=DAY, method="现金", user=officer, now=NOW
        )
    assert AuditEvent.objects.filter(action="recovery_case.payment_recorded").count() == 2


def test_a_repayment_dated_after_the_day_it_is_recorded_is_refused(officer: Any) -> None:
    """A repayment is money received: one dated after the day it is recorded — the date of `now`
    in China time, never the clock — is refused and changes nothing; that day itself is fine."""
    case = recovery_case(RecipientFactory(), amount="900.00")
    recorded = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 2026-12-01 00:30 in Shanghai
    with pytest.raises(BenefitsError, match=r"退还日期（2026-12-02）不能晚于登记当天（2026-12-01）"):
        recovery_payment_record(case_id=case.pk, amount=Decimal("100.00"), paid_on=date(2026, 12, 2),
                                method="现金", user=officer, now=recorded)  # fmt: skip
    case.refresh_from_db()
    assert (case.status, case.recovered, case.payments.count()) == (RecoveryStatus.OPEN, 0, 0)
    assert not AuditEvent.objects.filter(action="recovery_case.payment_recorded").exists()
    recovery_payment_record(case_id=case.pk, amount=Decimal("100.00"), paid_on=date(2026, 12, 1),
                            method="现金", user=officer, now=recorded)  # fmt: skip
    case.refresh_from_db()
    assert (case.status, case.recovered) == (RecoveryStatus.REPAYING, Decimal("100.00"))


def _dated_entries(
    officer: Any,
) -> dict[str, tuple[str, Callable[[date, datetime], Any], Callable[[], tuple[Any, ...]]]]:
    """field -> (its label in the message, the call with that date at that now, what it changed)."""
    recovery: Any = recovery_case(RecipientFactory())
    fraud: Any = fraud_case(RecipientFactory())

    def notify(day: date, now: datetime) -> Any:
        return recovery_case_notify(case_id=recovery.pk, debtor_name="王小明", debtor_relation="子女",
                                    notified_on=day, user=officer, now=now)  # fmt: skip

    def refer(day: date, now: datetime) -> Any:
        return fraud_case_refer(case_id=fraud.pk, referred_on=day, user=officer, now=now)

    def blacklist(day: date, now: datetime) -> Any:
        return blacklist_add(subject_type="person", person_name="王大力", reason="冒领其父养老金", since=day,
                             user=officer, now=now, fraud_case=fraud)  # fmt: skip

    def recovery_state() -> tuple[Any, ...]:
        case = RecoveryCase.objects.get(pk=recovery.pk)
        return case.status, case.notified_on, case.debtor_name

    def fraud_state() -> tuple[Any, ...]:
        case = FraudCase.objects.get(pk=fraud.pk)
        return case.referred, case.referred_on

    def blacklist_state() -> tuple[Any, ...]:
        return tuple(Blacklist.objects.values_list("since", flat=True))

    return {
        "notified_on": ("通知日期", notify, recovery_state),
        "referred_on": ("移送司法机关日期", refer, fraud_state),
        "since": ("列入日期", blacklist, blacklist_state),
    }


@pytest.mark.parametrize("field", ["notified_on", "referred_on", "since"])
def test_a_notice_referral_or_blacklist_dated_after_the_day_it_is_recorded_is_refused(
    field: str, officer: Any
) -> None:
    """Like a repayment: the date of something that has happened may not be after the day it is
    recorded — the date of `now` in China time, never the clock. The refusal names the field and
    changes nothing (no audit row); that day itself is accepted."""
    label, call, state = _dated_entries(officer)[field]
    recorded = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 2026-12-01 00:30 in Shanghai
    before, audited = state(), AuditEvent.objects.count()
    with pytest.raises(BenefitsError, match=rf"^{label}（2026-12-02）不能晚于登记当天（2026-12-01）："):
        call(date(2026, 12, 2), recorded)
    assert (state(), AuditEvent.objects.count()) == (before, audited)
    call(date(2026, 12, 1), recorded)
    assert state() != before and date(2026, 12, 1) in state()


def test_the_database_refuses_recovering_more_than_the_amount() -> None:
    case = recovery_case(RecipientFactory(), amount="100.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        RecoveryCase.objects.filter(pk=case.pk).update(recovered=Decimal("100.01"))
    RecoveryCase.objects.filter(pk=case.pk).update(recovered=Decimal("100.00"))


def test_a_write_off_needs_a_second_person(officer: Any, second: Any) -> None:
    case = recovery_case(RecipientFactory())
    recovery_case_write_off_propose(case_id=case.pk, reason="义务人下落不明，无遗产", user=officer, now=NOW)
    with pytest.raises(BenefitsError, match="不能审批自己的核销"):
        recovery_case_write_off_decide(case_id=case.pk, approve=True, user=officer, now=NOW)
    recovery_case_write_off_decide(case_id=case.pk, approve=True, user=second, now=NOW)
    case.refresh_from_db()
    assert case.status == RecoveryStatus.WRITTEN_OFF and case.write_off_approved_by == second
    # The database refuses one person as both.
    other = recovery_case(RecipientFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        RecoveryCase.objects.filter(pk=other.pk).update(
            status="written_off", write_off_by=officer, write_off_approved_by=officer
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        RecoveryCase.objects.filter(pk=other.pk).update(status="written_off")


def test_a_refused_write_off_goes_back(officer: Any, second: Any) -> None:
    case = recovery_case(RecipientFactory())
    recovery_payment_record(
        case_id=case.pk, amount=Decimal("10"), paid_on=DAY, method="现金", user=officer, now=NOW
    )
    recovery_case_write_off_propose(case_id=case.pk, reason="困难", user=officer, now=NOW)
    recovery_case_write_off_decide(case_id=case.pk, approve=False, user=second, now=NOW)
    case.refresh_from_db()
    assert case.status == RecoveryStatus.REPAYING


@pytest.mark.parametrize("before", ["open", "notified", "repaying"])
def test_a_refused_write_off_goes_back_to_where_the_case_was(before: str, officer: Any, second: Any) -> None:
    """The refusal is its own step, by a second person, audited `write_off_refused`: an open
    case goes back to open (nobody was notified), a notified one to notified, one with money
    repaid to repaying."""
    case = recovery_case(RecipientFactory(), amount="900.00")
    if before != "open":
        recovery_case_notify(case_id=case.pk, debtor_name="王小明", debtor_relation="子女", notified_on=DAY,
                             user=officer, now=NOW)  # fmt: skip
    if before == "repaying":
        recovery_payment_record(case_id=case.pk, amount=Decimal("100.00"), paid_on=DAY, method="现金",
                                user=officer, now=NOW)  # fmt: skip
    recovery_case_write_off_propose(case_id=case.pk, reason="义务人下落不明", user=officer, now=NOW)
    with pytest.raises(BenefitsError, match="不能审批自己的核销"):
        recovery_case_write_off_decide(case_id=case.pk, approve=False, user=officer, now=NOW)
    recovery_case_write_off_decide(case_id=case.pk, approve=False, user=second, now=NOW)
    case.refresh_from_db()
    assert case.status == before
    event = AuditEvent.objects.get(action="recovery_case.write_off_refused", target_id=str(case.pk))
    assert (event.actor, event.before["status"], event.after["status"]) == (
        "second",
        "write_off_proposed",
        before,
    )
    assert event.after["proposed_by"] == "officer" and event.after["reason"] == "义务人下落不明"


def test_no_notice_nor_repayment_while_a_write_off_waits_for_its_checker(officer: Any, second: Any) -> None:
    """Recording a debtor notice (or a repayment) used to take a pending write-off back to
    notified (or repaying) with no checker — the proposer could cancel their own write-off, and
    a case with money repaid ended `notified`. Both are refused until the second person decides."""
    case = recovery_case(RecipientFactory(), amount="900.00")
    recovery_payment_record(
        case_id=case.pk, amount=Decimal("100.00"), paid_on=DAY, method="现金", user=officer, now=NOW
    )
    recovery_case_write_off_propose(case_id=case.pk, reason="义务人下落不明", user=officer, now=NOW)
    for user in (officer, second):  # the proposer, and anyone else
        with pytest.raises(BenefitsError, match="核销正在等待审批，暂不能登记退还义务人和通知"):
            recovery_case_notify(case_id=case.pk, debtor_name="王小明", debtor_relation="子女", notified_on=DAY,
                                 user=user, now=NOW)  # fmt: skip
        with pytest.raises(BenefitsError, match="核销正在等待审批，暂不能登记退还"):
            recovery_payment_record(case_id=case.pk, amount=Decimal("1.00"), paid_on=DAY, method="现金",
                                    user=user, now=NOW)  # fmt: skip
    case.refresh_from_db()
    assert (case.status, case.recovered, case.debtor_name) == ("write_off_proposed", Decimal("100.00"), "")
    assert not AuditEvent.objects.filter(action="recovery_case.notified").exists()
    # Only the checker's decision leaves the pending write-off.
    out_of_pending = {t for f, t in RECOVERY_TRANSITIONS if f == "write_off_proposed"}
    assert out_of_pending == {"written_off"}
    assert {f for f, _ in WRITE_OFF_REFUSALS} == {
        "write_off_proposed"
    } and not RECOVERY_TRANSITIONS & WRITE_OFF_REFUSALS
    recovery_case_write_off_decide(case_id=case.pk, approve=False, user=second, now=NOW)
    recovery_payment_record(
        case_id=case.pk, amount=Decimal("1.00"), paid_on=DAY, method="现金", user=officer, now=NOW
    )
    case.refresh_from_db()
    assert (case.status, case.recovered) == ("repaying", Decimal("101.00"))


def test_notify_keeps_the_contact_unless_a_new_one_or_a_clear_is_given(officer: Any) -> None:
    case = recovery_case(RecipientFactory())

    def notify(**contact: Any) -> Any:
        recovery_case_notify(case_id=case.pk, debtor_name="王小明", debtor_relation="子女", notified_on=DAY,
                             user=officer, now=NOW, **contact)  # fmt: skip
        return RecoveryCase.objects.get(pk=case.pk).debtor_contact

    assert notify(debtor_contact="13812345678") == "13812345678"
    assert notify() == "13812345678"  # None: the page sent no new number
    assert notify(debtor_contact="") == ""


RECOVERY_STATES = [s.value for s in RecoveryStatus]


def _recovery_calls(officer: Any, second: Any) -> dict[str, tuple[str, Callable[[int], Any]]]:
    """verb -> (the status it moves to, the call)."""
    return {
        "notify": (RecoveryStatus.NOTIFIED, lambda pk: recovery_case_notify(
            case_id=pk, debtor_name="李四", debtor_relation="配偶", debtor_contact="", notified_on=DAY,
            user=officer, now=NOW)),
        "pay_part": (RecoveryStatus.REPAYING, lambda pk: recovery_payment_record(
            case_id=pk, amount=Decimal("1.00"), paid_on=DAY, method="现金", user=officer, now=NOW)),
        "pay_all": (RecoveryStatus.RECOVERED, lambda pk: recovery_payment_record(
            case_id=pk, amount=RecoveryCase.objects.get(pk=pk).outstanding, paid_on=DAY, method="现金",
            user=officer, now=NOW)),
        "write_off": (RecoveryStatus.WRITE_OFF_PROPOSED, lambda pk: recovery_case_write_off_propose(
            case_id=pk, reason="无法追回", user=officer, now=NOW)),
        "approve_write_off": (RecoveryStatus.WRITTEN_OFF, lambda pk: recovery_case_write_off_decide(
            case_id=pk, approve=True, user=second, now=NOW)),
    }  # fmt: skip


@pytest.mark.parametrize("start", RECOVERY_STATES)
@pytest.mark.parametrize("verb", ["notify", "pay_part", "pay_all", "write_off", "approve_write_off"])
def test_every_recovery_transition_against_the_table(
    start: str, verb: str, officer: Any, second: Any
) -> None:
    case = recovery_case(RecipientFactory(), amount="100.00")
    fields: dict[str, Any] = {"status": start, "recovered": Decimal("10.00")}
    if start == "recovered":
        fields["recovered"] = Decimal("100.00")
    if start in ("write_off_proposed", "written_off"):
        fields["write_off_by"] = officer
    if start == "written_off":
        fields["write_off_approved_by"] = second
    if start in ("refund_recorded", "refunded"):
        fields.update(refund_amount=Decimal("10.00"), refund_by=officer, refunded_on=DAY, refund_ref="ZZ-1")
    if start == "refunded":
        fields["refund_approved_by"] = second
    RecoveryCase.objects.filter(pk=case.pk).update(**fields)
    target, call = _recovery_calls(officer, second)[verb]
    allowed = (start, target) in RECOVERY_TRANSITIONS
    if verb == "pay_all" and start == "recovered":
        allowed = False  # nothing outstanding
    if verb == "approve_write_off" and start != "write_off_proposed":
        allowed = False
    if allowed:
        call(case.pk)
        case.refresh_from_db()
        assert case.status == target
    else:
        with pytest.raises(BenefitsError):
            call(case.pk)
        case.refresh_from_db()
        assert case.status == start


# --- fraud: the 2–5× bound --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "fine", "ok"),
    [
        ("1000.00", "1990.00", False),  # 1.99×
        ("1000.00", "1999.99", False),
        ("1000.00", "2000.00", True),  # 2×
        ("1000.00", "3500.00", True),
        ("1000.00", "5000.00", True),  # 5×
        ("1000.00", "5000.01", False),
        ("1000.00", "5010.00", False),  # 5.01×
        ("0.01", "0.02", True),
        ("0.01", "0.05", True),
        ("0.01", "0.06", False),
        ("12345.67", "24691.34", True),
        ("12345.67", "61728.35", True),
        ("12345.67", "61728.36", False),
    ],
)
def test_the_fine_is_between_2x_and_5x(amount: str, fine: str, ok: bool, officer: Any) -> None:
    case = fraud_case(RecipientFactory(), amount=amount)
    if ok:
        fraud_case_fine(case_id=case.pk, fine=Decimal(fine), user=officer, now=NOW)
        case.refresh_from_db()
        assert case.fine == Decimal(fine) and case.status == FraudStatus.FINED
    else:
        with pytest.raises(BenefitsError, match="二倍以上五倍以下"):
            fraud_case_fine(case_id=case.pk, fine=Decimal(fine), user=officer, now=NOW)
        case.refresh_from_db()
        assert case.fine is None and case.status == FraudStatus.OPEN


@pytest.mark.parametrize(
    ("amount", "fine", "ok"),
    [("1000.00", "1990.00", False), ("1000.00", "2000.00", True), ("1000.00", "5000.00", True),
     ("1000.00", "5010.00", False), ("1000.00", "5000.01", False), ("1000.00", "1999.99", False),
     ("0.03", "0.15", True), ("0.03", "0.16", False), ("99999.99", "499999.95", True),
     ("99999.99", "499999.96", False)],
)  # fmt: skip
def test_the_database_refuses_a_fine_outside_2x_to_5x(amount: str, fine: str, ok: bool) -> None:
    """Around the service (a raw UPDATE), on SQLite and PostgreSQL."""
    case = fraud_case(RecipientFactory(), amount=amount)
    table = FraudCase._meta.db_table

    def update() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET fine = %s WHERE id = %s", [Decimal(fine), case.pk])

    if ok:
        update()
        case.refresh_from_db()
        assert case.fine == Decimal(fine)
    else:
        with pytest.raises(IntegrityError):
            update()


CENTS = st.integers(min_value=1, max_value=10_000_000_000).map(lambda c: Decimal(c) / 100)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=CENTS, multiple=st.decimals(min_value=Decimal("1.5"), max_value=Decimal("5.5"), places=3))
def test_service_and_database_agree_on_the_bound(amount: Decimal, multiple: Decimal, officer: Any) -> None:
    fine = (amount * multiple).quantize(Decimal("0.01"))
    expected = amount * 2 <= fine <= amount * 5
    low, high = fine_bounds(amount)
    assert (low <= fine <= high) == expected
    case = fraud_case(RecipientFactory(), amount=str(amount), opened_by=officer)
    try:
        fraud_case_fine(case_id=case.pk, fine=fine, user=officer, now=NOW)
        service_ok = True
    except BenefitsError:
        service_ok = False
    assert service_ok == expected
    FraudCase.objects.filter(pk=case.pk).update(fine=None, status="open")
    try:
        with transaction.atomic():
            FraudCase.objects.filter(pk=case.pk).update(fine=fine)
        db_ok = True
    except IntegrityError:
        db_ok = False
    assert db_ok == expected


# --- fraud: transitions, collection, referral, blacklist ------------------------------------

FRAUD_STATES = [s.value for s in FraudStatus]


@pytest.mark.parametrize("start", FRAUD_STATES)
@pytest.mark.parametrize("verb", ["fine", "dismiss", "close"])
def test_every_fraud_transition_against_the_table(start: str, verb: str, officer: Any) -> None:
    case = fraud_case(RecipientFactory(), amount="100.00")
    fields: dict[str, Any] = {"status": start}
    if start in ("fined", "closed"):
        fields["fine"] = Decimal("300.00")
    FraudCase.objects.filter(pk=case.pk).update(**fields)
    target, call = {
        "fine": (FraudStatus.FINED, lambda: fraud_case_fine(case_id=case.pk, fine=Decimal("200.00"), user=officer, now=NOW)),
        "dismiss": (FraudStatus.DISMISSED, lambda: fraud_case_dismiss(case_id=case.pk, reason="证据不足", user=officer, now=NOW)),
        "close": (FraudStatus.CLOSED, lambda: fraud_case_close(case_id=case.pk, user=officer, now=NOW, reason="移送法院强制执行")),
    }[verb]  # fmt: skip
    if (start, target) in FRAUD_TRANSITIONS:
        call()
        case.refresh_from_db()
        assert case.status == target
        assert AuditEvent.objects.filter(target_type="fraud_case", target_id=str(case.pk)).exists()
    else:
        with pytest.raises(BenefitsError, match="状态不能从"):
            call()
        case.refresh_from_db()
        assert case.status == start


def test_a_fined_case_with_its_fine_unpaid_is_closed_only_with_a_reason(officer: Any) -> None:
    """Before: one click on 结案 closed it, and the rest of the fine could never be recorded."""
    case = fraud_case(RecipientFactory(), amount="1000.00")
    fraud_case_fine(case_id=case.pk, fine=Decimal("2000.00"), user=officer, now=NOW)
    fraud_case_collect(case_id=case.pk, amount=Decimal("500.00"), user=officer, now=NOW)
    with pytest.raises(BenefitsError, match=r"罚款尚有 1,500\.00 元未缴"):
        fraud_case_close(case_id=case.pk, user=officer, now=NOW)
    case.refresh_from_db()
    assert case.status == FraudStatus.FINED
    assert not AuditEvent.objects.filter(action="fraud_case.closed").exists()
    fraud_case_close(case_id=case.pk, user=officer, now=NOW, reason=" 移送法院强制执行 ")
    case.refresh_from_db()
    assert case.status == FraudStatus.CLOSED and case.note.endswith("结案：移送法院强制执行")
    event = AuditEvent.objects.get(action="fraud_case.closed", target_id=str(case.pk))
    assert event.after["reason"] == "移送法院强制执行" and event.after["unpaid"] == "1500.00"
    paid = fraud_case(RecipientFactory(), amount="100.00")
    fraud_case_fine(case_id=paid.pk, fine=Decimal("200.00"), user=officer, now=NOW)
    fraud_case_collect(case_id=paid.pk, amount=Decimal("200.00"), user=officer, now=NOW)
    fraud_case_close(case_id=paid.pk, user=officer, now=NOW)
    assert FraudCase.objects.get(pk=paid.pk).status == FraudStatus.CLOSED


def test_open_collect_refer_and_blacklist(officer: Any) -> None:
    person = RecipientFactory()
    with pytest.raises(BenefitsError, match="大于 0"):
        fraud_case_open(
            recipient=person, amount_obtained=Decimal("0"), opened_by=officer, source_ref="", note="", now=NOW
        )
    with pytest.raises(BenefitsError, match="社保局"):
        fraud_case_open(recipient=person, amount_obtained=Decimal("1"), opened_by=UserFactory(role=Role.AUDITOR),
                        source_ref="", note="", now=NOW)  # fmt: skip
    case = fraud_case_open(recipient=person, amount_obtained=Decimal("36000.00"), opened_by=officer,
                           source_ref="task:7", note="死亡后由其子代为认证并领取", now=NOW)  # fmt: skip
    with pytest.raises(BenefitsError, match="已处罚"):
        fraud_case_collect(case_id=case.pk, amount=Decimal("1"), user=officer, now=NOW)
    fraud_case_fine(case_id=case.pk, fine=Decimal("72000.00"), user=officer, now=NOW)
    fraud_case_collect(case_id=case.pk, amount=Decimal("70000.00"), user=officer, now=NOW)
    with pytest.raises(BenefitsError, match=r"超过未缴罚款 2,000\.00 元"):
        fraud_case_collect(case_id=case.pk, amount=Decimal("2000.01"), user=officer, now=NOW)
    fraud_case_refer(case_id=case.pk, referred_on=DAY, user=officer, now=NOW)
    with pytest.raises(BenefitsError, match="已移送"):
        fraud_case_refer(case_id=case.pk, referred_on=DAY, user=officer, now=NOW)
    case.refresh_from_db()
    assert (case.referred, case.referred_on, case.fine_collected) == (True, DAY, Decimal("70000.00"))
    entry = blacklist_add(subject_type="person", person_name="王大力", person_id_number="14010519800101109x",
                          reason="冒领其父养老金", since=DAY, user=officer, now=NOW, fraud_case=case)  # fmt: skip
    assert entry.person_id_number == "14010519800101109X" and entry.unit is None
    unit_entry = blacklist_add(subject_type="unit", reason="出具虚假证明", since=DAY, user=officer, now=NOW,
                               unit=UnitFactory(), fraud_case=case)  # fmt: skip
    assert unit_entry.person_name == ""
    with pytest.raises(BenefitsError, match="姓名"):
        blacklist_add(subject_type="person", reason="x", since=DAY, user=officer, now=NOW)
    with pytest.raises(BenefitsError, match="单位"):
        blacklist_add(subject_type="unit", reason="x", since=DAY, user=officer, now=NOW)
    assert AuditEvent.objects.filter(action="blacklist.added").count() == 2


def test_the_database_refuses_an_incomplete_blacklist_entry_or_referral(officer: Any) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Blacklist.objects.create(subject_type="unit", reason="x", since=DAY, by=officer, created_at=NOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        Blacklist.objects.create(
            subject_type="person", person_name="", reason="x", since=DAY, by=officer, created_at=NOW
        )
    case = fraud_case(RecipientFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        FraudCase.objects.filter(pk=case.pk).update(referred=True)


# --- the report -------------------------------------------------------------------------------


def test_report_recovered_vs_outstanding(officer: Any, second: Any) -> None:
    unit_a, unit_b = UnitFactory(), UnitFactory()
    a = recovery_case(RecipientFactory(unit=unit_a), amount="1000.00")
    b = recovery_case(RecipientFactory(unit=unit_a), amount="500.00")
    c = recovery_case(RecipientFactory(unit=unit_b), amount="300.00")
    recovery_payment_record(
        case_id=a.pk, amount=Decimal("400.00"), paid_on=DAY, method="现金", user=officer, now=NOW
    )
    recovery_payment_record(
        case_id=b.pk, amount=Decimal("500.00"), paid_on=DAY, method="现金", user=officer, now=NOW
    )
    recovery_case_write_off_propose(case_id=c.pk, reason="无遗产", user=officer, now=NOW)
    recovery_case_write_off_decide(case_id=c.pk, approve=True, user=second, now=NOW)
    f = fraud_case(RecipientFactory(), amount="100.00")
    fraud_case_fine(case_id=f.pk, fine=Decimal("250.00"), user=officer, now=NOW)
    fraud_case_collect(case_id=f.pk, amount=Decimal("100.00"), user=officer, now=NOW)
    report = recovery_report()
    assert (report.total.cases, report.total.amount, report.total.recovered) == (
        3,
        Decimal("1800.00"),
        Decimal("900.00"),
    )
    assert report.total.outstanding == Decimal("600.00")
    assert report.total.written_off == Decimal("300.00")
    by_unit = {r.key: r for r in report.by_unit}
    assert by_unit[unit_a.unit_no].outstanding == Decimal("600.00")
    assert by_unit[unit_b.unit_no].written_off == Decimal("300.00")
    assert {r.key: r.cases for r in report.by_status} == {"repaying": 1, "recovered": 1, "written_off": 1}
    assert [r.cases for r in report.by_month] == [3]
    assert (report.fines_imposed, report.fines_collected) == (Decimal("250.00"), Decimal("100.00"))


# --- which recovery a fraud case arises from (stored, not by person) ---------------------------


@pytest.fixture
def data_dir(settings: Any, tmp_path: Any) -> Any:
    settings.DATA_DIR = tmp_path  # export batches write their files here
    return tmp_path


def _stop(person: Any, month: str, months: int, *, maker: Any, checker: Any) -> RecoveryCase:
    """An officer's stop of `person` from `month`, approved by a second one, exported and
    confirmed by the payment system: its recovery case."""
    action = payment_action_propose(
        recipient=person, kind="stop", effective_month=month, months=months,
        amount=months * person.monthly_amount, source="manual", source_ref="test", proposed_by=maker, now=NOW,
    )  # fmt: skip
    payment_action_approve(action_id=action.pk, user=checker, now=NOW)
    _export_and_confirm(maker=maker, checker=checker)
    return RecoveryCase.objects.get(action=action)


def _export_and_confirm(*, maker: Any, checker: Any) -> None:
    batch = export_batch_create(user=maker, now=NOW)
    assert batch is not None
    export_batch_confirm(batch_id=batch.pk, user=checker, ref="ZF-1", now=NOW)


def _reverse(recovery: RecoveryCase, *, maker: Any, checker: Any) -> None:
    """The stop of `recovery` reversed (死亡日期有误), approved, exported and confirmed."""
    reversal = payment_action_reverse(
        action_id=recovery.action_id, user=maker, reason="死亡日期有误", now=NOW
    )
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    _export_and_confirm(maker=maker, checker=checker)


def test_a_fraud_case_follows_the_recovery_of_the_corrected_stop_after_a_reversal(
    officer: Any, second: Any, data_dir: Any
) -> None:
    """Two recovery cases for one person: the first stop was reversed (its recovery cancelled)
    and the corrected stop opened a second. The fraud case opened on the first arises from the
    second now — stored and audited — and each page names only its own; before, both pages
    listed every recovery case of the person."""
    person = RecipientFactory()
    first = _stop(person, "2026-09", 3, maker=officer, checker=second)
    fraud = fraud_case_open(recipient=person, amount_obtained=Decimal("9000.00"), opened_by=officer,
                            source_ref="review:1", note="冒领", now=NOW)  # fmt: skip
    assert fraud.recovery_case_id == first.pk
    opened = AuditEvent.objects.get(action="fraud_case.opened", target_id=fraud.pk)
    assert opened.after["recovery_case"] == first.pk
    _reverse(first, maker=officer, checker=second)
    first.refresh_from_db()
    assert first.status == RecoveryStatus.CANCELLED
    corrected = _stop(person, "2026-08", 4, maker=officer, checker=second)
    fraud.refresh_from_db()
    assert fraud.recovery_case_id == corrected.pk
    linked = AuditEvent.objects.get(action="fraud_case.recovery_linked", target_id=fraud.pk)
    assert (linked.before, linked.after) == ({"recovery_case": first.pk}, {"recovery_case": corrected.pk})
    assert recoveries_of_fraud(fraud) == [corrected]
    assert frauds_of_recovery(corrected) == [fraud] and frauds_of_recovery(first) == []
    in_fraud = {c.pk: c.in_fraud for c in recovery_list()}
    assert in_fraud == {first.pk: False, corrected.pk: True}


def test_a_fraud_case_follows_the_corrected_stop_also_when_the_reversed_one_owes_a_refund(
    officer: Any, second: Any, data_dir: Any
) -> None:
    """The first stop's recovery had money back when the stop was reversed. Before, that case
    stayed live (still owing, in the report) and kept the fraud case found before the corrected
    stop. A reversed stop's money is owed back, not owed (待返还, outstanding 0, out of the
    report like a cancelled case), so the fraud case arises from the corrected stop's recovery,
    as after a reversal with nothing recovered (audited `fraud_case.recovery_linked`)."""
    person = RecipientFactory()
    first = _stop(person, "2026-09", 3, maker=officer, checker=second)
    recovery_payment_record(case_id=first.pk, amount=Decimal("1000.00"), paid_on=DAY, method="现金",
                            user=officer, now=NOW)  # fmt: skip
    early = fraud_case_open(recipient=person, amount_obtained=Decimal("9000.00"), opened_by=officer,
                            source_ref="review:1", note="", now=NOW)  # fmt: skip
    assert early.recovery_case_id == first.pk
    _reverse(first, maker=officer, checker=second)
    first.refresh_from_db()
    assert (first.status, first.refund_due, first.outstanding) == (
        RecoveryStatus.REFUND_DUE, Decimal("1000.00"), Decimal("0.00"),
    )  # fmt: skip
    later_stop = _stop(person, "2026-10", 2, maker=officer, checker=second)
    early.refresh_from_db()
    assert early.recovery_case_id == later_stop.pk
    linked = AuditEvent.objects.get(action="fraud_case.recovery_linked", target_id=early.pk)
    assert (linked.before, linked.after) == ({"recovery_case": first.pk}, {"recovery_case": later_stop.pk})
    assert recoveries_of_fraud(early) == [later_stop] and frauds_of_recovery(first) == []
    report = recovery_report()
    assert (report.total.cases, report.total.amount) == (1, later_stop.amount)
    assert (report.fraud_recovery_cases, report.fraud_recovery_amount) == (1, later_stop.amount)
    assert report.fraud_obtained_uncovered == Decimal("9000.00") - later_stop.amount


def test_a_fraud_case_found_before_the_stop_is_approved_takes_its_recovery_case(
    officer: Any, second: Any, data_dir: Any
) -> None:
    person = RecipientFactory()
    dismissed = fraud_case_open(recipient=person, amount_obtained=Decimal("100.00"), opened_by=officer,
                                source_ref="", note="", now=NOW)  # fmt: skip
    fraud_case_dismiss(case_id=dismissed.pk, reason="误报", user=officer, now=NOW)  # one not ended per person
    fraud = fraud_case_open(recipient=person, amount_obtained=Decimal("9000.00"), opened_by=officer,
                            source_ref="review:1", note="", now=NOW)  # fmt: skip
    assert fraud.recovery_case_id is None
    recovery = _stop(person, "2026-09", 3, maker=officer, checker=second)
    fraud.refresh_from_db()
    dismissed.refresh_from_db()
    assert fraud.recovery_case_id == recovery.pk and dismissed.recovery_case_id is None
    other = _stop(RecipientFactory(), "2026-09", 3, maker=officer, checker=second)
    assert frauds_of_recovery(other) == []


def test_the_migration_links_each_existing_fraud_case_to_its_person_s_recovery_case(officer: Any) -> None:
    """The backfill of 0006, by the person-based rule the pages used: the person's latest
    recovery case not cancelled opened by the fraud case's opening, else the first opened after
    it; a cancelled one, or none, links nothing."""
    import importlib
    from datetime import timedelta

    from django.apps import apps

    from zige.benefits.models import PaymentAction

    backfill = importlib.import_module("zige.benefits.migrations.0006_fraud_case_recovery_case").forward
    two, later, cancelled, none = (RecipientFactory() for _ in range(4))
    old = recovery_case(two)
    PaymentAction.objects.filter(pk=old.action_id).update(state="confirmed", effective_month="2026-06")
    new = recovery_case(two)
    RecoveryCase.objects.filter(pk=old.pk).update(opened_at=NOW - timedelta(days=9))
    RecoveryCase.objects.filter(pk=new.pk).update(opened_at=NOW + timedelta(days=9))
    after = recovery_case(later)
    RecoveryCase.objects.filter(pk=after.pk).update(opened_at=NOW + timedelta(days=1))
    gone = recovery_case(cancelled)
    RecoveryCase.objects.filter(pk=gone.pk).update(status=RecoveryStatus.CANCELLED)
    frauds = {p.pk: fraud_case(p) for p in (two, later, cancelled, none)}
    backfill(apps, None)
    got = {f.recipient_id: f.recovery_case_id for f in FraudCase.objects.all()}
    assert got == {two.pk: old.pk, later.pk: after.pk, cancelled.pk: None, none.pk: None}
    assert len(frauds) == 4


@pytest.mark.django_db
def test_blacklist_person_id_number_is_read_as_an_id_and_never_cut(officer: Any) -> None:
    """A typed ID number with spaces was cut to 18 characters and stored as typed
    (`140406 1975 0101 1`); one with a wrong check digit was stored as it was."""
    entry = blacklist_add(subject_type="person", person_name="王小堂", person_id_number=" 140105 1980 0101 109x ",
                          reason="冒领其父养老金", since=DAY, user=officer, now=NOW)  # fmt: skip
    assert entry.person_id_number == "14010519800101109X"
    old = blacklist_add(subject_type="person", person_name="王小堂", person_id_number="140106500101103",
                        reason="冒领其父养老金", since=DAY, user=officer, now=NOW)  # fmt: skip
    assert len(old.person_id_number) == 18 and old.person_id_number.startswith("14010619500101103")
    for bad, why in (
        ("140105198001011231", "校验码"),
        ("1401061950", "格式"),
        ("140105198013011230", "出生日期"),
    ):
        with pytest.raises(BenefitsError, match=why):
            blacklist_add(subject_type="person", person_name="王小堂", person_id_number=bad,
                          reason="冒领其父养老金", since=DAY, user=officer, now=NOW)  # fmt: skip
    assert Blacklist.objects.count() == 2
    assert AuditEvent.objects.filter(action="blacklist.added").count() == 2
    nameless = blacklist_add(subject_type="person", person_name="王小堂", reason="冒领", since=DAY, user=officer,
                             now=NOW)  # fmt: skip
    assert nameless.person_id_number == ""


# --- one open fraud case per person, one blacklist entry per person or unit -------------------


def test_a_person_has_one_fraud_case_not_ended_service_and_database(officer: Any) -> None:
    """Before: a second 冒领 case could be opened for a person whose first was still open (two
    fines for one 冒领). A case not ended (已立案, 已处罚) refuses a second, in Chinese, naming it;
    the database refuses it too (`one_open_fraud_case_per_person`). A closed or dismissed case
    does not."""
    person = RecipientFactory()
    first = fraud_case_open(recipient=person, amount_obtained=Decimal("3000.00"), opened_by=officer,
                            source_ref="", note="", now=NOW)  # fmt: skip

    def again() -> Any:
        return fraud_case_open(recipient=person, amount_obtained=Decimal("1000.00"), opened_by=officer,
                               source_ref="", note="", now=NOW)  # fmt: skip

    with pytest.raises(
        BenefitsError, match=rf"该人员已有未结案的欺诈案件 #{first.pk}（已立案，骗取 3,000\.00 元）"
    ):
        again()
    fraud_case_fine(case_id=first.pk, fine=Decimal("6000.00"), user=officer, now=NOW)
    with pytest.raises(BenefitsError, match=rf"#{first.pk}（已处罚"):
        again()
    assert FraudCase.objects.filter(recipient=person).count() == 1
    assert AuditEvent.objects.filter(action="fraud_case.opened").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        fraud_case(person)
    fraud_case_close(case_id=first.pk, reason="移送法院强制执行", user=officer, now=NOW)
    second = again()
    fraud_case_dismiss(case_id=second.pk, reason="证据不足", user=officer, now=NOW)
    assert again().status == FraudStatus.OPEN


def test_a_person_or_a_unit_is_blacklisted_once_whatever_form_the_id_is_typed_in(officer: Any) -> None:
    """The same ID typed with a lower-case x or in its 15-digit form is one person: listed once,
    the second entry refused in Chinese naming the first; a unit once. The database refuses it
    too (`one_blacklist_entry_per_person`, `one_blacklist_entry_per_unit`)."""
    first = blacklist_add(subject_type="person", person_name="王小堂", person_id_number="14010519800101109X",
                          reason="冒领其父养老金", since=DAY, user=officer, now=NOW)  # fmt: skip
    for typed in ("14010519800101109x", "140105800101109", " 140105 1980 0101 109x "):
        with pytest.raises(
            BenefitsError, match=rf"该人员（王小堂）已列入黑名单 #{first.pk}（列入日期 2026-11-30）"
        ):
            blacklist_add(subject_type="person", person_name="王晓堂", person_id_number=typed,
                          reason="再次冒领", since=DAY, user=officer, now=NOW)  # fmt: skip
    unit = UnitFactory(name="某某养老院")
    listed = blacklist_add(
        subject_type="unit", unit=unit, reason="出具虚假证明", since=DAY, user=officer, now=NOW
    )
    with pytest.raises(BenefitsError, match=rf"单位 {unit.unit_no} 某某养老院 已列入黑名单 #{listed.pk}"):
        blacklist_add(
            subject_type="unit", unit=unit, reason="再次出具虚假证明", since=DAY, user=officer, now=NOW
        )
    assert Blacklist.objects.count() == 2
    assert AuditEvent.objects.filter(action="blacklist.added").count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        Blacklist.objects.create(subject_type="person", person_name="王", person_id_number="14010519800101109X",
                                 reason="x", since=DAY, by=officer, created_at=NOW)  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Blacklist.objects.create(
            subject_type="unit", unit=unit, reason="x", since=DAY, by=officer, created_at=NOW
        )
    # People without an ID number are not matched by name: two such entries stand.
    for _ in range(2):
        blacklist_add(
            subject_type="person", person_name="王小堂", reason="冒领", since=DAY, user=officer, now=NOW
        )


def test_a_second_entry_that_slips_past_the_check_is_refused_in_chinese_not_an_integrity_error(
    officer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two officers at once: both pass the check, the database refuses the second; the service
    answers with the same message, not a server error."""
    import zige.benefits.services as services

    person = RecipientFactory()
    first = fraud_case_open(recipient=person, amount_obtained=Decimal("3000.00"), opened_by=officer,
                            source_ref="", note="", now=NOW)  # fmt: skip
    entry = blacklist_add(subject_type="person", person_name="王小堂", person_id_number="14010519800101109X",
                          reason="冒领", since=DAY, user=officer, now=NOW)  # fmt: skip
    monkeypatch.setattr(services, "_open_fraud_case_of", lambda recipient_id: None)
    monkeypatch.setattr(services, "_blacklisted", lambda **_: None)
    with pytest.raises(BenefitsError, match=rf"该人员已有未结案的欺诈案件 #{first.pk}"):
        fraud_case_open(recipient=person, amount_obtained=Decimal("1.00"), opened_by=officer, source_ref="",
                        note="", now=NOW)  # fmt: skip
    with pytest.raises(BenefitsError, match=rf"已列入黑名单 #{entry.pk}"):
        blacklist_add(subject_type="person", person_name="王小堂", person_id_number="140105800101109",
                      reason="冒领", since=DAY, user=officer, now=NOW)  # fmt: skip


def test_migration_0008_compares_and_stores_the_blacklist_s_id_numbers_normalised(officer: Any) -> None:
    """Entries stored before `blacklist_add` normalised its input: `…109x` and `…109X` are one
    person, so the migration stops naming both (an officer removes one); once they are apart, it
    stores each number normalised (a number that is no ID is left as it is)."""
    import importlib

    from django.apps import apps

    step = importlib.import_module(
        "zige.benefits.migrations.0008_one_fraud_case_one_blacklist_entry"
    ).normalise_and_refuse_duplicates

    def entry(number: str) -> Any:
        return Blacklist.objects.create(subject_type="person", person_name="王小堂", person_id_number=number,
                                        reason="冒领", since=DAY, by=officer, created_at=NOW)  # fmt: skip

    lower, upper, other = entry("14010519800101109x"), entry("14010519800101109X"), entry("not-an-id")
    with pytest.raises(RuntimeError, match=rf"ID number 14010519800101109X: \[{lower.pk}, {upper.pk}\]"):
        step(apps, None)
    assert Blacklist.objects.get(pk=lower.pk).person_id_number == "14010519800101109x"
    upper.delete()
    step(apps, None)
    assert Blacklist.objects.get(pk=lower.pk).person_id_number == "14010519800101109X"
    assert Blacklist.objects.get(pk=other.pk).person_id_number == "not-an-id"
