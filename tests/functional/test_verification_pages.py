"""Verification pages over HTTP: the unit's list and form with a photo, the bureau's review,
the evidence file view (audited, unit-isolated), the workbook page with row errors."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tests.factories import (
    RecipientFactory,
    UnitFactory,
    UnitOperatorFactory,
    UserFactory,
    fraud_case,
    make_id,
    recovery_case,
    verification_task,
)
from zige.accounts.api_tokens import token_issue
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.verification.models import Attachment, Submission, VerificationTask

pytestmark = pytest.mark.django_db


def jpeg_file(name: str = "visit.jpg") -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 30, 30)).save(buffer, "JPEG")
    buffer.seek(0)
    buffer.name = name
    return buffer


def pdf_file(name: str = "signed.pdf") -> io.BytesIO:
    buffer = io.BytesIO(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n")
    buffer.name = name
    return buffer


@pytest.fixture
def setup() -> dict[str, Any]:
    unit, other = UnitFactory(), UnitFactory()
    person = RecipientFactory(unit=unit, id_number=make_id(11, birth=date(1958, 4, 2)), name="张建国")
    stranger = RecipientFactory(unit=other, id_number=make_id(12, birth=date(1958, 4, 3)), name="外单位人")
    task = verification_task(person)
    soon = verification_task(RecipientFactory(unit=unit, id_number=make_id(13, birth=date(1959, 1, 1))))
    VerificationTask.objects.filter(pk=soon.pk).update(deadline=timezone.localdate() + timedelta(days=5))  # type: ignore[attr-defined]
    foreign = verification_task(stranger)
    return {
        "task": task, "soon": soon, "foreign": foreign,
        "unit_op": UnitOperatorFactory(unit=unit), "other_op": UnitOperatorFactory(unit=other),
        "officer": UserFactory(role=Role.BUREAU_OPERATOR),
    }  # fmt: skip


def test_the_unit_sees_its_tasks_by_deadline(client: Client, setup: dict[str, Any]) -> None:
    client.force_login(setup["unit_op"])
    html = client.get(reverse("verification:list")).content.decode()
    first, second = html.index(f"#{setup['soon'].pk}<"), html.index(f"#{setup['task'].pk}<")
    assert first < second  # the one due soonest comes first
    assert "vtask-due-soon" in html and "外单位人" not in html
    assert "核实任务" in html  # the navigation link


def _listed(client: Client, query: str = "") -> set[int]:
    """The task numbers the list page shows for `query`."""
    html = client.get(reverse("verification:list") + query).content.decode()
    return {int(n) for n in re.findall(r'class="strong" href="[^"]+">#(\d+)<', html)}


def test_the_bureau_filters_the_task_list(client: Client, setup: dict[str, Any]) -> None:
    task, soon, foreign = setup["task"], setup["soon"], setup["foreign"]
    late_id = make_id(20, birth=date(1950, 2, 2))
    assert late_id.endswith("X")  # typed with a lower-case x below
    late = verification_task(RecipientFactory(unit=task.unit, id_number=late_id, name="李过期"))
    review = verification_task(RecipientFactory(unit=foreign.unit, name="张复核"), kind="review")
    today = timezone.localdate()
    VerificationTask.objects.filter(pk=late.pk).update(deadline=today - timedelta(days=1))  # type: ignore[attr-defined]
    client.force_login(setup["officer"])
    every = {task.pk, soon.pk, foreign.pk, late.pk, review.pk}
    assert _listed(client) == every
    assert _listed(client, f"?unit={task.unit.unit_no}") == {task.pk, soon.pk, late.pk}
    assert _listed(client, "?kind=review") == {review.pk}
    assert _listed(client, "?reason=alive_after_death") == {review.pk}
    assert _listed(client, "?reason=no_evidence") == every - {review.pk}
    assert _listed(client, "?due=late") == {late.pk}
    assert _listed(client, "?due=soon") == {soon.pk}
    assert _listed(client, "?due=anything") == every  # not a window: no filter
    # One person by number, by ID (as typed, lower-case x included) or by the start of the name.
    assert _listed(client, f"?q={task.recipient.person_no}") == {task.pk}
    assert _listed(client, f"?q={late.recipient.id_number.lower()}") == {late.pk}
    assert _listed(client, "?q=张") == {task.pk, review.pk}
    assert _listed(client, "?q=张&unit=" + foreign.unit.unit_no) == {review.pk}
    # The status chips count under the other filters and keep them in their links.
    VerificationTask.objects.filter(pk=soon.pk).update(status="submitted")  # type: ignore[attr-defined]
    html = client.get(reverse("verification:list") + f"?unit={task.unit.unit_no}").content.decode()
    assert re.search(r"待核实 <b>2</b>", html) and re.search(r"已上报待审核 <b>1</b>", html)
    # 进行中 counts what the list shows with no status chosen: the tasks in hand, all of them.
    assert re.search(r"进行中 <b>3</b>", html) and len(_listed(client, f"?unit={task.unit.unit_no}")) == 3
    assert f'href="?status=submitted&amp;unit={task.unit.unit_no}"' in html
    assert _listed(client, f"?status=submitted&unit={task.unit.unit_no}") == {soon.pk}
    # A report waiting for the bureau is not the unit's delay.
    assert _listed(client, "?due=soon") == set()
    html = client.get(reverse("verification:list") + "?q=无此人").content.decode()
    assert "没有符合条件的核实任务" in html and "清除条件" in html
    # The unit's page leads to its tasks.
    html = client.get(reverse("roster:unit", args=[task.unit.unit_no])).content.decode()
    assert f'href="{reverse("verification:list")}?unit={task.unit.unit_no}"' in html


def test_a_unit_operator_filters_within_its_own_unit_only(client: Client, setup: dict[str, Any]) -> None:
    task, soon, foreign = setup["task"], setup["soon"], setup["foreign"]
    client.force_login(setup["unit_op"])
    assert _listed(client) == {task.pk, soon.pk}
    # Another unit's number or person finds nothing of theirs; the unit filter is not offered.
    assert _listed(client, f"?unit={foreign.unit.unit_no}") == {task.pk, soon.pk}
    assert _listed(client, f"?q={foreign.recipient.person_no}") == set()
    assert _listed(client, "?q=外单位人") == set()
    assert _listed(client, "?q=张建国") == {task.pk}
    html = client.get(reverse("verification:list")).content.decode()
    assert 'name="unit"' not in html and 'name="kind"' not in html


def test_the_filtered_task_list_exports_as_csv_and_the_export_is_audited(
    client: Client, setup: dict[str, Any]
) -> None:
    task, soon, foreign = setup["task"], setup["soon"], setup["foreign"]
    client.force_login(setup["officer"])
    response = client.get(
        reverse("verification:export"), {"unit": task.unit.unit_no, "reason": "no_evidence"}
    )
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")  # type: ignore[attr-defined]
    assert text.startswith(
        "\ufeff截止日期,任务编号,任务类型,状态,个人编号,姓名,单位编号,单位名称,原因,比对基准日"
    )
    lines = text.strip().splitlines()[1:]
    assert sorted(int(line.split(",")[1]) for line in lines) == sorted([task.pk, soon.pk])
    first = next(line for line in lines if line.split(",")[1] == str(task.pk))
    assert f"{task.recipient.person_no},张建国,{task.unit.unit_no}" in first and "认证期内无比对信息" in first
    assert task.recipient.id_number not in text  # no ID numbers in the list
    event = AuditEvent.objects.get(action="tasks.list_exported")
    assert event.actor == setup["officer"].username
    assert (
        event.after["tasks"] == 2
        and event.after["unit_no"] == task.unit.unit_no
        and not event.after["searched"]
    )
    # The page links the export with its own filters; a unit operator's export is its own unit's.
    page = client.get(reverse("verification:list"), {"due": "soon"}).content.decode()
    assert f'href="{reverse("verification:export")}?due=soon"' in page
    client.force_login(setup["other_op"])
    text = b"".join(
        client.get(reverse("verification:export"), {"unit": task.unit.unit_no}).streaming_content
    ).decode()  # type: ignore[attr-defined]
    assert [int(line.split(",")[1]) for line in text.strip().splitlines()[1:]] == [foreign.pk]


def test_the_person_page_lists_the_tasks_and_cases_each_role_may_see(
    client: Client, setup: dict[str, Any]
) -> None:
    task = setup["task"]
    person = task.recipient
    review = verification_task(person, kind="review")
    recovery: Any = recovery_case(person)
    fraud: Any = fraud_case(person)
    url = reverse("roster:person", args=[person.person_no])
    client.force_login(setup["officer"])
    html = client.get(url).content.decode()
    for path in (
        reverse("verification:detail", args=[task.pk]),
        reverse("verification:detail", args=[review.pk]),
        reverse("benefits:recovery", args=[recovery.pk]),
        reverse("benefits:fraud", args=[fraud.pk]),
    ):
        assert f'href="{path}"' in html, path
    assert "截止 2027-02-28" in html  # the open task's deadline
    # The unit sees its own unit's verification task only: not the bureau's review, no cases.
    client.force_login(setup["unit_op"])
    html = client.get(url).content.decode()
    assert f'href="{reverse("verification:detail", args=[task.pk])}"' in html
    assert reverse("verification:detail", args=[review.pk]) not in html
    assert "追回案件" not in html and "欺诈案件" not in html
    # Someone with none: said so.
    client.force_login(setup["officer"])
    html = client.get(reverse("roster:person", args=[setup["foreign"].recipient.person_no])).content.decode()
    assert reverse("verification:detail", args=[setup["foreign"].pk]) in html
    html = client.get(
        reverse("roster:person", args=[RecipientFactory(unit=task.unit).person_no])
    ).content.decode()
    assert "没有核实任务或追回、欺诈案件" in html


def test_each_units_progress_most_late_first(client: Client, setup: dict[str, Any]) -> None:
    task, foreign = setup["task"], setup["foreign"]  # and `soon`, due in five days, in task's unit
    today = timezone.localdate()
    unit, other = task.unit, foreign.unit
    late = verification_task(RecipientFactory(unit=unit))
    VerificationTask.objects.filter(pk=late.pk).update(deadline=today - timedelta(days=3))  # type: ignore[attr-defined]
    verification_task(RecipientFactory(unit=unit), status="submitted")
    verification_task(RecipientFactory(unit=other), status="returned")
    verification_task(RecipientFactory(unit=other), kind="review")  # the bureau's own: not counted
    done = UnitFactory()
    verification_task(RecipientFactory(unit=done), status="approved")  # nothing in hand: not listed
    client.force_login(setup["officer"])
    html = client.get(reverse("verification:units")).content.decode()
    rows = re.findall(r'<tr class="[^"]*" data-testid="unit-progress-row">(.*?)</tr>', html, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    numbers = [[re.sub(r"<[^>]+>", "", c).strip() for c in row] for row in cells]
    assert [row[0] for row in numbers] == [unit.unit_no, other.unit_no]  # the one with a late task first
    # in hand, 待核实, 已退回, 已上报待审核, 已逾期, 已过截止日期, the nearest deadline
    assert numbers[0][2:] == ["4", "3", "0", "1", "0", "1", (today - timedelta(days=3)).isoformat()]
    assert numbers[1][2:] == ["2", "1", "1", "0", "0", "0", "2027-02-28"]
    assert f'href="{reverse("verification:list")}?unit={unit.unit_no}&amp;due=late"' in html
    assert done.unit_no not in html


def test_report_with_a_photo_then_bureau_approval(
    client: Client, setup: dict[str, Any], tmp_path: Path
) -> None:
    task = setup["task"]
    client.force_login(setup["unit_op"])
    url = reverse("verification:submit", kwargs={"pk": task.pk})
    form = {"method": "visit", "result": "eligible", "confirmed_on": timezone.localdate().isoformat(), "address": "太原市杏花岭区",
            "health": "良好"}  # fmt: skip
    disguised = io.BytesIO(b"<html><script>alert(1)</script></html>")
    disguised.name = "photo.jpg"
    refused = client.post(url, {**form, "on_site": disguised})
    assert refused.status_code == 200 and "不是可接受的类型" in refused.content.decode()
    assert "not an accepted type" not in refused.content.decode()  # Chinese only on the page
    assert not Submission.objects.exists()
    response = client.post(url, {**form, "on_site": jpeg_file()})
    assert response.status_code == 302, response.content.decode()[:2000]
    attachment = Attachment.objects.get()
    assert attachment.file_kind == "jpeg"
    # served only through the view, to those who may see the person, and audited
    shown = client.get(reverse("verification:attachment", kwargs={"pk": attachment.pk}))
    assert shown.status_code == 200 and shown["Content-Type"] == "image/jpeg"
    assert shown["X-Content-Type-Options"] == "nosniff"
    assert AuditEvent.objects.filter(action="attachment.viewed", target_id=str(attachment.pk)).count() == 1
    client.force_login(setup["other_op"])
    assert client.get(reverse("verification:attachment", kwargs={"pk": attachment.pk})).status_code == 404
    assert client.get(reverse("verification:detail", kwargs={"pk": task.pk})).status_code == 404
    assert client.post(url, {**form, "on_site": jpeg_file()}).status_code == 404
    # the bureau's queue lists it; approving it stores the evidence
    client.force_login(setup["officer"])
    queue = client.get(reverse("verification:queue")).content.decode()
    assert "张建国" in queue
    page = client.get(reverse("verification:detail", kwargs={"pk": task.pk})).content.decode()
    assert "审核单位上报" in page and re.search(
        r'<img class="vtask-thumb" src="/verification/attachments/\d+/"', page
    )
    done = client.post(
        reverse("verification:review", kwargs={"pk": task.pk}), {"decision": "approve"}, follow=True
    )
    assert "审核通过" in done.content.decode()
    task.refresh_from_db()
    assert task.status == "approved"
    assert Submission.objects.get().evidence_batch.kind == "unit_confirm"


def test_after_approving_or_returning_a_unit_report_the_page_links_the_next_task_of_the_review_queue(
    client: Client, setup: dict[str, Any]
) -> None:
    """Approving a unit's report in the review queue landed on the same task with no way onward,
    unlike a finding or a payment approval: the message links 下一条, the next task of the
    officer's review queue (deadline, then number); a report sent back (退回) likewise."""
    task, soon = setup["task"], setup["soon"]
    client.force_login(setup["unit_op"])
    form = {"method": "visit", "result": "eligible", "confirmed_on": timezone.localdate().isoformat(),
            "address": "太原市杏花岭区", "health": "良好"}  # fmt: skip
    for each in (task, soon):
        sent = client.post(
            reverse("verification:submit", kwargs={"pk": each.pk}), {**form, "on_site": jpeg_file()}
        )
        assert sent.status_code == 302, sent.content.decode()[:2000]
    client.force_login(setup["officer"])
    done = client.post(
        reverse("verification:review", kwargs={"pk": task.pk}), {"decision": "approve"}, follow=True
    ).content.decode()
    assert "审核通过" in done
    link = reverse("verification:detail", kwargs={"pk": soon.pk})
    assert f'<a href="{link}" data-testid="next">下一条：#{soon.pk} {soon.recipient.name}' in done
    done = client.post(
        reverse("verification:review", kwargs={"pk": soon.pk}), {"decision": "return", "note": "照片不清"},
        follow=True,
    ).content.decode()  # fmt: skip
    assert "已退回单位" in done
    assert "审核队列中已没有其他待处理的任务" in done and 'data-testid="next"' not in done


def test_workbook_page_shows_errors_per_row(client: Client, setup: dict[str, Any]) -> None:
    client.force_login(setup["unit_op"])
    junk = io.BytesIO(b"not a workbook")
    junk.name = "form1.xlsx"
    response = client.post(reverse("verification:bulk"), {"workbook": junk})
    html = response.content.decode()
    assert response.status_code == 200 and "全部未上报" in html and "无法读取" in html


def test_the_bureau_records_a_fraud_finding_on_a_review_task(client: Client, setup: dict[str, Any]) -> None:
    from decimal import Decimal

    from zige.benefits.models import FraudCase

    person = RecipientFactory(
        id_number=make_id(21, birth=date(1950, 2, 2)), monthly_amount=Decimal("2000.00")
    )
    task = verification_task(person, kind="review")
    url = reverse("verification:resolve", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    client.force_login(setup["unit_op"])
    assert client.post(url, {"finding": "fraud", "note": "x"}).status_code == 403
    client.force_login(setup["officer"])
    page = client.get(reverse("verification:detail", kwargs={"pk": task.pk})).content.decode()  # type: ignore[attr-defined]
    assert "疑点核查结论" in page
    missing = client.post(url, {"finding": "fraud", "note": "家属代领"}, follow=True).content.decode()
    assert "须填写死亡日期" in missing
    done = client.post(
        url,
        {"finding": "fraud", "note": "家属代领", "death_date": "2026-08-15", "amount_obtained": "6000.00"},
        follow=True,
    )
    assert "核查结论已记录" in done.content.decode()
    assert FraudCase.objects.get(recipient=person).amount_obtained == Decimal("6000.00")
    assert VerificationTask.objects.get(pk=task.pk).status == "resolved"  # type: ignore[attr-defined]


def test_the_finding_form_names_an_approved_stop_an_alive_finding_leaves(
    client: Client, setup: dict[str, Any]
) -> None:
    """确认健在 withdraws only stops awaiting approval: one already approved is named on the
    finding form, for the officer to reverse (撤销) through the correction path."""
    from tests.factories import payment_action

    person = RecipientFactory(id_number=make_id(22, birth=date(1950, 3, 3)))
    task = verification_task(person, kind="review")
    client.force_login(setup["officer"])
    url = reverse("verification:detail", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    assert 'data-testid="stops-to-correct"' not in client.get(url).content.decode()
    stop = payment_action(person, state="approved")
    page = client.get(url).content.decode()
    assert 'data-testid="stops-to-correct"' in page
    link = reverse("benefits:action", kwargs={"pk": stop.pk})  # type: ignore[attr-defined]
    assert f'已审批的停发 <a href="{link}">#{stop.pk}</a>' in page  # type: ignore[attr-defined]
    assert "请对其提出撤销（冲正）" in page


def test_a_death_finding_with_life_after_the_death_warns_and_needs_a_confirmation(
    client: Client, setup: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """确认死亡 with a death date before the person's latest check-up: the form comes back with a
    warning in Chinese naming the latest record of life after the death (a sign of 冒领, notice
    四(二)) and a box to tick; nothing is recorded or imported until the officer ticks it. Then
    the finding is recorded, and is `unit_confirm` evidence (丧失资格 on the death date)."""
    from tests.factories import write_csv
    from zige.feeds.models import ImportBatch
    from zige.feeds.services import import_execute, import_submit

    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    today = timezone.localdate()
    person = RecipientFactory(id_number=make_id(24, birth=date(1950, 5, 5)), name="王体检")
    checkup, died = today - timedelta(days=10), today - timedelta(days=40)
    path = write_csv(tmp_path / "checkup_2026.csv", ["身份证号", "姓名", "体检日期", "体检机构"],
                     [[person.id_number, person.name, checkup.isoformat(), "太原市中心医院"]])  # fmt: skip
    batch = import_submit(
        source=path, file_name=path.name, kind=None, user=None, now=timezone.now(), enqueue=False
    )
    assert import_execute(batch_id=batch.pk, now=timezone.now()).status == "succeeded"
    task = verification_task(person, kind="review")
    url = reverse("verification:resolve", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    client.force_login(setup["officer"])
    form = {"finding": "dead", "note": "家属称已去世", "death_date": died.isoformat()}
    warned = client.post(url, form)
    page = warned.content.decode()
    assert warned.status_code == 200
    assert (
        f"死亡日期{died.isoformat()}之后仍有1条生存信息，最近一条：{checkup.isoformat()} 在太原市中心医院健康体检"
        in page
    )
    assert "（checkup_2026.csv）" in page and "冒领" in page and 'name="confirm_alive_after"' in page
    assert VerificationTask.objects.get(pk=task.pk).status == "open"  # type: ignore[attr-defined]
    assert not ImportBatch.objects.filter(kind="unit_confirm").exists()
    done = client.post(url, {**form, "confirm_alive_after": "on"}, follow=True)
    assert "核查结论已记录" in done.content.decode()
    assert VerificationTask.objects.get(pk=task.pk).status == "resolved"  # type: ignore[attr-defined]
    assert ImportBatch.objects.get(kind="unit_confirm").status == "succeeded"


def test_a_review_task_shows_the_recorded_deaths_and_the_finding_its_date_of_death(
    client: Client, setup: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """A 疑点核查 (life after a death record) asks the officer for the 死亡日期: the task page
    lists the person's recorded deaths with their dates and files beside the record of life, so
    the date is entered from the records (an officer guessing a later date understates what
    was obtained); once recorded, the finding shows the date of death it was given."""
    from tests.factories import write_csv
    from zige.feeds.services import import_execute, import_submit

    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    today = timezone.localdate()
    person = RecipientFactory(id_number=make_id(25, birth=date(1950, 6, 6)), name="李冒领")
    died, checkup = today - timedelta(days=200), today - timedelta(days=20)
    for name, header, row in (
        ("death_minzheng_2026.csv", ["身份证号", "姓名", "死亡日期"], [person.id_number, person.name, died.isoformat()]),
        ("checkup_2026.csv", ["身份证号", "姓名", "体检日期", "体检机构"],
         [person.id_number, person.name, checkup.isoformat(), "太原市中心医院"]),
    ):  # fmt: skip
        path = write_csv(tmp_path / name, header, [row])
        batch = import_submit(
            source=path, file_name=name, kind=None, user=None, now=timezone.now(), enqueue=False
        )
        assert import_execute(batch_id=batch.pk, now=timezone.now()).status == "succeeded"
    task = verification_task(person, kind="review")
    client.force_login(setup["officer"])
    detail = reverse("verification:detail", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    page = client.get(detail).content.decode()
    listed = re.search(r'data-testid="loss-records">(.*?)</dd>', page, re.S)
    assert listed, page
    assert died.isoformat() in listed.group(1) and "death_minzheng_2026.csv" in listed.group(1)
    assert checkup.isoformat() not in listed.group(1)  # a record of life is not a death
    done = client.post(
        reverse("verification:resolve", kwargs={"pk": task.pk}),  # type: ignore[attr-defined]
        {"finding": "dead", "note": "家属证实", "death_date": died.isoformat(), "confirm_alive_after": "on"},
        follow=True,
    )
    page = done.content.decode()
    assert "核查结论已记录" in page
    assert re.search(rf'data-testid="finding-death-date">{died.isoformat()}<', page)


def test_a_death_finding_later_than_the_recorded_death_needs_a_confirmation_and_a_reason(
    client: Client, setup: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """A 死亡日期 later than the person's earliest recorded death understates the months paid
    since and the amount obtained: the finding is refused with the recorded date and the months
    between, until the officer ticks 以本次核查的死亡日期为准 and writes why; the audit record keeps
    both. The form shows the earliest recorded date; an equal date needs no confirmation."""
    from tests.factories import write_csv
    from zige.feeds.services import import_execute, import_submit

    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    today = timezone.localdate()
    people = [
        RecipientFactory(id_number=make_id(26 + n, birth=date(1950, 6, 6)), name=f"王晚报{n}")
        for n in range(2)
    ]
    died = today - timedelta(days=300)
    rows = [[p.id_number, p.name, died.isoformat()] for p in people]
    path = write_csv(tmp_path / "death_minzheng_2026.csv", ["身份证号", "姓名", "死亡日期"], rows)
    batch = import_submit(
        source=path,
        file_name="death_minzheng_2026.csv",
        kind=None,
        user=None,
        now=timezone.now(),
        enqueue=False,
    )
    assert import_execute(batch_id=batch.pk, now=timezone.now()).status == "succeeded"
    late, same = (verification_task(p, kind="review") for p in people)
    client.force_login(setup["officer"])
    page = client.get(reverse("verification:detail", kwargs={"pk": late.pk})).content.decode()  # type: ignore[attr-defined]
    assert "死亡、失踪等记录" in page
    shown = re.search(r'data-testid="earliest-death">(.*?)</p>', page, re.S)
    assert shown and died.isoformat() in shown.group(1), page
    resolve = reverse("verification:resolve", kwargs={"pk": late.pk})  # type: ignore[attr-defined]
    later = died + timedelta(days=95)
    months = (later.year - died.year) * 12 + later.month - died.month
    post = {"finding": "fraud", "note": "家属冒用刷脸", "death_date": later.isoformat()}
    page = client.post(resolve, post).content.decode()
    assert f"晚于已有记录的最早死亡日期{died.isoformat()}" in page and f"相差{months}个月" in page
    page = client.post(resolve, {**post, "confirm_later_death": "on"}).content.decode()
    assert "须填写说明" in page
    late.refresh_from_db()
    assert late.status == "open" and not AuditEvent.objects.filter(action="task.resolved").exists()
    reason = "民政记录系误报，火化证明所载日期为准"
    done = client.post(
        resolve, {**post, "confirm_later_death": "on", "later_death_reason": reason}, follow=True
    )
    assert "核查结论已记录" in done.content.decode()
    recorded = AuditEvent.objects.get(action="task.resolved", target_id=str(late.pk)).after
    assert recorded["later_than_recorded_death"] == {
        "confirmed": True, "earliest_date": died.isoformat(), "earliest_record": recorded["later_than_recorded_death"]["earliest_record"],
        "file_name": "death_minzheng_2026.csv", "months_later": months, "reason": reason,
    }  # fmt: skip
    # The recorded date itself needs no confirmation.
    done = client.post(
        reverse("verification:resolve", kwargs={"pk": same.pk}),  # type: ignore[attr-defined]
        {"finding": "dead", "note": "家属证实", "death_date": died.isoformat()},
        follow=True,
    )
    assert "核查结论已记录" in done.content.decode()
    assert (
        "later_than_recorded_death"
        not in AuditEvent.objects.get(action="task.resolved", target_id=str(same.pk)).after
    )


def test_the_bureaus_review_tasks_and_fraud_findings_are_invisible_to_the_unit(
    client: Client, setup: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """A 疑点核查 task on one of the unit's own people, and its 疑似冒领 finding, are the bureau's
    own work: the unit's operator neither lists nor counts the task, gets 404 on its page and
    its files, and the person's timeline has no 社保局疑点核查 line; the bureau sees them all."""
    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    person = setup["task"].recipient
    review = verification_task(person, kind="review")
    client.force_login(setup["officer"])
    died = timezone.localdate() - timedelta(days=120)
    note = "疑似冒领：家属冒用刷脸"
    done = client.post(
        reverse("verification:resolve", kwargs={"pk": review.pk}),  # type: ignore[attr-defined]
        {"finding": "fraud", "note": note, "death_date": died.isoformat(), "amount_obtained": "12000"},
        follow=True,
    )
    assert "核查结论已记录" in done.content.decode()
    detail = reverse("verification:detail", kwargs={"pk": review.pk})  # type: ignore[attr-defined]
    person_page = reverse("roster:person", kwargs={"person_no": person.person_no})
    listing = reverse("verification:list")
    assert note in client.get(detail).content.decode()
    assert "社保局疑点核查疑似冒领" in client.get(person_page).content.decode()
    assert client.get(listing, {"status": "resolved"}).context["counts"].get("resolved") == 1

    client.force_login(setup["unit_op"])
    assert client.get(detail).status_code == 404
    for status in ("", "resolved"):
        page = client.get(listing, {"status": status} if status else {})
        assert review not in list(page.context["page"]), status
        assert f"/verification/tasks/{review.pk}/" not in page.content.decode()
    assert "resolved" not in page.context["counts"]
    own = client.get(person_page).content.decode()
    assert "社保局疑点核查" not in own and note not in own and "冒领" not in own
    # Nor does the JSON API's timeline of the person tell the unit (the bureau's does).
    evidence = f"/api/v1/persons/{person.person_no}/evidence"

    def timeline(user: Any) -> str:
        token = token_issue(user=user, now=timezone.now())
        response = Client().get(evidence, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        return " ".join(f"{row['kind']} {row['detail']} {row['file_name']}" for row in response.json())

    assert "社保局疑点核查疑似冒领" in timeline(setup["officer"])
    own = timeline(setup["unit_op"])
    assert "社保局疑点核查" not in own and "冒领" not in own and "review" not in own


def test_the_review_queue_reads_the_reports_in_a_fixed_number_of_queries(
    client: Client, setup: dict[str, Any]
) -> None:
    """The queue shows each submitted task's latest report (result and method): read with the
    page's tasks in one query, not one more query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from zige.verification.models import Submission

    unit = setup["task"].unit
    client.force_login(setup["officer"])
    url = reverse("verification:queue")

    def submitted(n: int) -> None:
        person = RecipientFactory(unit=unit, id_number=make_id(40 + n, birth=date(1955, 3, 3)))
        task = verification_task(person, status="submitted")
        for number, result in ((1, "eligible"), (2, "lost")):  # a resubmission: the latest is shown
            Submission.objects.create(
                task=task, number=number, method="visit", result=result, confirmed_on=date(2026, 11, 1),
                lost_reason="死亡" if result == "lost" else "", lost_on=date(2026, 10, 1) if result == "lost" else None,
                submitted_by=setup["unit_op"], submitted_at=timezone.now(),
            )  # fmt: skip

    submitted(0)
    client.get(url)  # warm up (session, caches)
    with CaptureQueriesContext(connection) as one:
        page = client.get(url).content.decode()
    assert page.count("<td>丧失资格（上门走访）</td>") == 1, page
    for n in range(1, 4):
        submitted(n)
    with CaptureQueriesContext(connection) as four:
        page = client.get(url).content.decode()
    assert page.count("<td>丧失资格（上门走访）</td>") == 4 and "具备资格（" not in page, page
    assert len(four.captured_queries) == len(one.captured_queries), [q["sql"] for q in four.captured_queries]


def _date_input(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert found, name
    return found.group(0)


def test_dates_of_what_has_happened_stop_at_today_in_the_forms(client: Client, setup: dict[str, Any]) -> None:
    """确认日期 and 丧失时间 of the unit's report and the 死亡日期 of the bureau's finding: the
    services refuse a later day; the date fields stop at today too, also when the report comes
    back with its errors."""
    today = timezone.localdate()
    limit = f'max="{today:%Y-%m-%d}"'
    client.force_login(setup["unit_op"])
    page = client.get(reverse("verification:detail", kwargs={"pk": setup["task"].pk})).content.decode()
    assert limit in _date_input(page, "confirmed_on") and limit in _date_input(page, "lost_on")
    back = client.post(
        reverse("verification:submit", kwargs={"pk": setup["task"].pk}),
        {"method": "visit", "result": "lost", "confirmed_on": today.isoformat(), "lost_reason": "死亡",
         "lost_on": (today + timedelta(days=1)).isoformat()},
    ).content.decode()  # fmt: skip
    assert "丧失时间不能晚于今天" in back and not Submission.objects.exists()
    assert limit in _date_input(back, "confirmed_on") and limit in _date_input(back, "lost_on")
    review = verification_task(RecipientFactory(id_number=make_id(23, birth=date(1950, 4, 4))), kind="review")
    client.force_login(setup["officer"])
    page = client.get(reverse("verification:detail", kwargs={"pk": review.pk})).content.decode()  # type: ignore[attr-defined]
    assert limit in _date_input(page, "death_date")


def test_an_alive_finding_says_which_records_it_cleared(client: Client, setup: dict[str, Any]) -> None:
    person = RecipientFactory(id_number=make_id(22, birth=date(1950, 3, 3)))
    task = verification_task(person, kind="review")
    client.force_login(setup["officer"])
    url = reverse("verification:resolve", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    done = client.post(
        url, {"finding": "alive", "note": "本人到场", "written": pdf_file()}, follow=True
    ).content.decode()
    assert "核查结论已记录" in done
    assert "及以前的死亡、火化、宣告死亡、单位确认丧失资格和宣告失踪记录已核销" in done


def test_a_later_finding_form_says_it_overrides_the_earlier_alive_finding(
    client: Client, setup: dict[str, Any]
) -> None:
    """A person found alive on a review task, then reviewed again: the new task's finding form
    names the 确认健在 (its day and task) that a 确认死亡 / 疑似冒领 will override (rules §8.5)."""
    person = RecipientFactory(id_number=make_id(24, birth=date(1950, 3, 3)))
    first = verification_task(person, kind="review")
    VerificationTask.objects.filter(pk=first.pk).update(period="due:first")  # type: ignore[attr-defined]
    client.force_login(setup["officer"])
    client.post(
        reverse("verification:resolve", kwargs={"pk": first.pk}),  # type: ignore[attr-defined]
        {"finding": "alive", "note": "本人到场", "written": pdf_file()},
    )
    day = timezone.localdate().isoformat()
    again = verification_task(person, kind="review")
    page = client.get(reverse("verification:detail", kwargs={"pk": again.pk})).content.decode()  # type: ignore[attr-defined]
    assert 'data-testid="overrides-alive"' in page
    assert f"此人已于 {day} 经疑点核查任务" in page and f">#{first.pk}</a> 确认健在" in page  # type: ignore[attr-defined]
    assert "将取代该确认健在结论" in page


def test_the_review_resolve_form_takes_evidence_files_and_alive_needs_one(
    client: Client, setup: dict[str, Any]
) -> None:
    """The banner says what 确认健在 needs; the form takes the files (checked by content, stored,
    served to whoever may see the task, audited); a note alone is refused. A review task shows
    no 单位上报 panel (a unit task still does)."""
    person = RecipientFactory(
        unit=setup["task"].unit, id_number=make_id(23, birth=date(1952, 4, 4)), name="李核查"
    )
    task = verification_task(person, kind="review")
    detail = reverse("verification:detail", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    url = reverse("verification:resolve", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    client.force_login(setup["officer"])
    page = client.get(detail).content.decode()
    assert 'enctype="multipart/form-data"' in page and 'name="on_site"' in page and 'name="written"' in page
    assert "确认健在的，须上传现场确认图片或视频，或书面确认材料（至少一份）" in page
    assert "单位上报" not in page and "尚未上报" not in page
    assert (
        "单位上报"
        in client.get(reverse("verification:detail", kwargs={"pk": setup["task"].pk})).content.decode()
    )

    refused = client.post(url, {"finding": "alive", "note": "电话确认"})
    assert (
        refused.status_code == 200
        and "确认健在须上传现场确认图片或视频，或书面确认材料" in refused.content.decode()
    )
    disguised = io.BytesIO(b"MZ\x90\x00 not a photo" * 20)
    disguised.name = "photo.jpg"
    refused = client.post(url, {"finding": "alive", "note": "上门", "on_site": disguised})
    assert refused.status_code == 200 and "不是可接受的类型" in refused.content.decode()
    assert VerificationTask.objects.get(pk=task.pk).status == "open"  # type: ignore[attr-defined]
    assert not Attachment.objects.exists()

    done = client.post(url, {"finding": "alive", "note": "上门见到本人", "on_site": jpeg_file()}, follow=True)
    html = done.content.decode()
    assert "核查结论已记录" in html and "核查佐证材料" in html
    stored = Attachment.objects.get(task=task)
    assert (stored.role, stored.file_kind, stored.submission_id) == ("on_site", "jpeg", None)
    assert AuditEvent.objects.get(action="task.resolved").after["files"][0]["sha256"] == stored.sha256
    view = client.get(reverse("verification:attachment", kwargs={"pk": stored.pk}))
    assert view.status_code == 200 and view["Content-Type"] == "image/jpeg"
    assert AuditEvent.objects.get(action="attachment.viewed").after == {
        "task": task.pk,
        "recipient": person.pk,
    }  # type: ignore[attr-defined]
    client.force_login(setup["other_op"])
    assert client.get(reverse("verification:attachment", kwargs={"pk": stored.pk})).status_code == 404


def test_the_unit_downloads_its_form1_fills_it_and_uploads_it_back(
    client: Client, setup: dict[str, Any]
) -> None:
    """附件1 round trip: the list the unit downloads is the one its upload is checked against."""
    client.force_login(setup["unit_op"])
    response = client.get(reverse("verification:form1"), {"unit": "someone-elses"})  # ignored: own unit
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book.worksheets[0]
    header = {str(c.value): c.column for r in sheet.iter_rows(min_row=4, max_row=5) for c in r if c.value}
    by_person = {
        str(sheet.cell(row=r, column=header["个人编号"]).value): r
        for r in range(7, sheet.max_row + 1)
        if sheet.cell(row=r, column=header["个人编号"]).value
    }
    mine = {setup["task"].recipient.person_no, setup["soon"].recipient.person_no}
    assert set(by_person) == mine  # both open tasks of the unit, nobody else's
    assert AuditEvent.objects.filter(action="tasks.form1_downloaded").count() == 1
    row = by_person[setup["task"].recipient.person_no]
    for label, value in {"确认方式": "上门走访", "现居住地": "太原市迎泽区", "健康状况": "良好"}.items():
        sheet.cell(row=row, column=header[label], value=value)
    filled = io.BytesIO()
    book.save(filled)
    filled.seek(0)
    filled.name = "form1.xlsx"
    response = client.post(reverse("verification:bulk"), {"workbook": filled})
    assert response.status_code == 302, response.content.decode()[:2000]
    setup["task"].refresh_from_db()
    setup["soon"].refresh_from_db()
    assert (setup["task"].status, setup["soon"].status) == ("submitted", "open")


def _upload_form1(client: Client, fill: dict[str, dict[str, str]]) -> Any:
    """Download the unit's 附件1, fill the rows of the given people, upload it back."""
    response = client.get(reverse("verification:form1"))
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book.worksheets[0]
    header = {str(c.value): c.column for r in sheet.iter_rows(min_row=4, max_row=5) for c in r if c.value}
    rows = {str(sheet.cell(row=r, column=2).value): r for r in range(7, sheet.max_row + 1)}
    for person_no, cells in fill.items():
        for label, value in cells.items():
            sheet.cell(row=rows[person_no], column=header[label], value=value)
    filled = io.BytesIO()
    book.save(filled)
    filled.seek(0)
    filled.name = "form1.xlsx"
    return client.post(reverse("verification:bulk"), {"workbook": filled})


def test_the_unit_cannot_upload_people_it_did_not_reach_as_eligible(
    client: Client, setup: dict[str, Any]
) -> None:
    """The walkthrough: 电话无人接听 and 多次上门未见到本人 are refused row by row with the values the
    form accepts, nothing is reported; the form's own value goes through, and the bureau's
    reviewer sees what the unit wrote."""
    task, soon = setup["task"], setup["soon"]
    client.force_login(setup["unit_op"])
    response = _upload_form1(client, {
        task.recipient.person_no: {"确认方式": "电话无人接听", "现居住地": "不详", "健康状况": "不详"},
        soon.recipient.person_no: {"确认方式": "多次上门未见到本人，联系不到", "现居住地": "不详", "健康状况": "不详"},
    })  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 200 and "全部未上报" in html
    assert (
        "“电话无人接听”不是可选的确认方式" in html
        and "“多次上门未见到本人，联系不到”不是可选的确认方式" in html
    )
    assert "只能填写：上门走访、视频、电话、来访、无法联系" in html
    assert not Submission.objects.exists()

    response = _upload_form1(
        client,
        {task.recipient.person_no: {"确认方式": "电话", "现居住地": "太原市迎泽区", "健康状况": "良好"}},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    client.force_login(setup["officer"])
    queue = client.get(reverse("verification:queue")).content.decode()
    assert "具备资格（电话）" in queue
    page = client.get(reverse("verification:detail", kwargs={"pk": task.pk})).content.decode()
    assert re.search(r"附件1第\d+行原文：确认方式“电话”", page)


def test_the_bureau_names_the_unit_of_the_form1_and_another_unit_operator_gets_404(
    client: Client, setup: dict[str, Any]
) -> None:
    client.force_login(setup["officer"])
    assert client.get(reverse("verification:form1")).status_code == 404  # no unit named
    unit_no = setup["task"].unit.unit_no
    assert client.get(reverse("verification:form1"), {"unit": unit_no}).status_code == 200
    client.force_login(setup["other_op"])
    response = client.get(reverse("verification:form1"), {"unit": unit_no})
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    cells = {str(c.value) for r in book.worksheets[0].iter_rows() for c in r if c.value}
    assert setup["task"].recipient.person_no not in cells  # their own list, never unit_no's


def _form1_cells(response: Any) -> set[str]:
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return {str(c.value) for r in book.worksheets[0].iter_rows() for c in r if c.value}


def test_an_auditor_gets_the_form1_with_masked_id_numbers_and_the_bureau_in_full(
    client: Client, setup: dict[str, Any]
) -> None:
    """docs/security.md: auditors see everything, numbers masked, and cannot reveal them."""
    person = setup["task"].recipient
    unit_no = setup["task"].unit.unit_no
    masked = person.id_number[:6] + "********" + person.id_number[-4:]
    client.force_login(UserFactory(role=Role.AUDITOR))
    response = client.get(reverse("verification:form1"), {"unit": unit_no})
    assert response.status_code == 200
    cells = _form1_cells(response)
    assert person.person_no in cells and masked in cells
    assert not any(person.id_number in c for c in cells)
    client.force_login(setup["officer"])
    cells = _form1_cells(client.get(reverse("verification:form1"), {"unit": unit_no}))
    assert person.id_number in cells
    downloads = AuditEvent.objects.filter(action="tasks.form1_downloaded").order_by("seq")
    assert [e.after["id_numbers"] for e in downloads] == ["masked", "full"]


def test_too_many_evidence_files_or_bytes_are_refused_before_any_is_read(
    client: Client, setup: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zige.verification import views

    read: list[str] = []
    real_check = views.upload_check

    def counting_check(**kw: Any) -> Any:
        read.append(kw["name"])
        return real_check(**kw)

    monkeypatch.setattr(views, "upload_check", counting_check)
    client.force_login(setup["unit_op"])
    url = reverse("verification:submit", kwargs={"pk": setup["task"].pk})
    form = {"method": "visit", "result": "eligible", "confirmed_on": timezone.localdate().isoformat(),
            "address": "太原市杏花岭区", "health": "良好"}  # fmt: skip
    many = {"on_site": [jpeg_file(f"p{n}.jpg") for n in range(12)],
            "other": [jpeg_file(f"o{n}.jpg") for n in range(9)]}  # fmt: skip
    response = client.post(url, {**form, **many})  # 21 files: the default limit is 20
    assert response.status_code == 200
    assert "一次最多上传 20 个文件（本次 21 个）" in response.content.decode()
    assert read == [] and not Submission.objects.exists()

    size = len(jpeg_file().getvalue())
    settings.ZIGE_UPLOAD_MAX_TOTAL_BYTES = 2 * size
    response = client.post(
        url, {**form, "on_site": [jpeg_file("a.jpg"), jpeg_file("b.jpg")], "other": jpeg_file()}
    )
    assert "一次上传的文件合计不能超过" in response.content.decode()
    assert read == [] and not Submission.objects.exists()

    settings.ZIGE_UPLOAD_MAX_TOTAL_BYTES = 200 * 1024 * 1024
    settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES = settings.ZIGE_UPLOAD_MAX_VIDEO_BYTES = (
        size - 1
    )  # on_site: both kinds
    response = client.post(url, {**form, "on_site": jpeg_file("big.jpg")})
    assert "文件“big.jpg”过大" in response.content.decode()
    assert read == [] and not Submission.objects.exists()

    del settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES, settings.ZIGE_UPLOAD_MAX_VIDEO_BYTES
    response = client.post(url, {**form, "on_site": [jpeg_file(f"p{n}.jpg") for n in range(20)]})
    assert response.status_code == 302 and len(read) == 20  # 20 files of the default limit are fine


def test_a_resolved_review_names_its_action_and_fraud_case_in_chinese_with_links(
    client: Client, setup: dict[str, Any]
) -> None:
    from decimal import Decimal

    from zige.benefits.models import FraudCase, PaymentAction

    person = RecipientFactory(
        unit=setup["task"].recipient.unit, id_number=make_id(23, birth=date(1950, 2, 2)),
        monthly_amount=Decimal("2000.00"),
    )  # fmt: skip
    task = verification_task(person, kind="review")
    client.force_login(setup["officer"])
    client.post(
        reverse("verification:resolve", kwargs={"pk": task.pk}),  # type: ignore[attr-defined]
        {"finding": "fraud", "note": "家属代领", "death_date": "2026-08-15", "amount_obtained": "6000.00"},
    )
    action, case = PaymentAction.objects.get(recipient=person), FraudCase.objects.get(recipient=person)
    detail = reverse("verification:detail", kwargs={"pk": task.pk})  # type: ignore[attr-defined]
    page = client.get(detail).content.decode()
    assert "payment_action:" not in page and "fraud_case:" not in page
    assert f'<a href="{reverse("benefits:action", args=[action.pk])}">待遇处理 #{action.pk}</a>' in page
    assert f'<a href="{reverse("benefits:fraud", args=[case.pk])}">冒领案件 #{case.pk}</a>' in page
    # the action and the case came from the bureau's review, not from a unit
    link = f'<a href="{detail}">疑点核查 #{task.pk}</a>'  # type: ignore[attr-defined]
    shown = client.get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert link in shown and "review:" not in shown and "单位核实" not in shown
    fraud = client.get(reverse("benefits:fraud", args=[case.pk])).content.decode()
    assert link in fraud and "review:" not in fraud
    # the review and its fraud case are the bureau's own: not found for the unit
    client.force_login(setup["unit_op"])
    assert client.get(detail).status_code == 404


def test_a_later_finding_that_cannot_revise_a_fined_fraud_case_says_so_on_its_page(
    client: Client, setup: dict[str, Any]
) -> None:
    """疑似冒领 dated 2026-08-15 opened a case, fined since; a later 确认死亡 dates the death two months
    later. The fined case is not changed: the finding's message and its page say that case #N
    needs a manual correction, with both amounts and a link to it; a unit sees no such page."""
    from decimal import Decimal

    from zige.benefits.models import FraudCase
    from zige.benefits.services import fraud_case_fine

    person = RecipientFactory(
        unit=setup["task"].recipient.unit, id_number=make_id(24, birth=date(1950, 2, 2)),
        monthly_amount=Decimal("2000.00"),
    )  # fmt: skip
    first = verification_task(person, kind="review")
    client.force_login(setup["officer"])
    client.post(
        reverse("verification:resolve", kwargs={"pk": first.pk}),  # type: ignore[attr-defined]
        {"finding": "fraud", "note": "家属代领", "death_date": "2026-08-15", "amount_obtained": "6500.00"},
    )
    case = FraudCase.objects.get(recipient=person)
    fraud_case_fine(case_id=case.pk, fine=Decimal("13000.00"), user=setup["officer"], now=timezone.now())
    VerificationTask.objects.filter(pk=first.pk).update(period="first")  # type: ignore[attr-defined]
    later = verification_task(person, kind="review")
    done = client.post(
        reverse("verification:resolve", kwargs={"pk": later.pk}),  # type: ignore[attr-defined]
        {
            "finding": "dead",
            "note": "死亡证明",
            "death_date": "2026-10-15",
            "confirm_alive_after": "on",
            "confirm_later_death": "on",
            "later_death_reason": "死亡证明所载日期为准",
        },  # later than the first
        follow=True,
    ).content.decode()
    assert "核查结论已记录" in done
    assert done.count(f"欺诈案件 #{case.pk} 的骗取金额仍为 6500.00 元") == 2  # the message and the page
    assert "该案件已已处罚" not in done and "人工更正" in done
    assert f'href="{reverse("benefits:fraud", args=[case.pk])}"' in done
    case.refresh_from_db()
    assert (case.status, case.amount_obtained) == ("fined", Decimal("6500.00"))
    client.force_login(setup["unit_op"])  # the bureau's review: not found for the unit
    assert client.get(reverse("verification:detail", kwargs={"pk": later.pk})).status_code == 404  # type: ignore[attr-defined]


def test_a_refused_step_is_said_in_chinese_only(client: Client, setup: dict[str, Any]) -> None:
    client.force_login(setup["officer"])
    url = reverse("verification:resolve", kwargs={"pk": setup["task"].pk})  # a unit task: not resolved
    page = client.post(url, {"finding": "alive", "note": "本人到场"}, follow=True).content.decode()
    assert "单位核实任务须由单位上报后审核" in page and "Unit tasks are reviewed" not in page


def test_the_review_queue_names_each_task_s_unit(client: Client, setup: dict[str, Any]) -> None:
    """Walkthrough: the queue's 单位 column gave only the unit's eleven-digit number; the
    officer had to open each task to learn which unit it was. It names the unit, number beside."""
    task = setup["task"]
    unit = task.unit
    client.force_login(setup["officer"])
    task_review = verification_task(task.recipient, kind="review")
    page = client.get(reverse("verification:queue")).content.decode()
    cell = re.search(r'data-testid="queue-unit">(.*?)</td>', page, re.S)
    assert cell and unit.name in cell.group(1) and unit.unit_no in cell.group(1), page
    assert f"#{task_review.pk}<" in page  # type: ignore[attr-defined]


def test_the_workbook_s_errors_name_the_person_of_each_row(client: Client, setup: dict[str, Any]) -> None:
    """Walkthrough: a clerk's 附件1 came back with 行号 8 · 现居住地 · 不能填“不详”, and the clerk
    had to count rows in Excel to find whose. Each error names the row's 姓名 and 个人编号."""
    client.force_login(setup["unit_op"])
    person = setup["task"].recipient
    response = _upload_form1(
        client, {person.person_no: {"确认方式": "电话", "现居住地": "不详", "健康状况": "良好"}}
    )
    page = response.content.decode()
    assert response.status_code == 200 and "全部未上报" in page
    cell = re.search(r'data-testid="error-person">(.*?)</td>', page, re.S)
    assert cell and person.name in cell.group(1) and person.person_no in cell.group(1), page


def test_after_a_finding_the_page_links_the_next_task_of_the_review_queue(
    client: Client, setup: dict[str, Any]
) -> None:
    """A recorded finding landed on the same task with no way onward: the message links 下一条,
    the next task of the officer's review queue in its order (deadline, then number)."""
    first = verification_task(RecipientFactory(id_number=make_id(23, birth=date(1950, 4, 4))), kind="review")
    second = verification_task(
        RecipientFactory(id_number=make_id(24, birth=date(1950, 5, 5)), name="郑一"), kind="review"
    )
    client.force_login(setup["officer"])
    done = client.post(
        reverse("verification:resolve", kwargs={"pk": first.pk}),  # type: ignore[attr-defined]
        {"finding": "alive", "note": "本人到场", "written": pdf_file()},
        follow=True,
    ).content.decode()
    assert "核查结论已记录" in done
    link = reverse("verification:detail", kwargs={"pk": second.pk})  # type: ignore[attr-defined]
    assert f'<a href="{link}" data-testid="next">下一条：#{second.pk} 郑一' in done  # type: ignore[attr-defined]
    done = client.post(
        reverse("verification:resolve", kwargs={"pk": second.pk}),  # type: ignore[attr-defined]
        {"finding": "alive", "note": "本人到场", "written": pdf_file()},
        follow=True,
    ).content.decode()
    assert "审核队列中已没有其他待处理的任务" in done and 'data-testid="next"' not in done
