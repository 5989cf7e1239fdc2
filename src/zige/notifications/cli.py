"""`zige scheduler`, `zige status`, `zige sms send`: unattended operation from the command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import timedelta
from types import FrameType
from typing import Any

import click
from rich.console import Console

out = Console()


def _django() -> None:
    from zige.web.bootstrap import setup_django

    setup_django(migrate=True)


def start_scheduler_thread() -> threading.Event | None:
    """Run the schedule in a daemon thread of this process (for `zige worker`); None when
    `ZIGE_SCHEDULE=0`."""
    from zige.notifications.config import current
    from zige.notifications.jobs import scheduler_loop

    config = current()
    if not config.schedule:
        return None
    stop = threading.Event()
    threading.Thread(
        target=scheduler_loop, kwargs={"stop": stop, "config": config}, name="zige-scheduler", daemon=True
    ).start()
    return stop


@click.command()
@click.option("--once", is_flag=True, help="one pass (inbox, daily run, sending, summary), then exit")
@click.option("--echo", is_flag=True, help="file gateway: also print each SMS")
def scheduler(once: bool, echo: bool) -> None:
    """Run the schedule alone: watch the inboxes, run daily, send reminders, write the summary."""
    _django()
    from django.conf import settings
    from django.utils import timezone

    from zige.notifications.config import current
    from zige.notifications.gateways import build
    from zige.notifications.jobs import scheduler_loop, tick

    config = current()
    if once:
        result = tick(
            clock=timezone.now, gateway=build(config, data_dir=settings.DATA_DIR, echo=echo), config=config
        )
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
        return
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    scheduler_loop(stop=stop, config=config, echo=echo)


@click.group("sms")
def sms_group() -> None:
    """Reminders by SMS."""


@sms_group.command("send")
@click.option("--echo", is_flag=True, help="file gateway: also print each SMS")
def sms_send(echo: bool) -> None:
    """Send the SMS that are due now (one batch), then exit."""
    _django()
    from django.conf import settings
    from django.utils import timezone

    from zige.notifications.config import current
    from zige.notifications.gateways import build
    from zige.notifications.services import messages_send_due

    config = current()
    report = messages_send_due(
        gateway=build(config, data_dir=settings.DATA_DIR, echo=echo), clock=timezone.now
    )
    click.echo(json.dumps(report.as_dict(), ensure_ascii=False))


# An import running longer than this is reported by `zige status` (a 10-million-row feed takes
# minutes: docs/performance.md).
STALE_IMPORT = timedelta(hours=1)


def _ago(now: Any, then: Any) -> str:
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}min ago"
    return f"{seconds // 3600}h ago"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def status(as_json: bool) -> None:
    """What ran, when, and what failed — at a glance. Exit 1 when something needs a person."""
    _django()
    from django.utils import timezone

    from zige.certification.models import Run
    from zige.feeds.models import ImportBatch, ImportStatus
    from zige.notifications import selectors
    from zige.notifications.config import current
    from zige.notifications.content import check_templates
    from zige.notifications.jobs import scheduler_alive
    from zige.notifications.models import JobStatus, Message, MessageStatus

    now = timezone.now()
    lines: list[str] = []
    problems: list[str] = []
    data: dict[str, Any] = {"jobs": [], "outbox": selectors.outbox_counts()}
    for job in selectors.latest_jobs():
        when = timezone.localtime(job.started_at)
        entry = f"{job.job:<10} {job.key:<24} {job.status:<10} {when:%Y-%m-%d %H:%M} ({_ago(now, job.started_at)})"
        if job.message:
            entry += f"  {job.message[:120]}"
        lines.append(entry)
        data["jobs"].append({"job": job.job, "key": job.key, "status": job.status, "at": job.started_at.isoformat(),
                             "message": job.message})  # fmt: skip
        if job.status == JobStatus.FAILED:
            problems.append(f"job {job.job} {job.key} failed: {job.message[:200]}")
    beats = [j for j in selectors.latest_jobs() if j.job == "scheduler"]
    if not scheduler_alive(beats[0] if beats else None, now=now, config=current()):
        problems.append("no scheduler has run recently (is `zige worker` running?)")
    run = Run.objects.order_by("-pk").first()
    if run is not None:
        lines.append(f"last run   #{run.pk} as of {run.as_of} {run.status} ({_ago(now, run.created_at)})")
        if run.status == "failed":
            problems.append(f"run #{run.pk} failed: {run.message[:200]}")
    # The current run (the latest as-of date, docs/rules.md §8.4) when the last one is not it (a
    # look back at an earlier date), and the payment actions it held for a person to look at.
    from zige.benefits.limits import MONTHS_LIMIT
    from zige.benefits.services import RUN_HELD_KEY
    from zige.certification.selectors import latest_run

    current_run = latest_run()
    held = int((current_run.summary or {}).get(RUN_HELD_KEY, 0)) if current_run is not None else 0
    data["current_run"] = current_run.pk if current_run is not None else None
    data["payment_actions_held"] = held
    if current_run is not None and run is not None and current_run.pk != run.pk:
        lines.append(f"current    #{current_run.pk} as of {current_run.as_of} (the latest as-of date)")
    if current_run is not None and held:
        problems.append(
            f"run #{current_run.pk} held {held} payment action(s) beyond the limits for review (more than "
            f"{MONTHS_LIMIT:,} months, or an amount past the column): the run page lists them; the next run "
            "holds them again until the records are corrected"
        )
    failed_imports = ImportBatch.objects.filter(
        status=ImportStatus.FAILED, created_at__gte=now - timedelta(days=1)
    )
    if failed_imports.exists():
        problems.append(f"{failed_imports.count()} import(s) failed in the last 24 h")
    # An import whose process was killed stays `running` until `zige worker` starts again and
    # marks it failed (`imports_mark_interrupted`): one running this long is most likely that.
    stale = ImportBatch.objects.filter(status=ImportStatus.RUNNING, started_at__lt=now - STALE_IMPORT)
    data["stale_imports"] = list(stale.order_by("pk").values_list("pk", flat=True))
    if data["stale_imports"]:
        numbers = ", ".join(f"#{pk}" for pk in data["stale_imports"][:10])
        problems.append(
            f"{len(data['stale_imports'])} import(s) still running after {STALE_IMPORT.total_seconds() / 3600:g} h "
            f"({numbers}): interrupted? `zige worker` marks them failed when it starts"
        )
    # Export files (full ID numbers) that no batch accounts for: a killed `export_batch_create`.
    from zige.benefits.services import export_orphans

    orphans = export_orphans(now=now)
    data["orphan_export_files"] = [str(o.path) for o in orphans]
    if orphans:
        temporary = sum(1 for o in orphans if o.temporary)
        names = ", ".join(o.path.name for o in orphans[:5])
        problems.append(
            f"{len(orphans)} payment export file(s) without a batch ({temporary} temporary): {names}; "
            "`zige payments sweep --dry-run` lists them, `zige payments sweep` removes them"
        )
    counts = data["outbox"]
    lines.append("outbox     " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
    if counts.get(MessageStatus.FAILED):
        problems.append(f"{counts[MessageStatus.FAILED]} SMS failed permanently")
    stuck = Message.objects.filter(status=MessageStatus.RETRYING, attempts__gte=3).first()
    if stuck is not None:
        problems.append(f"SMS retrying after several attempts (gateway?): {stuck.last_error[:160]}")
    for f in selectors.quarantined(limit=5):
        problems.append(f"quarantined {f.agency}/{f.file_name}: {f.error[:160]}")
    problems.extend(f"template: {p}" for p in check_templates(current()))
    data["problems"] = problems
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        for line in lines:
            out.print(line, highlight=False, soft_wrap=True)
        if problems:
            out.print("[bold red]needs a person:[/]")
            for p in problems:
                out.print(f"  - {p}", highlight=False, soft_wrap=True)
        else:
            out.print("[green]all well[/]")
    sys.exit(1 if problems else 0)


def register(main: click.Group) -> None:
    for command in (scheduler, status, sms_group):
        main.add_command(command)
