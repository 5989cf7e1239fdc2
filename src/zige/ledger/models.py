"""服务台账 (special groups ledger) and 异地居住 (other-province residents, 附件2).

Notice 三(二)1: units keep a service ledger of the very old, high-risk and immobile people who
cannot use the phone app, and visit them at home. Notice 三(二)3: the bureau lists people whose
户籍 is in another province and who have no social-security card (附件2) and uploads the list to
the national remote-certification platform.

Very old (高龄) is not stored: it is computed from the birth date in the ID number at the date
asked about (`zige.ledger.selectors`). High-risk and immobile are marks a person sets.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Group(models.TextChoices):
    """The special groups of notice 三(二)1. `very_old` is computed, never marked."""

    VERY_OLD = "very_old", "高龄"
    HIGH_RISK = "high_risk", "高危"
    IMMOBILE = "immobile", "行动不便"


MARKABLE_GROUPS: tuple[str, ...] = (Group.HIGH_RISK.value, Group.IMMOBILE.value)


class SpecialMark(models.Model):
    """A person marked high-risk or immobile by their unit or the bureau (with reason, since, by).

    Removing a mark keeps the row (removed_at, removed_by, removal_reason): the ledger's history.
    At most one active mark per person and group.
    """

    recipient = models.ForeignKey("roster.Recipient", on_delete=models.PROTECT, related_name="special_marks")
    group = models.CharField(max_length=16, choices=[(g, Group(g).label) for g in MARKABLE_GROUPS])
    reason = models.CharField(max_length=300)
    since = models.DateField()
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    marked_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    removal_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "group"],
                condition=Q(removed_at__isnull=True),
                name="one_active_mark_per_group",
            ),
            models.CheckConstraint(condition=Q(group__in=MARKABLE_GROUPS), name="mark_group_markable"),
            models.CheckConstraint(condition=~Q(reason=""), name="mark_has_reason"),
            models.CheckConstraint(
                condition=(Q(removed_at__isnull=True) & Q(removed_by__isnull=True) & Q(removal_reason=""))
                | (Q(removed_at__isnull=False) & Q(removed_by__isnull=False) & ~Q(removal_reason="")),
                name="mark_removal_complete",
            ),
        ]
        indexes = [models.Index(fields=["group", "removed_at"])]

    @property
    def active(self) -> bool:
        return self.removed_at is None


class VisitOutcome(models.TextChoices):
    ALIVE = "alive", "本人健在"
    DEAD = "dead", "已死亡"
    NOT_SEEN = "not_seen", "无法见到"
    OTHER = "other", "其他"


class HomeVisit(models.Model):
    """A home visit (上门走访/慰问) recorded in the ledger, with an optional photo.

    `unit` is the person's unit when the visit was recorded (the visiting unit). The photo is
    checked by content and stored outside the web root by `zige.verification.uploads`; the row
    keeps its path, hash, type and size.
    """

    recipient = models.ForeignKey("roster.Recipient", on_delete=models.PROTECT, related_name="home_visits")
    unit = models.ForeignKey("roster.Unit", on_delete=models.PROTECT, related_name="+")
    visited_on = models.DateField()
    visitor = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=VisitOutcome.choices)
    notes = models.TextField(blank=True)
    photo_path = models.CharField(max_length=500, blank=True)
    photo_sha256 = models.CharField(max_length=64, blank=True)
    photo_content_type = models.CharField(max_length=64, blank=True)
    photo_size = models.PositiveIntegerField(default=0)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    # An 已死亡 visit goes to the bureau as a 疑点核查 review task (`verification.services.
    # review_from_visit`): the officer confirms the death there; the visit itself stops nothing.
    review_task = models.ForeignKey(
        "verification.VerificationTask",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="home_visits",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=[o.value for o in VisitOutcome]), name="visit_outcome_known"
            ),
            models.CheckConstraint(condition=~Q(visitor=""), name="visit_has_visitor"),
            models.CheckConstraint(
                condition=Q(photo_path="", photo_sha256="", photo_size=0)
                | (~Q(photo_path="") & ~Q(photo_sha256="") & Q(photo_size__gt=0)),
                name="visit_photo_complete",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "visited_on"]),
            models.Index(fields=["unit", "visited_on"]),
        ]


class ExportFormat(models.TextChoices):
    XLSX = "xlsx", "Excel（附件2）"
    CSV = "csv", "CSV"


class OtherProvinceExport(models.Model):
    """One export of 附件2 for the national remote-certification platform (who, when, how many,
    the file's SHA-256). The file is kept under the data directory; each file name once."""

    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    as_of = models.DateField()
    rows = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    file_name = models.CharField(max_length=200, unique=True)
    stored_path = models.CharField(max_length=500, unique=True)
    filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(format__in=[f.value for f in ExportFormat]), name="export_format_known"
            ),
            models.CheckConstraint(condition=~Q(sha256=""), name="export_has_sha256"),
        ]
        indexes = [models.Index(fields=["created_at"])]


class OtherProvinceExportRow(models.Model):
    """Who was in an export (so the list can say when each person was last sent)."""

    export = models.ForeignKey(OtherProvinceExport, on_delete=models.PROTECT, related_name="people")
    recipient = models.ForeignKey("roster.Recipient", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["export", "recipient"], name="export_person_once"),
        ]
        indexes = [models.Index(fields=["recipient", "export"])]
