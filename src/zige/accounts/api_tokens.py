"""Bearer tokens for the JSON API.

`token_issue` returns a random token once; only its SHA-256 is stored (`ApiToken.key_hash`), so a
copy of the database does not yield usable tokens. A token expires after `ZIGE_API_TOKEN_HOURS`
(default 8) hours. `token_authenticate` finds the user of a live token, or `None`.

`token_revoke_all` revokes every live token of a user; `accounts.services` calls it when the
user's password is set or reset and when the account is deactivated, in the same transaction,
so a token obtained with the old password (or before the deactivation) stops working at once
and stays dead if the account is reactivated. Logging out of the web site does not revoke tokens
(docs/security.md, "API tokens").
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from zige.accounts.models import ApiToken, User
from zige.audit.services import audit_record

TOKEN_PREFIX = "zige_"  # lets secret scanners recognise a leaked token
DEFAULT_TOKEN_HOURS = 8
_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is refreshed at most this often


def token_lifetime() -> timedelta:
    return timedelta(hours=float(getattr(settings, "ZIGE_API_TOKEN_HOURS", DEFAULT_TOKEN_HOURS)))


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def token_issue(*, user: User, now: datetime, ip: str = "") -> str:
    """A new token for `user` (returned once, never stored), audited as `api.token_issued`."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, key_hash=token_hash(raw), created_at=now, expires_at=now + token_lifetime()
        )
        audit_record(
            actor=user,
            action="api.token_issued",
            target_type="accounts.ApiToken",
            target_id=token.pk,
            after={"user": user.username, "expires_at": token.expires_at.isoformat()},
            ip=ip,
            at=now,
        )
    return raw


def token_revoke_all(*, user: User, actor: Any, reason: str, now: datetime, ip: str = "") -> int:
    """Revoke every unexpired, unrevoked token of `user`; audited as `api.tokens_revoked` (how
    many, and why: `password_set`, `deactivated`) when there was any. Returns how many."""
    with transaction.atomic():
        live = ApiToken.objects.filter(user=user, expires_at__gt=now, revoked_at__isnull=True)
        ids = list(live.values_list("pk", flat=True))
        if not ids:
            return 0
        ApiToken.objects.filter(pk__in=ids).update(revoked_at=now)
        audit_record(
            actor=actor,
            action="api.tokens_revoked",
            target_type="accounts.User",
            target_id=user.username,
            after={"tokens": len(ids), "reason": reason},
            ip=ip,
            at=now,
        )
    return len(ids)


def token_authenticate(*, raw: str, now: datetime) -> User | None:
    """The active user holding the unexpired token `raw`, or `None`."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user", "user__unit")
        .filter(key_hash=token_hash(raw), expires_at__gt=now, revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
