"""`{% pii person "id_number" %}`: a masked ID or phone number with a 查看 (reveal) button.

{% load pii %}
{% pii person "id_number" %}   {% pii person "mobile" %}   {% pii person "phone" %}
{% pii case "debtor_contact" "recovery_case" %}   (a recovery case's debtor contact)

The button is shown only to roles that may reveal (`scoping.can_reveal`); it posts to
`accounts:reveal` with htmx and swaps in the full value. The reveal is audited there.
"""

from __future__ import annotations

from typing import Any

from django import template

from zige.accounts.masking import mask_id, mask_phone
from zige.accounts.scoping import can_reveal

register = template.Library()

_MASKS = {"id_number": mask_id, "phone": mask_phone, "mobile": mask_phone, "debtor_contact": mask_phone}


@register.inclusion_tag("accounts/pii.html", takes_context=True)
def pii(context: template.Context, obj: Any, field: str, target_type: str = "recipient") -> dict[str, Any]:
    if field not in _MASKS:
        raise template.TemplateSyntaxError(f"pii: cannot mask field {field!r}")
    value = str(getattr(obj, field, "") or "")
    request = context.get("request")
    user = getattr(request, "user", None)
    return {
        "dom_id": f"pii-{target_type}-{obj.pk}-{field}",
        "masked": _MASKS[field](value),
        "value": value,
        "can_reveal": can_reveal(user),
        "target_type": target_type,
        "target_id": obj.pk,
        "field": field,
        "csrf_token": context.get("csrf_token"),
    }
