"""What every page view shares: access checks by role and server-side pagination."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from zige.accounts.models import Role
from zige.accounts.scoping import can_operate

PER_PAGE = 50

View = TypeVar("View", bound=Callable[..., HttpResponseBase])

# Whole sections closed to unit operators (a 403: the section exists for everyone to know).
RECORDS_ROLES = frozenset({Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR})
PEOPLE_ROLES = frozenset({Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.UNIT_OPERATOR, Role.AUDITOR})


def roles_required(roles: frozenset[str]) -> Callable[[View], View]:
    """Login required, then 403 for any role not in `roles`."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if getattr(request.user, "role", "") not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]

    return decorator


people_view = roles_required(PEOPLE_ROLES)
records_view = roles_required(RECORDS_ROLES)


def operator_required(view: View) -> View:
    """Bureau staff only (starting imports and runs)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_operate(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(wrapped)  # type: ignore[return-value]


def paginate(request: HttpRequest, qs: QuerySet[Any] | list[Any], per_page: int = PER_PAGE) -> Page[Any]:
    """The page named by `?page=` (out of range → the last page, junk → the first)."""
    return Paginator(qs, per_page).get_page(request.GET.get("page"))


def param(request: HttpRequest, name: str, allowed: tuple[str, ...] | None = None) -> str:
    """A GET filter value, stripped; a value outside `allowed` is ignored."""
    value = (request.GET.get(name) or "").strip()[:100]
    if allowed is not None and value not in allowed:
        return ""
    return value


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))[:64]
