"""Verification pages: the unit's task list, the task (form, history, review), the workbook upload,
the bureau's review queue, and the evidence files (served only here, audited)."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from zige.accounts.access import role_required
from zige.accounts.models import Role, User
from zige.accounts.scoping import can_reveal, scope_units
from zige.audit.services import audit_record
from zige.benefits.selectors import stops_left_to_correction
from zige.engine.forms import write_pending_workbook
from zige.reports.pages import OPERATOR_ROLES, PEOPLE_ROLES, RECORDS_ROLES, Echo, client_ip, paginate, param
from zige.roster.models import Unit
from zige.spreadsheet import formula_safe
from zige.verification import selectors
from zige.verification.forms import BulkForm, ReportForm, ResolveForm, ReviewForm
from zige.verification.models import (
    ACTIVE,
    AWAITING_UNIT,
    AttachmentRole,
    TaskKind,
    TaskStatus,
    VerificationTask,
)
from zige.verification.services import (
    ROLE_KINDS,
    Evidence,
    Report,
    SubmissionInvalid,
    TaskNotFound,
    TransitionRefused,
    earliest_recorded_death,
    form1_apply,
    review_resolve,
    special_reasons,
    submission_review,
    task_submit,
)
from zige.verification.uploads import (
    CONTENT_TYPE,
    EVERYTHING,
    UploadRefused,
    attachment_path,
    upload_check,
    uploads_precheck,
)
from zige.web.refs import say_next
from zige.web.templatetags.zige import reason_label

UNIT_ROLES = frozenset({Role.UNIT_OPERATOR})


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)  # the role decorators let only logged-in users in


FILE_FIELDS = (
    ("on_site", AttachmentRole.ON_SITE),
    ("written", AttachmentRole.WRITTEN),
    ("other", AttachmentRole.OTHER),
)


def _list_filters(request: HttpRequest, user: User, today: date) -> tuple[str, selectors.TaskFilters]:
    """The task list's status and filters from the query string (the page and its CSV)."""
    status = param(request, "status", tuple(TaskStatus.values))
    # A unit operator sees their own unit's tasks only (the selectors' scope): no unit filter.
    filters = selectors.TaskFilters(
        today=today, kind=param(request, "kind", tuple(TaskKind.values)),
        unit_no="" if user.unit_id else param(request, "unit"), reason=param(request, "reason"),
        q=param(request, "q"), due=param(request, "due", selectors.DEADLINE_WINDOWS),
    )  # fmt: skip
    return status, filters


@role_required(PEOPLE_ROLES)
@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    user = _user(request)
    status, filters = _list_filters(request, user, today)
    tasks = selectors.tasks_list(user=user, status=status, filters=filters)
    # The unit whose deadline SMS are shown: the operator's own, or the bureau's `?unit=`
    # (None: the latest of every unit).
    units = scope_units(Unit.objects.all(), request.user)
    sms_unit = units.filter(pk=user.unit_id).first() if user.unit_id else None
    if sms_unit is None and filters.unit_no:
        sms_unit = units.filter(unit_no=filters.unit_no).first()
    # The status chips keep the other filters (and drop the page).
    others = request.GET.copy()
    for key in ("status", "page"):
        others.pop(key, None)
    counts = selectors.status_counts(user=user, filters=filters)
    return render(
        request,
        "verification/list.html",
        {
            "page": paginate(request, tasks),
            "status": status,
            "filters": filters,
            "others": others.urlencode(),
            "kinds": TaskKind.choices,
            "reasons": selectors.task_reasons(user=user),
            "windows": (("late", "已过截止日期"), ("soon", f"{selectors.DUE_SOON_DAYS} 天内到期")),
            "counts": counts,
            # 进行中 (no status chosen): the tasks in hand, as the list shows them.
            "active_count": sum(counts.get(s, 0) for s in ACTIVE),
            "statuses": TaskStatus.choices,
            "due_soon": selectors.due_soon_count(user=user, today=today),
            "reminders": selectors.reminders_for(user=user, limit=5),
            "sms_unit": sms_unit,
            "today": today,
            "soon": today + timedelta(days=selectors.DUE_SOON_DAYS),
            "nav": "verification",
        },
    )


EXPORT_HEADER = (
    "截止日期",
    "任务编号",
    "任务类型",
    "状态",
    "个人编号",
    "姓名",
    "单位编号",
    "单位名称",
    "原因",
    "比对基准日",
)


@role_required(PEOPLE_ROLES)
@require_GET
def task_list_export(request: HttpRequest) -> StreamingHttpResponse:
    """The task list as the page filters it, every page, as CSV (UTF-8 with BOM, for Excel and
    WPS): to send a unit its late people or to work through a list offline. No ID numbers (the
    unit's 附件1 carries them, audited as such); audited with the filters and the count."""
    today = timezone.localdate()
    user = _user(request)
    status, filters = _list_filters(request, user, today)
    tasks = selectors.tasks_list(user=user, status=status, filters=filters)
    count = tasks.count()
    audit_record(
        actor=user, action="tasks.list_exported", target_type="verification_task", target_id="",
        at=timezone.now(), ip=client_ip(request),
        after={
            "tasks": count, "status": status, "kind": filters.kind, "unit_no": filters.unit_no,
            "reason": filters.reason, "due": filters.due, "searched": bool(filters.q),
        },
    )  # fmt: skip
    writer = csv.writer(Echo())

    def rows() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(EXPORT_HEADER)
        for task in tasks.iterator(chunk_size=2000):
            person, unit = task.recipient, task.unit
            texts = [formula_safe(v) for v in (person.person_no, person.name, unit.unit_no, unit.name)]
            first = (task.deadline.isoformat(), task.pk, task.get_kind_display(), task.get_status_display())
            yield writer.writerow([*first, *texts, reason_label(task.reason), task.as_of.isoformat()])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="tasks-{today:%Y%m%d}.csv"'
    return response


def _detail_context(request: HttpRequest, task: Any, **extra: Any) -> dict[str, Any]:
    role = getattr(request.user, "role", "")
    unit_may_report = (
        role == Role.UNIT_OPERATOR and task.kind == TaskKind.UNIT and task.status in AWAITING_UNIT
    )
    submissions = selectors.submissions_of(task)
    latest = submissions[0] if submissions else None
    today = timezone.localdate()
    context = {
        "task": task,
        "person": task.recipient,
        "events": task.events.select_related("actor").order_by("at", "pk"),
        "submissions": submissions,
        "special": special_reasons(task.recipient, as_of=task.as_of),
        # Home visits of the service ledger that reported this person dead (a review they opened).
        "visits": list(task.home_visits.select_related("recorded_by").order_by("visited_on", "pk")),
        "finding_files": selectors.finding_attachments(task) if task.kind == TaskKind.REVIEW else [],
        # A 疑点核查's recorded deaths (and declarations, a unit's 丧失资格): the dates the finding's
        # 死亡日期 is weighed against.
        "loss_records": selectors.loss_records_until(id_number=task.recipient.id_number, until=today)
        if task.kind == TaskKind.REVIEW
        else [],
        # The earliest of them that dates a death: a finding's later 死亡日期 needs a confirmation.
        "earliest_death": earliest_recorded_death(recipient=task.recipient, today=today)
        if task.kind == TaskKind.REVIEW
        else None,
        "can_report": unit_may_report,
        "can_review": role in OPERATOR_ROLES and task.status == TaskStatus.SUBMITTED,
        "is_maker": bool(latest and latest.submitted_by_id == request.user.pk),
        "can_resolve": role in OPERATOR_ROLES
        and task.kind == TaskKind.REVIEW
        and task.status in ("open", "overdue"),
        "form": ReportForm(initial={"confirmed_on": today}, today=today) if unit_may_report else None,
        "review_form": ReviewForm(),
        "resolve_form": ResolveForm(today=today),
        # An earlier 确认健在 that a death finding on or before its day overrides (rules §8.5).
        "alive_finding": selectors.alive_finding_of(task.recipient_id)
        if task.kind == TaskKind.REVIEW
        else None,
        # Stops a 确认健在 does not withdraw (approved or exported): the officer reverses them.
        "stops_to_correct": stops_left_to_correction(task.recipient_id)
        if task.kind == TaskKind.REVIEW and role in OPERATOR_ROLES
        else [],
        # Fraud cases this finding could not revise (fined, closed …): corrected by hand.
        "fraud_cases_to_correct": selectors.fraud_cases_to_correct(task) if role in OPERATOR_ROLES else [],
        "nav": "verification",
        "today": today,
    }
    context.update(extra)
    return context


@role_required(PEOPLE_ROLES)
@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.task_get(user=_user(request), pk=pk)
    return render(request, "verification/detail.html", _detail_context(request, task))


def _files(request: HttpRequest) -> tuple[list[Evidence], list[str]]:
    """The report's evidence files, checked. The number and sizes first, from what the upload
    handler counted (`uploads_precheck`): too many or too large, and none is read at all."""
    uploads = [
        (role, upload, ROLE_KINDS.get(role, EVERYTHING))
        for name, role in FILE_FIELDS
        for upload in request.FILES.getlist(name)
    ]
    try:
        uploads_precheck(files=[(u.name or "", u.size, allowed) for _, u, allowed in uploads])
    except UploadRefused as exc:
        return [], [str(exc)]
    files: list[Evidence] = []
    problems: list[str] = []
    for role, upload, allowed in uploads:
        try:
            files.append(Evidence(role, upload_check(name=upload.name or "", data=upload, allowed=allowed)))
        except UploadRefused as exc:
            problems.append(str(exc))
    return files, problems


@role_required(UNIT_ROLES)
@require_POST
def task_submit_view(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.task_get(user=_user(request), pk=pk)  # another unit's task: 404
    form = ReportForm(request.POST, today=timezone.localdate())
    files, problems = _files(request)
    if form.is_valid():
        data = form.cleaned_data
        report = Report(
            method=data["method"], method_note=data.get("method_note") or "", result=data["result"],
            confirmed_on=data.get("confirmed_on"), address=data.get("address") or "", health=data.get("health") or "",
            lost_reason=data.get("lost_reason") or "", lost_on=data.get("lost_on"), note=data.get("note") or "",
        )  # fmt: skip
        if not problems:
            try:
                task_submit(
                    task_id=task.pk, user=_user(request), report=report, files=files, now=timezone.now()
                )
            except SubmissionInvalid as exc:
                problems.extend(message for _, message in exc.errors)
            except (TransitionRefused, TaskNotFound) as exc:
                messages.error(request, str(exc))
                return redirect("verification:detail", pk=task.pk)
            else:
                messages.success(request, "已上报，等待社保局审核。")
                return redirect("verification:detail", pk=task.pk)
    context = _detail_context(request, task, problems=problems)
    context["form"] = form
    return render(request, "verification/detail.html", context, status=200)


def _say_next_in_queue(request: HttpRequest, *, after: Any) -> None:
    """After a report's review or a finding: 下一条, the next task of the officer's review queue
    (`selectors.next_in_review_queue`), or that none is left."""
    following = selectors.next_in_review_queue(user=_user(request), after=after)
    say_next(
        request, following, url_name="verification:detail", none_left="审核队列中已没有其他待处理的任务。"
    )


@role_required(OPERATOR_ROLES)
@require_POST
def task_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.task_get(user=_user(request), pk=pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "请选择审核结论。")
        return redirect("verification:detail", pk=task.pk)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        submission_review(
            task_id=task.pk,
            user=_user(request),
            approve=approve,
            note=form.cleaned_data["note"],
            now=timezone.now(),
        )
    except SubmissionInvalid as exc:
        messages.error(request, "；".join(m for _, m in exc.errors))
    except (TransitionRefused, PermissionDenied) as exc:
        messages.error(request, str(exc) or "不能审核。")
    else:
        messages.success(request, "审核通过，结果已作为单位确认信息入库。" if approve else "已退回单位。")
        _say_next_in_queue(request, after=task)  # as after a finding
    return redirect("verification:detail", pk=task.pk)


@role_required(OPERATOR_ROLES)
@require_POST
def task_resolve_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The bureau's finding on a review task, with its evidence files (checked by content and
    size-limited as a unit's report is: `_files`). A refused finding shows the form again with
    the reasons; nothing of it is kept."""
    task = selectors.task_get(user=_user(request), pk=pk)
    form = ResolveForm(request.POST, today=timezone.localdate())
    files, problems = _files(request)
    if not form.is_valid():
        problems.insert(0, "请填写核查结论和说明。")
    if not problems:
        data = form.cleaned_data
        try:
            review_resolve(
                task_id=task.pk, user=_user(request), finding=data["finding"], note=data["note"],
                death_date=data.get("death_date"), amount_obtained=data.get("amount_obtained"), now=timezone.now(),
                files=files, confirm_alive_after=bool(data.get("confirm_alive_after")),
                confirm_later_death=bool(data.get("confirm_later_death")),
                later_death_reason=data.get("later_death_reason") or "",
            )  # fmt: skip
        except SubmissionInvalid as exc:
            problems.extend(m for _, m in exc.errors)
        except (TransitionRefused, PermissionDenied) as exc:
            messages.error(request, str(exc) or "不能处理。")
            return redirect("verification:detail", pk=task.pk)
        else:
            messages.success(request, "核查结论已记录。")
            resolved = selectors.task_get(user=_user(request), pk=task.pk)
            for left in selectors.fraud_cases_to_correct(resolved):
                messages.warning(request, left.message)
            _say_next_in_queue(request, after=resolved)
            return redirect("verification:detail", pk=task.pk)
    return render(
        request,
        "verification/detail.html",
        _detail_context(request, task, problems=problems, resolve_form=form),
    )


@role_required(RECORDS_ROLES)
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    tasks = selectors.review_queue(user=_user(request))
    return render(
        request,
        "verification/queue.html",
        {"page": paginate(request, tasks), "today": timezone.localdate(), "nav": "verification"},
    )


@role_required(RECORDS_ROLES)
@require_GET
def unit_progress(request: HttpRequest) -> HttpResponse:
    """各单位核实进度: the units with tasks in hand, most late first (`selectors.unit_progress`)."""
    today = timezone.localdate()
    rows = selectors.unit_progress(user=_user(request), today=today)
    return render(
        request,
        "verification/units.html",
        {"page": paginate(request, rows), "statuses": selectors.PROGRESS_STATUSES, "nav": "verification"},
    )


@role_required(PEOPLE_ROLES)
@require_GET
def form1_download(request: HttpRequest) -> HttpResponse:
    """The unit's 附件1 workbook of the people it still has to verify, to fill in and upload back.

    A unit operator gets their own unit; bureau staff and auditors name one with ?unit=. Roles
    that may reveal ID numbers (`scoping.can_reveal`) get them in full, auditors masked (the
    selector decides); every download is audited, with which of the two it was.
    """
    user = _user(request)
    unit_no = user.unit.unit_no if user.unit_id and user.unit else param(request, "unit")
    unit, rows = selectors.form1_rows(user=user, unit_no=unit_no)
    now = timezone.now()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "form1.xlsx"
        write_pending_workbook(
            path, unit_no=unit.unit_no, unit_name=unit.name, as_of=timezone.localdate(now), rows=rows
        )
        data = path.read_bytes()
    audit_record(
        actor=user, action="tasks.form1_downloaded", target_type="unit", target_id=unit.unit_no, at=now,
        after={"people": len(rows), "id_numbers": "full" if can_reveal(user) else "masked"}, ip=client_ip(request),
    )  # fmt: skip
    response = HttpResponse(
        data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="form1-{unit.unit_no}.xlsx"'
    return response


@role_required(UNIT_ROLES)
@require_http_methods(["GET", "POST"])
def bulk_upload(request: HttpRequest) -> HttpResponse:
    result = None
    problems: list[str] = []
    form = BulkForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        written = None
        if form.cleaned_data.get("written"):
            upload = form.cleaned_data["written"]
            try:
                written = upload_check(
                    name=upload.name or "", data=upload, allowed=EVERYTHING - {"mp4", "mov"}
                )
            except UploadRefused as exc:
                problems.append(str(exc))
        workbook = form.cleaned_data["workbook"]
        if not problems:
            data = workbook.read(20 * 1024 * 1024 + 1)
            if len(data) > 20 * 1024 * 1024:
                problems.append("工作簿过大（上限 20 MB）。")
            else:
                result = form1_apply(user=_user(request), data=data, now=timezone.now(), written=written)
                if not result.errors:
                    messages.success(
                        request, f"已上报 {result.applied} 人（未填写的 {result.skipped} 行未处理）。"
                    )
                    return redirect("verification:list")
    return render(
        request,
        "verification/bulk.html",
        {"form": form, "result": result, "problems": problems, "nav": "verification"},
    )


@role_required(PEOPLE_ROLES)
@require_GET
def attachment_view(request: HttpRequest, pk: int) -> FileResponse:
    attachment = selectors.attachment_get(user=_user(request), pk=pk)
    audit_record(
        actor=request.user, action="attachment.viewed", target_type="verification_attachment", target_id=pk,
        ip=client_ip(request), at=timezone.now(),
        after={"task": attachment.owner_task_id,
               "recipient": VerificationTask.objects.values_list("recipient_id", flat=True).get(
                   pk=attachment.owner_task_id)},
    )  # fmt: skip
    path = attachment_path(attachment.stored_path)
    response = FileResponse(
        path.open("rb"), content_type=CONTENT_TYPE.get(attachment.file_kind, "application/octet-stream")
    )
    inline = attachment.file_kind in ("jpeg", "png", "webp", "mp4", "mov", "pdf")
    response["Content-Disposition"] = ("inline" if inline else "attachment") + f'; filename="attachment-{pk}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
