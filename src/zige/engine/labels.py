"""Chinese labels for codes, as staff read them (statuses, reasons, record kinds)."""

from __future__ import annotations

STATUS_ZH: dict[str, str] = {
    "eligible": "具备资格",
    "stop": "丧失资格（停发）",
    "suspend": "暂停发放",
    "review": "疑点核查",
    "pending": "待核实",
}

REASON_ZH: dict[str, str] = {
    "alive_after_death": "死亡信息后仍有生存信息",
    "alive_after_lost": "单位确认丧失资格后仍有生存信息",
    "alive_after_missing": "宣告失踪后仍有生存信息",
    "death": "死亡",
    "cremation": "火化",
    "declared_dead": "宣告死亡",
    "unit_confirmed_lost": "单位确认丧失资格",
    "imprisoned": "服刑",
    "declared_missing": "宣告失踪",
    "unreachable": "单位报告无法联系",
    "last_certified": "上次认证",
    "retirement": "退休",
    "no_evidence": "认证期内无比对信息",
}

KIND_ZH: dict[str, str] = {
    "rail": "铁路出行",
    "flight": "民航出行",
    "hospital": "住院/出院",
    "checkup": "健康体检",
    "border": "出入境",
    "app_auth": "手机APP刷脸认证",
    "terminal_auth": "终端设备认证",
    "unit_confirm": "单位确认",
    "overseas_review": "境外领取资格审核",
    "release": "刑满释放",
    "death": "死亡",
    "cremation": "火化",
    "declared_dead": "宣告死亡",
    "declared_missing": "宣告失踪",
    "unit_confirmed_lost": "单位确认丧失资格",
    "sentence": "刑事处罚",
    "last_certified": "上次认证",
    "retirement": "退休",
}

# Why a row of an input file was rejected (spec §6; docs/rules.md §4): the page of an import and
# its rejects.csv download (原因说明), and the batch's rejects.csv, say each code in these words.
REJECT_REASON_ZH: dict[str, str] = {
    "missing_value": "缺少必填值",
    "bad_id_format": "身份证号格式错误",
    "bad_id_checksum": "身份证号校验码错误",
    "bad_id_birth_date": "身份证号出生日期错误",
    "bad_date": "日期无法识别",
    "bad_value": "取值无法识别",
    "bad_amount": "金额无法识别",
    "duplicate_person_no": "个人编号重复且内容不同",
    "duplicate_id_number": "身份证号重复且内容不同",
}


def reject_reason_zh(code: str) -> str:
    """A reject reason in Chinese; a code without words (from a newer version) as it is."""
    return REJECT_REASON_ZH.get(code, code)


ACTION_ZH: dict[str, str] = {"stop": "停发", "suspend": "暂停发放", "resume": "恢复发放"}

# The facts a suggested match was confirmed by (`zige.engine.fuzzy`: `confirmed_by`).
CONFIRMED_BY_ZH: dict[str, str] = {
    "name": "姓名",
    "id_birth_date": "建议号码中的出生日期",
    "roster_birth_date": "名册出生日期",
    "feed_birth_date": "数据中的出生日期",
    "feed_age": "数据中的年龄",
}
