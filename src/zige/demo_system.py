"""Load a generated demo province into the system of record, run it, and make demo users.

Used by `zige demo`: the same services as `zige import`, `zige run` and `zige user create`, so
the demo exercises exactly what a bureau would run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from django.db.models import Count, Q

from zige.accounts.models import Role, User
from zige.accounts.services import cli_actor, user_create, user_set_password
from zige.certification.models import Decision, Run
from zige.certification.services import run_execute, run_submit
from zige.feeds.models import ImportBatch, ImportStatus
from zige.feeds.services import import_execute, import_submit

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    unit_no: str
    password: str


def import_province(
    *, roster: Path, feed_files: list[Path], now: datetime, progress: Progress | None = None
) -> list[ImportBatch]:
    """Import the roster, then every feed file (a file imported before is a no-op)."""
    report = progress or (lambda _label, _done, _total: None)
    batches = []
    files = [(roster, "roster"), *((f, None) for f in feed_files)]
    for done, (path, kind) in enumerate(files):
        report(f"import {path.name}", done, len(files) + 1)
        batch = import_submit(source=path, file_name=path.name, kind=kind, user=None, now=now, enqueue=False)
        if batch.status == ImportStatus.QUEUED:
            batch = import_execute(batch_id=batch.pk, now=now)
        batches.append(batch)
    return batches


def certify_province(*, as_of: date, now: datetime, progress: Progress | None = None) -> Run:
    run = run_submit(as_of=as_of, user=None, now=now, enqueue=False)
    return run_execute(run_id=run.pk, now=now, progress=progress)


def demo_accounts(*, run: Run, now: datetime) -> list[DemoAccount]:
    """An administrator, two operators, an auditor and the operator of the unit with most to verify.

    Two bureau operators, because a payment action or a unit's verification proposed or submitted
    by one must be approved by another (maker-checker).

    Passwords are new random ones on every call (printed once by the caller, stored hashed).
    """
    busiest = (
        Decision.objects.filter(run=run)
        .values("unit__unit_no")
        .annotate(todo=Count("id", filter=Q(status__in=["pending", "review"])))
        .order_by("-todo", "unit__unit_no")
        .first()
    )
    wanted = [
        ("admin", Role.BUREAU_ADMIN, ""),
        ("operator", Role.BUREAU_OPERATOR, ""),
        ("checker", Role.BUREAU_OPERATOR, ""),
        ("auditor", Role.AUDITOR, ""),
    ]
    if busiest:
        wanted.append(("unit", Role.UNIT_OPERATOR, busiest["unit__unit_no"]))
    accounts = []
    actor = cli_actor()
    for username, role, unit_no in wanted:
        password = secrets.token_urlsafe(12)
        existing = User.objects.filter(username=username).first()
        if existing is None:
            user_create(
                actor=actor, username=username, role=role, password=password, now=now, unit_no=unit_no or None
            )
        else:
            user_set_password(actor=actor, user=existing, password=password, now=now)
            unit_no = existing.unit.unit_no if existing.unit else ""
            role = Role(existing.role)
        accounts.append(DemoAccount(username, role.value, unit_no, password))
    return accounts
