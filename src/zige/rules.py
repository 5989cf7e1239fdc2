"""The certification rules, written once as plain Python for one recipient.

This is the readable statement of spec §2 and §8 (and of the notice 晋社保局发〔2018〕40号 they
come from). The batch engine does the same work in SQL over millions of people
(`zige.engine.sql`); the tests run both on generated data and require identical answers, so
this module is the oracle the SQL is held to. It never reads the clock: `as_of` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from zige.calendar import add_months, month_index, month_label
from zige.engine.kinds import (
    CUSTODIAL_PENALTIES,
    LOSS_KINDS,
    NON_CUSTODIAL_MARKERS,
    without_lookalikes,
)
from zige.engine.kinds import is_imprisonment_reason as kinds_imprisonment_reason

Status = Literal["eligible", "stop", "suspend", "review", "pending"]
BenefitStatus = Literal["normal", "suspended"]

# Alive evidence kinds in the table order of spec §3: on the same day, the first one names C.
ALIVE_KIND_ORDER: tuple[str, ...] = (
    "rail", "flight", "hospital", "checkup", "border", "app_auth", "terminal_auth", "unit_confirm",
    "overseas_review", "release",
)  # fmt: skip
ALWAYS_ALIVE: frozenset[str] = frozenset(
    {"rail", "flight", "hospital", "checkup", "border", "overseas_review", "release"}
)


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """A roster row in scope (待遇状态 正常 or 暂停), already normalised."""

    person_no: str
    id_number: str
    benefit_status: BenefitStatus = "normal"
    status_since: date | None = None
    status_reason: str = ""
    monthly_amount: Decimal | None = None
    mobile: str | None = None
    retirement_date: date | None = None
    last_certified_on: date | None = None


@dataclass(frozen=True, kw_only=True)
class Record:
    """One normalised feed record of the recipient.

    `sub` carries the record's result where its kind has one: `pass`/`fail` (app_auth,
    terminal_auth), `eligible`/`lost`/`unreachable` (unit_confirm), `dead`/`missing` (declared),
    or the 刑罚种类 text (sentence).
    """

    kind: str
    day: date
    sub: str = ""
    end_date: date | None = None


@dataclass(frozen=True, kw_only=True)
class Action:
    action: Literal["stop", "suspend", "resume"]
    effective_month: str
    months: int
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class Decision:
    status: Status
    reason: str
    evidence_kind: str | None
    evidence_date: date | None
    certified_on: date | None
    due_on: date | None
    remind: bool
    channel: Literal["sms", "unit"] | None
    action: Action | None


# --- classifying records (spec §2, §3) ---------------------------------------------------------


def is_alive(record: Record, *, custom_alive: Iterable[str] = ()) -> bool:
    """Alive evidence (生存信息): travel, hospital, check-up, border, overseas review, release,
    a successful face/finger-vein check, a unit's 具备资格 (notice 二(一))."""
    if record.kind in ALWAYS_ALIVE or record.kind in custom_alive:
        return True
    if record.kind in ("app_auth", "terminal_auth"):
        return record.sub == "pass"
    return record.kind == "unit_confirm" and record.sub == "eligible"


def loss_kind(record: Record) -> str | None:
    """The loss kind of a loss record (death, cremation, declared dead, unit says lost;
    notice 二(二) and 三(一)3), else None."""
    if record.kind in ("death", "cremation"):
        return record.kind
    if record.kind == "declared" and record.sub == "dead":
        return "declared_dead"
    if record.kind == "unit_confirm" and record.sub == "lost":
        return "unit_confirmed_lost"
    return None


def record_kind(record: Record) -> str:
    """The kind a record is reported as in `evidence_kind`."""
    lost = loss_kind(record)
    if lost:
        return lost
    if record.kind == "declared":
        return f"declared_{record.sub}"
    return record.kind


def is_custodial(penalty: str) -> bool:
    """A custodial sentence (有期徒刑, 无期徒刑, 拘役, 死刑, 死刑缓期执行); 缓刑, 管制 and 监外执行
    never suspend (spec §2.3a)."""
    if any(marker in penalty for marker in NON_CUSTODIAL_MARKERS):
        return False
    words = without_lookalikes(penalty)
    return any(p in words for p in CUSTODIAL_PENALTIES)


def _alive_rank(kind: str) -> int:
    return ALIVE_KIND_ORDER.index(kind) if kind in ALIVE_KIND_ORDER else len(ALIVE_KIND_ORDER) + 1


def _earliest_alive(records: Sequence[Record], after: date) -> Record | None:
    later = [r for r in records if r.day > after]
    return min(later, key=lambda r: (r.day, _alive_rank(r.kind)), default=None)


# --- the decision -------------------------------------------------------------------------------


def certified_on(
    *, recipient: Recipient, alive: Sequence[Record], as_of: date
) -> tuple[date | None, str | None]:
    """C and its source (spec §1): the later of 上次认证日期 and the newest alive evidence; on a
    tie the evidence wins, and among kinds the first of §3; with neither, 退休日期. Roster dates
    after the as-of date are ignored. (Notice 一(四): no more than 12 months between two
    certifications.)"""
    last = (
        recipient.last_certified_on
        if recipient.last_certified_on and recipient.last_certified_on <= as_of
        else None
    )
    newest = max(alive, key=lambda r: (r.day, -_alive_rank(r.kind)), default=None)
    if newest is not None and (last is None or newest.day >= last):
        return newest.day, newest.kind
    if last is not None:
        return last, "last_certified"
    retired = recipient.retirement_date
    if retired is not None and retired <= as_of:
        return retired, "retirement"
    return None, None


def decide(
    *, recipient: Recipient, records: Sequence[Record], as_of: date, custom_alive: Iterable[str] = ()
) -> Decision:
    """The status of one recipient on `as_of`, with its reason, evidence and payment action.

    Precedence (spec §2): review > stop > suspend > eligible > pending.
    - review 疑点核查: life after a loss record or after a declaration of missing — a fraud signal
      for a person to look at, never an automatic stop (notice 四(二) on 冒领).
    - stop: a death, cremation, declaration of death, or a unit's 丧失资格 (notice 二(二), 三(一)3).
    - suspend: serving a custodial sentence, declared missing (notice 二(二)), or reported
      unreachable by the unit with no life since (notice 三(一)4).
    - eligible: certified within the last 12 months (notice 一(四), 二(一)).
    - pending 待核实: everything else, sent to the unit to verify (notice 二(三), 三(一)).
    """
    custom = frozenset(custom_alive)
    dated = [r for r in records if r.day <= as_of]  # nothing dated after D is evidence
    alive = [r for r in dated if is_alive(r, custom_alive=custom)]
    losses = [r for r in dated if loss_kind(r)]
    loss = min(losses, key=lambda r: (r.day, LOSS_KINDS.index(record_kind(r))), default=None)
    missing = min((r.day for r in dated if r.kind == "declared" and r.sub == "missing"), default=None)
    releases = [r.day for r in dated if r.kind == "release"]

    c_day, c_kind = certified_on(recipient=recipient, alive=alive, as_of=as_of)
    due = add_months(c_day, 12) if c_day else None

    status: Status
    reason: str
    evidence: tuple[str | None, date | None] = (c_kind, c_day)
    after_loss = _earliest_alive(alive, loss.day) if loss else None
    after_missing = _earliest_alive(alive, missing) if missing else None
    imprisoned = _imprisoned_since(dated, releases, as_of)
    newest_alive = max((r.day for r in alive), default=None)
    unreachable = min(
        (
            r.day
            for r in dated
            if r.kind == "unit_confirm"
            and r.sub == "unreachable"
            and (newest_alive is None or r.day >= newest_alive)
        ),
        default=None,
    )
    if loss and after_loss:
        status = "review"
        reason = "alive_after_lost" if record_kind(loss) == "unit_confirmed_lost" else "alive_after_death"
        evidence = (after_loss.kind, after_loss.day)
    elif missing and after_missing:
        status, reason = "review", "alive_after_missing"
        evidence = (after_missing.kind, after_missing.day)
    elif loss:
        status, reason = "stop", record_kind(loss)
        evidence = (reason, loss.day)
    elif imprisoned:
        status, reason = "suspend", "imprisoned"
        evidence = ("sentence", imprisoned)
    elif missing:
        status, reason = "suspend", "declared_missing"
        evidence = ("declared_missing", missing)
    elif unreachable:
        status, reason = "suspend", "unreachable"
        evidence = ("unit_confirm", unreachable)
    elif due is not None and due > as_of:
        status, reason = "eligible", c_kind or ""
    else:
        status, reason = "pending", "no_evidence"

    remind = status == "eligible" and due is not None and due <= add_months(as_of, 3)
    channel: Literal["sms", "unit"] | None = None
    if remind:
        channel = "sms" if recipient.mobile else "unit"
    decision = Decision(
        status=status, reason=reason, evidence_kind=evidence[0], evidence_date=evidence[1],
        certified_on=c_day, due_on=due, remind=remind, channel=channel, action=None,
    )  # fmt: skip
    action = payment_action(
        recipient=recipient, decision=decision, latest_release=max(releases, default=None), as_of=as_of
    )
    return Decision(**{**decision.__dict__, "action": action})


def _imprisoned_since(records: Sequence[Record], releases: Sequence[date], as_of: date) -> date | None:
    """The earliest start of a custodial sentence being served on `as_of`: started, not released
    since its start (both days included), planned end empty or not before `as_of`."""
    starts = [
        r.day
        for r in records
        if r.kind == "sentence"
        and is_custodial(r.sub)
        and (r.end_date is None or r.end_date >= as_of)
        and not any(r.day <= released <= as_of for released in releases)
    ]
    return min(starts, default=None)


# --- money (spec §8) ------------------------------------------------------------------------------

FEN = Decimal("0.01")
# 月养老金 is read to four decimal places, half-up (docs/rules.md §5): as the batch engine reads it
# (DuckDB and Spark alike) and the roll stores it. A spreadsheet's floating-point residue
# (2976.5499999999997 for 2976.55) goes, and every reader multiplies the same number.
PENSION_PLACES = Decimal("0.0001")


def pension_read(value: Decimal | None) -> Decimal | None:
    """月养老金 as every reader takes it: to `PENSION_PLACES`, half-up."""
    return None if value is None else value.quantize(PENSION_PLACES, rounding=ROUND_HALF_UP)


def to_fen(value: Decimal) -> Decimal:
    """An amount rounded half-up to fen, as every amount the rules compute is (and as a page must
    show a four-place 月养老金: Python's own formatting rounds half-even, 2976.545 to 2976.54)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def payment_amount(months: int, monthly: Decimal | None) -> Decimal:
    """months × 月养老金 (read to `PENSION_PLACES`), in decimal, rounded half-up to fen; an unknown pension counts as 0
    (§5: the amount of every stop, suspension and resume; also the check of an officer's
    figures, `zige.benefits.services.payment_action_propose`)."""
    return to_fen(Decimal(months) * (pension_read(monthly) or Decimal(0)))


def is_imprisonment_reason(status_reason: str) -> bool:
    """Spec §8: a 停发原因 of imprisonment (服刑/判刑/刑事, or a custodial penalty such as
    判处有期徒刑二年 without 缓刑/管制/监外执行): back pay only from the month after release.
    The rule lives in `zige.engine.kinds` with the penalty words it shares with §2.3a."""
    return kinds_imprisonment_reason(status_reason)


def payment_action(
    *, recipient: Recipient, decision: Decision, latest_release: date | None, as_of: date
) -> Action | None:
    """The payment change a decision implies (spec §8; notice 二(二)): a stop from the month
    after the loss (死亡次月停发); a suspension (only of a 正常 recipient) from the month after
    the deciding record; a resume (a 暂停 recipient now eligible) from the month after `as_of`.
    Its months come from `payment_months` (the one place of the rules' branches), its amount is
    months × 月养老金 (`payment_amount`)."""
    kind: Literal["stop", "suspend", "resume"]
    if decision.status == "stop":
        assert decision.evidence_date is not None
        kind, effective = "stop", month_index(decision.evidence_date) + 1
    elif decision.status == "suspend" and recipient.benefit_status == "normal":
        assert decision.evidence_date is not None
        kind, effective = "suspend", month_index(decision.evidence_date) + 1
    elif decision.status == "eligible" and recipient.benefit_status == "suspended":
        kind, effective = "resume", month_index(as_of) + 1
    else:
        return None
    months = payment_months(
        recipient=recipient, kind=kind, effective_month=month_label(effective), latest_release=latest_release,
        as_of=as_of,
    ).months  # fmt: skip
    return Action(
        action=kind, effective_month=month_label(effective), months=months,
        amount=payment_amount(months, recipient.monthly_amount),
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PaymentMonths:
    """The months a payment action covers by the rules (§5) and, when they are 0, why — in the
    words the pages show beside 0 个月 / 0.00, where a bare 0 reads as an error. `reason` is empty
    when the months are more than 0."""

    months: int
    reason: str = ""


def payment_months(
    *, recipient: Recipient, kind: str, effective_month: str, latest_release: date | None, as_of: date
) -> PaymentMonths:
    """The months of a `kind` action (stop, suspend, resume) of the person from
    `effective_month` (`YYYY-MM`) as of `as_of`, with the reason when they are 0 (spec §8;
    notice 二(二): 死亡次月停发，追回多发金额). The one place of these branches: `payment_action`
    takes its months from it, the pages the reason for an action's 0 months
    (`zige.benefits.selectors.zero_months_reason`).

    Pensions are paid monthly in advance through the month of `as_of`.
    - stop (§5.1): the months paid from `effective_month` on, the overpayment to recover —
      through the month of `as_of` for a 正常 person; for a 暂停 person through the month before
      状态变更日期 (none without one: the payment office decides).
    - suspend (§5.2): the months paid from `effective_month` through the month of `as_of`.
    - resume (§5.3, a 暂停 person): back pay (补发) from the month of 状态变更日期 through the month
      of `as_of`, or, after imprisonment, from the month after release but not before the month
      of 状态变更日期 (none without a release or without 状态变更日期: the payment office
      decides); a 正常 person has none.
    """
    d_month = month_index(as_of)
    effective = int(effective_month[:4]) * 12 + int(effective_month[5:]) - 1
    since = recipient.status_since if recipient.status_since and recipient.status_since <= as_of else None
    if kind == "stop" and recipient.benefit_status == "suspended":
        if since is None:
            return PaymentMonths(
                months=0, reason="暂停人员无状态变更日期，无法确定多发月数，按 0 计，由支付部门核定"
            )
        months = max(0, month_index(since) - effective)  # paid through the month before 状态变更日期
        if months:
            return PaymentMonths(months=months)
        return PaymentMonths(
            months=0,
            reason=f"状态变更日期 {since:%Y-%m-%d} 起已暂停发放，生效月份 {effective_month} 起未再发放，无需追回",
        )
    if kind in ("stop", "suspend"):
        months = max(0, d_month - effective + 1)
        if months:
            return PaymentMonths(months=months)
        return PaymentMonths(
            months=0,
            reason=f"养老金按月预发至 {month_label(d_month)}，生效月份 {effective_month} 起尚未发放，无需追回",
        )
    if kind != "resume":
        raise ValueError(f"not a payment action: {kind!r}")
    if recipient.benefit_status != "suspended":
        return PaymentMonths(months=0)  # nothing was withheld (no resume is proposed for one)
    if since is None:
        return PaymentMonths(months=0, reason="无状态变更日期，补发月数无法确定，按 0 计，由支付部门核定")
    if not is_imprisonment_reason(recipient.status_reason):
        return PaymentMonths(months=max(0, d_month - month_index(since) + 1))
    if latest_release is None:
        return PaymentMonths(months=0, reason="停发原因为服刑，无刑满释放记录，自释放次月起补发，现无需补发")
    # [zige] From the month after the release, but never from before the month of 状态变更日期:
    # nothing was withheld before it (a release from an earlier sentence, years before this
    # suspension, would otherwise pay those years a second time).
    months = max(0, min(d_month - month_index(latest_release), d_month - month_index(since) + 1))
    if months:
        return PaymentMonths(months=months)
    return PaymentMonths(
        months=0,
        reason=f"停发原因为服刑，刑满释放（{latest_release:%Y-%m-%d}）次月起补发，截至 {month_label(d_month)} 无需补发",
    )
