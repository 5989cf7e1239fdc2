"""Certification runs: the list (with 开始认证), one run with its summary and its changes."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from zige.accounts.models import User
from zige.accounts.scoping import can_operate
from zige.certification import archive
from zige.certification.forms import RunForm
from zige.certification.models import Run, RunStatus
from zige.certification.selectors import run_get
from zige.certification.services import RunRefused, run_submit
from zige.reports import selectors
from zige.reports.pages import operator_required, paginate, param, records_view

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


@records_view
def runs(request: HttpRequest) -> HttpResponse:
    status = param(request, "status", tuple(s.value for s in RunStatus))
    page = paginate(request, selectors.runs_list(status=status))
    today = timezone.localdate()
    form = RunForm(initial={"as_of": today}, today=today)
    return render(
        request,
        "certification/runs.html",
        {
            "page": page,
            "status": status,
            "statuses": RunStatus.choices,
            "form": form,
            "can_operate": can_operate(request.user),
            "nav": "runs",
        },
    )


@operator_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    form = RunForm(request.POST, today=timezone.localdate())
    if not form.is_valid():
        messages.error(request, "请填写正确的比对基准日（YYYY-MM-DD）")
        return redirect("certification:list")
    try:
        run = run_submit(as_of=form.cleaned_data["as_of"], user=cast(User, request.user), now=timezone.now())
    except RunRefused as exc:
        messages.error(request, str(exc))
        return redirect("certification:list")
    messages.success(request, f"已提交认证批次：比对基准日 {run.as_of:%Y-%m-%d}")
    return redirect("certification:detail", pk=run.pk)


def _summary_tables(run: Run, user: Any) -> dict[str, Any]:
    """Counts for the run page in the user's scope, reasons grouped under their status."""
    counts = selectors.run_counts(run, user)
    reasons: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(counts.by_reason, key=lambda r: (r["status"], -r["n"])):
        reasons[row["status"]].append({"reason": selectors.reason_text(row["reason"]), "n": row["n"]})
    held = (
        selectors.run_held_actions(run, user)
        if any(str(a["change"]).startswith("held") for a in counts.actions)
        else []
    )
    return {
        "by_status": counts.by_status,
        "total": counts.total,
        "remind": counts.remind,
        "reasons": [(s, reasons[s]) for s in selectors.STATUS_ORDER if reasons.get(s)],
        "actions": counts.actions,
        "held": held,
    }


# What a back-dated run did not do (its summary's `backdated.skipped`, docs/rules.md §8.4), in
# the order the page says it.
BACKDATED_ZH = {
    "payment_actions": "未提出待遇变更（停发、暂停发放、恢复发放），也未更新或撤回待审批的待遇处理",
    "tasks": "未生成或关闭核实任务",
    "messages": "未生成、恢复或撤销认证提醒（终止人员的提醒照常撤销）",
}


def _backdated(run: Run) -> dict[str, Any] | None:
    """What the run page says of a back-dated run, from what the run recorded when it ran
    (`certification.services.run_record_backdated`): the later run, its as-of date, and what
    the run skipped, in Chinese. None for a run that was not back-dated."""
    kept = (run.summary or {}).get("backdated")
    if not isinstance(kept, dict) or not kept.get("later_run"):
        return None
    skipped = [str(p) for p in kept.get("skipped") or ()]
    try:
        later_as_of = date.fromisoformat(str(kept.get("later_as_of") or ""))
    except ValueError:
        later_as_of = None
    return {
        "later_run": int(kept["later_run"]),
        "later_as_of": later_as_of,
        "payment_actions": "payment_actions" in skipped,
        "text": "；".join(text for part, text in BACKDATED_ZH.items() if part in skipped),
    }


@records_view
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(run_id=pk)
    status = param(request, "status", (*selectors.STATUS_ORDER, "gone"))
    unit_no = param(request, "unit")
    page = paginate(request, selectors.run_changes(run, request.user, status=status, unit_no=unit_no))
    context: dict[str, Any] = {
        "run": run,
        "page": page,
        "status": status,
        "unit_no": unit_no,
        "statuses": selectors.STATUS_ORDER,
        "finished": run.status in FINISHED,
        "nav": "runs",
        "backdated": _backdated(run),
    }
    if run.status == RunStatus.SUCCEEDED:
        context.update(_summary_tables(run, request.user))
    if run.decisions_archived:
        context["archive_name"] = archive.copy_name(run.pk)
    return render(request, "certification/detail.html", context)


@records_view
@require_GET
def progress(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(run_id=pk)
    response = render(
        request, "certification/_progress.html", {"run": run, "finished": run.status in FINISHED}
    )
    if run.status in FINISHED and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response
