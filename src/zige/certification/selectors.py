"""Reads of runs, decisions and changes between runs; people are scoped to the user.

An archived run (`Run.decisions_pruned_at`: decision retention, docs/architecture.md) has no
`Decision` rows in the database; the readers below take its decisions from its Parquet copy
(`certification.archive`), in the same scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, QuerySet
from django.http import Http404

from zige.accounts.scoping import scope_recipients, scope_units, unit_scope
from zige.certification import archive
from zige.certification.models import LATEST_FINISHED_FIRST, Decision, DecisionChange, Run, RunStatus
from zige.roster.models import Recipient, Unit


def latest_run() -> Run | None:
    """The current run: the succeeded run of the latest as-of date, the last to finish of that
    date (`LATEST_FINISHED_FIRST`); the dashboard reads its `summary`, the person page its
    decision, as the API does. A queued, running or failed run never is, nor a back-dated run
    (`later_run`) that finished after it: re-running an old date is a look back, and its stale
    decisions are not the current ones (docs/rules.md §8.4)."""
    return Run.objects.filter(status=RunStatus.SUCCEEDED).order_by("-as_of", *LATEST_FINISHED_FIRST).first()


def later_run(*, run: Run) -> Run | None:
    """The succeeded run, other than `run`, with the latest as-of date after `run`'s (ties by
    `LATEST_FINISHED_FIRST`), or None. `run` is **back-dated** when there is one (docs/rules.md
    §8.4): another run that already succeeded certified the roll as of a later date, so `run`'s
    decisions are not the current truth and it has none of a run's side effects — no payment
    actions proposed, revised or withdrawn, no verification tasks opened or closed, no reminder
    written, restored or cancelled on its decisions. A run of the same as-of date is not later
    (ties are not back-dated), nor is a run queued, running or failed.

    `latest_run` is the run no other is later than: the pages' current run."""
    return (
        Run.objects.filter(status=RunStatus.SUCCEEDED, as_of__gt=run.as_of)
        .exclude(pk=run.pk)
        .order_by("-as_of", *LATEST_FINISHED_FIRST)
        .first()
    )


def runs_list() -> QuerySet[Run]:
    return Run.objects.select_related("created_by", "previous").order_by("-created_at", "-pk")


def run_get(*, run_id: int) -> Run:
    try:
        return Run.objects.select_related("created_by", "previous").get(pk=run_id)
    except Run.DoesNotExist:
        raise Http404("no such run") from None


def decisions_for_unit(
    *, user: Any, unit: Unit | None, run: Run, status: str | None = None
) -> QuerySet[Decision] | Sequence[Decision]:
    """The decisions of a run for one unit (all units the user sees when `unit` is None), by
    个人编号. A unit the user may not see is a 404. An archived run's come from its copy (a
    list of unsaved decisions with their recipient and unit)."""
    if unit is not None and not scope_units(Unit.objects.filter(pk=unit.pk), user).exists():
        raise Http404("no such unit")
    if run.decisions_archived:
        return archive.decisions(
            run, unit_scope(user), unit_id=unit.pk if unit is not None else None, status=status or None
        )
    decisions = scope_recipients(Decision.objects.filter(run=run), user)
    if unit is not None:
        decisions = decisions.filter(unit=unit)
    if status:
        decisions = decisions.filter(status=status)
    return decisions.select_related("recipient", "unit").order_by("recipient__person_no")


def decision_history(*, user: Any, recipient: Recipient) -> QuerySet[Decision]:
    """Every decision about one person in the runs that keep their decisions in the database,
    newest run first (404 if not visible); `archived_history` gives the archived runs'."""
    if not scope_recipients(Recipient.objects.filter(pk=recipient.pk), user).exists():
        raise Http404("no such recipient")
    return (
        Decision.objects.filter(recipient=recipient, run__decisions_pruned_at__isnull=True)
        .select_related("run", "unit")
        .order_by("-run__as_of", F("run__finished_at").desc(nulls_last=True), "-run_id")
    )


@dataclass(frozen=True)
class ArchivedSpan:
    """Consecutive archived runs in which one person's decision had the same status and reason.

    `decision` is their decision in the first run of the span, read from its copy (None when
    that copy is missing: `missing`); `last` is the span's last run (the first when it is one).
    """

    first: Run
    last: Run
    runs: int
    decision: Decision | None
    missing: bool = False


def archived_history(*, user: Any, recipient: Recipient) -> list[ArchivedSpan]:
    """One person's decisions in the archived runs, newest first, as spans (404 if not visible).

    Reading every archived run's copy (a year of daily runs: 358 files) for one person page would
    cost a second. The runs' changes say the same in one indexed query: a run's `DecisionChange`
    rows name every person whose status or reason differs from its previous run. So the
    archived runs, in the order they finished, are cut into spans wherever the person changed, a
    run in the database comes between, or a run's previous run is not the one before it; only
    the copy of each span's first run is read, for its full decision (due date, action).
    """
    if not scope_recipients(Recipient.objects.filter(pk=recipient.pk), user).exists():
        raise Http404("no such recipient")
    chain = list(
        Run.objects.filter(status=RunStatus.SUCCEEDED)
        .order_by("finished_at", "pk")
        .only("pk", "as_of", "previous_id", "finished_at", "decisions_pruned_at", "recipients")
    )
    if not any(r.decisions_archived for r in chain):
        return []
    changed = set(
        DecisionChange.objects.filter(
            recipient=recipient, run__decisions_pruned_at__isnull=False
        ).values_list("run_id", flat=True)
    )
    spans: list[list[Run]] = []
    before: Run | None = None
    for run in chain:
        if run.decisions_archived:
            continues = (
                spans
                and before is not None
                and spans[-1][-1] is before
                and run.previous_id == before.pk
                and run.pk not in changed
            )
            if continues:
                spans[-1].append(run)
            else:
                spans.append([run])
        before = run
    read = archive.person_decisions(recipient.pk, [span[0] for span in spans])
    gone = {r.pk for r in read.missing}
    result = [
        ArchivedSpan(span[0], span[-1], len(span), read.found.get(span[0].pk), missing=span[0].pk in gone)
        for span in spans
        if span[0].pk in read.found or span[0].pk in gone
    ]
    result.reverse()
    return result


def decision_in_run(*, run: Run, recipient: Recipient) -> Decision | None:
    """One person's decision in one run, from the database or, for an archived run, its copy.
    The caller has checked that the user may see the person."""
    if run.decisions_archived:
        return archive.person_decisions(recipient.pk, [run]).found.get(run.pk)
    return Decision.objects.filter(run=run, recipient=recipient).first()


def run_changes(*, user: Any, run: Run) -> QuerySet[DecisionChange]:
    """What changed in `run` since its previous run, for the people the user may see.

    `old_status` is empty for a recipient who is new; `new_status` is empty for one who was in
    the previous run but is no longer (终止 or no longer on the roll as 正常/暂停).
    """
    changes = scope_recipients(DecisionChange.objects.filter(run=run), user)
    return changes.select_related("recipient", "unit").order_by("new_status", "recipient__person_no")
