"""Background tasks of imports (Django tasks; the database backend queues them, `zige worker` runs them)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task


@task()
def import_task(batch_id: int) -> str:
    """Import one queued batch; returns its final status."""
    from zige.feeds.services import import_execute

    return import_execute(batch_id=batch_id, now=timezone.now()).status
