"""The 服务台账 and 异地居住 pages over HTTP: a unit operator's own ledger only, a visit with a
photo through the form (a real JPEG accepted, a disguised file refused), marks, the bureau's
other-province list and its 附件2 export read back."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from tests.factories import RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.ledger.config import LedgerConfig
from zige.ledger.models import HomeVisit, OtherProvinceExport, SpecialMark

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.ZIGE_LEDGER = LedgerConfig()
    return tmp_path / "data"


@pytest.fixture
def world() -> dict[str, Any]:
    today = timezone.localdate()
    own, other = UnitFactory(unit_no="14019990001"), UnitFactory(unit_no="14019990002")
    old_birth = date(today.year - 85, 1, 1)
    young_birth = date(today.year - 65, 1, 1)
    return {
        "own": own,
        "other": other,
        "old": RecipientFactory(unit=own, name="高龄甲", id_number=make_id(901, old_birth)),
        "young": RecipientFactory(unit=own, name="年轻乙", id_number=make_id(902, young_birth)),
        "foreign": RecipientFactory(unit=other, name="外单位丙", id_number=make_id(903, old_birth)),
        "away": RecipientFactory(
            unit=own,
            name="外省丁",
            id_number=make_id(904, young_birth, region="130102"),
            has_social_card="no",
        ),
        "unitop": UnitOperatorFactory(unit=own),
        "staff": UserFactory(role=Role.BUREAU_OPERATOR),
    }


def jpeg(name: str = "visit.jpg") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, format="JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def test_a_unit_operator_lands_on_their_own_ledger_and_sees_no_other_unit(
    client: Client, world: dict[str, Any]
) -> None:
    client.force_login(world["unitop"])
    response = client.get("/ledger/")
    assert response.status_code == 302 and response["Location"] == f"/ledger/units/{world['own'].unit_no}/"
    page = client.get(response["Location"]).content.decode()
    assert world["old"].person_no in page and "高龄甲" in page and "高*甲" not in page  # names in full
    assert world["young"].person_no not in page  # not in a special group
    assert world["foreign"].person_no not in page
    assert client.get(f"/ledger/units/{world['other'].unit_no}/").status_code == 404
    assert client.get(f"/ledger/people/{world['foreign'].person_no}/").status_code == 404
    assert client.get(f"/ledger/people/{world['foreign'].person_no}/visits/new/").status_code == 404
    assert client.get("/ledger/other-province/").status_code == 403


def test_a_visit_with_a_real_photo_through_the_form(
    client: Client, world: dict[str, Any], data_dir: Path
) -> None:
    client.force_login(world["unitop"])
    old = world["old"]
    url = f"/ledger/people/{old.person_no}/visits/new/"
    assert "登记走访" in client.get(url).content.decode()
    response = client.post(
        url,
        {"visited_on": timezone.localdate().isoformat(), "visitor": "李社工", "outcome": "alive",
         "notes": "精神良好", "photo": jpeg()},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == f"/ledger/people/{old.person_no}/"
    visit = HomeVisit.objects.get()
    assert (visit.recorded_by, visit.visitor, visit.photo_content_type) == (
        world["unitop"],
        "李社工",
        "image/jpeg",
    )
    page = client.get(response["Location"]).content.decode()
    assert "精神良好" in page and "查看照片" in page
    photo = client.get(f"/ledger/visits/{visit.pk}/photo/")
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(photo.streaming_content))).size == (40, 30)
    # every view of the photo is audited, as a verification attachment's is
    viewed = AuditEvent.objects.get(action="ledger.visit_photo_viewed")
    assert (viewed.actor, viewed.target_type, viewed.target_id) == (
        world["unitop"].username, "home_visit", str(visit.pk))  # fmt: skip
    assert viewed.after == {"recipient": old.pk, "photo_sha256": visit.photo_sha256}
    # the not-visited list no longer has the person
    ledger = client.get(f"/ledger/units/{world['own'].unit_no}/?show=not_visited").content.decode()
    assert old.person_no not in ledger
    # a unit operator of another unit cannot open the photo
    client.force_login(UnitOperatorFactory(unit=world["other"]))
    assert client.get(f"/ledger/visits/{visit.pk}/photo/").status_code == 404
    assert AuditEvent.objects.filter(action="ledger.visit_photo_viewed").count() == 1


@pytest.mark.parametrize(
    "upload",
    [
        SimpleUploadedFile("photo.jpg", b"<?php echo 'not a photo'; ?>" * 10, content_type="image/jpeg"),
        SimpleUploadedFile("photo.png", b"GIF89a" + b"\x00" * 100, content_type="image/png"),
    ],
)
def test_a_disguised_photo_is_refused_with_a_message(
    client: Client, world: dict[str, Any], upload: Any
) -> None:
    client.force_login(world["unitop"])
    response = client.post(
        f"/ledger/people/{world['old'].person_no}/visits/new/",
        {
            "visited_on": timezone.localdate().isoformat(),
            "visitor": "李社工",
            "outcome": "alive",
            "photo": upload,
        },
    )
    assert response.status_code == 200
    assert "不是可接受的类型" in response.content.decode()
    assert "not an accepted type" not in response.content.decode()  # Chinese only on the page
    assert not HomeVisit.objects.exists()


def test_a_visit_dated_tomorrow_is_refused(client: Client, world: dict[str, Any]) -> None:
    client.force_login(world["staff"])
    tomorrow = timezone.localdate() + timedelta(days=1)
    response = client.post(
        f"/ledger/people/{world['old'].person_no}/visits/new/",
        {"visited_on": tomorrow.isoformat(), "visitor": "李社工", "outcome": "alive"},
    )
    assert response.status_code == 200 and "走访日期不能晚于今天" in response.content.decode()
    assert not HomeVisit.objects.exists()


def test_marking_and_removing_through_the_person_page(client: Client, world: dict[str, Any]) -> None:
    client.force_login(world["unitop"])
    young = world["young"]
    response = client.post(
        f"/ledger/people/{young.person_no}/marks/",
        {"group": "high_risk", "reason": "独居", "since": "2026-01-01"},
    )
    assert response.status_code == 302
    mark = SpecialMark.objects.get()
    ledger = client.get(f"/ledger/units/{world['own'].unit_no}/?group=high_risk").content.decode()
    assert young.person_no in ledger and world["old"].person_no not in ledger
    again = client.post(
        f"/ledger/people/{young.person_no}/marks/", {"group": "high_risk", "reason": "再标", "since": "2026-01-01"},
        follow=True,
    )  # fmt: skip
    assert "已标记为高危" in again.content.decode()
    client.post(f"/ledger/marks/{mark.pk}/remove/", {"reason": "子女已同住"})
    mark.refresh_from_db()
    assert (mark.active, mark.removal_reason) == (False, "子女已同住")
    ledger_events = AuditEvent.objects.filter(action__startswith="ledger.").order_by("seq")
    assert [e.action for e in ledger_events] == ["ledger.mark_add", "ledger.mark_remove"]
    # an auditor reads the ledger but cannot write it
    client.force_login(UserFactory(role=Role.AUDITOR))
    assert client.get(f"/ledger/people/{young.person_no}/").status_code == 200
    assert client.post(f"/ledger/marks/{mark.pk}/remove/", {"reason": "x"}).status_code == 403


def test_the_not_visited_csv(client: Client, world: dict[str, Any]) -> None:
    world["old"].address = "@SUM(A1)"  # from the roster: a spreadsheet must not run it
    world["old"].save()
    client.force_login(world["unitop"])
    response = client.get(f"/ledger/units/{world['own'].unit_no}/not-visited.csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0] == "个人编号,姓名,类别,上次走访,现居住地"
    assert [line.split(",")[0] for line in lines[1:]] == [world["old"].person_no]
    assert lines[1].split(",")[1] == "高龄甲"  # the visitor needs the name, as on the page
    assert lines[1].endswith(",'@SUM(A1)")


def test_the_bureau_lists_and_exports_other_province_residents(client: Client, world: dict[str, Any]) -> None:
    client.force_login(world["staff"])
    page = client.get("/ledger/other-province/").content.decode()
    assert world["away"].person_no in page and world["old"].person_no not in page
    assert 'data-testid="op-total">1<' in page
    # provinces and regions by name (the code beside the region), no internal kind code
    assert ">河北省（1人）</option>" in page and "app_auth" not in page
    assert '河北省石家庄市长安区 <span class="muted mono">130102</span>' in page
    # the card is the status of the filter and of the docs (从未上传), and its subtitle says the same
    assert '<div class="kpi__label">从未上传</div>' in page and 'data-testid="op-never-exported">1<' in page
    assert "未随附件2上传过" in page and "未导出过" not in page
    response = client.post("/ledger/other-province/export/", {"format": "xlsx"})
    assert response.status_code == 302
    export = OtherProvinceExport.objects.get()
    download = client.get(f"/ledger/other-province/exports/{export.pk}/", REMOTE_ADDR="10.0.0.9")
    data = b"".join(download.streaming_content)
    # every download is audited (the file holds full ID and phone numbers): who, which file, from where
    event = AuditEvent.objects.get(action="ledger.other_province_export_downloaded")
    assert (event.actor, event.target_id, event.after["file_name"], event.ip) == (
        world["staff"].username,
        str(export.pk),
        export.file_name,
        "10.0.0.9",
    )
    client.get(f"/ledger/other-province/exports/{export.pk}/")
    assert AuditEvent.objects.filter(action="ledger.other_province_export_downloaded").count() == 2
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    rows = [r for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    assert [(r[4], r[9], r[2]) for r in rows] == [
        (world["away"].person_no, world["away"].id_number, "140000")
    ]
    page = client.get("/ledger/other-province/").content.decode()
    assert export.file_name in page and export.sha256[:16] in page
    client.force_login(world["unitop"])
    assert client.post("/ledger/other-province/export/", {"format": "xlsx"}).status_code == 403
    assert client.get(f"/ledger/other-province/exports/{export.pk}/").status_code == 403


def test_the_bureau_overview_counts_every_unit(client: Client, world: dict[str, Any]) -> None:
    client.force_login(world["staff"])
    page = client.get("/ledger/").content.decode()
    assert world["own"].unit_no in page and world["other"].unit_no in page
    assert 'data-testid="ledger-total">2<' in page and 'data-testid="ledger-not-visited">2<' in page
    assert "服务台账" in page and "异地居住" in page  # the navigation links


def test_the_visit_and_mark_forms_fill_their_date_fields_in_the_format_a_date_input_reads(
    client: Client, world: dict[str, Any]
) -> None:
    """An <input type="date"> takes only yyyy-mm-dd: the zh-Hans format 2026/11/30 leaves it empty,
    so the visit form lost its default date and, on an error, the date the user had typed."""
    client.force_login(world["staff"])
    url = f"/ledger/people/{world['old'].person_no}/visits/new/"
    today = timezone.localdate()
    page = client.get(url).content.decode()
    assert f'name="visited_on" value="{today.isoformat()}"' in page
    assert today.strftime("%Y/%m/%d") not in page
    yesterday = today - timedelta(days=1)
    refused = client.post(url, {"visited_on": yesterday.isoformat(), "visitor": "", "outcome": "alive"})
    assert refused.status_code == 200
    assert f'name="visited_on" value="{yesterday.isoformat()}"' in refused.content.decode()
    person_page = client.get(f"/ledger/people/{world['young'].person_no}/").content.decode()
    assert re.search(r'name="since" value="\d{4}-\d{2}-\d{2}"', person_page)


def test_a_dead_visit_reaches_the_bureau_who_confirms_the_death_and_a_stop_is_proposed(
    client: Client, world: dict[str, Any]
) -> None:
    """The unit records 已死亡 on the visit form; the bureau finds it in its queue and on the
    dashboard's work list, sees the visit and its photo on the task, confirms the death; a stop
    is proposed (to be approved by another person), never made by the visit."""
    from zige.benefits.models import PaymentAction
    from zige.reports.selectors import work_queue
    from zige.verification.models import VerificationTask

    old, staff = world["old"], world["staff"]
    today = timezone.localdate()
    assert {w.label: w.count for w in work_queue(staff, today=today)}["疑点核查待处理"] == 0
    client.force_login(world["unitop"])
    response = client.post(
        f"/ledger/people/{old.person_no}/visits/new/",
        {"visited_on": today.isoformat(), "visitor": "李社工", "outcome": "dead",
         "notes": "邻居称已于上月去世", "photo": jpeg()},
    )  # fmt: skip
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    task = VerificationTask.objects.get(recipient=old)
    assert "已报社保局疑点核查" in page and "已报社保局核查" in page
    assert f"/verification/tasks/{task.pk}/" not in page  # the review is the bureau's: no link to a 404
    assert not PaymentAction.objects.exists()

    client.force_login(staff)
    assert {w.label: w.count for w in work_queue(staff, today=today)}["疑点核查待处理"] == 1
    assert old.name in client.get("/verification/review/").content.decode()
    detail = client.get(f"/verification/tasks/{task.pk}/").content.decode()
    visit = HomeVisit.objects.get()
    assert "上门走访发现已死亡" in detail and "邻居称已于上月去世" in detail
    assert f"/ledger/visits/{visit.pk}/photo/" in detail and 'id="resolve"' in detail
    response = client.post(
        f"/verification/tasks/{task.pk}/resolve/",
        {
            "finding": "dead",
            "death_date": (today - timedelta(days=20)).isoformat(),
            "note": "走访及村委会证明",
        },
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.finding) == ("resolved", "dead")
    action = PaymentAction.objects.get(recipient=old)
    assert (action.kind, action.state, action.proposed_by) == ("stop", "proposed", staff)
    old.refresh_from_db()
    assert old.benefit_status == "normal"  # paid until a second person approves the stop
