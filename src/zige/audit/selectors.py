"""Reading the audit log: the filters shared by the browse page and the CSV export."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from django.db.models import QuerySet

from zige.audit.models import AuditEvent

# The actions the application records, for the filter's suggestions (any text may be typed).
KNOWN_ACTIONS: dict[str, str] = {
    "auth.login": "登录",
    "auth.login_failed": "登录失败",
    "auth.locked": "账户锁定",
    "auth.logout": "退出登录",
    "pii.reveal": "查看完整个人信息",
    "user.created": "新建用户",
    "user.updated": "修改用户",
    "user.password_set": "设置密码",
    "audit.export": "导出审计日志",
    "api.token_issued": "签发API令牌",
    "api.tokens_revoked": "吊销API令牌",
    "import.submitted": "提交导入",
    "import.started": "开始导入",
    "import.succeeded": "导入完成",
    "import.failed": "导入失败",
    "import.interrupted": "导入中断",
    "import.duplicate": "重复文件",
    "rejects_download": "下载错误行",
    "ledger.other_province_export": "导出附件2",
    "ledger.other_province_export_downloaded": "下载附件2",
    "run.submitted": "发起认证批次",
    "run.started": "认证批次开始运行",
    "run.succeeded": "认证批次完成",
    "run.failed": "认证批次失败",
    "run.interrupted": "认证批次中断",
    "push.received": "接收认证结果推送",
    "push.refused": "拒绝认证结果推送",
    "device_client.created": "新建设备客户端",
    "device_client.deactivated": "停用设备客户端",
}


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class AuditFilter:
    """What the auditor filtered on (all optional). `action` ending in `.` matches a prefix."""

    action: str = ""
    actor: str = ""
    target_type: str = ""
    target_id: str = ""
    date_from: str = ""
    date_to: str = ""

    @classmethod
    def from_data(cls, data: Any) -> AuditFilter:
        def get(name: str) -> str:
            return str(data.get(name, "") or "").strip()[:150]

        return cls(
            action=get("action"),
            actor=get("actor"),
            target_type=get("target_type"),
            target_id=get("target_id"),
            date_from=get("date_from") if _date(get("date_from")) else "",
            date_to=get("date_to") if _date(get("date_to")) else "",
        )

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    def apply(self, qs: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.action:
            if self.action.endswith("."):
                qs = qs.filter(action__startswith=self.action)
            else:
                qs = qs.filter(action=self.action)
        if self.actor:
            qs = qs.filter(actor=self.actor)
        if self.target_type:
            qs = qs.filter(target_type=self.target_type)
        if self.target_id:
            qs = qs.filter(target_id=self.target_id)
        if (start := _date(self.date_from)) is not None:
            qs = qs.filter(at__date__gte=start)  # dates in the site's time zone (Asia/Shanghai)
        if (end := _date(self.date_to)) is not None:
            qs = qs.filter(at__date__lte=end)
        return qs


def audit_events(flt: AuditFilter) -> QuerySet[AuditEvent]:
    """The events matching `flt`, newest first."""
    return flt.apply(AuditEvent.objects.all()).order_by("-seq")
