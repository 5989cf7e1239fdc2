"""An audit record as an auditor reads it: the object and the before/after values under Chinese
names. The stored JSON stays as it is (the hash chain covers it); the page shows it too, folded."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from zige.rules import to_fen

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
    "message": "提醒短信",
    "run_tasks": "认证批次的核实任务",
    "suggested_match": "号码纠错建议",
    "unit": "单位",
    "unit_deadline_messages": "单位核实截止提醒",
    "verification": "核实工作（按日）",
    "verification_attachment": "核实附件",
    "verification_task": "核实任务",
}

# Keys whose name depends on the object: a run's reminders count `unit` notices (the channel),
# not a unit.
TARGET_FIELD_ZH: dict[str, dict[str, str]] = {
    "run_messages": {"unit": "单位通知", "candidates": "应提醒", "app_failed": "其中APP认证未通过通知"},
    "run": {"recipients": "认证人数", "changed": "结论变化"},
    "blacklist": {"since": "列入日期", "reason": "驳回理由", "note": "移出说明"},
    "message": {"from": "原手机号码", "to": "新手机号码"},
}

# Keys whose value is counts by code (`{"eligible": 237, "stop": 11}`) and then read as such: a
# finished run's `status` is its count per conclusion, not its state.
COUNTS_FIELD_ZH: dict[str, str] = {"status": "认证结论", "copy_status": "副本中各结论人数"}

# Code values whose name depends on the object: a refused login's reason and door
# (`zige.accounts.services.login_attempt`).
TARGET_VALUE_ZH: dict[str, dict[str, dict[str, str]]] = {
    "accounts.User": {
        "reason": {"bad_credentials": "密码错误", "unknown_user": "用户名不存在", "locked": "账户已锁定",
                   "inactive": "账户已停用"},
        "via": {"web": "登录页", "api": "API 令牌", "admin": "管理后台", "password_change": "修改密码（当前密码）"},
    },
}  # fmt: skip

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
    "cancelled_recertified": "其中因已重新认证撤销",
    "changed": "变化",
    "code": "代码",
    "count": "数量",
    "created": "新建",
    "candidates": "候选",
    "restored": "已恢复",
    "restored_new_mobile": "其中恢复时改用新手机号码",
    "app_failed": "APP认证未通过通知",
    "messages": "提醒",
    "movers": "转出人员",
    "notice": "单位通知",
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
    "auto_closed_by_run": "自动关闭的任务所属批次",
    "auto_closed_sha256": "自动关闭的任务编号 SHA-256",
    "copy": "Parquet 副本",
    "copy_rows": "副本行数",
    "copy_sha256": "副本 SHA-256",
    "copy_status": "副本中各结论人数",
    "decisions_in_database": "数据库中的逐人结果",
    "keep": "保留最近批次数",
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
    "source_ref": "来源记录",
    "state": "状态",
    "status": "状态",
    "task": "核实任务",
    "tasks": "核实任务数",
    "to": "新值",
    "total_amount": "合计金额（元）",
    "unit": "单位",
    "unit_no": "单位编号",
    "user": "用户",
    "username": "用户名",
    "via": "途径",
    "visit": "走访",
    "visited_on": "走访日期",
    "why": "原因",
    "written_off": "原已核销金额（元）",
    "effective_month": "起始月份",
    # an export of the task list (导出核实任务清单): its filters
    "due": "截止日期筛选",
    "searched": "按人员查询",
    # a blacklist entry (黑名单) and its removal (移出)
    "subject_type": "对象",
    "until": "列入期限",
    "removal_reason": "移出原因",
    "removed_on": "移出日期",
    "withdrawal_reason": "撤回原因",
    "previous_until": "原列入期限",
    "basis": "变更依据",
    "in_force": "进行中的待遇处理",
    "in_force_effective_month": "进行中的待遇处理起始月份",
    "in_force_state": "进行中的待遇处理状态",
    "decision": "认证结论",
    "revisions": "调整",
    "withdrawals": "撤回",
    "withdrawn": "撤回的待审批处理",
    "held": "暂缓提出（超出上限，待人工复核）",
    "held_figures": "本批次计算（超出上限）",
    "proposed_by": "提出人",
    "superseded_by": "取代它的停发",
    "failure_code": "失败代码",
    "started_at": "开始时间",
    "inputs_fingerprint": "输入指纹",
    "run": "认证批次",
    "before": "调整前",
    "after": "调整后",
    "later_run": "更晚的认证批次",
    "later_as_of": "更晚批次的基准日",
    "skipped_because": "跳过原因",
    # an import's counts, as its page names them
    "rows_read": "读取行数",
    "rows_used": "使用行数",
    "rows_rejected": "拒绝行数",
    "duplicate_rows": "重复行数",
    "blank_rows": "空行",
    "unmatched": "未匹配名册",
    "updated": "信息变更",
    # a user account
    "role": "角色",
    "is_active": "启用",
    "locked_until": "锁定至",
}

# Why a run skipped a side effect (`skipped_because`): a back-dated run (docs/rules.md §8.4).
SKIPPED_BECAUSE_ZH: dict[str, str] = {"backdated": "比对基准日早于已完成的认证批次"}


# A failure code (`zige.feeds.failures`: an import's `code`, a run's `failure_code`) -> a short
# Chinese name; the full message is in the record's `message`.
FAILURE_SHORT_ZH: dict[str, str] = {
    "no_such_file": "文件已不在服务器上",
    "unsupported_type": "文件类型不受支持",
    "binary": "含二进制内容，不是文本 CSV",
    "bad_bom": "文件编码标记与内容不符",
    "undecodable": "文字编码无法识别",
    "no_header": "找不到表头",
    "missing_columns": "表头缺少必填列",
    "bad_csv": "无法按 CSV 格式读取",
    "bad_excel": "不是可以读取的 Excel 工作簿",
    "excel_too_large": "工作表范围过大（有远处的零散单元格）",
    "bad_parquet": "不是可以读取的 Parquet 文件",
    "column_not_text": "列无法转换为文本",
    "unknown_kind": "未知的数据类型",
    "kind_from_name": "无法从文件名识别数据类型",
    "too_large": "文件过大",
    "duplicate": "重复文件",
    "interrupted": "处理被中断",
    "database_busy": "数据库正忙",
    "store_busy": "证据库被占用",
    "store_layout": "证据库须升级",
    "disk_full": "磁盘空间不足",
    "out_of_memory": "内存不足",
    "legacy": "早期失败记录",
    "unknown": "内部错误",
}

# Keys whose value is the id of another object: shown as `#id` (the first names a record).
ID_KEYS = ("action", "task", "batch", "run", "in_force", "duplicate_of", "superseded_by",
           "later_run", "auto_closed_by_run", "fraud_case", "withdrawn")  # fmt: skip
# Of those, the keys that name another object than the record's own (a run's held figures: the
# proposal it withdrew, the action it left on its way): shown as `#id`, never the record's head.
NOT_HEAD_KEYS = frozenset({"in_force", "withdrawn"})
# Keys not shown in a record of a list (internal ids; the raw record keeps them).
HIDDEN_IN_RECORDS = frozenset({"recipient"})
# The figures of a payment action, shown together as one phrase.
FIGURES = ("effective_month", "months", "amount")
LIST_LIMIT = 10  # ids shown of a long list
RECORD_LIMIT = 20  # records shown of a long list
TEXT_LIMIT = 300


def _status_labels(target_type: str) -> dict[str, str]:
    """The Chinese names of the `state` / `status` values of a target of this type."""
    from zige.benefits.models import ActionState, BatchState, BlacklistStatus, FraudStatus, RecoveryStatus
    from zige.certification.models import RunStatus
    from zige.feeds.models import ImportStatus, SuggestionStatus
    from zige.notifications.models import InboxStatus, JobStatus, MessageStatus
    from zige.verification.models import TaskStatus

    choices: dict[str, Any] = {
        "payment_action": ActionState, "export_batch": BatchState, "fraud_case": FraudStatus,
        "recovery_case": RecoveryStatus, "benefits.RecoveryCase": RecoveryStatus,
        "verification_task": TaskStatus, "import": ImportStatus, "run": RunStatus,
        "inbox_file": InboxStatus, "job": JobStatus, "suggested_match": SuggestionStatus,
        "run_messages": MessageStatus, "unit_deadline_messages": MessageStatus,
        "run_tasks": TaskStatus, "blacklist": BlacklistStatus,
    }  # fmt: skip
    found = choices.get(target_type)
    return dict(found.choices) if found is not None else {}


@cache
def _roles() -> dict[str, str]:
    from zige.accounts.models import Role

    return dict(Role.choices)


def role_label(code: str) -> str:
    """A user role's Chinese name (`accounts.Role`), or the code itself if unknown: read once,
    not per row of an export."""
    return _roles().get(code, code)


def _value_labels() -> dict[str, dict[str, str]]:
    """Key -> the Chinese names of its code values, whatever the target."""
    from zige.benefits.models import ActionKind, ActionSource, ActionState, RemovalReason, SubjectType
    from zige.certification.models import Status
    from zige.engine.labels import ACTION_ZH, KIND_ZH
    from zige.reports.selectors import STATUS_ORDER
    from zige.verification.models import TaskKind

    kinds = {**KIND_ZH, **dict(TaskKind.choices), **dict(ActionKind.choices)}
    conclusions = {code: Status(code).label for code in STATUS_ORDER}  # in the run page's order
    return {
        "kind": kinds, "kinds": kinds, "code": FAILURE_SHORT_ZH, "failure_code": FAILURE_SHORT_ZH,
        "source": dict(ActionSource.choices), "in_force_state": dict(ActionState.choices),
        "decision": {**ACTION_ZH, "": "无需处理"}, "skipped_because": SKIPPED_BECAUSE_ZH,
        # counts per conclusion (a run's `status`, its copy's `copy_status`): as the run page names them
        "status": conclusions, "copy_status": conclusions,
        "role": _roles(),
        "subject_type": dict(SubjectType.choices), "removal_reason": dict(RemovalReason.choices),
    }  # fmt: skip


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict | list):
        return _cut(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return _cut(str(value))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_counts(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(_is_count(x) for x in value.values())


def _money(value: Any) -> str:
    try:
        return f"{to_fen(Decimal(str(value))):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def _figures(data: dict[str, Any]) -> str:
    """A payment action's month, months and amount as one phrase: `2026-03 起 3 个月 10,210.02 元`."""
    parts = []
    if data.get("effective_month"):
        parts.append(f"{data['effective_month']} 起")
    if data.get("months") is not None:
        parts.append(f"{data['months']} 个月")
    if data.get("amount") is not None:
        parts.append(f"{_money(data['amount'])} 元")
    return " ".join(parts) or "—"


class _Shower:
    def __init__(self, target_type: str) -> None:
        self.states = _status_labels(target_type)
        self.labels = {**_value_labels(), **TARGET_VALUE_ZH.get(target_type, {})}

    def code(self, key: str, value: Any) -> str | None:
        """A code value's Chinese name, or None if the key has none for it."""
        if key in ("state", "status") and isinstance(value, str):
            return self.states.get(value)
        if isinstance(value, str) and key in self.labels:
            return self.labels[key].get(value)
        return None

    def value(self, key: str, item: Any) -> str:
        named = self.code(key, item)
        if named is not None:
            return named
        if key in ID_KEYS and _is_count(item):
            return f"#{item}"
        if isinstance(item, list) and item and all(_is_count(x) for x in item):
            return self.ids(item)
        if isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            return self.records(item)
        if _is_counts(item):
            return self.counts(key, item)
        if isinstance(item, dict) and any(k in item for k in FIGURES):  # an action's figures
            return self.nested(item)
        return _shown(item)

    @staticmethod
    def ids(items: list[int]) -> str:
        shown = "、".join(f"#{x}" for x in items[:LIST_LIMIT])
        return shown if len(items) <= LIST_LIMIT else f"{shown} 等，共 {len(items)} 项"

    def counts(self, key: str, counts: dict[str, int]) -> str:
        """Counts by kind (or by any code): `停发 1，暂停发放 2`; by status, the target's own states
        first, then the conclusions of a run. Known codes in the order of their names (PostgreSQL's
        jsonb does not keep the stored order), then the others as stored."""
        names = {**self.labels.get(key, {}), **(self.states if key in ("state", "status") else {})}
        order = {code: i for i, code in enumerate(names)}
        ordered = sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))
        return "，".join(f"{names.get(k, FIELD_ZH.get(k, k))} {n}" for k, n in ordered)

    def records(self, items: list[dict[str, Any]]) -> str:
        lines = [self.record(x) for x in items[:RECORD_LIMIT]]
        if len(items) > RECORD_LIMIT:
            lines.append(f"……共 {len(items)} 项")
        return "\n".join(lines)

    def record(self, data: dict[str, Any]) -> str:
        """One record of a list as a readable line: `待遇处理 #12：停发，3 个月 10,210.02 元 → …`."""
        head = ""
        parts: list[str] = []
        rest = {k: v for k, v in data.items() if k not in HIDDEN_IN_RECORDS}
        for key in ID_KEYS:
            if key in rest and _is_count(rest[key]) and not head and key not in NOT_HEAD_KEYS:
                head = f"{FIELD_ZH.get(key, key)} #{rest.pop(key)}"
        if "kind" in rest:
            parts.append(self.value("kind", rest.pop("kind")))
        if isinstance(rest.get("before"), dict) and isinstance(rest.get("after"), dict):
            parts.append(f"{self.nested(rest.pop('before'))} → {self.nested(rest.pop('after'))}")
        if any(k in rest for k in FIGURES):
            parts.append(_figures(rest))
            rest = {k: v for k, v in rest.items() if k not in FIGURES}
        parts += [f"{FIELD_ZH.get(k, k)} {self.value(k, v)}" for k, v in rest.items()]
        body = "，".join(parts)
        return f"{head}：{body}" if head and body else head or body

    def nested(self, data: dict[str, Any]) -> str:
        if any(k in data for k in FIGURES):
            others = {k: v for k, v in data.items() if k not in FIGURES}
            return "，".join(
                [_figures(data), *(f"{FIELD_ZH.get(k, k)} {self.value(k, v)}" for k, v in others.items())]
            )
        return "，".join(f"{FIELD_ZH.get(k, k)} {self.value(k, v)}" for k, v in data.items())


def fields(value: Any, target_type: str = "") -> list[tuple[str, str]]:
    """A stored before/after as (Chinese name, value) pairs; a key without a name stays as it is.
    Code values (states, kinds, failure codes) read under their Chinese names; a list of ids as
    `#1、#2`, counts by kind as `停发 1`, a list of records one readable line each. A value that
    is not an object (rare) is one pair with an empty name."""
    if value is None or value == {}:
        return []
    if not isinstance(value, dict):
        return [("", _shown(value))]
    shower = _Shower(target_type)
    names = {**FIELD_ZH, **TARGET_FIELD_ZH.get(target_type, {})}
    return [(_name(names, str(key), item), shower.value(str(key), item)) for key, item in value.items()]


def _name(names: dict[str, str], key: str, item: Any) -> str:
    if key in COUNTS_FIELD_ZH and _is_counts(item):
        return COUNTS_FIELD_ZH[key]
    return names.get(key, key)
