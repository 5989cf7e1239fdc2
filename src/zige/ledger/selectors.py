"""Reads of the ledger: who is in a special group, who was visited, other-province residents.

Notice 三(二)1: 各单位要对高龄、高危、行动不便且无法使用APP认证的特殊群体建立服务台账.
Very old (高龄) is computed from the birth date in the 18-digit ID number (characters 7-14,
YYYYMMDD) at the as-of date: a person is very old from their `very_old_age`-th birthday on (the
birthday itself counts; someone born on 29 February reaches it on 1 March of a common year).
The comparison is made on the text YYYYMMDD in the database, so a province is one query.

Notice 三(二)3: 外省户籍人员（身份证不是山西省且没有办理社保卡的人员）— the same rule as
`out_of_province.xlsx` of `zige certify` (docs/rules.md §6.1): the ID's first two digits are not
the home province's and 是否办理社保卡 is 否. Terminated (终止) recipients are in neither list.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Substr
from django.shortcuts import get_object_or_404
from django.utils import timezone

from zige.accounts.scoping import scope_by_unit_field, scope_recipients, scope_units
from zige.certification.models import Decision
from zige.certification.selectors import latest_run
from zige.feeds import store
from zige.feeds.models import PushedResult
from zige.ledger.config import LedgerConfig, current
from zige.ledger.models import (
    MARKABLE_GROUPS,
    Group,
    HomeVisit,
    OtherProvinceExport,
    OtherProvinceExportRow,
    SpecialMark,
)
from zige.roster.models import BenefitStatus, Recipient, Unit
from zige.roster.selectors import person_matches

# ---------------------------------------------------------------------------------------------
# Very old


def very_old_cutoff(as_of: date, age: int) -> str:
    """The latest birth date (YYYYMMDD text) of a person who is `age` or older on `as_of`.

    Compared as text, so 29 February of a common year is fine: born 1946-02-28 is 80 on
    2026-02-28, born 1944-02-29 reaches 82 on 2026-03-01 (20260228 -> cutoff 19440228 < 19440229).
    """
    return f"{as_of.year - age:04d}{as_of.month:02d}{as_of.day:02d}"


def birth_text(id_number: str) -> str:
    return id_number[6:14] if len(id_number) == 18 else ""


def is_very_old(id_number: str, *, as_of: date, config: LedgerConfig | None = None) -> bool:
    cfg = config or current()
    birth = birth_text(id_number)
    return bool(birth) and birth <= very_old_cutoff(as_of, cfg.very_old_age)


def _active_marks(as_of: date) -> QuerySet[SpecialMark]:
    return SpecialMark.objects.filter(removed_at__isnull=True, since__lte=as_of)


def _in_scope_recipients() -> QuerySet[Recipient]:
    return Recipient.objects.exclude(benefit_status=BenefitStatus.TERMINATED)


def _members(qs: QuerySet[Recipient], *, as_of: date, cfg: LedgerConfig) -> QuerySet[Recipient]:
    """Recipients in any special group on `as_of`, annotated with very_old, high_risk, immobile."""
    marks = _active_marks(as_of).filter(recipient=OuterRef("pk"))
    return (
        qs.annotate(
            birth=Substr("id_number", 7, 8),
            high_risk=Exists(marks.filter(group=Group.HIGH_RISK)),
            immobile=Exists(marks.filter(group=Group.IMMOBILE)),
        )
        .annotate(
            very_old=ExpressionWrapper(
                Q(birth__lte=very_old_cutoff(as_of, cfg.very_old_age)), output_field=BooleanField()
            )
        )
        .filter(Q(very_old=True) | Q(high_risk=True) | Q(immobile=True))
    )


def special_group_ids(*, unit: Unit | None = None, as_of: date) -> set[int]:
    """Ids of the recipients in any special group (very old, high-risk, immobile) on `as_of`.

    Used by other parts of the system (verification: who needs on-site evidence). Not scoped to
    a user: callers decide who may see the people."""
    qs = _in_scope_recipients()
    if unit is not None:
        qs = qs.filter(unit=unit)
    return set(_members(qs, as_of=as_of, cfg=current()).values_list("pk", flat=True))


def groups_of(*, recipient: Recipient, as_of: date) -> list[str]:
    """The special groups a person is in on `as_of`, in the order of `Group`."""
    groups = [Group.VERY_OLD.value] if is_very_old(recipient.id_number, as_of=as_of) else []
    marked = set(_active_marks(as_of).filter(recipient=recipient).values_list("group", flat=True))
    return groups + [g for g in MARKABLE_GROUPS if g in marked]


def needs_onsite_evidence(*, recipient: Recipient, as_of: date) -> bool:
    """Notice 三(一)2: 仍具备领取养老金资格但无法通过手机APP认证的特殊人员，应上报现场确认图片
    或视频等佐证资料和书面确认材料. zige treats everyone in a special group of the ledger (三(二)1:
    高龄、高危、行动不便) as such a person: their unit's confirmation needs an on-site photo or
    video and a written confirmation."""
    if recipient.benefit_status == BenefitStatus.TERMINATED:
        return False
    return bool(groups_of(recipient=recipient, as_of=as_of))


# ---------------------------------------------------------------------------------------------
# The ledger of a unit


@dataclass
class LedgerCounts:
    total: int = 0
    very_old: int = 0
    high_risk: int = 0
    immobile: int = 0
    visited: int = 0

    @property
    def not_visited(self) -> int:
        return self.total - self.visited


def _with_visits(qs: QuerySet[Recipient], *, as_of: date, start: date) -> QuerySet[Recipient]:
    visits = HomeVisit.objects.filter(recipient=OuterRef("pk"), visited_on__range=(start, as_of))
    return qs.annotate(visited=Exists(visits))


_COUNTS = {
    "total": Count("pk"),
    "very_old": Count("pk", filter=Q(very_old=True)),
    "high_risk": Count("pk", filter=Q(high_risk=True)),
    "immobile": Count("pk", filter=Q(immobile=True)),
    "visited": Count("pk", filter=Q(visited=True)),
}


def unit_get(*, user: Any, unit_no: str) -> Unit:
    """A unit the user may see (another unit's: 404)."""
    unit: Unit = get_object_or_404(scope_units(Unit.objects.all(), user), unit_no=unit_no)
    return unit


def ledger_people(
    *, user: Any, unit: Unit, as_of: date, group: str = "", not_visited: bool = False
) -> QuerySet[Recipient]:
    """The unit's special-group members with their groups, last visit (up to `as_of`) and whether
    they were visited in the period, by 个人编号."""
    cfg = current()
    start = cfg.period_start(as_of)
    qs = scope_recipients(_in_scope_recipients().filter(unit=unit), user)
    qs = _with_visits(_members(qs, as_of=as_of, cfg=cfg), as_of=as_of, start=start).annotate(
        last_visit=Max("home_visits__visited_on", filter=Q(home_visits__visited_on__lte=as_of))
    )
    if group in (g.value for g in Group):
        qs = qs.filter(**{group: True})
    if not_visited:
        qs = qs.filter(Q(visited=False))
    return qs.order_by("person_no")


def ledger_counts(*, user: Any, unit: Unit, as_of: date) -> LedgerCounts:
    cfg = current()
    qs = scope_recipients(_in_scope_recipients().filter(unit=unit), user)
    qs = _with_visits(_members(qs, as_of=as_of, cfg=cfg), as_of=as_of, start=cfg.period_start(as_of))
    # Grouped by unit (one row): aggregate() prunes the annotations its FILTERs name from its
    # subquery (Django 5.2), and SQLite then reads "very_old" as a string: every count 0.
    rows = list(qs.values("unit_id").annotate(**_COUNTS).order_by())
    counts = LedgerCounts()
    for row in rows:
        for name in _COUNTS:
            setattr(counts, name, getattr(counts, name) + row[name])
    return counts


@dataclass
class UnitLedgerRow:
    unit: Unit
    counts: LedgerCounts


def ledger_units(*, user: Any, as_of: date, only_not_visited: bool = False) -> list[UnitLedgerRow]:
    """Per unit (the bureau's view): members of special groups, visited, not visited; the units
    with most people not visited first. One grouped query for the whole province."""
    cfg = current()
    qs = scope_recipients(_in_scope_recipients(), user)
    qs = _with_visits(_members(qs, as_of=as_of, cfg=cfg), as_of=as_of, start=cfg.period_start(as_of))
    rows = list(qs.values("unit_id").annotate(**_COUNTS).order_by())
    units = Unit.objects.in_bulk([r["unit_id"] for r in rows])
    out = [UnitLedgerRow(unit=units[r.pop("unit_id")], counts=LedgerCounts(**r)) for r in rows]
    if only_not_visited:
        out = [r for r in out if r.counts.not_visited]
    out.sort(key=lambda r: (-r.counts.not_visited, r.unit.unit_no))
    return out


def person_get(*, user: Any, person_no: str) -> Recipient:
    """A person the user may see (another unit's: 404)."""
    recipient: Recipient = get_object_or_404(
        scope_recipients(Recipient.objects.select_related("unit"), user), person_no=person_no
    )
    return recipient


def person_marks(*, recipient: Recipient) -> QuerySet[SpecialMark]:
    return recipient.special_marks.select_related("marked_by", "removed_by").order_by(
        "removed_at", "-since", "-pk"
    )


def person_visits(*, recipient: Recipient) -> QuerySet[HomeVisit]:
    return recipient.home_visits.select_related("recorded_by", "unit").order_by("-visited_on", "-pk")


def visit_get(*, user: Any, pk: int) -> HomeVisit:
    qs = scope_by_unit_field(HomeVisit.objects.select_related("recipient"), user, "recipient__unit_id")
    visit: HomeVisit = get_object_or_404(qs, pk=pk)
    return visit


def mark_get(*, user: Any, pk: int) -> SpecialMark:
    qs = scope_by_unit_field(SpecialMark.objects.select_related("recipient"), user, "recipient__unit_id")
    mark: SpecialMark = get_object_or_404(qs, pk=pk)
    return mark


# ---------------------------------------------------------------------------------------------
# Other-province residents (附件2)


def other_province_q(cfg: LedgerConfig) -> Q:
    return ~Q(id_number__startswith=cfg.home_province) & Q(has_social_card="no")


def other_province_people(*, config: LedgerConfig | None = None) -> QuerySet[Recipient]:
    """Everyone 附件2 lists today, straight from the roster (so the list is never stale)."""
    cfg = config or current()
    return (
        _in_scope_recipients()
        .filter(other_province_q(cfg))
        .select_related("unit")
        .order_by("unit__unit_no", "person_no")
    )


@dataclass(frozen=True)
class ListedPerson:
    """The fields of a recipient the other-province page shows (no model instances: ten
    thousand of them cost more than the query)."""

    pk: int
    person_no: str
    name: str
    id_number: str
    residence_region: str
    unit_no: str


def residence_code(recipient: Recipient | ListedPerson) -> str:
    """居住地行政区划 as 附件2 writes it: the roster's code cut to 6 digits, or the ID's region."""
    digits = "".join(ch for ch in recipient.residence_region if ch.isdigit())
    return digits[:6] if len(digits) >= 6 else recipient.id_number[:6]


@dataclass(frozen=True)
class RemoteStatus:
    last_date: date | None = None
    last_result: str = ""  # pass / fail
    last_pass: date | None = None


def remote_results(
    id_numbers: list[str], *, as_of: date, config: LedgerConfig | None = None
) -> dict[str, RemoteStatus]:
    """The newest remote-certification result (dated on or before `as_of`) of each person, from
    the imported feeds of the remote kinds (the evidence store) and the results pushed by the app.

    One DuckDB query over the kinds' Parquet files joined to the wanted IDs."""
    cfg = config or current()
    if not id_numbers:
        return {}
    pushed = [
        (ident.upper(), timezone.localtime(at).date(), result)
        for chunk in store.in_lists(id_numbers)
        for ident, at, result in PushedResult.objects.filter(
            kind__in=cfg.remote_kinds, id_number__in=chunk
        ).values_list("id_number", "auth_time", "result")
    ]
    con = duckdb.connect()
    try:
        # Python lists as parameters (no pyarrow: its first use costs seconds in a fresh process)
        con.execute("CREATE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS id_number", [id_numbers])
        con.execute(
            "CREATE TEMP TABLE pushed AS SELECT unnest(?::VARCHAR[]) AS id_number, "
            "unnest(?::DATE[]) AS event_date, unnest(?::VARCHAR[]) AS sub",
            [[p[0] for p in pushed], [p[1] for p in pushed], [p[2] for p in pushed]],
        )
        parts = ["SELECT id_number, event_date, sub FROM pushed"]
        files = store.evidence_files(cfg.remote_kinds).existing()
        if files:
            parts.append(f"SELECT id_number, event_date, sub FROM {store.parquet_list_sql(files)}")
        rows = con.execute(
            f"""
            WITH r AS ({" UNION ALL ".join(parts)})
            SELECT r.id_number,
                   max(event_date) AS last_date,
                   arg_max(sub, strftime(event_date, '%Y%m%d') || CASE WHEN sub = 'pass' THEN '1' ELSE '0' END)
                       AS last_result,
                   max(event_date) FILTER (WHERE sub = 'pass') AS last_pass
            FROM r JOIN wanted USING (id_number)
            WHERE event_date <= ?
            GROUP BY r.id_number
            """,
            [as_of],
        ).fetchall()
    finally:
        con.close()
    return {ident: RemoteStatus(last, result or "", passed) for ident, last, result, passed in rows}


@dataclass
class OtherProvinceRow:
    recipient: ListedPerson
    residence: str
    remote: RemoteStatus
    certified: bool  # a remote pass in the period
    decision: str = ""  # the latest run's status
    exported_at: datetime | None = None


@dataclass
class OtherProvinceList:
    rows: list[OtherProvinceRow]
    total: int = 0
    certified: int = 0
    uncertified: int = 0
    never_exported: int = 0
    failed: int = 0
    by_residence_province: list[tuple[str, int]] = field(default_factory=list)
    period_start: date | None = None


REMOTE_FILTERS = ("certified", "uncertified", "failed", "never_exported")


def other_province_list(
    *, as_of: date, unit_no: str = "", province: str = "", status: str = "", q: str = ""
) -> OtherProvinceList:
    """附件2's people with their remote-certification status, filtered; counts are of the whole
    list before the status filter (so the tabs show what each filter would give)."""
    cfg = current()
    start = cfg.period_start(as_of)
    qs = other_province_people(config=cfg)
    if unit_no:
        qs = qs.filter(unit__unit_no=unit_no)
    if q:
        qs = qs.filter(person_matches(q))
    wanted = qs.values("pk")  # a subquery: no list of ten thousand ids in one statement
    people = [
        ListedPerson(*row)
        for row in qs.values_list("pk", "person_no", "name", "id_number", "residence_region", "unit__unit_no")
    ]
    if province:
        people = [p for p in people if residence_code(p)[:2] == province]
    remote = remote_results([p.id_number for p in people], as_of=as_of, config=cfg)
    run = latest_run()
    decisions: dict[int, str] = {}
    if run is not None and people:
        decisions = dict(
            Decision.objects.filter(run=run, recipient_id__in=wanted).values_list("recipient_id", "status")
        )
    exported = dict(
        OtherProvinceExportRow.objects.filter(recipient_id__in=wanted)
        .values("recipient_id")
        .annotate(at=Max("export__created_at"))
        .values_list("recipient_id", "at")
    )
    rows = []
    for p in people:
        status_of = remote.get(p.id_number, RemoteStatus())
        rows.append(
            OtherProvinceRow(
                recipient=p,
                residence=residence_code(p),
                remote=status_of,
                certified=status_of.last_pass is not None and status_of.last_pass >= start,
                decision=decisions.get(p.pk, ""),
                exported_at=exported.get(p.pk),
            )
        )
    result = OtherProvinceList(rows=rows, total=len(rows), period_start=start)
    result.certified = sum(r.certified for r in rows)
    result.uncertified = result.total - result.certified
    result.never_exported = sum(r.exported_at is None for r in rows)
    result.failed = sum(r.remote.last_result == "fail" for r in rows)
    provinces: dict[str, int] = defaultdict(int)
    for r in rows:
        provinces[r.residence[:2]] += 1
    result.by_residence_province = sorted(provinces.items(), key=lambda kv: (-kv[1], kv[0]))
    if status == "certified":
        result.rows = [r for r in rows if r.certified]
    elif status == "uncertified":
        result.rows = [r for r in rows if not r.certified]
    elif status == "failed":
        result.rows = [r for r in rows if r.remote.last_result == "fail"]
    elif status == "never_exported":
        result.rows = [r for r in rows if r.exported_at is None]
    return result


def exports_list() -> QuerySet[OtherProvinceExport]:
    return OtherProvinceExport.objects.select_related("created_by").order_by("-created_at", "-pk")


def export_get(*, pk: int) -> OtherProvinceExport:
    return get_object_or_404(OtherProvinceExport, pk=pk)
