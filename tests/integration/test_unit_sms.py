"""The unit's deadline SMS (zige.notifications.unit_messages): written by the verification sweep
with its reminders — one per unit, threshold and day, to a mobile only — and delivered by the
same sender as the recipients' SMS (lease, attempts, receipts, quiet hours)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction

from tests.factories import RecipientFactory, UnitFactory, make_id, verification_task
from tests.sms_gateway import KEY_ID, SECRET, SmsGatewayServer
from zige.audit.models import AuditEvent
from zige.notifications.config import NotifyConfig
from zige.notifications.gateways import FileGateway, HttpGateway
from zige.notifications.models import AttemptOutcome, Kind, Message
from zige.notifications.services import messages_send_due, receipts_record
from zige.roster.models import Unit
from zige.verification.models import TaskReminder, VerificationTask
from zige.verification.services import tasks_sweep

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)  # the sweep's moment; its day is 2026-11-30
TODAY = NOW.date()
CONFIG = NotifyConfig(quiet_start=time(21), quiet_end=time(8), rate_per_minute=1000, lease_s=60)
_seq = iter(range(2000, 9000))


@pytest.fixture(autouse=True)
def notify_config(settings: Any) -> None:
    settings.ZIGE_NOTIFICATIONS = CONFIG
    settings.ZIGE_REMINDER_DAYS = "30,7"


def tasks(unit: Unit, *days_left: int, status: str = "open") -> list[VerificationTask]:
    """Unit-verification tasks of `unit` due `days_left` days after TODAY."""
    made = []
    for left in days_left:
        n = next(_seq)
        person = RecipientFactory(
            unit=unit, id_number=make_id(n, birth=date(1956, 1, 1) + timedelta(days=n // 1000))
        )
        task: Any = verification_task(person, status=status)
        VerificationTask.objects.filter(pk=task.pk).update(deadline=TODAY + timedelta(days=left))
        task.refresh_from_db()
        made.append(task)
    return made


def unit_sms() -> dict[tuple[str, int], Message]:
    return {(m.unit.unit_no, m.days_before or 0): m for m in Message.objects.filter(kind=Kind.UNIT_DEADLINE)}


@pytest.fixture
def units() -> dict[str, Unit]:
    """Units with a mobile (two spellings), a landline and no phone, and tasks due soon."""
    made = {
        "a": UnitFactory(unit_no="14010000001", phone="13912345678"),
        "b": UnitFactory(unit_no="14010000002", phone="+86 139-1234-5679"),
        "landline": UnitFactory(unit_no="14010000003", phone="0351-7654321"),
        "none": UnitFactory(unit_no="14010000004", phone=""),
    }
    tasks(made["a"], 20, 12, 5, 45)  # 30 days: two (earliest in 12 days); 7 days: one; one not yet
    tasks(made["a"], 9, status="submitted")  # with the bureau: no reminder
    tasks(made["b"], 30, 29, 28)
    tasks(made["landline"], 10, 3)
    tasks(made["none"], 10)
    return made


def test_the_sweep_writes_one_sms_per_unit_and_threshold(units: dict[str, Unit]) -> None:
    counts = tasks_sweep(now=NOW)
    assert counts["reminders"] == 9 and counts["unit_sms"] == 3
    sms = unit_sms()
    assert sorted(sms) == [("14010000001", 7), ("14010000001", 30), ("14010000002", 30)]
    a30, a7, b30 = sms[("14010000001", 30)], sms[("14010000001", 7)], sms[("14010000002", 30)]
    assert (a30.task_count, a30.due_on) == (2, TODAY + timedelta(days=12))  # the earliest deadline
    assert (a7.task_count, a7.due_on) == (1, TODAY + timedelta(days=5))
    assert (b30.task_count, b30.due_on, b30.mobile) == (3, TODAY + timedelta(days=28), "13912345679")
    assert a30.text == (
        "贵单位（单位编号14010000001）有2名退休人员的领取待遇资格核实将于2026年12月12日前到期（最早），"
        "请登录系统完成核实。"
    )
    assert a30.params == {"unit_no": "14010000001", "count": "2", "due": "2026年12月12日"}
    assert a30.segments == 2  # 68 characters + 【山西人社】
    for m in sms.values():
        assert (m.recipient_id, m.run_id, m.channel, m.status, m.sweep_day) == (
            None,
            None,
            "sms",
            "queued",
            TODAY,
        )
        assert m.next_attempt_at == NOW
    # written with the reminders, audited
    event = AuditEvent.objects.get(action="messages.created", target_type="unit_deadline_messages")
    assert event.after == {"unit_sms": 3, "unit_no_mobile": 2}


def test_no_sms_to_a_landline_or_an_empty_phone(units: dict[str, Unit]) -> None:
    tasks_sweep(now=NOW)
    assert TaskReminder.objects.filter(task__unit=units["landline"]).count() == 2  # reminded on the page
    assert TaskReminder.objects.filter(task__unit=units["none"]).count() == 1
    assert not Message.objects.filter(unit__in=[units["landline"], units["none"]]).exists()


def test_a_second_sweep_the_same_day_writes_nothing_new(units: dict[str, Unit]) -> None:
    tasks_sweep(now=NOW)
    before = list(Message.objects.order_by("pk").values_list("pk", "text", "task_count"))
    counts = tasks_sweep(now=NOW + timedelta(hours=5))
    assert counts["reminders"] == 0 and counts["unit_sms"] == 0
    assert list(Message.objects.order_by("pk").values_list("pk", "text", "task_count")) == before


def test_the_next_days_new_reminders_are_a_new_sms(units: dict[str, Unit]) -> None:
    tasks_sweep(now=NOW)
    (late,) = tasks(units["a"], 31)  # enters the 30-day window tomorrow
    counts = tasks_sweep(now=NOW + timedelta(days=1))
    assert counts["unit_sms"] == 1
    new = Message.objects.get(kind=Kind.UNIT_DEADLINE, sweep_day=TODAY + timedelta(days=1))
    assert (new.unit_id, new.days_before, new.task_count, new.due_on) == (units["a"].pk, 30, 1, late.deadline)


def test_the_database_holds_one_sms_per_unit_threshold_and_day(units: dict[str, Unit]) -> None:
    tasks_sweep(now=NOW)
    m = Message.objects.filter(kind=Kind.UNIT_DEADLINE).first()
    assert m is not None
    m.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        m.save()
    # and a unit message cannot pretend to be a person's, nor a person's lack its recipient
    m.pk, m.sweep_day = None, TODAY + timedelta(days=1)
    m.recipient = RecipientFactory(unit=units["a"])
    with pytest.raises(IntegrityError), transaction.atomic():
        m.save()


def test_the_switch_turns_the_unit_sms_off(units: dict[str, Unit], settings: Any) -> None:
    settings.ZIGE_NOTIFICATIONS = replace(CONFIG, unit_sms=False)
    counts = tasks_sweep(now=NOW)
    assert counts["reminders"] == 9 and counts["unit_sms"] == 0
    assert not Message.objects.exists()


def test_a_broken_unit_template_keeps_the_reminders(units: dict[str, Unit], settings: Any) -> None:
    settings.ZIGE_NOTIFICATIONS = replace(CONFIG, template_unit_deadline="{nope}")
    counts = tasks_sweep(now=NOW)
    assert counts["reminders"] == 9 and counts["unit_sms"] == 0
    assert AuditEvent.objects.filter(action="messages.skipped", target_type="unit_deadline_messages").exists()


def test_a_failing_sweep_writes_no_sms(units: dict[str, Unit], monkeypatch: pytest.MonkeyPatch) -> None:
    """Same transaction as the reminders: the overdue step failing undoes both."""
    tasks(units["a"], -1)  # overdue

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("zige.verification.services._transition", boom)
    with pytest.raises(RuntimeError):
        tasks_sweep(now=NOW)
    assert not TaskReminder.objects.exists() and not Message.objects.exists()


# --- delivery: the recipients' sender --------------------------------------------------------


def test_the_sender_delivers_the_unit_sms(units: dict[str, Unit], tmp_path: Path) -> None:
    tasks_sweep(now=NOW)
    gateway = FileGateway(tmp_path / "sms.jsonl")
    quiet = datetime(2026, 11, 30, 22, 0, tzinfo=SHANGHAI)
    assert messages_send_due(gateway=gateway, clock=lambda: quiet, config=CONFIG).quiet  # quiet hours hold
    report = messages_send_due(gateway=gateway, clock=lambda: NOW, config=CONFIG)
    assert report.sent == 3 and not report.errors
    lines = [json.loads(x) for x in gateway.path.read_text(encoding="utf-8").splitlines()]
    assert sorted(x["mobile"] for x in lines) == ["13912345678", "13912345678", "13912345679"]
    assert {x["out_id"] for x in lines} == {m.out_id for m in Message.objects.all()}
    for m in Message.objects.all():
        assert m.status == "sent" and m.sent_at == NOW and m.provider_message_id
        attempt = m.attempt_log.get()
        assert attempt.outcome == AttemptOutcome.SENT
    # a delivery receipt is matched by our id, as a person's
    m = Message.objects.order_by("pk").first()
    assert m is not None
    receipts_record(provider="aliyun", now=NOW, reports=[_report(m)])
    m.refresh_from_db()
    assert m.status == "delivered"


def _report(m: Message) -> Any:
    from zige.notifications.services import Report

    return Report(m.provider_message_id, m.out_id, True, "DELIVERED", NOW, {})


def test_an_http_gateway_gets_the_unit_template_and_its_parameters(units: dict[str, Unit]) -> None:
    server = SmsGatewayServer("aliyun")
    try:
        config = replace(CONFIG, gateway="http", provider="aliyun", sms_url=server.url, access_key_id=KEY_ID,
                         access_key_secret=SECRET, template_reminder_id="SMS_1", template_unit_deadline_id="SMS_UNIT",
                         timeout_s=2)  # fmt: skip
        tasks_sweep(now=NOW)
        server.faults = ["500"]  # the first attempt fails for a while: retried later, as a person's
        report = messages_send_due(gateway=HttpGateway(config), clock=lambda: NOW, config=config)
        assert report.sent == 2 and report.retrying == 1
        later = NOW + timedelta(minutes=5)
        assert messages_send_due(gateway=HttpGateway(config), clock=lambda: later, config=config).sent == 1
        assert server.bad_signatures == 0
        sent = server.send_requests
        assert len(sent) == 4 and {r["TemplateCode"] for r in sent} == {"SMS_UNIT"}
        assert {json.loads(r["TemplateParam"])["unit_no"] for r in sent} == {"14010000001", "14010000002"}
        assert sum(server.accepted.values()) == 3 and set(server.accepted.values()) == {1}
    finally:
        server.down()


# --- the migration ---------------------------------------------------------------------------

SEED = """
from datetime import date
from django.utils import timezone
from zige.notifications.models import DeliveryAttempt, Message
from zige.roster.models import Unit
unit, _ = Unit.objects.get_or_create(unit_no="14010000009", phone="13912345678")
m = Message.objects.create(unit=unit, kind="unit_deadline", channel="sms", due_on=date(2026, 12, 20),
    mobile="13912345678", text="x", days_before=30, sweep_day=date(2026, 11, 30), task_count=2,
    created_at=timezone.now())
DeliveryAttempt.objects.create(message=m, number=1, worker="w", started_at=timezone.now())
print(Message.objects.count())
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_the_migration_goes_back_and_forth(tmp_path: Path) -> None:
    """In a database of its own (a child process: migrations cannot run in a test's transaction)."""
    import os
    import secrets
    import subprocess
    import sys
    import urllib.parse

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZIGE_", "DJANGO_"))}
    env["ZIGE_DATA_DIR"] = str(tmp_path / "data")
    url, name = os.environ.get("ZIGE_DATABASE_URL", ""), f"zige_unitsms_mig_{secrets.token_hex(4)}"
    if url:
        import psycopg

        admin = urllib.parse.urlsplit(url)._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        env["ZIGE_DATABASE_URL"] = urllib.parse.urlsplit(url)._replace(path=f"/{name}").geturl()

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False, cwd=Path(__file__).parents[2])  # fmt: skip
        assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
        return done.stdout

    try:
        manage("migrate", "--no-input")
        assert manage("shell", "-c", SEED).split()[-1] == "1"
        manage("migrate", "notifications", "0001_initial", "--no-input")  # back: the unit SMS go first
        count = "from zige.notifications.models import Message; print(Message.objects.count())"
        assert manage("shell", "-c", count).split()[-1] == "0"
        manage("migrate", "--no-input")  # and forward again
        assert manage("shell", "-c", SEED).split()[-1] == "1"
    finally:
        if url:
            with psycopg.connect(admin, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
