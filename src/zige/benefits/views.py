"""待遇处理 pages: payment actions, export batches, recovery and fraud cases, blacklist, report.

Bureau staff read and act; auditors read (every POST answers them 403); unit operators never
come here (403). Each POST makes one service call; a refused change comes back as a message.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from zige.accounts.models import User
from zige.accounts.scoping import can_operate
from zige.benefits import selectors, services
from zige.benefits.models import (
    ActionKind,
    ActionSource,
    ActionState,
    FraudStatus,
    RecoveryStatus,
    RemovalReason,
    SubjectType,
)
from zige.benefits.services import BenefitsError
from zige.reports.pages import client_ip, operator_required, paginate, param, records_view
from zige.roster.models import Recipient, Unit
from zige.spreadsheet import formula_safe
from zige.web.refs import say_next

NAV = "benefits"
UNITS_ON_PAGE = 50  # the report page lists the units owing most; the CSV has them all


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _money(value: str, what: str) -> Decimal:
    try:
        return Decimal((value or "").strip().replace(",", "").replace("，", ""))
    except InvalidOperation:
        raise BenefitsError(f"{what}不是有效的金额") from None


def _day(value: str, what: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise BenefitsError(f"{what}应为 YYYY-MM-DD") from None


def _act(request: HttpRequest, call: Callable[[], Any], ok: str) -> bool:
    try:
        call()
    except BenefitsError as exc:
        messages.error(request, str(exc))
        return False
    messages.success(request, ok)
    return True


def _next_to_approve(request: HttpRequest, pk: int) -> None:
    """After an approval or a rejection: a 下一条 link to the next proposal in the queue the
    officer may approve, so they go on without returning to the list."""
    action = selectors.action_get(pk)
    if action is None:
        return
    following = selectors.next_to_approve(after=action, user=_user(request))
    say_next(
        request, following, url_name="benefits:action", none_left="待审批队列中已没有其他可由您审批的业务。"
    )


def _ctx(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {"nav": NAV, "can_operate": can_operate(request.user), **extra}


# --- payment actions ---------------------------------------------------------------------------


@records_view
@require_GET
def actions(request: HttpRequest) -> HttpResponse:
    state = param(request, "state", tuple(ActionState.values))
    kind = param(request, "kind", tuple(ActionKind.values))
    source = param(request, "source", tuple(ActionSource.values))
    q = param(request, "q")
    page = paginate(request, selectors.actions_list(state=state, kind=kind, source=source, q=q))
    # Proposals whose figures differ from the calculation: no box, the calculation shown, approved
    # on their own page only (`PaymentAction.approve_one_by_one`).
    one_by_one = {
        a.pk: selectors.action_calculation(a)
        for a in page
        if a.state == ActionState.PROPOSED and a.approve_one_by_one
    }
    # 0 个月 / 0.00 with its reason (rules §5), so it does not read as an error.
    zero_reasons = {a.pk: selectors.zero_months_reason(a) for a in page if a.months == 0}
    return render(
        request,
        "benefits/actions.html",
        _ctx(
            request, page=page, state=state, kind=kind, source=source, q=q, states=ActionState.choices,
            kinds=ActionKind.choices, sources=ActionSource.choices, counts=selectors.action_counts(),
            one_by_one=one_by_one, zero_reasons=zero_reasons,
        ),
    )  # fmt: skip


@records_view
@require_GET
def action_detail(request: HttpRequest, pk: int) -> HttpResponse:
    action = selectors.action_get(pk)
    if action is None:
        raise Http404
    user = _user(request)
    is_proposer = action.proposed_by_id is not None and action.proposed_by_id == user.pk
    return render(
        request,
        "benefits/action.html",
        _ctx(
            request, action=action, is_proposer=is_proposer, calculation=selectors.action_calculation(action),
            basis=selectors.action_basis(action, user=user), differences=selectors.proposal_differences(action),
            zero_reason=selectors.zero_months_reason(action),
            lines=action.export_lines.select_related("batch").order_by("pk"),
            reversals=action.reversals.order_by("pk"),
            recovery=getattr(action, "recovery_case", None) if action.kind == "stop" else None,
        ),
    )  # fmt: skip


@operator_required
def action_new(request: HttpRequest) -> HttpResponse:
    """Propose a manual action (a second person approves it)."""
    values = {
        k: (request.POST.get(k) or "").strip()
        for k in ("person_no", "kind", "effective_month", "months", "amount", "note", "figures_note")
    }
    if request.method == "POST":
        try:
            person = Recipient.objects.filter(person_no=values["person_no"]).first()
            if person is None:
                raise BenefitsError(f"个人编号 {values['person_no'] or '（空）'} 不在名册中")
            months = int(values["months"]) if values["months"] else None
            amount = _money(values["amount"], "金额") if values["amount"] else None
            if not values["note"]:
                raise BenefitsError("请填写依据（说明为何提出）")
            action = services.payment_action_propose(
                recipient=person, kind=values["kind"], effective_month=values["effective_month"], months=months,
                amount=amount, source=ActionSource.MANUAL, source_ref=f"manual:{_user(request).username}",
                proposed_by=_user(request), now=timezone.now(), note=values["note"],
                figures_note=values["figures_note"],
            )  # fmt: skip
        except (BenefitsError, ValueError) as exc:
            messages.error(request, str(exc) if isinstance(exc, BenefitsError) else "月数应为整数")
        else:
            messages.success(request, f"已提出待遇处理 #{action.pk}，待另一名经办人员审批")
            return redirect("benefits:action", pk=action.pk)
    return render(request, "benefits/action_new.html", _ctx(request, values=values, kinds=ActionKind.choices))


@operator_required
@require_POST
def action_approve(request: HttpRequest, pk: int) -> HttpResponse:
    if _act(
        request,
        lambda: services.payment_action_approve(
            action_id=pk, user=_user(request), now=timezone.now(), seen=request.POST.get("seen")
        ),
        "已审批",
    ):
        _next_to_approve(request, pk)
    return redirect("benefits:action", pk=pk)


@operator_required
@require_POST
def actions_approve(request: HttpRequest) -> HttpResponse:
    """批量审批: the proposals ticked on the list page."""
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()][:500]
    if not ids:
        messages.error(request, "请先勾选要审批的待遇处理")
    else:
        seen = {pk: request.POST[f"seen-{pk}"] for pk in ids if f"seen-{pk}" in request.POST}
        result = services.payment_actions_approve_many(
            action_ids=ids, user=_user(request), now=timezone.now(), seen=seen
        )
        text = f"已审批 {len(result.approved)} 条"
        if result.refused:
            why = [f"{n} 条{label}" for n, label in result.refusals()]
            if result.unexplained():
                why.append(f"{len(result.unexplained())} 条因其他原因未审批（见下）")
            text += f"；{len(result.refused)} 条未审批：{'；'.join(why)}"
        if result.one_by_one:
            text += f"；{len(result.one_by_one)} 条与计算不符，未批量审批（见下，请逐笔审批）"
        messages.success(request, text)
        for message in [*result.unexplained(), *result.one_by_one.values()]:
            messages.warning(request, message)
    return redirect(f"{reverse('benefits:actions')}?state=proposed")


@operator_required
@require_POST
def action_reject(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    if _act(request, lambda: services.payment_action_reject(action_id=pk, user=_user(request), reason=reason, now=timezone.now()), "已驳回"):  # fmt: skip
        _next_to_approve(request, pk)
    return redirect("benefits:action", pk=pk)


@operator_required
@require_POST
def action_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.payment_action_withdraw(action_id=pk, user=_user(request), reason=reason, now=timezone.now()), "已撤回")  # fmt: skip
    return redirect("benefits:action", pk=pk)


@operator_required
@require_POST
def action_reverse(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    try:
        reversal = services.payment_action_reverse(
            action_id=pk, user=_user(request), reason=reason, now=timezone.now()
        )
    except BenefitsError as exc:
        messages.error(request, str(exc))
        return redirect("benefits:action", pk=pk)
    messages.success(request, f"已提出撤销 #{reversal.pk}，待另一名经办人员审批后随下一批次导出")
    return redirect("benefits:action", pk=reversal.pk)


# --- export batches ----------------------------------------------------------------------------


@records_view
@require_GET
def batches(request: HttpRequest) -> HttpResponse:
    waiting = selectors.exportable()
    return render(
        request,
        "benefits/batches.html",
        _ctx(request, page=paginate(request, selectors.batches_list()), waiting=waiting.count(),
             can_download=can_operate(request.user)),
    )  # fmt: skip


@operator_required
@require_POST
def batch_create(request: HttpRequest) -> HttpResponse:
    try:
        batch = services.export_batch_create(user=_user(request), now=timezone.now())
    except BenefitsError as exc:
        messages.error(request, str(exc))
        return redirect("benefits:batches")
    if batch is None:
        messages.info(request, "没有待导出的已审批待遇处理")
        return redirect("benefits:batches")
    messages.success(
        request, f"已生成导出批次 #{batch.pk}：{batch.count} 条，合计 {batch.total_amount:,.2f} 元"
    )
    return redirect("benefits:batch", pk=batch.pk)


@records_view
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get(pk)
    if batch is None:
        raise Http404
    lines = batch.lines.select_related("action").order_by("line_no")
    return render(
        request,
        "benefits/batch.html",
        _ctx(request, batch=batch, page=paginate(request, lines), can_download=can_operate(request.user),
             files=services.batch_paths(batch)),
    )  # fmt: skip


@operator_required
@require_GET
def batch_download(request: HttpRequest, pk: int, kind: str) -> FileResponse:
    try:
        path = services.export_file_download(
            batch_id=pk, kind=kind, user=_user(request), ip=client_ip(request), now=timezone.now()
        )
    except BenefitsError:
        raise Http404 from None
    content_type = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }.get(kind, "text/plain; charset=ascii")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name, content_type=content_type)


@operator_required
@require_POST
def batch_reexport(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.export_batch_reexport(batch_id=pk, user=_user(request), reason=reason, now=timezone.now()), "已重新导出，文件内容与校验值一致")  # fmt: skip
    return redirect("benefits:batch", pk=pk)


@operator_required
@require_POST
def batch_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    ref = request.POST.get("ref", "")
    _act(request, lambda: services.export_batch_confirm(batch_id=pk, user=_user(request), ref=ref, now=timezone.now()), "已确认：支付系统已接收")  # fmt: skip
    return redirect("benefits:batch", pk=pk)


@operator_required
@require_POST
def batch_void(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.export_batch_void(batch_id=pk, user=_user(request), reason=reason, now=timezone.now()), "已作废，批次中的待遇处理回到“已审批”，可重新导出")  # fmt: skip
    return redirect("benefits:batch", pk=pk)


# --- recovery cases ----------------------------------------------------------------------------


@records_view
@require_GET
def recoveries(request: HttpRequest) -> HttpResponse:
    status = param(request, "status", tuple(RecoveryStatus.values))
    q = param(request, "q")
    page = paginate(request, selectors.recovery_list(status=status, q=q))
    return render(
        request,
        "benefits/recoveries.html",
        _ctx(request, page=page, status=status, q=q, statuses=RecoveryStatus.choices),
    )


@records_view
@require_GET
def recovery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = selectors.recovery_get(pk)
    if case is None:
        raise Http404
    return render(
        request,
        "benefits/recovery.html",
        _ctx(request, case=case, payments=case.payments.select_related("recorded_by").order_by("paid_on", "pk"),
             is_write_off_proposer=case.write_off_by_id == request.user.pk, today=timezone.localdate(),
             is_refund_recorder=case.refund_by_id is not None and case.refund_by_id == request.user.pk,
             frauds=selectors.frauds_of_recovery(case)),
    )  # fmt: skip


@operator_required
@require_POST
def recovery_notify(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact field comes empty (the page never holds the full number): empty keeps the
    recorded contact, 清除联系方式 clears it, anything typed replaces it."""
    p = request.POST
    contact: str | None = p.get("debtor_contact", "").strip() or None
    if p.get("clear_contact"):
        contact = ""

    def call() -> Any:
        return services.recovery_case_notify(
            case_id=pk, debtor_name=p.get("debtor_name", ""), debtor_relation=p.get("debtor_relation", ""),
            debtor_contact=contact, notified_on=_day(p.get("notified_on", ""), "通知日期"),
            user=_user(request), now=timezone.now(),
        )  # fmt: skip

    _act(request, call, "已登记退还义务人并通知")
    return redirect("benefits:recovery", pk=pk)


@operator_required
@require_POST
def recovery_payment(request: HttpRequest, pk: int) -> HttpResponse:
    p = request.POST

    def call() -> Any:
        return services.recovery_payment_record(
            case_id=pk, amount=_money(p.get("amount", ""), "退还金额"), paid_on=_day(p.get("paid_on", ""), "退还日期"),
            method=p.get("method", ""), note=p.get("note", ""), user=_user(request), now=timezone.now(),
        )  # fmt: skip

    _act(request, call, "已登记退还")
    return redirect("benefits:recovery", pk=pk)


@operator_required
@require_POST
def recovery_write_off(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.recovery_case_write_off_propose(case_id=pk, reason=reason, user=_user(request), now=timezone.now()), "已提出核销，待另一名经办人员审批")  # fmt: skip
    return redirect("benefits:recovery", pk=pk)


@operator_required
@require_POST
def recovery_write_off_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approve = request.POST.get("decision") == "approve"
    _act(request, lambda: services.recovery_case_write_off_decide(case_id=pk, approve=approve, user=_user(request), now=timezone.now()), "已核销" if approve else "已退回核销申请")  # fmt: skip
    return redirect("benefits:recovery", pk=pk)


@operator_required
@require_POST
def recovery_refund(request: HttpRequest, pk: int) -> HttpResponse:
    p = request.POST

    def call() -> Any:
        return services.recovery_refund_record(
            case_id=pk, amount=_money(p.get("amount", ""), "返还金额"),
            refunded_on=_day(p.get("refunded_on", ""), "返还日期"), reference=p.get("reference", ""),
            user=_user(request), now=timezone.now(),
        )  # fmt: skip

    _act(request, call, "已登记返还，待另一名经办人员复核")
    return redirect("benefits:recovery", pk=pk)


@operator_required
@require_POST
def recovery_refund_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.recovery_refund_decide(case_id=pk, approve=approve, reason=reason, user=_user(request), now=timezone.now()), "已复核返还" if approve else "已驳回返还登记，案件回到待返还")  # fmt: skip
    return redirect("benefits:recovery", pk=pk)


# --- fraud cases and the blacklist --------------------------------------------------------------


@records_view
@require_GET
def frauds(request: HttpRequest) -> HttpResponse:
    status = param(request, "status", tuple(FraudStatus.values))
    q = param(request, "q")
    page = paginate(request, selectors.fraud_list(status=status, q=q))
    return render(
        request,
        "benefits/frauds.html",
        _ctx(request, page=page, status=status, q=q, statuses=FraudStatus.choices),
    )


@operator_required
def fraud_new(request: HttpRequest) -> HttpResponse:
    values = {
        k: (request.POST.get(k) or request.GET.get(k) or "").strip()
        for k in ("person_no", "amount", "source_ref", "note")
    }
    if request.method == "POST":
        try:
            person = Recipient.objects.filter(person_no=values["person_no"]).first()
            if person is None:
                raise BenefitsError(f"个人编号 {values['person_no'] or '（空）'} 不在名册中")
            case = services.fraud_case_open(
                recipient=person, amount_obtained=_money(values["amount"], "骗取金额"), opened_by=_user(request),
                source_ref=values["source_ref"], note=values["note"], now=timezone.now(),
            )  # fmt: skip
        except BenefitsError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"已立案 #{case.pk}")
            return redirect("benefits:fraud", pk=case.pk)
    return render(request, "benefits/fraud_new.html", _ctx(request, values=values))


@records_view
@require_GET
def fraud_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = selectors.fraud_get(pk)
    if case is None:
        raise Http404
    low, high = services.fine_bounds(case.amount_obtained)
    return render(
        request,
        "benefits/fraud.html",
        _ctx(request, case=case, low=low, high=high, entries=case.blacklist_entries.select_related("unit", "by"),
             today=timezone.localdate(), subject_types=SubjectType.choices,
             recoveries=selectors.recoveries_of_fraud(case)),
    )  # fmt: skip


def _fraud_post(request: HttpRequest, pk: int, call: Callable[[], Any], ok: str) -> HttpResponse:
    _act(request, call, ok)
    return redirect("benefits:fraud", pk=pk)


@operator_required
@require_POST
def fraud_fine(request: HttpRequest, pk: int) -> HttpResponse:
    fine = request.POST.get("fine", "")
    return _fraud_post(request, pk, lambda: services.fraud_case_fine(case_id=pk, fine=_money(fine, "罚款金额"), user=_user(request), now=timezone.now()), "已决定罚款")  # fmt: skip


@operator_required
@require_POST
def fraud_collect(request: HttpRequest, pk: int) -> HttpResponse:
    amount = request.POST.get("amount", "")
    return _fraud_post(request, pk, lambda: services.fraud_case_collect(case_id=pk, amount=_money(amount, "缴纳金额"), user=_user(request), now=timezone.now()), "已登记罚款缴纳")  # fmt: skip


@operator_required
@require_POST
def fraud_close(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _fraud_post(request, pk, lambda: services.fraud_case_close(case_id=pk, user=_user(request), now=timezone.now(), reason=reason), "已结案")  # fmt: skip


@operator_required
@require_POST
def fraud_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _fraud_post(request, pk, lambda: services.fraud_case_dismiss(case_id=pk, reason=reason, user=_user(request), now=timezone.now()), "已决定不予处罚")  # fmt: skip


@operator_required
@require_POST
def fraud_refer(request: HttpRequest, pk: int) -> HttpResponse:
    day = request.POST.get("referred_on", "")
    return _fraud_post(request, pk, lambda: services.fraud_case_refer(case_id=pk, referred_on=_day(day, "移送司法机关日期"), user=_user(request), now=timezone.now()), "已标记移送司法机关")  # fmt: skip


@records_view
@require_GET
def blacklist(request: HttpRequest) -> HttpResponse:
    """The current entries by default (在列, 移出待审批); 移出待审批 alone, 已移出 and 全部 by the
    `view` filter."""
    view = param(request, "view", tuple(selectors.BLACKLIST_VIEWS)) or "current"
    page = paginate(request, selectors.blacklist_list(view=view))
    return render(
        request, "benefits/blacklist.html",
        _ctx(request, page=page, subject_types=SubjectType.choices, today=timezone.localdate(), view=view,
             views=selectors.BLACKLIST_VIEWS, counts=selectors.blacklist_counts()),
    )  # fmt: skip


@records_view
@require_GET
def blacklist_detail(request: HttpRequest, pk: int) -> HttpResponse:
    entry = selectors.blacklist_get(pk)
    if entry is None:
        raise Http404
    case = entry.fraud_case
    today = timezone.localdate()
    unsettled = selectors.fraud_case_unsettled(case) if case else []
    expired = entry.expired_by(today)
    # The reasons the service would refuse today are offered disabled, with why (it refuses them anyway).
    why_not = {
        RemovalReason.EXPIRED: "" if expired else ("未到期" if entry.until else "未定期限"),
        RemovalReason.CREDIT_REPAIRED: "关联案件未了结" if unsettled else "",
    }
    reasons = [
        (value, label, why_not.get(RemovalReason(value), "")) for value, label in RemovalReason.choices
    ]
    return render(
        request, "benefits/blacklist_entry.html",
        _ctx(request, entry=entry, case=case, unsettled=unsettled, history=selectors.blacklist_history(entry),
             today=today, expired=expired, reasons=reasons,
             is_removal_proposer=entry.removal_proposed_by_id == _user(request).pk),
    )  # fmt: skip


@operator_required
@require_POST
def blacklist_remove(request: HttpRequest, pk: int) -> HttpResponse:
    p = request.POST
    _act(request, lambda: services.blacklist_removal_propose(entry_id=pk, reason=p.get("removal_reason", ""), removed_on=_day(p.get("removed_on", ""), "移出日期"), note=p.get("note", ""), user=_user(request), now=timezone.now()), "已提出移出黑名单，待另一名经办人员审批")  # fmt: skip
    return redirect("benefits:blacklist_entry", pk=pk)


@operator_required
@require_POST
def blacklist_remove_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.blacklist_removal_decide(entry_id=pk, approve=approve, reason=reason, user=_user(request), now=timezone.now()), "已审批，移出黑名单" if approve else "已驳回移出，条目仍在黑名单中")  # fmt: skip
    return redirect("benefits:blacklist_entry", pk=pk)


@operator_required
@require_POST
def blacklist_period(request: HttpRequest, pk: int) -> HttpResponse:
    p = request.POST

    def call() -> Any:
        until = p.get("until", "").strip()
        return services.blacklist_period_change(
            entry_id=pk, until=_day(until, "列入期限") if until else None, basis=p.get("basis", ""),
            user=_user(request), now=timezone.now(),
        )  # fmt: skip

    _act(request, call, "已变更列入期限")
    return redirect("benefits:blacklist_entry", pk=pk)


@operator_required
@require_POST
def blacklist_remove_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    _act(request, lambda: services.blacklist_removal_withdraw(entry_id=pk, reason=reason, user=_user(request), now=timezone.now()), "已撤回移出的提议，条目仍在黑名单中")  # fmt: skip
    return redirect("benefits:blacklist_entry", pk=pk)


@operator_required
@require_POST
def blacklist_add(request: HttpRequest) -> HttpResponse:
    p = request.POST
    back = p.get("fraud_case", "")

    def call() -> Any:
        unit = None
        if p.get("subject_type") == SubjectType.UNIT:
            unit = Unit.objects.filter(unit_no=p.get("unit_no", "").strip()).first()
            if unit is None:
                raise BenefitsError(f"单位编号 {p.get('unit_no', '').strip() or '（空）'} 不存在")
        case = selectors.fraud_get(int(back)) if back.isdigit() else None
        until = p.get("until", "").strip()
        return services.blacklist_add(
            subject_type=p.get("subject_type", ""), reason=p.get("reason", ""), since=_day(p.get("since", ""), "列入日期"),
            user=_user(request), now=timezone.now(), person_name=p.get("person_name", ""),
            person_id_number=p.get("person_id_number", ""), unit=unit, fraud_case=case,
            until=_day(until, "列入期限") if until else None,
        )  # fmt: skip

    _act(request, call, "已列入黑名单")
    if back.isdigit():
        return redirect("benefits:fraud", pk=int(back))
    return redirect("benefits:blacklist")


# --- report ------------------------------------------------------------------------------------


@records_view
@require_GET
def report(request: HttpRequest) -> HttpResponse:
    data = selectors.recovery_report()
    return render(
        request, "benefits/report.html",
        _ctx(request, report=data, units_top=data.by_unit[:UNITS_ON_PAGE], units_more=len(data.by_unit) > UNITS_ON_PAGE),
    )  # fmt: skip


# The report CSV's columns, in Chinese for the officers who open it in Excel (after a UTF-8 BOM),
# in a fixed order: the section (合计, 按状态, 按单位, 按立案月份, 罚款, 冒领), the unit's number or
# the month, the row's name, then the counts and amounts (yuan, two decimals) as on the page.
REPORT_CSV_COLUMNS = (
    "分类",
    "编号",
    "名称",
    "案件数",
    "应追回（元）",
    "已追回（元）",
    "未追回（元）",
    "已核销（元）",
)


@records_view
@require_GET
def report_csv(request: HttpRequest) -> HttpResponse:
    data = selectors.recovery_report()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="recovery-report.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(REPORT_CSV_COLUMNS)
    # 编号 is the unit's number or the month; the other sections' rows are named by 名称 alone.
    for section, rows, numbered in (
        ("合计", [data.total], False),
        ("按状态", data.by_status, False),
        ("按单位", data.by_unit, True),
        ("按立案月份", data.by_month, True),
    ):
        for r in rows:
            writer.writerow([section, formula_safe(r.key) if numbered else "", formula_safe(r.label), r.cases,
                             f"{r.amount:.2f}", f"{r.recovered:.2f}", f"{r.outstanding:.2f}",
                             f"{r.written_off:.2f}"])  # fmt: skip
    writer.writerow(["罚款", "", "罚款决定", data.fraud_cases, f"{data.fines_imposed:.2f}", "", "", ""])
    writer.writerow(["罚款", "", "罚款已缴", "", f"{data.fines_collected:.2f}", "", "", ""])
    # Recoveries of a fraud case are already in the totals above: not to be added again.
    writer.writerow(["冒领", "", "其中属冒领案件的追回（已计入上述合计）", data.fraud_recovery_cases,
                     f"{data.fraud_recovery_amount:.2f}", "", "", ""])  # fmt: skip
    writer.writerow(["冒领", "", "冒领金额中未立追回案件的部分（未计入上述合计）", "",
                     f"{data.fraud_obtained_uncovered:.2f}", "", "", ""])  # fmt: skip
    # Stops reversed after money was recovered: not in the totals above.
    writer.writerow(["返还", "", "停发撤销后待返还（未计入上述合计）", data.refund_due_cases,
                     f"{data.refund_due_amount:.2f}", "", "", ""])  # fmt: skip
    writer.writerow(["返还", "", "已返还（未计入上述合计）", data.refunded_cases,
                     f"{data.refunded_amount:.2f}", "", "", ""])  # fmt: skip
    return response
