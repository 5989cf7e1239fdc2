"""An audit record as an auditor reads it: the object and the before/after values under Chinese
names. The stored JSON stays as it is (the hash chain covers it); the page shows it too, folded."""

from __future__ import annotations

import json
from typing import Any

# Audit `target_type` -> what the object is.
TARGET_ZH: dict[str, str] = {
    "accounts.ApiToken": "API令牌",
    "accounts.DeviceClient": "设备客户端",
    "accounts.User": "用户",
    "audit.AuditEvent": "审计日志",
    "blacklist": "黑名单",
    "evidence_store": "证据库",
    "export_batch": "支付导出批次",
    "fraud_case": "冒领案件",
    "import": "数据导入",
    "inbox_file": "收件箱文件",
    "job": "定时任务",
    "other_province_export": "附件2导出",
    "payment_action": "待遇处理",
    "provider": "数据提供方",
    "recipient": "待遇领取人员",
    "roster.Recipient": "待遇领取人员",
    "roster.Unit": "单位",
    "benefits.RecoveryCase": "追回案件",
    "recovery_case": "追回案件",
    "run": "认证批次",
    "run_messages": "认证批次的提醒",
    "run_tasks": "认证批次的核实任务",
    "suggested_match": "号码纠错建议",
    "unit": "单位",
    "unit_deadline_messages": "单位核实截止提醒",
    "verification": "核实工作（按日）",
    "verification_attachment": "核实附件",
    "verification_task": "核实任务",
}

# The keys the application writes into `before` / `after` most often.
FIELD_ZH: dict[str, str] = {
    "accepted": "已采纳",
    "action": "待遇处理",
    "actions": "待遇处理",
    "active": "有效",
    "amount": "金额（元）",
    "amount_obtained": "冒领金额（元）",
    "applied": "已应用",
    "as_of": "基准日",
    "auto_closed_tasks": "自动关闭的任务",
    "batch": "批次",
    "batches": "批次",
    "cancelled": "已撤销",
    "changed": "变化",
    "code": "代码",
    "count": "数量",
    "created": "新建",
    "candidates": "候选",
    "sms": "短信",
    "reminders": "提醒",
    "overdue": "逾期",
    "suspensions": "暂停发放",
    "unit_sms": "单位短信",
    "unit_no_mobile": "无手机号的单位",
    "problems": "问题",
    "created_unit": "新建单位核实任务",
    "created_review": "新建疑点核查任务",
    "auto_closed": "自动关闭",
    "deadline": "截止日期",
    "detail": "技术详情",
    "duplicate_of": "重复于",
    "error": "错误",
    "expires_at": "过期时间",
    "failures": "失败",
    "field": "字段",
    "file": "文件",
    "file_name": "文件名",
    "file_sha256": "文件 SHA-256",
    "files": "文件",
    "filters": "筛选条件",
    "fine": "罚款（元）",
    "fine_collected": "已收缴罚款（元）",
    "format": "格式",
    "fraud_case": "冒领案件",
    "from": "原值",
    "id_numbers": "身份证号",
    "import": "导入",
    "kind": "类型",
    "kinds": "类型",
    "message": "说明",
    "month": "月份",
    "months": "月数",
    "name": "姓名",
    "note": "备注",
    "ok": "成功",
    "outcome": "结果",
    "payment_ref": "待遇处理",
    "people": "人数",
    "person_name": "姓名",
    "person_no": "个人编号",
    "reason": "原因",
    "reasons": "原因",
    "recipient": "人员（内部编号）",
    "recipients": "人数",
    "record": "记录",
    "referred_on": "移送日期",
    "rejected": "已驳回",
    "removed": "已移除",
    "row": "行号",
    "rows": "行数",
    "sha256": "SHA-256",
    "since": "起始",
    "size": "大小（字节）",
    "skipped": "跳过",
    "source": "来源",
    "source_ref": "来源",
    "state": "状态",
    "status": "状态",
    "task": "核实任务",
    "to": "新值",
    "total_amount": "合计金额（元）",
    "unit": "单位",
    "unit_no": "单位编号",
    "user": "用户",
    "username": "用户名",
    "visit": "走访",
    "visited_on": "走访日期",
    "why": "原因",
}


def _status_labels(target_type: str) -> dict[str, str]:
    """The Chinese names of the `state` / `status` values of a target of this type."""
    from zige.benefits.models import ActionState, BatchState, FraudStatus, RecoveryStatus
    from zige.verification.models import TaskStatus

    choices: dict[str, Any] = {
        "payment_action": ActionState, "export_batch": BatchState, "fraud_case": FraudStatus,
        "recovery_case": RecoveryStatus, "verification_task": TaskStatus,
    }  # fmt: skip
    found = choices.get(target_type)
    return dict(found.choices) if found is not None else {}


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def fields(value: Any, target_type: str = "") -> list[tuple[str, str]]:
    """A stored before/after as (Chinese name, value) pairs; a key without a name stays as it is.
    A value that is not an object (rare) is one pair with an empty name."""
    if value is None or value == {}:
        return []
    if not isinstance(value, dict):
        return [("", _shown(value))]
    states = _status_labels(target_type)
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        shown = (
            states.get(item, _shown(item))
            if key in ("state", "status") and isinstance(item, str)
            else _shown(item)
        )
        pairs.append((FIELD_ZH.get(str(key), str(key)), shown))
    return pairs
