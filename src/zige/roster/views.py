"""People and units: search, the person page, the unit list and the unit page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from zige.accounts.models import Role
from zige.accounts.scoping import can_reveal, scope_recipients, scope_units
from zige.benefits.limits import beyond_limits
from zige.benefits.models import ActionKind
from zige.benefits.selectors import cases_of_person, live_actions_of
from zige.reports import selectors
from zige.reports.explain import explain_decision
from zige.reports.pages import RECORDS_ROLES, paginate, param, people_view
from zige.roster.models import Recipient, Unit
from zige.verification.selectors import tasks_of_person, unit_deadline

# How many evidence records the person page loads (the newest; ?evidence=all loads every one).
PERSON_EVIDENCE_LIMIT = 200

STATUS_FILTERS = (*selectors.STATUS_ORDER, "none")


@people_view
def search(request: HttpRequest) -> HttpResponse:
    q = param(request, "q")
    status = param(request, "status", STATUS_FILTERS)
    unit_no = param(request, "unit")
    searched = bool(q or status or unit_no)
    page = paginate(request, selectors.search_recipients(request.user, q, status=status, unit_no=unit_no))
    return render(
        request,
        "roster/search.html",
        {
            "q": q,
            "status": status,
            "unit_no": unit_no,
            "page": page,
            "searched": searched,
            "statuses": selectors.STATUS_ORDER,
            "nav": "search",
        },
    )


@people_view
def person(request: HttpRequest, person_no: str) -> HttpResponse:
    recipient = get_object_or_404(
        scope_recipients(Recipient.objects.select_related("unit"), request.user), person_no=person_no
    )
    decisions = selectors.decision_history(recipient, request.user)
    latest = selectors.latest_run()
    current = decisions[0] if decisions and latest and decisions[0].run_id == latest.pk else None
    # The newest PERSON_EVIDENCE_LIMIT records (and those deciding the current decision, however
    # old) unless ?evidence=all: a person with very many records loads only those.
    show_all = request.GET.get("evidence") == "all"
    limit = None if show_all else PERSON_EVIDENCE_LIMIT
    evidence = selectors.evidence_visible(
        recipient, request.user, limit=limit, keep=selectors.deciding_ranges(current)
    )
    evidence_count = len(evidence)
    if limit is not None:  # a COUNT (for a unit operator, the bureau's findings it hides may be cut)
        evidence_count = max(evidence_count, selectors.evidence_total(recipient, request.user))
    record = selectors.deciding_record(current, evidence)
    explanation = ""
    if current is not None:
        earlier = selectors.contradicted_record(current, evidence)
        deadline = (
            unit_deadline(recipient_id=recipient.pk, as_of=current.run.as_of)
            if current.status == "pending"
            else None
        )
        explanation = explain_decision(
            current, record, as_of=current.run.as_of, earlier=earlier, deadline=deadline
        )
    # The payment actions as the approval queue has them, and the run's figures past the limits
    # (held for review, not proposed: docs/payments.md): bureau pages only.
    bureau = getattr(request.user, "role", "") in RECORDS_ROLES
    payment_actions = live_actions_of(recipient.pk) if bureau else []
    recoveries, frauds = cases_of_person(recipient.pk) if bureau else ([], [])
    held_why = (
        beyond_limits(months=current.months, amount=current.amount)
        if bureau and current is not None and current.action in ActionKind.values
        else ""
    )
    return render(
        request,
        "roster/person.html",
        {
            "person": recipient,
            "current": current,
            "record": record,
            "explanation": explanation,
            "payment_actions": payment_actions,
            "tasks": tasks_of_person(user=request.user, recipient_id=recipient.pk),
            "recoveries": recoveries,
            "frauds": frauds,
            "held_why": held_why,
            "latest_run": latest,
            "timeline": selectors.timeline(
                decisions,
                evidence,
                selectors.roster_changes(recipient, request.user),
                selectors.archived_history(recipient, request.user),
            ),
            "evidence_count": evidence_count,
            "evidence_more": evidence_count - len(evidence),
            "evidence_limit": PERSON_EVIDENCE_LIMIT,
            "can_reveal": can_reveal(request.user),
            "nav": "search",
        },
    )


@people_view
def units(request: HttpRequest) -> HttpResponse:
    if getattr(request.user, "role", "") == Role.UNIT_OPERATOR:
        unit = get_object_or_404(scope_units(Unit.objects.all(), request.user))
        return redirect("roster:unit", unit_no=unit.unit_no)
    q = param(request, "q")
    order = param(request, "order", ("pending", "people"))
    page = paginate(request, selectors.units_list(request.user, q=q, order=order))
    return render(
        request,
        "roster/units.html",
        {"page": page, "q": q, "order": order, "latest_run": selectors.latest_run(), "nav": "units"},
    )


@people_view
def unit(request: HttpRequest, unit_no: str) -> HttpResponse:
    obj = get_object_or_404(scope_units(Unit.objects.all(), request.user), unit_no=unit_no)
    status = param(request, "status", STATUS_FILTERS)
    q = param(request, "q")
    run = selectors.latest_run()
    counts = selectors.unit_status_counts(obj, run)
    page = paginate(request, selectors.unit_people(obj, request.user, status=status, q=q))
    return render(
        request,
        "roster/unit.html",
        {
            "unit": obj,
            "page": page,
            "status": status,
            "q": q,
            "latest_run": run,
            "counts": counts,
            "total": sum(counts.values()),
            "statuses": selectors.STATUS_ORDER,
            "nav": "units",
        },
    )
