"""服务台账 (special groups ledger): very old computed from the ID, marks, home visits with
photos, the not-visited list, unit isolation. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.http import Http404
from PIL import Image

from tests.factories import NOW, RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.ledger import selectors, services
from zige.ledger.config import ConfigError, LedgerConfig, from_environ
from zige.ledger.models import HomeVisit, SpecialMark, VisitOutcome
from zige.roster.models import BenefitStatus

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 30)
YOUNG = date(1960, 6, 1)  # 66 on AS_OF: in no group unless marked


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.ZIGE_LEDGER = LedgerConfig()
    return tmp_path / "data"


def person(birth: date = YOUNG, seq: list[int] = [100], **kwargs: Any) -> Any:  # noqa: B006 - a counter
    seq[0] += 1
    return RecipientFactory(id_number=make_id(seq[0], birth=birth), **kwargs)


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(out, format="JPEG")
    return out.getvalue()


class Upload(io.BytesIO):
    """What Django hands a view for an uploaded file: bytes with a name."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


# ---------------------------------------------------------------------------------------------
# Very old: computed from the birth date in the ID at the as-of date


@pytest.mark.parametrize(
    ("birth", "as_of", "very_old"),
    [
        (date(1946, 11, 30), date(2026, 11, 30), True),  # the 80th birthday is the as-of date
        (date(1946, 12, 1), date(2026, 11, 30), False),  # one day short
        (date(1946, 11, 29), date(2026, 11, 30), True),
        (date(1944, 2, 29), date(2024, 2, 29), True),  # a leap-day birth, 80 on a leap day
        (date(1944, 2, 29), date(2024, 2, 28), False),
        (date(1930, 1, 1), date(2026, 11, 30), True),
    ],
)
def test_very_old_is_computed_from_the_id_birth_date_at_the_as_of_date(
    birth: date, as_of: date, very_old: bool
) -> None:
    p = person(birth)
    assert selectors.is_very_old(p.id_number, as_of=as_of) is very_old
    assert (p.pk in selectors.special_group_ids(as_of=as_of)) is very_old
    assert selectors.needs_onsite_evidence(recipient=p, as_of=as_of) is very_old
    assert (selectors.groups_of(recipient=p, as_of=as_of) == ["very_old"]) is very_old


def test_a_leap_day_birth_reaches_an_age_on_the_first_of_march_of_a_common_year(settings: Any) -> None:
    settings.ZIGE_LEDGER = LedgerConfig(very_old_age=81)
    p = person(date(1944, 2, 29))
    assert p.pk not in selectors.special_group_ids(as_of=date(2025, 2, 28))
    assert p.pk in selectors.special_group_ids(as_of=date(2025, 3, 1))


def test_the_age_is_a_setting(settings: Any) -> None:
    p = person(date(1951, 5, 1))  # 75 on AS_OF
    assert p.pk not in selectors.special_group_ids(as_of=AS_OF)
    settings.ZIGE_LEDGER = LedgerConfig(very_old_age=75)
    assert p.pk in selectors.special_group_ids(as_of=AS_OF)


def test_configuration_from_the_environment_is_checked() -> None:
    cfg = from_environ({"ZIGE_SPECIAL_AGE": "85", "ZIGE_LEDGER_PERIOD": "12", "ZIGE_HOME_PROVINCE": "11"})
    assert (cfg.very_old_age, cfg.region_code) == (85, "110000")
    assert cfg.period_start(date(2026, 11, 30)) == date(2025, 12, 1)
    assert LedgerConfig().period_start(date(2026, 11, 30)) == date(2026, 1, 1)
    for bad in (
        {"ZIGE_SPECIAL_AGE": "old"},
        {"ZIGE_LEDGER_PERIOD": "quarter"},
        {"ZIGE_HOME_PROVINCE": "shanxi"},
    ):
        with pytest.raises(ConfigError):
            from_environ(bad)


def test_terminated_recipients_are_in_no_group() -> None:
    p = person(date(1930, 1, 1), benefit_status=BenefitStatus.TERMINATED)
    assert p.pk not in selectors.special_group_ids(as_of=AS_OF)
    assert not selectors.needs_onsite_evidence(recipient=p, as_of=AS_OF)


def test_special_group_ids_of_one_unit() -> None:
    a, b = UnitFactory(), UnitFactory()
    old_a, old_b = person(date(1930, 1, 1), unit=a), person(date(1930, 1, 1), unit=b)
    person(unit=a)  # young, unmarked
    assert selectors.special_group_ids(unit=a, as_of=AS_OF) == {old_a.pk}
    assert selectors.special_group_ids(as_of=AS_OF) >= {old_a.pk, old_b.pk}


# ---------------------------------------------------------------------------------------------
# Marks


def test_a_unit_operator_marks_their_own_people_and_the_mark_is_audited() -> None:
    unit = UnitFactory()
    op = UnitOperatorFactory(unit=unit)
    p = person(unit=unit)
    mark = services.mark_add(
        actor=op, recipient=p, group="immobile", reason="卧床", since=date(2026, 3, 1), now=NOW
    )
    assert (mark.marked_by, mark.active) == (op, True)
    assert selectors.groups_of(recipient=p, as_of=AS_OF) == ["immobile"]
    assert selectors.needs_onsite_evidence(recipient=p, as_of=AS_OF)
    assert p.pk in selectors.special_group_ids(unit=unit, as_of=AS_OF)
    assert p.pk not in selectors.special_group_ids(as_of=date(2026, 2, 28))  # before `since`
    event = AuditEvent.objects.get(action="ledger.mark_add")
    assert (event.actor, event.target_id, event.after["group"]) == (op.username, str(p.pk), "immobile")


@pytest.mark.parametrize(
    ("role", "own_unit", "allowed"),
    [
        (Role.BUREAU_ADMIN, False, True),
        (Role.BUREAU_OPERATOR, False, True),
        (Role.UNIT_OPERATOR, True, True),
        (Role.UNIT_OPERATOR, False, False),
        (Role.AUDITOR, False, False),
    ],
)
def test_who_may_mark(role: str, own_unit: bool, allowed: bool) -> None:
    p = person()
    if role == Role.UNIT_OPERATOR:
        actor = UnitOperatorFactory(unit=p.unit if own_unit else UnitFactory())
    else:
        actor = UserFactory(role=role)
    if allowed:
        services.mark_add(actor=actor, recipient=p, group="high_risk", reason="独居", since=AS_OF, now=NOW)
        assert SpecialMark.objects.filter(recipient=p).count() == 1
    else:
        with pytest.raises(services.LedgerError):
            services.mark_add(
                actor=actor, recipient=p, group="high_risk", reason="独居", since=AS_OF, now=NOW
            )
        assert not SpecialMark.objects.exists()
        assert not AuditEvent.objects.filter(action="ledger.mark_add").exists()


def test_refused_marks() -> None:
    p, staff = person(), UserFactory()
    for group, reason, since, message in [
        ("very_old", "高龄", AS_OF, "自动"),
        ("rich", "x", AS_OF, "未知"),
        ("immobile", "  ", AS_OF, "原因"),
        ("immobile", "卧床", AS_OF + timedelta(days=1), "晚于今天"),
    ]:
        with pytest.raises(services.LedgerError, match=message):
            services.mark_add(actor=staff, recipient=p, group=group, reason=reason, since=since, now=NOW)
    services.mark_add(actor=staff, recipient=p, group="immobile", reason="卧床", since=AS_OF, now=NOW)
    with pytest.raises(services.LedgerError, match="已标记为行动不便"):
        services.mark_add(actor=staff, recipient=p, group="immobile", reason="再标", since=AS_OF, now=NOW)
    assert SpecialMark.objects.count() == 1


def test_one_active_mark_per_person_and_group_is_a_database_constraint() -> None:
    p, staff = person(), UserFactory()
    SpecialMark.objects.create(
        recipient=p, group="immobile", reason="a", since=AS_OF, marked_by=staff, marked_at=NOW
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        SpecialMark.objects.create(
            recipient=p, group="immobile", reason="b", since=AS_OF, marked_by=staff, marked_at=NOW
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # very old is never stored
        SpecialMark.objects.create(
            recipient=p, group="very_old", reason="b", since=AS_OF, marked_by=staff, marked_at=NOW
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # a removal names who and why
        SpecialMark.objects.create(
            recipient=p,
            group="high_risk",
            reason="b",
            since=AS_OF,
            marked_by=staff,
            marked_at=NOW,
            removed_at=NOW,
        )


@pytest.mark.parametrize(("state", "allowed"), [("active", True), ("removed", False)])
def test_mark_transitions(state: str, allowed: bool) -> None:
    p, staff = person(), UserFactory()
    mark = services.mark_add(actor=staff, recipient=p, group="high_risk", reason="独居", since=AS_OF, now=NOW)
    if state == "removed":
        services.mark_remove(actor=staff, mark=mark, reason="已有子女同住", now=NOW)
    assert (("active" if state == "active" else "removed", "removed") in services.MARK_TRANSITIONS) is allowed
    if allowed:
        removed = services.mark_remove(
            actor=staff, mark=mark, reason="已有子女同住", now=NOW + timedelta(hours=1)
        )
        assert (removed.removed_by, removed.removal_reason, removed.active) == (staff, "已有子女同住", False)
        event = AuditEvent.objects.get(action="ledger.mark_remove")
        assert (event.before["state"], event.after["state"]) == ("active", "removed")
        assert p.pk not in selectors.special_group_ids(as_of=AS_OF)
        # removed marks stay in the history, and the person can be marked again
        services.mark_add(
            actor=staff, recipient=p, group="high_risk", reason="再次独居", since=AS_OF, now=NOW
        )
        assert SpecialMark.objects.filter(recipient=p).count() == 2
    else:
        with pytest.raises(services.LedgerError, match="已撤销"):
            services.mark_remove(actor=staff, mark=mark, reason="again", now=NOW)
        assert AuditEvent.objects.filter(action="ledger.mark_remove").count() == 1


def test_a_unit_operator_cannot_remove_another_units_mark() -> None:
    p, staff = person(), UserFactory()
    mark = services.mark_add(actor=staff, recipient=p, group="high_risk", reason="独居", since=AS_OF, now=NOW)
    stranger = UnitOperatorFactory(unit=UnitFactory())
    with pytest.raises(services.LedgerError):
        services.mark_remove(actor=stranger, mark=mark, reason="x", now=NOW)
    with pytest.raises(Http404):
        selectors.mark_get(user=stranger, pk=mark.pk)
    assert selectors.mark_get(user=UnitOperatorFactory(unit=p.unit), pk=mark.pk) == mark


# ---------------------------------------------------------------------------------------------
# Visits and the not-visited list


def visit(p: Any, actor: Any, day: date, **kwargs: Any) -> HomeVisit:
    return services.visit_record(
        actor=actor, recipient=p, visited_on=day, visitor="王社工", outcome=kwargs.pop("outcome", "alive"),
        now=kwargs.pop("now", NOW), **kwargs,
    )  # fmt: skip


def test_the_not_visited_list_and_counts_per_unit() -> None:
    unit, other = UnitFactory(), UnitFactory()
    op = UnitOperatorFactory(unit=unit)
    old = person(date(1940, 1, 1), unit=unit)  # very old
    marked = person(unit=unit)
    services.mark_add(
        actor=op, recipient=marked, group="immobile", reason="偏瘫", since=date(2026, 1, 1), now=NOW
    )
    visited_last_year = person(date(1941, 1, 1), unit=unit)
    young = person(unit=unit)  # not in the ledger
    foreign = person(date(1930, 1, 1), unit=other)
    visit(old, op, date(2026, 10, 1))
    visit(visited_last_year, op, date(2025, 12, 31))  # before the period (the certification year)

    people = list(selectors.ledger_people(user=op, unit=unit, as_of=AS_OF))
    assert [p.pk for p in people] == [
        r.pk for r in sorted([old, marked, visited_last_year], key=lambda r: r.person_no)
    ]
    by_pk = {p.pk: p for p in people}
    assert (by_pk[old.pk].very_old, by_pk[old.pk].visited, by_pk[old.pk].last_visit) == (
        True,
        True,
        date(2026, 10, 1),
    )
    assert (by_pk[marked.pk].immobile, by_pk[marked.pk].very_old) == (True, False)
    assert by_pk[visited_last_year.pk].last_visit == date(2025, 12, 31)

    not_visited = {p.pk for p in selectors.ledger_people(user=op, unit=unit, as_of=AS_OF, not_visited=True)}
    assert not_visited == {marked.pk, visited_last_year.pk}
    assert young.pk not in not_visited and foreign.pk not in not_visited
    counts = selectors.ledger_counts(user=op, unit=unit, as_of=AS_OF)
    assert (counts.total, counts.very_old, counts.immobile, counts.high_risk, counts.visited, counts.not_visited) == (
        3, 2, 1, 0, 1, 2,
    )  # fmt: skip
    assert {p.pk for p in selectors.ledger_people(user=op, unit=unit, as_of=AS_OF, group="immobile")} == {
        marked.pk
    }

    rows = {r.unit.pk: r.counts for r in selectors.ledger_units(user=UserFactory(), as_of=AS_OF)}
    assert (rows[unit.pk].total, rows[unit.pk].not_visited) == (3, 2)
    assert (rows[other.pk].total, rows[other.pk].not_visited) == (1, 1)
    # a unit operator's province-wide view is their unit only
    assert set(r.unit.pk for r in selectors.ledger_units(user=op, as_of=AS_OF)) == {unit.pk}


def test_a_rolling_period_counts_last_years_december_visit(settings: Any) -> None:
    unit = UnitFactory()
    op = UnitOperatorFactory(unit=unit)
    p = person(date(1941, 1, 1), unit=unit)
    visit(p, op, date(2025, 12, 31))
    assert selectors.ledger_counts(user=op, unit=unit, as_of=AS_OF).visited == 0
    settings.ZIGE_LEDGER = LedgerConfig(period="12")
    assert selectors.ledger_counts(user=op, unit=unit, as_of=AS_OF).visited == 1


def test_a_unit_operator_sees_and_visits_only_their_own_unit() -> None:
    unit, other = UnitFactory(), UnitFactory()
    op = UnitOperatorFactory(unit=unit)
    foreign = person(date(1930, 1, 1), unit=other)
    with pytest.raises(Http404):
        selectors.person_get(user=op, person_no=foreign.person_no)
    with pytest.raises(Http404):
        selectors.unit_get(user=op, unit_no=other.unit_no)
    assert list(selectors.ledger_people(user=op, unit=other, as_of=AS_OF)) == []
    with pytest.raises(services.LedgerError):
        visit(foreign, op, AS_OF)
    staff_visit = visit(foreign, UserFactory(), AS_OF)
    with pytest.raises(Http404):
        selectors.visit_get(user=op, pk=staff_visit.pk)
    assert not HomeVisit.objects.filter(recorded_by=op).exists()


def test_a_visit_is_audited_and_its_date_is_not_in_the_future() -> None:
    p, staff = person(date(1930, 1, 1)), UserFactory()
    late_evening = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 December in Beijing
    v = visit(p, staff, date(2026, 12, 1), now=late_evening, outcome="not_seen", notes="家中无人")
    assert (v.unit_id, v.outcome, v.notes, v.photo_path) == (p.unit_id, "not_seen", "家中无人", "")
    event = AuditEvent.objects.get(action="ledger.visit_record")
    assert (event.after["visit"], event.after["outcome"]) == (v.pk, "not_seen")
    with pytest.raises(services.LedgerError, match="走访日期"):
        visit(p, staff, date(2026, 12, 2), now=late_evening)
    with pytest.raises(services.LedgerError, match="走访结果"):
        visit(p, staff, AS_OF, outcome="moved")
    with pytest.raises(services.LedgerError, match="走访人"):
        services.visit_record(
            actor=staff, recipient=p, visited_on=AS_OF, visitor=" ", outcome="alive", now=NOW
        )
    assert HomeVisit.objects.count() == 1
    assert set(VisitOutcome.labels) == {"本人健在", "已死亡", "无法见到", "其他"}


def test_a_real_jpeg_is_stored_outside_the_web_root_with_its_hash(data_dir: Path) -> None:
    p, staff = person(date(1930, 1, 1)), UserFactory()
    data = jpeg_bytes()
    v = visit(p, staff, AS_OF, photo=Upload(data, "走访.jpg"))
    digest = hashlib.sha256(data).hexdigest()
    assert (v.photo_sha256, v.photo_size, v.photo_content_type) == (digest, len(data), "image/jpeg")
    stored = data_dir / "attachments" / v.photo_path
    assert stored.read_bytes() == data
    assert AuditEvent.objects.get(action="ledger.visit_record").after["photo_sha256"] == digest


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"MZ\x90\x00 this is a program, not a photo" * 20, "photo.jpg"),  # disguised by its name
        (b"\xff\xd8\xff\xe0" + b"\x00" * 400, "broken.jpg"),  # a JPEG header followed by nothing real
        (b"%PDF-1.4\n%%EOF", "scan.jpg"),  # a PDF is not a photo
    ],
)
def test_a_disguised_or_broken_photo_is_refused_and_nothing_is_saved(
    data: bytes, name: str, data_dir: Path
) -> None:
    p, staff = person(date(1930, 1, 1)), UserFactory()
    with pytest.raises(services.LedgerError):
        visit(p, staff, AS_OF, photo=Upload(data, name))
    assert not HomeVisit.objects.exists()
    assert not AuditEvent.objects.filter(action="ledger.visit_record").exists()
    assert not (data_dir / "attachments").exists() or not any((data_dir / "attachments").rglob("*.*"))


def test_a_visit_photo_row_is_complete_or_empty_in_the_database() -> None:
    p, staff = person(), UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        HomeVisit.objects.create(
            recipient=p, unit=p.unit, visited_on=AS_OF, visitor="x", outcome="alive", recorded_by=staff,
            recorded_at=NOW, photo_path="ab/x.jpg",
        )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        HomeVisit.objects.create(
            recipient=p,
            unit=p.unit,
            visited_on=AS_OF,
            visitor="x",
            outcome="gone",
            recorded_by=staff,
            recorded_at=NOW,
        )


# ---------------------------------------------------------------------------------------------
# A visit that finds the person dead goes to the bureau (疑点核查), never stops payment itself


def test_a_dead_visit_opens_a_review_task_for_the_bureau_and_stops_nothing() -> None:
    from zige.benefits.models import PaymentAction
    from zige.verification.models import TaskEvent, VerificationTask

    p = person(date(1930, 1, 1))
    op = UnitOperatorFactory(unit=p.unit)
    v = visit(
        p, op, AS_OF, outcome="dead", notes="家属称 11 月 20 日去世", photo=Upload(jpeg_bytes(), "x.jpg")
    )
    task = VerificationTask.objects.get(recipient=p)
    assert (task.kind, task.status, task.reason, task.run_id) == ("review", "open", "visit_dead", None)
    assert (task.unit_id, task.evidence_kind, task.evidence_date, task.period) == (
        p.unit_id, "home_visit", AS_OF, f"visit_dead:{v.pk}",
    )  # fmt: skip
    v.refresh_from_db()
    assert v.review_task_id == task.pk
    event = TaskEvent.objects.get(task=task)
    assert (event.from_status, event.to_status, event.actor) == ("", "open", op)
    audit = AuditEvent.objects.get(action="task.opened_from_visit")
    assert (audit.target_id, audit.after["visit"], audit.after["photo_sha256"]) == (
        str(task.pk), v.pk, v.photo_sha256,
    )  # fmt: skip
    assert not PaymentAction.objects.exists()  # the visit stops nothing: the bureau decides
    p.refresh_from_db()
    assert p.benefit_status == BenefitStatus.NORMAL
    # a second dead visit joins the open task instead of opening another
    v2 = visit(p, op, AS_OF, outcome="dead")
    assert VerificationTask.objects.filter(recipient=p).count() == 1
    v2.refresh_from_db()
    assert v2.review_task_id == task.pk
    assert AuditEvent.objects.filter(action="task.visit_added", target_id=str(task.pk)).exists()
    # a terminated (终止) person's payment has ended: no task
    gone = person(date(1930, 1, 1), benefit_status=BenefitStatus.TERMINATED)
    assert visit(gone, UserFactory(), AS_OF, outcome="dead").review_task_id is None
    assert not VerificationTask.objects.filter(recipient=gone).exists()


@pytest.mark.parametrize("outcome", ["alive", "not_seen", "other"])
def test_other_visit_outcomes_open_no_task(outcome: str) -> None:
    from zige.verification.models import VerificationTask

    p = person(date(1930, 1, 1))
    v = visit(p, UserFactory(), AS_OF, outcome=outcome)
    assert v.review_task_id is None and not VerificationTask.objects.exists()


def test_a_run_that_finds_the_person_eligible_does_not_close_the_visits_review() -> None:
    from zige.certification.models import Decision, Run, RunStatus
    from zige.verification.models import VerificationTask
    from zige.verification.services import review_resolve, tasks_for_run

    p = person(date(1930, 1, 1))
    visit(p, UnitOperatorFactory(unit=p.unit), AS_OF, outcome="dead")
    run = Run.objects.create(as_of=AS_OF, status=RunStatus.SUCCEEDED, created_at=NOW, recipients=1)
    Decision.objects.create(
        run=run, recipient=p, unit=p.unit, status="eligible", reason="app_auth", evidence_kind="app_auth",
        evidence_date=date(2026, 10, 1), due_on=date(2027, 10, 1),
    )  # fmt: skip
    assert tasks_for_run(run_id=run.pk, now=NOW)["auto_closed"] == 0
    task = VerificationTask.objects.get(recipient=p)
    assert task.status == "open"
    # the bureau confirms the death: a stop is proposed (approved later by another person)
    officer = UserFactory(role=Role.BUREAU_OPERATOR)
    review_resolve(
        task_id=task.pk, user=officer, finding="dead", note="走访及家属证明", death_date=date(2026, 11, 20),
        now=NOW + timedelta(days=1),
    )  # fmt: skip
    from zige.benefits.models import PaymentAction

    action = PaymentAction.objects.get(recipient=p)
    assert (action.kind, action.source, action.state) == ("stop", "verification", "proposed")
