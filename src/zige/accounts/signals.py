"""Audit of sessions starting and ending (`auth.login`, `auth.logout`).

Failed logins and lockouts are audited by `zige.accounts.services.login_attempt`, which every
login goes through (see `zige.accounts.backends`); `user_login_failed` is therefore not audited
again here.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from zige.accounts.backends import client_ip
from zige.accounts.services import USER_TARGET
from zige.audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="zige.audit.login")
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(
        actor=user,
        action="auth.login",
        target_type=USER_TARGET,
        target_id=user.username,
        ip=client_ip(request),
        at=timezone.now(),
    )


@receiver(user_logged_out, dispatch_uid="zige.audit.logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # the session had already ended
        return
    audit_record(
        actor=user,
        action="auth.logout",
        target_type=USER_TARGET,
        target_id=user.username,
        ip=client_ip(request),
        at=timezone.now(),
    )
