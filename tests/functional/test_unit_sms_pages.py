"""The unit's deadline SMS on the pages: status in Chinese on the task list and the unit page,
the number masked (revealed on request, audited), each unit's staff seeing their own only, and
a unit without a mobile told so."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import (
    RecipientFactory,
    UnitFactory,
    UnitOperatorFactory,
    UserFactory,
    make_id,
    verification_task,
)
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.notifications.config import NotifyConfig
from zige.notifications.models import JobRun, Kind, Message
from zige.verification.models import VerificationTask
from zige.verification.services import tasks_sweep

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def sms(settings: Any) -> dict[str, Any]:
    settings.ZIGE_NOTIFICATIONS = NotifyConfig()
    units = {
        "a": UnitFactory(unit_no="14019000001", phone="13912345678"),
        "b": UnitFactory(unit_no="14019000002", phone="13800001111"),
        "landline": UnitFactory(unit_no="14019000003", phone="0351-7654321"),
    }
    n = 300
    for key, lefts in (("a", (10, 3)), ("b", (20,)), ("landline", (15,))):
        for left in lefts:
            n += 1
            task: Any = verification_task(
                RecipientFactory(unit=units[key], id_number=make_id(n, date(1957, 2, 2)))
            )
            VerificationTask.objects.filter(pk=task.pk).update(deadline=NOW.date() + timedelta(days=left))
    assert tasks_sweep(now=NOW)["unit_sms"] == 3
    Message.objects.filter(unit=units["a"], days_before=30).update(status="sent", sent_at=NOW)
    Message.objects.filter(unit=units["a"], days_before=7).update(
        status="failed", last_error="isv.MOBILE_NUMBER_ILLEGAL"
    )
    return units


def page(client: Client, user: Any, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_unit_sees_its_own_sms_and_their_status(client: Client, sms: dict[str, Any]) -> None:
    html = page(client, UnitOperatorFactory(unit=sms["a"]), reverse("verification:list"))
    assert 'data-testid="unit-sms"' in html
    assert "已发送" in html and "发送失败" in html and "到期前 30 天" in html and "到期前 7 天" in html
    assert "139****5678" in html and "13912345678" not in html  # masked
    assert "138****1111" not in html and "待发送" not in html  # unit b's queued SMS is not theirs
    assert "14019000002" not in html


def test_another_unit_sees_only_theirs(client: Client, sms: dict[str, Any]) -> None:
    html = page(client, UnitOperatorFactory(unit=sms["b"]), reverse("verification:list"))
    assert "待发送" in html and "138****1111" in html
    assert "139****5678" not in html and "已发送" not in html and "发送失败" not in html


def test_a_unit_without_a_mobile_is_told(client: Client, sms: dict[str, Any]) -> None:
    html = page(client, UnitOperatorFactory(unit=sms["landline"]), reverse("verification:list"))
    assert 'data-testid="unit-no-mobile"' in html and "不是手机号码" in html
    assert "<tbody>" not in html.split('data-testid="unit-sms"')[1].split("</section>")[0]
    empty = UnitFactory(unit_no="14019000004", phone="")
    html = page(client, UnitOperatorFactory(unit=empty), reverse("verification:list"))
    assert "未登记联系电话" in html
    html = page(client, UnitOperatorFactory(unit=sms["a"]), reverse("verification:list"))
    assert 'data-testid="unit-no-mobile"' not in html


def test_the_bureau_sees_every_unit_or_one(client: Client, sms: dict[str, Any]) -> None:
    officer = UserFactory(role=Role.BUREAU_OPERATOR)
    html = page(client, officer, reverse("verification:list"))
    assert "14019000001" in html and "14019000002" in html and "待发送" in html and "已发送" in html
    html = page(client, officer, reverse("verification:list") + "?unit=14019000002")
    panel = html.split('data-testid="unit-sms"')[1].split("</section>")[0]
    assert "138****1111" in panel and "139****5678" not in panel
    html = page(client, officer, reverse("roster:unit", args=["14019000001"]))
    panel = html.split('data-testid="unit-sms"')[1].split("</section>")[0]
    assert "发送失败" in panel and "isv.MOBILE_NUMBER_ILLEGAL" in panel and "13912345678" not in html


def test_the_units_number_is_revealed_on_request_and_audited(client: Client, sms: dict[str, Any]) -> None:
    reveal = {"target_type": "unit", "field": "phone"}
    client.force_login(UnitOperatorFactory(unit=sms["a"]))
    response = client.post(reverse("accounts:reveal"), {**reveal, "target_id": sms["a"].pk})
    assert response.status_code == 200 and "13912345678" in response.content.decode()
    event = AuditEvent.objects.get(action="pii.reveal")
    assert (event.target_type, event.target_id, event.after) == (
        "roster.Unit",
        "14019000001",
        {"field": "phone"},
    )
    # another unit's number: not found; an auditor may not reveal at all
    assert client.post(reverse("accounts:reveal"), {**reveal, "target_id": sms["b"].pk}).status_code == 404
    client.force_login(UserFactory(role=Role.AUDITOR))
    assert client.post(reverse("accounts:reveal"), {**reveal, "target_id": sms["a"].pk}).status_code == 403
    assert AuditEvent.objects.filter(action="pii.reveal").count() == 1


def test_the_operators_failed_list_names_the_unit(client: Client, sms: dict[str, Any]) -> None:
    html = page(client, UserFactory(role=Role.BUREAU_ADMIN), reverse("notifications:overview"))
    assert (
        "单位 " in html
        and "14019000001" in html
        and Message.objects.filter(kind=Kind.UNIT_DEADLINE).count() == 3
    )


def test_the_outbox_counts_are_labelled_in_chinese(client: Client, sms: dict[str, Any]) -> None:
    """发件箱 listed each count under the bare status code (queued, failed, sent)."""
    html = page(client, UserFactory(role=Role.BUREAU_ADMIN), reverse("notifications:overview"))
    outbox = html[html.index("发件箱") :]
    outbox = outbox[: outbox.index("</section>")]
    assert "<dt>sent</dt>" not in outbox and "<dt>failed</dt>" not in outbox
    assert "<dt>已发送</dt>" in outbox and "<dt>发送失败</dt>" in outbox


def test_the_scheduled_jobs_are_named_in_chinese(client: Client, sms: dict[str, Any]) -> None:
    """定时任务 listed the jobs under their internal names only (daily_run, tasks_sweep)."""
    JobRun.objects.create(job="daily_run", key="2026-11-30", status="succeeded", started_at=NOW)
    html = page(client, UserFactory(role=Role.BUREAU_ADMIN), reverse("notifications:overview"))
    assert '<dt>每日认证运行<br><span class="muted">2026-11-30</span></dt>' in html
    assert "daily_run" not in html


def test_the_scope_holds_whatever_unit_is_asked_for(sms: dict[str, Any]) -> None:
    """The selector itself keeps a unit operator to their unit (another unit asked for: nothing)."""
    from zige.notifications.selectors import unit_sms

    op = UnitOperatorFactory(unit=sms["a"])
    assert {m.unit_id for m in unit_sms(op)} == {sms["a"].pk}
    assert not unit_sms(op, sms["b"]).exists()
    assert {m.unit_id for m in unit_sms(UserFactory(role=Role.AUDITOR))} == {sms["a"].pk, sms["b"].pk}
    assert not unit_sms(None).exists()
