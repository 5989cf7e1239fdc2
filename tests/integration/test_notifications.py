"""Reminders: the outbox written with the run, one per person/deadline/channel/kind, the sender
(quiet hours, rate limit, leases, interrupted attempts) with the file gateway and an injected
clock, receipts, the inbox watcher, the daily run and the morning summary, the pages."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import UnitFactory, UnitOperatorFactory, UserFactory, finding_evidence, make_id
from tests.integration.test_runs import ROSTER_HEADER, do_import, do_run, write_csv
from zige.audit.models import AuditEvent
from zige.certification.models import Decision
from zige.feeds.models import PushedResult
from zige.notifications import jobs
from zige.notifications.config import NotifyConfig, from_environ, in_quiet_hours
from zige.notifications.content import TemplateError, check_templates, normalise_mobile, render, segments
from zige.notifications.gateways import FileGateway
from zige.notifications.models import (
    AttemptOutcome,
    DeliveryAttempt,
    InboxFile,
    InboxStatus,
    JobRun,
    Message,
)
from zige.notifications.selectors import unit_notices
from zige.notifications.services import _claim, messages_for_run, messages_send_due
from zige.roster.models import Recipient, Unit

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 30)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG = NotifyConfig(quiet_start=time(21), quiet_end=time(8),
                      rate_per_minute=1000, backoff_base_s=60, lease_s=60, callback_token="tok")  # fmt: skip


def at(hour: int, minute: int = 0, day: int = 30) -> datetime:
    """A moment in the bureau's time zone (Asia/Shanghai)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    settings.DATA_DIR = data
    settings.EVIDENCE_DIR = data / "evidence"
    settings.UPLOAD_DIR = data / "uploads"
    settings.RUNS_DIR = data / "runs"
    settings.ZIGE_NOTIFICATIONS = CONFIG
    data.mkdir(parents=True)
    return data


def person(i: int, mobile: str = "", unit: str = "U1", certified: str = "2026-01-15") -> list[str]:
    return [f"P{i:03d}", f"王小{i}明", make_id(100 + i, date(1950, 1, 1)), unit, f"单位{unit}", "正常", "3000",
            mobile, "2010-01-01", certified]  # fmt: skip


def roster(tmp_path: Path, rows: list[list[str]], name: str = "roster.csv") -> None:
    do_import(write_csv(tmp_path / name, ROSTER_HEADER, rows), "roster")


# --- the outbox ------------------------------------------------------------------------------


def test_a_run_writes_one_reminder_per_person_deadline_and_channel(tmp_path: Path) -> None:
    roster(tmp_path, [person(1, "13812345678"), person(2, ""), person(3, "0351-7654321"),
                      person(4, "13812345679", certified="2026-09-01")])  # fmt: skip
    run = do_run()
    messages = {m.recipient.person_no: m for m in Message.objects.select_related("recipient")}
    assert set(messages) == {"P001", "P002", "P003"}  # P004 is due in 2027-09: no reminder yet
    assert set(
        Decision.objects.filter(run=run, remind=True).values_list("recipient__person_no", flat=True)
    ) == set(messages)
    sms, no_phone, landline = messages["P001"], messages["P002"], messages["P003"]
    assert (sms.channel, sms.status, sms.mobile, sms.due_on) == (
        "sms",
        "queued",
        "13812345678",
        date(2027, 1, 15),
    )
    assert "王**明" in sms.text and "王小1明" not in sms.text  # the name is masked
    assert "2027年01月15日" in sms.text and "民生山西" in sms.text
    assert sms.segments <= 2
    assert (no_phone.channel, no_phone.status) == ("unit", "listed")
    assert "P002" in no_phone.text and landline.channel == "unit"
    # re-running (same day, next day) writes nothing new
    do_run()
    do_run(as_of=date(2026, 12, 1), now=datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert Message.objects.count() == 3
    assert messages_for_run(run_id=run.pk, now=timezone.now())["created"] == 0


def test_a_later_run_renders_no_message_that_an_earlier_run_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The people already reminded for the same deadline are skipped before their message is
    built (a province's daily run would otherwise render them all for the database to refuse);
    a new deadline or a new channel is still written."""
    from zige.notifications import services

    roster(tmp_path, [person(1, "13812345678"), person(2, "")])
    do_run()
    rendered: list[str] = []
    real = services.render
    monkeypatch.setattr(services, "render", lambda *a, **k: rendered.append(k["person_no"]) or real(*a, **k))
    do_run(as_of=date(2026, 12, 1), now=datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert rendered == [] and Message.objects.count() == 2
    roster(tmp_path, [person(1, "13812345678"), person(2, "13912345678")], name="roster2.csv")
    do_run(as_of=date(2026, 12, 2), now=datetime(2026, 12, 2, 9, tzinfo=UTC))
    assert rendered == ["P002"]  # now with a mobile: an SMS beside the unit's notice
    assert set(Message.objects.values_list("recipient__person_no", "channel")) == {
        ("P001", "sms"), ("P002", "unit"), ("P002", "sms"),
    }  # fmt: skip


def test_a_run_loads_only_the_reminders_not_already_standing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run leaves out of its reminder rows only those whose message is already written, not
    cancelled, on the channel the roll's number gives (`_standing`): an SMS to that very
    number or a unit notice for someone with no number. A number changed since, a cancelled
    message and a number removed are loaded and left to `_not_yet_written`: nothing new for the
    first, the second restored, a unit notice for the third."""
    from zige.notifications import services

    roster(tmp_path, [person(1, "13812345678"), person(2, ""), person(3, "13812345677"),
                      person(4, "13812345676"), person(5, "13812345675")])  # fmt: skip
    do_run()
    assert Message.objects.count() == 5
    Recipient.objects.filter(person_no="P003").update(mobile="13912345677")
    Message.objects.filter(recipient__person_no="P004").update(status="cancelled")
    Recipient.objects.filter(person_no="P005").update(mobile="")
    loaded: list[str] = []
    real = services._not_yet_written

    def recording(rows: list[Any], written: Any) -> Any:
        loaded.extend(row.person_no for row in rows)
        return real(rows, written)

    monkeypatch.setattr(services, "_not_yet_written", recording)
    do_run(as_of=date(2026, 12, 1), now=datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert sorted(loaded) == ["P003", "P004", "P005"]
    assert sorted(Message.objects.values_list("recipient__person_no", "channel", "status", "mobile")) == [
        ("P001", "sms", "queued", "13812345678"), ("P002", "unit", "listed", ""),
        ("P003", "sms", "queued", "13812345677"), ("P004", "sms", "queued", "13812345676"),
        ("P005", "sms", "queued", "13812345675"), ("P005", "unit", "listed", ""),
    ]  # fmt: skip


def test_the_database_refuses_a_second_reminder(tmp_path: Path) -> None:
    roster(tmp_path, [person(1, "13812345678")])
    do_run()
    m = Message.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(recipient=m.recipient, unit=m.unit, run=m.run, kind=m.kind, channel=m.channel,
                               due_on=m.due_on, mobile=m.mobile, text="again", created_at=m.created_at)  # fmt: skip


def test_the_database_refuses_an_unknown_status_of_a_message_an_inbox_file_or_a_job(tmp_path: Path) -> None:
    """A raw UPDATE around the services: check constraints refuse a status the code does not know
    (SQLite and PostgreSQL); a known one passes (the test can fail)."""
    from django.db import connection

    roster(tmp_path, [person(1, "13812345678")])
    do_run()
    rows = [
        (Message, Message.objects.get().pk, "cancelled"),
        (InboxFile, InboxFile.objects.create(agency="rail", file_name="rail.csv", sha256="0" * 64,
                                             status=InboxStatus.IMPORTED, picked_at=at(9)).pk, "quarantined"),
        (JobRun, JobRun.objects.create(job="summary", key="2026-11-30", started_at=at(9)).pk, "succeeded"),
    ]  # fmt: skip
    for model, pk, known in rows:
        table = connection.ops.quote_name(model._meta.db_table)
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", ["bogus", pk])
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", [known, pk])
        assert model.objects.get(pk=pk).status == known


def _failed_app_checks(tmp_path: Path) -> None:
    """P001 (a mobile) and P002 (none), last certified 2026-09-01, whose face checks in the app
    failed on 2026-11-20 (pushed results)."""
    from zige.accounts.models import DeviceClient

    roster(
        tmp_path, [person(1, "13812345678", certified="2026-09-01"), person(2, "", certified="2026-09-01")]
    )
    client = DeviceClient.objects.create(
        client_id="app", name="app", kind="app_auth", secret="s", created_at=timezone.now()
    )
    for i, p in enumerate(("1", "2")):
        PushedResult.objects.create(
            client=client, kind="app_auth", id_number=make_id(100 + int(p), date(1950, 1, 1)), name=f"王小{p}明",
            auth_time=at(10, day=20), result="fail", nonce=f"n{i}", received_at=at(10, day=20),
        )  # fmt: skip


def test_a_failed_app_certification_gets_one_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zige.notifications import services

    _failed_app_checks(tmp_path)
    do_run()
    notices = Message.objects.filter(kind="app_failed").order_by("recipient__person_no")
    assert [(m.recipient.person_no, m.channel, m.event_on) for m in notices] == [
        ("P001", "sms", date(2026, 11, 20)), ("P002", "unit", date(2026, 11, 20))
    ]  # fmt: skip
    assert "未通过" in notices[0].text
    loaded: list[tuple[str, str]] = []
    real = services._not_yet_written

    def recording(rows: list[Any], written: Any) -> Any:
        loaded.extend((row.person_no, row.kind) for row in rows)
        return real(rows, written)

    monkeypatch.setattr(services, "_not_yet_written", recording)
    do_run()
    assert Message.objects.filter(kind="app_failed").count() == 2
    assert not [row for row in loaded if row[1] == "app_failed"], (
        "told already: not loaded again (`_standing`)"
    )


def test_an_unsent_app_failure_notice_of_someone_certified_since_is_cancelled(tmp_path: Path) -> None:
    """P001's and P002's face checks in the app failed on 2026-11-20: the run writes them an
    APP认证未通过 notice (an SMS held by quiet hours, a notice on the unit's list). Both take a
    train the next day; the next run decides them eligible from that trip and cancels both
    notices, saying why: nobody is asked to try again what they have done another way."""
    _failed_app_checks(tmp_path)
    do_run(as_of=date(2026, 11, 21), now=datetime(2026, 11, 21, 2, tzinfo=SHANGHAI))
    failed = Message.objects.filter(kind="app_failed")
    assert sorted(failed.values_list("channel", "status")) == [("sms", "queued"), ("unit", "listed")]
    trips = [[make_id(100 + i, date(1950, 1, 1)), f"王小{i}明", "2026-11-21", "G1"] for i in (1, 2)]
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    do_run(as_of=date(2026, 11, 22), now=datetime(2026, 11, 22, 2, tzinfo=SHANGHAI))
    assert set(failed.values_list("status", flat=True)) == {"cancelled"}
    assert all(m.last_error.endswith("已重新认证，新的到期日 2027-11-21") for m in failed)


def test_a_later_run_that_stops_or_suspends_cancels_the_unsent_messages(tmp_path: Path) -> None:
    """A reminder queued (quiet hours, a retry) or listed for the unit is not sent to someone a
    later run finds dead or suspends: the run cancels it (notice 二(二))."""
    roster(tmp_path, [person(1, "13812345678"), person(2, ""), person(3, "13812345673")])
    do_run()
    assert set(Message.objects.values_list("status", flat=True)) == {"queued", "listed"}
    deaths = [[make_id(101, date(1950, 1, 1)), "王小1明", "2026-11-20"], [make_id(102, date(1950, 1, 1)), "王小2明", "2026-11-21"]]  # fmt: skip
    do_import(write_csv(tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], deaths))
    run = do_run(now=datetime(2026, 11, 30, 23, tzinfo=UTC))
    assert set(Decision.objects.filter(run=run).values_list("recipient__person_no", "status")) == {
        ("P001", "stop"), ("P002", "stop"), ("P003", "eligible"),
    }  # fmt: skip
    status = dict(Message.objects.values_list("recipient__person_no", "status"))
    assert status == {"P001": "cancelled", "P002": "cancelled", "P003": "queued"}
    gateway = FileGateway(tmp_path / "sms.jsonl")
    report = messages_send_due(
        gateway=gateway, clock=Clock(datetime(2026, 12, 1, 2, tzinfo=UTC)), config=CONFIG
    )
    assert report.sent == 1 and [x["mobile"] for x in lines(gateway.path)] == ["13812345673"]
    unit = Message.objects.get(recipient__person_no="P002").unit
    assert not unit_notices(unit, UserFactory(role="bureau_admin")).exists()


def terminated(row: list[str]) -> list[str]:
    return [*row[:5], "终止", *row[6:]]


def test_a_roster_import_that_terminates_someone_cancels_their_unsent_messages(tmp_path: Path) -> None:
    """终止 comes through the roster, not a run's decision, and a 终止 person is in no later run:
    the import that terminates them cancels what of theirs has not gone out, in its own
    transaction, audited on the import. Nobody else's messages change."""
    people = [person(1, "13812345678"), person(2, ""), person(3, "13812345673")]
    roster(tmp_path, people)
    do_run()
    assert set(Message.objects.values_list("status", flat=True)) == {"queued", "listed"}
    batch = do_import(
        write_csv(
            tmp_path / "roster2.csv", ROSTER_HEADER, [terminated(people[0]), terminated(people[1]), people[2]]
        ),
        "roster",
    )
    status = dict(Message.objects.values_list("recipient__person_no", "status"))
    assert status == {"P001": "cancelled", "P002": "cancelled", "P003": "queued"}
    event = AuditEvent.objects.get(action="messages.cancelled")
    assert (event.target_type, event.target_id) == ("import", str(batch.pk))
    assert event.after == {"cancelled": 2, "terminated": 2, "why": "terminated"}
    gateway = FileGateway(tmp_path / "sms.jsonl")
    report = messages_send_due(gateway=gateway, clock=Clock(at(18)), config=CONFIG)
    assert report.sent == 1 and [x["mobile"] for x in lines(gateway.path)] == ["13812345673"]
    unit = Message.objects.get(recipient__person_no="P002").unit
    assert not unit_notices(unit, UserFactory(role="bureau_admin")).exists()


def test_a_run_cancels_what_is_left_of_people_already_terminated(tmp_path: Path) -> None:
    """Messages of someone terminated before imports cancelled them (or by a write that went
    round the import) are cancelled by the next run, counted with its other cancellations."""
    roster(tmp_path, [person(1, "13812345678"), person(2, "")])
    do_run()
    Recipient.objects.filter(person_no="P001").update(benefit_status="terminated")
    run = do_run(now=datetime(2026, 11, 30, 23, tzinfo=UTC))
    status = dict(Message.objects.values_list("recipient__person_no", "status"))
    assert status == {"P001": "cancelled", "P002": "listed"}
    event = AuditEvent.objects.get(action="messages.created", target_id=str(run.pk))
    assert event.after["cancelled"] == 1


def test_a_back_dated_run_writes_and_cancels_no_reminder(tmp_path: Path) -> None:
    """Rules §8.4, §8.7: a run as of 2026-11-30 after the run as of 2026-12-31 succeeded is
    back-dated. Its stale stops would cancel the reminders the later run wrote, and it would
    write reminders of its own (P004, new on the roll): it does neither, and restores nothing.
    Only what the roll itself forces is still cancelled: P003 is 终止. Audited
    `messages.skipped` with why; through `run_execute`, so its tasks and payment actions are
    skipped too, and its page says all three. The next run of the current date decides as
    usual."""
    from zige.benefits.models import PaymentAction

    roster(tmp_path, [person(1, "13812345678"), person(2, ""), person(3, "13812345673")])
    dec31 = datetime(2026, 12, 31, 1, tzinfo=UTC)
    latest = do_run(as_of=date(2026, 12, 31), now=dec31)
    assert statuses() == {"P001": "queued", "P002": "listed", "P003": "queued"}
    ids = [make_id(101, date(1950, 1, 1)), make_id(102, date(1950, 1, 1))]
    deaths = [[ids[0], "王小1明", "2026-11-20"], [ids[1], "王小2明", "2026-11-21"]]
    do_import(write_csv(tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], deaths), now=dec31)
    roster(tmp_path, [person(4, "13812345674")], name="roster2.csv")
    Recipient.objects.filter(person_no="P003").update(benefit_status="terminated")

    stale = do_run(as_of=date(2026, 11, 30), now=dec31 + timedelta(hours=1))
    assert set(Decision.objects.filter(run=stale).values_list("recipient__person_no", "status", "remind")) == {
        ("P001", "stop", False), ("P002", "stop", False), ("P004", "eligible", True),
    }  # fmt: skip
    assert statuses() == {"P001": "queued", "P002": "listed", "P003": "cancelled"}
    event = AuditEvent.objects.get(action="messages.skipped", target_id=str(stale.pk))
    assert event.after == {"skipped_because": "backdated", "later_run": latest.pk, "later_as_of": "2026-12-31",
                           "cancelled": 1}  # fmt: skip
    assert not AuditEvent.objects.filter(action="messages.created", target_id=str(stale.pk)).exists()
    assert not PaymentAction.objects.exists()
    stale.refresh_from_db()
    assert stale.summary["backdated"] == {
        "later_run": latest.pk, "later_as_of": "2026-12-31", "skipped": ["messages", "tasks", "payment_actions"],
    }  # fmt: skip
    client = Client()
    client.force_login(UserFactory(role="bureau_operator"))
    page = client.get(reverse("certification:detail", args=[stale.pk])).content.decode()
    assert (
        "未提出待遇变更" in page and "未生成或关闭核实任务" in page and "未生成、恢复或撤销认证提醒" in page
    )

    current = do_run(as_of=date(2026, 12, 31), now=dec31 + timedelta(hours=2))
    assert statuses() == {"P001": "cancelled", "P002": "cancelled", "P003": "cancelled", "P004": "queued"}
    assert set(PaymentAction.objects.values_list("recipient__person_no", "kind", "run")) == {
        ("P001", "stop", current.pk), ("P002", "stop", current.pk),
    }  # fmt: skip


def dec(day: int, hour: int) -> datetime:
    """A moment in December 2026, in the bureau's time zone."""
    return datetime(2026, 12, day, hour, tzinfo=SHANGHAI)


def statuses() -> dict[str, str]:
    return dict(Message.objects.values_list("recipient__person_no", "status"))


def test_a_reversed_stop_gets_its_reminders_back_from_the_next_run(tmp_path: Path) -> None:
    """End to end through the services: reminded (the SMS held by quiet hours, the unit's list),
    a wrong death record stops the person and cancels both, the stop is approved; a trip after
    that death puts them under review, the bureau finds them alive (the death record is
    cleared) and reverses the stop. The next run decides them eligible with the same deadline:
    their messages are back — the same rows, no second one — the SMS goes out once and the unit
    lists them again."""
    from zige.benefits.models import PaymentAction
    from zige.benefits.services import payment_action_approve, payment_action_reverse
    from zige.verification.models import TaskKind, VerificationTask
    from zige.verification.services import review_resolve

    roster(tmp_path, [person(1, "13812345678"), person(2, "")])
    do_run(now=at(2))  # the 02:00 run: the SMS waits for the end of quiet hours
    written = dict(Message.objects.values_list("recipient__person_no", "pk"))
    ids = {p: make_id(100 + i, date(1950, 1, 1)) for i, p in ((1, "P001"), (2, "P002"))}
    deaths = [[ids["P001"], "王小1明", "2025-12-01"], [ids["P002"], "王小2明", "2025-12-01"]]
    do_import(write_csv(tmp_path / "death_2025.csv", ["身份证号", "姓名", "死亡日期"], deaths))
    stopped = do_run(now=at(3))
    assert set(Decision.objects.filter(run=stopped).values_list("status", flat=True)) == {"stop"}
    assert statuses() == {"P001": "cancelled", "P002": "cancelled"}
    maker, checker = UserFactory(), UserFactory()
    stops = list(PaymentAction.objects.filter(run=stopped, kind="stop"))
    for action in stops:
        payment_action_approve(action_id=action.pk, user=checker, now=at(10))

    trips = [[ids["P001"], "王小1明", "2025-12-20", "G1"], [ids["P002"], "王小2明", "2025-12-20", "G2"]]
    do_import(write_csv(tmp_path / "rail_2025.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    review = do_run(as_of=date(2026, 12, 1), now=dec(1, 2))
    assert set(Decision.objects.filter(run=review).values_list("status", flat=True)) == {"review"}
    assert statuses() == {"P001": "cancelled", "P002": "cancelled"}  # a review restores nothing
    for task in VerificationTask.objects.filter(kind=TaskKind.REVIEW):
        review_resolve(
            task_id=task.pk, user=checker, finding="alive", note="本人到场核实", now=dec(1, 10),
            files=finding_evidence(),
        )  # fmt: skip
    for action in stops:
        reversal = payment_action_reverse(
            action_id=action.pk, user=maker, reason="死亡信息有误", now=dec(1, 11)
        )
        payment_action_approve(action_id=reversal.pk, user=checker, now=dec(1, 12))
    assert statuses() == {"P001": "cancelled", "P002": "cancelled"}  # until a run decides

    again = do_run(as_of=date(2026, 12, 2), now=dec(2, 2))
    decided = set(Decision.objects.filter(run=again).values_list("status", "due_on", "remind"))
    assert decided == {("eligible", date(2027, 1, 15), True)}
    assert statuses() == {"P001": "queued", "P002": "listed"}
    assert dict(Message.objects.values_list("recipient__person_no", "pk")) == written
    assert set(Message.objects.values_list("run", "last_error")) == {(again.pk, "")}
    assert AuditEvent.objects.get(action="messages.created", target_id=str(again.pk)).after["restored"] == 2
    gateway = FileGateway(tmp_path / "sms.jsonl")
    clock = Clock(dec(2, 8))
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).sent == 1
    assert [x["mobile"] for x in lines(gateway.path)] == ["13812345678"]
    unit = Message.objects.get(recipient__person_no="P002").unit
    assert [m.recipient.person_no for m in unit_notices(unit, UserFactory(role="bureau_admin"))] == ["P002"]
    do_run(as_of=date(2026, 12, 3), now=dec(3, 2))  # the next day's run: nothing new, nothing again
    assert Message.objects.count() == 2
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).sent == 0


def test_a_suspension_that_ends_restores_the_sms_without_sending_it_twice(tmp_path: Path) -> None:
    """A short custodial sentence suspends the person while a timed-out SMS waits for its retry
    (it may have reached the gateway); the run after the sentence's end decides them eligible
    with the same deadline and restores the message with its attempt log, so the sender asks
    the gateway first, finds it, and sends nothing again."""
    from zige.notifications.gateways import TEMPORARY, Outcome

    roster(tmp_path, [person(1, "13812345678")])
    do_run(now=at(18))
    gateway = FileGateway(tmp_path / "sms.jsonl")

    class TimesOut(FileGateway):
        def send(self, request: Any) -> Any:
            super().send(request)  # the gateway took it, but the answer never came
            return Outcome(TEMPORARY, code="timeout", detail="read timed out")

    assert (
        messages_send_due(gateway=TimesOut(gateway.path), clock=Clock(at(18, 1)), config=CONFIG).retrying == 1
    )
    sentence = [[make_id(101, date(1950, 1, 1)), "王小1明", "2026-11-25", "2026-12-05", "拘役"]]
    do_import(
        write_csv(
            tmp_path / "sentence_2026.csv",
            ["身份证号", "姓名", "刑期起始日期", "刑期截止日期", "刑罚种类"],
            sentence,
        )
    )
    suspended = do_run(as_of=date(2026, 12, 1), now=dec(1, 19))
    assert Decision.objects.get(run=suspended).status == "suspend"
    assert statuses() == {"P001": "cancelled"}

    back = do_run(as_of=date(2026, 12, 10), now=dec(10, 19))
    decision = Decision.objects.get(run=back)
    assert (decision.status, decision.due_on, decision.remind) == ("eligible", date(2027, 1, 15), True)
    message = Message.objects.get()
    assert (message.status, message.attempts, message.run_id) == ("retrying", 1, back.pk)
    report = messages_send_due(gateway=gateway, clock=Clock(dec(10, 20)), config=CONFIG)
    assert report.found == 1 and report.sent == 1
    assert len(lines(gateway.path)) == 1 and Message.objects.get().status == "sent"


def test_a_person_the_roster_brings_back_from_termination_is_reminded_again(tmp_path: Path) -> None:
    """终止 by mistake and back to 正常 in the next roster: the next run restores the cancelled
    reminders of the same deadline."""
    people = [person(1, "13812345678"), person(2, "")]
    roster(tmp_path, people)
    do_run()
    roster(tmp_path, [terminated(people[0]), terminated(people[1])], name="roster2.csv")
    do_run(as_of=date(2026, 12, 1), now=datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert statuses() == {"P001": "cancelled", "P002": "cancelled"}
    roster(tmp_path, [*people, person(3, "")], name="roster3.csv")
    do_run(as_of=date(2026, 12, 2), now=datetime(2026, 12, 2, 9, tzinfo=UTC))
    assert statuses() == {"P001": "queued", "P002": "listed", "P003": "listed"}


def test_a_person_who_certifies_again_is_not_reminded_of_the_old_deadline(tmp_path: Path) -> None:
    """Reminded at the 02:00 run for the deadline 2027-01-15 (the SMS held by quiet hours, the
    notice on the unit's list), P001 and P002 take a train the next day: the next run decides
    them eligible until 2027-10-20. Their unsent reminders of the old deadline are cancelled in
    that run, saying why, and counted in its audit: no SMS tells them their certification runs
    out on 2027-01-15, and the unit does not chase them. P003, not certified again, keeps the
    reminder of their current deadline; a notice of a deadline already past (an earlier cycle)
    stays on the unit's record."""
    roster(tmp_path, [person(1, "13812345678"), person(2, ""), person(3, "13812345673")])
    first = do_run(as_of=date(2026, 10, 20), now=datetime(2026, 10, 20, 2, tzinfo=SHANGHAI))
    assert set(Message.objects.values_list("recipient__person_no", "status", "due_on")) == {
        ("P001", "queued", date(2027, 1, 15)), ("P002", "listed", date(2027, 1, 15)),
        ("P003", "queued", date(2027, 1, 15)),
    }  # fmt: skip
    p002 = Recipient.objects.get(person_no="P002")
    past = Message.objects.create(
        recipient=p002, unit=p002.unit, run=first, kind="reminder", channel="unit", due_on=date(2026, 1, 15),
        text="请通知…", status="listed", created_at=datetime(2025, 10, 20, 2, tzinfo=SHANGHAI),
    )  # fmt: skip
    trips = [[make_id(100 + i, date(1950, 1, 1)), f"王小{i}明", "2026-10-20", "G1"] for i in (1, 2)]
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    run = do_run(as_of=date(2026, 10, 21), now=datetime(2026, 10, 21, 2, 30, tzinfo=SHANGHAI))
    assert set(Decision.objects.filter(run=run).values_list("recipient__person_no", "status", "due_on")) == {
        ("P001", "eligible", date(2027, 10, 20)), ("P002", "eligible", date(2027, 10, 20)),
        ("P003", "eligible", date(2027, 1, 15)),
    }  # fmt: skip
    assert set(Message.objects.exclude(pk=past.pk).values_list("recipient__person_no", "status")) == {
        ("P001", "cancelled"), ("P002", "cancelled"), ("P003", "queued"),
    }  # fmt: skip
    for m in Message.objects.filter(status="cancelled"):
        assert m.last_error.endswith("已重新认证，新的到期日 2027-10-20") and m.next_attempt_at is None
    past.refresh_from_db()
    assert past.status == "listed"
    event = AuditEvent.objects.get(action="messages.created", target_id=str(run.pk))
    assert (event.after["cancelled"], event.after["cancelled_recertified"]) == (2, 2)
    unit = Unit.objects.get(unit_no="U1")
    assert not unit_notices(unit, UserFactory(role="bureau_admin"), due_from=date(2026, 10, 21)).exists()
    gateway = FileGateway(tmp_path / "sms.jsonl")
    report = messages_send_due(
        gateway=gateway, clock=Clock(datetime(2026, 10, 21, 9, 30, tzinfo=SHANGHAI)), config=CONFIG
    )
    assert report.sent == 1 and [x["mobile"] for x in lines(gateway.path)] == ["13812345673"]
    do_run(as_of=date(2026, 10, 22), now=datetime(2026, 10, 22, 2, tzinfo=SHANGHAI))  # nothing again
    assert Message.objects.filter(status__in=("queued", "listed")).exclude(pk=past.pk).count() == 0


def test_an_sms_goes_to_the_number_on_the_roll_when_it_is_sent(tmp_path: Path) -> None:
    """The 02:00 run writes the SMS, quiet hours hold them, and at 07:00 a roster import corrects
    P001's number and removes P002's (not theirs). At 08:30 P001's SMS goes to the new number,
    not the old one; P002's is not sent to a number that is no longer theirs: it is cancelled and
    the reminder is on the unit's list as for anyone without a mobile (rules §2.6). Both audited,
    numbers masked. P003's number did not change. The next run writes nothing more."""
    from zige.notifications.content import REASON_NO_MOBILE

    people = [person(1, "13812345671"), person(2, "13812345672"), person(3, "13812345673")]
    roster(tmp_path, people)
    do_run(now=at(2))
    assert Message.objects.filter(channel="sms", status="queued").count() == 3
    people[0][7], people[1][7] = "13900000001", ""
    roster(tmp_path, people, name="roster2.csv")
    gateway = FileGateway(tmp_path / "sms.jsonl")
    report = messages_send_due(gateway=gateway, clock=Clock(at(8, 30)), config=CONFIG)
    assert sorted(x["mobile"] for x in lines(gateway.path)) == ["13812345673", "13900000001"]
    assert (report.sent, report.as_dict().get("redirected"), report.as_dict().get("to_unit")) == (2, 1, 1)
    assert sorted(Message.objects.values_list("recipient__person_no", "channel", "status", "mobile")) == [
        ("P001", "sms", "sent", "13900000001"), ("P002", "sms", "cancelled", "13812345672"),
        ("P002", "unit", "listed", ""), ("P003", "sms", "sent", "13812345673"),
    ]  # fmt: skip
    cancelled = Message.objects.get(status="cancelled")
    assert "本人已无手机号码" in cancelled.last_error and cancelled.attempt_log.count() == 0
    notice = Message.objects.get(channel="unit")
    assert notice.notice_reason == REASON_NO_MOBILE and REASON_NO_MOBILE in notice.text
    unit = Unit.objects.get(unit_no="U1")
    assert [m.recipient.person_no for m in unit_notices(unit, UserFactory(role="bureau_admin"))] == ["P002"]
    changed = AuditEvent.objects.get(action="messages.mobile_changed")
    assert changed.after == {"from": "138****5671", "to": "139****0001"}
    removed = AuditEvent.objects.get(action="messages.mobile_removed", target_id=str(cancelled.pk))
    assert removed.after["notice"] == notice.pk and removed.after["from"] == "138****5672"
    do_run(as_of=date(2026, 12, 1), now=dec(1, 2))
    assert Message.objects.count() == 4
    assert messages_send_due(gateway=gateway, clock=Clock(dec(1, 9)), config=CONFIG).claimed == 0


def test_a_restored_sms_goes_to_the_number_on_the_roll_now(tmp_path: Path) -> None:
    """终止 by mistake, the SMS is cancelled; the roster that brings the person back to 正常 also
    has their new number. The run that restores the message writes it to that number (counted
    `restored_new_mobile`), not to the one it was written for."""
    people = [person(1, "13812345678")]
    roster(tmp_path, people)
    do_run()
    roster(tmp_path, [terminated(people[0])], name="roster2.csv")
    assert statuses() == {"P001": "cancelled"}
    people[0][7] = "13900000001"
    roster(tmp_path, people, name="roster3.csv")
    run = do_run(as_of=date(2026, 12, 1), now=dec(1, 9))
    message = Message.objects.get()
    assert (message.status, message.mobile) == ("queued", "13900000001")
    after = AuditEvent.objects.get(action="messages.created", target_id=str(run.pk)).after
    assert (after["restored"], after["restored_new_mobile"]) == (1, 1)
    gateway = FileGateway(tmp_path / "sms.jsonl")
    assert messages_send_due(gateway=gateway, clock=Clock(dec(1, 10)), config=CONFIG).sent == 1
    assert [x["mobile"] for x in lines(gateway.path)] == ["13900000001"]


def test_mobile_numbers_are_validated() -> None:
    assert normalise_mobile("138 1234 5678") == "13812345678"
    assert normalise_mobile("+86 138-1234-5678") == "13812345678"
    assert normalise_mobile("0351-7654321") == ""
    assert normalise_mobile("12345678901") == ""
    assert normalise_mobile("") == ""


def test_texts_fit_the_sms_limits_and_templates_are_configurable() -> None:
    assert segments("字" * 70) == 1 and segments("字" * 71) == 2 and segments("字" * 135) == 3
    assert check_templates(CONFIG) == []
    long = replace(CONFIG, template_reminder="{name}" + "很长的提醒" * 40)
    assert check_templates(long)
    with pytest.raises(TemplateError):
        render(
            long, kind="reminder", channel="sms", name="王小明", due_on=AS_OF, person_no="P1", unit_phone=""
        )
    broken = replace(CONFIG, template_reminder="{nobody}")
    assert any("broken" in p for p in check_templates(broken))
    other = replace(CONFIG, template_reminder="{name}：请于{due}前用{app}认证。", app_name="某省人社")
    text = render(
        other, kind="reminder", channel="sms", name="李四", due_on=AS_OF, person_no="P1", unit_phone=""
    )
    assert text.text == "李*：请于2026年11月30日前用某省人社认证。"
    cfg = from_environ(
        {"ZIGE_QUIET_HOURS": "22:30-07:00", "ZIGE_DAILY_RUN_AT": "03:15", "ZIGE_APP_NAME": "X"}
    )
    assert (cfg.quiet_start.hour, cfg.quiet_end.hour, cfg.daily_run_at, cfg.app_name) == (
        22,
        7,
        time(3, 15),
        "X",
    )
    assert in_quiet_hours(CONFIG, at(21).time()) and in_quiet_hours(CONFIG, at(7, 59).time())
    assert not in_quiet_hours(CONFIG, at(8).time()) and not in_quiet_hours(CONFIG, at(20, 59).time())


def test_a_broken_template_never_breaks_the_run(tmp_path: Path, settings: Any) -> None:
    settings.ZIGE_NOTIFICATIONS = replace(CONFIG, template_reminder="{nobody}")
    roster(tmp_path, [person(1, "13812345678")])
    do_run()
    assert Message.objects.count() == 0  # skipped, audited; the next run (fixed) writes them
    settings.ZIGE_NOTIFICATIONS = CONFIG
    do_run()
    assert Message.objects.count() == 1


# --- the sender ------------------------------------------------------------------------------


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.fixture
def five(tmp_path: Path) -> None:
    roster(tmp_path, [person(i, f"1381234567{i}") for i in range(5)])
    do_run()


def test_quiet_hours_with_an_injected_clock(five: None, tmp_path: Path) -> None:
    gateway = FileGateway(tmp_path / "sms.jsonl")
    clock = Clock(at(21, 30))
    report = messages_send_due(gateway=gateway, clock=clock, config=CONFIG)
    assert report.quiet and report.sent == 0 and not lines(gateway.path)
    clock.now = datetime(2026, 12, 1, 7, 59, tzinfo=SHANGHAI)
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).sent == 0
    clock.now = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).sent == 5
    assert sorted(x["out_id"] for x in lines(gateway.path)) == sorted(m.out_id for m in Message.objects.all())
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    # quiet hours begin in the middle of a batch: the rest waits, claimed messages are given back
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).claimed == 0


def test_quiet_hours_begin_mid_batch(five: None, tmp_path: Path) -> None:
    gateway = FileGateway(tmp_path / "sms.jsonl")
    clock = Clock(at(20, 59))

    class Ticking(FileGateway):
        def send(self, request: Any) -> Any:
            clock.advance(seconds=25)
            return super().send(request)

    report = messages_send_due(gateway=Ticking(gateway.path), clock=clock, config=CONFIG)
    assert report.quiet and report.sent == 3 and report.released == 2
    assert Message.objects.filter(status="queued", lease_owner="").count() == 2


def test_rate_limit(five: None, tmp_path: Path) -> None:
    gateway = FileGateway(tmp_path / "sms.jsonl")
    config = replace(CONFIG, rate_per_minute=2)
    clock = Clock(at(18))
    assert messages_send_due(gateway=gateway, clock=clock, config=config).sent == 2
    report = messages_send_due(gateway=gateway, clock=clock, config=config)
    assert report.rate_limited and report.sent == 0
    clock.advance(seconds=61)
    assert messages_send_due(gateway=gateway, clock=clock, config=config).sent == 2
    clock.advance(seconds=61)
    assert messages_send_due(gateway=gateway, clock=clock, config=config).sent == 1
    assert len(lines(gateway.path)) == 5


def test_two_senders_never_claim_the_same_message(five: None) -> None:
    now = at(18)
    a = _claim(now=now, token="a", limit=3, lease=timedelta(seconds=60))
    b = _claim(now=now, token="b", limit=10, lease=timedelta(seconds=60))
    assert len(a) == 3 and len(b) == 2 and not {m.pk for m in a} & {m.pk for m in b}
    assert _claim(now=now + timedelta(seconds=30), token="c", limit=10, lease=timedelta(seconds=60)) == []
    # a dead sender's lease runs out: its messages are claimed again
    assert len(_claim(now=now + timedelta(seconds=61), token="d", limit=10, lease=timedelta(seconds=60))) == 5


def test_a_sender_killed_during_the_call_does_not_cause_a_second_sms(five: None, tmp_path: Path) -> None:
    gateway = FileGateway(tmp_path / "sms.jsonl")
    clock = Clock(at(18))

    class Dies(FileGateway):
        def send(self, request: Any) -> Any:
            super().send(request)  # the gateway accepted it ...
            raise SystemExit  # ... and the process died before recording that

    with pytest.raises(SystemExit):
        messages_send_due(gateway=Dies(gateway.path), clock=clock, config=CONFIG, limit=1)
    dead = Message.objects.get(status="sending")
    assert dead.attempt_log.get().outcome == AttemptOutcome.IN_FLIGHT
    clock.advance(seconds=CONFIG.lease_s + 1)
    report = messages_send_due(gateway=gateway, clock=clock, config=CONFIG)
    assert report.found == 1 and report.sent == 5
    assert sorted(x["out_id"] for x in lines(gateway.path)) == sorted(m.out_id for m in Message.objects.all())
    # the cut-short attempt never reached the gateway: then it is sent
    m = Message.objects.get(pk=dead.pk)
    assert m.status == "sent" and m.attempt_log.get().outcome == AttemptOutcome.FOUND


def test_an_attempt_that_never_reached_the_gateway_is_sent_after_the_lease(
    five: None, tmp_path: Path
) -> None:
    gateway = FileGateway(tmp_path / "sms.jsonl")
    clock = Clock(at(18))

    class DiesBefore(FileGateway):
        def send(self, request: Any) -> Any:
            raise SystemExit

    with pytest.raises(SystemExit):
        messages_send_due(gateway=DiesBefore(gateway.path), clock=clock, config=CONFIG, limit=1)
    clock.advance(seconds=CONFIG.lease_s + 1)
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).sent == 5
    assert len(lines(gateway.path)) == 5
    assert DeliveryAttempt.objects.filter(outcome=AttemptOutcome.NOT_FOUND).count() == 1


# --- receipts --------------------------------------------------------------------------------


def test_receipts_are_authenticated_and_idempotent(five: None, tmp_path: Path, client: Client) -> None:
    messages_send_due(gateway=FileGateway(tmp_path / "sms.jsonl"), clock=Clock(at(18)), config=CONFIG)
    m = Message.objects.order_by("pk").first()
    assert m is not None
    body = json.dumps([{"biz_id": m.provider_message_id, "out_id": m.out_id, "success": True, "err_code": "DELIVERED",
                        "report_time": "2026-11-30 10:05:00"}])  # fmt: skip
    url = reverse("notifications:receipt", kwargs={"provider": "aliyun"})
    assert client.post(url, body, content_type="application/json").status_code == 403
    assert client.post(url + "?token=wrong", body, content_type="application/json").status_code == 403
    for expected in ({"new": 1, "duplicate": 0}, {"new": 0, "duplicate": 1}):
        r = client.post(url + "?token=tok", body, content_type="application/json")
        assert r.status_code == 200 and r.json()["code"] == 0
        assert {k: r.json()[k] for k in expected} == expected
    m.refresh_from_db()
    assert m.status == "delivered" and m.receipts.count() == 1
    assert (
        client.post(
            url, "not json", content_type="application/json", headers={"X-Zige-Token": "tok"}
        ).status_code
        == 400
    )


class AcceptsAfterAll:
    """An Aliyun-like gateway whose first answer is an error although it took the message (a
    502 from its front end), then accepts; it records every message it is given."""

    name = "aliyun"

    def __init__(self) -> None:
        from zige.notifications.gateways import SENT, TEMPORARY, Outcome

        self.sent: list[tuple[str, str]] = []
        self.answers = [Outcome(TEMPORARY, code="http_502", detail="bad gateway"),
                        Outcome(SENT, provider_message_id="biz-2")]  # fmt: skip

    def send(self, request: Any) -> Any:
        self.sent.append((request.out_id, request.mobile))
        return self.answers.pop(0)

    def lookup(self, *, out_id: str, mobile: str, sent_on: date) -> None:
        return None


def delivered_report(m: Message) -> str:
    return json.dumps([{"biz_id": "biz-1", "out_id": m.out_id, "success": True, "err_code": "DELIVERED",
                        "report_time": "2026-11-30 18:00:05"}])  # fmt: skip


def test_a_delivery_report_for_an_sms_waiting_for_a_retry_stops_the_retry(
    tmp_path: Path, client: Client
) -> None:
    """The gateway answered the first attempt with a 502 but had taken the SMS: the message waits
    for its retry when the delivery report comes. The report marks it delivered (sent at its
    attempt) and it is never sent again."""
    roster(tmp_path, [person(1, "13812345678")])
    do_run()
    gateway = AcceptsAfterAll()
    clock = Clock(at(18))
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).retrying == 1
    m = Message.objects.get()
    assert m.status == "retrying" and m.next_attempt_at is not None
    url = reverse("notifications:receipt", kwargs={"provider": "aliyun"}) + "?token=tok"
    assert client.post(url, delivered_report(m), content_type="application/json").json()["new"] == 1
    m.refresh_from_db()
    assert (m.status, m.next_attempt_at, m.provider_message_id) == ("delivered", None, "biz-1")
    assert m.sent_at == m.attempt_log.get().started_at and m.delivered_at is not None
    clock.advance(minutes=30)
    assert messages_send_due(gateway=gateway, clock=clock, config=CONFIG).claimed == 0
    assert gateway.sent == [(m.out_id, "13812345678")]
    assert Message.objects.get().status == "delivered"


def test_a_cancelled_sms_reported_delivered_is_not_sent_when_restored(tmp_path: Path, client: Client) -> None:
    """The report comes while the message is cancelled (the person was terminated by mistake
    after the 502): it is kept. Back to 正常, the next run restores the message to `retrying`;
    the sender finds the report and marks it delivered instead of sending it a second time."""
    people = [person(1, "13812345678")]
    roster(tmp_path, people)
    do_run()
    gateway = AcceptsAfterAll()
    clock = Clock(at(18))
    messages_send_due(gateway=gateway, clock=clock, config=CONFIG)
    roster(tmp_path, [terminated(people[0])], name="roster2.csv")
    m = Message.objects.get()
    assert m.status == "cancelled"
    url = reverse("notifications:receipt", kwargs={"provider": "aliyun"}) + "?token=tok"
    assert client.post(url, delivered_report(m), content_type="application/json").json()["new"] == 1
    assert Message.objects.get().status == "cancelled"
    roster(tmp_path, [*people, person(2, "")], name="roster3.csv")
    do_run(as_of=date(2026, 12, 1), now=dec(1, 9))
    assert Message.objects.get(pk=m.pk).status == "retrying"
    clock.now = dec(1, 10)
    report = messages_send_due(gateway=gateway, clock=clock, config=CONFIG)
    assert gateway.sent == [(m.out_id, "13812345678")]  # once, at the 502
    m.refresh_from_db()
    assert (m.status, m.next_attempt_at, m.lease_owner) == ("delivered", None, "")
    assert (report.claimed, report.sent, report.as_dict().get("delivered_before")) == (1, 0, 1)


# --- inbox, daily run, summary ---------------------------------------------------------------


def test_inbox_imports_each_file_once_and_quarantines_bad_ones(tmp_path: Path, data_dirs: Path) -> None:
    inbox = data_dirs / "inbox"
    (inbox / "roster").mkdir(parents=True)
    (inbox / "rail").mkdir(parents=True)
    write_csv(inbox / "roster" / "roster_2026-11.csv", ROSTER_HEADER, [person(1, "13812345678")])
    (inbox / "rail" / "rail_bad.csv").write_bytes(b"\x00\x01 not a table")
    (inbox / "rail" / "mystery.docx").write_text("?", encoding="utf-8")
    (inbox / "rail" / "rail_2026.csv.part").write_text("still uploading", encoding="utf-8")
    now = timezone.now() + timedelta(minutes=5)
    counts = jobs.inbox_scan(now=now, config=CONFIG)
    assert counts["imported"] == 1 and counts["quarantined"] == 2
    quarantine = inbox / "rail" / "quarantine"
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "mystery.docx", "mystery.docx.error.txt", "rail_bad.csv", "rail_bad.csv.error.txt"
    ]  # fmt: skip
    assert (quarantine / "mystery.docx.error.txt").read_text(encoding="utf-8").strip()
    assert (inbox / "rail" / "rail_2026.csv.part").exists()
    assert InboxFile.objects.filter(status=InboxStatus.QUARANTINED).count() == 2
    # the same roster dropped again is a duplicate, not a second import
    write_csv(inbox / "roster" / "roster_again.csv", ROSTER_HEADER, [person(1, "13812345678")])
    assert jobs.inbox_scan(now=now, config=CONFIG) == {"imported": 0, "duplicate": 1, "quarantined": 0}
    assert jobs.inbox_scan(now=now, config=CONFIG) == {"imported": 0, "duplicate": 0, "quarantined": 0}
    # a file still being written (too new) waits
    write_csv(inbox / "roster" / "fresh.csv", ROSTER_HEADER, [person(2)])
    assert jobs.inbox_scan(now=timezone.now(), config=CONFIG)["imported"] == 0


def test_daily_run_and_morning_summary_once_a_day(tmp_path: Path, data_dirs: Path, client: Client) -> None:
    roster(tmp_path, [person(1, "13812345678"), person(2)])
    clock = Clock(at(1, 59))
    assert jobs.daily_run(clock=clock, config=CONFIG) is None
    clock.now = at(2, 0)
    job = jobs.daily_run(clock=clock, config=CONFIG)
    assert job is not None and job.status == "succeeded" and job.detail["messages"] == 2
    assert jobs.daily_run(clock=clock, config=CONFIG) is None  # once a day
    clock.now = at(7, 30)
    summary = jobs.morning_summary(clock=clock, config=CONFIG)
    assert summary is not None and summary.status == "succeeded"
    text = (data_dirs / "summaries" / "2026-11-30.txt").read_text(encoding="utf-8")
    assert "晨报" in text and "需要人工处理" in text
    assert "新建 短信 1，单位通知 1" in text and "已完成" in text  # channels and statuses in Chinese
    assert "{" not in text and "succeeded" not in text and "sms" not in text
    assert jobs.morning_summary(clock=clock, config=CONFIG) is None
    assert JobRun.objects.filter(job="daily_run").count() == 1
    # the overview page says statuses, channels and jobs in Chinese; the worker's name is labelled
    JobRun.objects.create(job="scheduler", key="vm:28715", started_at=at(7, 31))
    client.force_login(UserFactory())
    page = client.get(reverse("notifications:overview")).content.decode()
    assert "每日认证运行" in page and "调度程序" in page and "已列入单位通知名单" in page
    assert "新建提醒 短信 1、单位通知 1" in page
    for code in ("daily_run", "scheduler", ">listed", "listed<", "queued", "sms 1", "unit 1"):
        assert code not in page, code


def test_the_overview_names_the_scheduler_in_chinese_not_by_its_process(
    client: Client, settings: Any
) -> None:
    """The 定时任务 panel showed the scheduler's key (进程名 vm:28715, host:pid) as its label: an
    officer sees 调度程序, whether it runs, when it last checked and when the next daily
    certification is due; the process name is left to the tooltip for an administrator."""
    settings.ZIGE_NOTIFICATIONS = CONFIG
    JobRun.objects.create(job="scheduler", key="vm:28715", started_at=timezone.now() - timedelta(seconds=20))
    client.force_login(UserFactory())
    page = client.get(reverse("notifications:overview")).content.decode()
    assert "调度程序" in page and "运行中" in page and "最近检查" in page and "下次每日认证" in page
    assert page.count("vm:28715") == 1 and 'title="进程 vm:28715"' in page  # the tooltip only
    assert "进程名" not in page
    JobRun.objects.filter(job="scheduler").update(started_at=timezone.now() - timedelta(hours=1))
    page = client.get(reverse("notifications:overview")).content.decode()
    assert "未在运行" in page and "运行中" not in page


def test_scheduler_status_gives_the_next_daily_run() -> None:
    beat = JobRun(job="scheduler", key="vm:1", started_at=at(1, 0))
    before = jobs.scheduler_status(beat, now=at(1, 0), config=CONFIG)
    assert timezone.localtime(before["next_daily_run"]) == at(2, 0) and before["alive"]
    after = jobs.scheduler_status(beat, now=at(3, 0), config=CONFIG)
    assert timezone.localtime(after["next_daily_run"]) == at(2, 0, day=30) + timedelta(days=1)
    assert not after["alive"] and after["process"] == "vm:1"
    assert (
        jobs.scheduler_status(beat, now=at(1, 0), config=replace(CONFIG, daily_run_at=None))["next_daily_run"]
        is None
    )


def test_tick_does_everything_and_a_failing_step_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: Any
) -> None:
    roster(tmp_path, [person(1, "13812345678")])
    do_run()

    def boom(**kwargs: Any) -> None:
        raise RuntimeError("inbox broke")

    monkeypatch.setattr(jobs, "inbox_scan", boom)
    result = jobs.tick(clock=Clock(at(18)), gateway=FileGateway(tmp_path / "sms.jsonl"), config=CONFIG)
    assert result["inbox"].startswith("error") and result["send"]["sent"] == 1


# --- pages -----------------------------------------------------------------------------------


def test_person_page_history_and_unit_notice_list(
    tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the notice page shows the notices whose deadline has not passed: seen on the run's day
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: date(2026, 11, 30))
    roster(tmp_path, [person(1, "13812345678"), person(2, "")])
    do_run()
    messages_send_due(gateway=FileGateway(tmp_path / "sms.jsonl"), clock=Clock(at(18)), config=CONFIG)
    client.force_login(UserFactory())
    page = client.get(reverse("roster:person", kwargs={"person_no": "P001"})).content.decode()
    assert "认证提醒记录" in page and "已发送" in page and "138****5678" in page and "13812345678" not in page
    unit_page = client.get(reverse("roster:unit", kwargs={"unit_no": "U1"})).content.decode()
    assert reverse("notifications:unit_notices", kwargs={"unit_no": "U1"}) in unit_page
    notices = client.get(reverse("notifications:unit_notices", kwargs={"unit_no": "U1"})).content.decode()
    assert "单位通知名单" in notices and "P002" in notices and "P001" not in notices
    assert "王小2明" in notices  # the name in full, as on the person page
    csv_body = b"".join(
        client.get(reverse("notifications:unit_notices_csv", kwargs={"unit_no": "U1"})).streaming_content
    )
    assert "P002" in csv_body.decode("utf-8-sig") and "P001" not in csv_body.decode("utf-8-sig")
    assert ",王小2明," in csv_body.decode("utf-8-sig")
    overview = client.get(reverse("notifications:overview"))
    assert overview.status_code == 200
    other = UnitOperatorFactory(unit=UnitFactory())
    client.force_login(other)
    assert client.get(reverse("notifications:unit_notices_csv", kwargs={"unit_no": "U1"})).status_code == 404


def test_unit_notice_page_shows_every_current_notice_nearest_deadline_first(client: Client) -> None:
    """A unit's notice list grows with every cycle (a notice stays `listed`). The page must show
    the notices still to act on — all of them, paged, nearest deadline first, each linked to the
    person — and not the first 50 of all time, which after a year are long-expired ones."""
    from tests.factories import RecipientFactory, RunFactory

    unit = UnitFactory()
    run = RunFactory()
    today = timezone.localdate()
    for n in range(60):  # last cycle's notices, deadlines passed
        Message.objects.create(
            recipient=RecipientFactory(unit=unit, person_no=f"OLD{n:04d}"), unit=unit, run=run, kind="reminder",
            channel="unit", due_on=today - timedelta(days=300 - n), text="旧通知", status="listed",
            created_at=timezone.now(),
        )  # fmt: skip
    for n in range(60):  # this cycle's
        Message.objects.create(
            recipient=RecipientFactory(unit=unit, person_no=f"NEW{n:04d}"), unit=unit, run=run, kind="reminder",
            channel="unit", due_on=today + timedelta(days=1 + n), text="本期通知", status="listed",
            created_at=timezone.now(),
        )  # fmt: skip
    client.force_login(UnitOperatorFactory(unit=unit))
    url = reverse("notifications:unit_notices", kwargs={"unit_no": unit.unit_no})
    first = client.get(url).content.decode()
    assert "NEW0000" in first and "OLD0000" not in first
    assert reverse("roster:person", kwargs={"person_no": "NEW0000"}) in first
    assert "已过截止日期" in first  # the expired ones are said to exist (and are in the CSV)
    second = client.get(url, {"page": 2}).content.decode()
    assert "NEW0059" in second  # the 51st current notice is reachable
    csv_body = b"".join(
        client.get(
            reverse("notifications:unit_notices_csv", kwargs={"unit_no": unit.unit_no})
        ).streaming_content
    ).decode("utf-8-sig")
    assert "OLD0000" in csv_body and "NEW0059" in csv_body


def test_a_reminder_sms_that_cannot_reach_the_person_goes_on_the_units_notice_list(tmp_path: Path) -> None:
    """Notice 一(四): 没有手机号码的退休人员由参保单位通知. A number the gateway refuses for good
    (空号, 停机) is no phone: the reminder must reach the person through their unit, or nobody
    tells them before the deadline and they become 待核实 (and, unverified, suspended)."""
    from zige.notifications.gateways import PERMANENT, Outcome

    roster(tmp_path, [person(1, "13812345678")])
    do_run()

    class Refuses(FileGateway):
        def send(self, request: Any) -> Any:
            return Outcome(PERMANENT, code="isv.MOBILE_NUMBER_ILLEGAL", detail="空号")

    report = messages_send_due(gateway=Refuses(tmp_path / "sms.jsonl"), clock=Clock(at(18)), config=CONFIG)
    assert report.failed == 1
    sms = Message.objects.get(channel="sms")
    assert sms.status == "failed"
    unit = Unit.objects.get(unit_no="U1")
    listed = [(m.recipient.person_no, m.kind, m.due_on, m.status) for m in unit_notices(unit, UserFactory())]
    assert listed == [("P001", "reminder", sms.due_on, "listed")]
    notice = Message.objects.get(channel="unit")
    assert "王**明" in notice.text and "P001" in notice.text
    assert AuditEvent.objects.filter(action="messages.to_unit_list", target_id=str(sms.pk)).exists()


def notice_rows(client: Client, unit_no: str) -> tuple[str, list[dict[str, str]]]:
    """The notice list page and the rows of its CSV."""
    import csv
    import io

    page = client.get(reverse("notifications:unit_notices", kwargs={"unit_no": unit_no})).content.decode()
    body = b"".join(
        client.get(reverse("notifications:unit_notices_csv", kwargs={"unit_no": unit_no})).streaming_content
    ).decode("utf-8-sig")
    return page, list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize(
    "template", ["", "请通知{name}（{person_no}）于{due}前认证：{reason}。", "请通知{name}于{due}前认证。"]
)
def test_a_notice_for_an_unreachable_number_does_not_say_the_person_has_none(
    tmp_path: Path, client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    """The unit is told why it is to tell the person: P001 has a mobile number our SMS could not
    reach (短信无法送达), P002 has none (本人无手机号码). A notice that said 本人无手机号码 of
    someone whose number the unit has on file would be false, and the clerk would not ask the
    person for a number that works. Said in the notice (the default text, or a configured one
    with {reason}), on the list page and in its CSV; a configured text without {reason} still
    renders, and the list says why."""
    from zige.notifications.content import REASON_NO_MOBILE, REASON_SMS_UNDELIVERABLE
    from zige.notifications.gateways import PERMANENT, Outcome

    config = replace(CONFIG, template_unit=template)
    settings.ZIGE_NOTIFICATIONS = config
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: date(2026, 11, 30))
    roster(tmp_path, [person(1, "13812345678"), person(2, "")])
    do_run()

    class Refuses(FileGateway):
        def send(self, request: Any) -> Any:
            return Outcome(PERMANENT, code="isv.MOBILE_NUMBER_ILLEGAL", detail="空号")

    messages_send_due(gateway=Refuses(tmp_path / "sms.jsonl"), clock=Clock(at(18)), config=config)
    unreachable = Message.objects.get(channel="unit", recipient__person_no="P001")
    no_phone = Message.objects.get(channel="unit", recipient__person_no="P002")
    assert (unreachable.notice_reason, no_phone.notice_reason) == (REASON_SMS_UNDELIVERABLE, REASON_NO_MOBILE)
    assert "无手机号码" not in unreachable.text
    if "{reason}" in (template or "{reason}"):
        assert REASON_SMS_UNDELIVERABLE in unreachable.text and REASON_NO_MOBILE in no_phone.text

    client.force_login(UserFactory())
    page, rows = notice_rows(client, "U1")
    assert "通知原因" in page
    row = {r["个人编号"]: r["通知原因"] for r in rows}
    assert row == {"P001": REASON_SMS_UNDELIVERABLE, "P002": REASON_NO_MOBILE}
    p001 = page[page.index("P001</a>") :].split("</tr>")[0]
    assert REASON_SMS_UNDELIVERABLE in p001 and "无手机号码" not in p001
    p002 = page[page.index("P002</a>") :].split("</tr>")[0]
    assert REASON_NO_MOBILE in p002


def test_a_failed_sms_notice_written_before_its_reason_was_stored_says_so(client: Client) -> None:
    """Notices that a failed SMS put on the list before the reason was stored name that SMS
    (`SMS #<id> failed: ...`): the list says 短信无法送达 for them too, and a move that writes
    the notice again for the new unit keeps the reason."""
    from tests.factories import RecipientFactory, RunFactory
    from zige.notifications.content import REASON_NO_MOBILE, REASON_SMS_UNDELIVERABLE
    from zige.notifications.services import messages_reassign

    old, new = UnitFactory(), UnitFactory()
    run = RunFactory()
    dead = RecipientFactory(unit=old, person_no="DEAD1")
    none = RecipientFactory(unit=old, person_no="NONE1")
    for who, error in ((dead, "SMS #7 undelivered: MOBILE_NOT_ON_SERVICE"), (none, "")):
        Message.objects.create(
            recipient=who, unit=old, run=run, kind="reminder", channel="unit", due_on=date(2027, 2, 28),
            text="请通知…：本人无手机号码，…", status="listed", created_at=timezone.now(), last_error=error,
        )  # fmt: skip
    Recipient.objects.filter(pk__in=[dead.pk, none.pk]).update(unit=new)
    assert messages_reassign(recipient_ids=[dead.pk, none.pk], batch_id=1, now=timezone.now()) == 2
    moved = Message.objects.get(recipient=dead)
    assert moved.notice_reason == REASON_SMS_UNDELIVERABLE
    assert REASON_SMS_UNDELIVERABLE in moved.text and "无手机号码" not in moved.text
    assert REASON_NO_MOBILE in Message.objects.get(recipient=none).text
    client.force_login(UserFactory())
    _, rows = notice_rows(client, new.unit_no)
    assert {r["个人编号"]: r["通知原因"] for r in rows} == {
        "DEAD1": REASON_SMS_UNDELIVERABLE, "NONE1": REASON_NO_MOBILE,
    }  # fmt: skip


def test_an_undelivered_receipt_puts_the_reminder_on_the_units_notice_list(
    five: None, tmp_path: Path, client: Client
) -> None:
    messages_send_due(gateway=FileGateway(tmp_path / "sms.jsonl"), clock=Clock(at(18)), config=CONFIG)
    m = Message.objects.order_by("pk").first()
    assert m is not None and m.recipient is not None
    body = json.dumps([{"biz_id": m.provider_message_id, "out_id": m.out_id, "success": False,
                        "err_code": "MOBILE_NOT_ON_SERVICE", "report_time": "2026-11-30 10:05:00"}])  # fmt: skip
    url = reverse("notifications:receipt", kwargs={"provider": "aliyun"}) + "?token=tok"
    for _ in range(2):  # a repeated callback writes nothing more
        assert client.post(url, body, content_type="application/json").status_code == 200
    m.refresh_from_db()
    assert m.status == "undelivered"
    notices = Message.objects.filter(channel="unit")
    assert [(n.recipient_id, n.due_on, n.status) for n in notices] == [(m.recipient_id, m.due_on, "listed")]


def test_an_undelivered_report_puts_no_one_on_the_list_whom_the_latest_run_no_longer_reminds(
    tmp_path: Path,
) -> None:
    """The reminders went out; then P001 is found dead (the next run stops them) and P002 takes a
    train (eligible, a year on). The operator's reports that their SMS were not delivered
    come after that run: the messages are `undelivered`, but no unit is asked to chase a dead
    person, nor to remind someone who has certified of a deadline that is no longer theirs. P003,
    still due, goes on the list as before."""
    from zige.notifications.services import parse_reports, receipts_record

    roster(tmp_path, [person(1, "13812345671"), person(2, "13812345672"), person(3, "13812345673")])
    do_run(as_of=date(2026, 11, 28), now=datetime(2026, 11, 28, 2, tzinfo=SHANGHAI))
    messages_send_due(gateway=FileGateway(tmp_path / "sms.jsonl"), clock=Clock(at(9, day=28)), config=CONFIG)
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    ids = {i: make_id(100 + i, date(1950, 1, 1)) for i in (1, 2)}
    do_import(
        write_csv(
            tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], [[ids[1], "王小1明", "2026-11-20"]]
        )
    )
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], [[ids[2], "王小2明", "2026-11-29", "G1"]]))  # fmt: skip
    run = do_run(as_of=date(2026, 11, 30), now=at(2))
    assert dict(Decision.objects.filter(run=run).values_list("recipient__person_no", "status")) == {
        "P001": "stop", "P002": "eligible", "P003": "eligible",
    }  # fmt: skip
    reports = [
        {"biz_id": m.provider_message_id, "out_id": m.out_id, "success": False, "err_code": "MOBILE_NOT_ON_SERVICE",
         "report_time": "2026-11-30 10:00:05"}
        for m in Message.objects.order_by("pk")
    ]  # fmt: skip
    assert (
        receipts_record(provider="aliyun", reports=parse_reports("aliyun", reports), now=at(10))["new"] == 3
    )
    assert set(Message.objects.filter(channel="sms").values_list("status", flat=True)) == {"undelivered"}
    assert list(Message.objects.filter(channel="unit").values_list("recipient__person_no", "status")) == [
        ("P003", "listed")
    ]
    unit = Unit.objects.get(unit_no="U1")
    assert [m.recipient.person_no for m in unit_notices(unit, UserFactory(role="bureau_admin"))] == ["P003"]
    assert AuditEvent.objects.filter(action="messages.to_unit_list").count() == 1


def test_an_out_of_province_resident_is_told_the_national_app(tmp_path: Path) -> None:
    """Notice 三(二)3: 外省户籍人员 (an ID of another province and no social-security card, the
    附件2 rule) certify through 掌上12333 on the national platform, not the province's app: their
    reminder must name the app they can use."""
    header = [*ROSTER_HEADER, "是否办理社保卡"]
    local = [*person(1, "13812345678"), "否"]
    remote = [*person(2, "13812345679"), "否"]
    remote[2] = make_id(102, date(1950, 1, 1), region="420102")  # 湖北省武汉市江岸区
    carded = [*person(3, "13812345670"), "是"]
    carded[2] = make_id(103, date(1950, 1, 1), region="420102")
    do_import(write_csv(tmp_path / "roster.csv", header, [local, remote, carded]), "roster")
    do_run()
    texts = {m.recipient.person_no: m.text for m in Message.objects.filter(kind="reminder")}
    assert "掌上12333" in texts["P002"] and "民生山西" not in texts["P002"]
    assert "民生山西" in texts["P001"] and "民生山西" in texts["P003"]
