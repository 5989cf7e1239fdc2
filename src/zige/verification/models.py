"""Verification tasks (核实任务): the unit's and the bureau's follow-up of people no data confirmed.

Notice 晋社保局发〔2018〕40号 二(三), 三(一): every 待核实 (`pending`) recipient goes to their unit
(参保单位), which verifies the person within three months and reports with evidence (附件1);
every 疑点核查 (`review`) recipient goes to the bureau's review queue.

- `VerificationTask`: one per person and period (`period`: the certification cycle, see
  `services.period_of`), never twice (unique constraint), at most one active task per person
  and kind (partial unique constraint). Its status follows `TRANSITIONS`.
- `TaskEvent`: every transition of a task (from, to, who, when, why): the task's history.
- `Submission`: what the unit reported (附件1's fields) — each (re)submission is a new row;
  the bureau approves or returns it (maker-checker: the reviewer is never the submitter,
  enforced here by a check constraint and in the service).
- `Attachment`: an evidence file (photo, video, scanned written confirmation) checked by
  content and stored under `ZIGE_DATA_DIR/attachments/` by its SHA-256.
- `TaskReminder`: a deadline reminder to the unit, once per task and threshold (30 / 7 days).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class TaskKind(models.TextChoices):
    UNIT = "unit", "单位核实"  # a pending recipient: the unit verifies (notice 三(一))
    REVIEW = "review", "疑点核查"  # a review recipient: the bureau looks at it (notice 四(二))


class TaskStatus(models.TextChoices):
    OPEN = "open", "待核实"
    SUBMITTED = "submitted", "已上报待审核"
    RETURNED = "returned", "已退回"
    OVERDUE = "overdue", "已逾期"
    APPROVED = "approved", "已审核通过"
    RESOLVED = "resolved", "已处理"
    AUTO_CLOSED = "auto_closed", "已自动关闭"


# Allowed (from, to) changes of a task's status. Anything else is refused (`TransitionRefused`).
TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("open", "submitted"),  # the unit reports (附件1 online or in a workbook)
        ("overdue", "submitted"),  # … late
        ("returned", "submitted"),  # … again after the bureau returned it
        ("submitted", "approved"),  # the bureau accepts the report (another person than the unit's)
        ("submitted", "returned"),  # the bureau returns it with a reason
        ("open", "overdue"),  # the deadline passed: escalated to the bureau
        ("overdue", "open"),  # the person moved to another unit: its own time (services.tasks_reassign)
        ("returned", "overdue"),
        ("open", "auto_closed"),  # a later run certified the person before the unit acted
        ("overdue", "auto_closed"),
        ("returned", "auto_closed"),
        ("open", "resolved"),  # review queue: the bureau's finding (alive / dead / fraud)
        ("overdue", "resolved"),
    }
)
# The unit still has to report (open, late, or sent back to it); with "submitted", ACTIVE.
AWAITING_UNIT: frozenset[str] = frozenset({"open", "returned", "overdue"})
ACTIVE: frozenset[str] = frozenset({"open", "submitted", "returned", "overdue"})
FINAL: frozenset[str] = frozenset({"approved", "resolved", "auto_closed"})


class Method(models.TextChoices):
    """确认方式 (附件1)."""

    VISIT = "visit", "上门走访"
    VIDEO = "video", "视频"
    PHONE = "phone", "电话"
    CAME_IN = "came_in", "来访"
    OTHER = "other", "其他"


class Result(models.TextChoices):
    """确认结果, as the `unit_confirm` feed spells it (docs/rules.md §3)."""

    ELIGIBLE = "eligible", "具备资格"
    LOST = "lost", "丧失资格"
    UNREACHABLE = "unreachable", "无法联系"


class Finding(models.TextChoices):
    """The bureau's resolution of a review-queue task."""

    ALIVE = "alive", "确认健在"
    DEAD = "dead", "确认死亡"
    FRAUD = "fraud", "疑似冒领"


class VerificationTask(models.Model):
    recipient = models.ForeignKey(
        "roster.Recipient", on_delete=models.PROTECT, related_name="verification_tasks"
    )
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="verification_tasks")
    kind = models.CharField(max_length=8, choices=TaskKind.choices)
    # The certification cycle the task is about: `due:<due_on>` (or `due:none`) for a pending
    # person, `<reason>:<evidence_date>` for a review. Same person + kind + period = same task.
    period = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    # The run that found the person; none for a review opened by a home visit that found the
    # person dead (`services.review_from_visit`: the visit is `ledger.HomeVisit.review_task`).
    run = models.ForeignKey(
        "certification.Run",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="verification_tasks",
    )
    as_of = models.DateField()  # the run's as-of date (or the day of the visit's report)
    reason = models.CharField(max_length=32)  # the decision's reason (no_evidence, alive_after_death, …)
    evidence_kind = models.CharField(max_length=32, blank=True)
    evidence_date = models.DateField(null=True, blank=True)
    deadline = models.DateField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=300, blank=True)
    closed_by_run = models.ForeignKey(
        "certification.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The roster import that closed the task by itself: it terminated the person (待遇状态 终止),
    # who is in no later run (`services.tasks_close_for_terminated`).
    closed_by_import = models.ForeignKey(
        "feeds.ImportBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)  # overdue: shown in the bureau's queue
    finding = models.CharField(max_length=8, choices=Finding.choices, blank=True)  # review tasks
    finding_note = models.TextField(blank=True)
    # A dead / fraud finding's date of death: it ends an earlier 确认健在's clearance from that day
    # (`selectors.alive_findings`, docs/rules.md §8.5).
    death_date = models.DateField(null=True, blank=True)
    payment_ref = models.CharField(max_length=64, blank=True)  # the proposed payment action(s)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "period"], name="one_task_per_person_period"
            ),
            models.UniqueConstraint(
                fields=["recipient", "kind"],
                condition=Q(status__in=sorted(ACTIVE)),
                name="one_active_task_per_person_kind",
            ),
            models.CheckConstraint(condition=Q(kind__in=["unit", "review"]), name="task_kind_known"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in TaskStatus]), name="task_status_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=sorted(ACTIVE)) | Q(closed_at__isnull=False),
                name="task_final_is_closed",
            ),
            # What closed a task by itself is named on it — the run (its audit row `tasks.for_run`
            # refers to its auto-closed tasks by this column) or the roster import that terminated
            # the person, exactly one — and nothing is named on any other task.
            models.CheckConstraint(
                condition=(
                    Q(status="auto_closed")
                    & (
                        Q(closed_by_run__isnull=False, closed_by_import__isnull=True)
                        | Q(closed_by_run__isnull=True, closed_by_import__isnull=False)
                    )
                )
                | (~Q(status="auto_closed") & Q(closed_by_run__isnull=True, closed_by_import__isnull=True)),
                name="task_auto_closed_names_what_closed_it",
            ),
        ]
        indexes = [
            models.Index(fields=["unit", "status", "deadline"]),
            models.Index(fields=["kind", "status", "deadline"]),
            models.Index(fields=["status", "deadline"]),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} {self.kind} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


class TaskEvent(models.Model):
    """One transition of a task (the task's history); the audit log has the same facts."""

    task = models.ForeignKey(VerificationTask, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)  # "" = created
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["task", "at"])]


class Submission(models.Model):
    """The unit's report on one person (附件1's fields); a resubmission is a new row."""

    task = models.ForeignKey(VerificationTask, on_delete=models.PROTECT, related_name="submissions")
    number = models.PositiveSmallIntegerField()  # 1, 2, … per task
    method = models.CharField(max_length=8, choices=Method.choices)
    method_note = models.CharField(max_length=100, blank=True)  # 其他: how
    address = models.CharField(max_length=300, blank=True)  # 现居住地
    health = models.CharField(max_length=100, blank=True)  # 健康状况
    result = models.CharField(max_length=12, choices=Result.choices)
    confirmed_on = models.DateField()  # 确认日期
    lost_reason = models.CharField(max_length=200, blank=True)  # 丧失原因
    lost_on = models.DateField(null=True, blank=True)  # 丧失时间
    note = models.TextField(blank=True)
    source = models.CharField(max_length=16, default="online")  # online / workbook
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    approved = models.BooleanField(null=True)  # None: not reviewed yet
    review_note = models.TextField(blank=True)
    evidence_batch = models.ForeignKey(
        "feeds.ImportBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment_ref = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="one_submission_number_per_task"),
            models.CheckConstraint(
                condition=~Q(reviewed_by=F("submitted_by")), name="submission_maker_not_checker"
            ),
            models.CheckConstraint(
                condition=~Q(result="lost") | (~Q(lost_reason="") & Q(lost_on__isnull=False)),
                name="submission_lost_has_reason_and_date",
            ),
            models.CheckConstraint(
                condition=Q(result__in=[r.value for r in Result]), name="submission_result_known"
            ),
            models.CheckConstraint(
                condition=Q(method__in=[m.value for m in Method]), name="submission_method_known"
            ),
        ]


class AttachmentRole(models.TextChoices):
    ON_SITE = "on_site", "现场确认图片或视频"
    WRITTEN = "written", "书面确认材料"
    OTHER = "other", "其他佐证材料"


class Attachment(models.Model):
    """An evidence file, stored by content hash (see `uploads.py`): of a unit's submission, or of
    the bureau's finding on a review task (`task`, `services.review_resolve`) — exactly one."""

    submission = models.ForeignKey(
        Submission, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    task = models.ForeignKey(
        VerificationTask, null=True, blank=True, on_delete=models.PROTECT, related_name="finding_attachments"
    )
    role = models.CharField(max_length=8, choices=AttachmentRole.choices)
    file_kind = models.CharField(max_length=8)  # jpeg, png, webp, mp4, mov, pdf (from the content)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    stored_path = models.CharField(max_length=200)  # relative to ZIGE_DATA_DIR/attachments
    scan = models.CharField(max_length=16)  # clean / not_scanned
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in AttachmentRole]), name="attachment_role_known"
            ),
            models.CheckConstraint(condition=Q(size__gte=0), name="attachment_size_not_negative"),
            models.CheckConstraint(
                condition=Q(submission__isnull=False, task__isnull=True)
                | Q(submission__isnull=True, task__isnull=False),
                name="attachment_one_owner",
            ),
        ]

    @property
    def owner_task_id(self) -> int:
        """The task the file belongs to (through its submission, or directly for a finding)."""
        return self.task_id if self.task_id is not None else self.submission.task_id  # type: ignore[union-attr]


class TaskReminder(models.Model):
    """A deadline reminder to the unit: once per task and threshold (days before the deadline)."""

    task = models.ForeignKey(VerificationTask, on_delete=models.CASCADE, related_name="reminders")
    days_before = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()
    text = models.CharField(max_length=300)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "days_before"], name="one_reminder_per_task_threshold")
        ]
