"""The current decision in plain Chinese (`zige.reports.explain`), one case per kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from zige.reports.explain import describe_record, explain_decision, unit_check_deadline

AS_OF = date(2026, 9, 30)


@dataclass
class D:
    """The attributes of a Decision that the explanation reads."""

    status: str
    reason: str
    evidence_kind: str = ""
    evidence_date: date | None = None
    certified_on: date | None = None
    due_on: date | None = None
    action: str = ""
    effective_month: str = ""
    months: int | None = None
    amount: Decimal | None = None
    remind: bool = False
    channel: str = ""


def ev(kind: str, day: date, detail: str = "", record_kind: str = "", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "record_kind": record_kind or kind, "date": day, "end_date": None, "sub": "",
            "detail": detail, "file_name": f"{kind}.csv", "row": 2, "batch_id": 1, **extra}  # fmt: skip


def eligible(kind: str, day: date = date(2026, 3, 5)) -> D:
    return D("eligible", kind, kind, day, day, date(day.year + 1, day.month, day.day))


@pytest.mark.parametrize(
    ("kind", "detail", "expected"),
    [
        ("rail", "G602|太原南|北京西", "2026-03-05 乘坐G602次列车（太原南→北京西），认证有效期至2027-03-05"),
        ("rail", "G602||", "2026-03-05 乘坐G602次列车，认证有效期至2027-03-05"),
        ("flight", "CA1234|太原|广州", "2026-03-05 乘坐CA1234航班（太原→广州），认证有效期至2027-03-05"),
        ("hospital", "山西省人民医院", "2026-03-05 山西省人民医院住院（出院）记录，认证有效期至2027-03-05"),
        (
            "checkup",
            "太原市中心医院体检中心",
            "2026-03-05 在太原市中心医院体检中心健康体检，认证有效期至2027-03-05",
        ),
        ("border", "出境|北京首都国际机场", "2026-03-05 经北京首都国际机场出境，认证有效期至2027-03-05"),
        ("app_auth", "成功|0.97", "2026-03-05 手机APP刷脸认证通过，认证有效期至2027-03-05"),
        (
            "terminal_auth",
            "人脸|T0012|通过",
            "2026-03-05 在认证终端（设备T0012）人脸认证通过，认证有效期至2027-03-05",
        ),
        (
            "unit_confirm",
            "上门走访|具备资格",
            "2026-03-05 单位确认具备资格（上门走访），认证有效期至2027-03-05",
        ),
        ("overseas_review", "", "2026-03-05 办理境外领取资格审核，认证有效期至2027-03-05"),
        ("release", "", "2026-03-05 刑满释放，认证有效期至2027-03-05"),
    ],
)
def test_eligible_by_alive_evidence(kind: str, detail: str, expected: str) -> None:
    day = date(2026, 3, 5)
    assert explain_decision(eligible(kind), ev(kind, day, detail)) == expected


def test_eligible_without_the_record_still_names_the_kind_and_dates() -> None:
    assert explain_decision(eligible("rail"), None) == "2026-03-05 乘坐火车，认证有效期至2027-03-05"


def test_eligible_from_roster_dates() -> None:
    last = D(
        "eligible",
        "last_certified",
        "last_certified",
        date(2026, 1, 15),
        date(2026, 1, 15),
        date(2027, 1, 15),
    )
    assert explain_decision(last, None) == "2026-01-15 上次认证（名册记录），认证有效期至2027-01-15"
    retired = D("eligible", "retirement", "retirement", date(2026, 6, 1), date(2026, 6, 1), date(2027, 6, 1))
    assert explain_decision(retired, None).startswith("2026-06-01 退休（名册记录）")


def test_eligible_with_reminder_and_resume() -> None:
    d = eligible("rail", date(2025, 11, 2))
    d.remind, d.channel = True, "sms"
    assert explain_decision(d, ev("rail", date(2025, 11, 2), "K1|大同|太原")).endswith(
        "；即将到期，短信提醒本人尽快认证"
    )
    d = eligible("app_auth")
    d.action, d.effective_month, d.months, d.amount = "resume", "2026-10", 6, Decimal("18000.00")
    assert explain_decision(d, None) == (
        "2026-03-05 手机APP刷脸认证通过，认证有效期至2027-03-05，自2026年10月起恢复发放，补发6个月共18,000.00元"
    )


def test_stop_by_death() -> None:
    d = D("stop", "death", "death", date(2026, 4, 10), action="stop", effective_month="2026-05")
    assert (
        explain_decision(d, ev("death", date(2026, 4, 10), "公安"))
        == "2026-04-10 公安部门死亡信息，自2026年5月起停发"
    )


def test_stop_with_overpayment_and_other_loss_kinds() -> None:
    d = D("stop", "cremation", "cremation", date(2026, 4, 10), action="stop", effective_month="2026-05",
          months=5, amount=Decimal("16000.5"))  # fmt: skip
    assert explain_decision(d, ev("cremation", date(2026, 4, 10), "太原市殡仪馆")) == (
        "2026-04-10 太原市殡仪馆火化信息，自2026年5月起停发，应追回多发养老金5个月共16,000.50元"
    )
    d = D("stop", "declared_dead", "declared_dead", date(2026, 2, 1), action="stop")
    assert explain_decision(d, None) == "2026-02-01 法院宣告死亡，自2026年3月起停发"
    d = D("stop", "unit_confirmed_lost", "unit_confirmed_lost", date(2026, 12, 3), action="stop")
    assert explain_decision(d, None) == "2026-12-03 单位确认丧失资格，自2027年1月起停发"


def test_suspend_kinds() -> None:
    d = D("suspend", "imprisoned", "sentence", date(2026, 1, 8), action="suspend", effective_month="2026-02")
    record = ev("sentence", date(2026, 1, 8), "2028-01-07|有期徒刑", end_date=date(2028, 1, 7))
    assert (
        explain_decision(d, record) == "2026-01-08起服刑（有期徒刑，刑期至2028-01-07），自2026年2月起暂停发放"
    )
    d = D("suspend", "declared_missing", "declared_missing", date(2026, 5, 20), action="suspend")
    assert explain_decision(d, None) == "2026-05-20 法院宣告失踪，自2026年6月起暂停发放"
    d = D("suspend", "unreachable", "unit_confirm", date(2026, 7, 1))  # already 暂停 on the roster
    assert explain_decision(d, None) == "2026-07-01 单位报告无法联系本人，继续暂停发放"


def test_review_life_after_death() -> None:
    d = D("review", "alive_after_death", "rail", date(2026, 6, 1))
    assert explain_decision(d, ev("rail", date(2026, 6, 1), "D2501|太原|运城")) == (
        "已有死亡信息，但2026-06-01 乘坐D2501次列车（太原→运城），需人工核查（疑似冒领），暂不停发"
    )
    d = D("review", "alive_after_missing", "app_auth", date(2026, 6, 1))
    assert explain_decision(d, None).startswith("已被宣告失踪，但2026-06-01 手机APP刷脸认证通过")


def test_pending() -> None:
    assert explain_decision(D("pending", "no_evidence"), None, as_of=AS_OF) == (
        "认证期内无比对信息，需由单位核实（截止2026-12-30）"
    )
    d = D("pending", "no_evidence", "last_certified", date(2025, 1, 15), date(2025, 1, 15), date(2026, 1, 15))
    assert explain_decision(d, None, as_of=AS_OF) == (
        "最近一次认证2025-01-15（上次认证），已于2026-01-15到期；认证期内无比对信息，需由单位核实（截止2026-12-30）"
    )


def test_pending_reads_the_run_date_from_the_decision() -> None:
    @dataclass
    class Run:
        as_of: date

    @dataclass
    class WithRun(D):
        run: Run | None = None

    d = WithRun("pending", "no_evidence", run=Run(date(2026, 11, 30)))
    assert explain_decision(d, None) == "认证期内无比对信息，需由单位核实（截止2027-02-28）"


@pytest.mark.parametrize(
    ("as_of", "deadline"),
    [
        (date(2026, 9, 30), date(2026, 12, 30)),
        (date(2026, 11, 30), date(2027, 2, 28)),
        (date(2027, 11, 1), date(2028, 2, 1)),
    ],
)
def test_unit_check_deadline_is_the_tasks_deadline(as_of: date, deadline: date) -> None:
    """docs/verification.md §1: the run's as-of date + ZIGE_VERIFICATION_MONTHS (3)."""
    assert unit_check_deadline(as_of) == deadline


def test_unit_check_deadline_follows_the_setting(settings: Any) -> None:
    settings.ZIGE_VERIFICATION_MONTHS = 2
    assert unit_check_deadline(date(2026, 9, 30)) == date(2026, 11, 30)
    d = D("pending", "no_evidence")
    assert (
        explain_decision(d, None, as_of=date(2026, 9, 30))
        == "认证期内无比对信息，需由单位核实（截止2026-11-30）"
    )
    # The task's own deadline, when the page has one, wins.
    assert explain_decision(d, None, as_of=date(2026, 9, 30), deadline=date(2027, 1, 5)).endswith(
        "（截止2027-01-05）"
    )


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (ev("rail", date(2026, 3, 5), "G602|太原南|北京西"), "乘坐G602次列车（太原南→北京西）"),
        (ev("app_auth", date(2026, 3, 5), "失败|0.41"), "手机APP刷脸认证：失败（相似度0.41）"),
        (ev("terminal_auth", date(2026, 3, 5), "指静脉|T9|通过"), "认证终端T9指静脉认证：成功"),
        # The source file's raw value is said as 成功/失败 (the store's normalised sub decides).
        (
            ev("app_auth", date(2026, 3, 5), "pass|0.9817", sub="pass"),
            "手机APP刷脸认证：成功（相似度0.9817）",
        ),
        (ev("app_auth", date(2026, 3, 5), "FAIL|0.41", sub="fail"), "手机APP刷脸认证：失败（相似度0.41）"),
        (ev("app_auth", date(2026, 3, 5), "1|0.97"), "手机APP刷脸认证：成功（相似度0.97）"),
        (ev("terminal_auth", date(2026, 3, 5), "人脸|T3|fail", sub="fail"), "认证终端T3人脸认证：失败"),
        (ev("terminal_auth", date(2026, 3, 5), "人脸|T3|0", sub="fail"), "认证终端T3人脸认证：失败"),
        (ev("unit_confirm", date(2026, 3, 5), "电话|无法联系"), "单位确认：无法联系（电话）"),
        (ev("death", date(2026, 3, 5), "民政"), "民政部门死亡信息"),
        (ev("cremation", date(2026, 3, 5), ""), "火化信息"),
        (ev("declared", date(2026, 3, 5), "宣告失踪", record_kind="declared_missing"), "法院宣告失踪"),
        (ev("sentence", date(2026, 3, 5), "|拘役"), "服刑（拘役）"),
        (ev("tax", date(2026, 3, 5), "a|b"), "tax：a，b"),
    ],
)
def test_describe_record_for_the_timeline(record: dict[str, Any], text: str) -> None:
    assert describe_record(record) == text


def test_review_names_the_record_it_contradicts() -> None:
    d = D("review", "alive_after_death", "app_auth", date(2026, 9, 16))
    death = ev("death", date(2026, 8, 9), "公安")
    assert explain_decision(d, None, earlier=death) == (
        "2026-08-09 公安部门死亡信息，但2026-09-16 手机APP刷脸认证通过，需人工核查（疑似冒领），暂不停发"
    )
    d = D("review", "alive_after_missing", "rail", date(2026, 9, 1))
    missing = ev("declared", date(2026, 3, 1), "宣告失踪", record_kind="declared_missing")
    assert explain_decision(d, ev("rail", date(2026, 9, 1), "K7|太原|大同"), earlier=missing) == (
        "2026-03-01 法院宣告失踪，但2026-09-01 乘坐K7次列车（太原→大同），需人工核查（疑似冒领），暂不停发"
    )
