"""Access checks for views: login first, then the role (403 for a role that may never come here).

Row-level scope (a unit operator's own unit) is not decided here but inside each query
(`zige.accounts.scoping`), so that another unit's object is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from zige.accounts.models import Role

View = TypeVar("View", bound=Callable[..., HttpResponseBase])

ADMIN_ROLES = frozenset({Role.BUREAU_ADMIN})
AUDIT_ROLES = frozenset({Role.BUREAU_ADMIN, Role.AUDITOR})


def role_required(roles: frozenset[str]) -> Callable[[View], View]:
    """Anonymous → the login page; a role outside `roles` → 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if getattr(request.user, "role", "") not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]

    return decorator
