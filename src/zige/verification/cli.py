"""`zige tasks sweep`: the verification tasks' daily pass (reminders, overdue, escalation)."""

from __future__ import annotations

import json

import click


@click.group("tasks")
def tasks_group() -> None:
    """Verification tasks (核实任务)."""


@tasks_group.command("sweep")
def tasks_sweep_command() -> None:
    """Reminders 30 and 7 days before the deadline; overdue tasks escalated (and a suspension proposed)."""
    from zige.web.bootstrap import setup_django

    setup_django(migrate=True)
    from django.utils import timezone

    from zige.verification.services import tasks_sweep

    click.echo(json.dumps(tasks_sweep(now=timezone.now()), ensure_ascii=False))


def register(main: click.Group) -> None:
    main.add_command(tasks_group)
