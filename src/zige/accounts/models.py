"""Users, their roles and unit scope; API tokens and device clients."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    BUREAU_ADMIN = "bureau_admin", "社保局管理员"
    BUREAU_OPERATOR = "bureau_operator", "社保局经办人员"
    UNIT_OPERATOR = "unit_operator", "单位经办人员"
    AUDITOR = "auditor", "审计人员"


class User(AbstractUser):
    """A member of staff. A unit operator belongs to exactly one unit and sees nothing else."""

    role = models.CharField(max_length=32, choices=Role.choices)
    unit = models.ForeignKey(
        "roster.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    failed_logins = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]),
                name="user_role_known",
            ),
            models.CheckConstraint(
                condition=~Q(role="unit_operator") | Q(unit__isnull=False),
                name="unit_operator_has_unit",
            ),
            models.CheckConstraint(
                condition=Q(role="unit_operator") | Q(unit__isnull=True),
                name="only_unit_operators_have_a_unit",
            ),
        ]

    @property
    def is_bureau(self) -> bool:
        return self.role in (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR)

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role else ""


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only a hash of the token is stored. A revoked token
    (password set or reset, account deactivated) keeps its row, with when it was last used."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class DeviceClient(models.Model):
    """The phone app's back end or a terminal device that pushes certification results.

    Requests are signed with HMAC-SHA256 under `secret`; `client_id` names the key.
    """

    class Kind(models.TextChoices):
        APP = "app_auth", "手机APP"
        TERMINAL = "terminal_auth", "认证终端"

    client_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    secret = models.CharField(max_length=128)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
