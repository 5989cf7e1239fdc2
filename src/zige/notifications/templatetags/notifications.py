"""`{% reminder_history person %}` for the person page, `{% unit_notice_list unit %}` for the unit page."""

from __future__ import annotations

from typing import Any

from django import template

from zige.notifications import selectors

register = template.Library()


@register.inclusion_tag("notifications/_history.html", takes_context=True)
def reminder_history(context: Any, person: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"messages_": list(selectors.person_messages(person, user)[:20])}


@register.inclusion_tag("notifications/_unit_notices.html", takes_context=True)
def unit_notice_list(context: Any, unit: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    qs = selectors.unit_notices(unit, user)
    return {"unit": unit, "notices": list(qs[:50]), "total": qs.count()}
