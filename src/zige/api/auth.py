"""Authentication of API callers: bearer tokens for staff, the token endpoint's login."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from zige.accounts.api_tokens import token_authenticate
from zige.accounts.backends import client_ip
from zige.accounts.models import User
from zige.accounts.services import LoginOutcome, login_attempt

__all__ = ["BearerAuth", "api_login", "client_ip"]


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <token>` from POST /api/v1/token; the user becomes `request.auth`."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        return token_authenticate(raw=token.strip(), now=timezone.now())


def api_login(*, request: HttpRequest, username: str, password: str) -> LoginOutcome:
    """Check the credentials exactly as the login page does (`login_attempt`): failures are
    counted towards the account's lockout and audited (`auth.login_failed`, via `api`)."""
    return login_attempt(
        username=username, password=password, now=timezone.now(), ip=client_ip(request), via="api"
    )
