"""The web pages: who may see each one, what it shows, unit isolation, pagination and masking."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Q
from django.test import Client
from django.urls import reverse

from tests.factories import NOW, RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from zige.accounts.masking import mask_id
from zige.accounts.models import Role, User
from zige.certification.models import Decision, DecisionChange, Run
from zige.feeds.models import ImportBatch, ImportReject
from zige.roster.models import Recipient, Unit

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 9, 30)


@dataclass
class World:
    unit_a: Unit
    unit_b: Unit
    alice: Recipient  # unit A, eligible by a train trip
    bob: Recipient  # unit A, pending
    carol: Recipient  # unit B, dead
    old_run: Run
    run: Run
    batch: ImportBatch
    users: dict[str, User]


def _decision(run: Run, person: Recipient, status: str, reason: str, **extra: Any) -> Decision:
    return Decision.objects.create(
        run=run, recipient=person, unit=person.unit, status=status, reason=reason, **extra
    )


@pytest.fixture
def world() -> World:
    unit_a = UnitFactory(unit_no="1401000001", name="太原市第一机械厂")
    unit_b = UnitFactory(unit_no="1401000002", name="大同市煤炭公司")
    alice = RecipientFactory(
        person_no="P0000000001", name="王秀兰", unit=unit_a, id_number=make_id(11), mobile="13912345678"
    )
    bob = RecipientFactory(person_no="P0000000002", name="李建国", unit=unit_a, id_number=make_id(12))
    carol = RecipientFactory(person_no="P0000000003", name="张桂英", unit=unit_b, id_number=make_id(13))
    old_run = Run.objects.create(as_of=date(2025, 9, 30), status="succeeded", created_at=NOW, recipients=3)
    run = Run.objects.create(
        as_of=AS_OF, status="succeeded", created_at=NOW, previous=old_run, recipients=3, changed=2
    )
    for person in (alice, bob, carol):
        _decision(
            old_run,
            person,
            "eligible",
            "last_certified",
            certified_on=date(2025, 1, 15),
            due_on=date(2026, 1, 15),
        )
    _decision(
        run, alice, "eligible", "rail",
        evidence_kind="rail", evidence_date=date(2026, 3, 5), certified_on=date(2026, 3, 5), due_on=date(2027, 3, 5),
    )  # fmt: skip
    _decision(run, bob, "pending", "no_evidence", evidence_kind="last_certified", evidence_date=date(2025, 1, 15),
              certified_on=date(2025, 1, 15), due_on=date(2026, 1, 15))  # fmt: skip
    _decision(
        run, carol, "stop", "death", evidence_kind="death", evidence_date=date(2026, 4, 10),
        action="stop", effective_month="2026-05", months=5, amount=Decimal("15000.00"),
    )  # fmt: skip
    DecisionChange.objects.create(run=run, recipient=bob, unit=unit_a, old_status="eligible", new_status="pending",
                                  old_reason="last_certified", new_reason="no_evidence")  # fmt: skip
    DecisionChange.objects.create(run=run, recipient=carol, unit=unit_b, old_status="eligible", new_status="stop",
                                  old_reason="last_certified", new_reason="death")  # fmt: skip
    batch = ImportBatch.objects.create(
        kind="rail", file_name="rail_2026.csv", sha256="ab" * 32, status="succeeded",
        rows_read=6, rows_used=3, rows_rejected=3, created_at=NOW, format="csv", encoding="utf-8",
    )  # fmt: skip
    # `field` is the file's header as the agency wrote it
    ImportReject.objects.create(
        batch=batch, row=3, field="身份证号", value="140105195001011239", reason="bad_id_checksum"
    )
    ImportReject.objects.create(batch=batch, row=4, field="乘车日期", value="2026-02-30", reason="bad_date")
    ImportReject.objects.create(batch=batch, row=5, field="公民身份号码", value="", reason="missing_value")
    users = {
        "admin": UserFactory(role=Role.BUREAU_ADMIN, username="admin1"),
        "operator": UserFactory(role=Role.BUREAU_OPERATOR, username="op1"),
        "auditor": UserFactory(role=Role.AUDITOR, username="aud1"),
        "unit_a": UnitOperatorFactory(unit=unit_a, username="unita"),
        "unit_b": UnitOperatorFactory(unit=unit_b, username="unitb"),
    }
    return World(unit_a, unit_b, alice, bob, carol, old_run, run, batch, users)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _html(response: Any) -> str:
    return response.content.decode("utf-8")


# --- access -----------------------------------------------------------------------------------


def test_every_page_asks_anonymous_users_to_log_in(world: World) -> None:
    urls = [
        reverse("reports:dashboard"),
        reverse("roster:search"),
        reverse("roster:units"),
        reverse("roster:unit", args=[world.unit_a.unit_no]),
        reverse("roster:person", args=[world.alice.person_no]),
        reverse("feeds:list"),
        reverse("feeds:upload"),
        reverse("feeds:detail", args=[world.batch.pk]),
        reverse("certification:list"),
        reverse("certification:detail", args=[world.run.pk]),
    ]
    client = Client()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert reverse("accounts:login") in response["Location"], url


@pytest.mark.parametrize("role", ["admin", "operator", "auditor", "unit_a"])
def test_people_pages_render_for_every_role(world: World, role: str) -> None:
    client = _client(world.users[role])
    for url in (
        reverse("reports:dashboard"),
        reverse("roster:search"),
        reverse("roster:unit", args=[world.unit_a.unit_no]),
        reverse("roster:person", args=[world.alice.person_no]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        html = _html(response)
        assert '<html lang="zh-Hans">' in html
        assert world.users[role].role_label in html  # the header names the role


@pytest.mark.parametrize(
    "url_name", ["feeds:list", "feeds:upload", "certification:list", "feeds:detail", "certification:detail"]
)
def test_unit_operators_have_no_imports_or_runs(world: World, url_name: str) -> None:
    args = {"feeds:detail": [world.batch.pk], "certification:detail": [world.run.pk]}.get(url_name, [])
    assert _client(world.users["unit_a"]).get(reverse(url_name, args=args)).status_code == 403


def _nav(world: World, role: str) -> str:
    html = _html(_client(world.users[role]).get(reverse("reports:dashboard")))
    match = re.search(r'<nav class="mainnav".*?</nav>', html, re.S)
    assert match is not None
    return match.group(0)


def test_navigation_follows_the_role(world: World) -> None:
    bureau = _nav(world, "operator")
    assert "首页" in bureau and "人员查询" in bureau and "单位" in bureau
    assert "数据导入" in bureau and "认证批次" in bureau and "审计日志" not in bureau
    admin = _nav(world, "admin")
    assert "审计日志" in admin and "用户管理" in admin
    auditor = _nav(world, "auditor")
    assert "审计日志" in auditor and "认证批次" in auditor and "用户管理" not in auditor
    unit = _nav(world, "unit_a")
    assert "数据导入" not in unit and "认证批次" not in unit and "审计日志" not in unit
    header = _html(_client(world.users["unit_a"]).get(reverse("reports:dashboard")))
    assert "太原市第一机械厂" in header and "单位经办人员" in header  # who is logged in, and where


# --- unit isolation ---------------------------------------------------------------------------


def test_unit_operator_gets_404_for_another_units_person_and_unit(world: World) -> None:
    client = _client(world.users["unit_a"])
    assert client.get(reverse("roster:person", args=[world.carol.person_no])).status_code == 404
    assert client.get(reverse("roster:unit", args=[world.unit_b.unit_no])).status_code == 404
    assert client.get(reverse("roster:person", args=[world.alice.person_no])).status_code == 200
    # the same 404 as for a person who does not exist: nothing confirms that carol exists
    assert client.get(reverse("roster:person", args=["P9999999999"])).status_code == 404


def test_unit_operator_search_and_lists_stay_in_their_unit(world: World) -> None:
    client = _client(world.users["unit_a"])
    for query in ("张桂英", "张", world.carol.person_no, world.carol.id_number):
        response = client.get(reverse("roster:search"), {"q": query})
        assert response.context["page"].paginator.count == 0, query
        assert world.carol.person_no not in _html(response).replace(f'value="{query}"', "")
    html = _html(client.get(reverse("roster:search")))
    assert "王秀兰" in html and "李建国" in html and "张桂英" not in html
    response = client.get(reverse("roster:units"))
    assert response.status_code == 302
    assert response["Location"] == reverse("roster:unit", args=[world.unit_a.unit_no])


def test_unit_operator_dashboard_counts_their_unit_only(world: World) -> None:
    response = _client(world.users["unit_a"]).get(reverse("reports:dashboard"))
    board = response.context["board"]
    assert board.total == 2
    assert board.by_status == {"eligible": 1, "pending": 1}
    assert "大同市煤炭公司" not in _html(response)


def test_run_changes_are_scoped_for_a_bureau_user_filterable(world: World) -> None:
    client = _client(world.users["operator"])
    url = reverse("certification:detail", args=[world.run.pk])
    html = _html(client.get(url))
    assert "李建国" in html and "张桂英" in html
    html = _html(client.get(url, {"status": "stop"}))
    assert "张桂英" in html and "李建国" not in html
    html = _html(client.get(url, {"unit": world.unit_a.unit_no}))
    assert "李建国" in html and "张桂英" not in html


def test_the_first_run_says_it_has_nothing_to_compare_with(world: World) -> None:
    """A run with no earlier finished run showed 结论变化 0 人, as if nobody's conclusion had
    changed; it has no previous run to change from, and its page and the run list say so."""
    client = _client(world.users["operator"])
    first = _html(client.get(reverse("certification:detail", args=[world.old_run.pk])))
    kpi = re.search(r'<div class="kpi kpi--total">(.*?)</div>\s*</div>', first, re.S)
    assert kpi is not None and "首次认证，没有可对比的上一批次" in kpi.group(1)
    assert "结论变化 0" not in first and 'name="status" aria-label="本次结论"' not in first
    second = _html(client.get(reverse("certification:detail", args=[world.run.pk])))
    assert f"结论变化 2 人（对比 #{world.old_run.pk}）" in second and "首次认证" not in second
    listing = _html(client.get(reverse("certification:list")))
    link = reverse("certification:detail", args=[world.old_run.pk])
    row = re.search(rf'<a class="strong" href="{link}">.*?</tr>', listing, re.S)
    assert (
        row is not None
        and '<span class="muted" title="首次认证，没有可对比的上一批次">首次</span>' in row.group(0)
    )


# --- content ----------------------------------------------------------------------------------


def test_dashboard_shows_counts_charts_and_units(world: World) -> None:
    response = _client(world.users["operator"]).get(reverse("reports:dashboard"))
    html = _html(response)
    board = response.context["board"]
    assert board.total == 3
    assert board.by_status == {"eligible": 1, "pending": 1, "stop": 1}
    assert [t["as_of"] for t in board.trend] == [date(2025, 9, 30), AS_OF]
    assert board.units[0]["unit_no"] == world.unit_a.unit_no
    assert 'id="chart-data" type="application/json"' in html
    assert "vendor/echarts.min.js" in html
    charts = response.context["charts"]
    assert charts["trend"]["series"]["eligible"] == [3, 1]
    assert "死亡" in charts["reasons"]["labels"]


def test_dashboard_trend_has_one_point_per_as_of_date_the_latest_run(world: World) -> None:
    """Two runs of one as-of date (a re-run after new feeds) drew that date twice on the trend's
    axis: the trend has one point per date, the counts of the date's latest finished run."""
    from zige.reports import selectors as reports_selectors

    Run.objects.filter(pk=world.old_run.pk).update(finished_at=NOW - timedelta(days=400))
    Run.objects.filter(pk=world.run.pk).update(finished_at=NOW - timedelta(hours=2))
    rerun = Run.objects.create(
        as_of=AS_OF, status="succeeded", created_at=NOW, finished_at=NOW - timedelta(hours=1), recipients=3
    )
    for person in (world.alice, world.bob, world.carol):
        _decision(rerun, person, "eligible", "rail")
    # a failed run is never a point, however late it finished
    Run.objects.create(as_of=date(2025, 9, 30), status="failed", created_at=NOW, finished_at=NOW)
    response = _client(world.users["operator"]).get(reverse("reports:dashboard"))
    board = response.context["board"]
    assert [(t["as_of"], t["run"].pk) for t in board.trend] == [
        (date(2025, 9, 30), world.old_run.pk),
        (AS_OF, rerun.pk),
    ]
    trend = response.context["charts"]["trend"]
    assert trend["labels"] == ["2025-09-30", "2026-09-30"]
    assert trend["series"]["eligible"] == [3, 3] and trend["series"]["stop"] == [0, 0]
    assert "最近 2 个比对基准日" in _html(response)
    # `trend_runs` counts dates, not runs
    only = reports_selectors.dashboard(world.users["operator"], trend_runs=1).trend
    assert [(t["as_of"], t["run"].pk) for t in only] == [(AS_OF, rerun.pk)]


def test_dashboard_without_runs_says_so(world: World) -> None:
    Decision.objects.all().delete()
    DecisionChange.objects.all().delete()
    Run.objects.filter(previous__isnull=False).delete()
    Run.objects.all().delete()
    html = _html(_client(world.users["operator"]).get(reverse("reports:dashboard")))
    assert "尚无认证结果" in html


def test_person_page_explains_the_current_decision(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    rail = {
        "kind": "rail", "record_kind": "rail", "date": date(2026, 3, 5), "end_date": None, "sub": "",
        "detail": "G602|太原南|北京西", "file_name": "rail_2026.csv", "row": 7, "batch_id": world.batch.pk,
    }  # fmt: skip
    older = {**rail, "date": date(2025, 12, 1), "detail": "K1234|大同|太原", "row": 3}
    monkeypatch.setattr("zige.reports.selectors.evidence_for", lambda recipient, **_: [rail, older])
    response = _client(world.users["operator"]).get(reverse("roster:person", args=[world.alice.person_no]))
    html = _html(response)
    assert "2026-03-05 乘坐G602次列车（太原南→北京西），认证有效期至2027-03-05" in html
    assert "乘坐K1234次列车（大同→太原）" in html  # the timeline has every record
    assert "本次认证依据" in html
    assert f"认证批次 #{world.old_run.pk}" in html  # and every decision
    assert mask_id(world.alice.id_number) in html
    assert world.alice.id_number not in html
    assert "139****5678" in html and "13912345678" not in html


def test_person_page_marks_the_records_a_review_cleared(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    death = {
        "kind": "death", "record_kind": "death", "date": date(2026, 4, 10), "end_date": None, "sub": "",
        "detail": "", "file_name": "death_2026.csv", "row": 2, "batch_id": world.batch.pk, "cleared_by": 4711,
    }  # fmt: skip
    later = {**death, "date": date(2026, 6, 1), "row": 3, "cleared_by": None}
    monkeypatch.setattr("zige.reports.selectors.evidence_for", lambda recipient, **_: [later, death])
    html = _html(_client(world.users["operator"]).get(reverse("roster:person", args=[world.alice.person_no])))
    assert html.count("已核销（疑点核查 #4711 确认健在）") == 1


def test_person_page_explains_death_and_pending(world: World) -> None:
    client = _client(world.users["operator"])
    html = _html(client.get(reverse("roster:person", args=[world.carol.person_no])))
    # no record in the evidence store: the sentence comes from the decision alone
    assert "2026-04-10 死亡信息，自2026年5月起停发，应追回多发养老金5个月共15,000.00元" in html
    html = _html(client.get(reverse("roster:person", args=[world.bob.person_no])))
    assert "认证期内无比对信息，需由单位核实（截止2026-12-30）" in html


def test_person_page_gives_the_units_task_deadline(world: World) -> None:
    """The deadline is the task's own (the run that created it + ZIGE_VERIFICATION_MONTHS), not
    one counted from the latest run's as-of date."""
    from zige.verification.models import VerificationTask
    from zige.verification.services import tasks_for_run

    tasks_for_run(run_id=world.run.pk, now=NOW)
    task = VerificationTask.objects.get(recipient=world.bob, kind="unit")
    assert task.deadline == date(2026, 12, 30)
    later = Run.objects.create(
        as_of=date(2026, 11, 30), status="succeeded", created_at=NOW, previous=world.run
    )
    _decision(later, world.bob, "pending", "no_evidence", evidence_kind="last_certified",
              evidence_date=date(2025, 1, 15), certified_on=date(2025, 1, 15), due_on=date(2026, 1, 15))  # fmt: skip
    tasks_for_run(run_id=later.pk, now=NOW)  # the same missed deadline: no second task
    html = _html(_client(world.users["unit_a"]).get(reverse("roster:person", args=[world.bob.person_no])))
    assert "需由单位核实（截止2026-12-30）" in html
    task_page = _html(_client(world.users["unit_a"]).get(reverse("verification:detail", args=[task.pk])))
    assert "2026-12-30" in task_page


def _stop_run(world: World, as_of: date, months: int, amount: str) -> Run:
    run = Run.objects.create(as_of=as_of, status="succeeded", created_at=NOW, recipients=1)
    _decision(
        run, world.carol, "stop", "death", evidence_kind="death", evidence_date=date(2026, 4, 10),
        action="stop", effective_month="2026-05", months=months, amount=Decimal(amount),
    )  # fmt: skip
    return run


def test_run_pages_dashboard_and_person_page_show_the_payment_actions(world: World) -> None:
    """Rules §8.6: a run's page and the dashboard show what the run proposed or revised, the
    person page the action awaiting approval, with the figures of the latest run everywhere."""
    from datetime import timedelta

    from zige.benefits.models import PaymentAction
    from zige.benefits.services import payment_action_approve, payment_actions_for_run

    operator = _client(world.users["operator"])
    payment_actions_for_run(run_id=world.run.pk, now=NOW)  # carol: stop, 5 months, 15,000.00
    run2 = _stop_run(world, date(2026, 10, 31), 6, "18000.00")
    payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31))
    action = PaymentAction.objects.get(recipient=world.carol)
    first = _html(operator.get(reverse("certification:detail", args=[world.run.pk])))
    assert "停发（新提出）" in first and "15,000.00" in first
    second = _html(operator.get(reverse("certification:detail", args=[run2.pk])))
    assert "停发（更新待审批）" in second and "18,000.00" in second and "新提出" not in second
    board = _html(operator.get(reverse("reports:dashboard")))
    assert "停发（更新待审批）" in board and "18,000.00" in board
    unit_b = _client(world.users["unit_b"]).get(reverse("reports:dashboard")).context["board"]
    assert [(a["action"], a["change"], a["n"], a["amount"]) for a in unit_b.actions] == [
        ("stop", "revised", 1, Decimal("18000.00"))
    ]
    assert _client(world.users["unit_a"]).get(reverse("reports:dashboard")).context["board"].actions == []
    person = _html(operator.get(reverse("roster:person", args=[world.carol.person_no])))
    assert f"#{action.pk}</a>（待审批）" in person
    assert "应追回多发养老金6个月共18,000.00元" in person and "6 个月 18,000.00 元" in person
    # Approved: a later run changes nothing and its pages say so (the decision still has a stop).
    payment_action_approve(action_id=action.pk, user=world.users["admin"], now=NOW + timedelta(days=32))
    run3 = _stop_run(world, date(2026, 11, 30), 7, "21000.00")
    payment_actions_for_run(run_id=run3.pk, now=NOW + timedelta(days=61))
    third = _html(operator.get(reverse("certification:detail", args=[run3.pk])))
    assert "本批次未提出、更新或撤回待遇处理" in third and "21,000.00" not in third
    person = _html(operator.get(reverse("roster:person", args=[world.carol.person_no])))
    assert f"#{action.pk}</a>（已审批）" in person and "6 个月 18,000.00 元" in person


def test_run_page_and_dashboard_show_the_proposals_a_run_withdrew(world: World) -> None:
    """Rules §8.6: a review cleared carol's death record; the next run proposes nothing for her,
    withdraws the stop still awaiting approval and says so on its page and the dashboard."""
    from datetime import timedelta

    from zige.benefits.models import ActionState, PaymentAction
    from zige.benefits.services import payment_actions_for_run

    operator = _client(world.users["operator"])
    payment_actions_for_run(run_id=world.run.pk, now=NOW)  # carol: stop, 5 months, 15,000.00
    run2 = Run.objects.create(as_of=date(2026, 10, 31), status="succeeded", created_at=NOW, recipients=1)
    _decision(run2, world.carol, "eligible", "rail")
    payment_actions_for_run(run_id=run2.pk, now=NOW + timedelta(days=31))
    assert PaymentAction.objects.get(recipient=world.carol).state == ActionState.WITHDRAWN
    page = _html(operator.get(reverse("certification:detail", args=[run2.pk])))
    assert "停发（不再需要，已撤回）" in page and "15,000.00" in page and "新提出" not in page
    board = _html(operator.get(reverse("reports:dashboard")))
    assert "停发（不再需要，已撤回）" in board and "15,000.00" in board
    unit_b = _client(world.users["unit_b"]).get(reverse("reports:dashboard")).context["board"]
    assert [(a["action"], a["change"], a["n"], a["amount"]) for a in unit_b.actions] == [
        ("stop", "withdrawn", 1, Decimal("15000.00"))
    ]
    assert _client(world.users["unit_a"]).get(reverse("reports:dashboard")).context["board"].actions == []


def test_a_back_dated_runs_page_says_it_proposed_nothing(world: World) -> None:
    """Rules §8.4, §8.6: a run as of 2026-08-31 after the run as of 2026-09-30 succeeded is
    back-dated: its stop for carol is not proposed, and its page says why (in Chinese, naming
    the later run) where the payment actions would be, and at the top."""
    from zige.benefits.models import PaymentAction
    from zige.benefits.services import payment_actions_for_run

    stale = _stop_run(world, date(2026, 8, 31), 4, "12000.00")
    assert payment_actions_for_run(run_id=stale.pk, now=NOW) == 0
    assert not PaymentAction.objects.exists()
    operator = _client(world.users["operator"])
    page = _html(operator.get(reverse("certification:detail", args=[stale.pk])))
    assert 'data-testid="backdated"' in page
    text = re.sub(r"<[^>]+>", "", page)
    assert (
        f"本批次比对基准日 2026-08-31 早于已完成的认证批次 #{world.run.pk}（比对基准日 2026-09-30）" in text
    )
    assert "未提出待遇变更" in text and "12,000.00" not in text
    assert f'href="{reverse("certification:detail", args=[world.run.pk])}"' in page
    assert f"本批次比对基准日早于认证批次 #{world.run.pk}，未提出待遇变更" in text  # the actions panel
    # The later run's page says nothing of the kind.
    latest = _html(operator.get(reverse("certification:detail", args=[world.run.pk])))
    assert 'data-testid="backdated"' not in latest and "早于" not in latest


def test_a_back_dated_run_finished_last_is_not_the_current_one(world: World) -> None:
    """Rules §8.4: a run as of 2026-08-31 that finishes after the run as of 2026-09-30 is a look
    back, not the current truth: the dashboard and the person page stay on the later as-of date
    (the API already did). Before, the last run to finish was the current one, so re-running an
    old date showed carol's stale stop as her current conclusion."""
    from datetime import timedelta

    from zige.reports.selectors import latest_run

    Run.objects.filter(pk=world.run.pk).update(finished_at=NOW)
    stale = _stop_run(world, date(2026, 8, 31), 4, "12000.00")
    Run.objects.filter(pk=stale.pk).update(finished_at=NOW + timedelta(hours=1))
    assert latest_run() == world.run
    operator = _client(world.users["operator"])
    assert operator.get(reverse("reports:dashboard")).context["board"].run == world.run
    person = operator.get(reverse("roster:person", args=[world.carol.person_no]))
    assert person.context["current"] is None or person.context["current"].run_id == world.run.pk
    # A run of the same as-of date that finishes later is the current one (a re-run of the day).
    again = Run.objects.create(as_of=world.run.as_of, status="succeeded", created_at=NOW, recipients=1,
                               finished_at=NOW + timedelta(hours=2))  # fmt: skip
    assert latest_run() == again


def test_the_run_after_a_back_dated_one_compares_with_the_current_run(world: World) -> None:
    """A run as of 2026-10-31 records its changes against the run as of 2026-09-30 (the current
    one when it starts), not against a run as of 2026-08-31 that finished in between."""
    from datetime import timedelta

    from zige.certification.services import _previous_run

    Run.objects.filter(pk=world.run.pk).update(finished_at=NOW)
    stale = _stop_run(world, date(2026, 8, 31), 4, "12000.00")
    Run.objects.filter(pk=stale.pk).update(finished_at=NOW + timedelta(hours=1))
    nxt = Run.objects.create(as_of=date(2026, 10, 31), status="running", created_at=NOW, recipients=0)
    assert _previous_run(nxt) == world.run
    assert _previous_run(stale) == world.run  # the look back shows how it differs from now


@pytest.mark.parametrize(("role", "button"), [("operator", True), ("unit_a", True), ("auditor", False)])
def test_reveal_button_only_for_roles_that_may_reveal(world: World, role: str, button: bool) -> None:
    html = _html(_client(world.users[role]).get(reverse("roster:person", args=[world.alice.person_no])))
    assert (reverse("accounts:reveal") in html) is button
    assert world.alice.id_number not in html


def test_unit_page_masks_ids_and_paginates(world: World) -> None:
    RecipientFactory.create_batch(118, unit=world.unit_a)
    client = _client(world.users["unit_a"])
    url = reverse("roster:unit", args=[world.unit_a.unit_no])
    first = client.get(url)
    assert first.context["page"].paginator.count == 120
    assert len(first.context["page"].object_list) == 50
    html = _html(first)
    for person in Recipient.objects.filter(unit=world.unit_a):
        assert person.id_number not in html
    assert mask_id(world.alice.id_number) in html
    assert "page=2" in html and "page=3" in html
    # 待核实 is the unit's work; 疑点核查 is the bureau's (docs/verification.md §1)
    assert html.count("需单位核实") == 1 and "由社保局核查" in html
    last = client.get(url, {"page": 3})
    assert len(last.context["page"].object_list) == 20
    assert last.context["page"].number == 3
    assert client.get(url, {"page": "junk"}).context["page"].number == 1
    assert client.get(url, {"page": 99}).context["page"].number == 3
    # filters keep their values in the page links and are applied on the server
    pending = client.get(url, {"status": "pending"})
    assert [p.person_no for p in pending.context["page"]] == [world.bob.person_no]
    none = client.get(url, {"status": "none"})
    assert none.context["page"].paginator.count == 118


def test_pagination_links_keep_filters(world: World) -> None:
    RecipientFactory.create_batch(60, unit=world.unit_a)
    html = _html(
        _client(world.users["operator"]).get(reverse("roster:search"), {"unit": world.unit_a.unit_no})
    )
    assert f"unit={world.unit_a.unit_no}&amp;page=2" in html


@pytest.mark.parametrize("how", ["name", "surname", "person_no", "id", "id_lower_x_spaces", "id15"])
def test_search_finds_a_person(world: World, how: str) -> None:
    if how == "id15":  # an old 15-digit number finds the stored 18-digit one
        query = world.alice.id_number[:6] + world.alice.id_number[8:17]
    else:
        query = {
            "name": "王秀兰",
            "surname": "王",
            "person_no": world.alice.person_no,
            "id": world.alice.id_number,
            "id_lower_x_spaces": " " + " ".join(world.alice.id_number.lower()) + " ",
        }[how]
    response = _client(world.users["operator"]).get(reverse("roster:search"), {"q": query})
    people = list(response.context["page"])
    assert [p.person_no for p in people] == [world.alice.person_no]
    # the results show the masked number (the search box keeps what the user typed)
    html = _html(response).replace(f'value="{query.strip()}"', "")
    assert world.alice.id_number not in html
    assert mask_id(world.alice.id_number) in html


@pytest.mark.parametrize("query", ["王", "王秀", "汪", "玌", "王_", "王%", "wang", "WANG X"])
def test_a_search_by_leading_characters_finds_exactly_the_names_that_start_with_them(
    world: World, query: str
) -> None:
    """The name search (written to use the name index) finds what `name__startswith` finds:
    LIKE's rules on each database (on SQLite ASCII letters in any case), `%` and `_` literal."""
    names = [
        "王",
        "王秀",
        "王秀英",
        "王_明",
        "王%",
        "王二",
        "汪洋",
        "玌",
        "玍",
        "Wang Li",
        "wang xiaoming",
        "WANG XU",
    ]
    for n, name in enumerate(names):
        RecipientFactory(person_no=f"S{n:04d}", name=name, unit=world.unit_a)
    response = _client(world.users["operator"]).get(reverse("roster:search"), {"q": query})
    found = [p.person_no for p in response.context["page"]]
    text = query.replace(" ", "")
    expected = Recipient.objects.filter(Q(person_no=text) | Q(name__startswith=text)).order_by("person_no")
    assert found == [p.person_no for p in expected]
    assert response.context["page"].paginator.count == len(found)
    assert found or query in ("玌", "WANG X")  # the cases with nothing to find


def test_people_lists_show_each_persons_current_decision(world: World) -> None:
    """Search and unit pages read the decisions of the page's people: the latest run's, or none."""
    newcomer = RecipientFactory(person_no="P0000000004", name="王新", unit=world.unit_a)
    client = _client(world.users["operator"])
    for response in (
        client.get(reverse("roster:search"), {"unit": world.unit_a.unit_no}),
        client.get(reverse("roster:unit", args=[world.unit_a.unit_no])),
    ):
        shown = {p.person_no: (p.cur_status, p.cur_reason, p.cur_due_on) for p in response.context["page"]}
        assert shown == {
            world.alice.person_no: ("eligible", "rail", date(2027, 3, 5)),
            world.bob.person_no: ("pending", "no_evidence", date(2026, 1, 15)),
            newcomer.person_no: (None, None, None),
        }
        assert "未认证" in _html(response)
    second = client.get(reverse("roster:search"), {"q": "王", "status": "none"})
    assert [p.person_no for p in second.context["page"]] == [newcomer.person_no]


def test_search_filters_by_status(world: World) -> None:
    response = _client(world.users["operator"]).get(reverse("roster:search"), {"status": "stop"})
    assert [p.person_no for p in response.context["page"]] == [world.carol.person_no]


def test_units_list_counts_and_sorts(world: World) -> None:
    response = _client(world.users["operator"]).get(reverse("roster:units"), {"order": "pending"})
    units = list(response.context["page"])
    assert [u.unit_no for u in units] == [world.unit_a.unit_no, world.unit_b.unit_no]
    assert (units[0].people, units[0].pending, units[1].stop) == (2, 1, 1)


def test_imports_pages(world: World) -> None:
    client = _client(world.users["operator"])
    html = _html(client.get(reverse("feeds:list")))
    assert "rail_2026.csv" in html and "上传文件" in html
    html = _html(client.get(reverse("feeds:detail", args=[world.batch.pk])))
    assert "身份证号校验码错误" in html and "日期无法识别" in html
    assert "140105195001011239" not in html and mask_id("140105195001011239") in html
    filtered = client.get(reverse("feeds:detail", args=[world.batch.pk]), {"reason": "bad_date"})
    assert [r.row for r in filtered.context["page"]] == [4]
    assert filtered.context["page"].paginator.count == 1
    assert client.get(reverse("feeds:upload")).status_code == 200


def test_a_reject_named_as_the_file_heads_its_column_is_masked_by_the_system_label(world: World) -> None:
    """A reject's field may be the header as written with the label after it (手机号码（联系电话）,
    zige.engine.kinds.field_as_written): the page masks by the label as it does for the label alone."""
    world.batch.rejects.create(row=8, field="手机号码（联系电话）", value="13812345678", reason="bad_value")
    world.batch.rejects.create(
        row=9, field="证件号码（身份证号）", value="140105195001011239", reason="missing_value"
    )
    html = _html(_client(world.users["operator"]).get(reverse("feeds:detail", args=[world.batch.pk])))
    assert "手机号码（联系电话）" in html and "13812345678" not in html
    assert "140105195001011239" not in html and mask_id("140105195001011239") in html


def test_a_huge_rejected_id_or_phone_is_shown_cut_short_and_masked(world: World) -> None:
    """A line that runs on (a file with a wrong separator, a pasted blob) gives a rejected ID of
    thousands of characters: masked, it was one unbreakable run of stars as wide as the value,
    which pushed the 原因 column off the page and sent megabytes to the officer's browser."""
    world.batch.rejects.all().delete()
    world.batch.rejects.create(row=2, field="身份证号", value="1" * 50_000, reason="bad_id_format")
    world.batch.rejects.create(row=3, field="联系电话", value="13812345678" * 5_000, reason="bad_value")
    response = _client(world.users["operator"]).get(reverse("feeds:detail", args=[world.batch.pk]))
    html = _html(response)
    assert len(response.content) < 40_000
    assert "*" * 61 not in html and "1" * 61 not in html
    assert "身份证号格式错误" in html and "…" in html


def test_rejects_csv_is_audited_and_not_for_auditors(world: World) -> None:
    from zige.audit.models import AuditEvent

    url = reverse("feeds:rejects_csv", args=[world.batch.pk])
    assert _client(world.users["auditor"]).get(url).status_code == 403
    response = _client(world.users["operator"]).get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")  # type: ignore[attr-defined]
    assert body.startswith("\ufefffile,row,field,value,reason")
    assert "rail_2026.csv,3,身份证号,140105195001011239,bad_id_checksum" in body
    # a rejected value that a spreadsheet would run is quoted
    world.batch.rejects.create(row=9, field="姓名", value="=HYPERLINK(1)", reason="missing_value")
    again = _client(world.users["operator"]).get(url)
    body = b"".join(again.streaming_content).decode("utf-8")  # type: ignore[attr-defined]
    assert "rail_2026.csv,9,姓名,'=HYPERLINK(1),missing_value" in body
    assert AuditEvent.objects.filter(action="rejects_download", target_id=str(world.batch.pk)).exists()


def test_rejects_csv_explains_each_reason_in_chinese_after_the_spec_columns(world: World) -> None:
    """The officer opens the download in Excel: each reason in the words the page uses (日期无法识别),
    in a last column, after spec §6's five, which keep their names and order; UTF-8 with a BOM."""
    response = _client(world.users["operator"]).get(reverse("feeds:rejects_csv", args=[world.batch.pk]))
    raw = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert raw.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["file", "row", "field", "value", "reason", "原因说明"]
    by_row = {r[1]: r for r in rows[1:]}
    assert by_row["3"] == [
        "rail_2026.csv",
        "3",
        "身份证号",
        "140105195001011239",
        "bad_id_checksum",
        "身份证号校验码错误",
    ]
    assert by_row["4"][4:] == ["bad_date", "日期无法识别"]
    assert all(len(r) == 6 for r in rows)
    # a code the page has no words for is written as it is, as the page shows it
    world.batch.rejects.create(row=9, field="姓名", value="", reason="some_new_code")
    again = _client(world.users["operator"]).get(reverse("feeds:rejects_csv", args=[world.batch.pk]))
    last = list(csv.reader(io.StringIO(b"".join(again.streaming_content).decode("utf-8-sig"))))[-1]  # type: ignore[attr-defined]
    assert last[4:] == ["some_new_code", "some_new_code"]


def test_auditor_reads_imports_and_runs_but_cannot_start_anything(world: World) -> None:
    client = _client(world.users["auditor"])
    html = _html(client.get(reverse("certification:list")))
    assert "开始认证" not in html
    assert "上传文件" not in _html(client.get(reverse("feeds:list")))
    assert client.get(reverse("feeds:upload")).status_code == 403
    assert client.post(reverse("certification:start"), {"as_of": "2026-11-30"}).status_code == 403


def test_runs_page_offers_a_run_to_bureau_staff(world: World) -> None:
    html = _html(_client(world.users["operator"]).get(reverse("certification:list")))
    assert "开始认证" in html and reverse("certification:start") in html
    assert f"#{world.run.pk}" in html


def test_progress_fragments_poll_until_finished(world: World) -> None:
    client = _client(world.users["operator"])
    running = Run.objects.create(as_of=date(2026, 10, 31), status="running", progress=40, created_at=NOW)
    html = _html(client.get(reverse("certification:progress", args=[running.pk])))
    assert 'hx-trigger="every 2s"' in html and "w-40" in html
    done = client.get(reverse("certification:progress", args=[world.run.pk]), HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"
    queued = ImportBatch.objects.create(kind="rail", file_name="x.csv", sha256="cd" * 32, created_at=NOW)
    html = _html(client.get(reverse("feeds:progress", args=[queued.pk])))
    assert 'hx-trigger="every 2s"' in html
    detail = _html(client.get(reverse("feeds:detail", args=[queued.pk])))
    assert reverse("feeds:progress", args=[queued.pk]) in detail


def test_pages_carry_no_inline_script_or_style(world: World) -> None:
    """The CSP has no 'unsafe-inline': scripts come from static files, data from json_script."""
    client = _client(world.users["operator"])
    for url in (
        reverse("reports:dashboard"),
        reverse("roster:search"),
        reverse("roster:person", args=[world.alice.person_no]),
        reverse("roster:unit", args=[world.unit_a.unit_no]),
        reverse("roster:units"),
        reverse("feeds:list"),
        reverse("feeds:detail", args=[world.batch.pk]),
        reverse("certification:list"),
        reverse("certification:detail", args=[world.run.pk]),
    ):
        html = _html(client.get(url))
        assert " style=" not in html, url
        assert "<style" not in html, url
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert not re.search(r"<[^>]+\son[a-z]+=", html), url


def test_a_unit_of_10000_people_pages_with_a_fixed_number_of_queries(
    world: World, django_assert_max_num_queries: Any
) -> None:
    """A unit's page costs the same few queries on page 1 and page 200 (nothing per row)."""
    from tests.factories import make_id

    people = [
        Recipient(
            person_no=f"Q{n:09d}",
            id_number=make_id(n, birth=date(1940 + n // 1000, 1, 1), region="140106"),
            name=f"人{n}",
            unit=world.unit_a,
        )
        for n in range(10_000)
    ]
    Recipient.objects.bulk_create(people, batch_size=2000)
    saved = Recipient.objects.filter(unit=world.unit_a, person_no__startswith="Q")
    Decision.objects.bulk_create(
        [
            Decision(run=world.run, recipient=p, unit=world.unit_a, status="eligible", reason="rail")
            for p in saved
        ],
        batch_size=2000,
    )
    client = _client(world.users["unit_a"])
    url = reverse("roster:unit", args=[world.unit_a.unit_no])
    queries = 13  # 12 + the unit's deadline SMS (one query, docs/notifications.md 1a)
    for page, rows in ((1, 50), (201, 2)):
        with django_assert_max_num_queries(queries):
            response = client.get(url, {"page": page})
        assert response.context["page"].paginator.count == 10_002
        assert len(response.context["page"].object_list) == rows
    with django_assert_max_num_queries(queries):
        response = client.get(url, {"status": "eligible", "page": 3})
    assert response.context["page"].paginator.count == 10_001


def test_dashboard_reads_the_stored_summary_for_bureau_staff(world: World) -> None:
    """Bureau staff see the run's summary (no scan of a province's decisions); a unit operator's
    counts come from their unit's decisions."""
    world.run.summary = {
        "as_of": AS_OF.isoformat(),
        "recipients": 1000,
        "status": {"eligible": 900, "pending": 80, "review": 5, "suspend": 5, "stop": 10},
        "reason": {"rail": 900, "no_evidence": 80},
        "status_reason": {
            "eligible/rail": 900,
            "pending/no_evidence": 80,
            "review/alive_after_death": 5,
            "suspend/imprisoned": 5,
            "stop/death": 10,
        },
        "units": {
            "total": 2,
            "top": [
                {
                    "unit_id": world.unit_b.pk,
                    "unit_no": world.unit_b.unit_no,
                    "name": world.unit_b.name,
                    "total": 500,
                    "status": {"eligible": 420, "pending": 70, "review": 5, "suspend": 0, "stop": 5},
                },
            ],
        },
        "actions": {"stop": {"count": 10, "months": 30, "amount": "90000.00"}},
        "payment_actions": {
            "proposed": {"stop": {"count": 10, "months": 30, "amount": "90000.00"}},
            "revised": {},
        },
        "reminders": {"total": 12, "channel": {"sms": 10, "unit": 2}},
    }
    world.run.save()
    response = _client(world.users["auditor"]).get(reverse("reports:dashboard"))
    board = response.context["board"]
    assert board.total == 1000 and board.by_status["pending"] == 80 and board.remind == 12
    assert board.units[0]["unit_no"] == world.unit_b.unit_no and board.units[0]["share"] == "14.0%"
    html = _html(response)
    assert "90,000.00" in html and "1,000" in html
    assert response.context["charts"]["trend"]["series"]["eligible"] == [3, 900]
    unit = _client(world.users["unit_a"]).get(reverse("reports:dashboard")).context["board"]
    assert unit.total == 2


def test_upload_hands_the_file_to_the_import_service(world: World, tmp_path: Any) -> None:
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = (
        "身份证号,姓名,乘车日期,车次,出发站,到达站\n"
        + f"{world.alice.id_number},王秀兰,2026-03-05,G602,太原南,北京西\n"
    )
    upload = SimpleUploadedFile("rail_2026_extra.csv", content.encode("utf-8"), content_type="text/csv")
    response = _client(world.users["operator"]).post(reverse("feeds:upload"), {"file": upload, "kind": ""})
    batch = ImportBatch.objects.get(file_name="rail_2026_extra.csv")
    assert response.status_code == 302 and response["Location"] == reverse("feeds:detail", args=[batch.pk])
    assert batch.kind == "rail" and batch.created_by == world.users["operator"]
    incoming = settings.UPLOAD_DIR / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())  # the view's temporary copy is gone


@pytest.mark.parametrize("name", ["roster.csv", "roster_2026-11.csv", "Roster-太原.csv"])
def test_an_upload_named_roster_is_the_roster_as_the_page_says(world: World, name: str) -> None:
    """The upload page says that, left to 按文件名自动识别, a name starting with the kind is enough,
    roster.csv among its examples; such a roster was refused (无法从文件名识别数据类型)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = f"个人编号,姓名,身份证号,单位编号\nP900,王秀兰,{world.alice.id_number},{world.unit_a.unit_no}\n"
    upload = SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv")
    response = _client(world.users["operator"]).post(reverse("feeds:upload"), {"file": upload, "kind": ""})
    batch = ImportBatch.objects.get(file_name=name)
    assert response.status_code == 302 and batch.kind == "roster"
    # a name that only starts with the letters is still refused, as before
    refused = _client(world.users["operator"]).post(
        reverse("feeds:upload"),
        {"file": SimpleUploadedFile("rosters.csv", content.encode("utf-8")), "kind": ""},
    )
    assert refused.status_code == 200 and "无法从文件名" in _html(refused)


def test_upload_explains_a_refused_file(world: World) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("notes.csv", b"a,b\n1,2\n", content_type="text/csv")
    response = _client(world.users["operator"]).post(reverse("feeds:upload"), {"file": upload, "kind": ""})
    assert response.status_code == 200
    assert "无法从文件名" in _html(response)
    assert not ImportBatch.objects.filter(file_name="notes.csv").exists()


def test_unit_operators_cannot_post_uploads_or_runs(world: World) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = _client(world.users["unit_a"])
    upload = SimpleUploadedFile("rail_x.csv", b"x", content_type="text/csv")
    assert client.post(reverse("feeds:upload"), {"file": upload}).status_code == 403
    assert client.post(reverse("certification:start"), {"as_of": "2026-11-30"}).status_code == 403
    assert Run.objects.count() == 2


def test_start_a_run(world: World) -> None:
    client = _client(world.users["operator"])
    response = client.post(reverse("certification:start"), {"as_of": "2026-11-30"})
    run = Run.objects.get(as_of=date(2026, 11, 30))
    assert response["Location"] == reverse("certification:detail", args=[run.pk])
    assert run.status == "queued" and run.created_by == world.users["operator"]
    html = _html(client.get(response["Location"]))
    assert reverse("certification:progress", args=[run.pk]) in html and "排队中" in html
    bad = client.post(reverse("certification:start"), {"as_of": "30/11/2026"}, follow=True)
    assert "请填写正确的比对基准日" in _html(bad)


def test_dashboard_work_queue_counts_what_waits_for_each_role(world: World) -> None:
    """待办: a unit sees its own tasks only; the bureau sees reviews, approvals and cases."""
    from tests.factories import payment_action, verification_task

    verification_task(world.bob, run=world.run)  # unit A, open
    verification_task(world.alice, status="overdue", run=world.run)  # unit A, past its deadline
    verification_task(world.carol, status="submitted", run=world.run)  # unit B, awaiting review
    dan = RecipientFactory(person_no="P0000000004", name="赵德", unit=world.unit_a, id_number=make_id(14))
    verification_task(dan, kind="review", run=world.run)  # the bureau's, not unit A's
    payment_action(world.carol, state="proposed")
    payment_action(world.bob, state="approved", kind="suspend")

    def queue(user: str) -> dict[str, int]:
        response = _client(world.users[user]).get(reverse("reports:dashboard"))
        assert "待办" in _html(response)
        return {w.label: w.count for w in response.context["work"]}

    unit_a = queue("unit_a")
    assert (unit_a["待核实"], unit_a["已逾期"]) == (2, 1)  # bob's and alice's; dan's review is not theirs
    assert queue("unit_b")["待核实"] == 0  # carol's is submitted: it waits for the bureau now
    bureau = queue("operator")
    assert bureau["单位上报待审核"] == 1
    assert bureau["疑点核查待处理"] == 1
    assert bureau["核实任务已逾期"] == 1
    assert (bureau["待遇处理待审批"], bureau["已审批待导出"]) == (1, 1)
    # what else waits for a second person: a write-off and a blacklist removal, each proposed
    nothing = {"核销待审批": 0, "停发撤销待返还": 0, "返还待复核": 0, "移出黑名单待审批": 0}
    assert {label: bureau[label] for label in nothing} == nothing
    from tests.factories import blacklist_entry, recovery_case
    from zige.benefits.services import blacklist_removal_propose, recovery_case_write_off_propose

    officer = world.users["operator"]
    case: Any = recovery_case(world.alice)
    recovery_case_write_off_propose(case_id=case.pk, reason="查无财产可供执行", user=officer, now=NOW)
    entry: Any = blacklist_entry(dan)
    blacklist_removal_propose(entry_id=entry.pk, reason="wrongly_listed", removed_on=date(2026, 11, 30),
                              note="身份证号录入错误", user=officer, now=NOW)  # fmt: skip
    response = _client(world.users["auditor"]).get(reverse("reports:dashboard"))
    work = {w.label: w for w in response.context["work"]}
    assert (work["核销待审批"].count, work["移出黑名单待审批"].count) == (1, 1)
    assert (work["停发撤销待返还"].count, work["返还待复核"].count) == (0, 0)
    html = _html(response)
    assert f'href="{reverse("benefits:recoveries")}?status=write_off_proposed"' in html
    assert f'href="{reverse("benefits:blacklist")}?view=pending"' in html
    pending = _html(_client(officer).get(reverse("benefits:blacklist") + "?view=pending"))
    assert (
        f'href="{reverse("benefits:blacklist_entry", args=[entry.pk])}"' in pending
        and "移出待审批 <b>1</b>" in pending
    )


def test_a_run_dated_after_today_is_refused_on_the_page(world: World) -> None:
    """The date picker stops at today, and a later date posted anyway starts no run."""
    from django.utils import timezone

    client = _client(world.users["operator"])
    today = timezone.localdate()
    html = _html(client.get(reverse("certification:list")))
    assert f'max="{today.isoformat()}"' in html
    runs = Run.objects.count()
    later = today + timedelta(days=1)
    response = client.post(reverse("certification:start"), {"as_of": later.isoformat()}, follow=True)
    assert f"比对基准日 {later:%Y-%m-%d} 晚于今天" in _html(response)
    assert Run.objects.count() == runs


def test_a_run_that_holds_a_person_lists_the_proposal_it_withdrew_and_its_approval_is_refused(
    world: World,
) -> None:
    """An earlier run proposed carol's stop (2026-10, 2 months); the later run's death record for
    her is dated 1911 (a typing slip): the later run withdraws the proposal. Its page lists carol
    with the proposal's number, linked (her unit's dashboard counts it); the action's page
    says who withdrew it and why; approving it from a page that still showed it is refused with
    that reason."""
    from zige.benefits.models import ActionState, PaymentAction
    from zige.benefits.services import payment_actions_for_run

    first = Run.objects.create(as_of=date(2026, 11, 30), status="succeeded", created_at=NOW, recipients=1)
    _decision(first, world.carol, "stop", "death", evidence_kind="death", evidence_date=date(2026, 9, 12),
              action="stop", effective_month="2026-10", months=2, amount=Decimal("6000.00"))  # fmt: skip
    payment_actions_for_run(run_id=first.pk, now=NOW)
    stop = PaymentAction.objects.get(recipient=world.carol)
    second = Run.objects.create(as_of=date(2026, 12, 31), status="succeeded", created_at=NOW, recipients=1)
    _decision(second, world.carol, "stop", "death", evidence_kind="death", evidence_date=date(1911, 2, 10),
              action="stop", effective_month="1911-03", months=1390, amount=Decimal("4170000.00"))  # fmt: skip
    payment_actions_for_run(run_id=second.pk, now=NOW)
    stop.refresh_from_db()
    assert stop.state == ActionState.WITHDRAWN
    operator = _client(world.users["operator"])
    page = _html(operator.get(reverse("certification:detail", args=[second.pk])))
    assert "停发（超出上限，已撤回原待审批，待人工复核）" in page
    assert "超出上限、待人工复核的待遇处理" in page and world.carol.person_no in page
    assert f'href="{reverse("benefits:action", args=[stop.pk])}">#{stop.pk}</a> 已由本批次撤回' in page
    # The run page is the bureau's and the auditors'; carol's unit sees the tally on its dashboard.
    unit_b = _client(world.users["unit_b"]).get(reverse("reports:dashboard")).context["board"]
    assert [(a["action"], a["change"], a["n"]) for a in unit_b.actions] == [("stop", "held_withdrawn", 1)]
    action_page = _html(operator.get(reverse("benefits:action", args=[stop.pk])))
    assert "系统（认证批次） · " in action_page and f"认证批次 #{second.pk} 的数字超出上限" in action_page
    response = operator.post(reverse("benefits:action_approve", args=[stop.pk]),
                             {"seen": "2026-10|2|6000.00"}, follow=True)  # fmt: skip
    assert f"待遇处理 #{stop.pk} 已撤回，不能审批：认证批次 #{second.pk} 的数字超出上限" in _html(response)
    stop.refresh_from_db()
    assert stop.state == ActionState.WITHDRAWN


def test_run_page_and_dashboard_show_the_actions_a_run_held_beyond_the_limits(world: World) -> None:
    """A death record dated 1911 (a typing slip) gave carol a stop of 1,387 months: the run holds
    it for review instead of proposing it, and its page and the dashboard say so, in the unit's
    scope too."""
    from zige.benefits.models import PaymentAction
    from zige.benefits.services import payment_actions_for_run

    run = Run.objects.create(as_of=date(2026, 11, 30), status="succeeded", created_at=NOW, recipients=1)
    _decision(
        run, world.carol, "stop", "death", evidence_kind="death", evidence_date=date(1911, 2, 10),
        action="stop", effective_month="1911-03", months=1387, amount=Decimal("4161000.00"),
    )  # fmt: skip
    payment_actions_for_run(run_id=run.pk, now=NOW)
    assert not PaymentAction.objects.filter(recipient=world.carol).exists()
    operator = _client(world.users["operator"])
    page = _html(operator.get(reverse("certification:detail", args=[run.pk])))
    assert "停发（超出上限，未提出，待人工复核）" in page and "4,161,000.00" in page and "新提出" not in page
    board = _html(operator.get(reverse("reports:dashboard")))
    assert "停发（超出上限，未提出，待人工复核）" in board
    unit_b = _client(world.users["unit_b"]).get(reverse("reports:dashboard")).context["board"]
    assert [(a["action"], a["change"], a["n"]) for a in unit_b.actions] == [("stop", "held", 1)]
    assert _client(world.users["unit_a"]).get(reverse("reports:dashboard")).context["board"].actions == []
    # the person's page says so beside the run's figures, to the bureau (as its payment actions)
    person = reverse("roster:person", args=[world.carol.person_no])
    held = _html(operator.get(person))
    assert 'data-testid="held-for-review"' in held
    assert "超出上限，未提出待遇处理，待人工复核：月数 1387 超出允许范围（不超过 1200 个月）" in held
    assert 'data-testid="held-for-review"' not in _html(_client(world.users["unit_b"]).get(person))
