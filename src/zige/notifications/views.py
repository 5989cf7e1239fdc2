"""Reminder pages: the operator's overview, a unit's notice list (CSV), the gateway's
delivery-receipt callback."""

from __future__ import annotations

import csv
import hmac
import json
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from zige.accounts.scoping import scope_units
from zige.notifications import selectors
from zige.notifications.config import current
from zige.notifications.content import check_templates
from zige.notifications.jobs import JOB_LABELS, job_key_label, scheduler_status
from zige.notifications.models import Channel, MessageStatus
from zige.notifications.services import parse_reports, receipts_record
from zige.reports.pages import Echo, paginate, people_view, records_view
from zige.roster.models import Unit
from zige.spreadsheet import formula_safe

STATUS_LABELS = dict(MessageStatus.choices)
CHANNEL_LABELS = dict(Channel.choices)


@records_view
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    summary = selectors.latest_summary()
    created = ((summary.detail or {}).get("messages") or {}).get("created") or {} if summary else {}
    latest = selectors.latest_jobs()
    beat = next((j for j in latest if j.job == "scheduler"), None)
    return render(
        request,
        "notifications/overview.html",
        {
            "scheduler": scheduler_status(beat, now=timezone.now(), config=current()) if beat else None,
            "jobs": [
                (JOB_LABELS.get(j.job, j.job), job_key_label(j.job, j.key), j)
                for j in latest
                if j.job != "scheduler"
            ],
            "outbox": [
                (STATUS_LABELS.get(status, status), n)
                for status, n in sorted(selectors.outbox_counts().items())
            ],
            "created": [(CHANNEL_LABELS.get(k, k), n) for k, n in sorted(created.items())],
            "summary": summary,
            "quarantined": selectors.quarantined(),
            "failed": selectors.failed_messages(),
            "template_problems": check_templates(current()),
            "nav": "notifications",
        },
    )


@people_view
@require_GET
def unit_notices(request: HttpRequest, unit_no: str) -> HttpResponse:
    """The unit's notice list (没有手机号码的退休人员由参保单位通知, and people our SMS could not
    reach: each row says which), linked from the unit page."""
    unit = get_object_or_404(scope_units(Unit.objects.all(), request.user), unit_no=unit_no)
    # The notices still to act on, all of them, paged; the expired ones (earlier cycles) are
    # counted and stay in the CSV.
    today = timezone.localdate()
    page = paginate(request, selectors.unit_notices(unit, request.user, due_from=today))
    expired = selectors.unit_notices(unit, request.user).filter(due_on__lt=today).count()
    return render(
        request,
        "notifications/unit_notices.html",
        {"unit": unit, "page": page, "notices": page.object_list, "expired": expired, "nav": "units"},
    )


@people_view
@require_GET
def unit_notices_csv(request: HttpRequest, unit_no: str) -> HttpResponseBase:
    """The unit's notice list (people to remind who have no mobile number, or whom our SMS could
    not reach: 通知原因), UTF-8 with BOM."""
    unit = get_object_or_404(scope_units(Unit.objects.all(), request.user), unit_no=unit_no)
    notices = selectors.unit_notices(unit, request.user)
    writer = csv.writer(Echo())

    def rows() -> Iterator[Any]:
        yield "\ufeff" + writer.writerow(
            ["个人编号", "姓名", "类型", "截止日期", "通知原因", "通知内容", "列入日期"]
        )
        for m in notices.iterator():
            person = m.recipient
            if person is None:  # a unit's own SMS (unit_deadline) is never on the notice list
                continue
            yield writer.writerow(
                [formula_safe(person.person_no), formula_safe(person.name), m.get_kind_display(),
                 m.due_on.isoformat(), formula_safe(m.notice_reason), formula_safe(m.text),
                 timezone.localtime(m.created_at).date().isoformat()]
            )  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="unit-notices-{unit.unit_no}.csv"'
    return response


@csrf_exempt
@require_POST
def receipt(request: HttpRequest, provider: str) -> HttpResponse:
    """Delivery reports pushed by the SMS provider. Authenticated by the shared token
    (`ZIGE_SMS_CALLBACK_TOKEN`) in the `X-Zige-Token` header or the `token` query parameter
    (providers' consoles take a callback URL, not a header). Idempotent."""
    config = current()
    token = request.headers.get("X-Zige-Token") or request.GET.get("token", "")
    if not config.callback_token or not hmac.compare_digest(token.encode(), config.callback_token.encode()):
        return JsonResponse({"code": 403, "msg": "forbidden"}, status=403)
    if provider not in ("aliyun", "tencent"):
        return JsonResponse({"code": 404, "msg": "unknown provider"}, status=404)
    try:
        reports = parse_reports(provider, json.loads(request.body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        return JsonResponse({"code": 400, "msg": str(exc)[:200]}, status=400)
    counts = receipts_record(provider=provider, reports=reports, now=timezone.now())
    # The answers each provider expects from a callback that took the reports.
    if provider == "aliyun":
        return JsonResponse({"code": 0, "msg": "成功", **counts})
    return JsonResponse({"result": 0, "errmsg": "OK", **counts})
