"""The audit log for auditors and bureau administrators: browse with filters, export as CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from zige.accounts.access import AUDIT_ROLES, role_required
from zige.accounts.backends import client_ip
from zige.audit import display
from zige.audit.models import AuditEvent
from zige.audit.selectors import KNOWN_ACTIONS, AuditFilter, action_label, audit_events
from zige.audit.services import audit_record
from zige.reports.pages import Echo
from zige.spreadsheet import formula_safe

PER_PAGE = 50
# The export's columns, named in Chinese for the officers who open it in Excel (the file starts
# with a UTF-8 BOM so that Excel reads it as UTF-8); their order is fixed: the stored fields of
# `AuditEvent`, before and after as the raw JSON that the hash chain covers, with the role and
# the action also by their Chinese names (the action's code beside its name).
CSV_COLUMNS = (
    "序号", "时间", "操作人", "操作人角色", "操作", "操作代码", "对象类型", "对象编号", "变更前（原始记录）",
    "变更后（原始记录）", "IP地址", "前一条记录哈希", "本条记录哈希",
)  # fmt: skip


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


@role_required(AUDIT_ROLES)
@require_GET
def browse(request: HttpRequest) -> HttpResponse:
    flt = AuditFilter.from_data(request.GET)
    page = Paginator(audit_events(flt), PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "event": e,
            "before": _json(e.before),
            "after": _json(e.after),
            "before_fields": display.fields(e.before, e.target_type),
            "after_fields": display.fields(e.after, e.target_type),
            "target_label": display.TARGET_ZH.get(e.target_type, ""),
            "action_label": action_label(e.action),
            "role_label": display.role_label(e.actor_role),
        }
        for e in page.object_list
    ]
    query = urlencode(flt.as_dict())
    return render(
        request,
        "audit/browse.html",
        {
            "filter": flt,
            "page": page,
            "rows": rows,
            "known_actions": KNOWN_ACTIONS,
            "query": query,
            "nav": "audit",
        },
    )


def _csv_rows(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield "\ufeff"  # so that Excel opens the UTF-8 file with Chinese intact
    yield writer.writerow(CSV_COLUMNS)
    for e in events:
        yield writer.writerow(
            [
                e.seq,
                timezone.localtime(e.at).isoformat(timespec="seconds"),
                formula_safe(e.actor), display.role_label(e.actor_role), action_label(e.action),
                formula_safe(e.action), formula_safe(e.target_type),
                formula_safe(e.target_id), formula_safe(_json(e.before)), formula_safe(_json(e.after)), e.ip,
                e.prev_hash, e.hash,
            ]
        )  # fmt: skip


@never_cache
@role_required(AUDIT_ROLES)
@require_POST
def export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered log as CSV (POST with the CSRF token, so that no other site can make a user's
    browser export in their name). The export itself is audited as `audit.export`."""
    flt = AuditFilter.from_data(request.POST)
    now = timezone.now()
    # The rows as of now: the export's own event and anything logged while streaming are left out,
    # so that the count recorded is the number of rows in the file.
    upto = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    events = audit_events(flt).filter(seq__lte=upto)
    audit_record(
        actor=request.user,
        action="audit.export",
        target_type="audit.AuditEvent",
        after={"filters": flt.as_dict(), "rows": events.count()},
        ip=client_ip(request),
        at=now,
    )
    name = f"audit-{timezone.localtime(now):%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(
        _csv_rows(events.order_by("seq").iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
