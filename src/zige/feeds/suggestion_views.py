"""Pages of the suggested matches of an import (模糊匹配建议, docs/rules.md §4a)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from zige.accounts.scoping import can_operate
from zige.audit.models import AuditEvent
from zige.feeds import suggestions
from zige.feeds.selectors import import_get
from zige.reports.pages import operator_required, paginate, records_view


@records_view
def suggestion_list(request: HttpRequest, pk: int) -> HttpResponse:
    batch = import_get(user=request.user, batch_id=pk)
    page = paginate(request, suggestions.suggestions_for(user=request.user, batch=batch))
    # When the suggestions were last looked for (the search is audited): none yet is said plainly.
    searched = (
        AuditEvent.objects.filter(action="suggestions.found", target_type="import", target_id=str(batch.pk))
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    return render(
        request,
        "feeds/suggestions.html",
        {
            "batch": batch,
            "page": page,
            "checksum_rejects": batch.rejects.filter(reason="bad_id_checksum").count(),
            "can_operate": can_operate(request.user),
            "searched": searched,
            "nav": "imports",
        },
    )


@operator_required
@require_POST
def suggestion_find(request: HttpRequest, pk: int) -> HttpResponse:
    batch = import_get(user=request.user, batch_id=pk)
    try:
        found = suggestions.suggestions_find(batch_id=batch.pk, user=request.user, now=timezone.now())
    except suggestions.SuggestionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"已检查 {found.rows_tried} 行校验位错误的记录：建议 {found.suggested} 行，"
            f"有歧义 {found.ambiguous} 行，新增 {found.new} 条建议。",
        )
    return redirect("feeds:suggestions", pk=batch.pk)


@operator_required
@require_POST
def suggestion_accept(request: HttpRequest, pk: int) -> HttpResponse:
    suggestion = suggestions.suggestion_get(user=request.user, suggestion_id=pk)
    try:
        correction = suggestions.suggestion_accept(suggestion_id=pk, user=request.user, now=timezone.now())
    except suggestions.SuggestionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"已采纳：更正后的记录作为导入 #{correction.pk} 提交。")
    return redirect("feeds:suggestions", pk=suggestion.batch_id)


@operator_required
@require_POST
def suggestion_reject(request: HttpRequest, pk: int) -> HttpResponse:
    suggestion = suggestions.suggestion_get(user=request.user, suggestion_id=pk)
    try:
        suggestions.suggestion_reject(suggestion_id=pk, user=request.user, now=timezone.now())
    except suggestions.SuggestionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "已驳回该建议。")
    return redirect("feeds:suggestions", pk=suggestion.batch_id)
