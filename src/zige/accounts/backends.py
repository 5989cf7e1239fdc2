"""The only authentication backend: Django's model backend with zige's lockout in front.

Every way of logging in (the login page, the API token endpoint, the admin's login form) calls
`django.contrib.auth.authenticate()`, which lands here, so failures are counted, audited and
locked out the same way whichever door is tried.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.utils import timezone

from zige.accounts.models import User
from zige.accounts.services import login_attempt


def client_ip(request: HttpRequest | None) -> str:
    """The peer address as the WSGI server saw it (X-Forwarded-For is not trusted)."""
    if request is None:
        return ""
    return str(request.META.get("REMOTE_ADDR", ""))[:64]


def _via(request: HttpRequest | None) -> str:
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web"


class LockoutBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        outcome = login_attempt(
            username=username,
            password=password,
            now=timezone.now(),
            ip=client_ip(request),
            via=_via(request),
        )
        # The reason (wrong password, unknown, locked, inactive) stays in the audit log: every
        # door answers a refused login the same way (docs/security.md, "Login").
        return outcome.user
