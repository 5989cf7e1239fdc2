"""Imports into the system of record: roster with field history, feeds into the evidence store.

Every test has its own data directory (uploads, evidence store, run copies) and runs on SQLite
and on PostgreSQL (`ZIGE_DATABASE_URL`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.http import Http404
from django.test import Client
from django.urls import reverse

from tests.factories import NOW, UnitOperatorFactory, UserFactory, make_id, write_csv
from zige.accounts.models import DeviceClient, Role
from zige.audit.models import AuditEvent
from zige.engine.store import StoreLayoutError
from zige.feeds import selectors, services, store
from zige.feeds.models import ImportBatch, ImportReject, ImportStatus, PushedResult
from zige.ids import store_key
from zige.roster.models import Recipient, RecipientChange, Unit

pytestmark = pytest.mark.django_db

ROSTER_HEADER = [
    "个人编号", "姓名", "身份证号", "单位编号", "单位名称", "待遇状态", "状态变更日期", "停发原因", "月养老金",
    "联系电话", "退休日期", "上次认证日期",
]  # fmt: skip
RAIL_HEADER = ["身份证号", "姓名", "乘车日期", "车次", "出发站", "到达站"]

ID_A = make_id(1, date(1950, 1, 1))
ID_B = make_id(2, date(1951, 2, 2))
ID_C = make_id(3, date(1952, 3, 3))
ID_D = make_id(4, date(1953, 4, 4))
ID_E = make_id(5, date(1954, 5, 5))
BAD_ID = ID_A[:17] + ("0" if ID_A[17] != "0" else "1")


def person(
    no: str,
    name: str,
    id_number: str,
    unit: str = "U001",
    *,
    status: str = "正常",
    phone: str = "13812345678",
    amount: str = "3000.00",
    certified: str = "2026-01-15",
) -> list[str]:
    return [no, name, id_number, unit, f"单位{unit}", status, "", "", amount, phone, "2010-01-01", certified]


FIRST_ROSTER = [
    person("P001", "张三", ID_A),
    person("P002", "李四", ID_B, "U002"),
    person("P003", "王五", ID_C),
    person("P003", "王五", ID_C),  # an exact repeat: duplicate row
    person("P004", "赵六", BAD_ID),  # bad check digit: rejected
    person("P005", "钱七", ID_D),  # P005 twice with different data: both rejected
    person("P005", "钱七", ID_D, phone="13900000000"),
]


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    return tmp_path / "data"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    directory = tmp_path / "files"
    directory.mkdir()
    return directory


def do_import(path: Path, kind: str | None = None, *, user: Any = None, now: datetime = NOW) -> ImportBatch:
    batch = services.import_submit(
        source=path, file_name=path.name, kind=kind, user=user, now=now, enqueue=False
    )
    if batch.status == ImportStatus.QUEUED:
        batch = services.import_execute(batch_id=batch.pk, now=now)
    return batch


def snapshot() -> dict[str, Any]:
    """Everything an import may change, to compare before and after a failed one."""
    return {
        "recipients": list(Recipient.objects.order_by("pk").values()),
        "units": list(Unit.objects.order_by("pk").values()),
        "changes": list(RecipientChange.objects.order_by("pk").values()),
        "succeeded": list(ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED).order_by("pk").values()),
        "rejects": list(ImportReject.objects.order_by("pk").values()),
    }


def evidence_listing(root: Path) -> list[str]:
    directory = root / "evidence"
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def actions(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=name).order_by("seq"))


# ---------------------------------------------------------------------------------------------
# Roster


def test_roster_import_adds_recipients_counts_reconcile_and_rejects_are_kept(files: Path) -> None:
    user = UserFactory(role=Role.BUREAU_OPERATOR)
    batch = do_import(write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER), "roster", user=user)

    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert (batch.rows_read, batch.rows_used, batch.rows_rejected, batch.duplicate_rows) == (7, 3, 3, 1)
    assert batch.rows_read == batch.rows_used + batch.rows_rejected + batch.duplicate_rows
    assert (batch.created, batch.updated, batch.progress) == (3, 0, 100)
    assert batch.format == "csv" and batch.header_row == 1
    assert len(batch.sha256) == 64 and store.upload_path(batch.stored_path).is_file()

    people = {r.person_no: r for r in Recipient.objects.select_related("unit")}
    assert sorted(people) == ["P001", "P002", "P003"]
    assert people["P002"].unit.unit_no == "U002" and people["P002"].unit.name == "单位U002"
    assert people["P001"].monthly_amount == Decimal("3000")
    assert people["P001"].mobile == "13812345678"
    assert people["P001"].last_certified_on == date(2026, 1, 15)
    assert people["P001"].first_import_id == people["P001"].last_import_id == batch.pk

    rejects = [(r.row, r.field, r.reason) for r in selectors.rejects_for(batch=batch)]
    assert rejects == [
        (6, "身份证号", "bad_id_checksum"),
        (7, "个人编号", "duplicate_person_no"),
        (8, "个人编号", "duplicate_person_no"),
    ]
    assert RecipientChange.objects.count() == 0  # new people are not changes
    submitted, succeeded = actions("import.submitted"), actions("import.succeeded")
    assert [e.target_id for e in submitted] == [str(batch.pk)] and submitted[0].actor == user.username
    assert succeeded[0].after["rows_used"] == 3 and succeeded[0].after["rows_rejected"] == 3


def test_the_same_bytes_twice_is_a_duplicate_that_changes_nothing(
    files: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    path = write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER)
    first = do_import(path, "roster")
    before = snapshot()
    copy = files / "roster_again.csv"
    copy.write_bytes(path.read_bytes())  # same bytes, another name

    with django_capture_on_commit_callbacks() as callbacks:
        second = services.import_submit(source=copy, file_name=copy.name, kind="roster", user=None, now=NOW)

    assert callbacks == [], "a duplicate queues no work"
    assert second.status == ImportStatus.DUPLICATE
    assert second.duplicate_of_id == first.pk
    assert second.message == f"与第 {first.pk} 号导入（roster.csv）内容相同，未重复导入。"
    assert second.detail == f"Same content as import #{first.pk} (roster.csv); nothing imported."
    assert second.stored_path == first.stored_path
    assert snapshot() == before
    assert [e.after["duplicate_of"] for e in actions("import.duplicate")] == [first.pk]


def test_a_second_roster_records_the_history_of_each_changed_field(files: Path) -> None:
    first = do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    second_rows = [
        person("P001", "张三", ID_A, phone="13999999999"),  # phone (and so mobile) changed
        person("P002", "李四", ID_B, "U003", status="暂停"),  # unit and status changed
        person("P006", "孙八", ID_E),  # new; P003 is absent and stays
    ]
    second_rows[1][6], second_rows[1][7] = "2026-06-01", "服刑"
    later = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    second = do_import(write_csv(files / "roster_2.csv", ROSTER_HEADER, second_rows), "roster", now=later)

    assert second.status == ImportStatus.SUCCEEDED, second.message
    assert (second.rows_used, second.created, second.updated) == (3, 1, 2)
    changes = {
        (c.recipient.person_no, c.field): (c.old_value, c.new_value)
        for c in RecipientChange.objects.select_related("recipient")
    }
    assert changes == {
        ("P001", "phone"): ("13812345678", "13999999999"),
        ("P001", "mobile"): ("13812345678", "13999999999"),
        ("P002", "unit_id"): ("U002", "U003"),
        ("P002", "unit_name"): ("单位U002", "单位U003"),
        ("P002", "benefit_status"): ("normal", "suspended"),
        ("P002", "status_since"): ("", "2026-06-01"),
        ("P002", "status_reason"): ("", "服刑"),
    }
    assert {c.batch_id for c in RecipientChange.objects.all()} == {second.pk}
    assert {c.changed_at for c in RecipientChange.objects.all()} == {later}

    people = {r.person_no: r for r in Recipient.objects.select_related("unit")}
    assert sorted(people) == ["P001", "P002", "P003", "P006"], "absent people are not deleted"
    assert people["P002"].benefit_status == "suspended" and people["P002"].unit.unit_no == "U003"
    assert people["P002"].status_since == date(2026, 6, 1)
    assert people["P001"].phone == "13999999999"
    assert people["P003"].last_import_id == first.pk, "absent from the second file"
    assert people["P001"].last_import_id == second.pk and people["P001"].first_import_id == first.pk


def test_a_roster_without_some_columns_leaves_those_fields_as_they_are(files: Path) -> None:
    """A file of only some columns (a 调待 list: the required ones and 月养老金) changes what it
    has and nothing else: no 待遇状态 column must not put a suspended or terminated person back
    to 正常, no 上次认证日期 must not erase a certification (the next run would ask for it again)."""
    rows = [
        person("P001", "张三", ID_A),
        person("P002", "李四", ID_B, status="暂停"),
        person("P003", "王五", ID_C, status="终止"),
    ]
    rows[1][6], rows[1][7] = "2026-06-01", "服刑"
    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, rows), "roster")
    before = {r.person_no: r for r in Recipient.objects.all()}

    header = ["个人编号", "姓名", "身份证号", "单位编号", "月养老金"]
    raise_rows = [["P001", "张三", ID_A, "U001", "3100"], ["P002", "李四", ID_B, "U001", "3100"],
                  ["P003", "王五", ID_C, "U001", "3000"], ["P009", "新人", ID_E, "U001", "2000"]]  # fmt: skip
    later = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    batch = do_import(write_csv(files / "roster_raise.csv", header, raise_rows), "roster", now=later)

    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert (batch.rows_used, batch.created, batch.updated) == (4, 1, 2)
    changes = {
        (c.recipient.person_no, c.field): (c.old_value, c.new_value) for c in RecipientChange.objects.all()
    }
    assert changes == {
        ("P001", "monthly_amount"): ("3000", "3100"),
        ("P002", "monthly_amount"): ("3000", "3100"),
    }
    after = {r.person_no: r for r in Recipient.objects.all()}
    for no in ("P001", "P002", "P003"):
        for field in ("benefit_status", "status_since", "status_reason", "phone", "mobile", "unit_name",
                      "retirement_date", "last_certified_on"):  # fmt: skip
            assert getattr(after[no], field) == getattr(before[no], field), (no, field)
    assert after["P002"].benefit_status == "suspended" and after["P003"].benefit_status == "terminated"
    assert after["P001"].last_certified_on == date(2026, 1, 15)
    assert after["P009"].benefit_status == "normal" and after["P009"].last_certified_on is None


def test_an_unchanged_roster_under_other_bytes_changes_no_field(files: Path) -> None:
    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    rows = [r[:] for r in FIRST_ROSTER]
    rows[0][8] = "3,000.00元"  # the same amount written differently
    batch = do_import(write_csv(files / "roster_2.csv", ROSTER_HEADER, rows), "roster")
    assert batch.status == ImportStatus.SUCCEEDED
    assert (batch.created, batch.updated) == (0, 0)
    assert RecipientChange.objects.count() == 0


def test_a_name_spaced_differently_is_no_change_and_keeps_the_stored_spelling(files: Path) -> None:
    """姓名 written with spaces (ASCII or full-width U+3000) the stored one has not, or the other
    way round, is the same name: no RecipientChange, and the roll keeps its spelling — also when
    another field of the person changes and the row is rewritten (docs/rules.md §8.1)."""
    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    rows = [
        person("P001", "张 三", ID_A),  # only spaces
        person("P002", "李\u3000四", ID_B, "U002", phone="13911112222"),  # full-width space, new phone
        person("P003", "王 六", ID_C),  # another name
    ]
    batch = do_import(write_csv(files / "roster_2.csv", ROSTER_HEADER, rows), "roster")
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert batch.updated == 2
    changes = {
        (c.recipient.person_no, c.field): (c.old_value, c.new_value) for c in RecipientChange.objects.all()
    }
    assert changes == {
        ("P002", "phone"): ("13812345678", "13911112222"),
        ("P002", "mobile"): ("13812345678", "13911112222"),
        ("P003", "name"): ("王五", "王 六"),
    }
    names = dict(Recipient.objects.values_list("person_no", "name"))
    assert (names["P001"], names["P002"], names["P003"]) == ("张三", "李四", "王 六")
    assert Recipient.objects.get(person_no="P002").phone == "13911112222"

    batch = do_import(
        write_csv(files / "roster_3.csv", ROSTER_HEADER, [person("P003", " 王\u3000六", ID_C)]), "roster"
    )
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert batch.updated == 0 and RecipientChange.objects.count() == 3
    assert Recipient.objects.get(person_no="P003").name == "王 六"


def test_a_row_colliding_with_another_recipient_on_the_roll_is_rejected(files: Path) -> None:
    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    rows = [person("P009", "张三", ID_A), person("P002", "李四", ID_B, "U002")]  # ID_A belongs to P001
    batch = do_import(write_csv(files / "roster_2.csv", ROSTER_HEADER, rows), "roster")
    assert batch.status == ImportStatus.SUCCEEDED
    assert (batch.rows_used, batch.rows_rejected) == (1, 1)
    assert [(r.row, r.field, r.value, r.reason) for r in selectors.rejects_for(batch=batch)] == [
        (2, "身份证号", ID_A, "duplicate_id_number")
    ]
    assert not Recipient.objects.filter(person_no="P009").exists()


def test_a_crash_while_writing_the_history_leaves_everything_as_before(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    before = snapshot()

    def boom(rows: Any) -> int:
        raise OSError("disk full")

    monkeypatch.setattr("zige.roster.services._write_changes", boom)
    rows = [person("P001", "张三", ID_A, phone="13999999999"), person("P007", "周九", ID_E)]
    batch = do_import(write_csv(files / "roster_2.csv", ROSTER_HEADER, rows), "roster")

    assert batch.status == ImportStatus.FAILED
    assert (
        "OSError" in batch.message and "Traceback" not in batch.message and "disk full" not in batch.message
    )
    assert snapshot() == before, "recipients, units, history, batches and rejects as before"
    assert actions("import.failed")[0].target_id == str(batch.pk)

    monkeypatch.undo()  # the same file imports once the problem is gone
    again = do_import(files / "roster_2.csv", "roster")
    assert again.status == ImportStatus.SUCCEEDED and again.created == 1 and again.updated == 1


def test_an_unreadable_file_fails_with_a_message_naming_it(files: Path) -> None:
    path = files / "roster.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    batch = do_import(path, "roster")
    assert batch.status == ImportStatus.FAILED
    assert batch.message.startswith("文件“roster.csv”") and "个人编号" in batch.message
    assert batch.detail.startswith("roster.csv: no header row")


# ---------------------------------------------------------------------------------------------
# Feeds and the evidence store


def rail_rows() -> list[list[str]]:
    return [
        [ID_A, "张三", "2026-03-05", "G123", "太原南", "北京西"],
        [ID_A, "张 三", "2026/3/5", "G123", "太原南", "北京西"],  # the same trip written differently
        [ID_B, "李四", "2026-04-01", "K601", "大同", "太原"],
        [BAD_ID, "张三", "2026-05-01", "D55", "太原", "运城"],  # bad check digit: rejected
        [ID_E, "孙八", "2026-06-01", "D66", "太原", "临汾"],  # on no roster: used, unmatched
    ]


def test_a_feed_import_writes_one_parquet_file_per_month_and_counts_reconcile(
    files: Path, data_dirs: Path
) -> None:
    do_import(write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    batch = do_import(write_csv(files / "rail_2026q1.csv", RAIL_HEADER, rail_rows()))

    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert batch.kind == "rail"
    assert (batch.rows_read, batch.rows_used, batch.rows_rejected, batch.duplicate_rows) == (5, 3, 1, 1)
    assert batch.unmatched == 1
    name = f"b{batch.pk}-{batch.sha256[:8]}"
    assert batch.evidence_path == f"_manifest/{name}.json"
    month_files = [f"kind=rail/month={m}/{name}.parquet" for m in ("2026-03", "2026-04", "2026-06")]
    assert list(store.batch_manifests([batch])[0].files) == month_files  # one file per month touched
    keys = []
    for relative in month_files:
        table = pq.read_table(data_dirs / "evidence" / relative)
        assert table.column_names == list(store.EVIDENCE_COLUMNS)
        keys += table.column("id_key").to_pylist()
    assert sorted(keys) == sorted(store_key(i) for i in (ID_A, ID_B, ID_E))
    assert evidence_listing(data_dirs) == [
        "_locks", "_locks/import-rail.lock", "_manifest", f"_manifest/{name}.json", "kind=rail",
        "kind=rail/month=2026-03", month_files[0], "kind=rail/month=2026-04", month_files[1],
        "kind=rail/month=2026-06", month_files[2],
    ]  # fmt: skip
    assert [(r.row, r.reason) for r in selectors.rejects_for(batch=batch)] == [(5, "bad_id_checksum")]


# The demo's rail_2026q3.csv heads its date 出行日期, an alias of 乘车日期 (spec §3); 公民身份号码 of 身份证号.
ALIAS_RAIL_HEADER = ["公民身份号码", "姓名*", "出行日期", "车次", "出发站", "到达站"]


@pytest.mark.parametrize("path", ["native scan", "duckdb read_csv", "readers"])
def test_a_feed_reject_names_the_column_as_the_file_heads_it(
    files: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """An officer looks for the column the reject names in the file: 出行日期, not the system's
    乘车日期 (shown after it). Every way an import reads a file says the same."""
    rows = [
        [ID_A, "张三", "2026-13-45", "G1", "太原南", "北京西"],  # bad_date
        [BAD_ID, "张三", "2026-03-05", "G1", "太原南", "北京西"],  # bad_id_checksum
        [ID_B, "", "2026-03-05", "G1", "太原南", "北京西"],  # no name: 姓名* is 姓名 with a marker
        [ID_B, "李四", "2026-03-05", "G1", "太原南", "北京西"],
    ]
    path_of = write_csv(files / "rail_2026q3.csv", ALIAS_RAIL_HEADER, rows)
    if path == "readers":  # GBK: only the readers decode it
        path_of.write_bytes(path_of.read_text(encoding="utf-8").encode("gb18030"))
    elif path == "duckdb read_csv":
        monkeypatch.setattr("zige.engine.native.available", lambda: False)

    batch = do_import(path_of)

    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert [(r.row, r.field, r.reason) for r in selectors.rejects_for(batch=batch)] == [
        (2, "出行日期（乘车日期）", "bad_date"),
        (3, "公民身份号码（身份证号）", "bad_id_checksum"),
        (4, "姓名", "missing_value"),
    ]
    officer = Client()
    officer.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    page = officer.get(reverse("feeds:detail", args=[batch.pk])).content.decode()
    assert "出行日期（乘车日期）" in page and "公民身份号码（身份证号）" in page
    download = officer.get(reverse("feeds:rejects_csv", args=[batch.pk]))
    body = b"".join(download.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert "rail_2026q3.csv,2,出行日期（乘车日期）,2026-13-45,bad_date" in body


def test_a_roster_reject_names_the_column_as_the_file_heads_it(files: Path) -> None:
    header = ["个人编号", "姓名", "公民身份号码", "单位编号", "月养老金额"]
    rows = [
        ["P001", "张三", ID_A, "U001", "3000.00"],
        ["P002", "李四", BAD_ID, "U001", "3000.00"],  # bad_id_checksum
        ["P003", "王五", ID_C, "U001", "三千元"],  # bad_amount
        ["P004", "赵六", ID_D, "U001", "3000.00"],  # one ID, two people: duplicate_id_number
        ["P005", "钱七", ID_D, "U001", "3000.00"],
    ]

    batch = do_import(write_csv(files / "roster.csv", header, rows), "roster")

    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert [(r.row, r.field, r.reason) for r in selectors.rejects_for(batch=batch)] == [
        (3, "公民身份号码（身份证号）", "bad_id_checksum"),
        (4, "月养老金额（月养老金）", "bad_amount"),
        (5, "公民身份号码（身份证号）", "duplicate_id_number"),
        (6, "公民身份号码（身份证号）", "duplicate_id_number"),
    ]


def test_zige_store_upgrade_rewrites_a_store_of_the_older_key_layout(files: Path, data_dirs: Path) -> None:
    from click.testing import CliRunner

    from zige.cli_admin import store_group

    do_import(write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    batch = do_import(write_csv(files / "rail_2026q1.csv", RAIL_HEADER, rail_rows()))
    before = selectors.evidence_for_person(id_number=ID_B)
    assert before
    # As the region-first layout wrote it: keys = the ID's 17 digits, no layout in the manifest.
    root = data_dirs / "evidence"
    manifest_path = root / batch.evidence_path
    manifest = json.loads(manifest_path.read_text())
    for relative in manifest["files"]:
        table = pq.ParquetFile(root / relative).read()
        keys = table.column("id_key").to_numpy()
        old_keys = pa.array((keys % 1_000_000) * 100_000_000_000 + keys // 1_000_000, pa.int64())
        pq.write_table(table.set_column(0, "id_key", old_keys).sort_by("id_key"), root / relative)
    del manifest["key_layout"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(StoreLayoutError, match="zige store upgrade"):
        selectors.evidence_for_person(id_number=ID_B)

    result = CliRunner().invoke(store_group, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert "1 batch(es) rewritten" in result.output
    assert selectors.evidence_for_person(id_number=ID_B) == before
    assert actions("store.upgraded")[0].after == {"batches": [f"b{batch.pk}-{batch.sha256[:8]}"]}
    assert "0 batch(es)" in CliRunner().invoke(store_group, ["upgrade"]).output


def test_feed_rows_already_in_the_store_count_as_duplicates(files: Path) -> None:
    first = do_import(write_csv(files / "rail_2026q1.csv", RAIL_HEADER, rail_rows()[:3]))
    overlap = [
        [ID_B, "李 四", "20260401", "K601", "大同", "太原"],  # already imported (written differently)
        [ID_C, "王五", "2026-07-01", "G9", "太原南", "西安北"],  # new
    ]
    second = do_import(write_csv(files / "rail_2026q2.csv", RAIL_HEADER, overlap))
    assert first.status == second.status == ImportStatus.SUCCEEDED
    assert (second.rows_used, second.duplicate_rows) == (1, 1)

    records = selectors.evidence_for_person(id_number=ID_B)
    assert [(r["kind"], r["date"], r["file_name"], r["row"]) for r in records] == [
        ("rail", date(2026, 4, 1), "rail_2026q1.csv", 4)
    ]


def test_evidence_for_a_person_spans_imports_and_pushed_results_newest_first(files: Path) -> None:
    do_import(write_csv(files / "rail_2026.csv", RAIL_HEADER, rail_rows()))
    death = files / "death_gongan_2026.csv"
    write_csv(death, ["身份证号", "姓名", "死亡日期", "信息来源"], [[ID_A, "张三", "2026-08-01", "公安"]])
    do_import(death)
    unit = files / "u.csv"
    write_csv(
        unit,
        ["身份证号", "姓名", "确认日期", "确认方式", "确认结果"],
        [[ID_A, "张三", "2026-09-01", "", "丧失资格"]],
    )
    do_import(unit, "unit_confirm")
    client = DeviceClient.objects.create(
        client_id="app", name="民生山西APP", kind="app_auth", secret="s", created_at=NOW
    )
    PushedResult.objects.create(
        client=client, kind="app_auth", id_number=ID_A, name="张三",
        auth_time=datetime(2026, 10, 1, 20, 0, tzinfo=UTC), result="pass", similarity="0.98",
        nonce="n1", received_at=NOW,
    )  # fmt: skip

    records = selectors.evidence_for_person(id_number=ID_A.lower())
    assert [(r["kind"], r["record_kind"], r["date"], r["sub"]) for r in records] == [
        ("app_auth", "app_auth", date(2026, 10, 2), "pass"),  # 20:00 UTC is the next day in Beijing
        ("unit_confirm", "unit_confirmed_lost", date(2026, 9, 1), "lost"),
        ("death", "death", date(2026, 8, 1), ""),
        ("rail", "rail", date(2026, 3, 5), ""),
    ]
    assert records[3]["detail"] == "G123|太原南|北京西" and records[3]["file_name"] == "rail_2026.csv"
    assert records[0]["file_name"] == "民生山西APP" and records[0]["batch_id"] is None
    assert selectors.evidence_for_person(id_number=ID_D) == []

    # A limit keeps the newest of both sources, and besides them the ranges asked to be kept.
    def kinds(limit: int, keep: list[tuple[str, date, date]]) -> list[tuple[str, date]]:
        found = selectors.evidence_for_person(id_number=ID_A, limit=limit, keep=keep)
        return [(r["record_kind"], r["date"]) for r in found]

    assert kinds(2, []) == [("app_auth", date(2026, 10, 2)), ("unit_confirmed_lost", date(2026, 9, 1))]
    assert kinds(1, [("rail", date(2026, 3, 5), date(2026, 3, 5))]) == [
        ("app_auth", date(2026, 10, 2)), ("rail", date(2026, 3, 5)),
    ]  # fmt: skip
    assert kinds(0, [("death", date(1900, 1, 1), date(2026, 9, 30)), ("app_auth", date(2026, 10, 2), date(2026, 10, 2))]) == [
        ("app_auth", date(2026, 10, 2)), ("death", date(2026, 8, 1)),
    ]  # fmt: skip
    assert selectors.evidence_count_for_person(id_number=ID_A) == 4
    assert selectors.evidence_count_for_person(id_number=ID_A, without_bureau_findings=True) == 4  # a unit's
    finding = files / "finding.csv"
    write_csv(
        finding,
        ["身份证号", "姓名", "确认日期", "确认方式", "确认结果"],
        [[ID_A, "张三", "2026-09-02", "社保局疑点核查确认死亡，核查任务#12", "丧失资格"]],
    )
    do_import(finding, "unit_confirm")
    assert selectors.evidence_count_for_person(id_number=ID_A) == 5
    assert selectors.evidence_count_for_person(id_number=ID_A, without_bureau_findings=True) == 4


def test_a_crash_at_the_parquet_rename_leaves_the_store_as_before(
    files: Path, data_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    do_import(write_csv(files / "rail_2026q1.csv", RAIL_HEADER, rail_rows()[:1]))
    before, listing = snapshot(), evidence_listing(data_dirs)
    evidence_before = selectors.evidence_for_person(id_number=ID_B)

    def boom(source: Path, target: Path) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr("zige.feeds.store._rename", boom)
    batch = do_import(write_csv(files / "rail_2026q2.csv", RAIL_HEADER, rail_rows()))
    assert batch.status == ImportStatus.FAILED and batch.evidence_path == ""
    assert snapshot() == before
    assert evidence_listing(data_dirs) == listing, "no temporary file left behind"
    assert selectors.evidence_for_person(id_number=ID_B) == evidence_before == []


def test_a_crash_after_the_parquet_file_is_written_leaves_the_store_as_before(
    files: Path, data_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    do_import(write_csv(files / "rail_2026q1.csv", RAIL_HEADER, rail_rows()[:1]))
    before, listing = snapshot(), evidence_listing(data_dirs)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr("zige.feeds.services._finish", boom)
    batch = do_import(write_csv(files / "rail_2026q2.csv", RAIL_HEADER, rail_rows()))
    assert batch.status == ImportStatus.FAILED
    assert snapshot() == before
    assert evidence_listing(data_dirs) == listing
    assert selectors.evidence_for_person(id_number=ID_B) == []


def test_an_evidence_file_no_succeeded_batch_refers_to_is_ignored(files: Path, data_dirs: Path) -> None:
    batch = do_import(write_csv(files / "rail_2026q1.csv", RAIL_HEADER, rail_rows()))
    source = data_dirs / "evidence" / store.batch_manifests([batch])[0].files[1]  # ID_B's month
    stray = source.with_name("b999-deadbeef.parquet")  # left by a crash
    stray.write_bytes(source.read_bytes())
    assert len(selectors.evidence_for_person(id_number=ID_B)) == 1
    again = do_import(write_csv(files / "rail_2026q2.csv", RAIL_HEADER, rail_rows()[2:3]))
    assert again.duplicate_rows == 1  # deduplicated against the batch, once


def test_the_kind_comes_from_the_name_or_is_given_and_an_unknown_kind_is_refused(files: Path) -> None:
    path = write_csv(files / "trips.csv", RAIL_HEADER, rail_rows())
    with pytest.raises(ValueError, match=r"无法从文件名.*Cannot tell the kind"):
        services.import_submit(source=path, file_name=path.name, kind=None, user=None, now=NOW)
    with pytest.raises(ValueError, match=r"未知的数据类型.*Unknown kind"):
        services.import_submit(source=path, file_name=path.name, kind="bus", user=None, now=NOW)
    assert ImportBatch.objects.count() == 0
    batch = do_import(path, "rail")
    assert batch.status == ImportStatus.SUCCEEDED and batch.kind == "rail"
    assert (
        do_import(write_csv(files / "Flight-2026.csv", ["身份证号", "姓名", "航班日期"], [])).kind == "flight"
    )


def test_a_unit_operator_may_not_import() -> None:
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.import_submit(
            source=Path(__file__), file_name="rail.csv", kind=None, user=UnitOperatorFactory(), now=NOW
        )


def test_submit_queues_the_task_on_commit_and_the_task_imports(
    files: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    path = write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        batch = services.import_submit(source=path, file_name=path.name, kind="roster", user=None, now=NOW)
        assert batch.status == ImportStatus.QUEUED
    assert len(callbacks) == 1
    batch.refresh_from_db()
    assert batch.status == ImportStatus.SUCCEEDED and batch.started_at is not None
    assert Recipient.objects.count() == 3


def test_progress_is_reported_and_saved(files: Path) -> None:
    path = write_csv(files / "rail_2026.csv", RAIL_HEADER, rail_rows())
    batch = services.import_submit(
        source=path, file_name=path.name, kind=None, user=None, now=NOW, enqueue=False
    )
    seen: list[tuple[str, int]] = []
    services.import_execute(
        batch_id=batch.pk, now=NOW, progress=lambda label, done, total: seen.append((label, done))
    )
    percents = [p for _, p in seen]
    assert percents == sorted(percents) and percents[-1] == 100 and len(seen) >= 5
    batch.refresh_from_db()
    assert batch.progress == 100 and batch.finished_at is not None and batch.finished_at >= NOW


def test_executing_a_finished_batch_again_does_nothing(files: Path) -> None:
    batch = do_import(write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    again = services.import_execute(batch_id=batch.pk, now=NOW)
    assert again.status == ImportStatus.SUCCEEDED and Recipient.objects.count() == 3
    assert len(actions("import.succeeded")) == 1


@pytest.mark.parametrize("kind", ["roster", "rail"])
def test_a_second_execution_of_an_import_already_running_does_nothing(
    files: Path, data_dirs: Path, kind: str
) -> None:
    """A retried task or a second worker executes an import that a worker has already claimed:
    it finds the batch `running`, not `queued`, and returns it untouched; one set of results."""
    if kind == "rail":
        do_import(write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
        path = write_csv(files / "rail_2026.csv", RAIL_HEADER, rail_rows())
    else:
        path = write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER)
    user = UserFactory(role=Role.BUREAU_OPERATOR)
    batch = services.import_submit(
        source=path, file_name=path.name, kind=kind, user=user, now=NOW, enqueue=False
    )
    second: list[ImportBatch] = []

    def meanwhile(label: str, done: int, total: int) -> None:
        if not second:  # this worker has claimed the batch and is reading the file
            second.append(services.import_execute(batch_id=batch.pk, now=NOW))

    batch = services.import_execute(batch_id=batch.pk, now=NOW, progress=meanwhile)
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert [b.status for b in second] == [ImportStatus.RUNNING]
    if kind == "rail":
        assert (batch.rows_used, batch.rows_rejected, batch.duplicate_rows) == (3, 1, 1)
        name = f"b{batch.pk}-{batch.sha256[:8]}"
        assert [p for p in evidence_listing(data_dirs) if p.endswith(".parquet")] == [
            f"kind=rail/month={m}/{name}.parquet" for m in ("2026-03", "2026-04", "2026-06")
        ]  # one set of files: no second batch's leftovers
    else:
        assert Recipient.objects.count() == batch.created == 3
    assert ImportReject.objects.filter(batch=batch).count() == batch.rows_rejected
    events = AuditEvent.objects.filter(target_type="import", target_id=str(batch.pk)).order_by("seq")
    assert [e.action for e in events] == ["import.submitted", "import.started", "import.succeeded"]
    started = events[1]
    assert started.actor == user.username and started.at == NOW
    assert started.before == {"status": "queued"} and started.after["status"] == "running"


def test_an_import_status_changes_only_along_its_transitions(files: Path) -> None:
    path = write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER)
    batch = services.import_submit(
        source=path, file_name=path.name, kind="roster", user=None, now=NOW, enqueue=False
    )
    with pytest.raises(ValueError, match="does not change from queued to succeeded"):
        services._move(batch.pk, ImportStatus.QUEUED, ImportStatus.SUCCEEDED)
    assert services._move(batch.pk, ImportStatus.QUEUED, ImportStatus.RUNNING)
    assert not services._move(batch.pk, ImportStatus.QUEUED, ImportStatus.RUNNING)  # taken: no second claim
    assert services.import_execute(batch_id=batch.pk, now=NOW).status == ImportStatus.RUNNING
    assert not actions("import.started") and Recipient.objects.count() == 0


def test_the_database_refuses_an_unknown_import_status(files: Path) -> None:
    """A raw UPDATE around the services: the check constraint refuses it (SQLite and PostgreSQL)."""
    from django.db import IntegrityError, transaction

    path = write_csv(files / "roster.csv", ROSTER_HEADER, FIRST_ROSTER)
    batch = services.import_submit(
        source=path, file_name=path.name, kind="roster", user=None, now=NOW, enqueue=False
    )
    table = connection.ops.quote_name(ImportBatch._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", ["cancelled", batch.pk])
    with connection.cursor() as cursor:  # a known status passes the same constraint
        cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", ["failed", batch.pk])
    assert ImportBatch.objects.get(pk=batch.pk).status == ImportStatus.FAILED


# ---------------------------------------------------------------------------------------------
# Who sees imports


@pytest.mark.parametrize("role", [Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR])
def test_bureau_roles_and_auditors_see_every_import(files: Path, role: str) -> None:
    batch = do_import(write_csv(files / "rail_2026.csv", RAIL_HEADER, rail_rows()))
    user = UserFactory(role=role)
    assert list(selectors.imports_list(user=user)) == [batch]
    assert selectors.import_get(user=user, batch_id=batch.pk) == batch


def test_unit_operators_and_anonymous_users_see_no_import(files: Path) -> None:
    from django.contrib.auth.models import AnonymousUser

    batch = do_import(write_csv(files / "rail_2026.csv", RAIL_HEADER, rail_rows()))
    for user in (UnitOperatorFactory(), AnonymousUser()):
        with pytest.raises(Http404):
            selectors.imports_list(user=user)
        with pytest.raises(Http404):
            selectors.import_get(user=user, batch_id=batch.pk)
    with pytest.raises(Http404):
        selectors.import_get(user=UserFactory(), batch_id=batch.pk + 1000)


# ---------------------------------------------------------------------------------------------
# Reading the store fast, and bulk writes


def test_evidence_files_have_small_row_groups_and_a_lookup_finds_ids_in_any_of_them(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person page looks one ID up in every evidence file: the files come in row groups of
    `EVIDENCE_ROW_GROUP` rows (made smaller here), each lookup finds its rows in whichever group."""
    monkeypatch.setattr(store, "EVIDENCE_ROW_GROUP", 2048)
    ids = [make_id(100 + n, date(1940 + n % 30, 1 + n % 12, 1 + n % 28)) for n in range(5000)]
    rows = [[i, "张三", "2026-03-05", "G1", "太原", "北京"] for i in ids]
    batch = do_import(write_csv(files / "rail_2026q2.csv", RAIL_HEADER, rows))
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    [path] = store.evidence_files("rail")  # one month
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups >= 3
    assert all(meta.row_group(g).num_rows <= 2048 for g in range(meta.num_row_groups))
    for wanted in (min(ids), sorted(ids)[2500], max(ids)):
        records = selectors.evidence_for_person(id_number=wanted)
        assert [(r["kind"], r["date"]) for r in records] == [("rail", date(2026, 3, 5))]


def test_evidence_lookups_share_one_duckdb_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening DuckDB costs more than a lookup: a process keeps one (a forked child its own)."""
    first, second = selectors.duckdb_cursor(), selectors.duckdb_cursor()
    try:
        first.execute("CREATE TABLE shared_probe AS SELECT 1 AS x")
        assert second.execute("SELECT x FROM shared_probe").fetchall() == [(1,)]
        monkeypatch.setattr(selectors.os, "getpid", lambda: -1)  # as in a child after fork
        with selectors.duckdb_cursor() as child, pytest.raises(duckdb.CatalogException):
            child.execute("SELECT x FROM shared_probe")
    finally:
        first.execute("DROP TABLE IF EXISTS shared_probe")
        first.close()
        second.close()
        monkeypatch.undo()
        selectors._duck = None


def test_a_large_bulk_write_refreshes_the_planner_statistics_on_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a bulk write of many rows the planner knows the table's size (ANALYZE, PostgreSQL)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite keeps no planner statistics")
    monkeypatch.setattr(store, "ANALYZE_AFTER_ROWS", 3)

    def planner_rows() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'roster_unit'")
            return float(cursor.fetchone()[0])

    store.bulk_insert("roster_unit", ["unit_no", "name", "phone"], [("S1", "", ""), ("S2", "", "")])
    before = planner_rows()  # two rows are below the threshold: no ANALYZE
    store.bulk_insert("roster_unit", ["unit_no", "name", "phone"], [(f"S{n}", "", "") for n in range(3, 8)])
    assert planner_rows() == Unit.objects.count() != before


def test_zige_status_reports_an_import_left_running(files: Path) -> None:
    """An import whose process was killed stays `running` until `zige worker` starts again;
    `zige status` names one running for over an hour (not one that started minutes ago)."""
    from datetime import timedelta

    from click.testing import CliRunner
    from django.utils import timezone

    from zige.notifications.cli import status

    now = timezone.now()
    old, recent = (
        services.import_submit(
            source=write_csv(files / name, RAIL_HEADER, rail_rows()),
            file_name=name,
            kind=None,
            user=None,
            now=NOW,
            enqueue=False,
        )
        for name in ("rail_old.csv", "rail_recent.csv")
    )
    ImportBatch.objects.filter(pk=old.pk).update(
        status=ImportStatus.RUNNING, started_at=now - timedelta(hours=2)
    )
    ImportBatch.objects.filter(pk=recent.pk).update(
        status=ImportStatus.RUNNING, started_at=now - timedelta(minutes=10)
    )
    result = CliRunner().invoke(status, ["--json"])
    data = json.loads(result.output)
    assert data["stale_imports"] == [old.pk]
    assert any(f"#{old.pk}" in p and "still running" in p for p in data["problems"])
    assert result.exit_code == 1


def test_the_person_page_loads_the_newest_records_and_the_deciding_one(files: Path) -> None:
    """A person with very many evidence records: the page loads the newest 200 (cut in the
    store's query), says how many more there are and links to all of them — and the record that
    decides the current decision shows however old it is."""
    from datetime import timedelta

    from tests.factories import RunFactory
    from zige.certification.models import Decision
    from zige.roster.views import PERSON_EVIDENCE_LIMIT

    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    first = date(2025, 1, 1)
    days = [first + timedelta(days=i) for i in range(PERSON_EVIDENCE_LIMIT + 10)]
    trips = [[ID_A, "张三", day.isoformat(), f"G{i + 1}", "太原南", "北京西"] for i, day in enumerate(days)]
    assert do_import(write_csv(files / "rail_many.csv", RAIL_HEADER, trips)).status == ImportStatus.SUCCEEDED
    person = Recipient.objects.get(person_no="P001")
    Decision.objects.create(run=RunFactory(), recipient=person, unit=person.unit, status="eligible", reason="rail",
                            evidence_kind="rail", evidence_date=first, certified_on=first)  # fmt: skip
    client = Client()
    client.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    url = reverse("roster:person", args=[person.person_no])

    html = client.get(url).content.decode()
    assert html.count("tl tl--evidence") == PERSON_EVIDENCE_LIMIT + 1  # the newest, and the deciding one
    assert f"比对信息 {len(days)} 条" in html and 'data-testid="evidence-more"' in html
    assert "另有 9 条较早的比对信息未显示" in html and "?evidence=all" in html
    assert "G1次" in html and "本次认证依据" in html  # the deciding trip, the oldest
    assert "G2次" not in html and f"G{len(days)}次" in html  # an old one left out, the newest shown

    html = client.get(url, {"evidence": "all"}).content.decode()
    assert html.count("tl tl--evidence") == len(days) and "G2次" in html
    assert 'data-testid="evidence-more"' not in html


def test_the_person_page_keeps_the_old_death_record_a_review_contradicts(files: Path) -> None:
    """A 疑点核查 (alive after a death) names the newest trip; the death record it contradicts is
    older than the newest 200 records and still shows (reports.selectors.deciding_ranges)."""
    from datetime import timedelta

    from tests.factories import RunFactory
    from zige.certification.models import Decision
    from zige.roster.views import PERSON_EVIDENCE_LIMIT

    do_import(write_csv(files / "roster_1.csv", ROSTER_HEADER, FIRST_ROSTER), "roster")
    death = write_csv(
        files / "death.csv",
        ["身份证号", "姓名", "死亡日期", "信息来源"],
        [[ID_A, "张三", "2025-01-01", "公安"]],
    )
    do_import(death)
    days = [date(2025, 1, 2) + timedelta(days=i) for i in range(PERSON_EVIDENCE_LIMIT + 5)]
    trips = [[ID_A, "张三", day.isoformat(), f"G{i + 1}", "太原南", "北京西"] for i, day in enumerate(days)]
    do_import(write_csv(files / "rail_many.csv", RAIL_HEADER, trips))
    person = Recipient.objects.get(person_no="P001")
    Decision.objects.create(run=RunFactory(), recipient=person, unit=person.unit, status="review",
                            reason="alive_after_death", evidence_kind="rail", evidence_date=days[-1])  # fmt: skip
    client = Client()
    client.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    html = client.get(reverse("roster:person", args=[person.person_no])).content.decode()
    assert html.count("tl tl--evidence") == PERSON_EVIDENCE_LIMIT + 1 and html.count("tl--loss") == 1
    assert "2025-01-01" in html and "另有 5 条较早的比对信息未显示" in html
