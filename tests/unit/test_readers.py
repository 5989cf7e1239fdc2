"""Readers (zige.engine.readers): agency files as they really come, written here into tmp_path.

Spec §5 (what every reader must accept) and §6 (row numbers as a spreadsheet shows them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
import xlwt
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from zige.engine.kinds import BUILTIN_KINDS, ROSTER_COLUMNS, Column
from zige.engine.readers import (
    RawTable,
    ReadError,
    _arrow_body,
    _tolerant_body,
    decode_bytes,
    match_header,
    read_table,
)

KINDS = {k.code: k for k in BUILTIN_KINDS}
RAIL = KINDS["rail"].columns
HEADER = ["身份证号", "姓名", "乘车日期", "车次"]
ID_A = "11010519491231002X"
ID_B = "440524188001010014"


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    newline: str = "\n",
) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def rows_of(raw: RawTable) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = raw.table.to_pylist()
    return rows


def column(raw: RawTable, name: str) -> list[object]:
    values: list[object] = raw.table.column(name).to_pylist()
    return values


# ---------------------------------------------------------------------------------------------
# 1. Encodings, found without being told
# ---------------------------------------------------------------------------------------------

# A rare name character outside GBK (CJK Extension B / A): only GB18030 can carry it.
RARE_NAMES = ("王𠀀", "李䶮", "张㐀明")


@pytest.mark.parametrize(
    ("encoding", "prefix", "reported"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
        ("utf-16-le", b"\xff\xfe", "utf-16"),
        ("utf-16-be", b"\xfe\xff", "utf-16"),
        ("utf-32-le", b"\xff\xfe\x00\x00", "utf-32"),
        ("gb18030", b"", "gb18030"),
        ("gb18030", b"\x84\x31\x95\x33", "gb18030"),  # GB18030's own byte-order mark
    ],
)
def test_encodings_are_detected(tmp_path: Path, encoding: str, prefix: bytes, reported: str) -> None:
    text = "身份证号,姓名,乘车日期\r\n" + "".join(f"{ID_A},{n},2026-03-05\r\n" for n in RARE_NAMES)
    path = tmp_path / "rail_enc.csv"
    path.write_bytes(prefix + text.encode(encoding))
    raw = read_table(path, RAIL)
    assert raw.encoding == reported
    assert column(raw, "name") == list(RARE_NAMES)
    assert raw.headers["id_number"] == "身份证号"  # no byte-order mark left in the first cell


def test_gbk_file(tmp_path: Path) -> None:
    text = "2026年第一季度铁路出行数据,,\n身份证号,姓名,乘车日期\n" + f"{ID_A},张三,2026年3月5日\n"
    data = text.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # so the reader really had to fall back
    path = tmp_path / "rail_gbk.csv"
    path.write_bytes(data)
    raw = read_table(path, RAIL)
    assert raw.encoding == "gb18030"
    assert rows_of(raw) == [{"_row": 3, "id_number": ID_A, "name": "张三", "event_date": "2026年3月5日"}]


def test_rare_characters_are_not_in_gbk() -> None:
    for name in RARE_NAMES:
        with pytest.raises(UnicodeEncodeError):
            name.encode("gbk")


def test_decode_bytes_directly() -> None:
    path = Path("x.csv")
    assert decode_bytes("身份证号".encode(), path) == ("身份证号", "utf-8")
    assert decode_bytes(b"\xef\xbb\xbf" + "姓名".encode(), path) == ("姓名", "utf-8-sig")
    assert decode_bytes("姓名".encode("gbk"), path) == ("姓名", "gb18030")
    assert decode_bytes("\ufeff姓名".encode("utf-16"), path) == ("姓名", "utf-16")


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("rail_zip.csv", b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8, "binary"),
        ("rail_png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "binary"),
        ("rail_noise.csv", b"\x80\xff\xfe\x81" * 500, "not text"),  # no NUL, neither UTF-8 nor GB18030
        ("rail_cut.csv", "身份证号,姓名,乘车日期\n".encode("utf-16")[:-1], "UTF-16"),  # odd length
        ("rail_mixed.csv", b"\xef\xbb\xbf" + "身份证号,姓名,乘车日期\n".encode("gbk"), "UTF-8"),  # BOM + GBK
        ("rail_empty.csv", b"", "no header row"),
        ("rail_fake.xlsx", "身份证号,姓名,乘车日期\n".encode(), "Excel"),
        ("rail_fake.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 600, "Excel"),
        ("rail_fake.parquet", b"PAR1 not really", "Parquet"),
        ("rail_2026.pdf", b"%PDF-1.4", "unsupported file type .pdf"),
    ],
)
def test_unreadable_files_raise_read_error_naming_the_file(
    tmp_path: Path, name: str, data: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ReadError) as caught:
        read_table(path, RAIL)
    assert str(caught.value).startswith(f"{name}: ")
    assert words in str(caught.value)
    assert caught.value.path == path


@pytest.mark.parametrize("length", [200_000, 3_000_000])
def test_a_long_cell_is_read_as_the_store_reads_it(tmp_path: Path, length: int) -> None:
    # Ragged rows send the body to the csv module, whose default field limit (131,072
    # characters) refused the file that the evidence store's native scan reads.
    path = tmp_path / "rail_long.csv"
    path.write_text(
        f"身份证号,姓名,乘车日期\n{ID_A},张三\n{ID_B},{'长' * length},2026-03-05\n", encoding="utf-8"
    )
    raw = read_table(path, RAIL)
    assert column(raw, "_row") == [2, 3]
    assert [len(v) for v in column(raw, "name")] == [2, length]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"^rail_gone\.csv: no such file"):
        read_table(tmp_path / "rail_gone.csv", RAIL)


# ---------------------------------------------------------------------------------------------
# 2. The header row: under title rows, any alias, decorated labels, any delimiter
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("titles", [0, 1, 2, 3])
def test_csv_header_under_title_rows(tmp_path: Path, titles: int) -> None:
    title_rows = [
        ["2026年第一季度铁路出行数据", "", "", ""],
        ["填报单位：太原铁路局", "", "", "填报日期：2026-04-02"],
        ["单位：人次", "", "", ""],
    ][:titles]
    path = write_csv(tmp_path / "rail.csv", [*title_rows, HEADER, [ID_A, "张三", "2026-03-05", "G601"]])
    raw = read_table(path, RAIL)
    assert raw.header_row == titles + 1
    assert column(raw, "_row") == [titles + 2]
    assert path.read_text(encoding="utf-8").startswith(
        "2026年第一季度铁路出行数据,,," if titles else "身份证号"
    )


def test_csv_title_cell_with_a_line_break_is_one_row(tmp_path: Path) -> None:
    text = (
        '"2026年第一季度\n铁路出行数据（山西）",,,\n'
        "身份证号,姓名,乘车日期,车次\n"
        f"{ID_A},张三,2026-03-05,G601\n"
    )
    path = tmp_path / "rail.csv"
    path.write_text(text, encoding="utf-8")
    raw = read_table(path, RAIL)
    assert raw.header_row == 2
    assert column(raw, "_row") == [3]


def test_xlsx_merged_title_rows(tmp_path: Path) -> None:
    path = tmp_path / "rail.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("铁路")
    merged = book.add_format({"bold": True, "align": "center", "text_wrap": True})
    sheet.merge_range(0, 0, 0, 4, "2026年第一季度\n铁路出行数据", merged)
    sheet.merge_range(1, 0, 1, 4, "填报单位：太原铁路局", merged)
    sheet.write_row(2, 0, ["序号", *HEADER])
    sheet.write_row(3, 0, [1, ID_A, "张三", "2026-03-05", "G601"])
    book.close()
    raw = read_table(path, RAIL)
    assert (raw.format, raw.header_row) == ("xlsx", 3)
    assert rows_of(raw) == [
        {"_row": 4, "id_number": ID_A, "name": "张三", "event_date": "2026-03-05", "train_no": "G601"}
    ]


ID_LABELS = ["身份证号", "公民身份号码", "证件号码", "社会保障号码", "身份证号码", "id_number", "ID_NUMBER"]
RAIL_DATE_LABELS = ["乘车日期", "出行日期", "travel_date", "Travel_Date"]


@pytest.mark.parametrize("id_label", ID_LABELS)
@pytest.mark.parametrize("date_label", RAIL_DATE_LABELS)
def test_aliases(tmp_path: Path, id_label: str, date_label: str) -> None:
    path = write_csv(tmp_path / "rail.csv", [[id_label, "姓名", date_label], [ID_A, "张三", "2026-03-05"]])
    raw = read_table(path, RAIL)
    assert raw.headers == {"id_number": id_label, "name": "姓名", "event_date": date_label}
    assert rows_of(raw) == [{"_row": 2, "id_number": ID_A, "name": "张三", "event_date": "2026-03-05"}]


@pytest.mark.parametrize(
    ("kind", "date_label"),
    [
        ("flight", "航班日期"),
        ("flight", "出行日期"),
        ("hospital", "出院日期"),
        ("hospital", "入院日期"),
        ("hospital", "discharge_date"),
        ("checkup", "体检日期"),
        ("border", "出入境日期"),
        ("app_auth", "认证时间"),
        ("unit_confirm", "确认日期"),
        ("overseas_review", "审核日期"),
        ("release", "释放日期"),
        ("death", "死亡日期"),
        ("cremation", "火化日期"),
        ("declared", "宣告日期"),
        ("sentence", "刑期起始日期"),
        ("sentence", "判决日期"),
    ],
)
def test_date_aliases_of_every_kind(tmp_path: Path, kind: str, date_label: str) -> None:
    extra = {
        "app_auth": ["认证结果"],
        "unit_confirm": ["确认结果"],
        "declared": ["宣告类型"],
        "sentence": ["刑罚种类"],
    }.get(kind, [])
    path = write_csv(
        tmp_path / f"{kind}.csv",
        [["公民身份号码", "姓名", date_label, *extra], [ID_A, "张三", "2026-03-05", *extra]],
    )
    raw = read_table(path, KINDS[kind].columns)
    assert raw.headers["event_date"] == date_label
    assert column(raw, "event_date") == ["2026-03-05"]


def test_first_alias_wins_when_both_dates_are_present(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "hospital.csv",
        [
            ["身份证号", "姓名", "入院日期", "出院日期", "医院名称"],
            [ID_A, "张三", "2026-01-02", "2026-01-20", "省人民医院"],
        ],
    )
    raw = read_table(path, KINDS["hospital"].columns)
    assert column(raw, "event_date") == ["2026-01-20"]


def test_decorated_headers_and_unknown_columns(tmp_path: Path) -> None:
    header = [
        "序号",
        " 个人编号 ",
        "*姓名",
        "＊身份证号\n（18位）",
        "单位 编号",
        "月养老金（元）",
        "联系电话:",
        "备注",
        "经办人",
    ]
    row = ["1", "P001", "张三", ID_A, "U01", "3,456.78", "13912345678", "无", "李四"]
    path = write_csv(tmp_path / "roster.csv", [header, row])
    raw = read_table(path, ROSTER_COLUMNS)
    assert set(raw.table.column_names) == {
        "_row",
        "person_no",
        "name",
        "id_number",
        "unit_no",
        "monthly_amount",
        "phone",
    }
    assert rows_of(raw) == [
        {
            "_row": 2,
            "person_no": "P001",
            "name": "张三",
            "id_number": ID_A,
            "unit_no": "U01",
            "monthly_amount": "3,456.78",
            "phone": "13912345678",
        }
    ]
    assert raw.headers["monthly_amount"] == "月养老金（元）"


def test_no_usable_header(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "rail_q1.csv",
        [["2026年第一季度铁路出行数据"], ["身份证号", "姓名", "车次"], [ID_A, "张三", "G1"]],
    )
    with pytest.raises(ReadError) as caught:
        read_table(path, RAIL)
    message = str(caught.value)
    assert message.startswith("rail_q1.csv: ")
    assert "乘车日期" in message  # names what it looked for


def test_header_below_the_search_window(tmp_path: Path) -> None:
    filler = [[f"说明第{i}行", "", ""] for i in range(30)]
    path = write_csv(
        tmp_path / "rail.csv", [*filler, ["身份证号", "姓名", "乘车日期"], [ID_A, "张三", "2026-03-05"]]
    )
    with pytest.raises(ReadError, match="first 30 rows"):
        read_table(path, RAIL)
    path = write_csv(
        tmp_path / "rail.csv", [*filler[:29], ["身份证号", "姓名", "乘车日期"], [ID_A, "张三", "2026-03-05"]]
    )
    assert read_table(path, RAIL).header_row == 30


@pytest.mark.parametrize("delimiter", ["\t", "|", ";"])
@pytest.mark.parametrize("suffix", [".csv", ".txt", ".tsv"])
def test_other_delimiters(tmp_path: Path, delimiter: str, suffix: str) -> None:
    rows = [
        ["铁路出行数据"],
        HEADER,
        [ID_A, "张三", "2026-03-05", "G601"],
        [ID_B, "李, 四", "2026/3/6", "D12"],
    ]
    path = write_csv(tmp_path / f"rail{suffix}", rows, delimiter=delimiter, encoding="gbk")
    raw = read_table(path, RAIL)
    assert column(raw, "name") == ["张三", "李, 四"]
    assert column(raw, "_row") == [3, 4]


def test_match_header_directly() -> None:
    first = Column("first", ("日期", "date"), required=True)
    second = Column("second", ("日期", "其他日期"))
    # A header cell serves one column only: the second column takes its next alias.
    assert match_header(["其他日期", "日期"], [first, second]) == {"first": 1, "second": 0}
    assert match_header(["日期"], [first, second]) == {"first": 0}
    assert match_header(["其他日期"], [first, second]) is None  # the required one is missing
    assert match_header([None, 3.5, " DATE "], [first]) == {"first": 2}


# ---------------------------------------------------------------------------------------------
# 3. Row numbers as a spreadsheet shows them
# ---------------------------------------------------------------------------------------------


def test_csv_blank_rows_skipped_but_counted(tmp_path: Path) -> None:
    text = (
        "铁路出行数据,,,\n"  # 1
        "\n"  # 2: blank line above the header
        "身份证号,姓名,乘车日期,车次\n"  # 3
        f"{ID_A},张三,2026-03-05,G1\n"  # 4
        "\n"  # 5
        ",,,\n"  # 6: only delimiters
        " ,\u3000,\t,\n"  # 7: only spaces
        f'{ID_B},"李\n四",2026-03-06,G2\n'  # 8 (one row, two lines)
        f"{ID_A},王五,2026-03-07,G3\n"  # 9
        "\n\n"  # empty lines that end the file: no rows at all
    )
    for newline in ("\n", "\r\n", "\r"):
        path = tmp_path / "rail.csv"
        path.write_bytes(text.replace("\n", newline).encode("utf-8"))
        raw = read_table(path, RAIL)
        assert raw.header_row == 3
        assert column(raw, "_row") == [4, 8, 9], repr(newline)
        assert column(raw, "name") == ["张三", f"李{newline}四", "王五"]
        assert raw.blank_rows == 3  # 5, 6 and 7
        assert raw.rows_read == 3


@pytest.mark.parametrize("end", ["\n\n", "\r\n\r\n\r\n", "\r\r", "\r\r\n", "\n\r", "\r\n\r", "\n\r\n\n"])
def test_empty_lines_that_end_a_csv_are_no_rows(tmp_path: Path, end: str) -> None:
    """After the last line with any character, empty lines — however their ends are written, a
    lone CR included — are no rows, not even blank ones, on the Arrow and the csv-module path
    alike (the evidence store's SQL path and native scan skip them too). An empty line between
    rows, and a line of only separators or spaces anywhere, is a blank row."""
    body = f"{ID_A},张三,x,2026-03-05\n\n,,,\n{ID_B},李四,y,2026-03-06"  # 2, 3 (empty), 4 (empty cells), 5
    for tail, blank in (("", 2), ("\n,,,", 3), ("\n,,,\n \u3000", 4)):
        text = body + tail + end
        slow = _tolerant_body(text, ",", POSITIONS, 2)
        assert (slow[0].column("_row").to_pylist(), slow[1]) == ([2, 5], blank)
        fast = _arrow_body(text, ",", POSITIONS, 2)
        assert fast == slow if tail != "\n,,,\n \u3000" else fast is None  # one cell: ragged
        path = tmp_path / "rail.csv"
        path.write_bytes(("身份证号,姓名,备注,乘车日期\r\n" + text).encode())
        raw = read_table(path, RAIL)
        assert (column(raw, "_row"), raw.blank_rows, raw.rows_read) == ([2, 5], blank, 2)


def test_csv_ragged_rows(tmp_path: Path) -> None:
    text = (
        "身份证号,姓名,乘车日期,车次\n"
        f"{ID_A},张三,2026-03-05\n"  # one cell short: 车次 empty
        f"{ID_B},李四\n"  # two short: 乘车日期 empty too (a reject later, not lost here)
        f"{ID_A},王五,2026-03-07,G3,多余,更多\n"  # longer than the header: the extra cells ignored
        "\n"
        f"{ID_B},赵六,2026-03-08,G4\n"
    )
    path = tmp_path / "rail.csv"
    path.write_text(text, encoding="utf-8")
    raw = read_table(path, RAIL)
    assert rows_of(raw) == [
        {"_row": 2, "id_number": ID_A, "name": "张三", "event_date": "2026-03-05", "train_no": ""},
        {"_row": 3, "id_number": ID_B, "name": "李四", "event_date": "", "train_no": ""},
        {"_row": 4, "id_number": ID_A, "name": "王五", "event_date": "2026-03-07", "train_no": "G3"},
        {"_row": 6, "id_number": ID_B, "name": "赵六", "event_date": "2026-03-08", "train_no": "G4"},
    ]
    assert raw.blank_rows == 1


POSITIONS = {"id_number": 0, "name": 1, "event_date": 3}


def test_fast_path_is_taken_for_rectangular_text_and_agrees() -> None:
    body = f'{ID_A},张三,x,2026-03-05\n,,,\n{ID_B},"李\r\n四",y,2026-03-06\r\n\n{ID_A},"a ""q"" b",z,d\n'
    fast = _arrow_body(body, ",", POSITIONS, 5)
    assert fast is not None  # the C++ path really ran
    assert fast == _tolerant_body(body, ",", POSITIONS, 5)
    table, blank = fast
    assert table.column("_row").to_pylist() == [5, 7, 9]
    assert table.column("name").to_pylist() == ["张三", "李\r\n四", 'a "q" b']
    assert blank == 2


def test_fast_path_declines_ragged_text() -> None:
    assert _arrow_body(f"{ID_A},张三,x,2026-03-05\n{ID_B},李四\n", ",", POSITIONS, 2) is None
    assert _arrow_body(f"{ID_A},张三\n", ",", POSITIONS, 2) is None  # narrower than the header needs


CELL = st.text(
    alphabet=st.sampled_from([*"ab1 ,\"'\n\r\t|", "张", "\u3000", "\u00a0", "\ufeff", "\x1c"]), max_size=6
)


@st.composite
def csv_bodies(draw: st.DrawFn) -> str:
    """CSV text as exporters write it: quoted where needed, LF or CRLF, blank and ragged rows."""
    width = draw(st.integers(4, 6))
    ragged = draw(st.booleans())
    rows = draw(
        st.lists(
            st.lists(CELL, min_size=0 if ragged else width, max_size=width + 2 if ragged else width),
            max_size=8,
        )
    )
    buffer = io.StringIO()
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    if draw(st.booleans()):
        csv.writer(buffer, lineterminator=newline, quoting=csv.QUOTE_ALL).writerows(rows)
    else:
        csv.writer(buffer, lineterminator=newline).writerows(rows)
    return buffer.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(csv_bodies(), st.text(alphabet=st.sampled_from([*'a,"\n\r ', "张"]), max_size=40)))
@example('"ab"c,d,e,f\n')
@example('a"b,c,d,e\r\n\r\n')
@example("a,b,c,d\rx,y,z,w\r")
@example("\x1c,\u3000,\ufeff,\u00a0\n")
@example("\ufeff1,,,\n")
@example('a,b,c,"d\n\n')  # a quote left open: its line ends are the value's, not empty lines
@example("a,b,c,d\n,,,\n\r\n\r\r")
def test_fast_and_tolerant_paths_agree(body: str) -> None:
    """On any text the Arrow path accepts, it gives exactly the csv-module path's table."""
    fast = _arrow_body(body, ",", POSITIONS, 2)
    slow = _tolerant_body(body, ",", POSITIONS, 2)
    if fast is not None:
        assert fast[0].to_pylist() == slow[0].to_pylist()
        assert fast[1] == slow[1]
    assert slow[0].column("_row").to_pylist() == sorted(set(slow[0].column("_row").to_pylist()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_bodies(), st.integers(0, 3))
def test_read_csv_equals_the_tolerant_reading(
    tmp_path_factory: pytest.TempPathFactory, body: str, titles: int
) -> None:
    """A whole file (title rows, header, body) read by `read_table` as the csv module reads it."""
    header = "身份证号,姓名,备注,乘车日期\r\n"
    title = '"铁路出行数据\n2026年",,,\n' * titles
    path = tmp_path_factory.mktemp("csv") / "rail.csv"
    path.write_bytes((title + header + body).encode("utf-8"))
    raw = read_table(path, RAIL)
    table, blank = _tolerant_body(body, ",", POSITIONS, titles + 2)
    assert raw.header_row == titles + 1
    assert raw.table.to_pylist() == table.to_pylist()
    assert raw.blank_rows == blank


def test_xlsx_data_below_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "rail.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write_row(3, 1, HEADER)  # B4: three empty rows and an empty column A above/left
    sheet.write_row(4, 1, [ID_A, "张三", "2026-03-05", "G1"])  # row 5
    sheet.write_row(6, 1, [ID_B, "李四", "2026-03-06", "G2"])  # row 7 (row 6 blank)
    book.close()
    raw = read_table(path, RAIL)
    assert raw.header_row == 4
    assert column(raw, "_row") == [5, 7]
    assert raw.blank_rows == 1


def test_xlsx_by_openpyxl_data_below_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "rail.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["C2"] = "2026年第一季度铁路出行数据"
    sheet.merge_cells("C2:F2")
    for col, label in enumerate(HEADER, start=3):
        sheet.cell(row=5, column=col, value=label)
    for col, value in enumerate([ID_A, "张三", "2026-03-05", "G1"], start=3):
        sheet.cell(row=9, column=col, value=value)
    book.save(path)
    raw = read_table(path, RAIL)
    assert (raw.header_row, column(raw, "_row")) == (5, [9])
    assert raw.blank_rows == 3


def test_parquet_is_numbered_from_row_2(tmp_path: Path) -> None:
    path = tmp_path / "rail.parquet"
    table = pa.table(
        {
            "身份证号": [ID_A, None, ID_B, "  "],
            "姓名": ["张三", None, "李四", "\u3000"],
            "乘车日期": ["2026-03-05", None, "2026-03-06", ""],
        }
    )
    pq.write_table(table, path)
    raw = read_table(path, RAIL)
    assert (raw.format, raw.header_row) == ("parquet", 1)
    assert column(raw, "_row") == [2, 4]
    assert raw.blank_rows == 2


# ---------------------------------------------------------------------------------------------
# 4. Typed cells: Excel dates and numbers, XLS, Parquet types
# ---------------------------------------------------------------------------------------------


def naive(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A date-time as a spreadsheet holds it: no time zone."""
    return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001


ID15 = 110105491231002  # a 15-digit number typed into a numeric cell
PHONE = 13912345678


def _roster_rows() -> list[list[object]]:
    return [
        [
            "个人编号",
            "姓名",
            "身份证号",
            "单位编号",
            "联系电话",
            "月养老金（元）",
            "退休日期",
            "上次认证日期",
        ],
        ["P001", "张三", ID15, "U01", PHONE, 3456.78, date(2010, 5, 1), naive(2025, 6, 30, 9, 30, 15)],
        ["P002", "李四", ID_B, 1001, 3517654321, 2800, date(2012, 1, 31), naive(2025, 7, 1)],
    ]


EXPECTED_ROSTER = [
    {
        "_row": 3,
        "person_no": "P001",
        "name": "张三",
        "id_number": "110105491231002",
        "unit_no": "U01",
        "phone": "13912345678",
        "monthly_amount": "3456.78",
        "retirement_date": "2010-05-01",
        "last_certified_on": "2025-06-30 09:30:15",
    },
    {
        "_row": 4,
        "person_no": "P002",
        "name": "李四",
        "id_number": ID_B,
        "unit_no": "1001",
        "phone": "3517654321",
        "monthly_amount": "2800",
        "retirement_date": "2012-01-31",
        "last_certified_on": "2025-07-01",
    },
]


def test_xlsx_typed_cells_xlsxwriter(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    stamp = book.add_format({"num_format": "yyyy/m/d h:mm:ss"})
    sheet.write(0, 0, "待遇领取人员名册")
    for r, row in enumerate(_roster_rows(), start=1):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write_datetime(r, c, value, stamp)
            elif isinstance(value, date):
                sheet.write_datetime(r, c, naive(value.year, value.month, value.day), day)
            else:
                sheet.write(r, c, value)
    book.close()
    raw = read_table(path, ROSTER_COLUMNS)
    assert rows_of(raw) == EXPECTED_ROSTER


def test_xlsx_typed_cells_openpyxl(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["待遇领取人员名册"])
    for row in _roster_rows():
        sheet.append(row)
    book.save(path)
    raw = read_table(path, ROSTER_COLUMNS)
    assert rows_of(raw) == EXPECTED_ROSTER


def test_xls_typed_cells_xlwt(tmp_path: Path) -> None:
    path = tmp_path / "roster.xls"
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("名册")
    day = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    stamp = xlwt.easyxf(num_format_str="YYYY-MM-DD hh:mm:ss")
    sheet.write_merge(0, 0, 0, 7, "待遇领取人员名册")
    for r, row in enumerate(_roster_rows(), start=1):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write(r, c, value, stamp)
            elif isinstance(value, date):
                sheet.write(r, c, naive(value.year, value.month, value.day), day)
            else:
                sheet.write(r, c, value)
    book.save(str(path))
    assert path.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"  # a real Excel 97-2003 (OLE2) file
    raw = read_table(path, ROSTER_COLUMNS)
    assert raw.format == "xls"
    assert rows_of(raw) == EXPECTED_ROSTER


def test_xls_date_cell_without_date_format_is_a_serial(tmp_path: Path) -> None:
    # An agency that lost the cell format sends the serial day number; the SQL turns it into a day.
    path = tmp_path / "rail.xls"
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("s")
    for c, label in enumerate(["身份证号", "姓名", "乘车日期"]):
        sheet.write(0, c, label)
    sheet.write(1, 0, ID_A)
    sheet.write(1, 1, "张三")
    sheet.write(1, 2, 46086)
    book.save(str(path))
    assert column(read_table(path, RAIL), "event_date") == ["46086"]


def test_parquet_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "roster.parquet"
    table = pa.table(
        {
            "个人编号": pa.array(["P001", "P002", "P003"]),
            "姓名": pa.array(["张三", "李四", None]),
            "身份证号": pa.array([ID15, 440524188001010014 // 10, None], pa.int64()),
            "单位编号": pa.array([1, 2, 3], pa.int32()),
            "联系电话": pa.array([13912345678.0, float("nan"), None], pa.float64()),
            "月养老金": pa.array([3456.78, 2800.0, None], pa.float64()),
            "退休日期": pa.array([date(2010, 5, 1), None, date(2012, 1, 31)], pa.date32()),
            "上次认证日期": pa.array([naive(2025, 6, 30, 9, 30), None, naive(2025, 7, 1)], pa.timestamp("s")),
            "健康状况": pa.array(["良好", None, None], pa.dictionary(pa.int8(), pa.string())),
        }
    )
    pq.write_table(table, path)
    raw = read_table(path, ROSTER_COLUMNS)
    rows = rows_of(raw)
    assert [r["_row"] for r in rows] == [2, 3, 4]
    assert [r["id_number"] for r in rows] == ["110105491231002", "44052418800101001", ""]
    assert [r["unit_no"] for r in rows] == ["1", "2", "3"]
    assert [r["phone"] for r in rows] == ["13912345678", "", ""]  # NaN is an empty cell, not "nan"
    assert [r["monthly_amount"] for r in rows] == ["3456.78", "2800", ""]
    assert [r["retirement_date"] for r in rows] == ["2010-05-01", "", "2012-01-31"]
    assert str(rows[0]["last_certified_on"]).startswith("2025-06-30 09:30")
    assert str(rows[2]["last_certified_on"]).startswith("2025-07-01")
    assert [r["health"] for r in rows] == ["良好", "", ""]


# A death at 2026-06-01 03:00 China time, as an instant: 2026-05-31 19:00 UTC.
DEATH_UTC = naive(2026, 5, 31, 19)


def death_parquet(path: Path, values: pa.Array) -> Path:
    table = pa.table({"身份证号": [ID_A, ID_A], "姓名": ["张三", "张三"], "死亡日期": values})
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "Asia/Shanghai"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_a_parquet_timestamp_with_a_time_zone_is_taken_in_china_time(
    tmp_path: Path, unit: str, zone: str
) -> None:
    from datetime import UTC
    from zoneinfo import ZoneInfo

    instants = [
        DEATH_UTC.replace(tzinfo=UTC),
        datetime(2026, 6, 30, 16, 0, tzinfo=UTC),
    ]  # 07-01 00:00 in China
    values = pa.array([t.astimezone(ZoneInfo(zone)) for t in instants], pa.timestamp(unit, tz=zone))
    raw = read_table(death_parquet(tmp_path / "death.parquet", values), KINDS["death"].columns)
    assert [str(v)[:19] for v in column(raw, "event_date")] == ["2026-06-01 03:00:00", "2026-07-01 00:00:00"]


def test_without_the_zone_database_of_pyarrow_python_converts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.compute as pc

    def no_database(*args: object, **kwargs: object) -> None:
        raise pa.ArrowInvalid("Cannot locate timezone 'Asia/Shanghai'")

    monkeypatch.setattr(pc, "local_timestamp", no_database)
    values = pa.array([DEATH_UTC, None], pa.timestamp("us", tz="UTC"))
    raw = read_table(death_parquet(tmp_path / "death.parquet", values), KINDS["death"].columns)
    assert [str(v)[:19] for v in column(raw, "event_date")] == ["2026-06-01 03:00:00", ""]


def test_a_parquet_timestamp_without_a_zone_is_local_time_already(tmp_path: Path) -> None:
    values = pa.array([DEATH_UTC, naive(2026, 6, 1)], pa.timestamp("us"))
    raw = read_table(death_parquet(tmp_path / "death.parquet", values), KINDS["death"].columns)
    assert [str(v)[:19] for v in column(raw, "event_date")] == ["2026-05-31 19:00:00", "2026-06-01 00:00:00"]


def test_the_evidence_day_of_a_utc_timestamp_is_the_day_in_china(tmp_path: Path) -> None:
    import duckdb

    from zige.engine.store import EvidenceStore

    values = pa.array([DEATH_UTC, naive(2026, 6, 2, 1)], pa.timestamp("us", tz="UTC"))
    path = death_parquet(tmp_path / "death.parquet", values)
    estore, con = EvidenceStore(tmp_path / "store"), duckdb.connect()
    raw = read_table(path, KINDS["death"].columns)
    result = estore.ingest_table(
        con, raw=raw, kind=KINDS["death"], batch_id=1, tag="t", as_of=date(2026, 11, 30)
    )
    assert result.rows_used == 2
    stored = con.execute(f"SELECT event_date FROM ({estore.scan_sql()}) ORDER BY row_no").fetchall()
    assert stored == [(date(2026, 6, 1),), (date(2026, 6, 2),)]


def test_every_phone_alias_present_is_read() -> None:
    """联系电话 and 手机号码 both present: both are read (the staging picks the mobile, rules §2.6)."""
    from zige.engine.kinds import ROSTER_COLUMNS

    cells = ["个人编号", "姓名", "身份证号", "单位编号", "联系电话", "手机号码"]
    assert match_header(cells, ROSTER_COLUMNS) == {
        "person_no": 0, "name": 1, "id_number": 2, "unit_no": 3, "phone": 4, "phone_alt1": 5,
    }  # fmt: skip
    assert match_header(["手机号码", *cells[:4]], ROSTER_COLUMNS) == {
        "person_no": 1, "name": 2, "id_number": 3, "unit_no": 4, "phone": 0,
    }  # fmt: skip
