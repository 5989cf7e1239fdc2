"""The audit log: append-only and hash-chained."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One audited action. Rows are never updated, deleted or truncated (database triggers refuse
    it: migration 0002, and 0003 for PostgreSQL's TRUNCATE), and each row's hash covers the
    previous row's hash, so a changed or missing row is detected by `zige audit verify`."""

    seq = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150, blank=True)  # username: kept even if the user is removed
    actor_role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=128, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["action", "at"]),
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["actor", "at"]),
        ]
