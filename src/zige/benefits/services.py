"""Payment actions and cases (writes).

- Payment actions 待遇处理 (notice 二(二), 三(一)3–4; docs/rules.md §5): proposed by a run
  (`payment_actions_for_run`, inside the run's transaction; the officer who started the run is
  their proposer, the maker), by a verification or an overdue task
  (`payment_action_propose`, called by zige.verification) or by a person; approved by a second
  person (maker-checker, in `payment_action_approve` and by the constraint
  `action_maker_is_not_checker`); exported to the payment system (`export_batch_create`);
  confirmed (`export_batch_confirm`). A wrong action is undone by a reversal
  (`payment_action_reverse`): a new action that goes through approval and export itself.
- Recovery 追回 (notice 二(二) 死亡次月停发): an approved stop with months paid after the death
  opens a `RecoveryCase`; payments are recorded until it is recovered, or it is written off by two
  people. A stop reversed after money was recovered owes it back (返还: `recovery_refund_record`
  by one officer, `recovery_refund_decide` by another).
- Fraud 冒领 (notice 四(二)): `fraud_case_open`, a fine of 2 to 5 times the amount obtained
  (`fraud_case_fine`), 黑名单 (`blacklist_add`; removed — 移出 — by one officer's proposal
  `blacklist_removal_propose` approved by another, `blacklist_removal_decide`, or withdrawn by its
  maker, `blacklist_removal_withdraw`; its period changed by `blacklist_period_change`), referral to the
  judicial authorities (`fraud_case_refer`).

Every state change follows a transition table and is audited in the same transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from zige.accounts.models import Role, User
from zige.audit.services import audit_record
from zige.benefits.limits import MONEY_LIMIT, beyond_limits
from zige.benefits.models import (
    APPROVED_STATES,
    CURRENT_BLACKLIST_STATES,
    LIVE_STATES,
    OPEN_FRAUD_STATES,
    OPEN_STATES,
    REVERSED_STATUSES,
    SINGLE_KINDS,
    ActionKind,
    ActionSource,
    ActionState,
    BatchState,
    Blacklist,
    BlacklistStatus,
    ExportBatch,
    ExportLine,
    FraudCase,
    FraudStatus,
    PaymentAction,
    RecoveryCase,
    RecoveryPayment,
    RecoveryStatus,
    RemovalReason,
    SubjectType,
)
from zige.engine.labels import REJECT_REASON_ZH
from zige.feeds import store
from zige.ids import IdError, normalise_id
from zige.roster.models import Recipient, Unit
from zige.rules import payment_amount, to_fen
from zige.spreadsheet import formula_safe

FEN = Decimal("0.01")
# The key of `Run.summary` that holds what the run proposed and revised (`payment_actions_for_run`).
RUN_ACTIONS_KEY = "payment_actions"


class BenefitsError(ValueError):
    """A refused change (shown to the user as it is). `code` names the kind of refusal where a
    caller counts them (批量审批: `BulkApproval.refusals`); empty for the others."""

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Transition tables


ACTION_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (ActionState.PROPOSED, ActionState.APPROVED),
        (ActionState.PROPOSED, ActionState.REJECTED),
        (ActionState.PROPOSED, ActionState.WITHDRAWN),
        (ActionState.APPROVED, ActionState.EXPORTED),
        (ActionState.EXPORTED, ActionState.CONFIRMED),
        (ActionState.EXPORTED, ActionState.APPROVED),  # its batch was voided: back in the pool
    }
)

BATCH_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {(BatchState.EXPORTED, BatchState.CONFIRMED), (BatchState.EXPORTED, BatchState.VOID)}
)

RECOVERY_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (RecoveryStatus.OPEN, RecoveryStatus.NOTIFIED),
        (RecoveryStatus.NOTIFIED, RecoveryStatus.NOTIFIED),  # a new debtor or contact
        (RecoveryStatus.REPAYING, RecoveryStatus.REPAYING),  # another instalment
        (RecoveryStatus.OPEN, RecoveryStatus.REPAYING),
        (RecoveryStatus.NOTIFIED, RecoveryStatus.REPAYING),
        (RecoveryStatus.OPEN, RecoveryStatus.RECOVERED),
        (RecoveryStatus.NOTIFIED, RecoveryStatus.RECOVERED),
        (RecoveryStatus.REPAYING, RecoveryStatus.RECOVERED),
        (RecoveryStatus.OPEN, RecoveryStatus.WRITE_OFF_PROPOSED),
        (RecoveryStatus.NOTIFIED, RecoveryStatus.WRITE_OFF_PROPOSED),
        (RecoveryStatus.REPAYING, RecoveryStatus.WRITE_OFF_PROPOSED),
        (RecoveryStatus.WRITE_OFF_PROPOSED, RecoveryStatus.WRITTEN_OFF),  # approved by another person
        (RecoveryStatus.OPEN, RecoveryStatus.CANCELLED),  # its stop was reversed
        (RecoveryStatus.NOTIFIED, RecoveryStatus.CANCELLED),
        # Its stop was reversed after the write-off, nothing recovered: a reversed stop's debt is
        # never written off (nobody owed it), so the write-off is undone with the case.
        (RecoveryStatus.WRITTEN_OFF, RecoveryStatus.CANCELLED),
    }
)

# The refusal of a pending write-off, back to where the case was: its own step, taken only by
# `recovery_case_write_off_decide` (a second person, audited `write_off_refused`). Not in
# `RECOVERY_TRANSITIONS`, so that no other step — a notice, a repayment — can end a pending
# write-off without its checker.
WRITE_OFF_REFUSALS: frozenset[tuple[str, str]] = frozenset(
    {
        (RecoveryStatus.WRITE_OFF_PROPOSED, RecoveryStatus.OPEN),
        (RecoveryStatus.WRITE_OFF_PROPOSED, RecoveryStatus.NOTIFIED),
        (RecoveryStatus.WRITE_OFF_PROPOSED, RecoveryStatus.REPAYING),
    }
)

# 返还: a stop reversed after money was recovered owes that money back. Entered when the reversal is
# approved (`_recovery_case_cancel_for`: from any status with money recovered, a pending write-off
# excepted — the reversal waits for it); then recorded by one officer and approved or rejected by
# another (`recovery_refund_record`, `recovery_refund_decide`). Its own table: no other step (a
# repayment, a notice, a write-off) moves a case into or out of these states.
REFUND_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (RecoveryStatus.OPEN, RecoveryStatus.REFUND_DUE),
        (RecoveryStatus.NOTIFIED, RecoveryStatus.REFUND_DUE),
        (RecoveryStatus.REPAYING, RecoveryStatus.REFUND_DUE),
        (RecoveryStatus.RECOVERED, RecoveryStatus.REFUND_DUE),
        (RecoveryStatus.WRITTEN_OFF, RecoveryStatus.REFUND_DUE),  # the part recovered before the write-off
        (RecoveryStatus.REFUND_DUE, RecoveryStatus.REFUND_RECORDED),  # the maker records the refund
        (RecoveryStatus.REFUND_RECORDED, RecoveryStatus.REFUNDED),  # another person approves
        (RecoveryStatus.REFUND_RECORDED, RecoveryStatus.REFUND_DUE),  # another person rejects
    }
)

FRAUD_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (FraudStatus.OPEN, FraudStatus.FINED),
        (FraudStatus.OPEN, FraudStatus.DISMISSED),
        (FraudStatus.FINED, FraudStatus.CLOSED),
    }
)

# 移出黑名单: one officer proposes the removal, another approves it or rejects it with a reason
# (back in the list). A removed entry stays in the record; nothing leaves 已移出.
BLACKLIST_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (BlacklistStatus.LISTED, BlacklistStatus.REMOVAL_PROPOSED),  # the maker proposes
        (BlacklistStatus.REMOVAL_PROPOSED, BlacklistStatus.REMOVED),  # another person approves
        (BlacklistStatus.REMOVAL_PROPOSED, BlacklistStatus.LISTED),  # another rejects, or its maker withdraws
    }
)

ACTION_STATE_ZH = dict(ActionState.choices)
BLACKLIST_STATUS_ZH = dict(BlacklistStatus.choices)
REMOVAL_REASON_ZH = dict(RemovalReason.choices)
RECOVERY_STATUS_ZH = dict(RecoveryStatus.choices)
FRAUD_STATUS_ZH = dict(FraudStatus.choices)
BATCH_STATE_ZH = dict(BatchState.choices)


def _check(table: frozenset[tuple[str, str]], old: str, new: str, labels: dict[str, str]) -> None:
    if (old, new) not in table:
        raise BenefitsError(
            f"状态不能从“{labels.get(old, old)}”变为“{labels.get(new, new)}”", code="transition"
        )


def _require_bureau(user: Any) -> None:
    if getattr(user, "role", "") not in (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR):
        raise BenefitsError("只有社保局经办人员可以办理待遇业务")


def _money(value: Decimal | int | str | None, what: str = "金额") -> Decimal:
    try:
        amount = Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite():
        raise BenefitsError(f"{what}不是有效的数字")
    if abs(amount) >= MONEY_LIMIT:  # also keeps quantize() from raising on 1e999
        raise BenefitsError(f"{what}超出允许范围（不超过 14 位整数）")
    if amount != amount.quantize(FEN, rounding=ROUND_HALF_UP):
        raise BenefitsError(f"{what}最多两位小数（元、角、分）")
    return amount.quantize(FEN)


def _not_after_day_recorded(day: date, *, label: str, now: datetime, why: str) -> None:
    """Dates an officer types for something that has already happened (a repayment received, a
    notice sent, a referral, a blacklist decision) may not be after the day they are recorded:
    the local date (China time) of the `now` the service is given, never the clock."""
    today = timezone.localdate(now)
    if day > today:
        raise BenefitsError(f"{label}（{day:%Y-%m-%d}）不能晚于登记当天（{today:%Y-%m-%d}）：{why}")


def _check_month(month: str) -> str:
    month = (month or "").strip()
    ok = len(month) == 7 and month[4] == "-" and month[:4].isdigit() and month[5:].isdigit()
    if not ok or not 1 <= int(month[5:]) <= 12:
        raise BenefitsError(f"生效月份应为 YYYY-MM，不是 {month!r}")
    return month


def _action_snapshot(action: PaymentAction) -> dict[str, Any]:
    return {
        "recipient": action.recipient_id, "kind": action.kind, "effective_month": action.effective_month,
        "months": action.months, "amount": action.amount, "source": action.source, "state": action.state,
        "source_ref": action.source_ref, "reverses": action.reverses_id, "figures_note": action.figures_note,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Payment actions


def _live_action(*, recipient_id: int, kind: str, effective_month: str) -> PaymentAction | None:
    return (
        PaymentAction.objects.filter(
            recipient_id=recipient_id,
            kind=kind,
            effective_month=effective_month,
            state__in=LIVE_STATES,
            reverses__isnull=True,
        )
        .order_by("pk")
        .first()
    )


def _stop_or_suspend_in_force(*, recipient_id: int, kind: str) -> PaymentAction | None:
    """The person's stop, suspension or resume that a new one of the same kind would duplicate
    (rules §8.6): one on its way (proposed, approved, exported; for stops and suspensions also
    `one_open_stop_or_suspend_per_person`), or — for a stop or a resume — a confirmed one of the
    person's current roster state that no approved reversal undid (as the runs see it,
    `payment_actions_for_run`'s `blocked`). A resume's month moves with the day it is proposed
    (the month after), so a second one in another month is not caught by the same-month check:
    two would pay the same back pay (补发) twice."""
    if kind not in (*SINGLE_KINDS, ActionKind.RESUME):
        return None
    rows = PaymentAction.objects.filter(recipient_id=recipient_id, kind=kind, reverses__isnull=True)
    open_one = rows.filter(state__in=OPEN_STATES).order_by("pk").first()
    if open_one is not None or kind == ActionKind.SUSPEND:
        return open_one
    confirmed = (
        rows.filter(state=ActionState.CONFIRMED)
        .exclude(reversals__state__in=APPROVED_STATES)
        .order_by("-proposed_at", "-pk")
        .first()
    )
    if confirmed is None:
        return None
    start = _roster_state_starts({recipient_id}).get(recipient_id, (None, None))
    return confirmed if _of_current_state(confirmed.proposed_at, start) else None


def _describe(action: PaymentAction) -> str:
    figures = f"生效月份 {action.effective_month}"
    if action.months is not None:
        figures += f"，{action.months} 个月"
    if action.amount is not None:
        figures += f"，{action.amount:,.2f} 元"
    return f"{ActionKind(action.kind).label} #{action.pk}（{figures}，{ACTION_STATE_ZH[action.state]}）"


def _revise_figures(
    action: PaymentAction,
    *,
    effective_month: str,
    months: int | None,
    amount: Decimal | None,
    monthly: Decimal | None,
    monthly_fixed: bool = True,
) -> dict[str, Any] | None:
    """Bring a proposal still awaiting approval to newer figures (rules §8.6): the one step shared
    by a run's revision (`payment_action.revised_by_run`) and a finding's
    (`payment_action.revised_by_finding`). Sets the figures on the (locked) row and returns the
    revision's record, figures before and after, for the caller's audit event; None when the
    figures are the same. The caller saves the row (`REVISED_FIELDS`). The 月养老金 the new
    figures were calculated from (`monthly`; `monthly_fixed` False: not known) is kept with them.
    A checker's approval sent with the figures from before (`PaymentAction.figures`) is refused
    from then on (`payment_action_approve`)."""
    if action.state != ActionState.PROPOSED or action.reverses_id is not None:
        raise BenefitsError(f"{_describe(action)}不在待审批状态，不能更新（已审批的请撤销后重新提出）")
    before = (action.effective_month, action.months, action.amount)
    if before == (effective_month, months, amount):
        return None
    action.effective_month, action.months, action.amount = effective_month, months, amount
    action.monthly_amount, action.monthly_fixed = (monthly, True) if monthly_fixed else (None, False)
    return {
        "action": action.pk, "recipient": action.recipient_id, "kind": action.kind,
        "before": {"effective_month": before[0], "months": before[1], "amount": before[2]},
        "after": {"effective_month": effective_month, "months": months, "amount": amount},
    }  # fmt: skip


# The fields `_revise_figures` sets.
REVISED_FIELDS = ["effective_month", "months", "amount", "monthly_amount", "monthly_fixed"]


# Proposals that follow a finding (rules §8.6): those whose figures a system path computed — a run,
# a verification, an overdue task. An officer's own proposal (`manual`) is the officer's to change.
FOLLOWS_FINDING = (ActionSource.RUN, ActionSource.VERIFICATION, ActionSource.OVERDUE)


def payment_action_propose(
    *,
    recipient: Recipient,
    kind: str,
    effective_month: str,
    months: int | None,
    amount: Decimal | None,
    source: str,
    source_ref: str,
    proposed_by: Any | None,
    now: datetime,
    note: str = "",
    figures_note: str = "",
) -> PaymentAction:
    """Propose stop / suspend / resume for a person (docs/rules.md §5). Idempotent: while a
    live action (proposed, approved, exported, confirmed) exists for the same person, kind and
    month, it is returned and nothing is written — except that a finding's stop adopts a stop of
    that month still proposed by a run, a verification or a task (below). `proposed_by=None`
    means the system.

    One stop and one suspension per person (rules §8.6, docs/payments.md): while the person has
    one on its way (proposed, approved, exported) — or a confirmed stop of the current roster
    state — in another month, a second of the same kind is not created. A person's proposal
    (source `manual`) is refused with a message naming the action in force; a verification's or
    an overdue task's is answered with the action in force, and the figures it brought are kept
    in the audit trail (`payment_action.proposal_declined`) for the officer to compare.

    A finding (source `verification`: a unit's report approved by the bureau, the bureau's
    疑点核查 finding) that establishes a loss is the newest fact about it (rules §8.6): when the
    stop in force — of another month or the same — is still awaiting approval and was proposed
    by a run, a verification or a task,
    it is revised to the finding's month, months, amount and reference instead, its proposer
    becoming the finding's officer (`_follow_finding`, `payment_action.revised_by_finding`) —
    except that a unit's report never revises the stop of the bureau's 疑点核查 finding
    (`_outranked`: declined as below); a
    still-proposed suspension of such a source is withdrawn, the stop supersedes it
    (`_supersede_suspension`, `payment_action.superseded_by_finding`). An approved, exported or
    confirmed stop, and an officer's own proposal, are declined as above.

    The figures are checked against the rules (§5, `_check_figures`): the amount is months ×
    the person's 月养老金, whatever the source; an officer's months are those the rules give from
    the effective month as of today. An officer may propose other figures only with a written
    reason (`figures_note`: kept with the action, audited, shown to the checker)."""
    if kind not in ActionKind.values:
        raise BenefitsError(f"未知的待遇处理类型 {kind!r}")
    if source not in ActionSource.values or source == ActionSource.REVERSAL:
        raise BenefitsError(f"未知的来源 {source!r}")
    if proposed_by is not None:
        _require_bureau(proposed_by)
    month = _check_month(effective_month)
    if months is not None and months < 0:
        raise BenefitsError("月数不能为负数")
    if why := beyond_limits(months=months, amount=None):
        raise BenefitsError(why)
    money = None if amount is None else _money(amount)
    if money is not None and money < 0:
        raise BenefitsError("金额不能为负数")
    money, calculated = _check_figures(
        recipient=recipient, kind=kind, month=month, months=months, amount=money, source=source,
        figures_note=figures_note, now=now,
    )  # fmt: skip
    finding = source == ActionSource.VERIFICATION and kind == ActionKind.STOP
    with transaction.atomic():
        action = _propose_or_answer(
            recipient=recipient, kind=kind, month=month, months=months, amount=money, source=source,
            source_ref=source_ref, proposed_by=proposed_by, now=now, note=note,
            figures_note=figures_note.strip() if source == ActionSource.MANUAL else "", calculated=calculated,
        )  # fmt: skip
        if finding:
            _supersede_suspension(recipient_id=recipient.pk, stop=action, user=proposed_by, now=now)
    return action


def _yuan(value: Decimal | None) -> str:
    return "空（按 0 计）" if value is None else f"{to_fen(value):,.2f} 元"


def _check_figures(
    *,
    recipient: Recipient,
    kind: str,
    month: str,
    months: int | None,
    amount: Decimal | None,
    source: str,
    figures_note: str,
    now: datetime,
) -> tuple[Decimal | None, dict[str, Any]]:
    """The figures of a proposal against the rules (docs/rules.md §5): `amount = months × 月养老金`
    (the person's current monthly amount, Decimal, half-up to fen; an empty one counts as 0) for
    every source; for an officer's proposal (`manual`) also the months — and a resume's effective
    month — the rules give from the effective month as of today (China time; pensions are paid in
    advance through the current month). A system path (a verification, an overdue task) computes
    its figures with the same rules, so a difference there is a fault and is refused. An officer
    may propose other figures only with a written reason (`figures_note`). Returns the amount
    (an officer's empty amount becomes the calculated one) and the calculation, for the audit."""
    manual = source == ActionSource.MANUAL
    monthly = recipient.monthly_amount
    problems: list[str] = []
    expected_months: int | None = None
    if manual:
        if months is None:
            raise BenefitsError("请填写月数（停发、暂停发放为生效月起已多发的月数，恢复发放为补发月数）")
        today = timezone.localdate(now)
        from zige.benefits.selectors import rule_figures

        rule = rule_figures(recipient=recipient, kind=kind, effective_month=month, as_of=today)
        if rule is not None:
            expected_months = rule.months
            if rule.effective_month != month:
                problems.append(
                    f"生效月份按规则应为 {rule.effective_month}（截至 {today:%Y-%m-%d} 认证的次月）"
                )
            if rule.months != months:
                problems.append(
                    f"月数按规则应为 {rule.months} 个月（生效月份 {month}，截至 {today:%Y-%m}；养老金按月预发至当月）"
                )
    calculated = None if months is None else _money(payment_amount(months, monthly), "计算金额")
    if manual and amount is None:
        amount = calculated
    if calculated is not None and amount is not None and amount != calculated:
        problems.append(
            f"金额应为 {months} 个月 × 月养老金 {_yuan(monthly)} = {calculated:,.2f} 元，填写的是 {amount:,.2f} 元"
        )
    record = {
        "monthly_amount": monthly, "months": expected_months, "amount": calculated,
        "differs": problems, "as_of": timezone.localdate(now).isoformat(),
    }  # fmt: skip
    if problems and not (manual and figures_note.strip()):
        text = "；".join(problems)
        if manual:
            raise BenefitsError(
                f"{text}。请按计算结果填写；确需按其他月数或金额办理的，请在“与计算不符的说明”中写明理由"
            )
        raise BenefitsError(f"待遇处理的金额与计算不符（金额 = 月数 × 月养老金）：{text}")
    return amount, record


def _propose_or_answer(
    *,
    recipient: Recipient,
    kind: str,
    month: str,
    months: int | None,
    amount: Decimal | None,
    source: str,
    source_ref: str,
    proposed_by: Any | None,
    now: datetime,
    note: str,
    figures_note: str = "",
    calculated: dict[str, Any] | None = None,
) -> PaymentAction:
    """`payment_action_propose` once its input is checked: the live action of that month, the
    one in force answering (revised by a finding, or declining), or a new proposal."""
    answer = _Proposed(
        recipient=recipient, kind=kind, month=month, months=months, amount=amount, source=source,
        source_ref=source_ref, proposed_by=proposed_by, now=now,
    )  # fmt: skip
    existing = _live_action(recipient_id=recipient.pk, kind=kind, effective_month=month)
    if existing is not None:
        return _answer_same_month(existing, answer)
    try:
        with transaction.atomic():
            in_force = _stop_or_suspend_in_force(recipient_id=recipient.pk, kind=kind)
            if in_force is not None:
                return _answer_in_force(in_force, answer)
            action = PaymentAction.objects.create(
                recipient=recipient, unit_id=recipient.unit_id, kind=kind, effective_month=month, months=months,
                amount=amount, source=source, source_ref=source_ref[:100], note=note, figures_note=figures_note,
                monthly_amount=recipient.monthly_amount, monthly_fixed=True, proposed_by=proposed_by, proposed_at=now,
            )  # fmt: skip
            audit_record(
                actor=proposed_by, action="payment_action.proposed", target_type="payment_action",
                target_id=action.pk, after={**_action_snapshot(action), "calculated": calculated}, at=now,
            )  # fmt: skip
    except IntegrityError:
        # Another transaction proposed the same action (or one of the same kind) first: it is the one.
        existing = _live_action(recipient_id=recipient.pk, kind=kind, effective_month=month)
        if existing is not None:
            return _answer_same_month(existing, answer)
        in_force = _stop_or_suspend_in_force(recipient_id=recipient.pk, kind=kind)
        if in_force is None:
            raise
        with transaction.atomic():
            return _answer_in_force(in_force, answer)
    return action


@dataclass(frozen=True)
class _Proposed:
    """What a proposal brought, for the action in force to answer (`_answer_in_force`)."""

    recipient: Recipient
    kind: str
    month: str
    months: int | None
    amount: Decimal | None
    source: str
    source_ref: str
    proposed_by: Any | None
    now: datetime


def _is_finding(proposal: _Proposed) -> bool:
    return proposal.source == ActionSource.VERIFICATION and proposal.kind == ActionKind.STOP


# The bureau's own 疑点核查 finding (确认死亡 / 疑似冒领, `review_resolve`): its stops carry this reference.
BUREAU_FINDING_REF = "review:"


def _outranked(in_force: PaymentAction, finding: _Proposed) -> bool:
    """Whether the stop in force comes from the bureau's 疑点核查 finding and this finding is not
    the bureau's (a unit's 丧失资格 report, `verification:N-k`): the bureau's finding outranks a
    unit's report (rules §8.6), whose stop is declined rather than revising it — a 疑似冒领's
    fraud case was opened for the bureau's figures. A later bureau finding is the newest fact
    and does revise an earlier one's stop."""
    return (
        in_force.source == ActionSource.VERIFICATION
        and in_force.source_ref.startswith(BUREAU_FINDING_REF)
        and not finding.source_ref.startswith(BUREAU_FINDING_REF)
    )


def _answer_same_month(existing: PaymentAction, answer: _Proposed) -> PaymentAction:
    """The live action of the proposal's own month: returned as it is (idempotent), except that a
    finding's stop adopts a stop of that month still awaiting approval from a run, a verification
    or a task (`_follow_finding`, rules §8.6) — else a later run that no longer decides "stop"
    would withdraw it, and a confirmed death would go unstopped."""
    adoptable = existing.state == ActionState.PROPOSED and existing.source in FOLLOWS_FINDING
    if not (_is_finding(answer) and adoptable):
        return existing
    with transaction.atomic():
        return _answer_in_force(existing, answer)


def _answer_in_force(in_force: PaymentAction, answer: _Proposed) -> PaymentAction:
    """The person already has a stop or suspension of this kind in force: a finding's stop
    revises it while it awaits approval (`_follow_finding`) unless it is a unit's report meeting
    the bureau's 疑点核查 finding (`_outranked`); anything else is declined."""
    if _is_finding(answer):
        # Locked before it is looked at: a checker approving at the same moment waits for the
        # finding, or has approved first and the finding is declined.
        in_force = _locked(PaymentAction, "待遇处理", in_force.pk)
        if (
            in_force.state == ActionState.PROPOSED
            and in_force.source in FOLLOWS_FINDING
            and not _outranked(in_force, answer)
        ):
            return _follow_finding(in_force, answer)
    return _decline(in_force, answer)


def _follow_finding(action: PaymentAction, finding: _Proposed) -> PaymentAction:
    """Revise a stop still awaiting approval to a finding's figures (rules §8.6), as a later run
    revises a run's proposal (`_revise_figures`). The proposal becomes the finding's: its source
    and reference, and its proposer the finding's officer — who made these figures and so may not
    approve them (maker-checker), while the officer who started the run that proposed the old
    figures may now check the new ones. A later run no longer revises or withdraws it (it is no
    longer a run's proposal). Audited in the same transaction (`payment_action.revised_by_finding`),
    also when only the source, reference or proposer change (a finding of the stop's own month
    and figures adopts it all the same); nothing when the finding is already the stop's."""
    ref = finding.source_ref[:100]
    maker_pk = getattr(finding.proposed_by, "pk", None)
    figures = {"effective_month": action.effective_month, "months": action.months, "amount": action.amount}
    change = _revise_figures(
        action, effective_month=finding.month, months=finding.months, amount=finding.amount,
        monthly=finding.recipient.monthly_amount,
    )  # fmt: skip
    if change is None:
        if (action.source, action.source_ref, action.proposed_by_id) == (finding.source, ref, maker_pk):
            return action  # the same finding again: nothing to revise
        change = {"action": action.pk, "recipient": action.recipient_id, "kind": action.kind,
                  "before": dict(figures), "after": dict(figures)}  # fmt: skip

    def origin() -> dict[str, Any]:
        maker = action.proposed_by
        return {"source": action.source, "source_ref": action.source_ref,
                "proposed_by": maker.username if maker is not None else None}  # fmt: skip

    change["before"].update(origin())
    action.source, action.source_ref = finding.source, ref
    action.proposed_by = finding.proposed_by
    action.save(update_fields=[*REVISED_FIELDS, "source", "source_ref", "proposed_by"])
    change["after"].update(origin())
    audit_record(
        actor=finding.proposed_by, action="payment_action.revised_by_finding", target_type="payment_action",
        target_id=action.pk, before=change["before"],
        after={**change["after"], "recipient": finding.recipient.pk}, at=finding.now,
    )  # fmt: skip
    return action


def _supersede_suspension(*, recipient_id: int, stop: PaymentAction, user: Any | None, now: datetime) -> None:
    """A finding established a loss (a stop is on its way): a suspension or a resume (补发) of the
    person still awaiting approval is withdrawn — nobody is suspended after they are stopped, and
    nobody found dead is paid back pay through today's month (rules §8.6; what the estate may be
    owed for the months before the death is the payment office's to propose). Only one a run, a
    verification or a task proposed (`_withdraw_proposed`); an approved or exported one is left to
    the officer (it is reversed, if at all, through the correction path). Audited
    `payment_action.superseded_by_finding`, with the stop that supersedes it."""
    if stop.kind != ActionKind.STOP or stop.state not in LIVE_STATES:
        return
    for kind, reason in (
        (ActionKind.SUSPEND, f"核实结论确认丧失资格，由停发 #{stop.pk} 取代"),
        (ActionKind.RESUME, f"核实结论确认丧失资格，不再按认证批次补发，由停发 #{stop.pk} 取代"),
    ):
        _withdraw_proposed(
            recipient_id=recipient_id, kind=kind, user=user, now=now, event="superseded_by_finding",
            reason=reason, detail={"superseded_by": stop.pk},
        )  # fmt: skip


def _withdraw_proposed(
    *, recipient_id: int, kind: str, user: Any | None, now: datetime, event: str, reason: str,
    detail: dict[str, Any],
) -> list[PaymentAction]:  # fmt: skip
    """Withdraw the person's actions of `kind` still awaiting approval that a run, a verification
    or a task proposed (`FOLLOWS_FINDING`; an officer's own is the officer's to withdraw, a
    reversal is not touched), because a finding made them wrong. Each is locked, closed by
    `user` with `reason`, and audited `payment_action.<event>` with `detail`, in the caller's
    transaction. Returns them, oldest first."""
    pending = PaymentAction.objects.select_for_update().filter(
        recipient_id=recipient_id, kind=kind, state=ActionState.PROPOSED,
        source__in=FOLLOWS_FINDING, reverses__isnull=True,
    )  # fmt: skip
    withdrawn = []
    for action in pending.order_by("pk"):
        _set_action_state(
            action, ActionState.WITHDRAWN, actor=user, now=now, event=event,
            fields={"closed_by": user, "closed_at": now, "close_reason": reason},
            detail={"reason": reason, **detail, "effective_month": action.effective_month,
                    "months": action.months, "amount": action.amount},
        )  # fmt: skip
        withdrawn.append(action)
    return withdrawn


def payment_stops_withdraw_alive(
    *, recipient_id: int, task_id: int, found_on: date, user: Any, now: datetime
) -> list[PaymentAction]:
    """The bureau found the person alive (确认健在 on review task `task_id`, docs/rules.md §8.5):
    every stop of the person still awaiting approval that a run, a verification or a task
    proposed is withdrawn — approving it would stop a living person and open a recovery case.
    Audited `payment_action.withdrawn_by_finding` with the task, in the caller's transaction (the
    finding's). An approved or exported stop is left to the correction path (撤销, a reversal):
    the finding page names it (`selectors.stops_left_to_correction`). Returns the withdrawn."""
    _require_bureau(user)
    reason = f"疑点核查任务 #{task_id} 于 {found_on.isoformat()} 确认健在，撤回待审批的停发"
    with transaction.atomic():
        return _withdraw_proposed(
            recipient_id=recipient_id, kind=ActionKind.STOP, user=user, now=now, event="withdrawn_by_finding",
            reason=reason, detail={"review_task": task_id, "found_on": found_on.isoformat()},
        )  # fmt: skip


def payment_suspensions_withdraw_reported(
    *, recipient_id: int, task_id: int, confirmed_on: date, user: Any, now: datetime
) -> list[PaymentAction]:
    """The unit reported late on an overdue task and the bureau approved 具备资格 (task
    `task_id`): the suspension the overdue task proposed (`overdue:<task_id>`, notice 三(一)4:
    长期联系不到) still awaiting approval has lost its ground — approving it would suspend a
    person just confirmed eligible. It is withdrawn in the caller's transaction (the approval's),
    closed by `user`, audited `payment_action.withdrawn_by_report`. An approved or exported one is
    left to the correction path (撤销). Returns the withdrawn."""
    _require_bureau(user)
    reason = f"单位核实任务 #{task_id} 于 {confirmed_on.isoformat()} 确认具备领取资格（经审核），撤回逾期时提出的暂停发放"
    with transaction.atomic():
        pending = PaymentAction.objects.select_for_update().filter(
            recipient_id=recipient_id, kind=ActionKind.SUSPEND, state=ActionState.PROPOSED,
            source=ActionSource.OVERDUE, source_ref=f"overdue:{task_id}", reverses__isnull=True,
        )  # fmt: skip
        withdrawn = []
        for action in pending.order_by("pk"):
            _set_action_state(
                action, ActionState.WITHDRAWN, actor=user, now=now, event="withdrawn_by_report",
                fields={"closed_by": user, "closed_at": now, "close_reason": reason},
                detail={"reason": reason, "task": task_id, "confirmed_on": confirmed_on.isoformat(),
                        "effective_month": action.effective_month, "months": action.months,
                        "amount": action.amount},
            )  # fmt: skip
            withdrawn.append(action)
    return withdrawn


def payment_suspensions_withdraw_certified(
    *, task_ids: list[int], run_id: int, now: datetime
) -> list[PaymentAction]:
    """Run `run_id` certified the people of the unit tasks `task_ids` (eligible) and closed the
    tasks: the suspensions their overdue sweep proposed (`overdue:<task>`) still awaiting approval
    have lost their ground (no report in time: the person is certified) and are withdrawn by the
    system in the caller's transaction (the run's), each audited
    `payment_action.withdrawn_by_certification` with the run and the task. An approved or exported one is
    left to the correction path. Returns the withdrawn."""
    refs = [f"overdue:{pk}" for pk in task_ids]
    withdrawn: list[PaymentAction] = []
    from zige.feeds.store import in_lists

    for chunk in in_lists(refs):
        pending = PaymentAction.objects.select_for_update().filter(
            kind=ActionKind.SUSPEND, state=ActionState.PROPOSED, source=ActionSource.OVERDUE,
            source_ref__in=chunk, reverses__isnull=True,
        )  # fmt: skip
        for action in pending.order_by("pk"):
            reason = f"认证批次 #{run_id} 已确认具备资格，撤回核实逾期时提出的暂停发放"
            _set_action_state(
                action, ActionState.WITHDRAWN, actor=None, now=now, event="withdrawn_by_certification",
                fields={"closed_by": None, "closed_at": now, "close_reason": reason},
                detail={"reason": reason, "run": run_id, "task": int(action.source_ref.split(":", 1)[1]),
                        "effective_month": action.effective_month, "months": action.months,
                        "amount": action.amount},
            )  # fmt: skip
            withdrawn.append(action)
    return withdrawn


def _decline(in_force: PaymentAction, proposal: _Proposed) -> PaymentAction:
    """A second stop, suspension or resume for a person: refused for a person's proposal, answered
    with the action in force for a verification's or a task's (audited with the figures it brought)."""
    label = ActionKind(proposal.kind).label
    if proposal.source == ActionSource.MANUAL:
        raise BenefitsError(
            f"该人员已有{_describe(in_force)}，同一人只能有一项进行中的{label}；"
            f"如其月份或金额有误，请先驳回或撤回（已审批的请撤销）后再提出"
        )
    audit_record(
        actor=proposal.proposed_by, action="payment_action.proposal_declined", target_type="payment_action",
        target_id=in_force.pk,
        after={
            "recipient": proposal.recipient.pk, "kind": proposal.kind, "effective_month": proposal.month,
            "months": proposal.months, "amount": proposal.amount, "source": proposal.source,
            "source_ref": proposal.source_ref[:100], "in_force": in_force.pk,
            "in_force_effective_month": in_force.effective_month, "in_force_state": in_force.state,
        },
        at=proposal.now,
    )  # fmt: skip
    return in_force


_Row = TypeVar("_Row", PaymentAction, ExportBatch, RecoveryCase, FraudCase, Blacklist)


def _locked(model: type[_Row], label: str, pk: int) -> _Row:
    """The row, locked for the rest of the transaction (two officers acting at once queue here)."""
    try:
        return model.objects.select_for_update().get(pk=pk)
    except model.DoesNotExist:
        raise BenefitsError(f"{label} #{pk} 不存在", code="missing") from None


def _set_action_state(action: PaymentAction, new: str, *, actor: Any, now: datetime, event: str,
                      fields: dict[str, Any] | None = None, detail: dict[str, Any] | None = None) -> None:  # fmt: skip
    old = action.state
    _check(ACTION_TRANSITIONS, old, new, ACTION_STATE_ZH)
    action.state = new
    for name, value in (fields or {}).items():
        setattr(action, name, value)
    action.save(update_fields=["state", *(fields or {})])
    audit_record(
        actor=actor, action=f"payment_action.{event}", target_type="payment_action", target_id=action.pk,
        before={"state": old}, after={"state": new, **(detail or {})}, at=now,
    )  # fmt: skip


def payment_action_approve(
    *, action_id: int, user: Any, now: datetime, seen: str | None = None, bulk: bool = False
) -> PaymentAction:
    """Approve a proposed action. Maker-checker: the proposer can never approve (the database
    refuses it too). An approved stop with months paid after death opens a recovery case; an
    approved reversal of a stop cancels the recovery case that has nothing recovered yet.

    `seen`: the action's `figures` as the checker's page showed them; when a run or a finding
    has revised the proposal since (rules §8.6), nothing is approved and the checker looks again.

    `bulk`: the approval comes from the list's 批量审批, which shows neither the calculation nor
    the officer's reason: an action whose figures differ from the calculation
    (`PaymentAction.approve_one_by_one`) is refused (`ApproveOneByOne`, nothing written) and is
    approved only on its own page."""
    _require_bureau(user)
    with transaction.atomic():
        action = _locked(PaymentAction, "待遇处理", action_id)
        if action.state == ActionState.WITHDRAWN:
            # Say why (a run that holds the person's figures for review, one that no longer calls
            # for it, a finding, the proposer): the checker's page may predate the withdrawal.
            why = f"：{action.close_reason}" if action.close_reason else ""
            raise BenefitsError(f"待遇处理 #{action.pk} 已撤回，不能审批{why}", code="withdrawn")
        if action.proposed_by_id is not None and action.proposed_by_id == user.pk:
            if (
                action.source == ActionSource.RUN
                and action.run is not None
                and action.run.created_by_id == user.pk
            ):
                raise BenefitsError(
                    f"认证批次 #{action.run_id} 由您发起，其提出的待遇处理视为由您提出，需由另一名经办人员审批",
                    code="own",
                )
            if action.source == ActionSource.RUN:  # a later run of the officer's revised its figures
                raise BenefitsError(
                    f"待遇处理 #{action.pk} 的数字由您发起的认证批次更新，视为由您提出，需由另一名经办人员审批",
                    code="own",
                )
            raise BenefitsError("提出人不能审批自己提出的待遇处理（需由另一名经办人员审批）", code="own")
        if bulk and action.state == ActionState.PROPOSED and action.approve_one_by_one:
            raise ApproveOneByOne(_one_by_one_message(action))
        if action.reverses_id is not None and action.state == ActionState.PROPOSED:
            _refuse_reversal_while_write_off_pending(original_id=action.reverses_id)
        if seen is not None and action.state == ActionState.PROPOSED and seen != action.figures:
            # Runs revise their own proposals, findings revise into a verification's (rules §8.6).
            by = "最新核实结论" if action.source == ActionSource.VERIFICATION else "最新认证批次"
            raise BenefitsError(
                f"待遇处理 #{action.pk} 的生效月份、月数或金额已按{by}更新，请核对后再审批", code="revised"
            )
        _set_action_state(
            action, ActionState.APPROVED, actor=user, now=now, event="approved",
            fields={"approved_by": user, "approved_at": now},
        )  # fmt: skip
        if (
            action.reverses_id is None
            and action.kind == ActionKind.STOP
            and (action.months or 0) > 0
            and (action.amount or 0) > 0
        ):
            _recovery_case_open(action=action, now=now, actor=user)
        if action.reverses_id is not None:
            _recovery_case_cancel_for(original_id=action.reverses_id, now=now, actor=user)
    return action


class ApproveOneByOne(BenefitsError):
    """Bulk approval of an action whose figures differ from the calculation: approved only on
    its own page (the message names the action, its amount and the calculation)."""


def _one_by_one_message(action: PaymentAction) -> str:
    from zige.benefits.selectors import action_calculation

    calc = action_calculation(action)
    who = f"待遇处理 #{action.pk}（{action.recipient.name}）"
    if calc.differs and calc.amount is not None and action.amount is not None:
        basis = "按当前月养老金估算：" if calc.estimated else ""
        what = (
            f"金额 {action.amount:,.2f} 元与计算金额不符（{basis}{action.months} 个月 × 月养老金 "
            f"{_yuan(calc.monthly_amount)} = {calc.amount:,.2f} 元）"
        )
    elif calc.differs:
        what = "金额与计算金额不符（未填写月数）"
    else:
        what = "月数或生效月份与规则计算不符"
    return f"{who}：{what}，经办人已写明理由，须在该业务页面核对后逐笔审批"


# A bulk approval's refusals by `BenefitsError.code`, in the order the message counts them:
# `N 条<label>`. A refusal without a code is told with its own message.
BULK_REFUSAL_ZH: dict[str, str] = {
    "own": "为本人提出，需由另一名经办人员审批",
    "transition": "已被处理，不在待审批状态",
    "withdrawn": "已撤回（如最新认证批次的数字超出上限、已暂缓待人工复核），不能审批，原因见该业务页面",
    "revised": "的生效月份、月数或金额已按最新认证批次或核实结论更新，请核对后再逐笔审批",
    "write_off_pending": "为停发的撤销，其追回案件的核销正在等待审批",
    "missing": "已不存在",
}


@dataclass(frozen=True)
class BulkApproval:
    """What `payment_actions_approve_many` did: the ids approved; those refused, with the message
    (`refused`) and the kind of refusal (`refused_because`: own proposals, no longer proposed,
    revised since the list was shown, …; `BULK_REFUSAL_ZH`, "" for another); and those whose
    figures differ from the calculation, with a message each — left for approval on their page."""

    approved: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    refused_because: dict[int, str] = field(default_factory=dict)
    one_by_one: dict[int, str] = field(default_factory=dict)

    def refusals(self) -> list[tuple[int, str]]:
        """(count, Chinese reason) of each kind of refusal that happened, in `BULK_REFUSAL_ZH`'s
        order; those of no known kind are not counted here (`unexplained`)."""
        counts = Counter(self.refused_because.values())
        return [(counts[code], label) for code, label in BULK_REFUSAL_ZH.items() if counts[code]]

    def unexplained(self) -> list[str]:
        """The messages of the refusals of no known kind."""
        return [self.refused[pk] for pk, code in self.refused_because.items() if code not in BULK_REFUSAL_ZH]


def payment_actions_approve_many(
    *, action_ids: list[int], user: Any, now: datetime, seen: dict[int, str] | None = None
) -> BulkApproval:
    """Approve several proposals at once (批量审批), each exactly as `payment_action_approve`
    (maker-checker, audit, recovery case; `seen` the figures the list showed, by id). The ones
    refused (own proposals, no longer proposed, revised since the list was shown) are left as
    they are. So are actions whose figures differ from the calculation, kept with an officer's
    written reason (`approve_one_by_one`): the list shows neither the calculation nor the
    reason, so they are approved only on their own page; each gets a message, and nothing is
    audited for it (as for any refusal, nothing was written)."""
    _require_bureau(user)
    result = BulkApproval()
    for action_id in sorted(set(action_ids)):
        try:
            payment_action_approve(
                action_id=action_id, user=user, now=now, seen=(seen or {}).get(action_id), bulk=True
            )
        except ApproveOneByOne as exc:
            result.one_by_one[action_id] = str(exc)
        except BenefitsError as exc:
            result.refused[action_id] = str(exc)
            result.refused_because[action_id] = exc.code
        else:
            result.approved.append(action_id)
    return result


def payment_action_reject(*, action_id: int, user: Any, reason: str, now: datetime) -> PaymentAction:
    """Refuse a proposed action (by someone other than the proposer)."""
    _require_bureau(user)
    reason = (reason or "").strip()
    if not reason:
        raise BenefitsError("请填写驳回理由")
    with transaction.atomic():
        action = _locked(PaymentAction, "待遇处理", action_id)
        if action.proposed_by_id is not None and action.proposed_by_id == user.pk:
            raise BenefitsError("提出人不能驳回自己提出的待遇处理，请使用“撤回”")
        _set_action_state(
            action, ActionState.REJECTED, actor=user, now=now, event="rejected",
            fields={"closed_by": user, "closed_at": now, "close_reason": reason}, detail={"reason": reason},
        )  # fmt: skip
    return action


def payment_action_withdraw(*, action_id: int, user: Any, reason: str, now: datetime) -> PaymentAction:
    """The proposer takes back a proposal not yet decided. A system proposal has no proposer to
    take it back: it is rejected, with a reason."""
    _require_bureau(user)
    with transaction.atomic():
        action = _locked(PaymentAction, "待遇处理", action_id)
        if action.proposed_by_id is None:
            raise BenefitsError("系统提出的待遇处理不能撤回，请填写理由“驳回”")
        if action.proposed_by_id != user.pk:
            raise BenefitsError("只有提出人可以撤回；其他人请使用“驳回”")
        _set_action_state(
            action, ActionState.WITHDRAWN, actor=user, now=now, event="withdrawn",
            fields={"closed_by": user, "closed_at": now, "close_reason": reason.strip()},
            detail={"reason": reason.strip()},
        )  # fmt: skip
    return action


def payment_action_reverse(*, action_id: int, user: Any, reason: str, now: datetime) -> PaymentAction:
    """Undo an approved, exported or confirmed action: a new action (source `reversal`, same kind,
    month, months and amount, exported as `reverse_<kind>`) that needs approval and export like
    any other. The original is never edited. Reminders are not touched here: those a stop or
    suspension cancelled come back with the next run that finds the person due
    (`zige.notifications.services.messages_for_run`)."""
    _require_bureau(user)
    reason = (reason or "").strip()
    if not reason:
        raise BenefitsError("请填写撤销理由")
    with transaction.atomic():
        original = _locked(PaymentAction, "待遇处理", action_id)
        if original.reverses_id is not None:
            raise BenefitsError("撤销记录本身不能再撤销；如需要，请提出新的待遇处理")
        if original.state not in APPROVED_STATES:
            raise BenefitsError("只有已审批、已导出或已确认的待遇处理需要撤销；待审批的请驳回或撤回")
        if original.reversals.filter(state__in=LIVE_STATES).exists():
            raise BenefitsError("该待遇处理已有撤销记录")
        reversal = PaymentAction.objects.create(
            recipient_id=original.recipient_id, unit_id=original.unit_id, kind=original.kind,
            effective_month=original.effective_month, months=original.months, amount=original.amount,
            monthly_amount=original.monthly_amount, monthly_fixed=original.monthly_fixed,
            source=ActionSource.REVERSAL, source_ref=f"action:{original.pk}", note=reason, reverses=original,
            proposed_by=user, proposed_at=now,
        )  # fmt: skip
        audit_record(
            actor=user, action="payment_action.reversal_proposed", target_type="payment_action",
            target_id=reversal.pk, after={**_action_snapshot(reversal), "reason": reason}, at=now,
        )  # fmt: skip
    return reversal


def _roster_state_starts(people: set[int]) -> dict[int, tuple[date | None, datetime | None]]:
    """For each recipient, when their current roster state (待遇状态 and 状态变更日期) began, as far
    as the system can tell: the roster's 状态变更日期, and the time of the latest roster import that
    changed either field (`RecipientChange`). Either may be unknown (None)."""
    from zige.feeds.store import in_lists
    from zige.roster.models import RecipientChange

    starts: dict[int, tuple[date | None, datetime | None]] = {}
    # Only these people, a slice at a time: a province's roll is millions of rows.
    for chunk in in_lists(sorted(people)):
        for rid, since in Recipient.objects.filter(pk__in=chunk).values_list("pk", "status_since"):
            starts[rid] = (since, None)
        latest_changes = (
            RecipientChange.objects.filter(
                recipient_id__in=chunk, field__in=("benefit_status", "status_since")
            )
            .values("recipient_id")
            .annotate(latest=Max("changed_at"))
            .values_list("recipient_id", "latest")
        )
        for rid, changed_at in latest_changes:
            if rid in starts:
                starts[rid] = (starts[rid][0], changed_at)
    return starts


def _of_current_state(proposed_at: datetime, start: tuple[date | None, datetime | None]) -> bool:
    """Whether an action proposed at `proposed_at` belongs to the recipient's current roster state:
    proposed on or after its 状态变更日期 (China Standard Time) and after the last roster import
    that changed it. With neither known, the roster never changed: it does."""
    since, changed_at = start
    if since is not None and timezone.localdate(proposed_at) < since:
        return False
    return changed_at is None or proposed_at >= changed_at


def payment_actions_for_run(*, run_id: int, now: datetime) -> int:
    """Propose the payment actions of a run's decisions (docs/rules.md §5, §8.6), inside the run's
    transaction; returns how many were proposed.

    Idempotent across runs, keyed on the recipient's current roster state (待遇状态 and
    状态变更日期, spec §8): nothing is proposed for a person who has a live action of the same kind
    still on its way (proposed, approved or exported), or a confirmed one proposed during the
    current roster state (it was already applied to it: a resume's month moves on each month
    until the roster shows 正常). A roster state that began after the last such action — the
    office suspended or resumed the person itself — gets a new proposal (a second resume with its
    back pay, a second suspension). Nor is anything proposed when the same person, kind and month
    was proposed by a run before and rejected. One audit event per run lists the actions it
    proposed.

    A run's proposal still awaiting approval follows the latest run (rules §8.6): when this run
    computes another effective month, months or amount for the same person and kind, the
    proposal is revised to this run's figures (the months paid in advance grow with each as-of
    date, so the first run's figure would be too little by approval time). Approved, exported and
    confirmed actions are never edited, and neither are proposals of a person or a task. One audit
    event per run (`payment_action.revised_by_run`) lists each revision with its figures before
    and after. A run's proposal still awaiting approval that the latest run no longer calls for
    at all — the person's decision in this run has no action of that kind (a suspension for
    someone now eligible, a stop whose death record a review cleared) — is withdrawn by the run
    (`_withdraw_stale_run_proposals`, one `payment_action.withdrawn_by_run` event per run); a
    withdrawn proposal holds no slot, so a later run that calls for it again proposes it anew.
    What the run proposed, revised and withdrew, by kind, is kept in `run.summary`
    (`payment_actions`) for the run page and the dashboard. A decision whose figures are beyond
    the limits is held for review (`_hold_beyond_limits`) and withdraws the person's run proposal
    of that kind still awaiting approval (`payment_action.withdrawn_held_by_run`).

    Maker-checker: the officer who started the run (`Run.created_by`) is the maker of its
    proposals, recorded as their `proposed_by` — so the service and the constraint
    `action_maker_is_not_checker` keep them from approving them, back pay included, as for any
    proposal of theirs. A run started by the scheduler or the command line has no user: its
    proposals have no proposer (the system) and any officer approves them."""
    from zige.certification.models import Decision, Run
    from zige.certification.selectors import later_run

    # The run, read once: its as-of date and the officer who started it (the maker).
    run = Run.objects.select_related("created_by").filter(pk=run_id).first()
    later = later_run(run=run) if run is not None else None
    if run is not None and later is not None:
        return _skip_backdated_run(run=run, later=later, now=now)
    withdrawn = _withdraw_stale_run_proposals(run_id=run_id, now=now)
    decisions = list(
        Decision.objects.filter(run_id=run_id)
        .exclude(action="")
        .values_list("recipient_id", "unit_id", "action", "effective_month", "months", "amount")
    )
    if not decisions:
        _record_run_actions(run_id, proposed=[], revised=[], withdrawn=withdrawn, run_model=Run)
        return 0
    if run is None:  # decisions without their run: not possible (foreign key)
        raise Run.DoesNotExist(f"run {run_id} does not exist")
    maker = run.created_by
    decisions = _hold_beyond_limits(run_id=run_id, decisions=decisions, maker=maker, now=now)
    people = {d[0] for d in decisions}
    pensions = _pensions(people)
    live: dict[int, list[tuple[str, str, datetime]]] = {}  # recipient -> (kind, state, proposed_at)
    taken: set[tuple[int, str, str]] = set()
    rows = PaymentAction.objects.filter(reverses__isnull=True).filter(
        Q(state__in=LIVE_STATES) | Q(state=ActionState.REJECTED, source=ActionSource.RUN)
    )
    if len(people) < 5000:
        rows = rows.filter(recipient_id__in=people)
    for rid, kind, month, state, proposed_at in rows.values_list(
        "recipient_id", "kind", "effective_month", "state", "proposed_at"
    ):
        taken.add((rid, kind, month))
        if state in LIVE_STATES:
            live.setdefault(rid, []).append((kind, state, proposed_at))
    # A confirmed action blocks only within the roster state it was applied to (`blocked`): the
    # states' starts are read for the people who have one, not for everyone with a live action
    # (a month's first run revises some 70,000 proposals: 5 s of queries for nothing).
    starts = _roster_state_starts(
        {rid for rid in people if any(state == ActionState.CONFIRMED for _, state, _ in live.get(rid, ()))}
    )

    def blocked(rid: int, kind: str) -> bool:
        return any(
            k == kind
            and (state != ActionState.CONFIRMED or _of_current_state(at, starts.get(rid, (None, None))))
            for k, state, at in live.get(rid, ())
        )

    revised = _revise_run_proposals(
        run_id=run_id,
        decisions=decisions,
        people=people,
        pensions=pensions,
        taken=taken,
        maker=maker,
        now=now,
    )
    revised_people = {(a.recipient_id, a.kind) for a in revised}
    new = [
        PaymentAction(
            recipient_id=rid,
            unit_id=uid,
            kind=kind,
            effective_month=month,
            months=months,
            amount=None if amount is None else Decimal(amount).quantize(FEN),
            **_run_basis(pensions.get(rid), months, amount),
            source=ActionSource.RUN,
            source_ref=f"run:{run_id}",
            run_id=run_id,
            proposed_by=maker,
            proposed_at=now,
        )
        for rid, uid, kind, month, months, amount in decisions
        if kind in ActionKind.values
        and (rid, kind, month) not in taken
        and (rid, kind) not in revised_people
        and not blocked(rid, kind)
    ]
    if not new:
        _record_run_actions(run_id, proposed=[], revised=revised, withdrawn=withdrawn, run_model=Run)
        return 0
    created = PaymentAction.objects.bulk_create(new, batch_size=2000)
    ids = [a.pk for a in created if a.pk is not None]
    if len(ids) != len(created):  # backends that do not return ids from bulk inserts
        ids = list(
            PaymentAction.objects.filter(run_id=run_id, source=ActionSource.RUN, proposed_at=now).values_list(
                "pk", flat=True
            )
        )
    counts: dict[str, int] = {}
    for a in created:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    audit_record(
        actor=maker, action="payment_action.proposed_by_run", target_type="run", target_id=run_id,
        after={"count": len(created), "kinds": counts, "actions": ids,
               "proposed_by": maker.username if maker is not None else None},
        at=now,
    )  # fmt: skip
    _record_run_actions(run_id, proposed=created, revised=revised, withdrawn=withdrawn, run_model=Run)
    return len(created)


def _skip_backdated_run(*, run: Any, later: Any, now: datetime) -> int:
    """A back-dated run (`certification.selectors.later_run`, rules §8.6) proposes, revises and
    withdraws nothing: its decisions are older than the later run's, and a stale stop would stop
    a person that run found alive. Audited once per run (`payment_action.run_backdated`: the
    later run and the kinds its decisions would have proposed, by the run's maker) and recorded
    in its summary (`backdated`, for the run page; `payment_actions` all empty), in one
    transaction; returns 0."""
    from zige.certification.models import Decision, Run
    from zige.certification.services import run_record_backdated

    with transaction.atomic():
        if "payment_actions" in ((run.summary or {}).get("backdated") or {}).get("skipped", ()):
            return 0  # recorded and audited by an earlier call for this run
        kinds: dict[str, int] = {}
        for kind, n in (
            Decision.objects.filter(run_id=run.pk, action__in=ActionKind.values)
            .values("action")
            .annotate(n=Count("pk"))
            .values_list("action", "n")
            .order_by("action")
        ):
            kinds[kind] = n
        audit_record(
            actor=run.created_by, action="payment_action.run_backdated", target_type="run", target_id=run.pk,
            after={"as_of": run.as_of.isoformat(), "later_run": later.pk, "later_as_of": later.as_of.isoformat(),
                   "kinds": kinds},
            at=now,
        )  # fmt: skip
        _record_run_actions(run.pk, proposed=[], revised=[], withdrawn=[], run_model=Run)
        run_record_backdated(run_id=run.pk, part="payment_actions", later=later)
    return 0


# The key of `Run.summary` that counts the actions a run held for review (`_hold_beyond_limits`).
RUN_HELD_KEY = "payment_actions_held"


def _hold_beyond_limits(
    *, run_id: int, decisions: list[tuple[Any, ...]], maker: Any | None, now: datetime
) -> list[tuple[Any, ...]]:
    """The run's decisions whose action is within the limits; those beyond (more than
    `MONTHS_LIMIT` months, an amount past the column) are held for review instead of proposed or
    revising a proposal — a death record a century old is a typing slip, not 1,387 months to
    recover; an officer's proposal of such figures is refused. Audited once per run
    (`payment_action.held_by_run`, each with its person, kind, figures and why; the run's
    initiator as its actor, as for its proposals) and counted in the run's summary
    (`payment_actions_held`). The next run holds it again until the data are corrected.

    A run's proposal of the same person and kind still awaiting approval was made on older
    figures that this run's no longer support: it is withdrawn by the run
    (`_withdraw_held_run_proposals`), so that nobody approves it, and the held record names it
    (`withdrawn`). Any other action of the person and kind on its way — an officer's, a
    finding's or a task's proposal, or one already approved or exported — is left as it is
    (the same limits as a run's revisions and withdrawals) and named too (`in_force`), for the
    officer who reviews the held figures."""
    kept: list[tuple[Any, ...]] = []
    held: list[dict[str, Any]] = []
    for decision in decisions:
        rid, _uid, kind, month, months, amount = decision
        why = beyond_limits(months=months, amount=amount) if kind in ActionKind.values else ""
        if not why:
            kept.append(decision)
            continue
        held.append({
            "recipient": rid, "kind": kind, "effective_month": month, "months": months,
            "amount": None if amount is None else f"{Decimal(amount):.2f}", "why": why,
        })  # fmt: skip
    if not held:
        return kept
    from zige.certification.models import Run

    withdrawn = _withdraw_held_run_proposals(run_id=run_id, held=held, now=now)
    in_force = _in_force_of_held(held)
    for record in held:
        key = (record["recipient"], record["kind"])
        if key in withdrawn:
            record["withdrawn"] = withdrawn[key]
        elif key in in_force:
            record["in_force"] = in_force[key]
    run = Run.objects.filter(pk=run_id).only("summary").first()
    if run is not None and RUN_HELD_KEY in (run.summary or {}):
        return kept  # held and audited by an earlier call for this run: the same decisions
    audit_record(
        actor=maker, action="payment_action.held_by_run", target_type="run", target_id=run_id,
        after={"count": len(held), "held": held}, at=now,
    )  # fmt: skip
    if run is not None:
        Run.objects.filter(pk=run_id).update(summary={**(run.summary or {}), RUN_HELD_KEY: len(held)})
    return kept


def _held_reason(*, run_id: int, why: str) -> str:
    """The reason a run withdraws a proposal whose person it holds for review (`close_reason`,
    shown on the action's page and in a refused approval)."""
    return f"认证批次 #{run_id} 的数字超出上限（{why}），已暂缓，待人工复核；原待审批的数字不再适用，系统撤回"


def _withdraw_held_run_proposals(
    *, run_id: int, held: list[dict[str, Any]], now: datetime
) -> dict[tuple[int, str], int]:
    """Withdraw each run proposal still awaiting approval of a person and kind this run holds for
    review (rules §8.6): its figures are an earlier run's, which the latest data no longer
    support (a death date corrected to a typing slip a century earlier), and approving them
    would move money the run cannot vouch for. Only a run's proposal (`source=run`, not a
    reversal) in state `proposed`, as for `_withdraw_stale_run_proposals`; rows locked first (a
    checker approving at the same moment waits for the run, or approved first and the row is no
    longer proposed). A system transition (no actor), audited once for the run
    (`payment_action.withdrawn_held_by_run`, each action with its figures, the held figures and
    why). Returns (recipient, kind) -> the withdrawn action's id."""
    from zige.feeds.store import in_lists

    by_key = {(r["recipient"], r["kind"]): r for r in held}
    pending: list[PaymentAction] = []
    for chunk in in_lists(sorted({rid for rid, _kind in by_key})):
        pending += (
            PaymentAction.objects.select_for_update()
            .filter(state=ActionState.PROPOSED, source=ActionSource.RUN, reverses__isnull=True,
                    recipient_id__in=chunk)
            .order_by("pk")
        )  # fmt: skip
    stale = [a for a in pending if (a.recipient_id, a.kind) in by_key]
    if not stale:
        return {}

    def record_of(action: PaymentAction) -> dict[str, Any]:
        return by_key[(action.recipient_id, action.kind)]

    withdrawals = _withdraw_by_run(
        stale=stale, now=now, reason=lambda action: _held_reason(run_id=run_id, why=record_of(action)["why"]),
        detail=lambda action: {
            "held_figures": {k: record_of(action)[k] for k in ("effective_month", "months", "amount")},
            "why": record_of(action)["why"],
        },
    )  # fmt: skip
    audit_record(
        actor=None, action="payment_action.withdrawn_held_by_run", target_type="run", target_id=run_id,
        after={"count": len(stale), "withdrawals": withdrawals}, at=now,
    )  # fmt: skip
    return {(a.recipient_id, a.kind): a.pk for a in stale}


def _withdraw_by_run(
    *, stale: list[PaymentAction], now: datetime, reason: Callable[[PaymentAction], str],
    detail: Callable[[PaymentAction], dict[str, Any]],
) -> list[dict[str, Any]]:  # fmt: skip
    """Withdraw `stale` (locked, still proposed) as the system (no actor), each with its
    `reason`; returns each action with its figures and its `detail`, for the run's audit event
    (the caller's, in the same transaction)."""
    withdrawals: list[dict[str, Any]] = []
    for action in stale:
        _check(ACTION_TRANSITIONS, action.state, ActionState.WITHDRAWN, ACTION_STATE_ZH)
        action.state = ActionState.WITHDRAWN
        action.closed_by = None
        action.closed_at = now
        action.close_reason = reason(action)
        withdrawals.append({
            "action": action.pk, "recipient": action.recipient_id, "kind": action.kind, "run": action.run_id,
            "effective_month": action.effective_month, "months": action.months, "amount": action.amount,
            **detail(action),
        })  # fmt: skip
    store.bulk_update(PaymentAction, stale, ["state", "closed_by", "closed_at", "close_reason"])
    return withdrawals


def _in_force_of_held(held: list[dict[str, Any]]) -> dict[tuple[int, str], int]:
    """(recipient, kind) -> the person's action of that kind still on its way (proposed,
    approved or exported; the newest) that a held decision leaves as it is: an officer's, a
    finding's or a task's proposal, or an approved or exported action."""
    from zige.feeds.store import in_lists

    keys = {(r["recipient"], r["kind"]) for r in held}
    found: dict[tuple[int, str], int] = {}
    for chunk in in_lists(sorted({rid for rid, _kind in keys})):
        rows = PaymentAction.objects.filter(
            recipient_id__in=chunk, state__in=OPEN_STATES, reverses__isnull=True
        ).order_by("pk")
        for rid, kind, pk in rows.values_list("recipient_id", "kind", "pk"):
            if (rid, kind) in keys:
                found[(rid, kind)] = pk
    return found


def _pensions(people: set[int]) -> dict[int, Decimal | None]:
    """Each person's 月养老金 now: what a run that has just decided them calculated from."""
    from zige.feeds.store import in_lists

    found: dict[int, Decimal | None] = {}
    for chunk in in_lists(sorted(people)):
        found.update(Recipient.objects.filter(pk__in=chunk).values_list("pk", "monthly_amount"))
    return found


def _run_basis(monthly: Decimal | None, months: int | None, amount: Any) -> dict[str, Any]:
    """The 月养老金 a run's figures were calculated from, for the action (`monthly_amount`,
    `monthly_fixed`): the person's pension now, when it gives the run's amount (rules §5: months
    × 月养老金); else not known (the roll changed after the run decided), and the action's page
    estimates from the current pension, saying so."""
    if months is None or amount is None or payment_amount(months, monthly) == Decimal(amount).quantize(FEN):
        return {"monthly_amount": monthly, "monthly_fixed": True}
    return {"monthly_amount": None, "monthly_fixed": False}


def _revise_run_proposals(
    *,
    run_id: int,
    decisions: list[tuple[Any, ...]],
    people: set[int],
    pensions: dict[int, Decimal | None],
    taken: set[tuple[int, str, str]],
    maker: Any | None,
    now: datetime,
) -> list[PaymentAction]:
    """Bring each still-proposed run proposal of these people to this run's figures (rules §8.6).

    Only a proposal from a run (`source=run`, not a reversal) in state `proposed` is revised,
    whoever started that run: a person's or a task's proposal carries that person's figures, and
    an approved one is what the checker signed. A revised proposal's figures are this run's, so
    its maker becomes this run's (`maker`: the officer who started it, or None — the system — for
    the scheduler's; `payment_actions_for_run`), as a finding's revision makes the finding's
    officer the maker (`_follow_finding`): the officer who started this run cannot approve the
    figures it wrote, while the one who started the earlier run now may. The revision's record
    names the proposer before and after when it changes. The rows are locked first: a checker
    approving at the same moment waits for the run, or has approved first and the row is left as
    it is. Audited once per run (`payment_action.revised_by_run`, the run's initiator the actor)."""
    computed: dict[tuple[int, str], tuple[str, int | None, Decimal | None]] = {}
    kinds = set(ActionKind.values)
    for rid, _uid, kind, month, months, amount in decisions:
        if kind in kinds:
            computed[(rid, kind)] = (month, months, None if amount is None else Decimal(amount).quantize(FEN))
    pending = PaymentAction.objects.select_for_update().filter(
        state=ActionState.PROPOSED, source=ActionSource.RUN, reverses__isnull=True
    )
    if len(people) < 5000:
        pending = pending.filter(recipient_id__in=people)
    by_key: dict[tuple[int, str], list[PaymentAction]] = {}
    for action in pending.order_by("pk"):
        if (action.recipient_id, action.kind) in computed:
            by_key.setdefault((action.recipient_id, action.kind), []).append(action)
    revised: list[PaymentAction] = []
    changes: list[dict[str, Any]] = []
    maker_pk = getattr(maker, "pk", None)
    usernames: dict[int, str] = {}  # the earlier runs' initiators, read once each
    for key, actions in by_key.items():
        if len(actions) != 1:  # two proposals of one kind for one person: an officer decides
            continue
        action = actions[0]
        month, months, amount = computed[key]
        if month != action.effective_month and (key[0], key[1], month) in taken:
            continue  # that month was proposed before (and rejected, or is live): leave it
        basis = _run_basis(pensions.get(key[0]), months, amount)
        change = _revise_figures(
            action, effective_month=month, months=months, amount=amount,
            monthly=basis["monthly_amount"], monthly_fixed=basis["monthly_fixed"],
        )  # fmt: skip
        if change is None:
            continue
        if action.proposed_by_id != maker_pk:
            change["before"]["proposed_by"] = _username(action.proposed_by_id, usernames)
            change["after"]["proposed_by"] = maker.username if maker is not None else None
            action.proposed_by = maker
        revised.append(action)
        changes.append(change)
    if revised:
        store.bulk_update(PaymentAction, revised, [*REVISED_FIELDS, "proposed_by"])
        audit_record(
            actor=maker, action="payment_action.revised_by_run", target_type="run", target_id=run_id,
            after={"count": len(revised), "revisions": changes}, at=now,
        )  # fmt: skip
    return revised


def _username(user_id: int | None, cache: dict[int, str]) -> str | None:
    """The username of user `user_id` (None: the system), read once per id into `cache`."""
    if user_id is None:
        return None
    if user_id not in cache:
        cache[user_id] = User.objects.filter(pk=user_id).values_list("username", flat=True).get()
    return cache[user_id]


def _withdraw_stale_run_proposals(*, run_id: int, now: datetime) -> list[PaymentAction]:
    """Withdraw each still-proposed run proposal that this run no longer calls for (rules §8.6).

    A run decides everyone on the roll, and a decision without a payment action is stored with
    an empty `action`: a proposal is stale when its person has a decision in this run whose action
    is not the proposal's kind (none at all, or another one). A person this run did not decide is
    left alone. Only a proposal from a run (`source=run`, not a reversal) in state `proposed`;
    approved, exported and confirmed actions, and proposals of a person or a task, are never
    touched. The rows are locked first, as for revisions: a checker approving at the same moment
    waits for the run, or has approved first and the row is no longer proposed. A system
    transition (no actor), audited once for the run with each action and its figures."""
    from zige.certification.models import Decision

    # The person's decision in this run (one per run and person): its action, where it is not
    # the proposal's. Asked of the database: a province has some 73,000 run proposals awaiting
    # approval after a month's first run, and loading each with its person's decision cost
    # seconds for the few that are stale.
    decision = Decision.objects.filter(run_id=run_id, recipient_id=OuterRef("recipient_id"))
    found = list(
        PaymentAction.objects.select_for_update()
        .filter(state=ActionState.PROPOSED, source=ActionSource.RUN, reverses__isnull=True)
        .annotate(decided=Subquery(decision.values("action")[:1]))
        .filter(decided__isnull=False)
        .exclude(decided=F("kind"))
        .order_by("pk")
    )
    if not found:
        return []
    decided = {action.pk: action.decided for action in found}
    stale: list[PaymentAction] = [*found]
    reason = f"认证批次 #{run_id} 不再需要该处理，系统撤回"
    withdrawals = _withdraw_by_run(
        stale=stale, now=now, reason=lambda _action: reason,
        detail=lambda action: {"decision": decided[action.pk]},
    )  # fmt: skip
    audit_record(
        actor=None, action="payment_action.withdrawn_by_run", target_type="run", target_id=run_id,
        after={"count": len(stale), "withdrawals": withdrawals}, at=now,
    )  # fmt: skip
    return stale


def _action_totals(actions: list[PaymentAction]) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for a in actions:
        t = totals.setdefault(a.kind, {"count": 0, "months": 0, "amount": Decimal("0.00")})
        t["count"] += 1
        t["months"] += a.months or 0
        t["amount"] += a.amount or Decimal("0.00")
    return {k: {**v, "amount": f"{v['amount']:.2f}"} for k, v in sorted(totals.items())}


def _record_run_actions(
    run_id: int,
    *,
    proposed: list[PaymentAction],
    revised: list[PaymentAction],
    withdrawn: list[PaymentAction],
    run_model: Any,
) -> None:
    """Keep in the run's summary what it proposed, revised and withdrew, by kind (count, months,
    amount as the run left them): the run page and the dashboard show these, not the decisions'
    figures."""
    run = run_model.objects.filter(pk=run_id).only("summary").first()
    if run is None:
        return
    summary = dict(run.summary or {})
    summary[RUN_ACTIONS_KEY] = {
        "proposed": _action_totals(proposed),
        "revised": _action_totals(revised),
        "withdrawn": _action_totals(withdrawn),
    }
    run_model.objects.filter(pk=run_id).update(summary=summary)


# ---------------------------------------------------------------------------------------------
# Export to the payment system

EXPORT_COLUMNS = (
    "line_no", "action_id", "person_no", "id_number", "name", "unit_no", "unit_name", "action",
    "effective_month", "months", "amount",
)  # fmt: skip
EXPORT_HEADERS_ZH = (
    "序号", "业务编号", "个人编号", "身份证号", "姓名", "单位编号", "单位名称", "业务类型", "生效月份", "月数",
    "金额（元）",
)  # fmt: skip
TOTAL_MARK = "TOTAL"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ExportRow:
    line_no: int
    action_id: int
    person_no: str
    id_number: str
    name: str
    unit_no: str
    unit_name: str
    action: str
    effective_month: str
    months: int
    amount: Decimal

    def values(self) -> list[Any]:
        return [self.line_no, self.action_id, self.person_no, self.id_number, self.name, self.unit_no,
                self.unit_name, self.action, self.effective_month, self.months, f"{self.amount:.2f}"]  # fmt: skip


def export_dir() -> Path:
    return Path(settings.DATA_DIR) / "payments"


def batch_paths(batch: ExportBatch) -> dict[str, Path]:
    base = export_dir() / batch.file_stem
    return {
        "csv": base.with_suffix(".csv"),
        "xlsx": base.with_suffix(".xlsx"),
        "csv.sha256": base.with_suffix(".csv.sha256"),
        "xlsx.sha256": base.with_suffix(".xlsx.sha256"),
    }


def _rows_of(batch: ExportBatch) -> list[ExportRow]:
    return [
        ExportRow(
            line_no=line.line_no,
            action_id=line.action_id,
            person_no=line.person_no,
            id_number=line.id_number,
            name=line.name,
            unit_no=line.unit_no,
            unit_name=line.unit_name,
            action=line.action_code,
            effective_month=line.effective_month,
            months=line.months,
            amount=line.amount,
        )
        for line in batch.lines.order_by("line_no")
    ]


def render_csv(*, batch_id: int, rows: list[ExportRow], total: Decimal) -> bytes:
    """UTF-8 (with BOM, as Excel reads it): a header row, one row per action, and a control
    row `TOTAL, <count>, …, <sum of amounts>`. Text that a spreadsheet would run as a formula
    is quoted (`zige.spreadsheet`); the amount is written as it is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        *text, amount = row.values()
        writer.writerow([*(formula_safe(v) for v in text), amount])
    writer.writerow([TOTAL_MARK, len(rows), f"batch:{batch_id}", "", "", "", "", "", "", "", f"{total:.2f}"])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _deterministic_zip(data: bytes) -> bytes:
    """The same workbook always gives the same bytes: zip entries re-written in order with a
    fixed time stamp (openpyxl stamps them with the time of writing)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def render_xlsx(*, batch_id: int, rows: list[ExportRow], total: Decimal, created: datetime) -> bytes:
    """Sheet `payments`: header, rows, control row (as the CSV); sheet `control`: batch, count,
    total."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "payments"
    ws.append(list(EXPORT_COLUMNS))
    for row in rows:
        values = row.values()
        values[-1] = float(row.amount)  # a number cell; the CSV carries the exact text
        ws.append(values)
        for cell in ws[ws.max_row]:
            if cell.data_type == "f":  # openpyxl takes text beginning with = as a formula: keep it text
                cell.data_type = "s"
    ws.append(
        [TOTAL_MARK, len(rows), f"batch:{batch_id}", None, None, None, None, None, None, None, float(total)]
    )
    for cell in ws["K"][1:]:
        cell.number_format = "0.00"
    control = wb.create_sheet("control")
    control.append(["batch", batch_id])
    control.append(["count", len(rows)])
    control.append(["total_amount", f"{total:.2f}"])
    control.append(["headers_zh", "、".join(EXPORT_HEADERS_ZH)])
    stamp = created.replace(tzinfo=None, microsecond=0)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "zige"
    buffer = io.BytesIO()
    # ExcelWriter directly: Workbook.save() would stamp the properties with the time of writing.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    return _deterministic_zip(buffer.getvalue())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _render_files(batch: ExportBatch, rows: list[ExportRow]) -> tuple[dict[str, bytes], dict[str, str]]:
    """The batch's two files (csv, xlsx) and their SHA-256."""
    data = {
        "csv": render_csv(batch_id=batch.pk, rows=rows, total=batch.total_amount),
        "xlsx": render_xlsx(batch_id=batch.pk, rows=rows, total=batch.total_amount, created=batch.created_at),
    }
    return data, {kind: _sha256(content) for kind, content in data.items()}


def _place_files(
    batch: ExportBatch, data: dict[str, bytes], sums: dict[str, str], placed: list[Path]
) -> None:
    """Write each file and its .sha256 under a hidden temporary name and rename it into place;
    `placed` gets every path written (temporary and final), for the caller to remove if its
    transaction does not commit."""
    paths = batch_paths(batch)
    folder = paths["csv"].parent
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("csv", "xlsx"):
        for target, content in (
            (paths[kind], data[kind]),
            (paths[f"{kind}.sha256"], f"{sums[kind]}  {paths[kind].name}\n".encode("ascii")),
        ):
            temp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
            placed.append(temp)
            temp.write_bytes(content)
            placed.append(target)
            temp.replace(target)


def _write_files(batch: ExportBatch, rows: list[ExportRow], expect: dict[str, str]) -> dict[str, str]:
    """Render and write the files of a batch again; refuse (before writing anything) when a
    checksum differs from the recorded one."""
    data, sums = _render_files(batch, rows)
    if sums != expect:
        raise BenefitsError("重新生成的文件与原校验值不一致，已停止（请联系管理员）")
    _place_files(batch, data, sums, placed=[])
    return sums


def export_batch_create(*, user: Any | None, now: datetime) -> ExportBatch | None:
    """Put every approved action not yet exported into a new batch and write its files
    (xlsx, csv, each with a .sha256 sidecar) under `ZIGE_DATA_DIR/payments/`. None when there
    is nothing to export. `user=None`: the command line.

    The files (full ID numbers) exist only for a committed batch: they are rendered first,
    renamed into place as the transaction's last step, after the batch, its lines and its
    audit row, and removed again if anything fails up to and including the commit — as the
    附件2 export does (`zige.ledger.services.other_province_export`). A crash in between can
    leave files of a batch number the database never recorded; on SQLite the next batch reuses
    that number and writes its own files over them. Called outside any transaction (the page,
    the command line): an outer transaction that rolled back later would not remove them."""
    if user is not None:
        _require_bureau(user)
    placed: list[Path] = []
    try:
        batch = _export_batch_create(user=user, now=now, placed=placed)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    return batch


def _export_batch_create(*, user: Any | None, now: datetime, placed: list[Path]) -> ExportBatch | None:
    with transaction.atomic():
        actions = list(
            PaymentAction.objects.select_for_update()
            .filter(state=ActionState.APPROVED)
            .exclude(export_lines__active=True)
            .select_related("recipient", "unit")
            .order_by("pk")
        )
        if not actions:
            return None
        total = sum(((a.amount or Decimal("0")) for a in actions), Decimal("0")).quantize(FEN)
        batch = ExportBatch.objects.create(
            count=len(actions), total_amount=total, file_stem="", csv_sha256="", xlsx_sha256="",
            created_by=user, created_at=now,
        )  # fmt: skip
        batch.file_stem = f"payments-{batch.pk:06d}-{timezone.localtime(now):%Y%m%d}"
        ExportLine.objects.bulk_create(
            [
                ExportLine(
                    batch=batch,
                    action=a,
                    line_no=i,
                    person_no=a.recipient.person_no,
                    id_number=a.recipient.id_number,
                    name=a.recipient.name,
                    unit_no=a.unit.unit_no,
                    unit_name=a.unit.name,
                    action_code=a.export_code,
                    effective_month=a.effective_month,
                    months=a.months or 0,
                    amount=(a.amount or Decimal("0")).quantize(FEN),
                )
                for i, a in enumerate(actions, start=1)
            ]
        )
        for a in actions:
            _check(ACTION_TRANSITIONS, a.state, ActionState.EXPORTED, ACTION_STATE_ZH)
        PaymentAction.objects.filter(pk__in=[a.pk for a in actions]).update(
            state=ActionState.EXPORTED, exported_at=now
        )
        data, sums = _render_files(batch, _rows_of(batch))
        batch.csv_sha256, batch.xlsx_sha256 = sums["csv"], sums["xlsx"]
        batch.save(update_fields=["file_stem", "csv_sha256", "xlsx_sha256"])
        audit_record(
            actor=user, action="export_batch.created", target_type="export_batch", target_id=batch.pk,
            after={"count": batch.count, "total_amount": total, "csv_sha256": sums["csv"],
                   "xlsx_sha256": sums["xlsx"], "actions": [a.pk for a in actions],
                   "state": {"from": ActionState.APPROVED, "to": ActionState.EXPORTED}},
            at=now,
        )  # fmt: skip
        _place_files(batch, data, sums, placed)
    return batch


def export_batch_reexport(*, batch_id: int, user: Any | None, reason: str, now: datetime) -> ExportBatch:
    """Write a batch's files again (lost, or asked for again by the payment system) from the
    lines kept with it: the same bytes, checked against the recorded SHA-256. Audited."""
    if user is not None:
        _require_bureau(user)
    reason = (reason or "").strip()
    if not reason:
        raise BenefitsError("请填写重新导出的原因")
    with transaction.atomic():
        batch = _locked(ExportBatch, "导出批次", batch_id)
        if batch.state == BatchState.VOID:
            raise BenefitsError("已作废的批次不能重新导出")
        sums = _write_files(
            batch, _rows_of(batch), expect={"csv": batch.csv_sha256, "xlsx": batch.xlsx_sha256}
        )
        batch.reexports += 1
        batch.save(update_fields=["reexports"])
        audit_record(
            actor=user, action="export_batch.reexported", target_type="export_batch", target_id=batch.pk,
            after={"reason": reason, "reexports": batch.reexports, "csv_sha256": sums["csv"],
                   "xlsx_sha256": sums["xlsx"]},
            at=now,
        )  # fmt: skip
    return batch


def export_batch_confirm(*, batch_id: int, user: Any | None, ref: str, now: datetime) -> ExportBatch:
    """The payment system took the batch: the batch and its actions are confirmed."""
    if user is not None:
        _require_bureau(user)
    with transaction.atomic():
        batch = _locked(ExportBatch, "导出批次", batch_id)
        _check(BATCH_TRANSITIONS, batch.state, BatchState.CONFIRMED, BATCH_STATE_ZH)
        ids = list(batch.lines.filter(active=True).values_list("action_id", flat=True))
        for state in PaymentAction.objects.filter(pk__in=ids).values_list("state", flat=True).distinct():
            _check(ACTION_TRANSITIONS, state, ActionState.CONFIRMED, ACTION_STATE_ZH)
        PaymentAction.objects.filter(pk__in=ids).update(state=ActionState.CONFIRMED, confirmed_at=now)
        batch.state = BatchState.CONFIRMED
        batch.confirmed_by = user
        batch.confirmed_at = now
        batch.confirm_ref = (ref or "").strip()[:200]
        batch.save(update_fields=["state", "confirmed_by", "confirmed_at", "confirm_ref"])
        audit_record(
            actor=user, action="export_batch.confirmed", target_type="export_batch", target_id=batch.pk,
            before={"state": BatchState.EXPORTED},
            after={"state": BatchState.CONFIRMED, "ref": batch.confirm_ref, "actions": ids}, at=now,
        )  # fmt: skip
    return batch


def export_batch_void(*, batch_id: int, user: Any, reason: str, now: datetime) -> ExportBatch:
    """The payment system refused the file: the batch is void and its actions go back to
    approved, to be exported in a new batch."""
    _require_bureau(user)
    reason = (reason or "").strip()
    if not reason:
        raise BenefitsError("请填写作废原因")
    with transaction.atomic():
        batch = _locked(ExportBatch, "导出批次", batch_id)
        _check(BATCH_TRANSITIONS, batch.state, BatchState.VOID, BATCH_STATE_ZH)
        ids = list(batch.lines.filter(active=True).values_list("action_id", flat=True))
        # Every action of the batch goes back exactly as the table says (exported → approved),
        # as confirming checks exported → confirmed; any other state refuses the whole void.
        actions = PaymentAction.objects.filter(pk__in=ids)
        for state in set(actions.select_for_update().values_list("state", flat=True)):
            _check(ACTION_TRANSITIONS, state, ActionState.APPROVED, ACTION_STATE_ZH)
        batch.lines.update(active=False)
        moved = actions.filter(state=ActionState.EXPORTED).update(
            state=ActionState.APPROVED, exported_at=None
        )
        if moved != len(ids):  # cannot happen with the rows locked and checked: never half a void
            raise BenefitsError("批次中的待遇处理与导出记录不一致，已停止作废（请联系管理员）")
        batch.state = BatchState.VOID
        batch.void_reason = reason
        batch.voided_at = now
        batch.save(update_fields=["state", "void_reason", "voided_at"])
        audit_record(
            actor=user, action="export_batch.voided", target_type="export_batch", target_id=batch.pk,
            before={"state": BatchState.EXPORTED}, after={"state": BatchState.VOID, "reason": reason, "actions": ids},
            at=now,
        )  # fmt: skip
    return batch


def export_file_download(*, batch_id: int, kind: str, user: Any, ip: str, now: datetime) -> Path:
    """The path of a batch file for a download, audited (bureau staff only)."""
    _require_bureau(user)
    batch = ExportBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise BenefitsError(f"导出批次 #{batch_id} 不存在")
    path = batch_paths(batch).get(kind)
    if path is None:
        raise BenefitsError(f"未知的文件类型 {kind!r}")
    if not path.is_file():
        raise BenefitsError("文件不存在，请先“重新导出”")
    with transaction.atomic():
        audit_record(
            actor=user, action="export_batch.downloaded", target_type="export_batch", target_id=batch.pk,
            after={"file": path.name}, ip=ip, at=now,
        )  # fmt: skip
    return path


# Files an export writes: `payments-<batch>-<yyyymmdd>.<csv|xlsx>[.sha256]`, and their hidden
# temporary names while being written (`_place_files`).
_EXPORT_FILE = re.compile(r"^(payments-[0-9]{6,}-[0-9]{8})\.(?:csv|xlsx)(?:\.sha256)?$")
_EXPORT_TEMP = re.compile(r"^\.payments-[0-9]{6,}-[0-9]{8}\.(?:csv|xlsx)(?:\.sha256)?\.[0-9a-f]+\.tmp$")
# A file younger than this may belong to an export still committing: never reported nor removed.
ORPHAN_MIN_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class OrphanFile:
    path: Path
    temporary: bool  # a hidden temporary file, not a batch file renamed into place
    size: int
    modified: datetime


def export_orphans(*, now: datetime, min_age: timedelta = ORPHAN_MIN_AGE) -> list[OrphanFile]:
    """Files in the export directory (`ZIGE_DATA_DIR/payments/`) that no batch accounts for and
    that are older than `min_age`: leftover temporary files, and payment files whose stem is no
    `ExportBatch.file_stem` (a process killed between renaming the files into place and the
    commit). Files of any recorded batch — void ones included — and files that are not named
    as an export writes them are never listed."""
    folder = export_dir()
    if not folder.is_dir():
        return []
    stems = set(ExportBatch.objects.values_list("file_stem", flat=True))
    found: list[OrphanFile] = []
    for path in sorted(folder.iterdir()):
        temporary = bool(_EXPORT_TEMP.match(path.name))
        final = _EXPORT_FILE.match(path.name)
        if not temporary and (final is None or final.group(1) in stems):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not path.is_file() or path.is_symlink():
            continue
        modified = datetime.fromtimestamp(info.st_mtime, tz=UTC)
        if now - modified < min_age:
            continue
        found.append(OrphanFile(path=path, temporary=temporary, size=info.st_size, modified=modified))
    return found


def export_orphans_sweep(
    *, user: Any | None, now: datetime, dry_run: bool, min_age: timedelta = ORPHAN_MIN_AGE
) -> list[OrphanFile]:
    """Remove the files `export_orphans` lists (they hold full ID numbers no batch accounts for);
    with `dry_run`, only list them. Each file is checked again against the batches just before
    it is removed, so a batch committed meanwhile keeps its files. One audit event
    (`export_file.swept`) names the files removed and those that could not be. `user=None`: the
    command line."""
    if user is not None:
        _require_bureau(user)
    if min_age < ORPHAN_MIN_AGE:
        raise BenefitsError(
            f"只能清理 {ORPHAN_MIN_AGE.total_seconds() / 3600:g} 小时以前的文件（导出可能仍在进行）"
        )
    orphans = export_orphans(now=now, min_age=min_age)
    if dry_run or not orphans:
        return orphans
    removed: list[OrphanFile] = []
    failed: dict[str, str] = {}
    with transaction.atomic():
        stems = set(ExportBatch.objects.select_for_update().values_list("file_stem", flat=True))
        for orphan in orphans:
            final = _EXPORT_FILE.match(orphan.path.name)
            if final is not None and final.group(1) in stems:
                continue
            try:
                orphan.path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed[orphan.path.name] = str(exc)
                continue
            removed.append(orphan)
        if removed or failed:
            audit_record(
                actor=user, action="export_file.swept", target_type="export_dir", target_id="payments",
                after={"removed": [o.path.name for o in removed], "failed": failed,
                       "min_age_s": int(min_age.total_seconds())},
                at=now,
            )  # fmt: skip
    if failed:
        raise BenefitsError("以下文件未能删除：" + "；".join(f"{k}（{v}）" for k, v in failed.items()))
    return removed


# ---------------------------------------------------------------------------------------------
# Recovery 追回


def _set_recovery_status(case: RecoveryCase, new: str, *, actor: Any, now: datetime, event: str,
                         fields: list[str] | None = None, detail: dict[str, Any] | None = None,
                         table: frozenset[tuple[str, str]] = RECOVERY_TRANSITIONS) -> None:  # fmt: skip
    old = case.status
    _check(table, old, new, RECOVERY_STATUS_ZH)
    case.status = new
    if new in (
        RecoveryStatus.RECOVERED,
        RecoveryStatus.WRITTEN_OFF,
        RecoveryStatus.CANCELLED,
        RecoveryStatus.REFUNDED,
    ):
        case.closed_at = now
        fields = [*(fields or []), "closed_at"]
    elif new == RecoveryStatus.REFUND_DUE and case.closed_at is not None:  # a closed case owes a refund
        case.closed_at = None
        fields = [*(fields or []), "closed_at"]
    case.save(update_fields=["status", *(fields or [])])
    audit_record(
        actor=actor, action=f"recovery_case.{event}", target_type="recovery_case", target_id=case.pk,
        before={"status": old}, after={"status": new, **(detail or {})}, at=now,
    )  # fmt: skip


def _recovery_case_open(*, action: PaymentAction, now: datetime, actor: Any) -> RecoveryCase:
    case = RecoveryCase.objects.create(
        action=action, recipient_id=action.recipient_id, unit_id=action.unit_id,
        amount=action.amount or Decimal("0"), months=action.months or 0, opened_at=now,
    )  # fmt: skip
    audit_record(
        actor=actor, action="recovery_case.opened", target_type="recovery_case", target_id=case.pk,
        after={"action": action.pk, "amount": case.amount, "months": case.months, "status": case.status}, at=now,
    )  # fmt: skip
    _fraud_cases_link(case, now=now, actor=actor)
    return case


def _live_recovery_of(recipient_id: int) -> RecoveryCase | None:
    """The person's recovery case a fraud case opened now arises from: the latest not cancelled
    (one death, one stop, one recovery; a cancelled one's stop was reversed)."""
    return (
        RecoveryCase.objects.filter(recipient_id=recipient_id)
        .exclude(status__in=REVERSED_STATUSES)
        .order_by("-opened_at", "-pk")
        .first()
    )


def _fraud_cases_link(case: RecoveryCase, *, now: datetime, actor: Any) -> None:
    """A recovery case opened for a person whose fraud cases (not 不予处罚) have none yet — the 冒领
    was found before the stop was approved — or only a cancelled one (its stop was reversed and
    this is the corrected stop's): they arise from this one. Audited per case in the same
    transaction (`fraud_case.recovery_linked`, before and after)."""
    frauds = (
        FraudCase.objects.select_for_update(of=("self",))
        .filter(recipient_id=case.recipient_id)
        .exclude(status=FraudStatus.DISMISSED)
        .filter(Q(recovery_case__isnull=True) | Q(recovery_case__status__in=REVERSED_STATUSES))
        .order_by("pk")
    )
    for fraud in list(frauds):
        old = fraud.recovery_case_id
        fraud.recovery_case = case
        fraud.save(update_fields=["recovery_case"])
        audit_record(
            actor=actor, action="fraud_case.recovery_linked", target_type="fraud_case", target_id=fraud.pk,
            before={"recovery_case": old}, after={"recovery_case": case.pk}, at=now,
        )  # fmt: skip


def _recovery_case_cancel_for(*, original_id: int, now: datetime, actor: Any) -> None:
    """The stop `original_id` was reversed (its reversal approved): its recovery case is cancelled
    when nothing was recovered — also when it was written off meanwhile: a reversed stop's debt is
    never written off, and the audit record keeps the amount the write-off had taken
    (`written_off`); with money recovered, that money is owed back (待返还,
    `REFUND_TRANSITIONS`, audited `refund_due` with the amount)."""
    case = RecoveryCase.objects.select_for_update().filter(action_id=original_id).first()
    if case is None:
        return
    if case.recovered == 0 and (case.status, RecoveryStatus.CANCELLED) in RECOVERY_TRANSITIONS:
        detail: dict[str, Any] = {"why": "stop reversed"}
        if case.status == RecoveryStatus.WRITTEN_OFF:
            detail["written_off"] = case.amount - case.recovered
        _set_recovery_status(case, RecoveryStatus.CANCELLED, actor=actor, now=now, event="cancelled",
                             detail=detail)  # fmt: skip
    elif case.recovered > 0 and (case.status, RecoveryStatus.REFUND_DUE) in REFUND_TRANSITIONS:
        _set_recovery_status(case, RecoveryStatus.REFUND_DUE, actor=actor, now=now, event="refund_due",
                             detail={"why": "stop reversed", "refund_due": case.recovered},
                             table=REFUND_TRANSITIONS)  # fmt: skip


def _refuse_reversal_while_write_off_pending(*, original_id: int) -> None:
    """A reversal of a stop whose recovery case waits for a write-off decision is not approved:
    approving it would cancel the case, which a pending write-off does not allow (it ends only by
    its checker's decision), so the case would stay pending and could be written off — money
    reported as 已核销 that the reversed stop never made owed. The checker decides the write-off
    first (a refusal takes the case back, and the reversal then cancels it)."""
    case = RecoveryCase.objects.select_for_update().filter(action_id=original_id).first()
    if case is not None and case.status == RecoveryStatus.WRITE_OFF_PROPOSED:
        raise BenefitsError(
            f"追回案件 #{case.pk} 的核销正在等待审批，暂不能审批撤销：请先由另一名经办人员批准或退回核销",
            code="write_off_pending",
        )


def _refuse_while_write_off_pending(case: RecoveryCase, what: str) -> None:
    """A pending write-off ends only by its checker's decision (approved or refused), never as
    a side effect of another step."""
    if case.status == RecoveryStatus.WRITE_OFF_PROPOSED:
        raise BenefitsError(f"该案件的核销正在等待审批，暂不能{what}：请先由另一名经办人员批准或退回核销")


def recovery_case_notify(
    *, case_id: int, debtor_name: str, debtor_relation: str, debtor_contact: str | None = None,
    notified_on: date, user: Any, now: datetime,
) -> RecoveryCase:  # fmt: skip
    """Record who owes the money (the estate or the person who collected it) and that they
    were notified (责令退回).

    `debtor_contact=None` keeps the contact already recorded (the page never sends the full
    number back to the browser, so its field is empty unless the officer types a new one); `""`
    clears it. The audit row says whether the contact was set, kept or cleared, never its value.
    A notice dated after the day it is recorded (the local date of `now`) is refused."""
    _require_bureau(user)
    if not debtor_name.strip():
        raise BenefitsError("请填写退还义务人（遗产继承人或代领人）姓名")
    _not_after_day_recorded(notified_on, label="通知日期", now=now, why="只能登记已经发出的通知")
    with transaction.atomic():
        case = _locked(RecoveryCase, "追回案件", case_id)
        _refuse_while_write_off_pending(case, "登记退还义务人和通知")
        case.debtor_name = debtor_name.strip()[:100]
        case.debtor_relation = debtor_relation.strip()[:50]
        contact = "kept"
        if debtor_contact is not None:
            new_contact = debtor_contact.strip()[:200]
            if new_contact != case.debtor_contact:
                contact = "set" if new_contact else "cleared"
            case.debtor_contact = new_contact
        case.notified_on = notified_on
        _set_recovery_status(
            case, RecoveryStatus.NOTIFIED, actor=user, now=now, event="notified",
            fields=["debtor_name", "debtor_relation", "debtor_contact", "notified_on"],
            detail={"debtor_name": case.debtor_name, "relation": case.debtor_relation, "notified_on": notified_on,
                    "contact": contact},
        )  # fmt: skip
    return case


def recovery_payment_record(
    *, case_id: int, amount: Decimal, paid_on: date, method: str, note: str = "", user: Any, now: datetime
) -> RecoveryPayment:
    """A repayment: the case is repaying, or recovered when the whole amount is back. More than
    the outstanding amount is refused, and so is a repayment dated after the day it is recorded
    (the local date of `now`): money not yet received is not recovered."""
    _require_bureau(user)
    money = _money(amount)
    if money <= 0:
        raise BenefitsError("退还金额应大于 0")
    if not method.strip():
        raise BenefitsError("请填写退还方式")
    _not_after_day_recorded(paid_on, label="退还日期", now=now, why="只能登记已经收到的退还款")
    with transaction.atomic():
        case = _locked(RecoveryCase, "追回案件", case_id)
        _refuse_while_write_off_pending(case, "登记退还")
        outstanding = case.amount - case.recovered
        if money > outstanding:
            raise BenefitsError(f"退还金额 {money:,.2f} 元超过未追回金额 {outstanding:,.2f} 元")
        payment = RecoveryPayment.objects.create(
            case=case, amount=money, paid_on=paid_on, method=method.strip()[:50], note=note.strip()[:200],
            recorded_by=user, recorded_at=now,
        )  # fmt: skip
        case.recovered += money
        new = RecoveryStatus.RECOVERED if case.recovered == case.amount else RecoveryStatus.REPAYING
        _set_recovery_status(
            case, new, actor=user, now=now, event="payment_recorded", fields=["recovered"],
            detail={"payment": payment.pk, "amount": money, "paid_on": paid_on, "method": payment.method,
                    "recovered": case.recovered},
        )  # fmt: skip
    return payment


def recovery_case_write_off_propose(*, case_id: int, reason: str, user: Any, now: datetime) -> RecoveryCase:
    """Propose to write off what cannot be recovered (a second person approves)."""
    _require_bureau(user)
    if not reason.strip():
        raise BenefitsError("请填写核销理由")
    with transaction.atomic():
        case = _locked(RecoveryCase, "追回案件", case_id)
        case.write_off_by = user
        case.write_off_reason = reason.strip()
        case.write_off_approved_by = None
        _set_recovery_status(
            case, RecoveryStatus.WRITE_OFF_PROPOSED, actor=user, now=now, event="write_off_proposed",
            fields=["write_off_by", "write_off_reason", "write_off_approved_by"], detail={"reason": case.write_off_reason},
        )  # fmt: skip
    return case


def recovery_case_write_off_decide(*, case_id: int, approve: bool, user: Any, now: datetime) -> RecoveryCase:
    """Approve (→ written off) or refuse a write-off; never by the person who proposed it. A
    refusal (`WRITE_OFF_REFUSALS`, audited `write_off_refused`) takes the case back to where it
    was: repaying when money was repaid, notified when the debtor was notified, else open."""
    _require_bureau(user)
    with transaction.atomic():
        case = _locked(RecoveryCase, "追回案件", case_id)
        if case.status != RecoveryStatus.WRITE_OFF_PROPOSED:
            raise BenefitsError("该案件没有待审批的核销")
        if case.write_off_by_id == user.pk:
            raise BenefitsError("提出核销的人不能审批自己的核销（需由另一名经办人员审批）")
        if approve:
            case.write_off_approved_by = user
            _set_recovery_status(case, RecoveryStatus.WRITTEN_OFF, actor=user, now=now, event="written_off",
                                 fields=["write_off_approved_by"], detail={"outstanding": case.outstanding})  # fmt: skip
        else:
            if case.recovered > 0:
                back = RecoveryStatus.REPAYING
            elif case.notified_on is not None:
                back = RecoveryStatus.NOTIFIED
            else:
                back = RecoveryStatus.OPEN
            _set_recovery_status(case, back, actor=user, now=now, event="write_off_refused",
                                 detail={"proposed_by": getattr(case.write_off_by, "username", ""),
                                         "reason": case.write_off_reason},
                                 table=WRITE_OFF_REFUSALS)  # fmt: skip
    return case


def recovery_refund_record(
    *, case_id: int, amount: Decimal, refunded_on: date, reference: str, user: Any, now: datetime
) -> RecoveryCase:
    """返还: record that what was recovered on a case whose stop was reversed has been paid back
    (待返还 → 返还待复核): the amount — all that was recovered, nothing else —, the day it was
    paid (not after the day it is recorded, the local date of `now`) and the payment's reference
    (凭证号). Another officer approves or rejects it (`recovery_refund_decide`)."""
    _require_bureau(user)
    money = _money(amount, "返还金额")
    reference = (reference or "").strip()
    if not reference:
        raise BenefitsError("请填写返还凭证号（转账回单号等）")
    _not_after_day_recorded(refunded_on, label="返还日期", now=now, why="只能登记已经返还的款项")
    with transaction.atomic():
        case = _locked(RecoveryCase, "追回案件", case_id)
        _check(REFUND_TRANSITIONS, case.status, RecoveryStatus.REFUND_RECORDED, RECOVERY_STATUS_ZH)
        if money != case.recovered:
            raise BenefitsError(f"返还金额应为已追回的 {case.recovered:,.2f} 元，不能是 {money:,.2f} 元")
        case.refund_amount = money
        case.refunded_on = refunded_on
        case.refund_ref = reference[:100]
        case.refund_by = user
        case.refund_approved_by = None
        _set_recovery_status(
            case, RecoveryStatus.REFUND_RECORDED, actor=user, now=now, event="refund_recorded",
            fields=["refund_amount", "refunded_on", "refund_ref", "refund_by", "refund_approved_by"],
            detail={"amount": money, "refunded_on": refunded_on, "reference": case.refund_ref},
            table=REFUND_TRANSITIONS,
        )  # fmt: skip
    return case


def recovery_refund_decide(
    *, case_id: int, approve: bool, user: Any, now: datetime, reason: str = ""
) -> RecoveryCase:
    """Approve (→ 已返还) or reject (→ 待返还, the recorded refund cleared and kept in the audit
    record) a recorded refund; never by the officer who recorded it (maker-checker, also
    `recovery_refund_two_people`). A rejection says why (the maker records it again from it)."""
    _require_bureau(user)
    reason = (reason or "").strip()
    if not approve and not reason:
        raise BenefitsError("请填写驳回理由")
    with transaction.atomic():
        case = _locked(RecoveryCase, "追回案件", case_id)
        if case.status != RecoveryStatus.REFUND_RECORDED:
            raise BenefitsError("该案件没有待复核的返还")
        if case.refund_by_id == user.pk:
            raise BenefitsError("登记返还的人不能复核自己的返还（需由另一名经办人员复核）")
        recorded = {"amount": case.refund_amount, "refunded_on": case.refunded_on, "reference": case.refund_ref,
                    "recorded_by": getattr(case.refund_by, "username", "")}  # fmt: skip
        if approve:
            case.refund_approved_by = user
            _set_recovery_status(case, RecoveryStatus.REFUNDED, actor=user, now=now, event="refunded",
                                 fields=["refund_approved_by"], detail=recorded,
                                 table=REFUND_TRANSITIONS)  # fmt: skip
        else:
            case.refund_amount = None
            case.refunded_on = None
            case.refund_ref = ""
            case.refund_by = None
            _set_recovery_status(case, RecoveryStatus.REFUND_DUE, actor=user, now=now, event="refund_rejected",
                                 fields=["refund_amount", "refunded_on", "refund_ref", "refund_by"],
                                 detail={**recorded, "reason": reason}, table=REFUND_TRANSITIONS)  # fmt: skip
    return case


# ---------------------------------------------------------------------------------------------
# Fraud 冒领 and the blacklist


def fine_bounds(amount_obtained: Decimal) -> tuple[Decimal, Decimal]:
    """Notice 四(二): 处骗取金额二倍以上五倍以下的罚款 — both ends included."""
    return (amount_obtained * 2).quantize(FEN), (amount_obtained * 5).quantize(FEN)


class FraudCaseNotEnded(BenefitsError):
    """The person has a fraud case not ended (`case`): a second is refused."""

    def __init__(self, case: FraudCase) -> None:
        self.case = case
        super().__init__(
            f"该人员已有未结案的欺诈案件 #{case.pk}（{FRAUD_STATUS_ZH.get(case.status, case.status)}，"
            f"骗取 {case.amount_obtained:,.2f} 元），同一人只能有一件未结案的欺诈案件；请在该案件中办理"
        )


def _open_fraud_case_of(recipient_id: int) -> FraudCase | None:
    """The person's fraud case not ended (立案 or 已处罚), if any: at most one
    (`one_open_fraud_case_per_person`)."""
    return FraudCase.objects.filter(recipient_id=recipient_id, status__in=OPEN_FRAUD_STATES).first()


def _refuse_second_fraud_case(case: FraudCase | None) -> None:
    if case is not None:
        raise FraudCaseNotEnded(case)


def fraud_case_open(
    *,
    recipient: Recipient,
    amount_obtained: Decimal,
    opened_by: Any,
    source_ref: str,
    note: str,
    now: datetime,
) -> FraudCase:
    """Open a fraud case (someone collected or certified on a dead person's behalf). It arises
    from the person's live recovery case (`recovery_case`, stored); with none yet, the recovery
    case that opens later for the person takes it (`_fraud_cases_link`)."""
    _require_bureau(opened_by)
    money = _money(amount_obtained, "骗取金额")
    if money <= 0:
        raise BenefitsError("骗取金额应大于 0")
    with transaction.atomic():
        _refuse_second_fraud_case(_open_fraud_case_of(recipient.pk))
        recovery = _live_recovery_of(recipient.pk)
        try:
            with transaction.atomic():  # a savepoint: a refusal by the database leaves the rest usable
                case = FraudCase.objects.create(
                    recipient=recipient, unit_id=recipient.unit_id, amount_obtained=money,
                    source_ref=source_ref[:100], note=note, opened_by=opened_by, opened_at=now,
                    recovery_case=recovery,
                )  # fmt: skip
        except IntegrityError:  # another officer opened one since the check above
            _refuse_second_fraud_case(
                FraudCase.objects.filter(recipient_id=recipient.pk, status__in=OPEN_FRAUD_STATES).first()
            )
            raise
        audit_record(
            actor=opened_by, action="fraud_case.opened", target_type="fraud_case", target_id=case.pk,
            after={"recipient": recipient.pk, "amount_obtained": money, "source_ref": case.source_ref,
                   "status": case.status, "recovery_case": recovery.pk if recovery else None},
            at=now,
        )  # fmt: skip
    return case


@dataclass(frozen=True)
class FindingCases:
    """The person's fraud cases opened by an earlier bureau finding, as a later finding found them
    (`fraud_cases_follow_finding`)."""

    followed: list[FraudCase]  # open: now for the later finding's amount (audited)
    to_correct: list[dict[str, Any]]  # left as they were: past the state where the amount may change
    live: list[FraudCase]  # every such case not dismissed (a later 疑似冒领 opens no second one)


def fraud_cases_follow_finding(
    *, recipient: Recipient, amount_obtained: Decimal | None, death_date: date, source_ref: str, user: Any,
    now: datetime,
) -> FindingCases:  # fmt: skip
    """A later bureau finding (`source_ref` review:N, `death_date`) on a person whose fraud case an
    earlier bureau finding opened: the case follows the amount obtained after the new date of
    death (`amount_obtained`; None: the amount does not change, the finding does not revise it).
    A case still open (not yet fined or dismissed) takes the new amount, audited in the same
    transaction (`fraud_case.amount_revised_by_finding`: old and new amount, the finding, its date
    of death). A fined or closed case — its fine was decided on the old amount — is left as it
    is and returned in `to_correct` (with the amounts and why) for the finding to say that it
    needs a manual correction; so is an open case when the new date leaves nothing obtained (an
    amount must be above 0: the officer dismisses it or corrects it). A dismissed case (不予处罚)
    has ended: left as it is and not returned."""
    _require_bureau(user)
    money = None if amount_obtained is None else _money(amount_obtained, "骗取金额")
    followed: list[FraudCase] = []
    to_correct: list[dict[str, Any]] = []
    live: list[FraudCase] = []
    ref = source_ref[:100]
    with transaction.atomic():
        earlier = (
            FraudCase.objects.filter(recipient=recipient, source_ref__startswith=BUREAU_FINDING_REF)
            .exclude(source_ref=ref)
            .exclude(status=FraudStatus.DISMISSED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for pk in list(earlier):
            case = _locked(FraudCase, "欺诈案件", pk)
            if case.status == FraudStatus.DISMISSED:
                continue
            live.append(case)
            if money is None or money == case.amount_obtained:
                continue
            if case.status == FraudStatus.OPEN and money > 0:
                old = case.amount_obtained
                case.amount_obtained = money
                case.save(update_fields=["amount_obtained"])
                audit_record(
                    actor=user, action="fraud_case.amount_revised_by_finding", target_type="fraud_case",
                    target_id=case.pk, before={"amount_obtained": old},
                    after={"amount_obtained": money, "source_ref": ref, "death_date": death_date,
                           "recipient": recipient.pk},
                    at=now,
                )  # fmt: skip
                followed.append(case)
            else:
                to_correct.append(
                    {"case": case.pk, "status": case.status, "amount_obtained": case.amount_obtained,
                     "amount_now": money}
                )  # fmt: skip
    return FindingCases(followed=followed, to_correct=to_correct, live=live)


def _set_fraud_status(case: FraudCase, new: str, *, actor: Any, now: datetime, event: str,
                      fields: list[str], detail: dict[str, Any]) -> None:  # fmt: skip
    old = case.status
    _check(FRAUD_TRANSITIONS, old, new, FRAUD_STATUS_ZH)
    case.status = new
    case.save(update_fields=["status", *fields])
    audit_record(
        actor=actor, action=f"fraud_case.{event}", target_type="fraud_case", target_id=case.pk,
        before={"status": old}, after={"status": new, **detail}, at=now,
    )  # fmt: skip


def fraud_case_fine(*, case_id: int, fine: Decimal, user: Any, now: datetime) -> FraudCase:
    """Set the fine: between 2 and 5 times the amount obtained, both included (notice 四(二));
    anything else is refused here and by the constraint `fraud_fine_between_2x_and_5x`."""
    _require_bureau(user)
    money = _money(fine, "罚款金额")
    with transaction.atomic():
        case = _locked(FraudCase, "欺诈案件", case_id)
        low, high = fine_bounds(case.amount_obtained)
        if not low <= money <= high:
            raise BenefitsError(
                f"罚款应为骗取金额 {case.amount_obtained:,.2f} 元的二倍以上五倍以下，即 {low:,.2f} 至 {high:,.2f} 元，不能是 {money:,.2f} 元"
            )
        case.fine = money
        case.fined_by = user
        case.fined_at = now
        _set_fraud_status(case, FraudStatus.FINED, actor=user, now=now, event="fined",
                          fields=["fine", "fined_by", "fined_at"],
                          detail={"fine": money, "multiple": (money / case.amount_obtained).quantize(FEN)})  # fmt: skip
    return case


def fraud_case_dismiss(*, case_id: int, reason: str, user: Any, now: datetime) -> FraudCase:
    _require_bureau(user)
    if not reason.strip():
        raise BenefitsError("请填写不予处罚的理由")
    with transaction.atomic():
        case = _locked(FraudCase, "欺诈案件", case_id)
        case.closed_at = now
        case.note = (case.note + "\n" if case.note else "") + f"不予处罚：{reason.strip()}"
        _set_fraud_status(case, FraudStatus.DISMISSED, actor=user, now=now, event="dismissed",
                          fields=["closed_at", "note"], detail={"reason": reason.strip()})  # fmt: skip
    return case


def fraud_case_collect(*, case_id: int, amount: Decimal, user: Any, now: datetime) -> FraudCase:
    """Record fine money received (never more than the fine)."""
    _require_bureau(user)
    money = _money(amount)
    if money <= 0:
        raise BenefitsError("缴纳金额应大于 0")
    with transaction.atomic():
        case = _locked(FraudCase, "欺诈案件", case_id)
        if case.status != FraudStatus.FINED or case.fine is None:
            raise BenefitsError("只有已处罚、未结案的案件可以登记罚款缴纳")
        if case.fine_collected + money > case.fine:
            raise BenefitsError(f"缴纳金额超过未缴罚款 {case.fine - case.fine_collected:,.2f} 元")
        case.fine_collected += money
        case.save(update_fields=["fine_collected"])
        audit_record(
            actor=user, action="fraud_case.fine_collected", target_type="fraud_case", target_id=case.pk,
            after={"amount": money, "fine_collected": case.fine_collected}, at=now,
        )  # fmt: skip
    return case


def fraud_case_close(*, case_id: int, user: Any, now: datetime, reason: str = "") -> FraudCase:
    """Close a fined case. A closed case takes no more fine payments (`fraud_case_collect`), so
    one whose fine is not fully paid is closed only with a written reason (移送法院强制执行,
    无力缴纳 …): kept in the case's note and in the audit record with the amount unpaid."""
    _require_bureau(user)
    reason = (reason or "").strip()
    with transaction.atomic():
        case = _locked(FraudCase, "欺诈案件", case_id)
        unpaid = (case.fine or Decimal("0")) - case.fine_collected
        if case.status == FraudStatus.FINED and unpaid > 0 and not reason:
            raise BenefitsError(
                f"罚款尚有 {unpaid:,.2f} 元未缴，结案后不能再登记缴纳；确需结案的，请填写结案理由"
            )
        case.closed_at = now
        fields = ["closed_at"]
        if reason:
            case.note = (case.note + "\n" if case.note else "") + f"结案：{reason}"
            fields.append("note")
        _set_fraud_status(case, FraudStatus.CLOSED, actor=user, now=now, event="closed", fields=fields,
                          detail={"fine_collected": case.fine_collected, "unpaid": max(unpaid, Decimal("0")),
                                  "reason": reason})  # fmt: skip
    return case


def fraud_case_refer(*, case_id: int, referred_on: date, user: Any, now: datetime) -> FraudCase:
    """移送司法机关 (notice 四(二); 人社部发〔2015〕14号): flag the case with the date, which may not
    be after the day it is recorded (the local date of `now`)."""
    _require_bureau(user)
    _not_after_day_recorded(referred_on, label="移送司法机关日期", now=now, why="只能登记已经移送的案件")
    with transaction.atomic():
        case = _locked(FraudCase, "欺诈案件", case_id)
        if case.referred:
            raise BenefitsError("该案件已移送司法机关")
        if case.status == FraudStatus.DISMISSED:
            raise BenefitsError("不予处罚的案件不能移送")
        case.referred = True
        case.referred_on = referred_on
        case.save(update_fields=["referred", "referred_on"])
        audit_record(
            actor=user, action="fraud_case.referred", target_type="fraud_case", target_id=case.pk,
            after={"referred_on": referred_on}, at=now,
        )  # fmt: skip
    return case


def _listed(*, id_number: str, unit: Unit | None) -> Blacklist | None:
    """The current entry (在列 or 移出待审批) listing this unit, or this person by the normalised ID
    number (a person without one is not matched by name), if any. A removed entry lists nobody."""
    current = Blacklist.objects.select_related("unit").filter(status__in=CURRENT_BLACKLIST_STATES)
    if unit is not None:
        return current.filter(subject_type=SubjectType.UNIT, unit=unit).first()
    if id_number:
        return current.filter(subject_type=SubjectType.PERSON, person_id_number=id_number).first()
    return None


# The check before the insert (the database's constraint answers a second officer at the same moment).
_blacklisted = _listed


def _refuse_second_listing(entry: Blacklist | None) -> None:
    if entry is None:
        return
    since = f"#{entry.pk}（列入日期 {entry.since:%Y-%m-%d}）"
    pending = "，移出正在等待审批" if entry.status == BlacklistStatus.REMOVAL_PROPOSED else ""
    if entry.unit is not None:
        raise BenefitsError(
            f"单位 {entry.unit.unit_no} {entry.unit.name} 已列入黑名单 {since}{pending}，"
            "同一单位移出前不能再次列入"
        )
    raise BenefitsError(
        f"该人员（{entry.person_name}）已列入黑名单 {since}{pending}，同一人移出前不能再次列入"
    )


def blacklist_add(
    *, subject_type: str, reason: str, since: date, user: Any, now: datetime, person_name: str = "",
    person_id_number: str = "", unit: Unit | None = None, fraud_case: FraudCase | None = None,
    until: date | None = None,
) -> Blacklist:  # fmt: skip
    """社会保险失信"黑名单" (notice 四(二)): a person (name, ID number) or a unit, listed from
    `since`, which may not be after the day it is recorded (the local date of `now`), until the
    end of the listing period the decision sets (`until`, 列入期限: after `since`; None: none). A
    person's ID number, when given, is read as everywhere else (`zige.ids.normalise_id`: spaces
    and full-width digits cleaned, a 15-digit number upgraded) and refused when it is not a valid
    one — never cut to fit the column. A person (by that number) or a unit with a current entry
    is refused, naming the entry (the database's `one_blacklist_entry_per_person` /
    `one_blacklist_entry_per_unit` too); one whose entries were all removed is listed again."""
    _require_bureau(user)
    if subject_type not in SubjectType.values:
        raise BenefitsError("请选择列入黑名单的是个人还是单位")
    if not reason.strip():
        raise BenefitsError("请填写列入黑名单的原因")
    if subject_type == SubjectType.PERSON and not person_name.strip():
        raise BenefitsError("请填写个人姓名")
    if subject_type == SubjectType.UNIT and unit is None:
        raise BenefitsError("请选择单位")
    _not_after_day_recorded(since, label="列入日期", now=now, why="只能登记已经作出的列入决定")
    if until is not None and until <= since:
        raise BenefitsError(f"列入期限（{until:%Y-%m-%d}）应晚于列入日期（{since:%Y-%m-%d}）")
    id_number = ""
    if subject_type == SubjectType.PERSON and person_id_number.strip():
        try:
            id_number = normalise_id(person_id_number, as_of=timezone.localdate(now))
        except IdError as exc:
            raise BenefitsError(
                f"身份证号 {person_id_number.strip()[:40]} 无效：{REJECT_REASON_ZH.get(exc.reason, exc.reason)}"
            ) from None
    unit = unit if subject_type == SubjectType.UNIT else None
    with transaction.atomic():
        _refuse_second_listing(_blacklisted(id_number=id_number, unit=unit))
        try:
            with transaction.atomic():  # a savepoint: a refusal by the database leaves the rest usable
                entry = Blacklist.objects.create(
                    subject_type=subject_type,
                    person_name=person_name.strip()[:100] if subject_type == "person" else "",
                    person_id_number=id_number, unit=unit, reason=reason.strip(), since=since, until=until,
                    by=user, fraud_case=fraud_case, created_at=now,
                )  # fmt: skip
        except IntegrityError:  # another officer listed them since the check above
            _refuse_second_listing(_listed(id_number=id_number, unit=unit))
            raise
        audit_record(
            actor=user, action="blacklist.added", target_type="blacklist", target_id=entry.pk,
            after={"subject_type": subject_type, "person_name": entry.person_name,
                   "unit": unit.unit_no if unit else "", "since": since, "until": until,
                   "fraud_case": fraud_case.pk if fraud_case else None},
            at=now,
        )  # fmt: skip
    return entry


def blacklist_period_change(
    *, entry_id: int, until: date | None, basis: str, user: Any, now: datetime
) -> Blacklist:
    """变更列入期限: a listing decision's period set, moved or lifted after the listing (a
    reconsideration shortens it, a later decision extends it), with its basis (变更依据: the
    decision's number). `until` after the 列入日期, or None for no period. Only while the entry is
    在列: a removal awaiting approval was proposed on the period as it stood, so it is decided or
    withdrawn first. One officer's change, audited (`blacklist.period_changed`, the period before
    and after): it takes no one off the list, and a removal for 列入期满 still needs two people."""
    _require_bureau(user)
    basis = (basis or "").strip()
    if not basis:
        raise BenefitsError("请填写变更列入期限的依据（如决定书文号）")
    with transaction.atomic():
        entry = _locked(Blacklist, "黑名单条目", entry_id)
        if entry.status == BlacklistStatus.REMOVAL_PROPOSED:
            raise BenefitsError(
                f"黑名单 #{entry.pk} 的移出正在等待审批：请先审批、驳回或撤回，再变更列入期限"
            )
        if entry.status != BlacklistStatus.LISTED:
            raise BenefitsError(f"黑名单 #{entry.pk} 已移出，不能变更列入期限")
        if until is not None and until <= entry.since:
            raise BenefitsError(f"列入期限（{until:%Y-%m-%d}）应晚于列入日期（{entry.since:%Y-%m-%d}）")
        if until == entry.until:
            raise BenefitsError("列入期限没有变化")
        previous = entry.until
        entry.until = until
        entry.save(update_fields=["until"])
        audit_record(
            actor=user, action="blacklist.period_changed", target_type="blacklist", target_id=entry.pk,
            before={"until": previous}, after={"until": until, "previous_until": previous, "basis": basis}, at=now,
        )  # fmt: skip
    return entry


def _set_blacklist_status(entry: Blacklist, new: str, *, actor: Any, now: datetime, event: str,
                          fields: list[str], before: dict[str, Any], detail: dict[str, Any]) -> None:  # fmt: skip
    old = entry.status
    _check(BLACKLIST_TRANSITIONS, old, new, BLACKLIST_STATUS_ZH)
    entry.status = new
    entry.save(update_fields=["status", *fields])
    audit_record(
        actor=actor, action=f"blacklist.{event}", target_type="blacklist", target_id=entry.pk,
        before={"status": old, **before}, after={"status": new, **detail}, at=now,
    )  # fmt: skip


def _refuse_unsettled_repair(entry: Blacklist) -> None:
    """信用修复 is the listed party putting the breach right: for an entry linked to a fraud case,
    the fine decided and paid in full and the money obtained back (its recovery case recovered),
    as `selectors.fraud_case_unsettled` lists what is missing."""
    from zige.benefits.selectors import fraud_case_unsettled

    if entry.fraud_case_id is None:
        return
    missing = fraud_case_unsettled(
        FraudCase.objects.select_related("recovery_case").get(pk=entry.fraud_case_id)
    )
    if missing:
        raise BenefitsError(
            f"关联的欺诈案件 #{entry.fraud_case_id} 尚未了结：{'；'.join(missing)}。"
            "信用修复须在退回骗取金额、缴清罚款之后；其他情形请选择相应的移出原因"
        )


# The entry's fields of a pending 移出 proposal, cleared when it is rejected or withdrawn.
REMOVAL_PROPOSAL_FIELDS = (
    "removal_reason",
    "removal_note",
    "removed_on",
    "removal_proposed_by",
    "removal_proposed_at",
)


def blacklist_removal_propose(
    *, entry_id: int, reason: str, removed_on: date, note: str, user: Any, now: datetime
) -> Blacklist:
    """移出黑名单, the maker's step (在列 → 移出待审批): why (`RemovalReason`: 列入期满, 信用修复,
    复议或诉讼撤销, 错误列入), the day the removal takes effect (not before the listing, not after
    the day it is recorded: the local date of `now`) and a written note (the decision's number,
    what was paid …; optional for 列入期满, where the period speaks). 列入期满 needs a period that
    has ended by that day; 信用修复 of an entry linked to a fraud case needs the case settled
    (`_refuse_unsettled_repair`). Another officer approves or rejects it
    (`blacklist_removal_decide`); the entry lists its person or unit until then."""
    _require_bureau(user)
    if reason not in RemovalReason.values:
        raise BenefitsError("请选择移出黑名单的原因")
    note = (note or "").strip()
    if not note and reason != RemovalReason.EXPIRED:
        raise BenefitsError(f"请填写移出说明（{REMOVAL_REASON_ZH[reason]}的依据，如决定书文号、缴款情况）")
    _not_after_day_recorded(removed_on, label="移出日期", now=now, why="只能登记已经作出的移出决定")
    with transaction.atomic():
        entry = _locked(Blacklist, "黑名单条目", entry_id)
        if entry.status != BlacklistStatus.LISTED:
            raise BenefitsError(
                f"黑名单 #{entry.pk} 为“{BLACKLIST_STATUS_ZH[entry.status]}”，只有在列的条目可以提出移出"
            )
        if removed_on < entry.since:
            raise BenefitsError(
                f"移出日期（{removed_on:%Y-%m-%d}）不能早于列入日期（{entry.since:%Y-%m-%d}）"
            )
        if reason == RemovalReason.EXPIRED:
            if entry.until is None:
                raise BenefitsError("该条目未登记列入期限，不能以“列入期满”移出；请选择其他原因并写明依据")
            if not entry.expired_by(removed_on):
                raise BenefitsError(
                    f"列入期限至 {entry.until:%Y-%m-%d}，移出日期 {removed_on:%Y-%m-%d} 尚未期满"
                )
        if reason == RemovalReason.CREDIT_REPAIRED:
            _refuse_unsettled_repair(entry)
        entry.removal_reason = reason
        entry.removal_note = note
        entry.removed_on = removed_on
        entry.removal_proposed_by = user
        entry.removal_proposed_at = now
        _set_blacklist_status(
            entry, BlacklistStatus.REMOVAL_PROPOSED, actor=user, now=now, event="removal_proposed",
            fields=list(REMOVAL_PROPOSAL_FIELDS), before={},
            detail={"removal_reason": reason, "removed_on": removed_on, "note": note, "fraud_case": entry.fraud_case_id},
        )  # fmt: skip
    return entry


def _removal_proposal(entry: Blacklist) -> dict[str, Any]:
    """What the entry's pending 移出 proposal says, for its audit records."""
    return {"removal_reason": entry.removal_reason, "removed_on": entry.removed_on, "note": entry.removal_note,
            "proposed_by": getattr(entry.removal_proposed_by, "username", "")}  # fmt: skip


def _clear_removal_proposal(entry: Blacklist) -> None:
    entry.removal_reason = ""
    entry.removal_note = ""
    entry.removed_on = None
    entry.removal_proposed_by = None
    entry.removal_proposed_at = None


def blacklist_removal_withdraw(*, entry_id: int, user: Any, now: datetime, reason: str = "") -> Blacklist:
    """The maker takes back their own 移出 proposal before it is decided (移出待审批 → 在列): a wrong
    reason, day or note is withdrawn and proposed again rather than left for a checker to reject.
    Only the officer who proposed it (another officer approves or rejects it,
    `blacklist_removal_decide`); the reason is optional. The withdrawn proposal is cleared from the
    entry and kept in the audit record `blacklist.removal_withdrawn`, as a rejected one is."""
    _require_bureau(user)
    reason = (reason or "").strip()
    with transaction.atomic():
        entry = _locked(Blacklist, "黑名单条目", entry_id)
        if entry.status != BlacklistStatus.REMOVAL_PROPOSED:
            raise BenefitsError(f"黑名单 #{entry.pk} 没有待审批的移出")
        if entry.removal_proposed_by_id != user.pk:
            raise BenefitsError("只有提出移出的人可以撤回；其他经办人员请审批或驳回")
        proposed = _removal_proposal(entry)
        _clear_removal_proposal(entry)
        _set_blacklist_status(
            entry, BlacklistStatus.LISTED, actor=user, now=now, event="removal_withdrawn",
            fields=list(REMOVAL_PROPOSAL_FIELDS), before=proposed,
            detail={"withdrawal_reason": reason} if reason else {},
        )  # fmt: skip
    return entry


def blacklist_removal_decide(
    *, entry_id: int, approve: bool, user: Any, now: datetime, reason: str = ""
) -> Blacklist:
    """The checker's step: approve (移出待审批 → 已移出: the entry stays, with who proposed and
    approved it and when; its person or unit may be listed again) or reject with a reason (→ 在列,
    the proposal cleared and kept in the audit record `blacklist.removal_rejected`). Never by the
    officer who proposed it (maker-checker, also `blacklist_removal_two_people`). A 信用修复 is
    checked again against the fraud case at approval."""
    _require_bureau(user)
    reason = (reason or "").strip()
    if not approve and not reason:
        raise BenefitsError("请填写驳回理由")
    with transaction.atomic():
        entry = _locked(Blacklist, "黑名单条目", entry_id)
        if entry.status != BlacklistStatus.REMOVAL_PROPOSED:
            raise BenefitsError(f"黑名单 #{entry.pk} 没有待审批的移出")
        if entry.removal_proposed_by_id == user.pk:
            raise BenefitsError("提出移出的人不能审批自己的提议（需由另一名经办人员审批）")
        proposed = _removal_proposal(entry)
        if approve:
            if entry.removal_reason == RemovalReason.CREDIT_REPAIRED:
                _refuse_unsettled_repair(entry)
            entry.removal_approved_by = user
            entry.removed_at = now
            _set_blacklist_status(entry, BlacklistStatus.REMOVED, actor=user, now=now, event="removed",
                                  fields=["removal_approved_by", "removed_at"], before={}, detail=proposed)  # fmt: skip
        else:
            _clear_removal_proposal(entry)
            _set_blacklist_status(
                entry, BlacklistStatus.LISTED, actor=user, now=now, event="removal_rejected",
                fields=list(REMOVAL_PROPOSAL_FIELDS), before=proposed, detail={"reason": reason},
            )  # fmt: skip
    return entry
