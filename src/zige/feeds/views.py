"""Imports: the list, the upload form, one import with its rejects, progress and the rejects CSV."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from zige.accounts.models import User
from zige.accounts.scoping import can_operate, can_reveal
from zige.engine.labels import reject_reason_zh
from zige.feeds.failures import ImportRefused
from zige.feeds.forms import UploadForm
from zige.feeds.models import ImportStatus
from zige.feeds.selectors import import_get
from zige.feeds.services import import_submit
from zige.reports import selectors
from zige.reports.pages import Echo, client_ip, operator_required, paginate, param, records_view
from zige.spreadsheet import formula_safe

FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED, ImportStatus.DUPLICATE)


@records_view
def imports(request: HttpRequest) -> HttpResponse:
    kind = param(request, "kind")
    status = param(request, "status", tuple(s.value for s in ImportStatus))
    page = paginate(request, selectors.imports_list(request.user, kind=kind, status=status))
    return render(
        request,
        "feeds/imports.html",
        {
            "page": page,
            "kind": kind,
            "status": status,
            "kinds": selectors.import_kinds(),
            "statuses": ImportStatus.choices,
            "can_operate": can_operate(request.user),
            "nav": "imports",
        },
    )


@operator_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        name = Path(upload.name).name
        incoming = Path(settings.UPLOAD_DIR) / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=incoming, suffix=Path(name).suffix, delete=False) as tmp:
            for chunk in upload.chunks():
                tmp.write(chunk)
        source = Path(tmp.name)
        try:
            batch = import_submit(
                source=source,
                file_name=name,
                kind=form.cleaned_data["kind"] or None,
                user=cast(User, request.user),
                now=timezone.now(),
            )
        except ImportRefused as exc:  # an unknown kind, an unsupported type, too large
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"已提交导入：{name}")
            return redirect("feeds:detail", pk=batch.pk)
        finally:
            source.unlink(missing_ok=True)  # the service keeps its own copy in the upload store
    return render(request, "feeds/upload.html", {"form": form, "nav": "imports"})


@records_view
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = import_get(user=request.user, batch_id=pk)
    reason = param(request, "reason")
    page = paginate(request, selectors.rejects_for(batch, reason=reason))
    return render(
        request,
        "feeds/detail.html",
        {
            "batch": batch,
            "page": page,
            "reason": reason,
            "reasons": selectors.reject_reasons(batch),
            "finished": batch.status in FINISHED,
            "can_download": can_reveal(request.user),
            "nav": "imports",
        },
    )


@records_view
@require_GET
def progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar, polled by htmx while the import runs; a finished import reloads the page."""
    batch = import_get(user=request.user, batch_id=pk)
    response = render(request, "feeds/_progress.html", {"batch": batch, "finished": batch.status in FINISHED})
    if batch.status in FINISHED and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@operator_required
@require_GET
def rejects_csv(request: HttpRequest, pk: int) -> HttpResponseBase:
    """rejects.csv of one import, UTF-8 with BOM so that Excel opens it: spec §6's columns, in its
    order (`file, row, field, value, reason`), then 原因说明, the reason in the words the import's
    page uses (`zige.engine.labels.REJECT_REASON_ZH`) for the officer who reads it in Excel. The
    batch's own rejects.csv (`zige certify --out`) has these six too, then 文件中的列名 (its `field`
    stays the label; here the field is already named as the file heads it).

    The values are unmasked (staff correct the source file from it), so the download is audited.
    """
    from zige.audit.services import audit_record

    batch = import_get(user=request.user, batch_id=pk)
    audit_record(
        actor=request.user,
        action="rejects_download",
        target_type="import",
        target_id=batch.pk,
        after={"file_name": batch.file_name, "rows": batch.rows_rejected},
        ip=client_ip(request),
        at=timezone.now(),
    )
    writer = csv.writer(Echo())

    def rows() -> Iterator[Any]:
        yield "\ufeff" + writer.writerow(["file", "row", "field", "value", "reason", "原因说明"])
        for r in batch.rejects.order_by("row", "pk").iterator(chunk_size=2000):
            yield writer.writerow([formula_safe(batch.file_name), r.row, formula_safe(r.field), formula_safe(r.value),
                                   formula_safe(r.reason), formula_safe(reject_reason_zh(r.reason))])  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stem = Path(batch.file_name).stem or "import"
    response["Content-Disposition"] = (
        f"attachment; filename=\"rejects-{batch.pk}.csv\"; filename*=UTF-8''{_quote(stem)}-rejects.csv"
    )
    return response


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
