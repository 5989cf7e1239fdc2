"""A whole file refused, as the officer reads it: a Chinese message keeping the facts (file, column,
row, byte), the English text under 技术详情 for support staff (`zige.feeds.failures`).

Each import goes through the service and, where it can, the background task (`import_task`,
immediate in the tests), then the page is read with Django's test client.
"""

from __future__ import annotations

import errno
import importlib
import logging
import re
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, get_args

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import NOW, UserFactory, make_id, write_csv
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.engine.readers import ReadErrorCode
from zige.engine.store import StoreLayoutError
from zige.feeds import services
from zige.feeds.failures import FAILURE_ZH, ImportRefused, failure_message
from zige.feeds.models import ImportBatch, ImportStatus
from zige.notifications import jobs
from zige.notifications.config import NotifyConfig
from zige.notifications.models import InboxFile, InboxStatus

pytestmark = pytest.mark.django_db

ROSTER_HEADER = ["个人编号", "姓名", "身份证号", "单位编号", "单位名称", "待遇状态", "月养老金"]
RAIL_HEADER = ["身份证号", "姓名", "乘车日期", "车次", "出发站", "到达站"]
ID_A = make_id(1, date(1950, 1, 1))
ID_B = make_id(2, date(1951, 2, 2))
ROSTER_ROWS = [["P001", "张三", ID_A, "U001", "单位一", "正常", "3000"], ["P002", "李四", ID_B, "U001", "单位一", "正常", "3100"]]  # fmt: skip
RAIL_ROW = [ID_A, "张三", "2026-03-05", "G123", "太原南", "北京西"]


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    settings.DATA_DIR = data
    settings.EVIDENCE_DIR = data / "evidence"
    settings.UPLOAD_DIR = data / "uploads"
    settings.RUNS_DIR = data / "runs"
    data.mkdir(parents=True)
    return data


@pytest.fixture
def files(tmp_path: Path) -> Path:
    directory = tmp_path / "files"
    directory.mkdir()
    return directory


@pytest.fixture
def officer() -> Client:
    client = Client()
    client.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    return client


def through_the_task(
    path: Path, kind: str | None, capture: Callable[..., Any], *, name: str | None = None
) -> ImportBatch:
    """Submit as the upload page does; the queued task runs when the submission commits."""
    with capture(execute=True):
        batch = services.import_submit(
            source=path, file_name=name or path.name, kind=kind, user=None, now=NOW
        )
    batch.refresh_from_db()
    return batch


def page(client: Client, batch: ImportBatch) -> str:
    response = client.get(reverse("feeds:detail", args=[batch.pk]))
    assert response.status_code == 200
    return response.content.decode("utf-8")


def failed_audit(batch: ImportBatch) -> dict[str, Any]:
    (event,) = AuditEvent.objects.filter(action="import.failed", target_id=str(batch.pk))
    return dict(event.after)


# ---------------------------------------------------------------------------------------------
# The file: the engine's readers refuse it whole


def test_an_undecodable_feed_fails_in_chinese_and_keeps_the_english_detail(
    files: Path, officer: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    path = files / "rail_2026q3.csv"
    path.write_bytes(",".join(RAIL_HEADER).encode("gbk") + b"\n" + b"\x80\xff\xfe\x81" * 4)

    batch = through_the_task(path, None, django_capture_on_commit_callbacks)

    assert batch.status == ImportStatus.FAILED
    assert batch.failure_code == "undecodable"
    assert batch.message == (
        "文件“rail_2026q3.csv”的文字编码无法识别：既不是 UTF-8，也不是 GBK/GB18030（前 42 个字节之后有无法解码的内容）；"
        "请另存为 UTF-8 编码的 CSV 后重新上传。"
    )
    assert batch.detail == "rail_2026q3.csv: not text in UTF-8 or GBK/GB18030 (byte 42)"
    assert failed_audit(batch) == {
        "kind": "rail", "file_name": "rail_2026q3.csv", "code": "undecodable", "message": batch.message,
        "detail": batch.detail,
    }  # fmt: skip
    html = page(officer, batch)
    assert f"导入失败：{batch.message}" in html
    assert "技术详情" in html and batch.detail in html


def test_a_roster_without_a_required_column_names_the_column_and_the_header_row(
    files: Path, officer: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    header = ["个人编号", "姓名", "证件号", "单位编号", "单位名称"]  # 证件号 is no alias of 身份证号
    path = write_csv(files / "名册2026年11月.csv", header, [r[:5] for r in ROSTER_ROWS])

    batch = through_the_task(path, "roster", django_capture_on_commit_callbacks)

    assert batch.status == ImportStatus.FAILED and batch.failure_code == "missing_columns"
    assert batch.message == (
        "文件“名册2026年11月.csv”第 1 行的表头缺少必填列：身份证号（必填列为 个人编号、姓名、身份证号、单位编号）。"
        "可用的列名：身份证号／公民身份号码／证件号码／社会保障号码／身份证号码／id_number。"
    )
    assert batch.detail == (
        "名册2026年11月.csv: no header row with the required columns (个人编号、姓名、身份证号、单位编号) "
        "in the first 30 rows; accepted headers: 个人编号/person_no; 姓名/name; "
        "身份证号/公民身份号码/证件号码/社会保障号码/身份证号码/id_number; 单位编号/unit_no"
    )
    html = page(officer, batch)
    assert batch.message in html and batch.detail in html


def _parquet(path: Path, columns: dict[str, list[str]]) -> None:
    pq.write_table(pa.table(columns), path)


def _far_cell_workbook(path: Path, cell: str) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(RAIL_HEADER)
    sheet.append(["140105195001011239", "王秀兰", "2026-03-05", "G602", "太原南", "北京西"])
    sheet[cell] = "x"
    workbook.save(path)


# (file name, content writer, code, Chinese message, English reason after "<file>: ")
UNREADABLE: list[tuple[str, Callable[[Path], None], str, str, str]] = [
    (
        "rail_scan.csv",
        lambda p: p.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4),
        "binary",
        "文件“rail_scan.csv”含有二进制内容，不是文本格式的 CSV 文件；请在 Excel 中另存为“CSV UTF-8”，或直接上传 xlsx 文件。",
        "binary content, not a CSV text file",
    ),
    (
        "rail_bom.csv",
        lambda p: p.write_bytes(b"\xef\xbb\xbf" + ",".join(RAIL_HEADER).encode("gbk")),
        "bad_bom",
        "文件“rail_bom.csv”开头标明为 UTF-8 编码，但内容不是有效的 UTF-8（前 3 个字节之后有无法解码的内容）；请另存为 UTF-8 编码后重新上传。",
        "starts with a UTF-8 byte-order mark but is not valid UTF-8 (byte 3)",
    ),
    (
        "rail_q3.csv",
        lambda p: write_csv(
            p, ["2026年第三季度铁路出行数据"], [["身份证号", "姓名", "车次"], [*RAIL_ROW[:2], "G1"]]
        ),
        "missing_columns",
        "文件“rail_q3.csv”第 2 行的表头缺少必填列：乘车日期（必填列为 身份证号、姓名、乘车日期）。"
        "可用的列名：乘车日期／出行日期／travel_date。",
        "no header row with the required columns (身份证号、姓名、乘车日期) in the first 30 rows",
    ),
    (
        "rail_blank.csv",
        lambda p: p.write_bytes(b"a,b,c\n1,2,3\n"),
        "no_header",
        "文件“rail_blank.csv”的前 30 行中找不到表头：表头须包含必填列 身份证号、姓名、乘车日期。"
        "可用的列名：身份证号／公民身份号码／证件号码／社会保障号码／身份证号码／id_number；姓名／name；"
        "乘车日期／出行日期／travel_date。",
        "no header row with the required columns (身份证号、姓名、乘车日期) in the first 30 rows",
    ),
    (
        "rail_fake.xlsx",
        lambda p: p.write_bytes(",".join(RAIL_HEADER).encode()),
        "bad_excel",
        "文件“rail_fake.xlsx”不是可以读取的 Excel 工作簿（可能已损坏、加密，或并非 Excel 格式）。",
        "not a readable Excel workbook (",
    ),
    (
        # One stray cell far out (a key pressed at XFD200000): calamine made the sheet a dense
        # grid of 200,000 x 16,384 cells, asked for 100 GB and aborted the process (no
        # exception: the task worker, and with it the site's imports, died; the import stayed 导入中).
        "rail_far.xlsx",
        lambda p: _far_cell_workbook(p, "XFD200000"),
        "excel_too_large",
        "文件“rail_far.xlsx”第一张工作表的单元格一直延伸到 XFD200000（200000 行 × 16384 列），"
        "超出可读取的范围；请删除数据区域右侧和下方多余的单元格（或将数据复制到新工作簿）后重新上传。",
        "the first sheet's cells reach XFD200000 (200000 rows x 16384 columns), too many to read",
    ),
    (
        "rail_cut.parquet",
        lambda p: p.write_bytes(b"PAR1 cut short"),
        "bad_parquet",
        "文件“rail_cut.parquet”不是可以读取的 Parquet 文件（可能已损坏或不完整）。",
        "not a readable Parquet file (",
    ),
    (
        "rail_cols.parquet",
        lambda p: _parquet(p, {"身份证号": [ID_A], "name": ["张三"]}),
        "missing_columns",
        "文件“rail_cols.parquet”第 1 行的表头缺少必填列：乘车日期（必填列为 身份证号、姓名、乘车日期）。"
        "可用的列名：乘车日期／出行日期／travel_date。",
        "no header row with the required columns (身份证号、姓名、乘车日期) in the first 30 rows",
    ),
]


@pytest.mark.parametrize(
    ("name", "write", "code", "message", "reason"), UNREADABLE, ids=[u[0] for u in UNREADABLE]
)
def test_every_way_a_file_is_unreadable_is_said_in_chinese(
    files: Path,
    officer: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
    name: str,
    write: Callable[[Path], None],
    code: str,
    message: str,
    reason: str,
) -> None:
    path = files / name
    write(path)

    batch = through_the_task(path, None, django_capture_on_commit_callbacks)

    assert (batch.status, batch.failure_code, batch.message) == (ImportStatus.FAILED, code, message)
    assert batch.detail.startswith(f"{name}: {reason}")
    assert "not " not in batch.message and "header" not in batch.message  # no English on the page
    assert batch.message in page(officer, batch)


def test_file_sizes_read_the_same_on_every_import_page(files: Path, officer: Client, settings: Any) -> None:
    """The upload form said its limit in whole MB (文件超过 0 MB 的上限 under a 2 KB limit), a file
    refused as too large was counted in 字节 (3,072 字节，上限 2,048 字节) and an import's 大小 in
    KB: every size on the import pages is now Django's filesizeformat (字节 / KB / MB / GB), the
    exact bytes in the English detail only."""
    settings.ZIGE_MAX_IMPORT_BYTES = 2048
    form = officer.get(reverse("feeds:upload")).content.decode()
    assert "不超过 2.0\xa0KB" in form
    upload = SimpleUploadedFile("rail_big.csv", b"x" * 3072, content_type="text/csv")
    refused = officer.post(reverse("feeds:upload"), {"file": upload, "kind": ""}).content.decode()
    assert "文件大小 3.0\xa0KB，超过 2.0\xa0KB 的上限" in refused
    # in what the page says, not in its markup (the CSRF token, random, may hold an "MB")
    said_on_page = re.sub(r"<[^>]+>", " ", refused)
    assert "字节" not in said_on_page and "MB" not in said_on_page
    path = files / "rail_big.csv"
    path.write_bytes(b"x" * 3072)
    with pytest.raises(ImportRefused) as said:  # the command line and the inbox
        services.import_submit(source=path, file_name=path.name, kind=None, user=None, now=NOW)
    assert said.value.message == "文件“rail_big.csv”过大（3.0\xa0KB，上限 2.0\xa0KB）。"
    assert "3,072 bytes" in said.value.detail
    batch = ImportBatch.objects.create(
        kind="rail", file_name="rail.csv", sha256="cd" * 32, status="succeeded", size=1536, created_at=NOW
    )
    assert "<dd>1.5\xa0KB</dd>" in page(officer, batch)


def test_an_upload_gone_from_the_server_is_said_in_chinese(files: Path, data_dirs: Path) -> None:
    path = write_csv(files / "rail_gone.csv", RAIL_HEADER, [RAIL_ROW])
    batch = services.import_submit(
        source=path, file_name=path.name, kind=None, user=None, now=NOW, enqueue=False
    )
    (data_dirs / "uploads" / batch.stored_path).unlink()

    batch = services.import_execute(batch_id=batch.pk, now=NOW)

    assert (batch.status, batch.failure_code) == (ImportStatus.FAILED, "no_such_file")
    assert batch.message == "上传的文件“rail_gone.csv”已不在服务器上，无法导入；请重新上传该文件。"
    assert batch.detail == "rail_gone.csv: no such file"


def test_every_reader_code_has_chinese_words_and_a_missing_fact_is_no_error() -> None:
    assert set(get_args(ReadErrorCode)) <= set(FAILURE_ZH)
    assert failure_message("missing_columns", {"file": "a.csv"}) == (
        "文件“a.csv”第 ？ 行的表头缺少必填列：？（必填列为 ？）。可用的列名：？。"
    )
    assert failure_message("a code from a newer version", {}) == failure_message("unknown", {})


# ---------------------------------------------------------------------------------------------
# The same content again


def test_the_same_roster_again_is_a_duplicate_said_in_chinese(
    files: Path, officer: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    path = write_csv(files / "roster.csv", ROSTER_HEADER, ROSTER_ROWS)
    first = through_the_task(path, "roster", django_capture_on_commit_callbacks)
    again = files / "roster_again.csv"
    again.write_bytes(path.read_bytes())

    second = through_the_task(again, "roster", django_capture_on_commit_callbacks)

    assert first.status == ImportStatus.SUCCEEDED
    assert (second.status, second.duplicate_of_id, second.failure_code) == (
        ImportStatus.DUPLICATE, first.pk, "duplicate"
    )  # fmt: skip
    assert second.message == f"与第 {first.pk} 号导入（roster.csv）内容相同，未重复导入。"
    assert second.detail == f"Same content as import #{first.pk} (roster.csv); nothing imported."
    html = page(officer, second)
    assert "与已导入的文件内容相同，未再次导入" in html and "nothing imported" not in html


def test_an_import_overtaken_by_the_same_content_is_a_duplicate_not_an_internal_error(
    files: Path, officer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports of one file, both queued: the other commits after this one's last check for
    it, so this one's commit breaks `import_content_once` (an IntegrityError)."""
    path = write_csv(files / "roster.csv", ROSTER_HEADER, ROSTER_ROWS)
    other = services.import_submit(
        source=path, file_name="roster.csv", kind="roster", user=None, now=NOW, enqueue=False
    )
    this = services.import_submit(
        source=path, file_name="roster_copy.csv", kind="roster", user=None, now=NOW, enqueue=False
    )
    assert other.status == this.status == ImportStatus.QUEUED

    def checked_before_the_other_committed(batch: ImportBatch) -> None:
        assert ImportBatch.objects.get(pk=batch.pk).status == ImportStatus.RUNNING

    monkeypatch.setattr(services, "_lock_running", checked_before_the_other_committed)

    def meanwhile(label: str, done: int, total: int) -> None:
        if label == "compare with the roll":  # just before this import's final transaction
            assert services.import_execute(batch_id=other.pk, now=NOW).status == ImportStatus.SUCCEEDED

    this = services.import_execute(batch_id=this.pk, now=NOW, progress=meanwhile)

    assert (this.status, this.duplicate_of_id, this.failure_code) == (
        ImportStatus.DUPLICATE,
        other.pk,
        "duplicate",
    )
    assert this.message == f"与第 {other.pk} 号导入（roster.csv）内容相同，未重复导入。"
    assert "内部错误" not in page(officer, this)


# ---------------------------------------------------------------------------------------------
# The system


def test_an_unforeseen_exception_gets_a_chinese_message_and_its_english_text_as_detail(
    files: Path,
    officer: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def lost(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("manifest b7 vanished between write and rename")

    monkeypatch.setattr("zige.engine.store.EvidenceStore.ingest_csv", lost)
    path = write_csv(files / "rail_2026q3.csv", RAIL_HEADER, [RAIL_ROW])

    with caplog.at_level(logging.ERROR, logger="zige.feeds.services"):
        batch = through_the_task(path, None, django_capture_on_commit_callbacks)

    assert (batch.status, batch.failure_code) == (ImportStatus.FAILED, "unknown")
    assert (
        batch.message
        == "发生内部错误（RuntimeError），本次导入未写入任何数据；请将技术详情提供给系统管理员。"
    )
    assert batch.detail == "RuntimeError: manifest b7 vanished between write and rename"
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records), "traceback in the log"
    html = page(officer, batch)
    assert f"导入失败：{batch.message}" in html and batch.detail in html


def _busy_sqlite() -> BaseException:
    cause = sqlite3.OperationalError("database is locked")
    cause.sqlite_errorcode = sqlite3.SQLITE_BUSY
    try:
        raise OperationalError("database is locked") from cause
    except OperationalError as exc:
        return exc


def _busy_postgres() -> BaseException:
    try:
        raise OperationalError(
            "canceling statement due to lock timeout"
        ) from psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")
    except OperationalError as exc:
        return exc


SYSTEM: list[tuple[str, Callable[[], BaseException], str, str]] = [
    (
        "database_busy",
        _busy_sqlite,
        "数据库正忙（另一项导入或认证正在写入），等待超时；本次导入未写入任何数据，请稍后重新上传该文件。",
        "OperationalError: database is locked",
    ),
    (
        "database_busy",
        _busy_postgres,
        "数据库正忙（另一项导入或认证正在写入），等待超时；本次导入未写入任何数据，请稍后重新上传该文件。",
        "OperationalError: canceling statement due to lock timeout",
    ),
    (
        "disk_full",
        lambda: OSError(errno.ENOSPC, "No space left on device"),
        "服务器磁盘空间不足，本次导入未写入任何数据；请联系系统管理员。",
        "OSError: [Errno 28] No space left on device",
    ),
    (
        "out_of_memory",
        lambda: MemoryError("order rows: no memory for the buckets"),
        "服务器内存不足，无法处理文件“rail_2026q3.csv”，本次导入未写入任何数据；请联系系统管理员，或将文件拆分后分别导入。",
        "MemoryError: order rows: no memory for the buckets",
    ),
    (
        "store_layout",
        lambda: StoreLayoutError(
            "batch b1-ab was written with store key layout 1; this version reads layout 2"
        ),
        "证据库中有旧格式的数据，须由系统管理员升级证据库（zige store upgrade）后才能导入；本次导入未写入任何数据。",
        "StoreLayoutError: batch b1-ab was written with store key layout 1; this version reads layout 2",
    ),
]


@pytest.mark.parametrize(
    ("code", "error", "message", "detail"),
    SYSTEM,
    ids=["sqlite_busy", "postgres_lock_timeout", *(s[0] for s in SYSTEM[2:])],
)
def test_a_failure_of_the_system_is_said_in_chinese(
    files: Path,
    officer: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    error: Callable[[], BaseException],
    message: str,
    detail: str,
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error()

    monkeypatch.setattr("zige.feeds.store.live_manifests", fail)  # the feed import's first read of the store
    path = write_csv(files / "rail_2026q3.csv", RAIL_HEADER, [RAIL_ROW])

    batch = through_the_task(path, None, django_capture_on_commit_callbacks)

    assert (batch.status, batch.failure_code, batch.message, batch.detail) == (
        ImportStatus.FAILED, code, message, detail
    )  # fmt: skip
    assert message in page(officer, batch)


# ---------------------------------------------------------------------------------------------
# The inbox: a quarantined file on the page of the unattended jobs


def test_a_quarantined_inbox_file_is_explained_in_chinese_on_the_jobs_page(data_dirs: Path) -> None:
    folder = data_dirs / "inbox" / "rail"
    folder.mkdir(parents=True)
    (folder / "rail_2026-11-29.csv").write_bytes(
        ",".join(RAIL_HEADER).encode("gbk") + b"\n" + b"\x80\xff" * 8
    )
    (folder / "notes.docx").write_text("?", encoding="utf-8")
    config = NotifyConfig(callback_token="tok")

    counts = jobs.inbox_scan(now=timezone.now() + timedelta(minutes=5), config=config)

    assert counts["quarantined"] == 2
    bad = InboxFile.objects.get(file_name="rail_2026-11-29.csv", status=InboxStatus.QUARANTINED)
    assert bad.error == (
        "文件“rail_2026-11-29.csv”的文字编码无法识别：既不是 UTF-8，也不是 GBK/GB18030（前 42 个字节之后有无法解码的内容）；"
        "请另存为 UTF-8 编码的 CSV 后重新上传。"
    )
    refused = InboxFile.objects.get(file_name="notes.docx")
    assert (
        refused.error
        == "文件“notes.docx”的类型“.docx”不受支持；请上传 CSV、Excel（xlsx、xls）或 Parquet 文件。"
    )
    note = (folder / "quarantine" / "rail_2026-11-29.csv.error.txt").read_text(encoding="utf-8")
    assert bad.error in note and "rail_2026-11-29.csv: not text in UTF-8 or GBK/GB18030 (byte 42)" in note

    client = Client()
    client.force_login(UserFactory(role=Role.BUREAU_ADMIN))
    response = client.get(reverse("notifications:overview"))
    assert response.status_code == 200
    html = response.content.decode("utf-8")
    assert "文件“notes.docx”的类型“.docx”不受支持" in html
    assert "文件“rail_2026-11-29.csv”的文字编码无法识别" in html
    assert reverse("feeds:detail", args=[bad.batch_id]) in html  # where the technical detail is
    assert "not text in" not in html and "Unsupported file type" not in html


# ---------------------------------------------------------------------------------------------
# Imports recorded before failures had codes (migration feeds 0003)


def test_old_failure_messages_are_split_into_chinese_and_english_and_back() -> None:
    migration = importlib.import_module("zige.feeds.migrations.0003_import_failure_code_detail")
    legacy = migration.LEGACY_MESSAGE
    assert legacy == FAILURE_ZH["legacy"]
    english = (
        "rail.csv: no header row with the required columns (身份证号、姓名、乘车日期) in the first 30 rows"
    )
    assert migration._split(english, "rail.csv") == (legacy, english)
    assert migration._split(
        "导入失败：内部错误（OSError），详见服务器日志。 / Import failed: internal error (OSError); see the server log.",
        "rail.csv",
    ) == (
        "导入失败：内部错误（OSError），详见服务器日志。",
        "Import failed: internal error (OSError); see the server log.",
    )
    assert migration._split("", "rail.csv") is None
