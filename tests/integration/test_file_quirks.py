"""End to end through `certify()` on small agency files written by the test (spec §5, §6).

One small province: a GBK roster with a title row and roster conflicts, rail feeds in two files
(CSV with a BOM and XLSX) holding the same trip twice, a flight XLSX with a 15-digit ID in a numeric
cell, a hospital XLS written by xlwt and an app-auth Parquet file. Every rejected row must show up in
rejects.csv with its spreadsheet row, and every file must reconcile in summary.json.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
import xlwt
from click.testing import CliRunner

from zige.cli import main
from zige.engine.pipeline import CertifyConfig, CertifyError, certify
from zige.ids import check_digit

AS_OF = date(2026, 3, 31)


def make_id(region: str, born: str, seq: int) -> str:
    first17 = f"{region}{born}{seq:03d}"
    return first17 + check_digit(first17)


def naive(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - spreadsheet date-times have no time zone


A = make_id("140105", "19500101", 123)
A_BAD = A[:17] + ("0" if A[17] != "0" else "1")  # wrong check character
B = make_id("140106", "19491231", 2)
B15 = B[:6] + B[8:17]  # the same person's old 15-digit number
C = make_id("142201", "19520701", 17)  # 忻州地区: abolished in 2000, still on old ID cards
D = make_id("140107", "19550505", 44)
E = make_id("140108", "19560606", 55)
F = make_id("140109", "19570707", 66)
G = make_id("140110", "19580808", 77)
H = make_id("140105", "19600101", 999)  # in no roster: a used but unmatched feed row
X = "11010519491231002X"
X_ROSTER = "'１１０１０５１９４９１２３１００２ｘ"  # Excel text marker, full-width, lowercase x
X_FEED = "110105 19491231 002x"
assert len(B15) == 15 and X[-1] == "X"


def csv_text(rows: list[list[str]], newline: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows(rows)
    return buffer.getvalue()


def write_roster(path: Path) -> None:
    rows = [
        ["2026年待遇领取人员名册（太原市）", "", "", "", "", "", ""],  # 1
        ["个人编号", "姓名", "*身份证号", "单位编号", "联系电话", "上次认证日期", "退休日期"],  # 2
        ["P001", "张三", A, "U01", "13912345678", "2025-03-01", "2010-01-01"],  # 3
        ["P001", "张 三", A, "U01", "13912345678", "2025/3/1", "2010-01-01"],  # 4: the same row again
        ["P002", "李四", B, "U01", "", "2025-01-01", "2009-01-01"],  # 5
        ["", "", "", "", "", "", ""],  # 6: blank
        ["P003", "王五", C, "U02", "", "2024-12-01", ""],  # 7
        ["P004", "赵六", D, "U02", "", "", "2010-01-01"],  # 8: same ID as row 9
        ["P005", "钱七", D, "U02", "", "", "2010-01-01"],  # 9
        ["P006", "孙八", E, "U03", "13800000001", "", "2011-01-01"],  # 10: same 个人编号 as row 11
        ["P006", "孙八", E, "U03", "13800000002", "", "2011-01-01"],  # 11
        ["P008", "周九", A_BAD, "U03", "", "", ""],  # 12
        ["P009", "吴十", F, "U03", "", "2025-02-29", "2010-01-01"],  # 13: no 29 February in 2025
        ["P010", "郑一", G, "", "", "", ""],  # 14: no 单位编号
        ["P011", "冯二", X_ROSTER, "U04", "", "", "2008-06-01"],  # 15
    ]
    path.write_bytes(csv_text(rows).encode("gbk"))


def write_rail_csv(path: Path) -> None:
    header = ["身份证号", "姓名", "乘车日期", "车次", "出发站", "到达站", "备注"]
    rows = [
        ["2026年第一季度铁路出行数据", "", "", "", "", "", ""],  # 1
        header,  # 2
        [A, "张三", "2026-03-05", "G601", "太原南", "北京西", ""],  # 3
        [f" {A} ", "张 三", "2026/3/5 10:00", "G601", "太原南", "北京西", "重复推送"],  # 4: duplicate of 3
        [],  # 5: blank
        [X_FEED, "冯二", "20260310", "K1", "大同", "太原", ""],  # 6
        [A, "张三", "2026-02-30", "G1", "太原南", "北京西", ""],  # 7: no such day
        [A_BAD, "张三", "2026-03-01", "G1", "太原南", "北京西", ""],  # 8
        [H, "某人", "2026-03-01", "G1", "太原南", "北京西", ""],  # 9: unmatched
        [A, "", "2026-03-06", "G1", "太原南", "北京西", ""],  # 10: no name
    ]
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(rows, "\r\n").encode("utf-8"))


def write_rail_xlsx(path: Path) -> None:
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    day = book.add_format({"num_format": "yyyy年m月d日"})
    sheet.write_row(2, 1, ["身份证号", "姓名", "乘车日期", "车次", "出发站", "到达站"])  # B3
    # Row 4: the trip of rail_2026q1.csv row 3 again, as a date-time cell on the same day.
    sheet.write_row(3, 1, [A, "张三"])
    sheet.write_datetime(3, 3, naive(2026, 3, 5, 18, 30), stamp)
    sheet.write_row(3, 4, ["G601", "太原南", "北京西"])
    sheet.write_row(4, 1, [A, "张三"])  # row 5: a newer trip
    sheet.write_datetime(4, 3, naive(2026, 3, 20), day)
    sheet.write_row(4, 4, ["G603", "太原南", "北京西"])
    book.close()


def write_flight_xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["2026年第一季度民航出行数据"])
    sheet.merge_cells("A1:F1")
    sheet.append(["证件号码", "姓名", "航班日期", "航班号", "出发地", "目的地"])
    sheet.append(
        [int(B15), "李四", naive(2026, 2, 14, 7, 45), "CA1234", "太原", "广州"]
    )  # 15 digits, numeric
    book.save(path)


def write_hospital_xls(path: Path) -> None:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("出院")
    sheet.write(0, 0, "公民身份号码")
    sheet.write(0, 1, "姓名")
    sheet.write(0, 2, "出院日期（含日间病房）")
    sheet.write(0, 3, "医院名称")
    sheet.write(1, 0, C)
    sheet.write(1, 1, "王五")
    sheet.write(1, 2, naive(2026, 1, 10), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    sheet.write(1, 3, "山西省人民医院")
    sheet.write(2, 0, C)
    sheet.write(2, 1, "王五")
    sheet.write(2, 2, "2025-02-29")
    sheet.write(2, 3, "山西省人民医院")
    book.save(str(path))


def write_app_parquet(path: Path) -> None:
    table = pa.table(
        {
            "id_number": [D, A],
            "name": ["赵六", "张三"],
            "auth_time": pa.array([naive(2026, 3, 1, 9), naive(2026, 3, 25, 9)], pa.timestamp("s")),
            "result": ["成功", "失败"],
            "similarity": [0.97, 0.41],
        }
    )
    pq.write_table(table, path)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("province")
    feeds = base / "feeds"
    feeds.mkdir()
    write_roster(base / "roster.csv")
    write_rail_csv(feeds / "rail_2026q1.csv")
    write_rail_xlsx(feeds / "rail_2026q1_extra.xlsx")
    write_flight_xlsx(feeds / "flight_2026.xlsx")
    write_hospital_xls(feeds / "hospital_2026.xls")
    write_app_parquet(feeds / "app_auth_minsheng.parquet")
    (feeds / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: not a feed
    (feeds / "~$flight_2026.xlsx").write_bytes(b"lock")  # an Excel lock file: not a feed
    out = base / "out"
    result = certify(CertifyConfig(roster=base / "roster.csv", feeds=feeds, as_of=AS_OF, out=out))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["files"] == result.summary["files"]
    return out, summary


def test_every_rejected_row_is_listed(run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = run
    rejects = [
        (r["file"], int(r["row"]), r["field"], r["value"], r["reason"])
        for r in read_csv_rows(out / "rejects.csv")
    ]
    assert sorted(rejects) == sorted(
        [
            ("roster.csv", 8, "身份证号", D, "duplicate_id_number"),
            ("roster.csv", 9, "身份证号", D, "duplicate_id_number"),
            ("roster.csv", 10, "个人编号", "P006", "duplicate_person_no"),
            ("roster.csv", 11, "个人编号", "P006", "duplicate_person_no"),
            ("roster.csv", 12, "身份证号", A_BAD, "bad_id_checksum"),
            ("roster.csv", 13, "上次认证日期", "2025-02-29", "bad_date"),
            ("roster.csv", 14, "单位编号", "", "missing_value"),
            ("rail_2026q1.csv", 7, "乘车日期", "2026-02-30", "bad_date"),
            ("rail_2026q1.csv", 8, "身份证号", A_BAD, "bad_id_checksum"),
            ("rail_2026q1.csv", 10, "姓名", "", "missing_value"),
            ("hospital_2026.xls", 3, "出院日期", "2025-02-29", "bad_date"),
        ]
    )


def test_every_file_reconciles(run: tuple[Path, dict[str, Any]]) -> None:
    _, summary = run
    files = {f["file"]: f for f in summary["files"]}
    assert set(files) == {
        "roster.csv",
        "rail_2026q1.csv",
        "rail_2026q1_extra.xlsx",
        "flight_2026.xlsx",
        "hospital_2026.xls",
        "app_auth_minsheng.parquet",
    }
    for report in files.values():
        assert report["rows_read"] == report["rows_used"] + report["rows_rejected"] + report["duplicate_rows"]
        assert report["reconciles"] is True
    counts = {
        name: (f["rows_read"], f["rows_used"], f["rows_rejected"], f["duplicate_rows"], f["blank_rows"])
        for name, f in files.items()
    }
    assert counts == {
        "roster.csv": (12, 4, 7, 1, 1),
        "rail_2026q1.csv": (7, 3, 3, 1, 1),
        "rail_2026q1_extra.xlsx": (2, 1, 0, 1, 0),
        "flight_2026.xlsx": (1, 1, 0, 0, 0),
        "hospital_2026.xls": (2, 1, 1, 0, 0),
        "app_auth_minsheng.parquet": (2, 2, 0, 0, 0),
    }
    assert (files["roster.csv"]["header_row"], files["rail_2026q1.csv"]["header_row"]) == (2, 2)
    assert files["rail_2026q1_extra.xlsx"]["header_row"] == 3
    assert files["roster.csv"]["encoding"] == "gb18030"
    assert files["rail_2026q1.csv"]["encoding"] == "utf-8-sig"
    assert files["rail_2026q1.csv"]["unmatched"] == 1  # H: used, counted as unmatched, not an error
    assert files["app_auth_minsheng.parquet"]["unmatched"] == 1  # D's roster rows were rejected
    assert summary["reconciles"] is True
    assert summary["rejects"]["total"] == 11


def test_results(run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = run
    results = {r["person_no"]: r for r in read_csv_rows(out / "results.csv")}
    # Rejected roster rows (conflicts, bad values) get no result; the exact duplicate counts once.
    assert sorted(results) == ["P001", "P002", "P003", "P011"]
    picked = {
        p: (r["id_number"], r["status"], r["reason"], r["evidence_date"], r["due_on"])
        for p, r in results.items()
    }
    assert picked == {
        # newest trip: the XLSX date cell, not the duplicated date-time trip of 5 March
        "P001": (A, "eligible", "rail", "2026-03-20", "2027-03-20"),
        # the flight feed's 15-digit number in a numeric cell, upgraded, matches the 18-digit roster ID
        "P002": (B, "eligible", "flight", "2026-02-14", "2027-02-14"),
        # a region code that no longer exists is accepted; the XLS date cell is read as a day
        "P003": (C, "eligible", "hospital", "2026-01-10", "2027-01-10"),
        # full-width, apostrophe, lowercase x in the roster; spaces and lowercase x in the feed
        "P011": (X, "eligible", "rail", "2026-03-10", "2027-03-10"),
    }
    assert summary["recipients"] == 4


def _province(tmp_path: Path) -> tuple[Path, Path]:
    roster = tmp_path / "roster.csv"
    roster.write_text(f"个人编号,姓名,身份证号,单位编号\nP001,张三,{A},U01\n", encoding="utf-8")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "rail_ok.csv").write_text(f"身份证号,姓名,乘车日期\n{A},张三,2026-03-05\n", encoding="utf-8")
    return roster, feeds


def test_unknown_feed_kind_stops_the_run(tmp_path: Path) -> None:
    roster, feeds = _province(tmp_path)
    (feeds / "trains_2026q1.csv").write_text("身份证号,姓名,乘车日期\n", encoding="utf-8")
    with pytest.raises(CertifyError, match=r"^trains_2026q1\.csv: no known feed kind"):
        certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # nothing decided, nothing written


def test_kind_prefix_needs_a_separator(tmp_path: Path) -> None:
    roster, feeds = _province(tmp_path)
    (feeds / "railway.csv").write_text("身份证号,姓名,乘车日期\n", encoding="utf-8")  # not rail_/rail-/rail.
    with pytest.raises(CertifyError, match=r"railway\.csv"):
        certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("rail_broken.csv", b"\x00\x01\x02\x03binary" * 20),
        ("rail_broken.xlsx", b"PK\x03\x04 truncated zip"),
        ("rail_noheader.csv", "说明：本期无数据\n".encode()),
    ],
)
def test_unreadable_feed_stops_the_run(tmp_path: Path, name: str, data: bytes) -> None:
    roster, feeds = _province(tmp_path)
    (feeds / name).write_bytes(data)
    with pytest.raises(CertifyError) as caught:
        certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    assert str(caught.value).startswith(f"{name}: ")
    assert "\n" not in str(caught.value)


def test_unreadable_roster_stops_the_run(tmp_path: Path) -> None:
    _, feeds = _province(tmp_path)
    roster = tmp_path / "名册.xls"
    roster.write_bytes(b"<html><table><tr><td>not an xls</td></tr></table></html>")
    with pytest.raises(CertifyError, match=r"^名册\.xls: "):
        certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))


@pytest.mark.parametrize("bad", ["unknown_kind", "unreadable"])
def test_cli_exits_non_zero_with_one_line(tmp_path: Path, bad: str) -> None:
    roster, feeds = _province(tmp_path)
    name = "trains_2026.csv" if bad == "unknown_kind" else "rail_broken.csv"
    (feeds / name).write_bytes(b"\x00\x01\x02garbage" * 10 if bad == "unreadable" else b"a,b\n")
    args = ["certify", "--roster", str(roster), "--feeds", str(feeds), "--as-of", "2026-03-31"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "error" in lines[0]


def test_cli_succeeds_on_the_good_province(tmp_path: Path) -> None:
    roster, feeds = _province(tmp_path)
    args = ["certify", "--roster", str(roster), "--feeds", str(feeds), "--as-of", "2026-03-31"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert read_csv_rows(tmp_path / "out" / "results.csv")[0]["status"] == "eligible"


def test_year_zero_is_a_bad_date_not_a_crash(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        f"个人编号,姓名,身份证号,单位编号,上次认证日期\nP001,张三,{A},U01,0000-01-01\nP002,李四,{B},U01,\n",
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    rejects = read_csv_rows(tmp_path / "out" / "rejects.csv")
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [("2", "上次认证日期", "bad_date")]


def test_roster_repeat_with_a_differently_spaced_phone_is_a_duplicate(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "个人编号,姓名,身份证号,单位编号,联系电话\n"
        f"P001,张三,{A},U01,13912345678\n"
        f"P001,张 三,{A},U01,139 1234 5678\n",
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    result = certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    report = result.summary["files"][0]
    assert (report["rows_used"], report["duplicate_rows"], report["rows_rejected"]) == (1, 1, 0)


def test_an_exact_repeat_of_a_conflicting_row_is_rejected_with_its_group(tmp_path: Path) -> None:
    """Spec §6: all rows sharing a 个人编号 but differing otherwise are rejected — an exact
    repeat of one of them too, not counted as a duplicate (the group is found whole)."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "个人编号,姓名,身份证号,单位编号,月养老金\n"
        f"P05,赵六,{A},U01,1000\n"  # 2
        f"P05,赵六,{A},U01,2000\n"  # 3: differs from row 2
        f"P05,赵六,{A},U01,1000\n"  # 4: row 2 again
        f"P06,钱七,{B},U01,1500\n"  # 5
        f"P06,钱七,{B},U01,1500\n",  # 6: row 5 again, no conflict: a duplicate
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    result = certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    rejects = sorted((int(r["row"]), r["reason"]) for r in read_csv_rows(tmp_path / "out" / "rejects.csv"))
    assert rejects == [(2, "duplicate_person_no"), (3, "duplicate_person_no"), (4, "duplicate_person_no")]
    report = result.summary["files"][0]
    assert (report["rows_used"], report["duplicate_rows"], report["rows_rejected"]) == (1, 1, 3)


def test_a_row_rejected_for_its_amount_still_conflicts_on_its_id(tmp_path: Path) -> None:
    """Spec §6: every row sharing a 身份证号 or 个人编号 is rejected, whatever else is wrong with
    it (重复领取 is itself a finding); the conflict is the reason reported, one line per row."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "个人编号,姓名,身份证号,单位编号,月养老金\n"
        f"P01,张三,{A},U01,abc\n"  # 2: bad amount, and the same ID as row 3
        f"P02,张三,{A},U01,3000\n"  # 3
        f"P03,李四,{B},U01,xyz\n"  # 4: bad amount, and the same 个人编号 as row 5 and 6
        f"P03,李四,{B},U01,xyz\n"  # 5: the same bad row again
        f"P03,王五,{C},U01,2000\n"  # 6
        f"P04,赵六,{D},U01,bad\n"  # 7: bad amount only
        f"P05,钱七,{A_BAD},U01,\n"  # 8: bad check digit: no ID to share
        f"P06,孙八,{A_BAD},U01,\n",  # 9
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    result = certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    rejects = sorted(
        (int(r["row"]), r["field"], r["value"], r["reason"])
        for r in read_csv_rows(tmp_path / "out" / "rejects.csv")
    )
    assert rejects == [
        (2, "身份证号", A, "duplicate_id_number"),
        (3, "身份证号", A, "duplicate_id_number"),
        (4, "个人编号", "P03", "duplicate_person_no"),
        (5, "个人编号", "P03", "duplicate_person_no"),
        (6, "个人编号", "P03", "duplicate_person_no"),
        (7, "月养老金", "bad", "bad_amount"),
        (8, "身份证号", A_BAD, "bad_id_checksum"),
        (9, "身份证号", A_BAD, "bad_id_checksum"),
    ]
    assert read_csv_rows(tmp_path / "out" / "results.csv") == []
    report = result.summary["files"][0]
    assert (report["rows_read"], report["rows_used"], report["duplicate_rows"], report["rows_rejected"]) == (
        8,
        0,
        0,
        8,
    )
    assert report["reconciles"]
    assert result.summary["rejects"]["reason"] == {
        "bad_amount": 1, "bad_id_checksum": 2, "duplicate_id_number": 2, "duplicate_person_no": 3,
    }  # fmt: skip


def test_a_landline_in_one_phone_column_does_not_hide_a_mobile_in_another(tmp_path: Path) -> None:
    """Spec §2: channel sms when the roster has a valid mobile, whichever of 联系电话/手机号码 holds it."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "个人编号,姓名,身份证号,单位编号,联系电话,手机号码,上次认证日期\n"
        f"P01,张三,{A},U01,0351-7654321,13912345678,2025-05-15\n"  # landline first, mobile second
        f"P02,李四,{B},U01,13800000001,0351-1234567,2025-05-15\n"  # mobile first
        f"P03,王五,{C},U01,0351-7654321,,2025-05-15\n"  # no mobile anywhere
        f"P04,赵六,{D},U01,,13700000002,2025-05-15\n",
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    results = {
        r["person_no"]: (r["remind"], r["channel"]) for r in read_csv_rows(tmp_path / "out" / "results.csv")
    }
    assert results == {"P01": ("1", "sms"), "P02": ("1", "sms"), "P03": ("1", "unit"), "P04": ("1", "sms")}
    reminders = {r["person_no"]: r["phone"] for r in read_csv_rows(tmp_path / "out" / "reminders.csv")}
    assert reminders == {"P01": "13912345678", "P02": "13800000001", "P03": "", "P04": "13700000002"}


def test_residence_region_text_is_kept_and_marked_not_replaced_by_the_hukou_region(tmp_path: Path) -> None:
    """附件2 (spec §7; rules §6.1): 居住地行政区划 as text is kept and marked yellow for the unit, never
    replaced by the ID's own (户籍) region; empty still takes the ID's region."""
    hebei = make_id("130102", "19500101", 5)
    henan = make_id("410105", "19500101", 6)
    beijing = make_id("110101", "19500101", 7)
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "个人编号,姓名,身份证号,单位编号,是否办理社保卡,居住地行政区划\n"
        f"P01,张三,{hebei},U01,否,太原市小店区\n"
        f"P02,李四,{henan},U01,否,140105\n"
        f"P03,王五,{beijing},U01,否,\n",
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    out = tmp_path / "out"
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=out))
    sheet = openpyxl.load_workbook(out / "out_of_province.xlsx").active
    assert sheet is not None
    rows = {r[4].value: r for r in sheet.iter_rows() if r[4].value in ("P01", "P02", "P03")}
    assert {p: rows[p][3].value for p in rows} == {"P01": "太原市小店区", "P02": "140105", "P03": "110101"}
    assert rows["P01"][3].fill.fgColor.rgb.endswith("FFFF99")
    assert not rows["P02"][3].fill.fgColor.rgb.endswith("FFFF99")


@pytest.mark.parametrize("region", ["1401", "14010a", "太原市", "１４０１００", "1401000"])
def test_cli_refuses_an_insured_region_that_is_not_six_digits(tmp_path: Path, region: str) -> None:
    roster, feeds = _province(tmp_path)
    args = ["certify", "--roster", str(roster), "--feeds", str(feeds), "--as-of", "2026-03-31"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out"), "--insured-region", region])
    assert result.exit_code == 2, result.output
    assert "--insured-region" in result.stderr and "6-digit" in result.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran
    ok = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "ok"), "--insured-region", "140100"])
    assert ok.exit_code == 0, ok.output


def test_an_event_dated_before_the_persons_birth_is_a_bad_date_not_a_death(tmp_path: Path) -> None:
    """A death typed 1926 for someone born in 1950: an impossible date (rules §4), rejected —
    read as evidence it would stop the pension from 1926 and recover 100 years of it."""
    roster = tmp_path / "roster.csv"
    roster.write_text(f"个人编号,姓名,身份证号,单位编号,月养老金\nP001,张三,{A},U01,3000\n", encoding="utf-8")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    born = f"{A[6:10]}-{A[10:12]}-{A[12:14]}"
    before = (date.fromisoformat(born) - timedelta(days=1)).isoformat()
    (feeds / "death_2026.csv").write_text(
        f"身份证号,姓名,死亡日期,信息来源\n{A},张三,1926-06-01,民政\n{A},张三,{before},民政\n",
        encoding="utf-8",
    )
    (feeds / "rail_2026.csv").write_text(f"身份证号,姓名,乘车日期\n{A},张三,{born}\n", encoding="utf-8")
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    rejects = read_csv_rows(tmp_path / "out" / "rejects.csv")
    assert [(r["file"], r["row"], r["field"], r["reason"]) for r in rejects] == [
        ("death_2026.csv", "2", "死亡日期", "bad_date"),
        ("death_2026.csv", "3", "死亡日期", "bad_date"),
    ]
    (result,) = read_csv_rows(tmp_path / "out" / "results.csv")
    # Not stopped: no death is evidence; the trip on the day of birth itself is a possible date.
    assert (result["status"], result["evidence_kind"], result["evidence_date"]) == ("pending", "rail", born)


def test_rejects_name_the_column_as_the_file_heads_it_and_explain_the_reason_in_chinese(
    tmp_path: Path,
) -> None:
    """An officer corrects the source file from rejects.csv: after spec §6's five columns (the
    field by its label, the reason code) come the reason in Chinese (原因说明, as the import's
    download has it) and the column as the file heads it (文件中的列名), alias headers included."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "个人编号,姓名,公民身份号码,单位编号,月养老金额（元）\n"
        f"P001,张三,{A},U01,3000\n"
        f"P002,李四,{A_BAD},U01,3000\n"  # 3: bad check digit, under 公民身份号码
        f"P003,王五,{B},U01,三千\n",  # 4: bad amount, under 月养老金额（元）
        encoding="utf-8",
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "rail_2026.csv").write_text(
        f"证件号码,姓名,出行日期\n{A},张三,2026-02-30\n,张三,2026-03-01\n{A},张三,2026-03-02\n",
        encoding="utf-8",
    )
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    with (tmp_path / "out" / "rejects.csv").open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["file", "row", "field", "value", "reason", "原因说明", "文件中的列名"]
    assert rows == [
        ["roster.csv", "3", "身份证号", A_BAD, "bad_id_checksum", "身份证号校验码错误", "公民身份号码"],
        ["roster.csv", "4", "月养老金", "三千", "bad_amount", "金额无法识别", "月养老金额（元）"],
        ["rail_2026.csv", "2", "乘车日期", "2026-02-30", "bad_date", "日期无法识别", "出行日期"],
        ["rail_2026.csv", "3", "身份证号", "", "missing_value", "缺少必填值", "证件号码"],
    ]
