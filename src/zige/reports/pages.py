"""What every page view shares: access checks by role and server-side pagination."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

from zige.accounts.access import role_required
from zige.accounts.models import Role

if TYPE_CHECKING:
    from zige.reports.selectors import PeopleWithDecisions

PER_PAGE = 50

# Whole sections closed to unit operators (a 403: the section exists for everyone to know).
RECORDS_ROLES = frozenset({Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR})
PEOPLE_ROLES = frozenset({Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.UNIT_OPERATOR, Role.AUDITOR})


people_view = role_required(PEOPLE_ROLES)
records_view = role_required(RECORDS_ROLES)


# Starting imports and runs: the bureau's staff (the roles of `scoping.can_operate`).
OPERATOR_ROLES = frozenset({Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR})
operator_required = role_required(OPERATOR_ROLES)


def paginate(
    request: HttpRequest, qs: QuerySet[Any] | list[Any] | PeopleWithDecisions, per_page: int = PER_PAGE
) -> Page[Any]:
    """The page named by `?page=` (out of range → the last page, junk → the first)."""
    # A PeopleWithDecisions pages like a queryset: Paginator uses only count() and slices.
    return Paginator(cast("QuerySet[Any]", qs), per_page).get_page(request.GET.get("page"))


def param(request: HttpRequest, name: str, allowed: tuple[str, ...] | None = None) -> str:
    """A GET filter value, stripped; a value outside `allowed` is ignored."""
    value = (request.GET.get(name) or "").strip()[:100]
    if allowed is not None and value not in allowed:
        return ""
    return value


class Echo:
    """A file-like object whose `write` returns the line: `csv.writer(Echo())` makes each row a
    string to stream (`StreamingHttpResponse`), with no buffer holding the whole file."""

    def write(self, value: str) -> str:
        return value


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))[:64]
