"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = getattr(user, "role", "") if user is not None and user.is_authenticated else ""
    return {
        "user_role": role,
        "is_bureau": role in ("bureau_admin", "bureau_operator"),
        "is_unit_operator": role == "unit_operator",
        "is_auditor": role == "auditor",
        "is_admin": role == "bureau_admin",
    }
