"""`{% reminder_history person %}` for the person page, `{% unit_sms_list unit %}` (the unit's deadline SMS; `unit` None: every unit in the user's scope)
for the verification task list and the unit page."""

from __future__ import annotations

from typing import Any

from django import template

from zige.notifications import selectors
from zige.notifications.unit_messages import unit_mobile

register = template.Library()


@register.inclusion_tag("notifications/_history.html", takes_context=True)
def reminder_history(context: Any, person: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"messages_": list(selectors.person_messages(person, user)[:20])}


@register.inclusion_tag("notifications/_unit_sms.html", takes_context=True)
def unit_sms_list(context: Any, unit: Any = None, limit: int = 10) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    qs = selectors.unit_sms(user, unit)
    sms = list(qs[:limit])
    return {
        "unit": unit,
        "sms": sms,
        "total": len(sms) if len(sms) < limit else qs.count(),  # one query on most pages
        # The unit's contact number is not a mobile (a landline, nothing): it gets no SMS.
        "no_mobile": unit is not None and not unit_mobile(unit.phone),
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }
