"""Template filters of the verification pages."""

from __future__ import annotations

from typing import Any

from django import template

from zige.verification.models import TaskStatus

register = template.Library()


@register.filter
def task_status(value: Any) -> str:
    """A task status code in Chinese ("" stays "")."""
    if not value:
        return ""
    try:
        return str(TaskStatus(value).label)
    except ValueError:
        return str(value)
