"""Background tasks of certification runs (Django tasks; `zige worker` runs them)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task


@task()
def run_task(run_id: int) -> str:
    """Execute one queued run; returns its final status."""
    from zige.certification.services import run_execute

    return run_execute(run_id=run_id, now=timezone.now()).status
