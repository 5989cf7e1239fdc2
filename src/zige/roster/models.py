"""The pension roll: units and recipients, with the history of every changed field."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Unit(models.Model):
    """参保单位: the employer or body that verifies its retirees."""

    unit_no = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.unit_no} {self.name}".strip()


class BenefitStatus(models.TextChoices):
    NORMAL = "normal", "正常"
    SUSPENDED = "suspended", "暂停"
    TERMINATED = "terminated", "终止"


# Roster fields kept on a recipient, in the order of spec §4. A roster import compares these
# and records each change as a RecipientChange.
TRACKED_FIELDS: tuple[str, ...] = (
    "name", "id_number", "unit_id", "unit_name", "sex", "birth_date_text", "benefit_status", "status_since",
    "status_reason", "monthly_amount", "phone", "mobile", "address", "retirement_date", "last_certified_on",
    "lives_abroad", "has_social_card", "health", "retirement_category", "ethnicity", "political_status",
    "former_employer", "hukou", "residence_region",
)  # fmt: skip


class Recipient(models.Model):
    """A person on the roster (待遇领取人员), as of the latest roster import that named them."""

    person_no = models.CharField(max_length=64, unique=True)
    id_number = models.CharField(max_length=18, unique=True)
    name = models.CharField(max_length=100)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="recipients")
    unit_name = models.CharField(max_length=200, blank=True)
    sex = models.CharField(max_length=8, blank=True)
    birth_date_text = models.CharField(max_length=32, blank=True)
    benefit_status = models.CharField(
        max_length=16, choices=BenefitStatus.choices, default=BenefitStatus.NORMAL
    )
    status_since = models.DateField(null=True, blank=True)
    status_reason = models.CharField(max_length=200, blank=True)
    monthly_amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    mobile = models.CharField(max_length=11, blank=True)
    address = models.CharField(max_length=300, blank=True)
    retirement_date = models.DateField(null=True, blank=True)
    last_certified_on = models.DateField(null=True, blank=True)
    lives_abroad = models.CharField(max_length=8, blank=True)
    has_social_card = models.CharField(max_length=8, blank=True)
    health = models.CharField(max_length=100, blank=True)
    retirement_category = models.CharField(max_length=50, blank=True)
    ethnicity = models.CharField(max_length=50, blank=True)
    political_status = models.CharField(max_length=50, blank=True)
    former_employer = models.CharField(max_length=200, blank=True)
    hukou = models.CharField(max_length=300, blank=True)
    residence_region = models.CharField(max_length=32, blank=True)
    first_import = models.ForeignKey(
        "feeds.ImportBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_import = models.ForeignKey(
        "feeds.ImportBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["unit", "person_no"]),
            # Search by the leading characters of a name (LIKE '王%', zige.reports.selectors): on
            # PostgreSQL only the pattern operator class answers it whatever the collation (SQLite
            # ignores the class). With person_no in the index, the people found are put in order
            # without reading their rows (SQLite: 10 ms instead of 140 for the 47,000 named 王).
            models.Index(
                fields=["name", "person_no"],
                name="recipient_name_prefix",
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_amount__gte=0), name="recipient_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(benefit_status__in=[s.value for s in BenefitStatus]),
                name="recipient_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person_no} {self.name}"


class RecipientChange(models.Model):
    """One field of one recipient changed by a roster import (old and new value as text)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="changes")
    batch = models.ForeignKey("feeds.ImportBatch", on_delete=models.PROTECT, related_name="recipient_changes")
    field = models.CharField(max_length=64)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["recipient", "changed_at"])]
