"""Reads of runs, decisions and changes between runs; people are scoped to the user."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from zige.accounts.scoping import scope_recipients, scope_units
from zige.certification.models import Decision, DecisionChange, Run, RunStatus
from zige.roster.models import Recipient, Unit


def latest_run() -> Run | None:
    """The most recently finished succeeded run (the dashboard reads its `summary`)."""
    return Run.objects.filter(status=RunStatus.SUCCEEDED).order_by("-finished_at", "-pk").first()


def runs_list() -> QuerySet[Run]:
    return Run.objects.select_related("created_by", "previous").order_by("-created_at", "-pk")


def run_get(*, run_id: int) -> Run:
    try:
        return Run.objects.select_related("created_by", "previous").get(pk=run_id)
    except Run.DoesNotExist:
        raise Http404("no such run") from None


def decisions_for_unit(
    *, user: Any, unit: Unit | None, run: Run, status: str | None = None
) -> QuerySet[Decision]:
    """The decisions of a run for one unit (all units the user sees when `unit` is None), by
    个人编号. A unit the user may not see is a 404."""
    if unit is not None and not scope_units(Unit.objects.filter(pk=unit.pk), user).exists():
        raise Http404("no such unit")
    decisions = scope_recipients(Decision.objects.filter(run=run), user)
    if unit is not None:
        decisions = decisions.filter(unit=unit)
    if status:
        decisions = decisions.filter(status=status)
    return decisions.select_related("recipient", "unit").order_by("recipient__person_no")


def decision_history(*, user: Any, recipient: Recipient) -> QuerySet[Decision]:
    """Every decision about one person across runs, newest run first (404 if not visible)."""
    if not scope_recipients(Recipient.objects.filter(pk=recipient.pk), user).exists():
        raise Http404("no such recipient")
    return (
        Decision.objects.filter(recipient=recipient)
        .select_related("run", "unit")
        .order_by("-run__as_of", "-run__finished_at", "-run_id")
    )


def run_changes(*, user: Any, run: Run) -> QuerySet[DecisionChange]:
    """What changed in `run` since its previous run, for the people the user may see.

    `old_status` is empty for a recipient who is new; `new_status` is empty for one who was in
    the previous run but is no longer (终止 or no longer on the roll as 正常/暂停).
    """
    changes = scope_recipients(DecisionChange.objects.filter(run=run), user)
    return changes.select_related("recipient", "unit").order_by("new_status", "recipient__person_no")
