"""Reads for the web pages: the dashboard, people, units, imports and runs.

Every function that returns people, decisions or units takes the requesting `user` and goes
through `zige.accounts.scoping`, so a unit operator's query only ever touches their own unit.
Lists are querysets, paginated by the views (50 rows a page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from zige.accounts.models import Role
from zige.accounts.scoping import scope_recipients, scope_units, sees_bureau_reviews, unit_scope
from zige.certification import archive
from zige.certification import selectors as certification_selectors
from zige.certification.models import Decision, DecisionChange, Run, RunStatus, Status
from zige.engine.kinds import LOSS_KINDS
from zige.engine.labels import KIND_ZH, REASON_ZH
from zige.feeds import selectors as feeds_selectors
from zige.feeds.models import ImportBatch, ImportReject
from zige.feeds.selectors import KeepRange
from zige.reports import explain
from zige.roster import selectors as roster_selectors
from zige.roster.models import Recipient, RecipientChange, Unit

# Dashboard and unit tables: the order staff read them in (good news first, then work to do).
STATUS_ORDER: tuple[str, ...] = ("eligible", "pending", "review", "suspend", "stop")


# ---------------------------------------------------------------------------------------------
# Runs (the records engineer's selectors, with the pages' filters on top)


def latest_run() -> Run | None:
    """The most recently finished succeeded run: its decisions are the "current" ones."""
    return certification_selectors.latest_run()


def runs_list(*, status: str = "") -> QuerySet[Run]:
    qs = certification_selectors.runs_list()
    return qs.filter(status=status) if status else qs


def run_changes(run: Run, user: Any, *, status: str = "", unit_no: str = "") -> QuerySet[DecisionChange]:
    qs = certification_selectors.run_changes(user=user, run=run)
    if status == "gone":
        qs = qs.filter(new_status="")
    elif status:
        qs = qs.filter(new_status=status)
    if unit_no:
        qs = qs.filter(unit__unit_no=unit_no)
    return qs.order_by("recipient__person_no")


# ---------------------------------------------------------------------------------------------
# Dashboard


@dataclass
class Dashboard:
    run: Run | None
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: list[dict[str, Any]] = field(default_factory=list)  # status, reason, n
    actions: list[dict[str, Any]] = field(default_factory=list)  # action, change, n, months, amount
    units: list[dict[str, Any]] = field(default_factory=list)  # unit_no, name, total, pending, review
    trend: list[dict[str, Any]] = field(default_factory=list)  # per as-of date: run, as_of, counts by status
    remind: int = 0
    failed_run: Run | None = None  # the latest finished run, when it failed (after `run`)


def _sees_everything(user: Any) -> bool:
    """Bureau staff and auditors: the run's stored summary (province-wide) is their view."""
    return getattr(user, "role", "") in (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR)


def _summary_usable(run: Run) -> bool:
    summary = run.summary or {}
    return all(k in summary for k in ("status", "status_reason", "actions", "units", "reminders"))


def dashboard(user: Any, *, top_units: int = 10, trend_runs: int = 12) -> Dashboard:
    """Counts of the latest run for the user's scope, and the status counts of the latest run of
    each of the `trend_runs` latest as-of dates.

    Bureau staff read the summary each run stores (no scan of a province's decisions); a unit
    operator's counts are aggregated from their unit's decisions.
    """
    run = latest_run()
    failed = _failed_latest()
    if run is None:
        return Dashboard(run=None, failed_run=failed)
    board = run_counts(run, user, top_units=top_units)
    board.failed_run = failed
    runs = _trend_runs(trend_runs)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    missing = [r for r in runs if not (_sees_everything(user) and "status" in (r.summary or {}))]
    for r in runs:
        if r not in missing:
            counts[r.pk] = {k: int(v) for k, v in r.summary["status"].items()}
    in_database = [r.pk for r in missing if not r.decisions_archived]
    if in_database:
        rows = scope_recipients(Decision.objects.filter(run__in=in_database), user)
        for row in rows.values("run_id", "status").annotate(n=Count("pk")):
            counts[row["run_id"]][row["status"]] = row["n"]
    archived = [r for r in missing if r.decisions_archived]
    if archived:  # a unit's counts of runs whose decisions are in their Parquet copies only
        counts.update(archive.status_counts(archived, unit_scope(user)))
    board.trend = [{"run": r, "as_of": r.as_of, "counts": counts.get(r.pk, {})} for r in runs]
    return board


def _trend_runs(dates: int) -> list[Run]:
    """One run per as-of date, the latest finished of that date, for the `dates` latest dates,
    oldest first: runs repeated on one date (a re-run after new feeds) would draw that date twice
    on the trend's axis."""
    latest: dict[date, int] = {}
    ordered = Run.objects.filter(status=RunStatus.SUCCEEDED).order_by(
        "-as_of", F("finished_at").desc(nulls_last=True), "-pk"
    )
    for pk, as_of in ordered.values_list("pk", "as_of").iterator():
        if len(latest) == dates:
            break
        latest.setdefault(as_of, pk)
    runs = Run.objects.in_bulk(list(latest.values()))
    return [runs[pk] for pk in reversed(latest.values())]


def _failed_latest() -> Run | None:
    """The latest finished run when it failed (so after the latest succeeded one, which the
    dashboard shows): its Chinese message and collapsed detail are shown above the counts."""
    last = (
        Run.objects.filter(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED], finished_at__isnull=False)
        .order_by("-finished_at", "-pk")
        .first()
    )
    return last if last is not None and last.status == RunStatus.FAILED else None


def run_counts(run: Run, user: Any, *, top_units: int = 10) -> Dashboard:
    """Counts of one run in the user's scope: by status, by status and reason, actions, units."""
    board = Dashboard(run=run)
    if _sees_everything(user) and _summary_usable(run):
        _fill_from_summary(board, run, top_units)
    elif run.decisions_archived:
        _fill_from_archive(board, run, user, top_units)
    else:
        _fill_from_decisions(board, run, user, top_units)
    board.actions = run_payment_actions(run, user)
    board.total = sum(board.by_status.values())
    shares = [u["pending"] * 100 / u["total"] if u["total"] else 0.0 for u in board.units]
    top = max(shares, default=0.0) or 1.0
    for unit, share in zip(board.units, shares, strict=True):
        unit["share"] = f"{share:.1f}%"
        unit["bar"] = share * 100 / top  # the longest bar is the unit with the largest share
    return board


# What a run did to the payment actions, in the order the pages list them (rules §8.6), and how
# the run page and the dashboard name each after the action (`停发（更新待审批）`).
RUN_ACTION_CHANGE_ZH = {
    "proposed": "新提出",
    "revised": "更新待审批",
    "withdrawn": "不再需要，已撤回",
    "held": "超出上限，未提出，待人工复核",
    "held_withdrawn": "超出上限，已撤回原待审批，待人工复核",
}
RUN_ACTION_CHANGES = tuple(RUN_ACTION_CHANGE_ZH)


def run_payment_actions(run: Run, user: Any) -> list[dict[str, Any]]:
    """What a run did to the payment actions (rules §8.6), by kind: the proposals it made
    (`change` "proposed"), the proposals awaiting approval it revised to its figures
    ("revised"), those it withdrew because it no longer calls for them ("withdrawn") and those it
    held for review, their figures beyond the limits ("held") — not the decisions' computed figures, which include people whose action was
    proposed by an earlier run or already paid. Each row: action, change, n, months, amount.

    Bureau staff read what the run recorded in its summary; a unit's rows (and a run from before
    the summary kept them) are read from the payment actions the run proposed and the revisions
    and withdrawals its audit events list, in the user's scope."""
    from zige.benefits.models import ActionSource, PaymentAction
    from zige.benefits.services import RUN_ACTIONS_KEY

    kept = (run.summary or {}).get(RUN_ACTIONS_KEY)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    if _sees_everything(user) and isinstance(kept, dict):
        for change in RUN_ACTION_CHANGES:
            for kind, t in (kept.get(change) or {}).items():
                totals[(kind, change)] = {"n": int(t.get("count", 0)), "months": int(t.get("months", 0)),
                                          "amount": Decimal(str(t.get("amount") or 0))}  # fmt: skip
    else:
        proposed = scope_recipients(
            PaymentAction.objects.filter(run=run, source=ActionSource.RUN, reverses__isnull=True), user
        )
        for row in proposed.values("kind").annotate(
            n=Count("pk"), months=Coalesce(Sum("months"), 0), amount=Sum("amount")
        ):
            totals[(row["kind"], "proposed")] = {"n": row["n"], "months": row["months"],
                                                 "amount": row["amount"] or Decimal("0")}  # fmt: skip
        # A revision's figures are its `after`; a withdrawal's are the record itself.
        for change, action, key in (
            ("revised", "payment_action.revised_by_run", "revisions"),
            ("withdrawn", "payment_action.withdrawn_by_run", "withdrawals"),
        ):
            for r in _run_audit_records(run, action=action, key=key, user=user):
                _tally(totals, (r["kind"], change), r["after"] if change == "revised" else r)
    # Held for review (beyond the limits, not proposed): from the run's audit event, for everyone
    # in the user's scope (the summary keeps only their number); apart, those whose earlier run
    # proposal still awaiting approval the run withdrew (`withdrawn`).
    for r in _run_audit_records(run, action="payment_action.held_by_run", key="held", user=user):
        _tally(totals, (r["kind"], "held_withdrawn" if r.get("withdrawn") else "held"), r)
    return [
        {"action": kind, "change": change, **t}
        for (kind, change), t in sorted(
            totals.items(), key=lambda kv: (kv[0][0], RUN_ACTION_CHANGES.index(kv[0][1]))
        )
    ]


HELD_LIST_LIMIT = 200  # people listed on a run's page; held figures are typing slips, a handful


def run_held_actions(run: Run, user: Any) -> list[dict[str, Any]]:
    """The payment actions a run held for review, one row per person in the user's scope (rules
    §8.6, `payment_action.held_by_run`), for the run page: the person (`person`, a `Recipient`),
    the kind, the held figures and why, and the earlier run proposal it withdrew (`withdrawn`) or
    the action of that kind left on its way (`in_force`: an officer's, a finding's, an approved
    one), by their numbers so that an officer finds them. At most `HELD_LIST_LIMIT`."""
    records = _run_audit_records(run, action="payment_action.held_by_run", key="held", user=user)
    seen: set[tuple[int, str]] = set()
    unique = []
    for r in records:  # a run audits its held actions once; keep one row a person and kind all the same
        if (r["recipient"], r["kind"]) not in seen:
            seen.add((r["recipient"], r["kind"]))
            unique.append(r)
    unique = unique[:HELD_LIST_LIMIT]
    people = Recipient.objects.in_bulk([r["recipient"] for r in unique])
    return [{**r, "person": people[r["recipient"]]} for r in unique if r["recipient"] in people]


def _tally(
    totals: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str], figures: dict[str, Any]
) -> None:
    """Add one audited action's figures (months, amount) to its (kind, change) row."""
    t = totals.setdefault(key, {"n": 0, "months": 0, "amount": Decimal("0")})
    t["n"] += 1
    t["months"] += figures.get("months") or 0
    t["amount"] += Decimal(str(figures.get("amount") or 0))


def _run_audit_records(run: Run, *, action: str, key: str, user: Any) -> list[dict[str, Any]]:
    """The records (each naming its `recipient`) that the run's `action` audit events list under
    `key`, of the people in the user's scope."""
    from zige.audit.models import AuditEvent

    records = [
        r
        for event in AuditEvent.objects.filter(action=action, target_type="run", target_id=str(run.pk))
        for r in (event.after or {}).get(key, [])
    ]
    visible = set(
        scope_recipients(
            Recipient.objects.filter(pk__in={r["recipient"] for r in records}), user
        ).values_list("pk", flat=True)
    )
    return [r for r in records if r["recipient"] in visible]


def _fill_from_summary(board: Dashboard, run: Run, top_units: int) -> None:
    summary = run.summary
    board.by_status = {k: int(v) for k, v in summary["status"].items() if v}
    rows = []
    for key, n in summary["status_reason"].items():
        status, _, reason = key.partition("/")
        rows.append({"status": status, "reason": reason, "n": int(n)})
    board.by_reason = sorted(rows, key=lambda r: (-r["n"], r["status"], r["reason"]))
    board.remind = int(summary["reminders"].get("total", 0))
    units = []
    for u in summary["units"].get("top", []):
        counts = u.get("status", {})
        pending, review = int(counts.get("pending", 0)), int(counts.get("review", 0))
        if pending + review:
            units.append({"unit_no": u.get("unit_no", ""), "name": u.get("name", ""), "total": u.get("total", 0),
                          "pending": pending, "review": review})  # fmt: skip
    board.units = units[:top_units]


def _fill_from_decisions(board: Dashboard, run: Run, user: Any, top_units: int) -> None:
    decisions = scope_recipients(Decision.objects.filter(run=run), user)
    for row in decisions.values("status").annotate(n=Count("pk")):
        board.by_status[row["status"]] = row["n"]
    board.by_reason = list(
        decisions.values("status", "reason").annotate(n=Count("pk")).order_by("-n", "status", "reason")
    )
    board.remind = decisions.filter(remind=True).count()
    units = (
        decisions.values("unit_id")
        .annotate(
            unit_no=F("unit__unit_no"),
            name=F("unit__name"),
            total=Count("pk"),
            pending=Count("pk", filter=Q(status="pending")),
            review=Count("pk", filter=Q(status="review")),
            work=Count("pk", filter=Q(status__in=("pending", "review"))),
        )
        .filter(work__gt=0)
        .order_by("-work", "unit__unit_no")[:top_units]
    )
    board.units = list(units)


def _fill_from_archive(board: Dashboard, run: Run, user: Any, top_units: int) -> None:
    """`_fill_from_decisions` for an archived run: the same counts from its Parquet copy, for
    the rows of the user's scope."""
    found = archive.counts(run, unit_scope(user), top_units=top_units)
    board.by_status, board.by_reason, board.remind = found.by_status, found.by_reason, found.remind
    names = Unit.objects.in_bulk([u["unit_id"] for u in found.units])
    board.units = [
        {**u, "unit_no": names[u["unit_id"]].unit_no, "name": names[u["unit_id"]].name}
        for u in found.units
        if u["unit_id"] in names
    ]


def reason_text(reason: str) -> str:
    """A reason code in Chinese; an eligible person's reason is the kind of their evidence."""
    return REASON_ZH.get(reason) or KIND_ZH.get(reason) or reason


def chart_options(board: Dashboard, *, top_reasons: int = 12) -> dict[str, Any]:
    """Data for the dashboard's charts (passed to the page with `json_script`).

    Reasons: the `top_reasons` largest, the rest summed as 其他; each bar is coloured by the
    status the reason belongs to. Trend: per as-of date (its latest run), the counts of each
    status and the share of 具备资格 (one decimal).
    """
    reasons: dict[tuple[str, str], int] = defaultdict(int)
    for row in board.by_reason:
        reasons[(reason_text(row["reason"]), row["status"])] += row["n"]
    ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    shown, rest = ranked[:top_reasons], ranked[top_reasons:]
    if rest:
        shown.append((("其他", ""), sum(n for _, n in rest)))
    shown.reverse()  # ECharts draws a category axis bottom-up: the largest bar on top
    trend_totals = [sum(t["counts"].values()) for t in board.trend]
    return {
        "statusLabels": {s.value: s.label for s in Status},
        "reasons": {
            "labels": [label for (label, _), _ in shown],
            "values": [n for _, n in shown],
            "statuses": [status for (_, status), _ in shown],
        },
        "trend": {
            "labels": [t["as_of"].isoformat() for t in board.trend],
            "series": {s: [t["counts"].get(s, 0) for t in board.trend] for s in STATUS_ORDER},
            "eligibleShare": [
                round(t["counts"].get("eligible", 0) * 100 / total, 1) if total else None
                for t, total in zip(board.trend, trend_totals, strict=True)
            ],
        },
    }


# ---------------------------------------------------------------------------------------------
# People


class PeopleWithDecisions:
    """People to paginate by 个人编号 (`paginate` takes it like a queryset), each with their
    decision in `run` (`cur_status`, `cur_reason`, `cur_due_on`: see `with_current_decision`).

    A page is one query: the page's people are chosen by a subquery on the roll alone (the filter,
    the order and the cut), and only they are joined to their unit and their decision. Joining
    every matching person before sorting and cutting the page out made a search for the 47,000
    people named 王 take 0.3 s on SQLite at 500,000 people. `count()` is on the roll alone too.
    """

    def __init__(self, people: QuerySet[Recipient], run: Run | None) -> None:
        self.people = people.order_by("person_no")
        self.run = run

    def count(self) -> int:
        return self.people.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[Recipient]:
        chosen = Recipient.objects.filter(pk__in=self.people.values("pk")[index]).select_related("unit")
        return list(with_current_decision(chosen, self.run).order_by("person_no"))


def with_current_decision(qs: QuerySet[Recipient], run: Run | None, status: str = "") -> QuerySet[Recipient]:
    """Recipients annotated with their decision in `run` (a LEFT JOIN: someone new to the roll has
    none), optionally only those with decision `status` (`none`: no decision in `run`)."""
    if run is None:
        qs = qs.annotate(cur_status=Value(None), cur_reason=Value(None), cur_due_on=Value(None))
        return qs.none() if status and status != "none" else qs
    qs = qs.annotate(cur=FilteredRelation("decisions", condition=Q(decisions__run=run))).annotate(
        cur_status=F("cur__status"), cur_reason=F("cur__reason"), cur_due_on=F("cur__due_on")
    )
    if status == "none":
        return qs.filter(Q(cur_status__isnull=True))
    if status:
        return qs.filter(Q(cur_status=status))
    return qs


def _people(qs: QuerySet[Recipient], status: str, *, narrowed: bool) -> PeopleWithDecisions:
    """With their decision in the latest run; `status` keeps only those with that decision
    (`none`: without one).

    How `status` is applied depends on `narrowed`, whether `qs` already keeps few people (one
    unit, a name): then each is checked through the unique index of run and person (EXISTS).
    Otherwise the people are joined to the decisions of that status. On 500,000 people SQLite,
    which keeps no statistics, starts a join from the decisions: 0.2 s to count one unit's
    `eligible` people (4 ms with EXISTS), while for the whole roll the join is the faster way.
    """
    run = latest_run()
    if status and narrowed and run is not None:
        decided = Decision.objects.filter(run=run, recipient=OuterRef("pk"))
        if status == "none":
            qs = qs.filter(~Exists(decided))
        else:
            qs = qs.filter(Exists(decided.filter(status=status)))
    elif status:
        qs = with_current_decision(qs, run, status)
    return PeopleWithDecisions(qs, run)


def search_recipients(user: Any, q: str, *, status: str = "", unit_no: str = "") -> PeopleWithDecisions:
    """People by 个人编号, full ID number (18 or 15 digits) or name (whole or leading characters)."""
    qs = scope_recipients(Recipient.objects.all(), user)
    text = roster_selectors.normalise_query(q)
    if text:
        ids = roster_selectors.id_candidates(text)
        if ids:
            qs = qs.filter(Q(id_number__in=ids) | Q(person_no=text))
        else:
            qs = qs.filter(Q(person_no=text) | roster_selectors.name_prefix(text))
    if unit_no:
        qs = qs.filter(unit__unit_no=unit_no)
    return _people(qs, status, narrowed=bool(text or unit_no))


def decision_history(recipient: Recipient, user: Any) -> list[Decision]:
    """Every decision about the person in the runs kept in the database, newest run first."""
    return list(certification_selectors.decision_history(user=user, recipient=recipient))


def archived_history(recipient: Recipient, user: Any) -> list[certification_selectors.ArchivedSpan]:
    """The person's decisions in archived runs, as spans of runs with the same result."""
    return certification_selectors.archived_history(user=user, recipient=recipient)


def roster_changes(recipient: Recipient, user: Any) -> list[RecipientChange]:
    return list(roster_selectors.recipient_history(user=user, recipient=recipient))


def evidence_for(
    recipient: Recipient, *, limit: int | None = None, keep: Sequence[KeepRange] = ()
) -> list[dict[str, Any]]:
    """The person's records in the evidence store and pushed results, newest first. A loss
    record or declaration of missing that a review's alive finding cleared (docs/rules.md §8.5)
    carries `cleared_by`: the review task's number (runs no longer count it). The loss record of
    a bureau death finding that a later one superseded (its `unit_confirm` 丧失资格 row, §8.5: the
    latest finding wins) carries `superseded_by`: the later finding's task (runs no longer
    count it either). `limit`, `keep`: the newest records only, and the ones that decide
    (`feeds.selectors.evidence_for_person`, `deciding_ranges`)."""
    from zige.verification.selectors import alive_findings, superseded_findings

    records = feeds_selectors.evidence_for_person(id_number=recipient.id_number, limit=limit, keep=keep)
    finding = alive_findings(recipient_id=recipient.pk).get(recipient.pk)
    if finding is not None:
        day, task = finding
        for record in records:
            if record["record_kind"] in _CLEARABLE and record["date"] <= day:
                record["cleared_by"] = task
    superseded = {
        f.death_date: f.superseded_by
        for f in superseded_findings(recipient_id=recipient.pk).get(recipient.pk, [])
    }
    for record in records:
        if record["record_kind"] == "unit_confirmed_lost" and record["date"] in superseded:
            record["superseded_by"] = superseded[record["date"]]
    return records


def evidence_visible(
    recipient: Recipient, user: Any, *, limit: int | None = None, keep: Sequence[KeepRange] = ()
) -> list[dict[str, Any]]:
    """`evidence_for` as the user may see it: without the bureau's 疑点核查 findings for a user
    who may not see the bureau's reviews (`scoping.sees_bureau_reviews`: a unit operator) —
    neither the `unit_confirm` row a 确认死亡 / 疑似冒领 wrote (「社保局疑点核查疑似冒领，核查任务#12」)
    nor the mark of a 确认健在 that cleared a record (the review task's number)."""
    records = evidence_for(recipient, limit=limit, keep=keep)
    if sees_bureau_reviews(user):
        return records
    shown = []
    for record in records:
        if record.get("kind") == "unit_confirm" and explain.is_bureau_finding(record):
            continue
        shown.append({k: v for k, v in record.items() if k not in ("cleared_by", "superseded_by")})
    return shown


def evidence_total(recipient: Recipient, user: Any) -> int:
    """How many evidence records of the person `user` may see (`evidence_visible` without a
    limit), counted in SQL."""
    return feeds_selectors.evidence_count_for_person(
        id_number=recipient.id_number, without_bureau_findings=not sees_bureau_reviews(user)
    )


# The first day a kept range of loss records starts on (older days cannot be stored anyway).
_EARLIEST = date(1900, 1, 1)


def deciding_ranges(decision: Decision | None) -> list[KeepRange]:
    """The records that decide `decision`, as `evidence_for(keep=...)` takes them: the record it
    names (`deciding_record`: its kind and day) and, for a 疑点核查, every record of the kinds the
    alive evidence contradicts up to the run's date (`contradicted_record` takes the earliest)."""
    if decision is None:
        return []
    ranges: list[KeepRange] = []
    if decision.evidence_kind and decision.evidence_date is not None:
        ranges.append((decision.evidence_kind, decision.evidence_date, decision.evidence_date))
    if decision.status == "review":
        as_of = decision.run.as_of
        ranges.extend((kind, _EARLIEST, as_of) for kind in _CONTRADICTED.get(decision.reason, ()))
    return ranges


# The record kinds an alive finding clears: the losses and the declaration of missing.
_CLEARABLE = frozenset((*LOSS_KINDS, "declared_missing"))


def _sort_day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value or "")


def deciding_record(decision: Decision | None, evidence: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record a decision names (same kind and day), if the evidence store has it."""
    if decision is None or not decision.evidence_kind or decision.evidence_date is None:
        return None
    day = decision.evidence_date.isoformat()
    for row in evidence:
        kinds = {row.get("record_kind"), row.get("kind")}
        if decision.evidence_kind in kinds and _sort_day(row.get("date"))[:10] == day:
            return row
    return None


_CONTRADICTED: dict[str, tuple[str, ...]] = {
    "alive_after_death": ("death", "cremation", "declared_dead", "unit_confirmed_lost"),
    "alive_after_lost": ("death", "cremation", "declared_dead", "unit_confirmed_lost"),
    "alive_after_missing": ("declared_missing",),
}


def contradicted_record(decision: Decision | None, evidence: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For a 疑点核查 decision: the earliest loss (or 宣告失踪) record on or before the run's date,
    the one the later alive evidence contradicts (spec §2.1)."""
    if decision is None or decision.status != "review":
        return None
    kinds = _CONTRADICTED.get(decision.reason, ())
    as_of = decision.run.as_of.isoformat()
    found = [r for r in evidence if r.get("record_kind") in kinds and _sort_day(r.get("date"))[:10] <= as_of]
    return min(found, key=lambda r: (_sort_day(r.get("date")), kinds.index(r["record_kind"])), default=None)


def timeline(
    decisions: list[Decision],
    evidence: list[dict[str, Any]],
    changes: list[RecipientChange],
    archived: list[certification_selectors.ArchivedSpan] | None = None,
) -> list[dict[str, Any]]:
    """Evidence, decisions (of the runs in the database, and of archived runs as spans with the
    same result) and roster changes on one line, newest first."""
    items: list[dict[str, Any]] = []
    for row in evidence:
        items.append({"type": "evidence", "day": _sort_day(row.get("date"))[:10], "record": row})
    for d in decisions:
        items.append({"type": "decision", "day": d.run.as_of.isoformat(), "decision": d})
    for span in archived or []:
        items.append(
            {"type": "decision", "day": span.first.as_of.isoformat(), "decision": span.decision, "span": span}
        )
    for c in changes:
        items.append({"type": "change", "day": c.changed_at.date().isoformat(), "change": c})
    order = {"decision": 0, "change": 1, "evidence": 2}
    items.sort(key=lambda i: (i["day"], -order[i["type"]]), reverse=True)
    return items


# ---------------------------------------------------------------------------------------------
# Units


def units_list(user: Any, *, q: str = "", order: str = "") -> QuerySet[Unit]:
    run = latest_run()
    qs = scope_units(Unit.objects.all(), user)
    text = roster_selectors.normalise_query(q)
    if text:
        qs = qs.filter(Q(unit_no__startswith=text) | Q(name__contains=text))

    def count(**cond: Any) -> Subquery:
        rows = Decision.objects.filter(run=run, unit=OuterRef("pk"), **cond)
        return Subquery(rows.order_by().values("unit").annotate(n=Count("pk")).values("n")[:1])

    people = (
        Recipient.objects.filter(unit=OuterRef("pk"))
        .order_by()
        .values("unit")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    qs = qs.annotate(people=Coalesce(Subquery(people), 0))
    if run is not None:
        qs = qs.annotate(
            pending=Coalesce(count(status="pending"), 0),
            review=Coalesce(count(status="review"), 0),
            suspend=Coalesce(count(status="suspend"), 0),
            stop=Coalesce(count(status="stop"), 0),
        )
    if order == "pending" and run is not None:
        qs = qs.order_by("-pending", "-review", "unit_no")
    elif order == "people":
        qs = qs.order_by("-people", "unit_no")
    else:
        qs = qs.order_by("unit_no")
    return cast("QuerySet[Unit]", qs)


def unit_status_counts(unit: Unit, run: Run | None) -> dict[str, int]:
    if run is None:
        return {}
    rows = Decision.objects.filter(run=run, unit=unit).values("status").annotate(n=Count("pk"))
    return {r["status"]: r["n"] for r in rows}


def unit_people(unit: Unit, user: Any, *, status: str = "", q: str = "") -> PeopleWithDecisions:
    qs = scope_recipients(Recipient.objects.filter(unit=unit), user)
    text = roster_selectors.normalise_query(q)
    if text:
        match = Q(person_no=text) | roster_selectors.name_prefix(text)
        if ids := roster_selectors.id_candidates(text):
            match |= Q(id_number__in=ids)
        qs = qs.filter(match)
    return _people(qs, status, narrowed=True)


# ---------------------------------------------------------------------------------------------
# Imports


def imports_list(user: Any, *, kind: str = "", status: str = "") -> QuerySet[ImportBatch]:
    return feeds_selectors.imports_list(user=user, kind=kind or None, status=status or None)


def import_kinds() -> list[str]:
    return list(ImportBatch.objects.order_by("kind").values_list("kind", flat=True).distinct())


def rejects_for(batch: ImportBatch, *, reason: str = "") -> QuerySet[ImportReject]:
    qs = feeds_selectors.rejects_for(batch=batch)
    return qs.filter(reason=reason) if reason else qs


def reject_reasons(batch: ImportBatch) -> list[dict[str, Any]]:
    return list(batch.rejects.values("reason").annotate(n=Count("pk")).order_by("-n", "reason"))


@dataclass(frozen=True)
class WorkItem:
    """One queue of the dashboard's 待办 strip: what waits for someone, and where to do it."""

    label: str
    count: int
    url: str
    urgent: bool = False


def work_queue(user: Any, *, today: date) -> list[WorkItem]:
    """What waits for a person, so that nothing falls through (notice 三): for a unit operator
    their unit's tasks; for bureau staff and auditors the review queue, overdue tasks, what
    awaits a second person (payment actions, write-offs, recorded refunds, blacklist removals),
    export batches awaiting the payment system, refunds owed to people whose stop was reversed,
    open recovery and fraud cases. Counts only: each is one indexed query."""
    from django.urls import reverse

    from zige.benefits.models import (
        ActionState,
        BatchState,
        Blacklist,
        BlacklistStatus,
        ExportBatch,
        FraudCase,
        FraudStatus,
        PaymentAction,
        RecoveryCase,
        RecoveryStatus,
    )
    from zige.verification.models import AWAITING_UNIT
    from zige.verification.selectors import DUE_SOON_DAYS, tasks_visible

    tasks = tasks_visible(user=user)
    tasks_url = reverse("verification:list")
    if getattr(user, "role", "") == "unit_operator":
        tasks = tasks.filter(kind="unit")  # review tasks are the bureau's to resolve
        waiting = tasks.filter(status__in=AWAITING_UNIT)
        return [
            WorkItem("待核实", waiting.count(), tasks_url),
            WorkItem(
                f"{DUE_SOON_DAYS} 天内到期",
                waiting.filter(deadline__lte=today + timedelta(days=DUE_SOON_DAYS)).count(),
                tasks_url,
                urgent=True,
            ),
            WorkItem(
                "已退回待重报", tasks.filter(status="returned").count(), f"{tasks_url}?status=returned", True
            ),
            WorkItem("已逾期", tasks.filter(status="overdue").count(), f"{tasks_url}?status=overdue", True),
        ]
    open_recovery = (RecoveryStatus.OPEN, RecoveryStatus.NOTIFIED, RecoveryStatus.REPAYING)

    def recoveries_in(label: str, status: str, *, urgent: bool = False) -> WorkItem:
        """The recovery cases in one state, linked to the list filtered to it."""
        count = RecoveryCase.objects.filter(status=status).count()
        return WorkItem(label, count, f"{reverse('benefits:recoveries')}?status={status}", urgent)

    return [
        WorkItem("单位上报待审核", tasks.filter(status="submitted").count(), reverse("verification:queue")),
        WorkItem(
            "疑点核查待处理",
            tasks.filter(kind="review", status__in=("open", "overdue")).count(),
            f"{tasks_url}?kind=review",
        ),
        WorkItem(
            "核实任务已逾期", tasks.filter(status="overdue").count(), f"{tasks_url}?status=overdue", True
        ),
        WorkItem(
            "待遇处理待审批",
            PaymentAction.objects.filter(state=ActionState.PROPOSED).count(),
            f"{reverse('benefits:actions')}?state=proposed",
        ),
        WorkItem(
            "已审批待导出",
            PaymentAction.objects.filter(state=ActionState.APPROVED).count(),
            reverse("benefits:batches"),
        ),
        WorkItem(
            "导出待支付确认",
            ExportBatch.objects.filter(state=BatchState.EXPORTED).count(),
            reverse("benefits:batches"),
        ),
        recoveries_in("核销待审批", RecoveryStatus.WRITE_OFF_PROPOSED),
        # money owed back to a person found alive: paid late, it is a second harm
        recoveries_in("停发撤销待返还", RecoveryStatus.REFUND_DUE, urgent=True),
        recoveries_in("返还待复核", RecoveryStatus.REFUND_RECORDED),
        WorkItem(
            "追回中案件",
            RecoveryCase.objects.filter(status__in=open_recovery).count(),
            reverse("benefits:recoveries"),
        ),
        WorkItem(
            "冒领案件未结",
            FraudCase.objects.filter(status__in=(FraudStatus.OPEN, FraudStatus.FINED)).count(),
            reverse("benefits:frauds"),
        ),
        WorkItem(
            "移出黑名单待审批",
            Blacklist.objects.filter(status=BlacklistStatus.REMOVAL_PROPOSED).count(),
            f"{reverse('benefits:blacklist')}?view=pending",
        ),
    ]
