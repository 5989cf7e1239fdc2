"""Pages of the 服务台账 (special groups ledger) and of 异地居住 (附件2).

A unit operator sees and writes only their own unit's ledger (another unit's unit, person,
mark, visit or photo is a 404); bureau staff see every unit; auditors read. The other-province
list is the bureau's (403 for a unit operator); only bureau staff export it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from zige.accounts.access import role_required
from zige.accounts.models import Role
from zige.accounts.scoping import sees_bureau_reviews
from zige.ledger import selectors, services
from zige.ledger.config import current
from zige.ledger.forms import ExportForm, MarkForm, RemoveMarkForm, VisitForm
from zige.ledger.models import Group, VisitOutcome
from zige.reports.pages import OPERATOR_ROLES, PEOPLE_ROLES, RECORDS_ROLES, Echo, client_ip, paginate, param
from zige.spreadsheet import formula_safe

WRITER_ROLES = frozenset({Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.UNIT_OPERATOR})
people_view = role_required(PEOPLE_ROLES)
writer_view = role_required(WRITER_ROLES)
records_view = role_required(RECORDS_ROLES)
operator_view = role_required(OPERATOR_ROLES)

GROUPS = tuple(g.value for g in Group)


@people_view
@require_GET
def index(request: HttpRequest) -> HttpResponseBase:
    """The bureau's view of every unit's ledger; a unit operator goes to their own unit's."""
    user: Any = request.user
    if user.role == Role.UNIT_OPERATOR:
        return redirect("ledger:unit", unit_no=user.unit.unit_no)
    as_of = timezone.localdate()
    only_not_visited = param(request, "show", ("not_visited",)) == "not_visited"
    rows = selectors.ledger_units(user=user, as_of=as_of, only_not_visited=only_not_visited)
    totals = selectors.LedgerCounts()
    for row in rows:
        for name in ("total", "very_old", "high_risk", "immobile", "visited"):
            setattr(totals, name, getattr(totals, name) + getattr(row.counts, name))
    return render(
        request,
        "ledger/index.html",
        {
            "page": paginate(request, rows),
            "totals": totals,
            "units": len(rows),
            "as_of": as_of,
            "period_start": current().period_start(as_of),
            "only_not_visited": only_not_visited,
            "nav": "ledger",
        },
    )


@people_view
@require_GET
def unit_ledger(request: HttpRequest, unit_no: str) -> HttpResponse:
    unit = selectors.unit_get(user=request.user, unit_no=unit_no)
    as_of = timezone.localdate()
    group = param(request, "group", GROUPS)
    not_visited = param(request, "show", ("not_visited",)) == "not_visited"
    people = selectors.ledger_people(
        user=request.user, unit=unit, as_of=as_of, group=group, not_visited=not_visited
    )
    return render(
        request,
        "ledger/unit.html",
        {
            "unit": unit,
            "page": paginate(request, people),
            "counts": selectors.ledger_counts(user=request.user, unit=unit, as_of=as_of),
            "group": group,
            "groups": [(g.value, g.label) for g in Group],
            "not_visited": not_visited,
            "as_of": as_of,
            "period_start": current().period_start(as_of),
            "age": current().very_old_age,
            "nav": "ledger",
        },
    )


@people_view
@require_GET
def not_visited_csv(request: HttpRequest, unit_no: str) -> HttpResponseBase:
    """The unit's people not visited in the period (for the visiting round), UTF-8 with BOM."""
    unit = selectors.unit_get(user=request.user, unit_no=unit_no)
    as_of = timezone.localdate()
    people = selectors.ledger_people(user=request.user, unit=unit, as_of=as_of, not_visited=True)
    writer = csv.writer(Echo())

    def rows() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(["个人编号", "姓名", "类别", "上次走访", "现居住地"])
        for p in people.iterator():
            labels = "、".join(Group(g).label for g in GROUPS if getattr(p, g))
            last_visit = getattr(p, "last_visit", None)
            last = last_visit.isoformat() if last_visit else ""
            yield writer.writerow([formula_safe(v) for v in (p.person_no, p.name, labels, last, p.address)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="not-visited-{unit.unit_no}-{as_of:%Y%m%d}.csv"'
    return response


@people_view
@require_GET
def person(request: HttpRequest, person_no: str) -> HttpResponse:
    recipient = selectors.person_get(user=request.user, person_no=person_no)
    as_of = timezone.localdate()
    groups = selectors.groups_of(recipient=recipient, as_of=as_of)
    return render(
        request,
        "ledger/person.html",
        {
            "person": recipient,
            "groups": [Group(g).label for g in groups],
            "very_old": Group.VERY_OLD.value in groups,
            "age": current().very_old_age,
            "onsite": selectors.needs_onsite_evidence(recipient=recipient, as_of=as_of),
            "marks": selectors.person_marks(recipient=recipient),
            "visits": selectors.person_visits(recipient=recipient),
            "mark_form": MarkForm(initial={"since": as_of}),
            "remove_form": RemoveMarkForm(auto_id=False),
            "may_write": getattr(request.user, "role", "") in tuple(WRITER_ROLES),
            # A 已死亡 visit's review task is the bureau's: linked only for those who may open it.
            "sees_reviews": sees_bureau_reviews(request.user),
            "nav": "ledger",
        },
    )


@writer_view
@require_POST
def mark_add(request: HttpRequest, person_no: str) -> HttpResponse:
    recipient = selectors.person_get(user=request.user, person_no=person_no)
    form = MarkForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "标记未保存：" + "；".join(str(e) for errs in form.errors.values() for e in errs)
        )
    else:
        try:
            services.mark_add(
                actor=request.user, recipient=recipient, group=form.cleaned_data["group"],
                reason=form.cleaned_data["reason"], since=form.cleaned_data["since"], now=timezone.now(),
                ip=client_ip(request),
            )  # fmt: skip
            messages.success(request, f"已标记为{Group(form.cleaned_data['group']).label}")
        except services.LedgerError as exc:
            messages.error(request, str(exc))
    return redirect("ledger:person", person_no=recipient.person_no)


@writer_view
@require_POST
def mark_remove(request: HttpRequest, pk: int) -> HttpResponse:
    mark = selectors.mark_get(user=request.user, pk=pk)
    form = RemoveMarkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "请填写撤销原因")
    else:
        try:
            services.mark_remove(
                actor=request.user, mark=mark, reason=form.cleaned_data["reason"], now=timezone.now(),
                ip=client_ip(request),
            )  # fmt: skip
            messages.success(request, f"已撤销{mark.get_group_display()}标记")
        except services.LedgerError as exc:
            messages.error(request, str(exc))
    return redirect("ledger:person", person_no=mark.recipient.person_no)


@writer_view
@require_http_methods(["GET", "POST"])
def visit_new(request: HttpRequest, person_no: str) -> HttpResponse:
    recipient = selectors.person_get(user=request.user, person_no=person_no)
    if request.method == "POST":
        form = VisitForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                visit = services.visit_record(
                    actor=request.user, recipient=recipient, visited_on=data["visited_on"],
                    visitor=data["visitor"], outcome=data["outcome"], notes=data["notes"],
                    photo=data["photo"], now=timezone.now(), ip=client_ip(request),
                )  # fmt: skip
            except services.LedgerError as exc:
                form.add_error(None, str(exc))
            else:
                if visit.review_task_id:
                    messages.success(
                        request,
                        f"走访记录已保存。走访结果“已死亡”已报社保局疑点核查（核实任务 #{visit.review_task_id}），"
                        "由社保局核实死亡日期后按规定停发待遇。",
                    )
                else:
                    messages.success(request, "走访记录已保存")
                return redirect("ledger:person", person_no=recipient.person_no)
    else:
        form = VisitForm(initial={"visited_on": timezone.localdate(), "outcome": VisitOutcome.ALIVE})
    return render(request, "ledger/visit_form.html", {"person": recipient, "form": form, "nav": "ledger"})


@people_view
@require_GET
def visit_photo(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The visit's photo, for those who may see the person (stored outside the web root); every
    view is audited (`ledger.visit_photo_viewed`), as a verification attachment's is."""
    from zige.audit.services import audit_record
    from zige.verification import uploads

    visit = selectors.visit_get(user=request.user, pk=pk)
    if not visit.photo_path:
        raise Http404
    try:
        path = uploads.attachment_path(visit.photo_path)
    except uploads.UploadRefused:
        raise Http404 from None
    if not path.is_file():
        raise Http404
    audit_record(
        actor=request.user, action="ledger.visit_photo_viewed", target_type="home_visit", target_id=visit.pk,
        ip=client_ip(request), at=timezone.now(),
        after={"recipient": visit.recipient_id, "photo_sha256": visit.photo_sha256},
    )  # fmt: skip
    response = FileResponse(path.open("rb"), content_type=visit.photo_content_type)
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------
# 异地居住 (附件2)


@records_view
@require_GET
def other_province(request: HttpRequest) -> HttpResponse:
    as_of = timezone.localdate()
    status = param(request, "status", selectors.REMOTE_FILTERS)
    unit_no = param(request, "unit")
    province = param(request, "province")
    q = param(request, "q")
    listing = selectors.other_province_list(
        as_of=as_of, unit_no=unit_no, province=province, status=status, q=q
    )
    return render(
        request,
        "ledger/other_province.html",
        {
            "listing": listing,
            "page": paginate(request, listing.rows),
            "status": status,
            "unit_no": unit_no,
            "province": province,
            "q": q,
            "as_of": as_of,
            "exports": selectors.exports_list()[:10],
            "may_export": getattr(request.user, "role", "") in tuple(OPERATOR_ROLES),
            "nav": "other_province",
        },
    )


@role_required(OPERATOR_ROLES)
@require_POST
def other_province_export(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "请选择导出格式")
        return redirect("ledger:other_province")
    try:
        export = services.other_province_export(
            actor=request.user, as_of=timezone.localdate(), fmt=form.cleaned_data["format"], now=timezone.now(),
            unit_no=form.cleaned_data["unit_no"], ip=client_ip(request),
        )  # fmt: skip
    except services.LedgerError as exc:
        messages.error(request, str(exc))
        return redirect("ledger:other_province")
    messages.success(request, f"已导出附件2（{export.file_name}）：{export.rows} 人，SHA-256 {export.sha256}")
    return redirect("ledger:other_province")


@operator_view
@require_GET
def export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    export = selectors.export_get(pk=pk)
    try:
        path = services.other_province_export_download(
            actor=request.user, export=export, now=timezone.now(), ip=client_ip(request)
        )
    except services.LedgerError:
        raise Http404 from None
    content_type = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if export.format == "xlsx"
        else "text/csv; charset=utf-8"
    )
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=export.file_name, content_type=content_type
    )
