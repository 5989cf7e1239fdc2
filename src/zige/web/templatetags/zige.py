"""Template filters for zige's pages: masking, Chinese labels, status badges.

{% load zige %}
{{ person.id_number|mask_id }}  {{ person.mobile|mask_phone }}
{{ decision.status|status_label }}  {{ decision.reason|reason_label }}  {{ e.kind|kind_label }}
<span class="badge {{ decision.status|status_class }}">…</span>
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django import template

from zige.accounts import masking
from zige.certification.models import RunStatus, Status
from zige.engine.kinds import ID_ALIASES
from zige.engine.labels import ACTION_ZH, CONFIRMED_BY_ZH, KIND_ZH, REASON_ZH, reject_reason_zh
from zige.feeds.models import ImportStatus
from zige.roster.models import BenefitStatus
from zige.rules import to_fen

register = template.Library()

# Short labels for badges and table cells (the longer engine labels suit reports and files).
_STATUS_SHORT: dict[str, str] = {s.value: s.label for s in Status}
_STATUS_SHORT[Status.SUSPEND] = "暂停发放"

# Roster kinds, in the words staff use (reject reasons: zige.engine.labels.REJECT_REASON_ZH).
_EXTRA_KINDS: dict[str, str] = {
    "roster": "待遇领取人员名册",
    "declared": "宣告死亡/失踪",
    "home_visit": "服务台账上门走访",
}
# Reasons of review tasks that no run decides (zige.verification.services.review_from_visit).
_EXTRA_REASONS: dict[str, str] = {"visit_dead": "上门走访发现已死亡"}
_FIELD_ZH: dict[str, str] = {
    "id_number": "身份证号",
    "name": "姓名",
    "person_no": "个人编号",
    "unit_no": "单位编号",
    "event_date": "日期",
    "result": "结果",
    "penalty": "刑罚种类",
    "end_date": "刑期截止日期",
    "declared_type": "宣告类型",
    "benefit_status": "待遇状态",
    "monthly_amount": "月养老金",
    "status_since": "状态变更日期",
    "retirement_date": "退休日期",
    "last_certified_on": "上次认证日期",
    "unit_id": "单位",
    "unit_name": "单位名称",
    "sex": "性别",
    "birth_date_text": "出生日期",
    "status_reason": "停发原因",
    "phone": "联系电话",
    "mobile": "手机号码",
    "address": "居住地址",
    "lives_abroad": "是否境外居住",
    "has_social_card": "是否办理社保卡",
    "health": "健康状况",
    "retirement_category": "离退休类别",
    "ethnicity": "民族",
    "political_status": "政治面貌",
    "former_employer": "原工作单位",
    "hukou": "户籍地址",
    "residence_region": "居住地行政区划",
}


@register.filter
def mask_id(value: Any) -> str:
    return masking.mask_id(str(value) if value else "")


@register.filter
def mask_phone(value: Any) -> str:
    return masking.mask_phone(str(value) if value else "")


@register.filter
def status_label(value: Any) -> str:
    return _STATUS_SHORT.get(str(value), str(value or ""))


@register.filter
def status_class(value: Any) -> str:
    """CSS modifier for a decision status badge (`badge--eligible` …)."""
    return f"badge--{value}" if str(value) in _STATUS_SHORT else "badge--none"


@register.filter
def reason_label(value: Any) -> str:
    """A decision's reason; for 具备资格 the reason is the kind of the evidence (`rail` → 铁路出行)."""
    text = str(value or "")
    return REASON_ZH.get(text) or KIND_ZH.get(text) or _EXTRA_REASONS.get(text) or text


@register.filter
def num(value: Any) -> str:
    """`5988` → `5,988` (Django's zh-hans format groups no digits)."""
    if value in (None, ""):
        return "0"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def money(value: Any) -> str:
    """`3052691.2` → `3,052,691.20`."""
    if value in (None, ""):
        return "0.00"
    try:
        return f"{to_fen(Decimal(str(value))):,.2f}"
    except (ArithmeticError, ValueError):
        return str(value)


@register.filter
def kind_label(value: Any) -> str:
    text = str(value or "")
    return KIND_ZH.get(text) or _EXTRA_KINDS.get(text) or text


@register.filter
def action_label(value: Any) -> str:
    return ACTION_ZH.get(str(value), str(value or ""))


@register.filter
def action_change_label(value: Any) -> str:
    """What a run did to a payment action (`reports.selectors.RUN_ACTION_CHANGE_ZH`); a proposal
    when not told."""
    from zige.reports.selectors import RUN_ACTION_CHANGE_ZH

    return RUN_ACTION_CHANGE_ZH.get(str(value), RUN_ACTION_CHANGE_ZH["proposed"])


@register.filter
def benefit_label(value: Any) -> str:
    try:
        return BenefitStatus(str(value)).label
    except ValueError:
        return str(value or "")


@register.filter
def run_status_label(value: Any) -> str:
    try:
        return RunStatus(str(value)).label
    except ValueError:
        return str(value or "")


@register.filter
def import_status_label(value: Any) -> str:
    try:
        return ImportStatus(str(value)).label
    except ValueError:
        return str(value or "")


@register.filter
def reject_reason_label(value: Any) -> str:
    return reject_reason_zh(str(value or ""))


@register.filter
def field_label(value: Any) -> str:
    return _FIELD_ZH.get(str(value), str(value or ""))


@register.filter
def confirmed_by_label(value: Any) -> str:
    """A suggested match's `confirmed_by` (`name,id_birth_date,…`) in Chinese, joined by 、."""
    return "、".join(CONFIRMED_BY_ZH.get(p, p) for p in str(value or "").split(",") if p)


@register.filter
def province_name(value: Any) -> str:
    """A 2-digit province code (or any code starting with one) as the province's name."""
    from zige.regions import PROVINCES

    code = str(value or "")
    return PROVINCES.get(code[:2], code)


@register.filter
def region_name(value: Any) -> str:
    """A 6-digit 行政区划 code as its full name; a code the table lacks, as its province's name
    (or "" when not even that is known: the page shows the code beside it)."""
    from zige.regions import PROVINCES, region

    code = str(value or "")
    found = region(code)
    if found is not None:
        return found.full_name
    return PROVINCES.get(code[:2], "") if len(code) >= 2 else ""


@register.filter
def ymd(value: Any) -> str:
    """A date as `2026-03-05` (Django's zh-hans default would be `2026年3月5日`)."""
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    return str(value or "")


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    """`{{ counts|lookup:status }}` — a dict value in a template (0 when missing)."""
    if isinstance(mapping, dict):
        return mapping.get(key, mapping.get(str(key), 0))
    return 0


@register.filter
def pct_class(value: Any) -> str:
    """`w-0` … `w-100` in steps of 5 for a percentage (bar widths without inline styles)."""
    try:
        n = max(0.0, min(100.0, float(value)))
    except (TypeError, ValueError):
        n = 0.0
    return f"w-{int(round(n / 5) * 5)}"


@register.inclusion_tag("partials/pagination.html", takes_context=True)
def pager(context: template.Context, page: Any) -> dict[str, Any]:
    """Page links that keep the current filters (`{% pager page %}`)."""
    numbers: list[Any] = []
    if page is not None and page.paginator.num_pages > 1:
        numbers = list(page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1))
    ellipsis = page.paginator.ELLIPSIS if page is not None else "…"
    return {"page": page, "numbers": numbers, "ellipsis": ellipsis, "request": context.get("request")}


@register.filter
def describe(record: Any) -> str:
    """An evidence record as a timeline line (`乘坐G602次列车（太原南→北京西）`)."""
    from zige.reports.explain import describe_record

    return describe_record(record) if isinstance(record, dict) else ""


_LOSS_KINDS = {"death", "cremation", "declared", "sentence"}


@register.filter
def is_loss(record: Any) -> bool:
    return isinstance(record, dict) and str(record.get("kind")) in _LOSS_KINDS


_SENSITIVE_FIELDS = {"id_number": masking.mask_id, "phone": masking.mask_phone, "mobile": masking.mask_phone}


@register.filter
def masked_change(value: Any, field: str) -> str:
    """A roster change's old/new value, masked when the field is an ID or phone number."""
    text = str(value or "")
    mask = _SENSITIVE_FIELDS.get(field)
    return mask(text) if mask else text


_YES = {"是", "yes", "y", "1", "true", "有", "已办理"}
_NO = {"否", "no", "n", "0", "false", "无", "未办理"}


@register.filter
def yes_no(value: Any) -> str:
    """Roster yes/no columns as staff read them (是 / 否); other text stays as it is."""
    text = str(value or "").strip()
    if text.lower() in _YES:
        return "是"
    if text.lower() in _NO:
        return "否"
    return text


_ID_FIELDS = {*ID_ALIASES, "id_number"}
_PHONE_FIELDS = {"联系电话", "手机号码", "手机号", "phone", "mobile"}
_REJECT_VALUE_SHOWN = 60  # characters of a rejected value on the page


@register.filter
def reject_value(reject: Any) -> str:
    """A rejected cell as shown on the page: ID and phone numbers masked (the header may be any
    alias, 身份证号 / 公民身份号码 / …, or as the file heads it with the label after it,
    公民身份号码（身份证号）; a value rejected as an ID is masked whatever its column)."""
    field = str(getattr(reject, "field", "") or "").replace(" ", "")
    if field.endswith("）") and "（" in field:
        field = field[field.rindex("（") + 1 : -1]  # 出行日期（乘车日期）: zige.engine.kinds.field_as_written
    value = str(getattr(reject, "value", "") or "")
    reason = str(getattr(reject, "reason", "") or "")
    if field in _ID_FIELDS or reason.startswith("bad_id") or reason == "duplicate_id_number":
        value = masking.mask_id(value)
    elif field in _PHONE_FIELDS:
        value = masking.mask_phone(value)
    # Cut after masking too: a masked ID of thousands of characters is one unbreakable run of
    # stars that would push the 原因 column off the page (the download keeps the whole value).
    return value if len(value) <= _REJECT_VALUE_SHOWN else value[: _REJECT_VALUE_SHOWN - 1] + "…"


@register.simple_tag(takes_context=True)
def refs(context: template.Context, value: Any) -> str:
    """Internal references (`payment_action:12 fraud_case:3`) as Chinese labels, each linked when
    the viewer may open its page (zige.web.refs); "—" when there are none."""
    from django.utils.html import format_html, format_html_join

    from zige.web import refs as references

    request = context.get("request")
    found = references.parse(str(value or ""), getattr(request, "user", None))
    if not found:
        return "—"
    return format_html_join(
        "、",
        "{}",
        ((format_html('<a href="{}">{}</a>', r.url, r.label) if r.url else format_html("{}", r.label),)
         for r in found),
    )  # fmt: skip


@register.filter
def action_source(action: Any) -> str:
    """Where a payment action came from, in Chinese (a review task's action: 疑点核查)."""
    from zige.web.refs import source_label

    return source_label(action.source, str(action.get_source_display()), action.source_ref)
