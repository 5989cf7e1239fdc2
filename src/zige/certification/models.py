"""Certification runs, every recipient's decision in each, and what changed between runs.

Decision retention (docs/architecture.md, "Decision retention"): the `Decision` rows of the
latest `ZIGE_KEEP_RUN_DECISIONS` succeeded runs stay in the database; an older run's rows are
deleted once its Parquet copy (`runs/<id>/decisions.parquet`) is checked, and the run is marked
`decisions_pruned_at`. Its summary, counts and `DecisionChange` rows stay for good.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Status(models.TextChoices):
    ELIGIBLE = "eligible", "具备资格"
    STOP = "stop", "丧失资格"
    SUSPEND = "suspend", "暂停发放"
    REVIEW = "review", "疑点核查"
    PENDING = "pending", "待核实"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "运行中"
    SUCCEEDED = "succeeded", "已完成"
    FAILED = "failed", "失败"


# Allowed (from, to) changes of a run's status; each is a conditional UPDATE (`WHERE status =
# from`) audited in its transaction (`services._move`). A worker claims a queued run (`running`:
# `run.started`), so a second execution of the same run finds it taken and does nothing. A run
# left `running` by a worker that died is failed when `zige worker` starts
# (`runs_mark_interrupted`); a run is never started twice: it is submitted again.
RUN_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("queued", "running"),  # a worker (or the CLI) claims it: run.started
        ("running", "succeeded"),  # its decisions committed: run.succeeded
        ("running", "failed"),  # its failure (run.failed) or its worker died (run.interrupted)
    }
)


# "The latest" run, as every reader and the decision retention pick it: the last to finish, a
# run without a finishing time last (none succeeds without one; an old or hand-made row), ties
# by id. Explicit, so that SQLite and PostgreSQL agree: PostgreSQL sorts NULL first in a
# descending order, SQLite last. `order_by(*LATEST_FINISHED_FIRST)`.
LATEST_FINISHED_FIRST = (F("finished_at").desc(nulls_last=True), F("pk").desc())


class Run(models.Model):
    """One certification of the whole roll as of a date."""

    as_of = models.DateField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    inputs_fingerprint = models.CharField(max_length=64, blank=True)  # same inputs + as-of -> same decisions
    imports = models.ManyToManyField("feeds.ImportBatch", blank=True, related_name="runs")
    summary = models.JSONField(default=dict, blank=True)  # counts by status, reason, unit (for the dashboard)
    recipients = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)  # Chinese, for the pages (a failure's: zige.feeds.failures)
    failure_code = models.CharField(max_length=32, blank=True)  # zige.feeds.failures.RUN_FAILURE_ZH
    detail = models.TextField(blank=True)  # English, for support staff (技术详情)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Archived (逐人结果已归档): the run's Decision rows were deleted from the database at this
    # moment; its Parquet copy, whose SHA-256 is recorded here, is the record of them since.
    decisions_pruned_at = models.DateTimeField(null=True, blank=True)
    decisions_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in RunStatus]), name="run_status_known"
            ),
        ]
        indexes = [models.Index(fields=["status", "as_of"])]

    @property
    def decisions_archived(self) -> bool:
        """True when the run's decisions are read from its Parquet copy, not the database."""
        return self.decisions_pruned_at is not None


class Decision(models.Model):
    """A recipient's decision in a run (results.csv) and the payment action it implies."""

    # No index of their own: the unique (run, recipient) and the (recipient, run) index below
    # begin with them. A run inserts 2 million rows on a province, each into every index.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="decisions", db_index=False)
    recipient = models.ForeignKey(
        "roster.Recipient", on_delete=models.PROTECT, related_name="decisions", db_index=False
    )
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=32)
    evidence_kind = models.CharField(max_length=32, blank=True)
    evidence_date = models.DateField(null=True, blank=True)
    certified_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    remind = models.BooleanField(default=False)
    channel = models.CharField(max_length=8, blank=True)
    action = models.CharField(max_length=16, blank=True)
    effective_month = models.CharField(max_length=7, blank=True)
    months = models.PositiveIntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "recipient"], name="one_decision_per_run_and_person"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in Status]), name="decision_status_known"
            ),
        ]
        indexes = [
            models.Index(fields=["run", "status", "reason"]),
            models.Index(fields=["run", "unit", "status"]),
            models.Index(fields=["recipient", "run"]),
        ]


class DecisionChange(models.Model):
    """A recipient whose status or reason differs from the previous run (or who is new)."""

    # No index of their own: the (run, …) and (recipient, run) indexes below begin with them.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="changes", db_index=False)
    recipient = models.ForeignKey(
        "roster.Recipient", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="+")
    old_status = models.CharField(max_length=16, blank=True)
    new_status = models.CharField(max_length=16)
    old_reason = models.CharField(max_length=32, blank=True)
    new_reason = models.CharField(max_length=32)

    class Meta:
        indexes = [
            models.Index(fields=["run", "new_status"]),
            models.Index(fields=["run", "unit"]),
            # A person's changes across runs: their history once older runs are archived.
            models.Index(fields=["recipient", "run"], name="decisionchange_person_run"),
        ]
