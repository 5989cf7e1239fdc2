"""Payment actions (待遇处理), their export to the payment system, recovery and fraud cases.

- `PaymentAction`: stop 停发 / suspend 暂停发放 / resume 恢复发放 (with back pay 补发), proposed by
  a run, a verification, an overdue task or a person, approved by a second person (maker-checker:
  `action_maker_is_not_checker`), exported once (`ExportLine`), confirmed by the payment system.
  A wrong action is undone by a reversal (`reverses`), never edited.
- `ExportBatch` / `ExportLine`: the files handed to the payment system (xlsx + csv + sha256).
- `RecoveryCase` / `RecoveryPayment`: 追回 of months paid after death (notice 二(二)).
- `FraudCase` / `Blacklist`: 冒领 (notice 四(二)): fine 2–5× the amount obtained
  (`fraud_fine_between_2x_and_5x`), 黑名单 (removed — 移出 — by two people, never deleted:
  `blacklist_removal_two_people`), referral to the judicial authorities (移送司法机关).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

# Half a fen: the database compares decimals as floating point on SQLite; amounts are whole fen,
# so a tolerance of half a fen changes no answer and absorbs the float error (PostgreSQL is exact).
HALF_FEN = Decimal("0.005")


class ActionKind(models.TextChoices):
    STOP = "stop", "停发"
    SUSPEND = "suspend", "暂停发放"
    RESUME = "resume", "恢复发放"


class ActionSource(models.TextChoices):
    RUN = "run", "认证批次"
    VERIFICATION = "verification", "单位核实"
    OVERDUE = "overdue", "核实逾期"
    MANUAL = "manual", "人工提出"
    REVERSAL = "reversal", "撤销（冲正）"


class ActionState(models.TextChoices):
    PROPOSED = "proposed", "待审批"
    APPROVED = "approved", "已审批"
    EXPORTED = "exported", "已导出"
    CONFIRMED = "confirmed", "已确认"
    REJECTED = "rejected", "已驳回"
    WITHDRAWN = "withdrawn", "已撤回"


# An action in one of these states counts: it holds its (recipient, kind, month) slot.
LIVE_STATES = (ActionState.PROPOSED, ActionState.APPROVED, ActionState.EXPORTED, ActionState.CONFIRMED)
APPROVED_STATES = (ActionState.APPROVED, ActionState.EXPORTED, ActionState.CONFIRMED)
# A stop or a suspension in one of these states is on its way to the payment system: at most one
# per person and kind, whatever its month (`one_open_stop_or_suspend_per_person`, rules §8.6).
OPEN_STATES = (ActionState.PROPOSED, ActionState.APPROVED, ActionState.EXPORTED)
SINGLE_KINDS = (ActionKind.STOP, ActionKind.SUSPEND)


class PaymentAction(models.Model):
    recipient = models.ForeignKey(
        "roster.Recipient", on_delete=models.PROTECT, related_name="payment_actions"
    )
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    effective_month = models.CharField(max_length=7)  # YYYY-MM
    months = models.PositiveIntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    source = models.CharField(max_length=16, choices=ActionSource.choices)
    source_ref = models.CharField(max_length=100, blank=True)  # run:12, task:34, action:56 …
    note = models.TextField(blank=True)
    # An officer's written reason for months or an amount other than the rules' calculation
    # (months × 月养老金, rules §5): required for such a proposal, audited, shown to the checker.
    figures_note = models.TextField(blank=True, default="")
    # The 月养老金 the figures were calculated from, fixed when they were set (proposed, revised by
    # a later run or finding; a reversal takes its original's): the checker's calculation
    # (months × this) stays what it was when the pension changes later. `monthly_fixed` False: not
    # known (an action from before these fields the backfill could not tie to a pension), pages
    # estimate from the current 月养老金 and say so; True with `monthly_amount` None: the pension
    # was empty then (counted as 0, rules §5).
    monthly_amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    monthly_fixed = models.BooleanField(default=False)
    run = models.ForeignKey(
        "certification.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="payment_actions"
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    state = models.CharField(max_length=16, choices=ActionState.choices, default=ActionState.PROPOSED)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # None: proposed by the system (a run)
    proposed_at = models.DateTimeField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(  # who rejected or withdrew
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    @property
    def figures(self) -> str:
        """Effective month, months and amount as one text (`2026-10|3|10210.02`): what a checker
        saw when approving, compared with the row's figures at approval (a later run may have
        revised a proposal in between, rules §8.6)."""
        months = "" if self.months is None else str(self.months)
        amount = "" if self.amount is None else f"{self.amount:.2f}"
        return f"{self.effective_month}|{months}|{amount}"

    @property
    def approve_one_by_one(self) -> bool:
        """Figures other than the rules' calculation, kept with the officer's written reason
        (`figures_note`): approved only on the action's own page, which shows the checker the
        calculation and the reason — never by bulk approval (docs/payments.md §1)."""
        return bool(self.figures_note.strip())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in ActionKind]), name="action_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(source__in=[s.value for s in ActionSource]), name="action_source_known"
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in ActionState]), name="action_state_known"
            ),
            models.CheckConstraint(
                condition=Q(effective_month__regex=r"^[0-9]{4}-(0[1-9]|1[0-2])$"), name="action_month_yyyy_mm"
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0), name="action_amount_not_negative"
            ),
            # Maker-checker: whoever proposed an action never approves it.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True)
                | Q(proposed_by__isnull=True)
                | ~Q(approved_by=F("proposed_by")),
                name="action_maker_is_not_checker",
            ),
            # An approved action always has a human approver (system proposals too).
            models.CheckConstraint(
                condition=~Q(state__in=[s.value for s in APPROVED_STATES]) | Q(approved_by__isnull=False),
                name="action_approved_has_approver",
            ),
            # One live action per person, kind and month (reversals are not counted).
            models.UniqueConstraint(
                fields=["recipient", "kind", "effective_month"],
                condition=Q(state__in=[s.value for s in LIVE_STATES], reverses__isnull=True),
                name="one_live_action_per_person_kind_month",
            ),
            # One stop and one suspension on its way per person, whatever the month: two paths
            # (a run, a verification, an officer) proposing a stop with different months would
            # otherwise stop one death twice and open two recovery cases. Resumes move their
            # month and are covered above; reversals are separate actions (`reverses` set).
            models.UniqueConstraint(
                fields=["recipient", "kind"],
                condition=Q(
                    kind__in=[k.value for k in SINGLE_KINDS],
                    state__in=[s.value for s in OPEN_STATES],
                    reverses__isnull=True,
                ),
                name="one_open_stop_or_suspend_per_person",
            ),
            # At most one live reversal of an action.
            models.UniqueConstraint(
                fields=["reverses"],
                condition=Q(state__in=[s.value for s in LIVE_STATES], reverses__isnull=False),
                name="one_live_reversal_per_action",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "kind"]),
            models.Index(fields=["recipient", "proposed_at"]),
            models.Index(fields=["source", "state"]),
        ]

    @property
    def export_code(self) -> str:
        """The action column of the export file: `stop`, or `reverse_stop` for a reversal."""
        return f"reverse_{self.kind}" if self.reverses_id else self.kind

    @property
    def export_label(self) -> str:
        label = ActionKind(self.kind).label
        return f"撤销{label}" if self.reverses_id else label


class BatchState(models.TextChoices):
    EXPORTED = "exported", "已导出"
    CONFIRMED = "confirmed", "已确认"
    VOID = "void", "已作废"


class ExportBatch(models.Model):
    """A file for the payment system: the approved actions not exported before."""

    state = models.CharField(max_length=16, choices=BatchState.choices, default=BatchState.EXPORTED)
    count = models.PositiveIntegerField()
    total_amount = models.DecimalField(max_digits=18, decimal_places=2)
    file_stem = models.CharField(max_length=100)  # payments-<id>-<yyyymmdd>: .csv/.xlsx (+ .sha256)
    csv_sha256 = models.CharField(max_length=64)
    xlsx_sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    reexports = models.PositiveIntegerField(default=0)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirm_ref = models.CharField(max_length=200, blank=True)  # the payment system's acknowledgement
    void_reason = models.TextField(blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in BatchState]), name="batch_state_known"
            ),
            models.CheckConstraint(condition=Q(count__gt=0), name="batch_not_empty"),
            models.CheckConstraint(
                condition=~Q(state="confirmed") | Q(confirmed_at__isnull=False),
                name="batch_confirmed_has_time",
            ),
        ]


class ExportLine(models.Model):
    """An action in a batch. `active` is cleared when the batch is voided: an action belongs to
    at most one non-void batch (`action_exported_once`)."""

    batch = models.ForeignKey(ExportBatch, on_delete=models.PROTECT, related_name="lines")
    action = models.ForeignKey(PaymentAction, on_delete=models.PROTECT, related_name="export_lines")
    line_no = models.PositiveIntegerField()
    active = models.BooleanField(default=True)
    # What was written to the file, kept so that a re-export gives the same bytes.
    person_no = models.CharField(max_length=64)
    id_number = models.CharField(max_length=18)
    name = models.CharField(max_length=100)
    unit_no = models.CharField(max_length=64)
    unit_name = models.CharField(max_length=200, blank=True)
    action_code = models.CharField(max_length=24)
    effective_month = models.CharField(max_length=7)
    months = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action"], condition=Q(active=True), name="action_exported_once"),
            models.UniqueConstraint(fields=["batch", "line_no"], name="batch_line_no_unique"),
        ]


class RecoveryStatus(models.TextChoices):
    OPEN = "open", "已立案"
    NOTIFIED = "notified", "已通知"
    REPAYING = "repaying", "退还中"
    RECOVERED = "recovered", "已追回"
    WRITE_OFF_PROPOSED = "write_off_proposed", "核销待审批"
    WRITTEN_OFF = "written_off", "已核销"
    CANCELLED = "cancelled", "已撤销"
    # The stop was reversed after money had been recovered: what was recovered goes back (返还),
    # recorded by one officer and approved by another (docs/payments.md §3).
    REFUND_DUE = "refund_due", "待返还"
    REFUND_RECORDED = "refund_recorded", "返还待复核"
    REFUNDED = "refunded", "已返还"


# A case whose stop was reversed after money was recovered and whose refund is not yet approved:
# it owes all that was recovered back (`RecoveryCase.refund_due`, the report's 待返还 line).
REFUND_OWED_STATUSES = (RecoveryStatus.REFUND_DUE, RecoveryStatus.REFUND_RECORDED)

# A case whose stop was reversed: nobody owes its money (outstanding 0), and a fraud case is no
# longer tied to it (`services._live_recovery_of`).
REVERSED_STATUSES = (
    RecoveryStatus.CANCELLED,
    RecoveryStatus.REFUND_DUE,
    RecoveryStatus.REFUND_RECORDED,
    RecoveryStatus.REFUNDED,
)


class RecoveryCase(models.Model):
    """追回: the pension paid for the months after death (notice 二(二), docs/rules.md §5.1)."""

    action = models.OneToOneField(PaymentAction, on_delete=models.PROTECT, related_name="recovery_case")
    recipient = models.ForeignKey("roster.Recipient", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    months = models.PositiveIntegerField()
    recovered = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    status = models.CharField(max_length=24, choices=RecoveryStatus.choices, default=RecoveryStatus.OPEN)
    debtor_name = models.CharField(max_length=100, blank=True)  # the estate or who collected it
    debtor_relation = models.CharField(max_length=50, blank=True)  # 遗产继承人 / 配偶 / 子女 / 代领人 …
    debtor_contact = models.CharField(max_length=200, blank=True)
    opened_at = models.DateTimeField()
    notified_on = models.DateField(null=True, blank=True)
    write_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    write_off_reason = models.TextField(blank=True)
    write_off_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # 返还: the refund of what was recovered, after the stop was reversed — recorded by one officer
    # (amount, date, the payment's reference), approved by another (`recovery_refund_two_people`).
    refund_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    refunded_on = models.DateField(null=True, blank=True)
    refund_ref = models.CharField(max_length=100, blank=True)
    refund_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in RecoveryStatus]), name="recovery_status_known"
            ),
            # Maker-checker for a refund, as for a write-off.
            models.CheckConstraint(
                condition=Q(refund_approved_by__isnull=True) | ~Q(refund_approved_by=F("refund_by")),
                name="recovery_refund_two_people",
            ),
            models.CheckConstraint(
                condition=~Q(status="refunded")
                | Q(refund_approved_by__isnull=False, refund_by__isnull=False, refund_amount__isnull=False),
                name="recovery_refunded_approved",
            ),
            # A refund gives back what was recovered, never more.
            models.CheckConstraint(
                condition=Q(refund_amount__isnull=True)
                | (Q(refund_amount__gt=0) & Q(refund_amount__lte=F("recovered") + HALF_FEN)),
                name="recovery_refund_within_recovered",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="recovery_amount_positive"),
            models.CheckConstraint(
                condition=Q(recovered__gte=0) & Q(recovered__lte=F("amount") + HALF_FEN),
                name="recovery_not_over_amount",
            ),
            models.CheckConstraint(
                condition=Q(write_off_approved_by__isnull=True) | ~Q(write_off_approved_by=F("write_off_by")),
                name="recovery_write_off_two_people",
            ),
            models.CheckConstraint(
                condition=~Q(status="written_off") | Q(write_off_approved_by__isnull=False),
                name="recovery_written_off_approved",
            ),
        ]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["unit", "status"])]

    @property
    def outstanding(self) -> Decimal:
        """What is still to be recovered: nothing for a cancelled case (its stop was reversed:
        nobody owes it), nor for one owing or having made a refund (its stop was reversed after
        money came back), as the report counts it (`selectors.recovery_report`)."""
        if self.status in REVERSED_STATUSES:
            return Decimal("0.00")
        return self.amount - self.recovered

    @property
    def stop_reversed(self) -> bool:
        """Its stop was reversed (cancelled, or owing or having made a refund): nothing is owed,
        and the pages show 未追回 as —."""
        return self.status in REVERSED_STATUSES

    @property
    def refund_due(self) -> Decimal:
        """What is to be given back (返还): all that was recovered, once the stop was reversed and
        until the refund is approved."""
        if self.status in REFUND_OWED_STATUSES:
            return self.recovered
        return Decimal("0.00")


class RecoveryPayment(models.Model):
    case = models.ForeignKey(RecoveryCase, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    paid_on = models.DateField()
    method = models.CharField(max_length=50)  # 银行转账 / 现金 / 从遗属待遇中扣回 …
    note = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="recovery_payment_positive")]


class FraudStatus(models.TextChoices):
    OPEN = "open", "已立案"
    FINED = "fined", "已处罚"
    CLOSED = "closed", "已结案"
    DISMISSED = "dismissed", "不予处罚"


# A fraud case not ended (立案 or 已处罚): at most one per person (`one_open_fraud_case_per_person`).
OPEN_FRAUD_STATES = (FraudStatus.OPEN, FraudStatus.FINED)


class FraudCase(models.Model):
    """冒领 (notice 四(二)): 责令退回, a fine of 2 to 5 times the amount obtained, 黑名单,
    and referral to the judicial authorities (移送司法机关) when it may be a crime."""

    recipient = models.ForeignKey("roster.Recipient", on_delete=models.PROTECT, related_name="fraud_cases")
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="+")
    amount_obtained = models.DecimalField(max_digits=16, decimal_places=2)
    fine = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    fine_collected = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    status = models.CharField(max_length=16, choices=FraudStatus.choices, default=FraudStatus.OPEN)
    source_ref = models.CharField(max_length=100, blank=True)
    # The recovery case (追回) of the death this 冒领 is about: the same money, counted once
    # (docs/payments.md §5). Set when the case is opened (the person's live recovery case) or when
    # the recovery case opens later; null while the person has none.
    recovery_case = models.ForeignKey(
        RecoveryCase, null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_cases"
    )
    note = models.TextField(blank=True)
    referred = models.BooleanField(default=False)  # 移送司法机关
    referred_on = models.DateField(null=True, blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    fined_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    fined_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in FraudStatus]), name="fraud_status_known"
            ),
            models.CheckConstraint(condition=Q(amount_obtained__gt=0), name="fraud_amount_positive"),
            # Notice 四(二): 处骗取金额二倍以上五倍以下的罚款.
            models.CheckConstraint(
                condition=Q(fine__isnull=True)
                | (
                    Q(fine__gte=F("amount_obtained") * 2 - HALF_FEN)
                    & Q(fine__lte=F("amount_obtained") * 5 + HALF_FEN)
                ),
                name="fraud_fine_between_2x_and_5x",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["fined", "closed"]) | Q(fine__isnull=False),
                name="fraud_fined_has_fine",
            ),
            models.CheckConstraint(
                condition=Q(fine_collected__gte=0)
                & (Q(fine__isnull=True, fine_collected=0) | Q(fine_collected__lte=F("fine") + HALF_FEN)),
                name="fraud_collected_within_fine",
            ),
            models.CheckConstraint(
                condition=Q(referred=False) | Q(referred_on__isnull=False), name="fraud_referral_has_date"
            ),
            # One 冒领 case not ended per person: a second would fine one 冒领 twice.
            models.UniqueConstraint(
                fields=["recipient"],
                condition=Q(status__in=[s.value for s in OPEN_FRAUD_STATES]),
                name="one_open_fraud_case_per_person",
            ),
        ]


class SubjectType(models.TextChoices):
    PERSON = "person", "个人"
    UNIT = "unit", "单位"


class BlacklistStatus(models.TextChoices):
    LISTED = "listed", "在列"
    REMOVAL_PROPOSED = "removal_proposed", "移出待审批"
    REMOVED = "removed", "已移出"


# An entry in one of these states lists its person or unit: at most one per person and per unit
# (`one_blacklist_entry_per_person`, `one_blacklist_entry_per_unit`). A removal still awaiting
# approval has not taken the entry off; a removed one stays in the record and lists nobody.
CURRENT_BLACKLIST_STATES = (BlacklistStatus.LISTED, BlacklistStatus.REMOVAL_PROPOSED)


class RemovalReason(models.TextChoices):
    """Why an entry is taken off the blacklist (移出黑名单, docs/payments.md §4)."""

    EXPIRED = "expired", "列入期满"
    CREDIT_REPAIRED = "credit_repaired", "信用修复"  # the money returned and the fine paid
    REVOKED = "revoked", "复议或诉讼撤销"  # the listing decision was set aside
    WRONGLY_LISTED = "wrongly_listed", "错误列入"


class Blacklist(models.Model):
    """社会保险失信"黑名单" (notice 四(二)): a person or a unit, why, since when, entered by whom,
    until when (列入期限, when the listing decision sets one).

    An entry is never deleted: it is removed (移出黑名单) by one officer's proposal approved by
    another (`blacklist_removal_two_people`), and stays as 已移出 with the reason, the day and
    who proposed and approved it. Only current entries (在列, 移出待审批) hold the person's or the
    unit's one place on the list, so a removed person or unit may be listed again."""

    subject_type = models.CharField(max_length=8, choices=SubjectType.choices)
    person_name = models.CharField(max_length=100, blank=True)
    person_id_number = models.CharField(max_length=18, blank=True)
    unit = models.ForeignKey("roster.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    since = models.DateField()
    # 列入期限: the day the listing period ends (期满日) as the listing decision states it; None: no
    # period set. Nothing happens by itself on that day: an officer proposes the removal (列入期满).
    until = models.DateField(null=True, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    fraud_case = models.ForeignKey(
        FraudCase, null=True, blank=True, on_delete=models.PROTECT, related_name="blacklist_entries"
    )
    created_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=BlacklistStatus.choices, default=BlacklistStatus.LISTED)
    # 移出: proposed by one officer (reason, note, the day it takes effect), approved by another.
    removal_reason = models.CharField(max_length=16, choices=RemovalReason.choices, blank=True)
    removal_note = models.TextField(blank=True)
    removed_on = models.DateField(null=True, blank=True)  # 移出日期
    removal_proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    removal_proposed_at = models.DateTimeField(null=True, blank=True)
    removal_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)  # when the removal was approved

    @property
    def is_current(self) -> bool:
        return self.status in CURRENT_BLACKLIST_STATES

    def expired_by(self, day: date) -> bool:
        """The listing period (列入期限) has ended by `day` (its end day included): a removal for
        列入期满 may take effect from `until` on."""
        return self.until is not None and self.until <= day

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(subject_type="person") & ~Q(person_name="") & Q(unit__isnull=True))
                | (Q(subject_type="unit") & Q(unit__isnull=False)),
                name="blacklist_subject_complete",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="blacklist_has_reason"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in BlacklistStatus]), name="blacklist_status_known"
            ),
            models.CheckConstraint(
                condition=Q(removal_reason="") | Q(removal_reason__in=[r.value for r in RemovalReason]),
                name="blacklist_removal_reason_known",
            ),
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(until__gt=F("since")), name="blacklist_until_after_since"
            ),
            # A removal proposed or approved has its reason, its day (not before the listing) and
            # its maker; an approved one its checker and time; an entry in the list has none.
            models.CheckConstraint(
                condition=~Q(status__in=["removal_proposed", "removed"])
                | (
                    ~Q(removal_reason="")
                    & Q(
                        removed_on__isnull=False,
                        removal_proposed_by__isnull=False,
                        removal_proposed_at__isnull=False,
                    )
                    & Q(removed_on__gte=F("since"))
                ),
                name="blacklist_removal_proposed_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status="removed")
                | Q(removal_approved_by__isnull=False, removed_at__isnull=False),
                name="blacklist_removed_approved",
            ),
            models.CheckConstraint(
                condition=~Q(status="listed")
                | Q(
                    removal_reason="",
                    removed_on__isnull=True,
                    removal_proposed_by__isnull=True,
                    removal_approved_by__isnull=True,
                    removed_at__isnull=True,
                ),
                name="blacklist_listed_has_no_removal",
            ),
            # Maker-checker: whoever proposed the removal never approves it.
            models.CheckConstraint(
                condition=Q(removal_approved_by__isnull=True)
                | ~Q(removal_approved_by=F("removal_proposed_by")),
                name="blacklist_removal_two_people",
            ),
            # Listed once at a time: a person by the normalised ID number (`zige.ids.normalise_id`:
            # a lower-case x or the 15-digit form is the same number; entries without one are not
            # matched by name), a unit by the unit. A removed entry lists nobody: the person or
            # unit may be listed again.
            models.UniqueConstraint(
                fields=["person_id_number"],
                condition=Q(subject_type="person") & ~Q(person_id_number="") & ~Q(status="removed"),
                name="one_blacklist_entry_per_person",
            ),
            models.UniqueConstraint(
                fields=["unit"],
                condition=Q(subject_type="unit") & ~Q(status="removed"),
                name="one_blacklist_entry_per_unit",
            ),
        ]
