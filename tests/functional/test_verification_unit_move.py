"""A person moves to another unit (a roster import changes their 单位编号): their active
verification tasks go with them, and the old unit loses the task page, the evidence files, the
form1 row and the right to report — even where a task row still names the old unit."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    NOW,
    RunFactory,
    UnitOperatorFactory,
    make_id,
    verification_attachment,
    verification_task,
    write_csv,
)
from zige.audit.models import AuditEvent
from zige.feeds import services as feeds
from zige.feeds.models import ImportStatus
from zige.notifications.models import Message
from zige.roster.models import Recipient, Unit
from zige.verification.models import Submission, VerificationTask

pytestmark = pytest.mark.django_db

HEADER = ["个人编号", "姓名", "身份证号", "单位编号", "单位名称", "待遇状态", "月养老金", "联系电话"]
ID_MOVER = make_id(21, date(1958, 4, 2))
ID_STAYER = make_id(22, date(1958, 4, 3))
MOVED_AT = datetime(2027, 2, 20, 9, 0, tzinfo=UTC)  # eight days before the task's deadline


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> None:
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"


def roster(tmp_path: Path, name: str, mover_unit: str, *, now: datetime) -> None:
    rows = [
        ["P001", "张迁出", ID_MOVER, mover_unit, f"单位{mover_unit}", "正常", "3000", "13812345678"],
        ["P002", "李留下", ID_STAYER, "U_A", "单位U_A", "正常", "3000", "13812345679"],
    ]
    path = write_csv(tmp_path / name, HEADER, rows)
    batch = feeds.import_submit(
        source=path, file_name=path.name, kind="roster", user=None, now=now, enqueue=False
    )
    if batch.status == ImportStatus.QUEUED:
        batch = feeds.import_execute(batch_id=batch.pk, now=now)
    assert batch.status == ImportStatus.SUCCEEDED, batch.message


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    roster(tmp_path, "roster_1.csv", "U_A", now=NOW)
    mover = Recipient.objects.get(person_no="P001")
    task = verification_task(mover)  # open, deadline 2027-02-28, unit U_A
    stayer_task = verification_task(Recipient.objects.get(person_no="P002"))
    roster(tmp_path, "roster_2.csv", "U_B", now=MOVED_AT)  # P001 moves to U_B
    return {
        "task": task,
        "stayer_task": stayer_task,
        "op_a": UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_A")),
        "op_b": UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_B")),
    }


def form1_people(client: Client) -> set[str]:
    response = client.get(reverse("verification:form1"))
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return {str(c.value) for r in book.worksheets[0].iter_rows() for c in r if c.value}


REPORT = {"method": "visit", "result": "lost", "lost_reason": "死亡"}


def test_the_open_task_follows_the_person_to_the_new_unit(client: Client, world: dict[str, Any]) -> None:
    task = VerificationTask.objects.get(pk=world["task"].pk)
    assert task.unit.unit_no == "U_B"
    # the new unit gets its own three months from the day the move was recorded
    assert task.status == "open" and task.deadline == date(2027, 5, 20)
    moved = AuditEvent.objects.get(action="task.reassigned", target_id=str(task.pk))
    assert moved.before["unit"] == "U_A" and moved.after["unit"] == "U_B"
    assert "单位U_A" in task.events.order_by("-pk").first().note  # the task's history says so

    detail = reverse("verification:detail", kwargs={"pk": task.pk})
    submit = reverse("verification:submit", kwargs={"pk": task.pk})
    report = {
        **REPORT,
        "confirmed_on": timezone.localdate().isoformat(),
        "lost_on": timezone.localdate().isoformat(),
    }
    client.force_login(world["op_a"])  # the old unit: nothing of the person any more
    assert client.get(detail).status_code == 404
    assert client.post(submit, report).status_code == 404
    assert "P001" not in form1_people(client) and "P002" in form1_people(client)
    assert "张迁出" not in client.get(reverse("verification:list")).content.decode()
    assert not Submission.objects.exists()

    client.force_login(world["op_b"])  # the new unit sees, downloads and reports
    assert client.get(detail).status_code == 200
    assert "P001" in form1_people(client) and "P002" not in form1_people(client)
    assert "张迁出" in client.get(reverse("verification:list")).content.decode()
    response = client.post(submit, report)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert VerificationTask.objects.get(pk=task.pk).status == "submitted"


def test_the_old_unit_loses_the_evidence_files_of_a_submitted_task(
    client: Client, tmp_path: Path, settings: Any
) -> None:
    settings.DATA_DIR = tmp_path / "data"
    roster(tmp_path, "roster_1.csv", "U_A", now=NOW)
    task = verification_task(Recipient.objects.get(person_no="P001"), status="submitted")
    attachment = verification_attachment(task)
    roster(tmp_path, "roster_2.csv", "U_B", now=MOVED_AT)
    url = reverse("verification:attachment", kwargs={"pk": attachment.pk})  # type: ignore[attr-defined]
    client.force_login(UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_A")))
    assert client.get(url).status_code == 404
    client.force_login(UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_B")))
    assert client.get(url).status_code == 200


def test_a_task_row_naming_the_old_unit_is_still_out_of_its_reach(
    client: Client, world: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """Defence in depth: whatever a task row says, a unit reaches only its current people."""
    settings.DATA_DIR = tmp_path / "data"
    unit_a = Unit.objects.get(unit_no="U_A")
    stale = world["task"]
    VerificationTask.objects.filter(pk=stale.pk).update(unit=unit_a)  # as if never reassigned
    attachment = verification_attachment(VerificationTask.objects.get(pk=stale.pk))
    client.force_login(world["op_a"])
    assert client.get(reverse("verification:detail", kwargs={"pk": stale.pk})).status_code == 404
    assert client.get(reverse("verification:attachment", kwargs={"pk": attachment.pk})).status_code == 404  # type: ignore[attr-defined]
    assert "P001" not in form1_people(client)
    report = {
        **REPORT,
        "confirmed_on": timezone.localdate().isoformat(),
        "lost_on": timezone.localdate().isoformat(),
    }
    assert client.post(reverse("verification:submit", kwargs={"pk": stale.pk}), report).status_code == 404
    assert "张迁出" not in client.get(reverse("verification:list")).content.decode()


def _body(response: Any) -> str:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return bytes(data).decode()


def test_the_unit_notices_of_a_mover_go_to_the_new_unit(client: Client, tmp_path: Path) -> None:
    """A person without a mobile is reminded through their unit (notice 一(四)). When the roll
    moves them, the notice must reach the unit that has them now, and the old unit must no
    longer see their name and 个人编号 on its notice list or in its CSV."""
    roster(tmp_path, "roster_1.csv", "U_A", now=NOW)
    mover = Recipient.objects.get(person_no="P001")
    # written by a run before the move, for the unit the roll named then
    notice = Message.objects.create(
        recipient=mover, unit=Unit.objects.get(unit_no="U_A"), run=RunFactory(), kind="reminder",
        channel="unit", due_on=date(2027, 2, 28), text="请通知张*出（个人编号P001）于2027年02月28日前完成认证",
        status="listed", created_at=NOW,
    )  # fmt: skip
    roster(tmp_path, "roster_2.csv", "U_B", now=MOVED_AT)

    notice.refresh_from_db()
    assert notice.unit.unit_no == "U_B" and notice.status == "listed"
    moved = AuditEvent.objects.get(action="messages.reassigned")
    assert moved.after["messages"] == 1

    def pages(unit: str) -> list[str]:
        return [
            reverse("notifications:unit_notices", kwargs={"unit_no": unit}),
            reverse("notifications:unit_notices_csv", kwargs={"unit_no": unit}),
        ]

    client.force_login(UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_A")))
    for url in pages("U_A"):
        body = _body(client.get(url))
        assert "P001" not in body and "张迁出" not in body
    client.force_login(UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_B")))
    for url in pages("U_B"):
        body = _body(client.get(url))
        assert "P001" in body and "张迁出" in body


def test_a_notice_row_naming_the_old_unit_is_on_the_new_units_list(client: Client, tmp_path: Path) -> None:
    """Defence in depth (and notices moved before the import moved them): the notice list is of
    the people in the unit now, whatever unit the message row names."""
    roster(tmp_path, "roster_1.csv", "U_A", now=NOW)
    roster(tmp_path, "roster_2.csv", "U_B", now=MOVED_AT)
    Message.objects.create(
        recipient=Recipient.objects.get(person_no="P001"), unit=Unit.objects.get(unit_no="U_A"),
        run=RunFactory(), kind="reminder", channel="unit", due_on=date(2027, 2, 28),
        text="请通知张*出（个人编号P001）于2027年02月28日前完成认证", status="listed", created_at=NOW,
    )  # fmt: skip
    client.force_login(UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_A")))
    body = _body(client.get(reverse("notifications:unit_notices", kwargs={"unit_no": "U_A"})))
    assert "P001" not in body and "张迁出" not in body
    client.force_login(UnitOperatorFactory(unit=Unit.objects.get(unit_no="U_B")))
    body = _body(client.get(reverse("notifications:unit_notices_csv", kwargs={"unit_no": "U_B"})))
    assert "P001" in body and "张迁出" in body


def test_the_migration_refiles_the_unsent_messages_earlier_moves_left_with_the_old_unit() -> None:
    """Notifications 0005: before 1404fd0 a move left a person's unsent messages with the old
    unit. The migration does once what `messages_reassign` now does at the import: the queued,
    retrying and listed messages go to the person's unit now, their text written again for it
    (the new unit's phone; a failed SMS's notice keeps its reason), audited; what went out, or
    was cancelled, stays; so does everything of a person who did not move."""
    import importlib

    from django.apps import apps
    from django.db import connection

    from tests.factories import RecipientFactory, UnitFactory
    from zige.audit.services import audit_verify
    from zige.notifications.content import REASON_SMS_UNDELIVERABLE

    migration = importlib.import_module("zige.notifications.migrations.0005_refile_movers_messages")
    old, new = UnitFactory(phone="0351-1111111"), UnitFactory(phone="0351-2222222")
    mover, stayer = RecipientFactory(unit=new), RecipientFactory(unit=old)
    run = RunFactory()

    def message(
        who: Recipient, status: str, *, channel: str = "sms", kind: str = "reminder", **kw: Any
    ) -> Message:
        return Message.objects.create(
            recipient=who, unit=old, run=run, kind=kind, channel=channel, due_on=date(2027, 2, 28),
            mobile="13812345678" if channel == "sms" else "", status=status, created_at=NOW,
            text="…咨询电话0351-1111111。" if channel == "sms" else "请通知…：本人无手机号码…", **kw,
        )  # fmt: skip

    queued = message(mover, "queued")
    retrying = Message.objects.create(
        recipient=mover, unit=old, run=run, kind="reminder", channel="sms", due_on=date(2027, 5, 31),
        mobile="13812345678", status="retrying", created_at=NOW, text="…咨询电话0351-1111111。",
    )  # fmt: skip
    listed = message(mover, "listed", channel="unit", last_error="SMS #1 failed: isv.MOBILE_NUMBER_ILLEGAL")
    history = [
        message(mover, status, kind="app_failed", channel=channel)
        for status, channel in (("failed", "sms"), ("cancelled", "unit"))
    ]
    sent = Message.objects.create(
        recipient=mover, unit=old, run=run, kind="reminder", channel="sms", due_on=date(2026, 11, 30),
        mobile="13812345678", status="sent", created_at=NOW, text="…咨询电话0351-1111111。",
    )  # fmt: skip
    stays = message(stayer, "queued")

    migration.refile(apps, connection.schema_editor())

    def unit_of(m: Message) -> str:
        m.refresh_from_db()
        return m.unit.unit_no

    assert [unit_of(m) for m in (queued, retrying, listed)] == [new.unit_no] * 3
    assert "0351-2222222" in queued.text and "0351-1111111" not in queued.text
    assert "0351-2222222" in retrying.text
    assert REASON_SMS_UNDELIVERABLE in listed.text and "无手机号码" not in listed.text
    assert [unit_of(m) for m in (*history, sent, stays)] == [old.unit_no] * 4
    assert "0351-1111111" in sent.text and "0351-1111111" in stays.text
    event = AuditEvent.objects.get(action="messages.reassigned")
    assert event.target_id == migration.TARGET and event.after["messages"] == 3 and event.after["movers"] == 1
    assert event.after["units"][str(listed.pk)] == {"from": old.unit_no, "to": new.unit_no}
    assert audit_verify().ok  # the event is on the chain

    migration.refile(apps, connection.schema_editor())  # again: nothing left to re-file
    assert AuditEvent.objects.filter(action="messages.reassigned").count() == 1
    # Reversible, and going back leaves the corrected filing (the old one was wrong).
    operation = migration.Migration.operations[0]
    assert operation.reversible and operation.reverse_code is migration.migrations.RunPython.noop
