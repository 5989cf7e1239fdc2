"""Writes of the ledger: marks, home visits with photos, exports of 附件2. Each is atomic and
audited in the same transaction; the caller passes the time (`now`).

Who may write: bureau staff (bureau_admin, bureau_operator) for anyone, a unit operator for the
people of their own unit (notice 三(二)1: 各单位…建立服务台账). Auditors read only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from zige.accounts.models import Role
from zige.audit.services import audit_record
from zige.engine import forms
from zige.ids import sex_of
from zige.ledger.config import current
from zige.ledger.models import (
    MARKABLE_GROUPS,
    ExportFormat,
    Group,
    HomeVisit,
    OtherProvinceExport,
    OtherProvinceExportRow,
    SpecialMark,
    VisitOutcome,
)
from zige.ledger.selectors import other_province_people, residence_code
from zige.roster.models import Recipient
from zige.spreadsheet import formula_safe, phone_safe


class LedgerError(ValueError):
    """A refused ledger change; the message is shown to the user (zh-Hans)."""


# A mark's life: active, then removed (never back: a new mark is a new row).
MARK_TRANSITIONS: dict[tuple[str, str], str] = {("active", "removed"): "ledger.mark_remove"}

BUREAU_WRITERS = (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR)
# Visit outcomes that mean lost eligibility and go to the bureau as a 疑点核查 review task
# (`verification.services.review_from_visit`). 无法见到 (nobody home once) is not 失联 and stays
# in the ledger; long-term unreachability is the unit's 无法联系 report on a verification task.
REPORTED_OUTCOMES = frozenset({VisitOutcome.DEAD.value})
MAX_TEXT = 300


def _may_write(actor: Any, recipient: Recipient) -> None:
    role = getattr(actor, "role", "")
    if role in BUREAU_WRITERS:
        return
    if role == Role.UNIT_OPERATOR and actor.unit_id is not None and actor.unit_id == recipient.unit_id:
        return
    raise LedgerError("无权为该人员登记服务台账")


def _local_day(now: datetime) -> date:
    return timezone.localtime(now).date()


def _text(value: str, label: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if required and not text:
        raise LedgerError(f"请填写{label}")
    if len(text) > limit:
        raise LedgerError(f"{label}不能超过{limit}字")
    return text


def _mark_snapshot(mark: SpecialMark) -> dict[str, Any]:
    return {
        "person_no": mark.recipient.person_no,
        "group": mark.group,
        "reason": mark.reason,
        "since": mark.since.isoformat(),
        "state": "active" if mark.removed_at is None else "removed",
        "removal_reason": mark.removal_reason,
    }


def mark_add(
    *, actor: Any, recipient: Recipient, group: str, reason: str, since: date, now: datetime, ip: str = ""
) -> SpecialMark:
    """Mark a person high-risk (高危) or immobile (行动不便). Very old (高龄) is never marked: it
    follows from the birth date. One active mark per person and group."""
    _may_write(actor, recipient)
    if group == Group.VERY_OLD:
        raise LedgerError("高龄由身份证号中的出生日期自动确定，无需标记")
    if group not in MARKABLE_GROUPS:
        raise LedgerError("未知的特殊群体类别")
    reason = _text(reason, "标记原因")
    if since > _local_day(now):
        raise LedgerError("起始日期不能晚于今天")
    try:
        with transaction.atomic():
            mark = SpecialMark.objects.create(
                recipient=recipient, group=group, reason=reason, since=since, marked_by=actor, marked_at=now
            )
            audit_record(
                actor=actor, action="ledger.mark_add", target_type="recipient", target_id=recipient.pk,
                after=_mark_snapshot(mark), ip=ip, at=now,
            )  # fmt: skip
    except IntegrityError:
        raise LedgerError(f"该人员已标记为{Group(group).label}") from None
    return mark


def mark_remove(*, actor: Any, mark: SpecialMark, reason: str, now: datetime, ip: str = "") -> SpecialMark:
    """Remove a mark (kept in the history with who, when and why)."""
    _may_write(actor, mark.recipient)
    reason = _text(reason, "撤销原因")
    with transaction.atomic():
        locked = SpecialMark.objects.select_for_update().select_related("recipient").get(pk=mark.pk)
        state = "active" if locked.removed_at is None else "removed"
        if (state, "removed") not in MARK_TRANSITIONS:
            raise LedgerError("该标记已撤销")
        before = _mark_snapshot(locked)
        locked.removed_at, locked.removed_by, locked.removal_reason = now, actor, reason
        locked.save(update_fields=["removed_at", "removed_by", "removal_reason"])
        audit_record(
            actor=actor, action=MARK_TRANSITIONS[(state, "removed")], target_type="recipient",
            target_id=locked.recipient_id, before=before, after=_mark_snapshot(locked), ip=ip, at=now,
        )  # fmt: skip
    return locked


# ---------------------------------------------------------------------------------------------
# Home visits


@dataclass(frozen=True)
class StoredPhoto:
    path: str
    sha256: str
    content_type: str
    size: int


def _store_photo(upload: Any) -> StoredPhoto:
    """Check the photo by its content (a real JPEG/PNG/WebP that Pillow decodes, size-limited,
    virus-scan hook) and keep it outside the web root, through the verification app's upload
    module (the same rules as 附件1 evidence). The file name and browser content type decide
    nothing."""
    from zige.verification import uploads

    try:
        checked = uploads.upload_check(
            name=str(getattr(upload, "name", "") or "photo"), data=upload, allowed=uploads.IMAGES
        )
    except uploads.UploadRefused as exc:
        raise LedgerError(str(exc)) from None
    stored = uploads.attachment_store(upload=checked)
    return StoredPhoto(
        path=stored.stored_path, sha256=stored.sha256, content_type=checked.content_type, size=stored.size
    )


def visit_record(
    *,
    actor: Any,
    recipient: Recipient,
    visited_on: date,
    visitor: str,
    outcome: str,
    notes: str = "",
    photo: Any = None,
    now: datetime,
    ip: str = "",
) -> HomeVisit:
    """Record a home visit (上门走访/慰问, notice 三(二)1). The visit date is not after today.

    An 已死亡 visit also goes to the bureau as a 疑点核查 review task in the same transaction
    (`REPORTED_OUTCOMES`); the officer confirms the death there and the stop is proposed then.
    """
    _may_write(actor, recipient)
    if visited_on > _local_day(now):
        raise LedgerError("走访日期不能晚于今天")
    if outcome not in VisitOutcome.values:
        raise LedgerError("请选择走访结果")
    visitor = _text(visitor, "走访人", limit=100)
    notes = _text(notes, "备注", required=False, limit=2000)
    stored = _store_photo(photo) if photo else None
    with transaction.atomic():
        visit = HomeVisit.objects.create(
            recipient=recipient, unit_id=recipient.unit_id, visited_on=visited_on, visitor=visitor,
            outcome=outcome, notes=notes, recorded_by=actor, recorded_at=now,
            photo_path=stored.path if stored else "", photo_sha256=stored.sha256 if stored else "",
            photo_content_type=stored.content_type if stored else "", photo_size=stored.size if stored else 0,
        )  # fmt: skip
        audit_record(
            actor=actor, action="ledger.visit_record", target_type="recipient", target_id=recipient.pk,
            after={"person_no": recipient.person_no, "visit": visit.pk, "visited_on": visited_on.isoformat(),
                   "outcome": outcome, "photo_sha256": visit.photo_sha256},
            ip=ip, at=now,
        )  # fmt: skip
        if outcome in REPORTED_OUTCOMES:  # to the bureau's review queue; payment is decided there
            from zige.verification.services import review_from_visit

            task = review_from_visit(visit=visit, actor=actor, now=now)
            if task is not None:
                visit.review_task = task
                visit.save(update_fields=["review_task"])
    return visit


# ---------------------------------------------------------------------------------------------
# 附件2 exports


def _export_dir() -> Path:
    return Path(settings.DATA_DIR) / "exports" / "other_province"


def export_path(export: OtherProvinceExport) -> Path:
    return _export_dir() / export.stored_path


def attachment2_rows(people: list[Recipient]) -> list[dict[str, str]]:
    """The rows of 附件2 for these people, as `forms.write_out_of_province_workbook` takes them
    (the same fields `zige certify` writes into out_of_province.xlsx)."""
    rows = []
    for r in people:
        ident = r.id_number
        rows.append(
            {
                "unit_no": r.unit.unit_no,
                "residence_region": residence_code(r),
                "person_no": r.person_no,
                "name": r.name,
                "sex": r.sex or (sex_of(ident) if len(ident) == 18 else ""),
                "ethnicity": r.ethnicity,
                "birth_date": f"{ident[6:10]}-{ident[10:12]}-{ident[12:14]}" if len(ident) == 18 else "",
                "id_number": ident,
                "political_status": r.political_status,
                "health": r.health,
                "former_employer": r.former_employer,
                "retirement_category": r.retirement_category,
                "retirement_date": r.retirement_date.isoformat() if r.retirement_date else "",
                "hukou": r.hukou,
                "address": r.address,
                "phone": r.phone,
            }
        )
    return rows


_CSV_KEYS = (
    "unit_no", "insured", "residence_region", "person_no", "name", "sex", "ethnicity", "birth_date",
    "id_number", "political_status", "health", "former_employer", "retirement_category",
    "retirement_date", "hukou", "address", "postcode", "phone",
)  # fmt: skip


def _csv_bytes(rows: list[dict[str, str]], insured: str) -> bytes:
    """附件2 as CSV (UTF-8 with BOM, the form's column headers, 序号 first); text a spreadsheet
    would run as a formula is quoted (`zige.spreadsheet.formula_safe`), and the phone is written
    readable instead (`phone_safe`: a mobile as its 11 digits, another `+` number with `00`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(forms.OUT_OF_PROVINCE_HEADERS)
    for n, row in enumerate(rows, start=1):
        values = {**row, "insured": insured}
        writer.writerow(
            [n, *((phone_safe if k == "phone" else formula_safe)(values.get(k, "")) for k in _CSV_KEYS)]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def other_province_export(
    *, actor: Any, as_of: date, fmt: str, now: datetime, unit_no: str = "", ip: str = ""
) -> OtherProvinceExport:
    """Write 附件2 for everyone on the list today (or one unit's people), for upload to the
    national remote-certification platform (notice 三(二)3); record who, when, how many and the
    file's SHA-256, and who was in it. The file is in place before the record commits."""
    if getattr(actor, "role", "") not in BUREAU_WRITERS:
        raise LedgerError("只有社保局经办人员可以导出附件2")
    if fmt not in ExportFormat.values:
        raise LedgerError("未知的导出格式")
    cfg = current()
    qs = other_province_people(config=cfg)
    if unit_no:
        qs = qs.filter(unit__unit_no=unit_no)
    people = list(qs)
    rows = attachment2_rows(people)
    name = f"附件2-外省户籍人员基本信息表-{as_of:%Y%m%d}-{timezone.localtime(now):%Y%m%d%H%M%S}-{secrets.token_hex(3)}.{fmt}"
    folder = _export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    temp = folder / f".{name}.tmp"
    try:
        if fmt == ExportFormat.XLSX:
            forms.write_out_of_province_workbook(
                temp, as_of=as_of, insured_region_code=cfg.region_code, rows=rows
            )
        else:
            temp.write_bytes(_csv_bytes(rows, cfg.region_code))
        data = temp.read_bytes()
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        with transaction.atomic():
            export = OtherProvinceExport.objects.create(
                format=fmt, as_of=as_of, rows=len(rows), sha256=hashlib.sha256(data).hexdigest(),
                size=len(data), file_name=name, stored_path=name, filters={"unit_no": unit_no} if unit_no else {},
                created_by=actor, created_at=now,
            )  # fmt: skip
            OtherProvinceExportRow.objects.bulk_create(
                [OtherProvinceExportRow(export=export, recipient=p) for p in people], batch_size=2000
            )
            audit_record(
                actor=actor, action="ledger.other_province_export", target_type="other_province_export",
                target_id=export.pk, after={"file_name": name, "format": fmt, "as_of": as_of.isoformat(),
                                            "rows": len(rows), "sha256": export.sha256, "unit_no": unit_no},
                ip=ip, at=now,
            )  # fmt: skip
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return export


def other_province_export_download(
    *, actor: Any, export: OtherProvinceExport, now: datetime, ip: str = ""
) -> Path:
    """The stored file of a 附件2 export for a download, audited on every download (the file
    holds the full ID and phone number of everyone in it), as the payment batches' files,
    rejects.csv and 附件1 are. Bureau staff only."""
    if getattr(actor, "role", "") not in BUREAU_WRITERS:
        raise LedgerError("只有社保局经办人员可以下载附件2")
    path = export_path(export)
    if not path.is_file():
        raise LedgerError("附件2文件不存在")
    with transaction.atomic():
        audit_record(
            actor=actor, action="ledger.other_province_export_downloaded", target_type="other_province_export",
            target_id=export.pk, after={"file_name": export.file_name, "rows": export.rows, "sha256": export.sha256},
            ip=ip, at=now,
        )  # fmt: skip
    return path
