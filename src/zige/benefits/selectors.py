"""Payment actions and cases (reads), and the recovered-vs-outstanding report.

Bureau pages only (unit operators never come here: the views answer 403), so no unit scope
is applied; personal numbers are masked in the templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncMonth

from zige.benefits.models import (
    CURRENT_BLACKLIST_STATES,
    REFUND_OWED_STATUSES,
    REVERSED_STATUSES,
    Blacklist,
    BlacklistStatus,
    ExportBatch,
    FraudCase,
    FraudStatus,
    PaymentAction,
    RecoveryCase,
    RecoveryStatus,
)
from zige.roster.selectors import person_matches

if TYPE_CHECKING:
    from zige import rules
    from zige.roster.models import Recipient

ZERO = Decimal("0.00")


def actions_list(
    *, state: str = "", kind: str = "", source: str = "", q: str = ""
) -> QuerySet[PaymentAction]:
    qs = PaymentAction.objects.select_related("recipient", "unit", "proposed_by", "approved_by", "run")
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    if source:
        qs = qs.filter(source=source)
    if q:
        qs = qs.filter(person_matches(q, path="recipient__"))
    return qs.order_by("-proposed_at", "-pk")


def next_to_approve(*, after: PaymentAction, user: Any) -> PaymentAction | None:
    """下一条: the proposal after `after` in the approval queue (the list's 待审批 order: newest
    first), that `user` may approve (not their own proposal); from the top again past the
    end. None when nothing else waits for them. For the page an approval or a rejection lands on."""
    qs = (
        actions_list(state="proposed")
        .exclude(pk=after.pk)
        .exclude(proposed_by_id=getattr(user, "pk", None))
        .select_related(None)
        .select_related("recipient")
    )
    later = qs.filter(
        Q(proposed_at__lt=after.proposed_at) | Q(proposed_at=after.proposed_at, pk__lt=after.pk)
    ).first()
    return later or qs.first()


def action_counts() -> dict[str, int]:
    return dict(PaymentAction.objects.values_list("state").annotate(n=Count("pk")).order_by())


def action_get(pk: int) -> PaymentAction | None:
    return (
        PaymentAction.objects.select_related(
            "recipient", "unit", "proposed_by", "approved_by", "closed_by", "run", "reverses"
        )
        .filter(pk=pk)
        .first()
    )


def rule_figures(
    *, recipient: Recipient, kind: str, effective_month: str, as_of: date
) -> rules.Action | None:
    """What the rules (docs/rules.md §5) give for a `kind` action of the person from
    `effective_month`, as of `as_of` — the figures an officer's proposal is checked against
    (`payment_action_propose`). A stop or suspension effective in a month stands for a loss or
    deciding record in the month before (§5.1, §5.2: effective the month after it); a resume is
    effective the month after `as_of` with its back pay (§5.3, the latest release read from the
    evidence store as a run reads it). None when the rules give no such action for the person
    (a suspension of someone already 暂停, a resume of someone 正常: "nothing else yields an
    action")."""
    from zige.verification.services import payment_change

    year, month = int(effective_month[:4]), int(effective_month[5:])
    before = date(year, month, 1) - timedelta(days=1)
    status = {"stop": "stop", "suspend": "suspend", "resume": "eligible"}[kind]
    action = payment_change(recipient=recipient, status=status, evidence_date=before, as_of=as_of)
    return action if action is not None and action.action == kind else None


@dataclass(frozen=True)
class Calculation:
    """An action's amount next to months × 月养老金 (rules §5), for the checker's page: the
    pension the figures were calculated from, fixed with them (`PaymentAction.monthly_amount`),
    so an action proposed or approved before the person's pension changed still shows the
    calculation it was proposed and approved with. `estimated`: nothing was fixed (an action from
    before the pension was kept with it), so the calculation is from the current pension and the
    page says so (按当前月养老金估算). `current_monthly`: the person's pension now, shown beside
    a fixed one that differs. `amount` None when the action has no months."""

    monthly_amount: Decimal | None
    amount: Decimal | None
    differs: bool
    estimated: bool = False
    current_monthly: Decimal | None = None

    @property
    def pension_changed(self) -> bool:
        """A fixed pension other than the person's current one."""
        return not self.estimated and self.monthly_amount != self.current_monthly


def action_calculation(action: PaymentAction) -> Calculation:
    from zige.rules import payment_amount

    current = action.recipient.monthly_amount
    estimated = not action.monthly_fixed
    monthly = current if estimated else action.monthly_amount
    calculated = None if action.months is None else payment_amount(action.months, monthly)
    return Calculation(
        monthly_amount=monthly,
        amount=calculated,
        differs=action.amount is not None if calculated is None else action.amount != calculated,
        estimated=estimated,
        current_monthly=current,
    )


def proposal_differences(action: PaymentAction) -> list[str]:
    """What the rules gave when an officer proposed other figures (`figures_note`), as the
    proposal's check said it and its audit record keeps it (`payment_action.proposed`, its
    `calculated.differs`): e.g. 月数按规则应为 4 个月（生效月份 2026-09，截至 2026-12…）. The
    checker reads them beside the officer's reason; the page's own calculation is only months ×
    月养老金 of the officer's months. Empty for an action without such a reason."""
    from zige.audit.selectors import record_of

    if not action.figures_note.strip():
        return []
    proposed = record_of(action="payment_action.proposed", target_type="payment_action", target_id=action.pk)
    calculated = proposed.get("calculated") or {}
    return [str(text) for text in calculated.get("differs") or []]


def zero_months_reason(action: PaymentAction) -> str:
    """Why an action has 0 months (so 0.00), in Chinese, for the list and the action page, where
    a bare 0 个月 / 0.00 looks like an error: the reason the rules (§5, `rules.payment_months`,
    the same branches that give the months) give for the action's own kind and effective month
    as of the day its figures were set — its run's as-of date, or the day it was proposed — and
    the person as the roster stood when it was proposed (`roster.selectors.status_at`: 待遇状态,
    状态变更日期, 停发原因 from the roster's change history) with the 月养老金 fixed on the action,
    not today's roster: a roster change after the proposal does not change what the action's
    figures were made from. A reversal answers for its original. An officer's 0 months the rules
    do not give point to the officer's reason (与计算不符的说明). Empty when the months are not 0
    or no rule explains them."""
    from django.utils import timezone

    from zige import rules
    from zige.roster.selectors import status_at
    from zige.verification.services import _latest_release

    if action.months != 0:
        return ""
    original = action.reverses if action.reverses_id and action.reverses is not None else action
    if original.run_id is not None and original.run is not None:
        as_of = original.run.as_of
    else:
        as_of = timezone.localdate(original.proposed_at)
    person = original.recipient
    then = status_at(recipient=person, at=original.proposed_at)
    facts = rules.Recipient(
        person_no=person.person_no, id_number=person.id_number,
        # A resume is only ever proposed for a 暂停 person (the roster may have said so in the
        # same import that the run read, or an officer proposes it before the roster changes).
        benefit_status="suspended" if original.kind == "resume" or then.benefit_status == "suspended" else "normal",
        status_since=then.status_since, status_reason=then.status_reason,
        monthly_amount=original.monthly_amount if original.monthly_fixed else person.monthly_amount,
    )  # fmt: skip
    status = {"stop": "stop", "suspend": "suspend", "resume": "eligible"}[original.kind]
    reason = rules.payment_months(
        recipient=facts, kind=original.kind, effective_month=original.effective_month,
        latest_release=_latest_release(facts, status, as_of), as_of=as_of,
    ).reason  # fmt: skip
    if not reason and original.figures_note.strip():
        return "经办人填写的月数，理由见与计算不符的说明"
    return reason


@dataclass(frozen=True)
class Basis:
    """What decided a run's proposal (依据), for the checker: the run's decision in words as the
    person page says it (`reports.explain.explain_decision`), the deciding record's kind and day,
    and — when the evidence store has the record — its file and row. `cleared_by`: the review
    task whose alive finding has cleared the record since (rules §8.5). `superseded_by`: the
    review task of the later death finding that superseded the record (a death finding's loss
    record, rules §8.5: the latest finding wins), as the person page marks it."""

    text: str
    kind: str
    day: date | None
    file_name: str
    row: int | None
    cleared_by: int | None
    superseded_by: int | None = None


def action_basis(action: PaymentAction, *, user: Any) -> Basis | None:
    """The deciding evidence of a run's proposal: the decision of its run for the person. None for
    any other action (an officer's has its note; a verification's or a task's names its task) or
    when the run no longer holds the decision. The record as `user` may see it
    (`reports.selectors.evidence_visible`): the marks of the bureau's reviews (核销, 已被取代)
    only for a user who sees them, as on the person page."""
    if action.source != "run" or action.run_id is None:
        return None
    from zige.certification.models import Decision
    from zige.engine.labels import KIND_ZH
    from zige.reports import selectors as reports_selectors
    from zige.reports.explain import explain_decision

    decision = (
        Decision.objects.select_related("run")
        .filter(run_id=action.run_id, recipient_id=action.recipient_id)
        .first()
    )
    if decision is None:
        return None
    evidence = reports_selectors.evidence_visible(action.recipient, user)
    record = reports_selectors.deciding_record(decision, evidence) or {}
    earlier = reports_selectors.contradicted_record(decision, evidence)
    text = explain_decision(decision, record or None, as_of=decision.run.as_of, earlier=earlier)
    return Basis(
        text=text,
        kind=KIND_ZH.get(decision.evidence_kind, decision.evidence_kind),
        day=decision.evidence_date,
        file_name=str(record.get("file_name") or ""),
        row=record.get("row"),
        cleared_by=record.get("cleared_by"),
        superseded_by=record.get("superseded_by"),
    )


def exportable() -> QuerySet[PaymentAction]:
    return PaymentAction.objects.filter(state="approved").exclude(export_lines__active=True)


def batches_list() -> QuerySet[ExportBatch]:
    return ExportBatch.objects.select_related("created_by", "confirmed_by").order_by("-pk")


def batch_get(pk: int) -> ExportBatch | None:
    return ExportBatch.objects.select_related("created_by", "confirmed_by").filter(pk=pk).first()


def recovery_list(*, status: str = "", q: str = "") -> QuerySet[RecoveryCase]:
    """`in_fraud`: a fraud case (冒领) other than 不予处罚 arises from the case
    (`FraudCase.recovery_case`) — the list marks it. `q`: one person (`person_matches`)."""
    qs = RecoveryCase.objects.select_related("recipient", "unit", "action").annotate(
        in_fraud=Exists(_live_frauds().filter(recovery_case_id=OuterRef("pk")))
    )
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(person_matches(q, path="recipient__"))
    return qs.order_by("-opened_at", "-pk")


def recovery_get(pk: int) -> RecoveryCase | None:
    return (
        RecoveryCase.objects.select_related(
            "recipient", "unit", "action", "write_off_by", "write_off_approved_by"
        )
        .filter(pk=pk)
        .first()
    )


def fraud_list(*, status: str = "", q: str = "") -> QuerySet[FraudCase]:
    """`q`: one person (`person_matches`)."""
    qs = FraudCase.objects.select_related("recipient", "unit", "opened_by")
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(person_matches(q, path="recipient__"))
    return qs.order_by("-opened_at", "-pk")


def fraud_get(pk: int) -> FraudCase | None:
    return (
        FraudCase.objects.select_related("recipient", "unit", "opened_by", "fined_by").filter(pk=pk).first()
    )


def recoveries_of_fraud(case: FraudCase) -> list[RecoveryCase]:
    """The recovery case (追回) the fraud case arises from (`FraudCase.recovery_case`, stored):
    one death, one stop, one recovery (rules §8.6), so the money a 冒领 obtained is the same money
    the recovery case recovers — the fraud page shows it with its amounts and status, and the
    report counts it once. Empty while the person has none."""
    return list(RecoveryCase.objects.filter(fraud_cases=case).select_related("action"))


def frauds_of_recovery(case: RecoveryCase) -> list[FraudCase]:
    """The fraud cases (冒领案件) that arise from a recovery case, for the recovery page."""
    return list(case.fraud_cases.order_by("opened_at", "pk"))


# The blacklist page's views: the entries that list someone (the default), the removals waiting
# for a checker, the removed ones, all.
BLACKLIST_VIEWS = {"current": "在列", "pending": "移出待审批", "removed": "已移出", "all": "全部"}


def blacklist_list(*, view: str = "current") -> QuerySet[Blacklist]:
    """The blacklist: by default the current entries (在列 and 移出待审批: they list their person or
    unit); `pending` the removals waiting for a checker, oldest proposal first (the dashboard's
    待办 links there); `removed` the removed ones (已移出, kept in the record), newest removal
    first; `all`."""
    qs = Blacklist.objects.select_related(
        "unit", "by", "fraud_case", "removal_proposed_by", "removal_approved_by"
    )
    if view == "pending":
        return qs.filter(status=BlacklistStatus.REMOVAL_PROPOSED).order_by("removal_proposed_at", "pk")
    if view == "removed":
        return qs.filter(status=BlacklistStatus.REMOVED).order_by("-removed_on", "-pk")
    if view != "all":
        qs = qs.filter(status__in=CURRENT_BLACKLIST_STATES)
    return qs.order_by("-since", "-pk")


def blacklist_counts() -> dict[str, int]:
    """Entries per view of the blacklist page, and how many removals wait for a checker."""
    counts = Blacklist.objects.aggregate(
        current=Count("pk", filter=Q(status__in=CURRENT_BLACKLIST_STATES)),
        removed=Count("pk", filter=Q(status=BlacklistStatus.REMOVED)),
        all=Count("pk"),
        pending=Count("pk", filter=Q(status=BlacklistStatus.REMOVAL_PROPOSED)),
    )
    return {k: int(v) for k, v in counts.items()}


def blacklist_get(pk: int) -> Blacklist | None:
    return (
        Blacklist.objects.select_related(
            "unit", "by", "fraud_case", "fraud_case__recovery_case", "removal_proposed_by",
            "removal_approved_by",
        )
        .filter(pk=pk)
        .first()
    )  # fmt: skip


@dataclass(frozen=True)
class HistoryStep:
    """One audited step of a blacklist entry, as its page lists it."""

    at: Any
    actor: str
    actor_role: str
    action: str
    label: str
    details: list[tuple[str, str]]


def blacklist_history(entry: Blacklist) -> list[HistoryStep]:
    """The entry's steps from the audit log, oldest first: listed, each period changed, each removal
    proposed and rejected or withdrawn (such a proposal is cleared from the entry and kept only
    there), removed."""
    from zige.audit.display import fields, role_label
    from zige.audit.models import AuditEvent
    from zige.audit.selectors import action_label

    events = AuditEvent.objects.filter(target_type="blacklist", target_id=str(entry.pk)).order_by("seq")
    steps = []
    for event in events:
        # the state is the step itself; an empty value (a person's 单位, no period) says nothing
        after = {k: v for k, v in (event.after or {}).items() if k != "status" and v not in (None, "")}
        before = {k: v for k, v in (event.before or {}).items() if k != "status" and v not in (None, "")}
        details = fields(after, "blacklist")
        if event.action in ("blacklist.removal_rejected", "blacklist.removal_withdrawn"):  # what, then why
            details = fields(before, "blacklist") + details
        if event.action == "blacklist.period_changed" and (event.after or {}).get("until") is None:
            details = [("列入期限", "未定期限"), *details]  # lifted: the empty value says it here
        steps.append(
            HistoryStep(at=event.at, actor=event.actor, actor_role=role_label(event.actor_role),
                        action=event.action, label=action_label(event.action), details=details)
        )  # fmt: skip
    return steps


def fraud_case_unsettled(case: FraudCase) -> list[str]:
    """What keeps a fraud case from being settled (了结), for a blacklist removal for 信用修复 —
    the listed party has put the breach right: the fine decided and paid in full (a dismissed
    case, 不予处罚, owes none) and the money obtained back, as far as the system records it (its
    recovery case recovered, or its stop reversed; a written-off amount never came back). Empty
    when settled. A case with no recovery case has no record of the money here: the officer's
    note says how it came back."""
    missing: list[str] = []
    if case.status == FraudStatus.OPEN:
        missing.append("尚未作出处罚决定")
    elif case.status in (FraudStatus.FINED, FraudStatus.CLOSED) and case.fine is not None:
        unpaid = case.fine - case.fine_collected
        if unpaid > 0:
            missing.append(f"罚款尚有 {unpaid:,.2f} 元未缴")
    recovery = case.recovery_case
    if recovery is not None and case.status != FraudStatus.DISMISSED:
        if recovery.status == RecoveryStatus.WRITTEN_OFF:
            missing.append(
                f"追回案件 #{recovery.pk} 已核销 {recovery.amount - recovery.recovered:,.2f} 元，款项未退回"
            )
        elif recovery.outstanding > 0:
            missing.append(f"追回案件 #{recovery.pk} 尚有 {recovery.outstanding:,.2f} 元未追回")
    return missing


# --- the report -------------------------------------------------------------------------------

# Cases whose money is still owed (outstanding counts them); cancelled cases owe nothing,
# written-off ones are reported apart.
OWING = (
    RecoveryStatus.OPEN,
    RecoveryStatus.NOTIFIED,
    RecoveryStatus.REPAYING,
    RecoveryStatus.WRITE_OFF_PROPOSED,
)


@dataclass(frozen=True)
class ReportRow:
    key: str
    label: str
    cases: int
    amount: Decimal
    recovered: Decimal
    outstanding: Decimal
    written_off: Decimal


def _aggregates() -> dict[str, Any]:
    return {
        "n_cases": Count("pk"),
        "s_amount": Coalesce(Sum("amount"), ZERO),
        "s_recovered": Coalesce(Sum("recovered"), ZERO),
        "owing_amount": Coalesce(Sum("amount", filter=Q(status__in=OWING)), ZERO),
        "owing_recovered": Coalesce(Sum("recovered", filter=Q(status__in=OWING)), ZERO),
        "off_amount": Coalesce(Sum("amount", filter=Q(status="written_off")), ZERO),
        "off_recovered": Coalesce(Sum("recovered", filter=Q(status="written_off")), ZERO),
    }


def _sums(qs: QuerySet[RecoveryCase], key: str) -> list[dict[str, Any]]:
    return list(qs.values(key).annotate(**_aggregates()).order_by(key))


def _row(key: str, label: str, r: dict[str, Any]) -> ReportRow:
    return ReportRow(
        key=key, label=label, cases=r["n_cases"], amount=Decimal(r["s_amount"]), recovered=Decimal(r["s_recovered"]),
        outstanding=Decimal(r["owing_amount"]) - Decimal(r["owing_recovered"]),
        written_off=Decimal(r["off_amount"]) - Decimal(r["off_recovered"]),
    )  # fmt: skip


@dataclass(frozen=True)
class Report:
    total: ReportRow
    by_status: list[ReportRow]
    by_unit: list[ReportRow]
    by_month: list[ReportRow]
    fines_imposed: Decimal
    fines_collected: Decimal
    fraud_cases: int
    fraud_obtained: Decimal
    referred: int
    blacklisted: int  # current entries (在列, 移出待审批); removed ones are kept but list nobody
    # Recovery cases a fraud case (not 不予处罚) arises from: the same money as the fraud's amount
    # obtained, counted once, in the recovery totals above.
    fraud_recovery_cases: int = 0
    fraud_recovery_amount: Decimal = ZERO
    # The fraud cases' amount obtained that their recovery case does not cover (a 冒领 with no
    # stop and recovery of its own, or more than it): to be recovered on top of the recovery totals.
    fraud_obtained_uncovered: Decimal = ZERO
    # 返还: cases whose stop was reversed after money was recovered (not in the totals above):
    # what is still to be given back (待返还, 返还待复核) and what was (已返还).
    refund_due_cases: int = 0
    refund_due_amount: Decimal = ZERO
    refunded_cases: int = 0
    refunded_amount: Decimal = ZERO


def _live_frauds() -> QuerySet[FraudCase]:
    return FraudCase.objects.exclude(status=FraudStatus.DISMISSED)


def recovery_report() -> Report:
    """Recovered vs outstanding (totals, by status, by unit, by month the case opened), and the
    fines imposed and collected. Cases whose stop was reversed owe nothing and are not in the
    totals: cancelled ones at all, those owing or having made a refund (返还) on lines of their own."""
    qs = RecoveryCase.objects.exclude(status__in=REVERSED_STATUSES)
    status_labels = dict(RecoveryStatus.choices)
    by_status = [
        _row(r["status"], status_labels.get(r["status"], r["status"]), r) for r in _sums(qs, "status")
    ]
    units = {u: n for u, n in qs.values_list("unit__unit_no", "unit__name").distinct()}
    by_unit = sorted(
        (_row(r["unit__unit_no"], units.get(r["unit__unit_no"], ""), r) for r in _sums(qs, "unit__unit_no")),
        key=lambda row: (-row.outstanding, row.key),
    )  # most outstanding first
    months = _sums(qs.annotate(month=TruncMonth("opened_at")), "month")
    by_month = [_row(f"{r['month']:%Y-%m}", "", r) for r in months if r["month"] is not None]
    total = _row("total", "合计", qs.aggregate(**_aggregates()))
    linked = qs.filter(Exists(_live_frauds().filter(recovery_case_id=OuterRef("pk")))).aggregate(
        n=Count("pk"), amount=Coalesce(Sum("amount"), ZERO)
    )
    # Each live fraud case is covered by its own recovery case (not cancelled), up to that case's
    # amount (shared by the fraud cases of one recovery in the order they were opened).
    covered = {pk: Decimal(amount) for pk, amount in qs.values_list("pk", "amount")}
    uncovered = ZERO
    for recovery_id, obtained in (
        _live_frauds().order_by("pk").values_list("recovery_case_id", "amount_obtained")
    ):
        take = min(Decimal(obtained), covered.get(recovery_id, ZERO))
        if recovery_id in covered:
            covered[recovery_id] -= take
        uncovered += Decimal(obtained) - take
    refunds = RecoveryCase.objects.aggregate(
        due_n=Count("pk", filter=Q(status__in=REFUND_OWED_STATUSES)),
        due=Coalesce(Sum("recovered", filter=Q(status__in=REFUND_OWED_STATUSES)), ZERO),
        done_n=Count("pk", filter=Q(status=RecoveryStatus.REFUNDED)),
        done=Coalesce(Sum("refund_amount", filter=Q(status=RecoveryStatus.REFUNDED)), ZERO),
    )
    fraud = FraudCase.objects.aggregate(
        imposed=Coalesce(Sum("fine", filter=Q(status__in=[FraudStatus.FINED, FraudStatus.CLOSED])), ZERO),
        collected=Coalesce(Sum("fine_collected"), ZERO),
        obtained=Coalesce(Sum("amount_obtained"), ZERO),
        cases=Count("pk"),
        n_referred=Count("pk", filter=Q(referred=True)),
    )
    return Report(
        total=total, by_status=by_status, by_unit=by_unit, by_month=by_month,
        fines_imposed=Decimal(fraud["imposed"]), fines_collected=Decimal(fraud["collected"]),
        fraud_cases=fraud["cases"], fraud_obtained=Decimal(fraud["obtained"]), referred=fraud["n_referred"],
        blacklisted=Blacklist.objects.filter(status__in=CURRENT_BLACKLIST_STATES).count(), fraud_recovery_cases=linked["n"],
        fraud_recovery_amount=Decimal(linked["amount"]), fraud_obtained_uncovered=uncovered,
        refund_due_cases=refunds["due_n"], refund_due_amount=Decimal(refunds["due"]),
        refunded_cases=refunds["done_n"], refunded_amount=Decimal(refunds["done"]),
    )  # fmt: skip


def live_actions_of(recipient_id: int, *, limit: int = 5) -> list[PaymentAction]:
    """A person's payment actions that are live (proposed, approved, exported, confirmed), newest
    first, for the person page: the figures the approval queue and the payment system have."""
    from zige.benefits.models import LIVE_STATES

    return list(
        PaymentAction.objects.filter(recipient_id=recipient_id, state__in=LIVE_STATES)
        .select_related("run")
        .order_by("-proposed_at", "-pk")[:limit]
    )


def cases_of_person(recipient_id: int, *, limit: int = 5) -> tuple[list[RecoveryCase], list[FraudCase]]:
    """A person's recovery cases (追回) and fraud cases (冒领), newest first, for the person page."""
    recoveries = RecoveryCase.objects.filter(recipient_id=recipient_id).order_by("-opened_at", "-pk")
    frauds = FraudCase.objects.filter(recipient_id=recipient_id).order_by("-opened_at", "-pk")
    return list(recoveries[:limit]), list(frauds[:limit])


def stops_left_to_correction(recipient_id: int) -> list[PaymentAction]:
    """A person's stops already approved or exported and not reversed (no live 撤销 of them),
    oldest first: a 确认健在 finding withdraws only stops still awaiting approval
    (`services.payment_stops_withdraw_alive`); these are for the officer to reverse through the
    correction path, and the finding page names them."""
    from zige.benefits.models import LIVE_STATES, ActionKind, ActionState

    return list(
        PaymentAction.objects.filter(
            recipient_id=recipient_id, kind=ActionKind.STOP, reverses__isnull=True,
            state__in=[ActionState.APPROVED, ActionState.EXPORTED],
        )
        .exclude(reversals__state__in=LIVE_STATES)
        .order_by("pk")
    )  # fmt: skip
