"""Row-level scope: what a user may see, applied inside every query.

A unit operator sees their own unit's people, decisions and units, and nothing else. Views
fetch single objects through these querysets, so another unit's person is simply not found
(404): the response never confirms that the person exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from zige.accounts.models import Role


def _is_unit_operator(user: Any) -> bool:
    return getattr(user, "role", "") == Role.UNIT_OPERATOR


def _can_see_anything(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", "") in {
        r.value for r in Role
    }


def scope_recipients(qs: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """Recipients (or anything with a `unit` foreign key) the user may see."""
    if not _can_see_anything(user):
        return qs.none()
    if _is_unit_operator(user):
        return qs.filter(unit_id=user.unit_id)
    return qs


@dataclass(frozen=True)
class UnitScope:
    """`scope_recipients` for rows read outside the database (an archived run's decisions in its
    Parquet copy, filtered by their `unit_id` column): nothing, one unit, or every unit."""

    nothing: bool
    unit_id: int | None = None  # when not `nothing`: the only unit, or None for every unit


def unit_scope(user: Any) -> UnitScope:
    """The same rule as `scope_recipients`, as a value for a query the ORM does not build."""
    if not _can_see_anything(user):
        return UnitScope(nothing=True)
    if _is_unit_operator(user):
        if user.unit_id is None:
            return UnitScope(nothing=True)
        return UnitScope(nothing=False, unit_id=int(user.unit_id))
    return UnitScope(nothing=False)


def scope_units(qs: QuerySet[Any], user: Any) -> QuerySet[Any]:
    if not _can_see_anything(user):
        return qs.none()
    if _is_unit_operator(user):
        return qs.filter(pk=user.unit_id)
    return qs


def scope_by_unit_field(qs: QuerySet[Any], user: Any, field: str) -> QuerySet[Any]:
    """Rows linked to a unit through `field` (e.g. `recipient__unit_id`)."""
    if not _can_see_anything(user):
        return qs.none()
    if _is_unit_operator(user):
        return qs.filter(**{field: user.unit_id})
    return qs


def sees_bureau_reviews(user: Any) -> bool:
    """Whether the user may see the bureau's own 疑点核查 work: its review tasks (list, counts,
    page, files), their findings and the fraud suspicions they raise. Bureau roles and auditors;
    never a unit operator, even for the unit's own people (docs/security.md): a unit verifies
    its people, the bureau reviews the suspicious ones. The one rule every reader of review
    tasks and of their findings applies (`verification.selectors._scoped`,
    `reports.selectors.evidence_visible`)."""
    return _can_see_anything(user) and not _is_unit_operator(user)


def can_reveal(user: Any) -> bool:
    """Roles allowed to see full ID and phone numbers (on request, audited)."""
    return getattr(user, "role", "") in (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.UNIT_OPERATOR)


def can_operate(user: Any) -> bool:
    """Roles that start imports and runs (the bureau's staff)."""
    return getattr(user, "role", "") in (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR)
