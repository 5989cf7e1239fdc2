"""Imports of the roster and of agency feeds, their rejects, and results pushed by devices."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "导入中"
    SUCCEEDED = "succeeded", "已完成"
    FAILED = "failed", "失败"
    DUPLICATE = "duplicate", "重复文件（未导入）"


# Allowed (from, to) changes of an import's status; each is a conditional UPDATE (`WHERE status =
# from`) audited in its transaction. A worker claims a queued import (`running`:
# `import.started`), so a second execution of the same import finds it taken and does nothing.
# An import left `running` by a worker that died is failed when `zige worker` starts
# (`imports_mark_interrupted`); the file is then uploaded again (a new import).
IMPORT_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("queued", "running"),  # a worker (or the CLI, the inbox) claims it: import.started
        ("queued", "duplicate"),  # the same content succeeded before it started: import.duplicate
        ("running", "succeeded"),  # import.succeeded
        ("running", "failed"),  # import.failed, or import.interrupted (its worker died)
        ("running", "duplicate"),  # the same content committed first while it ran
    }
)


class ImportBatch(models.Model):
    """One file imported (or refused). `kind` is `roster` or a feed kind (spec §3)."""

    kind = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    stored_path = models.CharField(max_length=500, blank=True)  # the uploaded file, under DATA_DIR
    evidence_path = models.CharField(max_length=500, blank=True)  # normalised rows (Parquet), feeds only
    format = models.CharField(max_length=16, blank=True)
    encoding = models.CharField(max_length=32, blank=True)
    header_row = models.PositiveIntegerField(null=True, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    rows_used = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    duplicate_rows = models.PositiveIntegerField(default=0)
    blank_rows = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)  # roster: recipients added
    updated = models.PositiveIntegerField(default=0)  # roster: recipients changed
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    # Why it failed or was a duplicate (`zige.feeds.failures`): a stable code, the officer's
    # message in Chinese, and the English detail for support staff (technical, never the message).
    message = models.TextField(blank=True)
    failure_code = models.CharField(max_length=32, blank=True)
    detail = models.TextField(blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The same content is imported once per kind; a second upload is recorded as a duplicate.
            models.UniqueConstraint(
                fields=["kind", "sha256"], condition=Q(status="succeeded"), name="import_content_once"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "failed", "duplicate"])
                | Q(rows_read=models.F("rows_used") + models.F("rows_rejected") + models.F("duplicate_rows")),
                name="import_counts_reconcile",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ImportStatus]), name="import_status_known"
            ),
        ]
        indexes = [models.Index(fields=["kind", "status"]), models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.file_name}"


class ImportReject(models.Model):
    """A row that could not be used: file, spreadsheet row, field, value, reason (spec §6)."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="rejects")
    row = models.PositiveIntegerField()
    field = models.CharField(max_length=64)
    value = models.TextField(blank=True)
    reason = models.CharField(max_length=32)

    class Meta:
        indexes = [models.Index(fields=["batch", "row"])]


class PushedResult(models.Model):
    """A certification result pushed by the phone app or a terminal; evidence for the next run."""

    client = models.ForeignKey("accounts.DeviceClient", on_delete=models.PROTECT, related_name="results")
    kind = models.CharField(max_length=32)  # app_auth or terminal_auth
    id_number = models.CharField(max_length=18, db_index=True)
    name = models.CharField(max_length=100)
    auth_time = models.DateTimeField()
    result = models.CharField(max_length=8)  # pass / fail
    method = models.CharField(max_length=32, blank=True)
    device_no = models.CharField(max_length=64, blank=True)
    similarity = models.CharField(max_length=16, blank=True)
    nonce = models.CharField(max_length=64, unique=True)  # refuses a replayed request
    received_at = models.DateTimeField()


class SuggestionStatus(models.TextChoices):
    OPEN = "open", "待处理"
    ACCEPTED = "accepted", "已采纳"
    REJECTED = "rejected", "已驳回"


class SuggestedMatch(models.Model):
    """A feed row rejected for a broken check digit, and a recipient one keystroke away from its
    ID with the same name and birth date (docs/rules.md §4a). Never evidence by itself: a bureau
    operator accepts it (the corrected row is imported as a new file) or rejects it.
    `candidates` > 1: the row is ambiguous, every candidate is listed and none preferred."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="suggestions")
    row = models.PositiveIntegerField()
    original_id = models.CharField(max_length=18)
    name = models.CharField(max_length=100)
    event_date = models.DateField(null=True, blank=True)
    recipient = models.ForeignKey("roster.Recipient", on_delete=models.PROTECT, related_name="+")
    suggested_id = models.CharField(max_length=18)
    edit = models.CharField(max_length=16)  # substitution / transposition
    position = models.PositiveSmallIntegerField()
    from_text = models.CharField(max_length=2)
    to_text = models.CharField(max_length=2)
    confirmed_by = models.CharField(max_length=100)
    candidates = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    correction = models.ForeignKey(  # the import of the corrected row, once accepted
        ImportBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "row", "recipient"], name="suggestion_once"),
            models.UniqueConstraint(
                fields=["batch", "row"],
                condition=Q(status="accepted"),
                name="suggestion_one_accepted_per_row",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "accepted", "rejected"]), name="suggestion_status_known"
            ),
            models.CheckConstraint(
                condition=Q(status="open", decided_at__isnull=True)
                | (~Q(status="open") & Q(decided_at__isnull=False)),
                name="suggestion_decided_when_closed",
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1, position__lte=18), name="suggestion_position"
            ),
            models.CheckConstraint(
                condition=Q(edit__in=["substitution", "transposition"]), name="suggestion_edit_known"
            ),
            models.CheckConstraint(condition=Q(candidates__gte=1), name="suggestion_candidates"),
        ]
        indexes = [models.Index(fields=["batch", "status"])]

    @property
    def ambiguous(self) -> bool:
        return self.candidates > 1
