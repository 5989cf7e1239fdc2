"""The two attachments of 晋社保局发〔2018〕40号 written as xlsx (zige.engine.forms), read back with openpyxl."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from zige.engine.forms import write_out_of_province_workbook, write_pending_workbook

AS_OF = date(2026, 3, 31)

# Written out here, not taken from the module, so a change to the form shows up as a failure.
PENDING_HEADER = [
    "序号",
    "个人编号",
    "姓名",
    "性别",
    "身份证号",
    "目前养老金发放状态",
    "停发时间",
    "停发原因",
    "确认方式",
    "现居住地",
    "健康状况",
    "丧失原因",
    "丧失时间",
    "备注",
]
OUT_HEADER = [
    "序号",
    "单位编号",
    "参保地行政区划",
    "居住地行政区划",
    "个人编号",
    "姓名",
    "性别",
    "民族",
    "出生日期",
    "社会保障号码",
    "政治面貌",
    "健康状况",
    "原工作单位",
    "离退休类别",
    "退休日期",
    "户口所在地",
    "异地居住地址",
    "居住地邮编",
    "联系电话",
]
PENDING_FIRST_DATA_ROW = 7  # 附件 label, title, unit line, two header rows, 栏目 row
OUT_FIRST_DATA_ROW = 6  # 附件 label, title, 数据截至 line, one header row, 栏目 row


def pending_row(i: int, **over: str) -> dict[str, str]:
    row = {
        "person_no": f"0140{i:08d}",
        "name": f"王建{i}",
        "sex": "男" if i % 2 else "女",
        "id_number": "14010519480301100X" if i % 2 else "140105194803021114",
        "benefit_status": "正常",
        "status_since": "",
        "status_reason": "",
        "address": "太原市小店区坞城路街道学府街社区",
        "health": "良好",
        "status": "pending",
        "reason": "no_evidence",
        "evidence": "",
    }
    row.update(over)
    return row


def out_row(i: int, **over: str) -> dict[str, str]:
    row = {
        "unit_no": "14000123",
        "residence_region": "110105",
        "person_no": f"0140{i:08d}",
        "name": f"李秀{i}",
        "sex": "女",
        "ethnicity": "汉族",
        "birth_date": "1950-02-15",
        "id_number": "110105195002151313",
        "political_status": "群众",
        "health": "良好",
        "former_employer": "山西省地质勘查局第二一二地质队",
        "retirement_category": "退休",
        "retirement_date": "2010-02-01",
        "hukou": "北京市朝阳区",
        "address": "河北省石家庄市长安区中山东路128号3单元502室",
        "phone": "13812340001",
    }
    row.update(over)
    return row


def write_pending(tmp_path: Path, rows: list[dict[str, str]], **kw: Any) -> Worksheet:
    path = tmp_path / "pending.xlsx"
    args: dict[str, Any] = {
        "unit_no": "14000123",
        "unit_name": "山西省地质勘查局第二一二地质队",
        "as_of": AS_OF,
    }
    args.update(kw)
    write_pending_workbook(path, rows=rows, **args)
    return openpyxl.load_workbook(path).active


def write_out(tmp_path: Path, rows: list[dict[str, str]], code: str = "140000") -> Worksheet:
    path = tmp_path / "out.xlsx"
    write_out_of_province_workbook(path, as_of=AS_OF, insured_region_code=code, rows=rows)
    return openpyxl.load_workbook(path).active


def header_labels(ws: Worksheet, top: int, bottom: int, ncols: int) -> list[str]:
    """The label each column carries: the lower header cell where there is one, else the upper."""
    labels = []
    for c in range(1, ncols + 1):
        value = ws.cell(bottom, c).value or ws.cell(top, c).value
        labels.append(str(value).replace("\n", ""))
    return labels


def data_rows(ws: Worksheet, first: int) -> list[tuple[Any, ...]]:
    """Rows under the header whose 序号 is a number (the footer and notes are not)."""
    rows = []
    for row in ws.iter_rows(min_row=first, values_only=True):
        if isinstance(row[0], int):
            rows.append(row)
    return rows


def merged(ws: Worksheet) -> set[str]:
    return {str(r) for r in ws.merged_cells.ranges}


def column_widths(ws: Worksheet) -> dict[str, float]:
    """Width of every column that has one; adjacent equal columns share one <col min max> entry."""
    widths: dict[str, float] = {}
    for dim in ws.column_dimensions.values():
        if dim.customWidth and dim.width:
            for i in range(dim.min, dim.max + 1):
                widths[get_column_letter(i)] = dim.width
    return widths


# --------------------------------------------------------------------------- 附件1


def test_pending_title_unit_and_label(tmp_path: Path) -> None:
    ws = write_pending(tmp_path, [pending_row(1)])
    assert ws.title == "待核实人员确认表"
    assert ws["A1"].value == "附件1"
    assert ws["A2"].value == "领取养老保险待遇资格待核实人员确认表"
    assert "A2:N2" in merged(ws)  # the title spans the whole table
    assert ws["A2"].font.b is True
    assert ws["A2"].font.sz is not None and ws["A2"].font.sz > ws["A7"].font.sz
    unit_line = " ".join(str(v) for v in next(ws.iter_rows(min_row=3, max_row=3, values_only=True)) if v)
    assert "单位名称（章）：山西省地质勘查局第二一二地质队" in unit_line
    assert "单位编号：14000123" in unit_line
    assert "年度：2026" in unit_line


def test_pending_two_level_header(tmp_path: Path) -> None:
    ws = write_pending(tmp_path, [pending_row(1)])
    assert header_labels(ws, 4, 5, 14) == PENDING_HEADER
    assert ws["I4"].value == "经确认具备领取资格"
    assert ws["L4"].value == "经确认丧失领取资格"
    spans = merged(ws)
    assert {"I4:K4", "L4:M4"} <= spans  # group cells over their columns
    assert {"A4:A5", "E4:E5", "N4:N5"} <= spans  # ungrouped columns span both header rows
    assert [ws.cell(6, c).value for c in range(1, 15)] == ["栏目", *range(1, 14)]
    assert ws.max_column == 14


def test_pending_freeze_print_and_widths(tmp_path: Path) -> None:
    ws = write_pending(tmp_path, [pending_row(1)])
    assert ws.freeze_panes == f"A{PENDING_FIRST_DATA_ROW}"
    assert ws.print_title_rows == "$4:$6"
    setup = ws.page_setup
    assert setup.orientation == "landscape"
    assert int(setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert setup.fitToWidth in (None, 1)  # absent means 1 page wide
    assert int(setup.fitToHeight) == 0  # as many pages tall as needed
    widths = column_widths(ws)
    assert set(widths) == set("ABCDEFGHIJKLMN")
    assert widths["E"] >= 19  # 18 digits of the 身份证号
    assert widths["N"] >= 30  # 备注 carries sentences
    assert widths["A"] < widths["B"]


def test_pending_cells_are_text_with_borders(tmp_path: Path) -> None:
    rows = [pending_row(1), pending_row(2), pending_row(3, id_number="140105194803021114")]
    ws = write_pending(tmp_path, rows)
    got = data_rows(ws, PENDING_FIRST_DATA_ROW)
    assert len(got) == 3
    for offset, row in enumerate(rows):
        r = PENDING_FIRST_DATA_ROW + offset
        id_cell = ws.cell(r, 5)
        assert id_cell.data_type == "s"
        assert id_cell.value == row["id_number"]
        assert id_cell.number_format == "@"
        person = ws.cell(r, 2)
        assert person.data_type == "s" and person.value == row["person_no"]  # leading zero kept
        assert ws.cell(r, 1).value == offset + 1
        for c in range(1, 15):
            assert ws.cell(r, c).border.left.style == "thin", (r, c)
            assert ws.cell(r, c).border.bottom.style == "thin", (r, c)


def test_pending_roster_status_and_empty_confirmation(tmp_path: Path) -> None:
    rows = [
        pending_row(1),
        pending_row(2, benefit_status="暂停", status_since="2025-09-01", status_reason="长期无法联系"),
        pending_row(3, benefit_status="", status_since="2024-01-01", status_reason="恢复发放"),
    ]
    ws = write_pending(tmp_path, rows)
    r = PENDING_FIRST_DATA_ROW
    assert [ws.cell(r, c).value or "" for c in (6, 7, 8)] == ["正常", "", ""]
    assert [ws.cell(r + 1, c).value for c in (6, 7, 8)] == ["暂停", "2025-09-01", "长期无法联系"]
    # empty 待遇状态 means 正常 (spec §4); a paid pension has no 停发时间
    assert [ws.cell(r + 2, c).value or "" for c in (6, 7, 8)] == ["正常", "", ""]
    for rr in range(r, r + 3):
        for c in range(9, 14):  # 确认方式 … 丧失时间: the unit fills these
            assert not ws.cell(rr, c).value
            assert ws.cell(rr, c).border.top.style == "thin"


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("no_evidence", "认证期内无比对信息"),
        ("alive_after_death", "死亡信息后仍有生存信息，需核查"),
        ("alive_after_lost", "单位确认丧失资格后仍有生存信息，需核查"),
        ("alive_after_missing", "宣告失踪后仍有生存信息，需核查"),
    ],
)
def test_pending_remark_in_chinese(tmp_path: Path, code: str, text: str) -> None:
    evidence = "2026-01-12 死亡（公安）；2026-02-03 铁路出行" if code != "no_evidence" else ""
    status = "pending" if code == "no_evidence" else "review"
    ws = write_pending(tmp_path, [pending_row(1, reason=code, status=status, evidence=evidence)])
    remark = ws.cell(PENDING_FIRST_DATA_ROW, 14).value
    assert isinstance(remark, str)
    assert remark.splitlines()[0] == text
    assert code not in remark
    if evidence:
        assert evidence in remark
    assert "太原市小店区坞城路街道学府街社区" in remark  # the roster address helps the unit find the person


def test_pending_method_cells_offer_the_accepted_methods_only(tmp_path: Path) -> None:
    """确认方式 is a dropdown of the values the upload accepts (an Excel list validation that
    stops any other entry); the other columns are free."""
    ws = write_pending(tmp_path, [pending_row(1), pending_row(2), pending_row(3)])
    validations = ws.data_validations.dataValidation
    assert len(validations) == 1
    dv = validations[0]
    first, last = PENDING_FIRST_DATA_ROW, PENDING_FIRST_DATA_ROW + 2
    assert str(dv.sqref) == f"I{first}:I{last}"  # 确认方式, column 9, every data row
    assert (dv.type, dv.showErrorMessage) == ("list", True)
    assert dv.errorStyle in (None, "stop")  # absent is Excel's default, stop
    assert dv.formula1 == '"上门走访,视频,电话,来访,无法联系"'
    assert "无法联系" in (dv.prompt or "")
    assert not write_pending(tmp_path, []).data_validations.dataValidation  # no rows, no dropdown


def test_pending_long_remark_gets_a_taller_row(tmp_path: Path) -> None:
    long = "；".join(["2026-02-03 铁路出行 K603 太原—大同"] * 4)
    ws = write_pending(tmp_path, [pending_row(1), pending_row(2, reason="alive_after_death", evidence=long)])
    short_h = ws.row_dimensions[PENDING_FIRST_DATA_ROW].height
    long_h = ws.row_dimensions[PENDING_FIRST_DATA_ROW + 1].height
    assert long_h is not None
    assert short_h is None or long_h > short_h
    assert ws.cell(PENDING_FIRST_DATA_ROW + 1, 14).alignment.wrap_text is True


def test_pending_unknown_reason_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bogus"):
        write_pending(tmp_path, [pending_row(1, reason="bogus")])


def test_pending_zero_rows_is_header_and_footer_only(tmp_path: Path) -> None:
    ws = write_pending(tmp_path, [])
    assert ws["A2"].value == "领取养老保险待遇资格待核实人员确认表"
    assert header_labels(ws, 4, 5, 14) == PENDING_HEADER
    assert ws.freeze_panes == f"A{PENDING_FIRST_DATA_ROW}"
    assert data_rows(ws, PENDING_FIRST_DATA_ROW) == []
    footer = [ws.cell(PENDING_FIRST_DATA_ROW + 1, c).value for c in range(1, 15)]
    assert "核实人：" in footer and "联系电话：" in footer
    assert any(isinstance(v, str) and v.startswith("填报时间：") for v in footer)


def test_pending_footer_under_the_last_row(tmp_path: Path) -> None:
    ws = write_pending(tmp_path, [pending_row(i) for i in range(1, 51)])
    assert len(data_rows(ws, PENDING_FIRST_DATA_ROW)) == 50
    assert ws.cell(PENDING_FIRST_DATA_ROW + 51, 1).value == "核实人："


def test_pending_text_is_never_a_formula(tmp_path: Path) -> None:
    ws = write_pending(tmp_path, [pending_row(1, name="=HYPERLINK(1)", person_no="1.4E+05")])
    assert ws.cell(PENDING_FIRST_DATA_ROW, 3).value == "=HYPERLINK(1)"
    assert ws.cell(PENDING_FIRST_DATA_ROW, 3).data_type == "s"
    assert ws.cell(PENDING_FIRST_DATA_ROW, 2).value == "1.4E+05"


def test_pending_same_input_same_bytes(tmp_path: Path) -> None:
    rows = [pending_row(i) for i in range(1, 20)]
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    for p in (a, b):
        write_pending_workbook(p, unit_no="1", unit_name="单位", as_of=AS_OF, rows=rows)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_pending_many_rows(tmp_path: Path) -> None:
    rows = [pending_row(i) for i in range(1, 3001)]
    ws = write_pending(tmp_path, rows)
    got = data_rows(ws, PENDING_FIRST_DATA_ROW)
    assert len(got) == 3000
    assert [r[0] for r in got[:3]] == [1, 2, 3] and got[-1][0] == 3000
    assert got[-1][4] == rows[-1]["id_number"]


# --------------------------------------------------------------------------- 附件2


def test_out_title_header_and_layout(tmp_path: Path) -> None:
    ws = write_out(tmp_path, [out_row(1)])
    assert ws.title == "外省户籍人员基本信息表"
    assert ws["A1"].value == "附件2"
    assert ws["A2"].value == "外省户籍人员基本信息表"
    assert "A2:S2" in merged(ws)
    assert ws["A2"].font.b is True
    assert header_labels(ws, 4, 4, 19) == OUT_HEADER
    assert [ws.cell(5, c).value for c in range(1, 20)] == ["栏目", *range(1, 19)]
    assert ws.freeze_panes == f"A{OUT_FIRST_DATA_ROW}"
    assert ws.print_title_rows == "$4:$5"
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == 9
    widths = column_widths(ws)
    assert set(widths) == {get_column_letter(i) for i in range(1, 20)}
    assert widths["J"] >= 19  # 社会保障号码
    assert widths["Q"] > widths["G"]  # 异地居住地址 wider than 性别


def test_out_region_codes_and_ids_are_text(tmp_path: Path) -> None:
    rows = [out_row(1), out_row(2, residence_region="130102", id_number="13010219500215131X")]
    ws = write_out(tmp_path, rows)
    got = data_rows(ws, OUT_FIRST_DATA_ROW)
    assert len(got) == 2
    for offset, row in enumerate(rows):
        r = OUT_FIRST_DATA_ROW + offset
        for c, want in ((3, "140000"), (4, row["residence_region"])):
            cell = ws.cell(r, c)
            assert cell.data_type == "s" and isinstance(cell.value, str)
            assert len(cell.value) == 6 and cell.value == want
            assert cell.number_format == "@"
        id_cell = ws.cell(r, 10)
        assert id_cell.data_type == "s" and id_cell.value == row["id_number"]
        assert ws.cell(r, 19).value == row["phone"] and ws.cell(r, 19).data_type == "s"
        assert ws.cell(r, 2).value == "14000123"
        assert ws.cell(r, 5).value == row["person_no"]
        assert ws.cell(r, 13).value == "山西省地质勘查局第二一二地质队"
        assert ws.cell(r, 17).value == row["address"]


def test_out_region_repairs_and_flags(tmp_path: Path) -> None:
    rows = [
        out_row(1, residence_region=""),
        out_row(2, residence_region="１１０１０５"),  # full-width digits
        out_row(3, residence_region="110105.0"),  # a float that went through a spreadsheet
        out_row(4, residence_region="北京"),  # not a code: kept, highlighted for the unit
    ]
    ws = write_out(tmp_path, rows, code="140000.0")
    r = OUT_FIRST_DATA_ROW
    assert ws.cell(r, 3).value == "140000"
    assert not ws.cell(r, 4).value
    assert ws.cell(r + 1, 4).value == "110105"
    assert ws.cell(r + 2, 4).value == "110105"
    assert ws.cell(r + 3, 4).value == "北京"
    assert ws.cell(r + 3, 4).fill.fgColor.rgb != ws.cell(r + 2, 4).fill.fgColor.rgb


@pytest.mark.parametrize("code", ["14", "1400000", "", "abcdef"])
def test_out_bad_insured_code_is_an_error(tmp_path: Path, code: str) -> None:
    with pytest.raises(ValueError, match="insured_region_code"):
        write_out(tmp_path, [out_row(1)], code=code)


def test_out_zero_rows_and_notes(tmp_path: Path) -> None:
    ws = write_out(tmp_path, [])
    assert header_labels(ws, 4, 4, 19) == OUT_HEADER
    assert data_rows(ws, OUT_FIRST_DATA_ROW) == []
    texts = [v for row in ws.iter_rows(min_row=OUT_FIRST_DATA_ROW, values_only=True) for v in row if v]
    assert {"填报部门：", "填报人：", "联系电话："} <= set(texts)
    notes = "".join(str(t) for t in texts)
    assert "说明" in notes and "6位数字代码" in notes and "140000" in notes


def test_out_optional_postcode(tmp_path: Path) -> None:
    rows: list[Mapping[str, str]] = [out_row(1), {**out_row(2), "postcode": "050000"}]
    path = tmp_path / "o.xlsx"
    write_out_of_province_workbook(path, as_of=AS_OF, insured_region_code="140000", rows=rows)
    ws = openpyxl.load_workbook(path).active
    assert not ws.cell(OUT_FIRST_DATA_ROW, 18).value
    assert ws.cell(OUT_FIRST_DATA_ROW + 1, 18).value == "050000"
