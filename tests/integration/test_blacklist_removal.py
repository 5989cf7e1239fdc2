"""移出黑名单: a blacklist entry is removed by one officer's proposal and another's approval
(maker-checker, in the service and in the database), with a reason and a day, audited in the same
transaction, kept as 已移出; a removed person or unit may be listed again; 列入期满 needs a period
that has ended, 信用修复 a settled fraud case (docs/payments.md §4)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from tests.factories import (
    NOW,
    RecipientFactory,
    UnitFactory,
    UserFactory,
    blacklist_entry,
    fraud_case,
    recovery_case,
)
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.benefits.models import Blacklist, BlacklistStatus, RecoveryCase, RecoveryStatus
from zige.benefits.selectors import blacklist_counts, blacklist_history, blacklist_list, recovery_report
from zige.benefits.services import (
    BLACKLIST_TRANSITIONS,
    BenefitsError,
    blacklist_add,
    blacklist_period_change,
    blacklist_removal_decide,
    blacklist_removal_propose,
    blacklist_removal_withdraw,
    fraud_case_close,
    fraud_case_collect,
    fraud_case_dismiss,
    fraud_case_fine,
)

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 30)  # the day of NOW in the bureau's time zone


@pytest.fixture
def officer() -> Any:
    return UserFactory(username="officer", role=Role.BUREAU_OPERATOR)


@pytest.fixture
def second() -> Any:
    return UserFactory(username="second", role=Role.BUREAU_ADMIN)


def propose(entry: Any, user: Any, *, reason: str = "wrongly_listed", day: date = DAY,
            note: str = "身份证号录入错误，应为他人") -> Any:  # fmt: skip
    return blacklist_removal_propose(
        entry_id=entry.pk, reason=reason, removed_on=day, note=note, user=user, now=NOW
    )


def test_one_officer_proposes_another_approves_and_the_entry_stays_as_removed(
    officer: Any, second: Any
) -> None:
    """Before there was no way off the list. Now: proposed (移出待审批, still listing the person),
    the proposer's own approval refused, another officer's approval removes it (已移出) with who,
    when and why; the row is never deleted; each step is one audit event."""
    person = RecipientFactory(name="王大力")
    entry: Any = blacklist_entry(person)
    proposed = propose(entry, officer)
    assert proposed.status == BlacklistStatus.REMOVAL_PROPOSED and proposed.removal_proposed_by == officer
    assert [e.pk for e in blacklist_list()] == [entry.pk]  # still current until approved
    with pytest.raises(BenefitsError, match="提出移出的人不能审批自己的提议"):
        blacklist_removal_decide(entry_id=entry.pk, approve=True, user=officer, now=NOW)
    removed = blacklist_removal_decide(
        entry_id=entry.pk, approve=True, user=second, now=NOW + timedelta(hours=1)
    )
    removed.refresh_from_db()
    assert removed.status == BlacklistStatus.REMOVED
    assert (removed.removal_reason, removed.removed_on, removed.removal_proposed_by, removed.removal_approved_by) == (
        "wrongly_listed", DAY, officer, second,
    )  # fmt: skip
    assert (
        removed.removed_at == NOW + timedelta(hours=1)
        and removed.removal_note == "身份证号录入错误，应为他人"
    )
    assert Blacklist.objects.filter(pk=entry.pk).exists()
    assert list(blacklist_list()) == [] and [e.pk for e in blacklist_list(view="removed")] == [entry.pk]
    assert [e.pk for e in blacklist_list(view="all")] == [entry.pk]
    assert blacklist_counts() == {"current": 0, "removed": 1, "all": 1, "pending": 0}
    assert recovery_report().blacklisted == 0  # the report counts the entries that list someone
    events = list(AuditEvent.objects.filter(target_type="blacklist", target_id=str(entry.pk)).order_by("seq"))
    assert [(e.action, e.actor) for e in events] == [
        ("blacklist.removal_proposed", "officer"), ("blacklist.removed", "second"),
    ]  # fmt: skip
    assert (
        events[0].after["removal_reason"] == "wrongly_listed"
        and events[0].after["removed_on"] == "2026-11-30"
    )
    assert events[1].before == {"status": "removal_proposed"} and events[1].after["proposed_by"] == "officer"
    with pytest.raises(BenefitsError, match="只有在列的条目可以提出移出"):
        propose(entry, second)


def test_a_rejection_needs_a_reason_and_puts_the_entry_back_in_the_list(officer: Any, second: Any) -> None:
    entry: Any = blacklist_entry(RecipientFactory())
    propose(entry, officer)
    with pytest.raises(BenefitsError, match="请填写驳回理由"):
        blacklist_removal_decide(entry_id=entry.pk, approve=False, reason="  ", user=second, now=NOW)
    with pytest.raises(BenefitsError, match="提出移出的人不能审批"):
        blacklist_removal_decide(entry_id=entry.pk, approve=False, reason="撤回", user=officer, now=NOW)
    rejected = blacklist_removal_decide(
        entry_id=entry.pk, approve=False, reason="未见复议决定书", user=second, now=NOW
    )
    rejected.refresh_from_db()
    assert rejected.status == BlacklistStatus.LISTED
    assert (rejected.removal_reason, rejected.removed_on, rejected.removal_proposed_by_id, rejected.removal_note) == (
        "", None, None, "",
    )  # fmt: skip
    event = AuditEvent.objects.get(action="blacklist.removal_rejected")
    assert event.actor == "second" and event.after == {"status": "listed", "reason": "未见复议决定书"}
    assert event.before["removal_reason"] == "wrongly_listed" and event.before["proposed_by"] == "officer"
    history = blacklist_history(entry)
    assert [step.label for step in history] == ["提出移出黑名单（待审批）", "驳回移出黑名单"]
    assert ("驳回理由", "未见复议决定书") in history[1].details and ("移出原因", "错误列入") in history[
        1
    ].details
    with pytest.raises(BenefitsError, match="没有待审批的移出"):
        blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    propose(
        entry, officer, reason="revoked", note="行政复议决定书 晋人社复〔2026〕3号"
    )  # may be proposed again
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.REMOVAL_PROPOSED


def test_the_maker_withdraws_their_own_proposal_and_may_propose_again(officer: Any, second: Any) -> None:
    """A proposal with a wrong day or reason was left for a checker to reject; its maker now takes
    it back (移出待审批 → 在列), with or without a reason; no one else may, and nothing else is
    withdrawn. The proposal is cleared from the entry and kept in the audit record."""
    entry: Any = blacklist_entry(RecipientFactory())
    with pytest.raises(BenefitsError, match="没有待审批的移出"):
        blacklist_removal_withdraw(entry_id=entry.pk, user=officer, now=NOW)
    propose(entry, officer, reason="revoked", note="复议决定书文号写错")
    with pytest.raises(BenefitsError, match="只有提出移出的人可以撤回"):
        blacklist_removal_withdraw(entry_id=entry.pk, user=second, now=NOW)
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.REMOVAL_PROPOSED
    withdrawn = blacklist_removal_withdraw(entry_id=entry.pk, reason=" 文号有误 ", user=officer, now=NOW)
    withdrawn.refresh_from_db()
    assert withdrawn.status == BlacklistStatus.LISTED
    assert (withdrawn.removal_reason, withdrawn.removed_on, withdrawn.removal_proposed_by_id,
            withdrawn.removal_proposed_at, withdrawn.removal_note) == ("", None, None, None, "")  # fmt: skip
    event = AuditEvent.objects.get(action="blacklist.removal_withdrawn")
    assert event.actor == "officer" and event.after == {"status": "listed", "withdrawal_reason": "文号有误"}
    assert event.before["removal_reason"] == "revoked" and event.before["note"] == "复议决定书文号写错"
    history = blacklist_history(entry)
    assert [step.label for step in history] == ["提出移出黑名单（待审批）", "撤回移出黑名单的提议"]
    withdrawal = history[1].details
    assert ("撤回原因", "文号有误") in withdrawal and ("移出原因", "复议或诉讼撤销") in withdrawal
    with pytest.raises(BenefitsError, match="没有待审批的移出"):
        blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    # proposed again, then withdrawn without a reason: the record says only what was withdrawn
    propose(entry, officer, reason="revoked", note="行政复议决定书 晋人社复〔2026〕3号")
    blacklist_removal_withdraw(entry_id=entry.pk, user=officer, now=NOW)
    latest = AuditEvent.objects.filter(action="blacklist.removal_withdrawn").latest("seq")
    assert latest.after == {"status": "listed"}
    propose(entry, officer, reason="revoked", note="行政复议决定书 晋人社复〔2026〕3号")
    removed = blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    assert removed.status == BlacklistStatus.REMOVED
    with pytest.raises(BenefitsError, match="没有待审批的移出"):
        blacklist_removal_withdraw(entry_id=entry.pk, user=officer, now=NOW)


def test_the_removal_needs_a_reason_a_note_and_a_day_between_the_listing_and_today(officer: Any) -> None:
    entry: Any = blacklist_entry(RecipientFactory(), since=date(2026, 11, 1))
    for kwargs, message in (
        ({"reason": ""}, "请选择移出黑名单的原因"),
        ({"reason": "forgiven"}, "请选择移出黑名单的原因"),
        ({"note": " "}, "请填写移出说明（错误列入的依据"),
        ({"day": DAY + timedelta(days=1)}, r"移出日期（2026-12-01）不能晚于登记当天（2026-11-30）"),
        ({"day": date(2026, 10, 31)}, r"移出日期（2026-10-31）不能早于列入日期（2026-11-01）"),
    ):
        with pytest.raises(BenefitsError, match=message):
            propose(entry, officer, **kwargs)
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.LISTED
    assert not AuditEvent.objects.filter(action__startswith="blacklist.removal").exists()
    propose(entry, officer, day=date(2026, 11, 1))  # the listing's own day is allowed


def test_only_bureau_officers_remove_and_approve(officer: Any) -> None:
    entry: Any = blacklist_entry(RecipientFactory())
    for user in (UserFactory(role=Role.AUDITOR), UserFactory(role=Role.UNIT_OPERATOR, unit=UnitFactory())):
        with pytest.raises(BenefitsError, match="只有社保局经办人员"):
            propose(entry, user)
    propose(entry, officer)
    with pytest.raises(BenefitsError, match="只有社保局经办人员"):
        blacklist_removal_decide(
            entry_id=entry.pk, approve=True, user=UserFactory(role=Role.AUDITOR), now=NOW
        )
    with pytest.raises(BenefitsError, match="只有社保局经办人员"):
        blacklist_removal_withdraw(entry_id=entry.pk, user=UserFactory(role=Role.AUDITOR), now=NOW)


def test_the_removal_is_audited_in_its_own_transaction(officer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit write that fails takes the removal with it: nothing is removed unaudited."""
    import zige.benefits.services as services

    entry: Any = blacklist_entry(RecipientFactory())

    def broken(**_: Any) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "audit_record", broken)
    with pytest.raises(RuntimeError):
        propose(entry, officer)
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.LISTED


def test_the_transition_table_holds_exactly_the_removal_steps() -> None:
    assert {
        ("listed", "removal_proposed"), ("removal_proposed", "removed"), ("removal_proposed", "listed"),
    } == set(BLACKLIST_TRANSITIONS)  # fmt: skip
    assert not any(old == "removed" for old, _ in BLACKLIST_TRANSITIONS)  # nothing leaves 已移出


# --- listed again --------------------------------------------------------------------------------


def test_a_removed_person_or_unit_may_be_listed_again_but_not_while_the_removal_waits(
    officer: Any, second: Any
) -> None:
    """Before: the partial unique indexes covered every entry, so a person or unit once listed
    could never be listed again. Now only entries not removed count, in the service and the
    database; a removal still awaiting approval keeps its person listed."""
    first = blacklist_add(subject_type="person", person_name="王小堂", person_id_number="14010519800101109X",
                          reason="冒领其父养老金", since=date(2026, 1, 5), user=officer, now=NOW)  # fmt: skip
    unit = UnitFactory(name="某某养老院")
    listed_unit = blacklist_add(subject_type="unit", unit=unit, reason="出具虚假证明", since=date(2026, 1, 5),
                                user=officer, now=NOW)  # fmt: skip
    for entry in (first, listed_unit):
        propose(entry, officer, reason="revoked", note="法院判决撤销列入决定")
    with pytest.raises(BenefitsError, match=rf"该人员（王小堂）已列入黑名单 #{first.pk}.*移出正在等待审批"):
        blacklist_add(subject_type="person", person_name="王小堂", person_id_number="14010519800101109x",
                      reason="再次冒领", since=DAY, user=officer, now=NOW)  # fmt: skip
    with pytest.raises(
        BenefitsError, match=rf"单位 {unit.unit_no} 某某养老院 已列入黑名单 #{listed_unit.pk}"
    ):
        blacklist_add(
            subject_type="unit", unit=unit, reason="再次出具虚假证明", since=DAY, user=officer, now=NOW
        )
    for entry in (first, listed_unit):
        blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    again = blacklist_add(subject_type="person", person_name="王小堂", person_id_number="140105800101109",
                          reason="再次冒领", since=DAY, user=officer, now=NOW)  # fmt: skip
    unit_again = blacklist_add(subject_type="unit", unit=unit, reason="再次出具虚假证明", since=DAY, user=officer,
                               now=NOW)  # fmt: skip
    assert again.person_id_number == first.person_id_number and unit_again.unit == unit
    assert Blacklist.objects.filter(person_id_number="14010519800101109X").count() == 2
    with pytest.raises(BenefitsError, match=rf"已列入黑名单 #{again.pk}"):
        blacklist_add(subject_type="person", person_name="王小堂", person_id_number="14010519800101109X",
                      reason="三次", since=DAY, user=officer, now=NOW)  # fmt: skip
    # The database: a second current entry is refused, a removed one is not in the way.
    with pytest.raises(IntegrityError), transaction.atomic():
        Blacklist.objects.create(subject_type="person", person_name="王", person_id_number="14010519800101109X",
                                 reason="x", since=DAY, by=officer, created_at=NOW)  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Blacklist.objects.create(
            subject_type="unit", unit=unit, reason="x", since=DAY, by=officer, created_at=NOW
        )


# --- the database's checks -------------------------------------------------------------------------


def test_the_database_refuses_a_removal_without_its_fields_or_approved_by_its_maker(
    officer: Any, second: Any
) -> None:
    """Raw updates past the service: a removed entry has its reason, day, maker and a different
    checker; an entry in the list has none of them; a period ends after the listing."""
    entry: Any = blacklist_entry(RecipientFactory(), since=date(2026, 11, 1))
    rows = Blacklist.objects.filter(pk=entry.pk)
    complete = {"removal_reason": "revoked", "removed_on": DAY, "removal_proposed_by": officer,
                "removal_proposed_at": NOW}  # fmt: skip
    bad = [
        {"status": "gone"},
        {"status": "removed"},  # nothing of the removal
        {"status": "removal_proposed", **complete, "removal_reason": ""},
        {"status": "removal_proposed", **complete, "removal_reason": "forgiven"},
        {"status": "removal_proposed", **complete, "removed_on": date(2026, 10, 1)},  # before the listing
        {"status": "removed", **complete},  # no checker
        {"status": "removed", **complete, "removal_approved_by": officer, "removed_at": NOW},  # its maker
        {"status": "listed", "removed_on": DAY},
        {"until": date(2026, 11, 1)},  # a period ending on the day it starts
    ]
    for values in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            rows.update(**values)
    assert rows.get().status == BlacklistStatus.LISTED
    rows.update(status="removed", **complete, removal_approved_by=second, removed_at=NOW)
    assert rows.get().status == BlacklistStatus.REMOVED


# --- 列入期满: the period -----------------------------------------------------------------------------


def test_a_period_is_kept_with_the_listing_and_removal_for_expiry_needs_it_ended(
    officer: Any, second: Any
) -> None:
    with pytest.raises(BenefitsError, match=r"列入期限（2026-11-01）应晚于列入日期（2026-11-01）"):
        blacklist_add(subject_type="person", person_name="王大力", reason="冒领", since=date(2026, 11, 1),
                      until=date(2026, 11, 1), user=officer, now=NOW)  # fmt: skip
    entry = blacklist_add(subject_type="person", person_name="王大力", reason="冒领", since=date(2023, 11, 1),
                          until=date(2026, 11, 30), user=officer, now=NOW)  # fmt: skip
    assert AuditEvent.objects.get(action="blacklist.added").after["until"] == "2026-11-30"
    assert not entry.expired_by(date(2026, 11, 29)) and entry.expired_by(DAY)
    with pytest.raises(BenefitsError, match="列入期限至 2026-11-30，移出日期 2026-11-29 尚未期满"):
        propose(entry, officer, reason="expired", day=date(2026, 11, 29), note="")
    propose(entry, officer, reason="expired", day=DAY, note="")  # no note needed: the period speaks
    blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    open_ended: Any = blacklist_entry(RecipientFactory())
    with pytest.raises(BenefitsError, match="该条目未登记列入期限，不能以“列入期满”移出"):
        propose(open_ended, officer, reason="expired", note="满三年")


def test_the_period_is_changed_with_its_basis_while_listed_and_audited(officer: Any, second: Any) -> None:
    """变更列入期限: set, moved or lifted with its basis; never on or before the listing, never
    while a removal waits (it was proposed on the period as it stood), never once removed. A
    shortened period that has ended makes 列入期满 possible — still proposed and approved by two."""
    entry: Any = blacklist_entry(RecipientFactory(), since=date(2024, 11, 1))

    def change(until: date | None, basis: str = "晋人社复〔2026〕7号", user: Any = officer) -> Any:
        return blacklist_period_change(entry_id=entry.pk, until=until, basis=basis, user=user, now=NOW)

    with pytest.raises(BenefitsError, match="请填写变更列入期限的依据"):
        change(date(2027, 11, 1), basis=" ")
    with pytest.raises(BenefitsError, match=r"列入期限（2024-11-01）应晚于列入日期（2024-11-01）"):
        change(date(2024, 11, 1))
    with pytest.raises(BenefitsError, match="列入期限没有变化"):
        change(None)
    with pytest.raises(BenefitsError, match="只有社保局经办人员"):
        change(date(2027, 11, 1), user=UserFactory(role=Role.AUDITOR))
    change(date(2027, 11, 1), basis="列入决定书 晋人社罚〔2024〕1号")
    with pytest.raises(BenefitsError, match="列入期限至 2027-11-01，移出日期 2026-11-30 尚未期满"):
        propose(entry, officer, reason="expired", note="")
    shortened = change(date(2026, 11, 1))  # a reconsideration shortened it: ended by DAY
    assert shortened.until == Blacklist.objects.get(pk=entry.pk).until == date(2026, 11, 1)
    events = list(AuditEvent.objects.filter(action="blacklist.period_changed").order_by("seq"))
    assert [(e.before, e.after) for e in events] == [
        ({"until": None}, {"until": "2027-11-01", "previous_until": None, "basis": "列入决定书 晋人社罚〔2024〕1号"}),
        ({"until": "2027-11-01"}, {"until": "2026-11-01", "previous_until": "2027-11-01", "basis": "晋人社复〔2026〕7号"}),
    ]  # fmt: skip
    propose(entry, officer, reason="expired", note="")
    with pytest.raises(BenefitsError, match="移出正在等待审批：请先审批、驳回或撤回，再变更列入期限"):
        change(date(2028, 11, 1))
    blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    with pytest.raises(BenefitsError, match="已移出，不能变更列入期限"):
        change(date(2028, 11, 1))
    labels = [step.label for step in blacklist_history(entry)]
    assert labels == ["变更列入期限", "变更列入期限", "提出移出黑名单（待审批）", "审批通过移出黑名单"]
    # lifted: the history says so rather than showing nothing
    open_again: Any = blacklist_entry(RecipientFactory(), since=date(2024, 11, 1), until=date(2027, 1, 1))
    blacklist_period_change(entry_id=open_again.pk, until=None, basis="复议决定", user=officer, now=NOW)
    (step,) = blacklist_history(open_again)
    assert step.details[0] == ("列入期限", "未定期限") and ("原列入期限", "2027-11-01") not in step.details
    assert ("原列入期限", "2027-01-01") in step.details and ("变更依据", "复议决定") in step.details


# --- 信用修复 and the fraud case ----------------------------------------------------------------------


def test_credit_repair_needs_the_fraud_case_settled_other_reasons_do_not(officer: Any, second: Any) -> None:
    """信用修复 is the listed party putting the breach right: the fine decided and paid in full and
    the money obtained back (the case's recovery case recovered). Until then it is refused, naming
    what is missing; removal for another reason (复议撤销, 错误列入, 列入期满) is not held by it.
    Checked again when the checker approves."""
    person = RecipientFactory()
    recovery: Any = recovery_case(person, amount="3000.00")
    case: Any = fraud_case(person, amount="3000.00", recovery=recovery)
    entry: Any = blacklist_entry(person, fraud=case)

    def repair() -> Any:
        return propose(entry, officer, reason="credit_repaired", note="已退回并缴清罚款")

    with pytest.raises(
        BenefitsError,
        match=rf"关联的欺诈案件 #{case.pk} 尚未了结：尚未作出处罚决定；追回案件 #{recovery.pk} 尚有 3,000.00 元未追回",
    ):
        repair()
    fraud_case_fine(case_id=case.pk, fine=Decimal("6000.00"), user=officer, now=NOW)
    fraud_case_collect(case_id=case.pk, amount=Decimal("1000.00"), user=officer, now=NOW)
    with pytest.raises(BenefitsError, match=r"罚款尚有 5,000\.00 元未缴；追回案件"):
        repair()
    fraud_case_collect(case_id=case.pk, amount=Decimal("5000.00"), user=officer, now=NOW)
    with pytest.raises(
        BenefitsError, match=r"尚未了结：追回案件 #\d+ 尚有 3,000.00 元未追回。信用修复须在退回"
    ):
        repair()
    RecoveryCase.objects.filter(pk=recovery.pk).update(
        status=RecoveryStatus.WRITTEN_OFF, recovered=Decimal("500.00"), write_off_by=officer,
        write_off_approved_by=second,
    )  # fmt: skip
    with pytest.raises(BenefitsError, match=r"已核销 2,500\.00 元，款项未退回"):
        repair()
    RecoveryCase.objects.filter(pk=recovery.pk).update(
        status=RecoveryStatus.RECOVERED, recovered=Decimal("3000.00")
    )
    fraud_case_close(case_id=case.pk, user=officer, now=NOW)
    repair()
    # A fine paid back in the meantime (say, a correction): the approval checks again.
    type(case).objects.filter(pk=case.pk).update(fine_collected=Decimal("0.00"))
    with pytest.raises(BenefitsError, match=r"罚款尚有 6,000\.00 元未缴"):
        blacklist_removal_decide(entry_id=entry.pk, approve=True, user=second, now=NOW)
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.REMOVAL_PROPOSED
    # Another reason is not held by the case: a listing set aside on review ends whatever is owed.
    other_person = RecipientFactory()
    unsettled: Any = blacklist_entry(other_person, fraud=fraud_case(other_person))
    propose(unsettled, officer, reason="revoked", note="复议撤销")
    blacklist_removal_decide(entry_id=unsettled.pk, approve=True, user=second, now=NOW)
    assert Blacklist.objects.get(pk=unsettled.pk).status == BlacklistStatus.REMOVED


def test_credit_repair_of_a_dismissed_case_or_an_entry_without_a_case(officer: Any) -> None:
    """A dismissed case (不予处罚) owes no fine; an entry linked to no case has nothing to check
    here (the note says how the breach was put right)."""
    person = RecipientFactory()
    case: Any = fraud_case(person)
    fraud_case_dismiss(case_id=case.pk, reason="证据不足", user=officer, now=NOW)
    propose(blacklist_entry(person, fraud=case), officer, reason="credit_repaired", note="不予处罚")
    propose(
        blacklist_entry(RecipientFactory()),
        officer,
        reason="credit_repaired",
        note="已退回全部款项并缴清罚款",
    )
    assert Blacklist.objects.filter(status=BlacklistStatus.REMOVAL_PROPOSED).count() == 2


def test_migration_0009_refuses_to_go_back_while_a_removal_is_proposed_or_approved(officer: Any) -> None:
    import importlib

    from django.apps import apps

    step = importlib.import_module("zige.benefits.migrations.0009_blacklist_removal").refuse_removals
    entry: Any = blacklist_entry(RecipientFactory())
    step(apps, None)  # nothing removed: going back is fine
    propose(entry, officer)
    with pytest.raises(RuntimeError, match=rf"#{entry.pk} removal_proposed"):
        step(apps, None)
