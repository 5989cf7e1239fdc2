"""异地居住 (附件2): the list from the roster, exports read back, remote-certification status from
evidence. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.factories import NOW, RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from zige.accounts.models import DeviceClient, Role
from zige.audit.models import AuditEvent
from zige.certification.models import Decision, Run, RunStatus
from zige.engine.forms import OUT_OF_PROVINCE_HEADERS
from zige.feeds import services as feed_services
from zige.feeds.models import PushedResult
from zige.ledger import selectors, services
from zige.ledger.config import LedgerConfig
from zige.ledger.models import OtherProvinceExport, OtherProvinceExportRow
from zige.roster.models import BenefitStatus

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 30)


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.ZIGE_LEDGER = LedgerConfig()
    return tmp_path / "data"


_seq = [500]


def person(region: str, card: str = "no", **kwargs: Any) -> Any:
    _seq[0] += 1
    return RecipientFactory(
        id_number=make_id(_seq[0], birth=date(1950, 3, 4), region=region), has_social_card=card, **kwargs
    )


@pytest.fixture
def roster() -> dict[str, Any]:
    unit = UnitFactory(unit_no="14010000208")
    return {
        "hebei": person("130102", unit=unit, name="河北人", residence_region="130102", address="石家庄市长安区",
                        ethnicity="汉族", health="良好", hukou="河北省石家庄市", former_employer="太原钢铁"),
        "beijing": person("110101", unit=unit, name="北京人", residence_region=""),  # the ID's region is used
        "henan_other_unit": person("410105", name="河南人", residence_region="410105"),
        "shanxi": person("140105", name="山西人"),  # home province: not listed
        "with_card": person("130102", card="yes", name="有卡人"),  # has a card: uses the app
        "unknown_card": person("130102", card="", name="未知人"),  # unknown: not listed (docs/rules.md §6.1)
        "terminated": person("130102", name="终止人", benefit_status=BenefitStatus.TERMINATED),
    }  # fmt: skip


def test_the_list_follows_the_roster(roster: dict[str, Any]) -> None:
    listed = {p.pk for p in selectors.other_province_people()}
    assert listed == {roster[k].pk for k in ("hebei", "beijing", "henan_other_unit")}
    roster["with_card"].has_social_card = "no"  # a roster import says the card was never issued
    roster["with_card"].save()
    roster["hebei"].benefit_status = BenefitStatus.TERMINATED
    roster["hebei"].save()
    listed = {p.pk for p in selectors.other_province_people()}
    assert listed == {roster[k].pk for k in ("beijing", "henan_other_unit", "with_card")}


def test_another_home_province(settings: Any, roster: dict[str, Any]) -> None:
    settings.ZIGE_LEDGER = LedgerConfig(home_province="13")
    listed = {p.name for p in selectors.other_province_people()}
    assert listed == {"北京人", "河南人", "山西人"}  # Shanxi is now another province


def read_xlsx(path: Path) -> list[tuple[Any, ...]]:
    ws = openpyxl.load_workbook(path).active
    assert ws["A1"].value == "附件2" and ws["A2"].value == "外省户籍人员基本信息表"
    return [row for row in ws.iter_rows(min_row=4, values_only=True) if isinstance(row[0], int)]


def test_the_xlsx_export_matches_the_roster_and_is_recorded(roster: dict[str, Any], data_dir: Path) -> None:
    staff = UserFactory(role=Role.BUREAU_OPERATOR)
    export = services.other_province_export(actor=staff, as_of=AS_OF, fmt="xlsx", now=NOW)
    path = services.export_path(export)
    data = path.read_bytes()
    assert (export.rows, export.sha256, export.size) == (3, hashlib.sha256(data).hexdigest(), len(data))
    assert path.parent == data_dir / "exports" / "other_province"
    rows = read_xlsx(path)
    people = sorted(
        (roster[k] for k in ("hebei", "beijing", "henan_other_unit")),
        key=lambda r: (r.unit.unit_no, r.person_no),
    )
    assert [r[4] for r in rows] == [p.person_no for p in people]
    by_no = {r[4]: dict(zip(OUT_OF_PROVINCE_HEADERS, r, strict=True)) for r in rows}
    hebei = by_no[roster["hebei"].person_no]
    assert hebei == {
        "序号": hebei["序号"], "单位编号": "14010000208", "参保地行政区划": "140000", "居住地行政区划": "130102",
        "个人编号": roster["hebei"].person_no, "姓名": "河北人", "性别": "男", "民族": "汉族", "出生日期": "1950-03-04",
        "社会保障号码": roster["hebei"].id_number, "政治面貌": "", "健康状况": "良好", "原工作单位": "太原钢铁",
        "离退休类别": "", "退休日期": "2010-01-01", "户口所在地": "河北省石家庄市", "异地居住地址": "石家庄市长安区",
        "居住地邮编": "", "联系电话": "13812345678",
    }  # fmt: skip
    assert by_no[roster["beijing"].person_no]["居住地行政区划"] == "110101"
    assert set(OtherProvinceExportRow.objects.filter(export=export).values_list("recipient__name", flat=True)) == {
        "河北人", "北京人", "河南人",
    }  # fmt: skip
    event = AuditEvent.objects.get(action="ledger.other_province_export")
    assert (event.actor, event.after["rows"], event.after["sha256"]) == (staff.username, 3, export.sha256)


def test_the_csv_export_and_one_units_export(roster: dict[str, Any]) -> None:
    staff = UserFactory(role=Role.BUREAU_ADMIN)
    export = services.other_province_export(
        actor=staff, as_of=AS_OF, fmt="csv", now=NOW, unit_no="14010000208"
    )
    data = services.export_path(export).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(OUT_OF_PROVINCE_HEADERS)
    in_order = sorted((roster["hebei"], roster["beijing"]), key=lambda r: r.person_no)
    assert [(r[0], r[2], r[5]) for r in rows[1:]] == [
        ("1", "140000", in_order[0].name),
        ("2", "140000", in_order[1].name),
    ]
    assert {r[9] for r in rows[1:]} == {roster["hebei"].id_number, roster["beijing"].id_number}
    assert export.rows == 2 and export.filters == {"unit_no": "14010000208"}
    # a second export is a second file, never the first one overwritten
    again = services.other_province_export(
        actor=staff, as_of=AS_OF, fmt="csv", now=NOW, unit_no="14010000208"
    )
    assert again.file_name != export.file_name and again.sha256 == export.sha256
    assert OtherProvinceExport.objects.count() == 2


def test_the_csv_export_quotes_text_a_spreadsheet_would_run(roster: dict[str, Any]) -> None:
    hebei = roster["hebei"]
    hebei.address, hebei.former_employer, hebei.phone = "=cmd|' /C calc'!A0", "@SUM(1,2)", "+8613812345678"
    hebei.save()
    export = services.other_province_export(
        actor=UserFactory(role=Role.BUREAU_ADMIN), as_of=AS_OF, fmt="csv", now=NOW, unit_no="14010000208"
    )
    rows = list(csv.reader(io.StringIO(services.export_path(export).read_bytes().decode("utf-8-sig"))))
    [row] = [r for r in rows[1:] if r[5] == hebei.name]
    headers = list(OUT_OF_PROVINCE_HEADERS)
    assert "'=cmd|' /C calc'!A0" in row and "'@SUM(1,2)" in row
    assert row[9] == hebei.id_number and row[0] == "1" and len(row) == len(headers)


@pytest.mark.parametrize(
    ("phone", "cell"),
    [
        ("+8613812345678", "13812345678"),  # was '+8613812345678: a mobile as reminders.csv has it
        ("+86 138-1234-5678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("+852 9123 4567", "00852 9123 4567"),  # another + number: the same number, dialled with 00
        ("  +1 555 0100", "001 555 0100"),
        ("＋852 9123 4567", "00852 9123 4567"),
        ("0351-1234567", "0351-1234567"),  # a landline as it is
        ("13812345678", "13812345678"),
        ("", ""),
        ("=1+1", "'=1+1"),  # not a phone number: quoted as any other text
    ],
)
def test_the_csv_export_writes_a_phone_readable_and_never_a_formula(
    roster: dict[str, Any], phone: str, cell: str
) -> None:
    """附件2's CSV wrote a phone beginning with + as '+8613812345678 (the formula guard's
    apostrophe): the number in the cell was no longer the number. A mainland mobile is written as
    its 11 digits (as reminders.csv and the SMS gateway take it), another + number with the +
    as 00; the workbook keeps the roster's text in a text cell."""
    hebei = roster["hebei"]
    hebei.phone = phone
    hebei.save()
    export = services.other_province_export(
        actor=UserFactory(role=Role.BUREAU_ADMIN), as_of=AS_OF, fmt="csv", now=NOW, unit_no="14010000208"
    )
    rows = list(csv.reader(io.StringIO(services.export_path(export).read_bytes().decode("utf-8-sig"))))
    assert rows[0][18] == "联系电话"
    [row] = [r for r in rows[1:] if r[5] == hebei.name]
    assert row[18] == cell


@pytest.mark.parametrize("role", [Role.UNIT_OPERATOR, Role.AUDITOR])
def test_only_bureau_staff_export(role: str, roster: dict[str, Any], data_dir: Path) -> None:
    actor = (
        UnitOperatorFactory(unit=roster["hebei"].unit)
        if role == Role.UNIT_OPERATOR
        else UserFactory(role=role)
    )
    with pytest.raises(services.LedgerError):
        services.other_province_export(actor=actor, as_of=AS_OF, fmt="xlsx", now=NOW)
    assert not OtherProvinceExport.objects.exists()
    assert not (data_dir / "exports").exists() or not any((data_dir / "exports").rglob("*.*"))


def test_every_download_of_an_export_is_audited(roster: dict[str, Any], data_dir: Path) -> None:
    """The file holds full ID and phone numbers: each download is its own audit row (who, which
    file), as the payment batches' files, rejects.csv and 附件1 are."""
    staff = UserFactory(role=Role.BUREAU_OPERATOR)
    export = services.other_province_export(actor=staff, as_of=AS_OF, fmt="csv", now=NOW)
    for _ in range(2):
        path = services.other_province_export_download(actor=staff, export=export, now=NOW, ip="10.0.0.7")
        assert path == services.export_path(export) and path.is_file()
    events = list(AuditEvent.objects.filter(action="ledger.other_province_export_downloaded").order_by("seq"))
    assert len(events) == 2
    assert {(e.actor, e.target_type, e.target_id, e.ip) for e in events} == {
        (staff.username, "other_province_export", str(export.pk), "10.0.0.7")
    }
    assert events[0].after == {"file_name": export.file_name, "rows": 3, "sha256": export.sha256}


@pytest.mark.parametrize("role", [Role.UNIT_OPERATOR, Role.AUDITOR])
def test_only_bureau_staff_download_an_export(role: str, roster: dict[str, Any]) -> None:
    export = services.other_province_export(actor=UserFactory(), as_of=AS_OF, fmt="csv", now=NOW)
    actor = (
        UnitOperatorFactory(unit=roster["hebei"].unit)
        if role == Role.UNIT_OPERATOR
        else UserFactory(role=role)
    )
    with pytest.raises(services.LedgerError):
        services.other_province_export_download(actor=actor, export=export, now=NOW)
    assert not AuditEvent.objects.filter(action="ledger.other_province_export_downloaded").exists()


def test_a_download_of_a_missing_file_is_refused_unaudited(roster: dict[str, Any]) -> None:
    staff = UserFactory(role=Role.BUREAU_OPERATOR)
    export = services.other_province_export(actor=staff, as_of=AS_OF, fmt="csv", now=NOW)
    services.export_path(export).unlink()
    with pytest.raises(services.LedgerError):
        services.other_province_export_download(actor=staff, export=export, now=NOW)
    assert not AuditEvent.objects.filter(action="ledger.other_province_export_downloaded").exists()


def test_an_export_whose_record_fails_leaves_no_file(
    roster: dict[str, Any], data_dir: Path, monkeypatch: Any
) -> None:
    def boom(**kwargs: Any) -> None:
        raise RuntimeError("audit down")

    monkeypatch.setattr(services, "audit_record", boom)
    with pytest.raises(RuntimeError):
        services.other_province_export(actor=UserFactory(), as_of=AS_OF, fmt="xlsx", now=NOW)
    assert not OtherProvinceExport.objects.exists()
    assert not any((data_dir / "exports" / "other_province").iterdir())


def import_app_auth(tmp_path: Path, rows: list[list[str]], name: str = "app_auth_12333_202611.csv") -> None:
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["身份证号", "姓名", "认证时间", "认证结果", "相似度"])
        writer.writerows(rows)
    batch = feed_services.import_submit(
        source=path, file_name=path.name, kind=None, user=None, now=NOW, enqueue=False
    )
    feed_services.import_execute(batch_id=batch.pk, now=NOW)


def test_remote_certification_status_comes_back_as_app_auth_evidence(
    roster: dict[str, Any], tmp_path: Path
) -> None:
    hebei, beijing, henan = roster["hebei"], roster["beijing"], roster["henan_other_unit"]
    import_app_auth(
        tmp_path,
        [
            [hebei.id_number, hebei.name, "2026-03-01", "成功", "0.97"],
            [hebei.id_number, hebei.name, "2026-09-10 10:00:00", "失败", "0.41"],
            [beijing.id_number, beijing.name, "2025-11-20", "成功", "0.95"],  # last certification year
            [henan.id_number, henan.name, "2026-12-05", "成功", "0.99"],  # after the as-of date
        ],
    )
    client = DeviceClient.objects.create(
        client_id="app", name="掌上12333", kind="app_auth", secret="s", created_at=NOW
    )
    PushedResult.objects.create(
        client=client, kind="app_auth", id_number=hebei.id_number, name=hebei.name,
        auth_time=datetime(2026, 10, 1, 2, 0, tzinfo=UTC), result="pass", nonce="n1", received_at=NOW,
    )  # fmt: skip
    run = Run.objects.create(as_of=AS_OF, status=RunStatus.SUCCEEDED, created_at=NOW, finished_at=NOW)
    Decision.objects.create(
        run=run, recipient=beijing, unit=beijing.unit, status="pending", reason="no_evidence"
    )

    listing = selectors.other_province_list(as_of=AS_OF)
    rows = {r.recipient.pk: r for r in listing.rows}
    assert rows[hebei.pk].remote == selectors.RemoteStatus(date(2026, 10, 1), "pass", date(2026, 10, 1))
    assert rows[hebei.pk].certified
    assert rows[beijing.pk].remote == selectors.RemoteStatus(date(2025, 11, 20), "pass", date(2025, 11, 20))
    assert not rows[beijing.pk].certified and rows[beijing.pk].decision == "pending"
    assert rows[henan.pk].remote == selectors.RemoteStatus() and not rows[henan.pk].certified
    assert (listing.total, listing.certified, listing.uncertified, listing.never_exported) == (3, 1, 2, 3)

    uncertified = selectors.other_province_list(as_of=AS_OF, status="uncertified")
    assert {r.recipient.pk for r in uncertified.rows} == {beijing.pk, henan.pk}
    # the newest result failed: the person is shown as failed until a new pass arrives
    before_push = selectors.other_province_list(as_of=date(2026, 9, 30), status="failed")
    assert [r.recipient.pk for r in before_push.rows] == [hebei.pk]
    assert before_push.rows[0].remote.last_pass == date(2026, 3, 1) and before_push.rows[0].certified


def test_filters_by_unit_province_and_export_state(roster: dict[str, Any]) -> None:
    listing = selectors.other_province_list(as_of=AS_OF, province="41")
    assert [r.recipient.name for r in listing.rows] == ["河南人"]
    assert selectors.other_province_list(as_of=AS_OF, unit_no="14010000208").total == 2
    assert dict(selectors.other_province_list(as_of=AS_OF).by_residence_province) == {
        "13": 1,
        "11": 1,
        "41": 1,
    }
    services.other_province_export(
        actor=UserFactory(), as_of=AS_OF, fmt="csv", now=NOW, unit_no="14010000208"
    )
    never = selectors.other_province_list(as_of=AS_OF, status="never_exported")
    assert [r.recipient.name for r in never.rows] == ["河南人"]
    assert selectors.other_province_list(as_of=AS_OF, q="河北").rows[0].exported_at == NOW


def test_a_pass_and_a_failure_on_the_same_day_count_as_a_pass(roster: dict[str, Any], tmp_path: Path) -> None:
    beijing = roster["beijing"]
    import_app_auth(
        tmp_path,
        [
            [beijing.id_number, beijing.name, "2026-06-01 09:00:00", "成功", "0.91"],
            [beijing.id_number, beijing.name, "2026-06-01 15:00:00", "失败", "0.30"],
        ],
    )
    status = selectors.remote_results([beijing.id_number], as_of=AS_OF)[beijing.id_number]
    assert status == selectors.RemoteStatus(date(2026, 6, 1), "pass", date(2026, 6, 1))
    assert selectors.remote_results([], as_of=AS_OF) == {}
