"""Reminders (the outbox), their delivery attempts and receipts, the inbox and the job log.

`Message` is the outbox: one row per reminder or app-failure notice, written in the same
transaction as the run whose decision caused it. The unique constraint
`one_message_per_person_deadline_channel_kind` makes a second reminder for the same person,
deadline, channel and kind impossible, whatever is re-run. Messages on the `unit` channel are
the unit's notice list (没有手机号码的退休人员由参保单位通知, and people our SMS could not reach):
they are never sent, they are listed; `notice_reason` says which.

A `unit_deadline` message is an SMS to a unit (核实任务到期提醒), written by the verification
sweep in the transaction of its reminders: no recipient and no run, but the threshold
(`days_before`), the sweep's day (`sweep_day`) and how many tasks it is about (`task_count`);
one per unit, threshold and day (`one_unit_sms_per_threshold_day`). The same sender delivers it.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from zige.notifications.content import REASON_NO_MOBILE, REASON_SMS_UNDELIVERABLE


class Kind(models.TextChoices):
    REMINDER = "reminder", "到期认证提醒"
    APP_FAILED = "app_failed", "APP认证未通过"
    UNIT_DEADLINE = "unit_deadline", "核实任务到期提醒（单位）"


# Kinds addressed to a unit (no recipient, no run), written by the verification sweep.
UNIT_KINDS: tuple[str, ...] = (Kind.UNIT_DEADLINE.value,)


class Channel(models.TextChoices):
    SMS = "sms", "短信"
    UNIT = "unit", "单位通知"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "待发送"
    SENDING = "sending", "发送中"  # claimed by a sender (lease), the gateway call may be in flight
    RETRYING = "retrying", "等待重试"
    SENT = "sent", "已发送"
    DELIVERED = "delivered", "已送达"
    UNDELIVERED = "undelivered", "未送达"
    FAILED = "failed", "发送失败"
    LISTED = "listed", "已列入单位通知名单"
    # Not sent / taken off the unit's list: a later run found the person dead, stopped or
    # suspended before the message went out (notice 二(二): no reminder to certify then).
    CANCELLED = "cancelled", "已取消"


class Message(models.Model):
    # A person's message (reminder, app failure): recipient and run. A unit's (unit_deadline):
    # neither — `message_recipient_or_unit_kind` holds the two shapes apart.
    recipient = models.ForeignKey(
        "roster.Recipient", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="messages")
    run = models.ForeignKey(
        "certification.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # The deadline the message is about (reminder: the decision's due_on; app failure: the
    # decision's due_on, or the failure date when there is none). Part of the uniqueness key.
    due_on = models.DateField()
    event_on = models.DateField(null=True, blank=True)  # app failure: the date of the failed attempt
    mobile = models.CharField(max_length=16, blank=True)  # validated, national significant number
    text = models.TextField()
    params = models.JSONField(default=dict, blank=True)  # template parameters (HTTP gateways)
    segments = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=16, blank=True)
    provider_message_id = models.CharField(max_length=128, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # unit_deadline only: the reminder threshold (days before the deadline), the sweep's local
    # day and the number of tasks the SMS is about (due_on: the earliest of their deadlines).
    days_before = models.PositiveSmallIntegerField(null=True, blank=True)
    sweep_day = models.DateField(null=True, blank=True)
    task_count = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "due_on", "channel", "kind"],
                name="one_message_per_person_deadline_channel_kind",
            ),
            models.UniqueConstraint(
                fields=["unit", "days_before", "sweep_day"],
                condition=Q(kind__in=UNIT_KINDS),
                name="one_unit_sms_per_threshold_day",
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        kind__in=UNIT_KINDS,
                        recipient__isnull=True,
                        run__isnull=True,
                        channel="sms",
                        days_before__isnull=False,
                        sweep_day__isnull=False,
                        task_count__gt=0,
                    )
                    | (~Q(kind__in=UNIT_KINDS) & Q(recipient__isnull=False, run__isnull=False))
                ),
                name="message_recipient_or_unit_kind",
            ),
            models.CheckConstraint(condition=Q(kind__in=[k.value for k in Kind]), name="message_kind_known"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in MessageStatus]), name="message_status_known"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=[c.value for c in Channel]), name="message_channel_known"
            ),
            models.CheckConstraint(
                condition=Q(channel="unit") | ~Q(mobile=""), name="message_sms_has_mobile"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["unit", "channel", "status"]),
            models.Index(fields=["recipient", "created_at"]),
        ]

    @property
    def notice_reason(self) -> str:
        """Why a unit notice is on the unit's list, as the notice says it: the person has no
        mobile number, or our SMS could not reach it (`services._to_unit_list`). Written in
        `params` since the reason exists; a notice from before is a failed SMS's when it names
        that SMS (`SMS #<id> failed|undelivered: ...`), else a run's for a person without one."""
        reason = (self.params or {}).get("reason")
        if isinstance(reason, str) and reason:
            return reason
        return REASON_SMS_UNDELIVERABLE if self.last_error.startswith("SMS #") else REASON_NO_MOBILE

    @property
    def out_id(self) -> str:
        """Our id of the message at the gateway (Aliyun OutId, Tencent SessionContext)."""
        return f"zige-{self.pk}"


class AttemptOutcome(models.TextChoices):
    IN_FLIGHT = "in_flight", "发送中"
    SENT = "sent", "已受理"
    TEMPORARY = "temporary", "暂时失败"
    PERMANENT = "permanent", "永久失败"
    FOUND = "found", "核对网关：已发送"
    NOT_FOUND = "not_found", "核对网关：未发送"


class DeliveryAttempt(models.Model):
    """One call to the gateway for a message (written before the call, completed after)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.IN_FLIGHT
    )
    code = models.CharField(max_length=128, blank=True)
    detail = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=128, blank=True)

    class Meta:
        indexes = [models.Index(fields=["started_at"]), models.Index(fields=["message", "number"])]


class DeliveryReceipt(models.Model):
    """A delivery report from the gateway's callback; the same report twice is stored once."""

    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="receipts"
    )
    provider = models.CharField(max_length=16)
    provider_message_id = models.CharField(max_length=128)
    delivered = models.BooleanField()
    code = models.CharField(max_length=64, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    raw = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id", "delivered", "code"], name="one_receipt_per_report"
            )
        ]


class InboxStatus(models.TextChoices):
    IMPORTED = "imported", "已导入"
    DUPLICATE = "duplicate", "重复文件"
    QUARANTINED = "quarantined", "已隔离"


class InboxFile(models.Model):
    """A file picked up from `ZIGE_DATA_DIR/inbox/<agency>/`, once per (agency, name, content)."""

    agency = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=InboxStatus.choices)
    batch = models.ForeignKey(
        "feeds.ImportBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    error = models.TextField(blank=True)
    moved_to = models.CharField(max_length=500, blank=True)
    picked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "file_name", "sha256"], name="one_pickup_per_inbox_file"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in InboxStatus]), name="inbox_file_status_known"
            ),
        ]
        indexes = [models.Index(fields=["picked_at"])]


class JobStatus(models.TextChoices):
    RUNNING = "running", "运行中"
    SUCCEEDED = "succeeded", "已完成"
    FAILED = "failed", "失败"


class JobRun(models.Model):
    """The schedule's log: one row per job and key (e.g. the daily run of 2026-11-30), so a
    job due once a day runs once, whichever scheduler gets there first."""

    job = models.CharField(max_length=32)
    key = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "key"], name="one_job_run_per_key"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in JobStatus]), name="job_run_status_known"
            ),
        ]
        indexes = [models.Index(fields=["job", "started_at"])]
