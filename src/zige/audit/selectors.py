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
    "run.decisions_pruned": "清理历史认证结论",
    "run.decisions_exported": "导出认证结论",
    "store.compacted": "证据库整理",
    "store.upgraded": "证据库升级",
    "suggestions.found": "查找号码纠错建议",
    "suggestion.accepted": "采纳号码纠错建议",
    "suggestion.rejected": "驳回号码纠错建议",
    "inbox.imported": "收件箱文件已导入",
    "inbox.duplicate": "收件箱重复文件",
    "inbox.quarantined": "收件箱文件已隔离",
    "job.daily_run": "定时任务：每日认证运行",
    "job.summary": "定时任务：晨报",
    "job.tasks_sweep": "定时任务：核实任务逾期检查",
    "job.store_compact": "定时任务：证据库整理",
    "job.scheduler": "定时任务：调度程序",
    "messages.created": "生成提醒",  # a run's (短信、单位通知) and the sweep's unit SMS: the object says which
    "messages.skipped": "跳过生成提醒",
    "messages.cancelled": "撤销提醒",
    "messages.reassigned": "提醒转交新单位",
    "messages.to_unit_list": "短信无法送达，改由单位通知",
    "messages.mobile_changed": "手机号码已变更，短信改发新号码",
    "messages.mobile_removed": "本人已无手机号码，短信改由单位通知",
    "messages.receipts": "接收短信回执",
    "ledger.mark_add": "列入服务台账",
    "ledger.mark_remove": "移出服务台账",
    "ledger.visit_record": "登记走访",
    "ledger.visit_photo_viewed": "查看走访照片",
    "attachment.viewed": "查看核实附件",
    "task.open": "核实任务重新待核实",
    "task.submitted": "单位上报核实结果",
    "task.returned": "退回单位上报",
    "task.overdue": "核实任务逾期",
    "task.approved": "审核通过单位上报",
    "task.resolved": "疑点核查结论",
    "task.auto_closed": "核实任务自动关闭",
    "task.reassigned": "核实任务转移单位",
    "tasks.for_run": "按认证批次生成核实任务",
    "tasks.swept": "核实任务逾期检查",
    "tasks.form1_downloaded": "下载附件1",
    "tasks.list_exported": "导出核实任务清单",
    "tasks.workbook_applied": "上传附件1工作簿",
    "payment_action.proposed": "提出待遇处理",
    "payment_action.proposed_by_run": "认证批次提出待遇处理",
    "payment_action.revised_by_run": "认证批次更新待审批的待遇处理",
    "payment_action.withdrawn_by_run": "认证批次撤回不再需要的待遇处理",
    "payment_action.run_backdated": "认证批次的基准日早于已完成的批次，未提出待遇处理",
    "payment_action.held_by_run": "认证批次暂缓提出超出上限的待遇处理（待人工复核）",
    "payment_action.withdrawn_held_by_run": "认证批次数字超出上限，撤回此前批次待审批的待遇处理（待人工复核）",
    "payment_action.revised_by_finding": "核实结论更新待审批的停发",
    "payment_action.superseded_by_finding": "核实结论确认丧失资格，停发取代待审批的暂停发放或恢复发放",
    "payment_action.withdrawn_by_finding": "核查确认健在，撤回待审批的停发",
    "payment_action.withdrawn_by_report": "单位逾期上报确认具备资格，撤回逾期时提出的暂停发放",
    "payment_action.withdrawn_by_certification": "认证批次确认具备资格，撤回核实逾期时提出的暂停发放",
    "payment_action.reversal_proposed": "提出撤销（冲正）",
    "payment_action.proposal_declined": "同一人已有进行中的同类待遇处理，未另行提出",
    "payment_action.approved": "审批通过待遇处理",
    "payment_action.rejected": "驳回待遇处理",
    "payment_action.withdrawn": "撤回待遇处理",
    "export_batch.created": "生成支付导出批次",
    "export_batch.downloaded": "下载支付导出批次",
    "export_batch.reexported": "重新导出支付批次",
    "export_batch.confirmed": "确认支付批次",
    "export_batch.voided": "作废支付批次",
    "export_file.swept": "清理无批次记录的支付导出文件",
    "recovery_case.opened": "追回案件立案",
    "recovery_case.notified": "发出追回通知",
    "recovery_case.payment_recorded": "登记退还款",
    "recovery_case.write_off_proposed": "提出核销",
    "recovery_case.written_off": "核销追回案件",
    "recovery_case.write_off_refused": "驳回核销",
    "recovery_case.cancelled": "撤销追回案件",
    "recovery_case.refund_due": "停发已撤销，已追回款项待返还",
    "recovery_case.refund_recorded": "登记返还（待复核）",
    "recovery_case.refunded": "复核通过返还",
    "recovery_case.refund_rejected": "驳回返还登记",
    "fraud_case.opened": "冒领案件立案",
    "fraud_case.amount_revised_by_finding": "核查结论更正冒领金额",
    "fraud_case.recovery_linked": "冒领案件关联追回案件",
    "fraud_case.fined": "处以罚款",
    "fraud_case.fine_collected": "收缴罚款",
    "fraud_case.referred": "移送司法机关",
    "fraud_case.dismissed": "冒领案件撤销",
    "fraud_case.closed": "冒领案件结案",
    "blacklist.removal_proposed": "提出移出黑名单（待审批）",
    "blacklist.removed": "审批通过移出黑名单",
    "blacklist.removal_rejected": "驳回移出黑名单",
    "blacklist.removal_withdrawn": "撤回移出黑名单的提议",
    "blacklist.period_changed": "变更列入期限",
    "blacklist.added": "列入黑名单",
}


def action_label(code: str) -> str:
    """An action code's Chinese label ("" for a code the application does not record)."""
    return KNOWN_ACTIONS.get(code, "")


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


def record_of(*, action: str, target_type: str, target_id: int | str, newest: bool = False) -> dict[str, Any]:
    """What the first (or, `newest`, the latest) audit record of `action` on the target keeps
    (its `after`), or an empty dict: the pages read a decision's reasons from the record that
    wrote them, rather than keeping them twice."""
    event = (
        AuditEvent.objects.filter(action=action, target_type=target_type, target_id=str(target_id))
        .order_by("-seq" if newest else "seq")
        .first()
    )
    return (event.after if event is not None else None) or {}
