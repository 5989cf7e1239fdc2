"""The current decision in plain Chinese, for the person page.

`explain_decision` is a pure function of a decision (anything with the attributes of
`certification.models.Decision`) and the evidence record that decided it (a row of
`feeds.selectors.evidence_for_person`: `kind`, `record_kind`, `date`, `end_date`, `sub`, `detail`
with the kind's other columns joined by `|`). Without the record (not in the evidence store, or a
roster date) the sentence is built from the decision alone.

    2026-03-05 乘坐G602次列车（太原南→北京西），认证有效期至2027-03-05
    2026-04-10 公安部门死亡信息，自2026年5月起停发
    认证期内无比对信息，需由单位核实（截止2026-12-30）
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from zige.calendar import add_months
from zige.engine.labels import KIND_ZH, REASON_ZH
from zige.engine.sql import FAIL_VALUES, PASS_VALUES

__all__ = [
    "BUREAU_FINDING",
    "describe_record",
    "explain_decision",
    "is_bureau_finding",
    "unit_check_deadline",
]

# The 确认方式 of the `unit_confirm` row a bureau's 确认死亡 / 疑似冒领 finding writes
# (`zige.verification.services._finding_csv`): 「社保局疑点核查确认死亡，核查任务#12」.
BUREAU_FINDING = "社保局疑点核查"


def unit_check_deadline(as_of: date) -> date:
    """Last day for a unit to verify a pending person when no task says otherwise: the deadline
    the run's verification task gets (`zige.verification.services.deadline_for`: the as-of date
    plus `ZIGE_VERIFICATION_MONTHS`, 3 by default, or `ZIGE_VERIFICATION_DAYS`; notice 三(一)1,
    docs/verification.md §1). The person page passes the task's own deadline when there is one.
    """
    from zige.verification.services import deadline_for

    return deadline_for(as_of)


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip()
    return text[:10] if len(text) >= 10 and text[4:5] == "-" else text


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def _parts(evidence: dict[str, Any] | None) -> list[str]:
    if not evidence:
        return []
    detail = evidence.get("detail") or ""
    return [p.strip() for p in str(detail).split("|")]


def _part(parts: list[str], index: int) -> str:
    return parts[index] if index < len(parts) else ""


def is_bureau_finding(record: dict[str, Any] | None) -> bool:
    """A `unit_confirm` record written by the bureau's 疑点核查 finding (its 确认方式 starts with
    `BUREAU_FINDING`), not by a unit's report."""
    return bool(record) and _part(_parts(record), 0).startswith(BUREAU_FINDING)


def _auth_result(record: dict[str, Any], raw: str) -> str:
    """An app or terminal result as the page says it: 成功 or 失败, whatever the source file
    wrote (pass, 通过, 1 …). The store's normalised `sub` (pass/fail) decides; without one, the
    raw text is read by the values the import accepts (docs/rules.md §3); anything else is shown
    as written."""
    sub = str(record.get("sub") or "").strip().lower()
    value = raw.replace("\u3000", " ").strip().lower()
    if sub == "pass" or (not sub and value in PASS_VALUES):
        return "成功"
    if sub == "fail" or (not sub and value in FAIL_VALUES):
        return "失败"
    return raw or "—"


def _month_zh(value: Any) -> str:
    """`2026-05` → `2026年5月`."""
    text = str(value or "")
    try:
        year, month = text[:7].split("-")
        return f"{int(year)}年{int(month)}月"
    except ValueError:
        return text


def _effective_month(decision: Any, evidence_day: date | None) -> str:
    month = getattr(decision, "effective_month", "") or ""
    if month:
        return _month_zh(month)
    if evidence_day is not None:
        nxt = add_months(evidence_day.replace(day=1), 1)
        return f"{nxt.year}年{nxt.month}月"
    return ""


def _agency(source: str) -> str:
    """`公安` → `公安部门`; a full name (`太原市民政局`) stays as it is."""
    if not source:
        return ""
    if source.endswith(("部门", "局", "厅", "委", "院", "所", "馆", "中心", "机关")):
        return source
    return f"{source}部门"


def _money(value: Any) -> str:
    if value in (None, ""):
        return ""
    return f"{Decimal(str(value)):,.2f}"


def _route(origin: str, destination: str) -> str:
    if origin and destination:
        return f"（{origin}→{destination}）"
    if origin or destination:
        return f"（{origin or destination}）"
    return ""


def _alive_phrase(kind: str, day: str, evidence: dict[str, Any] | None) -> str:
    """What the person did on `day` that shows them alive (or a roster date)."""
    p = _parts(evidence)
    if kind == "rail":
        train = _part(p, 0)
        what = f"乘坐{train}次列车" if train else "乘坐火车"
        return f"{day} {what}{_route(_part(p, 1), _part(p, 2))}"
    if kind == "flight":
        flight = _part(p, 0)
        what = f"乘坐{flight}航班" if flight else "乘坐飞机"
        return f"{day} {what}{_route(_part(p, 1), _part(p, 2))}"
    if kind == "hospital":
        hospital = _part(p, 0)
        return f"{day} {hospital}住院（出院）记录" if hospital else f"{day} 住院（出院）记录"
    if kind == "checkup":
        place = _part(p, 0)
        return f"{day} 在{place}健康体检" if place else f"{day} 健康体检"
    if kind == "border":
        direction, port = _part(p, 0), _part(p, 1)
        where = f"经{port}" if port else ""
        return f"{day} {where}{direction or '出入境'}"
    if kind == "app_auth":
        return f"{day} 手机APP刷脸认证通过"
    if kind == "terminal_auth":
        method, device = _part(p, 0), _part(p, 1)
        at = f"在认证终端（设备{device}）" if device else "在认证终端"
        return f"{day} {at}{method}认证通过"
    if kind == "unit_confirm":
        method = _part(p, 0)
        return f"{day} 单位确认具备资格" + (f"（{method}）" if method else "")
    if kind == "overseas_review":
        return f"{day} 办理境外领取资格审核"
    if kind == "release":
        return f"{day} 刑满释放"
    if kind == "last_certified":
        return f"{day} 上次认证（名册记录）"
    if kind == "retirement":
        return f"{day} 退休（名册记录），此后无认证记录"
    label = KIND_ZH.get(kind, kind)
    return f"{day} {label}记录" if label else day


def _loss_phrase(kind: str, day: str, evidence: dict[str, Any] | None) -> str:
    p = _parts(evidence)
    if kind == "death":
        return f"{day} {_agency(_part(p, 0))}死亡信息"
    if kind == "cremation":
        home = _part(p, 0)
        return f"{day} {home}火化信息" if home else f"{day} 火化信息"
    if kind == "declared_dead":
        return f"{day} 法院宣告死亡"
    if kind == "unit_confirmed_lost":
        method = _part(p, 0)
        if method.startswith(BUREAU_FINDING):
            return f"{day} 死亡（{method}）"
        return f"{day} 单位确认丧失资格"
    return f"{day} {KIND_ZH.get(kind, kind)}信息"


def _sentence_phrase(day: str, evidence: dict[str, Any] | None) -> str:
    end = _day(evidence.get("end_date")) if evidence else ""
    penalty = ""
    for part in _parts(evidence):
        # The detail holds the sentence's other columns (end date and penalty) in either order.
        if part and _as_date(part) is None:
            penalty = part
        elif part and not end:
            end = _day(part)
    terms = "，".join(t for t in (penalty, f"刑期至{end}" if end else "") if t)
    return f"{day}起服刑" + (f"（{terms}）" if terms else "")


def explain_decision(
    decision: Any,
    evidence: dict[str, Any] | None,
    *,
    as_of: date | None = None,
    earlier: dict[str, Any] | None = None,
    deadline: date | None = None,
) -> str:
    """One sentence a case officer can read to the person (or the unit) on the phone.

    `as_of` is the run's as-of date (for the unit's deadline on a pending person); by default
    `decision.run.as_of`. `earlier` is, for a 疑点核查 decision, the loss or 宣告失踪 record the
    alive evidence contradicts, when the evidence store has it. `deadline` is the unit's
    deadline for a pending person (their verification task's); without it, the one a task of
    the run gets (`unit_check_deadline`).
    """
    status = str(getattr(decision, "status", "") or "")
    reason = str(getattr(decision, "reason", "") or "")
    kind = str(getattr(decision, "evidence_kind", "") or "")
    if evidence and not kind:
        kind = str(evidence.get("record_kind") or evidence.get("kind") or "")
    ev_date = _as_date(getattr(decision, "evidence_date", None)) or _as_date((evidence or {}).get("date"))
    day = _day(ev_date) if ev_date else ""
    due_on = _as_date(getattr(decision, "due_on", None))
    certified_on = _as_date(getattr(decision, "certified_on", None))
    action = str(getattr(decision, "action", "") or "")
    months = getattr(decision, "months", None) or 0
    amount = getattr(decision, "amount", None)

    if status == "eligible":
        text = _alive_phrase(kind or reason, day or _day(certified_on), evidence).strip()
        if due_on:
            text += f"，认证有效期至{_day(due_on)}"
        if action == "resume":
            text += f"，自{_effective_month(decision, None) or '下月'}起恢复发放"
            if months:
                text += f"，补发{months}个月共{_money(amount)}元"
        if getattr(decision, "remind", False):
            channel = str(getattr(decision, "channel", "") or "")
            how = "短信提醒本人" if channel == "sms" else "由单位通知本人"
            text += f"；即将到期，{how}尽快认证"
        return text

    if status == "stop":
        text = _loss_phrase(kind or reason, day, evidence)
        when = _effective_month(decision, ev_date)
        text += f"，自{when}起停发" if when else "，停发"
        if months and amount not in (None, "") and Decimal(str(amount)) > 0:
            text += f"，应追回多发养老金{months}个月共{_money(amount)}元"
        return text

    if status == "suspend":
        if reason == "imprisoned" or kind == "sentence":
            text = _sentence_phrase(day, evidence)
        elif reason == "declared_missing":
            text = f"{day} 法院宣告失踪"
        elif reason == "unreachable":
            text = f"{day} 单位报告无法联系本人"
        else:
            text = f"{day} {REASON_ZH.get(reason, reason)}"
        if action == "suspend":
            when = _effective_month(decision, ev_date)
            text += f"，自{when}起暂停发放" if when else "，暂停发放"
        else:
            text += "，继续暂停发放"
        return text.strip()

    if status == "review":
        before = {
            "alive_after_death": "已有死亡信息",
            "alive_after_lost": "单位已确认丧失资格",
            "alive_after_missing": "已被宣告失踪",
        }.get(reason, REASON_ZH.get(reason, "信息矛盾"))
        if earlier:
            loss_kind = str(earlier.get("record_kind") or earlier.get("kind") or "")
            loss_day = _day(earlier.get("date"))
            if loss_kind == "declared_missing":
                before = f"{loss_day} 法院宣告失踪"
            else:
                before = _loss_phrase(loss_kind, loss_day, earlier)
        seen = _alive_phrase(kind, day, evidence).strip() if kind else "仍有生存信息"
        return f"{before}，但{seen}，需人工核查（疑似冒领），暂不停发"

    if status == "pending":
        if as_of is None:
            run = getattr(decision, "run", None)
            as_of = _as_date(getattr(run, "as_of", None)) if run is not None else None
        text = "认证期内无比对信息，需由单位核实"
        if deadline is None and as_of is not None:
            deadline = unit_check_deadline(as_of)
        if deadline is not None:
            text += f"（截止{_day(deadline)}）"
        if certified_on and due_on:
            source = KIND_ZH.get(kind, "") if kind else ""
            last = f"最近一次认证{_day(certified_on)}" + (f"（{source}）" if source else "")
            text = f"{last}，已于{_day(due_on)}到期；{text}"
        return text

    return REASON_ZH.get(reason, reason)


def describe_record(record: dict[str, Any]) -> str:
    """One evidence record as a line of the person's timeline (without its date)."""
    kind = str(record.get("kind") or "")
    record_kind = str(record.get("record_kind") or kind)
    p = _parts(record)
    if kind in ("rail", "flight", "hospital", "checkup", "border", "overseas_review", "release"):
        return _alive_phrase(kind, "", record).strip()
    if kind == "app_auth":
        result = _part(p, 0)
        similarity = _part(p, 1)
        return f"手机APP刷脸认证：{_auth_result(record, result)}" + (
            f"（相似度{similarity}）" if similarity else ""
        )
    if kind == "terminal_auth":
        method, device, result = _part(p, 0), _part(p, 1), _part(p, 2)
        where = f"认证终端{device}" if device else "认证终端"
        return f"{where}{method}认证：{_auth_result(record, result)}"
    if kind == "unit_confirm":
        method, result = _part(p, 0), _part(p, 1)
        if method.startswith(BUREAU_FINDING):
            return f"{method}（{result or '—'}）"
        return f"单位确认：{result or '—'}" + (f"（{method}）" if method else "")
    if kind == "death":
        return f"{_agency(_part(p, 0))}死亡信息"
    if kind == "cremation":
        home = _part(p, 0)
        return f"{home}火化" if home else "火化信息"
    if kind == "declared":
        what = _part(p, 0) or KIND_ZH.get(record_kind, "")
        return f"法院{what}" if what and not what.startswith("法院") else what or "法院宣告"
    if kind == "sentence":
        return _sentence_phrase("", record).removeprefix("起")
    label = KIND_ZH.get(record_kind, record_kind)
    rest = "，".join(x for x in p if x)
    return f"{label}：{rest}" if rest else label
