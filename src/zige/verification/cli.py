"""`zige tasks sweep`: the verification tasks' daily pass (reminders, overdue, escalation).
`zige tasks auto-closed RUN`: the tasks a run closed by itself, checked against its audit row."""

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


@tasks_group.command("auto-closed")
@click.argument("run_id", type=int)
def tasks_auto_closed_command(run_id: int) -> None:
    """List the ids of the tasks run RUN_ID closed by itself (one a line) and check them against
    the run's audit row `tasks.for_run` (count and SHA-256): exit 0 when they match, 1 when not."""
    from zige.web.bootstrap import setup_django

    setup_django(migrate=True)
    from zige.verification.selectors import auto_closed_check

    check = auto_closed_check(run_id=run_id)
    for pk in check.task_ids:
        click.echo(pk)
    if check.problem:
        click.echo(f"run #{run_id}: {check.problem}", err=True)
        raise SystemExit(1)
    click.echo(
        f"run #{run_id} closed {len(check.task_ids)} task(s) by itself, as its audit row says "
        f"(seq {check.audit_seq}, sha256 {check.recorded_sha256})",
        err=True,
    )


def register(main: click.Group) -> None:
    main.add_command(tasks_group)
