"""The two attachments of 晋社保局发〔2018〕40号 as Excel workbooks (spec §7).

* 附件1 《领取养老保险待遇资格待核实人员确认表》: one workbook per unit, pre-filled with every
  `pending` (待核实) and `review` (疑点核查) recipient of the unit. The unit fills the 确认
  columns by hand and sends the form back (notice 三(一)1), so those columns stay empty.
* 附件2 《外省户籍人员基本信息表》: one row per recipient whose ID number is from another
  province and who has no social-security card (notice 三(二)3).

Layout follows the official forms (reconstructed from the notice's attachments): the 附件 label
top-left, a bold merged title, the form's two-level header, a numbered 栏目 row under the header,
thin borders on the table and the signature footer. Every identifier (ID numbers, 个人编号,
单位编号, 行政区划 codes, phone numbers) is written as a TEXT cell with the text number format, so
Excel and WPS never turn an 18-digit ID into 1.40105E+17 or drop a leading zero.

Cost per row is constant: the formats are created once per workbook, each row is a fixed number
of `write_string` calls, and its height is estimated from the lengths of its wrapped cells.
No clock is read: the document's creation date is `as_of`, so the same input gives the same file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

__all__ = [
    "OUT_OF_PROVINCE_HEADERS",
    "OUT_OF_PROVINCE_SHEET",
    "OUT_OF_PROVINCE_TITLE",
    "PENDING_GROUPS",
    "PENDING_HEADERS",
    "PENDING_METHODS",
    "PENDING_METHOD_CHOICES",
    "PENDING_SHEET",
    "PENDING_TITLE",
    "PENDING_UNREACHABLE",
    "REASON_TEXT",
    "write_out_of_province_workbook",
    "write_pending_workbook",
]

PENDING_TITLE = "领取养老保险待遇资格待核实人员确认表"
PENDING_SHEET = "待核实人员确认表"
OUT_OF_PROVINCE_TITLE = "外省户籍人员基本信息表"
OUT_OF_PROVINCE_SHEET = "外省户籍人员基本信息表"

# Why the system sent a recipient to the unit (the 备注 column of 附件1).
REASON_TEXT: Mapping[str, str] = {
    "no_evidence": "认证期内无比对信息",
    "alive_after_death": "死亡信息后仍有生存信息，需核查",
    "alive_after_lost": "单位确认丧失资格后仍有生存信息，需核查",
    "alive_after_missing": "宣告失踪后仍有生存信息，需核查",
}

BODY_FONT = "宋体"
LABEL_FONT = "黑体"
BODY_SIZE = 10
TITLE_SIZE = 18

Align = Literal["center", "left"]


@dataclass(frozen=True)
class _Col:
    label: str  # the header text as the form spells it
    width: float  # Excel column width (characters of the default font)
    group: str = ""  # upper header cell shared by a run of columns; "" = spans both header rows
    align: Align = "center"
    wrap: bool = False  # long free text: wrapped, and counted in the row height
    display: str = ""  # the header text with line breaks, when the label needs them

    @property
    def shown(self) -> str:
        return self.display or self.label


_CONFIRMED = "经确认具备领取资格"
_LOST = "经确认丧失领取资格"

_PENDING_COLS: tuple[_Col, ...] = (
    _Col("序号", 5),
    _Col("个人编号", 12),
    _Col("姓名", 9),
    _Col("性别", 5),
    _Col("身份证号", 20.5),
    _Col("目前养老金发放状态", 10, display="目前养老金\n发放状态"),
    _Col("停发时间", 11),
    _Col("停发原因", 12, align="left", wrap=True),
    _Col("确认方式", 10, _CONFIRMED),
    _Col("现居住地", 20, _CONFIRMED, align="left", wrap=True),
    _Col("健康状况", 9, _CONFIRMED),
    _Col("丧失原因", 12, _LOST, align="left", wrap=True),
    _Col("丧失时间", 11, _LOST),
    _Col("备注", 40, align="left", wrap=True),
)

_OUT_COLS: tuple[_Col, ...] = (
    _Col("序号", 5),
    _Col("单位编号", 10),
    _Col("参保地行政区划", 9, display="参保地\n行政区划"),
    _Col("居住地行政区划", 9, display="居住地\n行政区划"),
    _Col("个人编号", 12),
    _Col("姓名", 8),
    _Col("性别", 5),
    _Col("民族", 6),
    _Col("出生日期", 11),
    _Col("社会保障号码", 20.5),
    _Col("政治面貌", 9),
    _Col("健康状况", 8),
    _Col("原工作单位", 16, align="left", wrap=True),
    _Col("离退休类别", 8, display="离退休\n类别"),
    _Col("退休日期", 11),
    _Col("户口所在地", 16, align="left", wrap=True),
    _Col("异地居住地址", 22, align="left", wrap=True),
    _Col("居住地邮编", 8, display="居住地\n邮编"),
    _Col("联系电话", 13),
)

PENDING_HEADERS: tuple[str, ...] = tuple(c.label for c in _PENDING_COLS)
# 确认方式 of 附件1: how the unit confirmed the person (the 经确认具备领取资格 group), or 无法联系 for
# a person the unit could not reach. The form's 确认方式 cells offer exactly these in a dropdown, and
# the upload (`zige.verification.services.form1_apply`) accepts nothing else.
PENDING_METHODS: tuple[str, ...] = ("上门走访", "视频", "电话", "来访")
PENDING_UNREACHABLE = "无法联系"
PENDING_METHOD_CHOICES: tuple[str, ...] = (*PENDING_METHODS, PENDING_UNREACHABLE)
PENDING_GROUPS: Mapping[str, tuple[str, ...]] = {
    g: tuple(c.label for c in _PENDING_COLS if c.group == g) for g in (_CONFIRMED, _LOST)
}
OUT_OF_PROVINCE_HEADERS: tuple[str, ...] = tuple(c.label for c in _OUT_COLS)

FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_REGION = re.compile(r"\d{6}")
_WIDE = re.compile(r"[^\x00-\x7f]")

_DATA_ROW_HEIGHT = 18.0  # points, one line of 10 pt text with room for the borders
_LINE_HEIGHT = 13.5  # points per extra wrapped line


# --------------------------------------------------------------------------- shared pieces


class _Formats:
    """Every format a form uses, created once per workbook (never per row or per cell)."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        def fmt(**props: Any) -> Format:
            base: dict[str, Any] = {"font_name": BODY_FONT, "font_size": BODY_SIZE, "valign": "vcenter"}
            base.update(props)
            return wb.add_format(base)

        cell = {"border": 1, "num_format": "@"}
        self.label = fmt(font_name=LABEL_FONT, font_size=12, align="left")
        self.title = fmt(font_size=TITLE_SIZE, bold=True, align="center")
        self.info = fmt(font_size=11, align="left")
        self.info_right = fmt(font_size=11, align="right")
        self.header = fmt(bold=True, align="center", text_wrap=True, border=1)
        self.index = fmt(font_size=9, align="center", border=1)
        self.number = fmt(align="center", border=1)
        self.center = fmt(align="center", **cell)
        self.left = fmt(align="left", indent=1, **cell)
        self.wrap = fmt(align="left", indent=1, text_wrap=True, **cell)
        # a value the form needs in a fixed shape that the roster did not give in that shape
        self.flag = fmt(align="center", bg_color="#FFFF99", **cell)
        self.footer = fmt(font_size=11, align="left")
        self.note = fmt(align="left", valign="top", text_wrap=True)

    def data(self, col: _Col) -> Format:
        if col.wrap:
            return self.wrap
        return self.center if col.align == "center" else self.left


def _text_width(text: str) -> int:
    """Display width in Excel character units: CJK and full-width characters count twice."""
    return len(text) + len(_WIDE.findall(text))


def _lines(text: str, width: float) -> int:
    usable = max(width - 3.0, 1.0)  # cell padding and the one-level indent
    return sum(max(1, math.ceil(_text_width(part) / usable)) for part in text.split("\n"))


def _row_height(cells: Sequence[tuple[str, float]]) -> float:
    lines = max((_lines(text, width) for text, width in cells if text), default=1)
    return _DATA_ROW_HEIGHT + (lines - 1) * _LINE_HEIGHT


def _new_workbook(path: Path, as_of: date, title: str) -> xlsxwriter.Workbook:
    wb = xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "in_memory": True,
        },
    )
    wb.set_properties(
        {
            "title": title,
            "subject": "领取养老保险待遇资格认证",
            "author": "zige",
            "created": datetime.combine(as_of, time(), tzinfo=UTC),
        }
    )
    return wb


def _setup_sheet(ws: Worksheet, cols: Sequence[_Col], header_top: int, first_data_row: int) -> None:
    for i, col in enumerate(cols):
        ws.set_column(i, i, col.width)
    ws.set_default_row(_DATA_ROW_HEIGHT)
    ws.freeze_panes(first_data_row, 0)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.7)
    ws.center_horizontally()
    ws.repeat_rows(header_top, first_data_row - 1)
    ws.set_footer("&C第 &P 页，共 &N 页")


def _write_title(ws: Worksheet, f: _Formats, ncols: int, label: str, title: str) -> None:
    ws.merge_range(0, 0, 0, 1, label, f.label)
    ws.set_row(0, 20)
    ws.merge_range(1, 0, 1, ncols - 1, title, f.title)
    ws.set_row(1, 36)


def _write_header(ws: Worksheet, f: _Formats, cols: Sequence[_Col], top: int) -> int:
    """The header (one row, or two where the form groups columns) and the 栏目 row under it.

    Returns the first data row.
    """
    two_level = any(c.group for c in cols)
    bottom = top + 1 if two_level else top
    i = 0
    while i < len(cols):
        col = cols[i]
        if not col.group:
            if two_level:
                ws.merge_range(top, i, bottom, i, col.shown, f.header)
            else:
                ws.write_string(top, i, col.shown, f.header)
            i += 1
            continue
        j = i
        while j + 1 < len(cols) and cols[j + 1].group == col.group:
            j += 1
        if j > i:
            ws.merge_range(top, i, top, j, col.group, f.header)
        else:
            ws.write_string(top, i, col.group, f.header)
        for k in range(i, j + 1):
            ws.write_string(bottom, k, cols[k].shown, f.header)
        i = j + 1
    if two_level:
        ws.set_row(top, 24)
        ws.set_row(bottom, 24)
    else:
        ws.set_row(top, 40)
    index = bottom + 1
    ws.write_string(index, 0, "栏目", f.index)
    for k in range(1, len(cols)):
        ws.write_number(index, k, k, f.index)
    ws.set_row(index, 16)
    return index + 1


def _write_line(ws: Worksheet, row: int, cells: Sequence[tuple[int, int, str]], fmt: Format) -> None:
    for first, last, text in cells:
        if last > first:
            ws.merge_range(row, first, row, last, text, fmt)
        else:
            ws.write_string(row, first, text, fmt)


def _text(row: Mapping[str, str], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


def _region_code(raw: str) -> str:
    """A 行政区划 code as text, repaired from full-width digits or a float's `.0` tail."""
    code = raw.strip().translate(FULLWIDTH_DIGITS)
    if code.endswith(".0"):
        code = code[:-2]
    return code


def _blank_date_line() -> str:
    return "填报时间：      年    月    日"


# --------------------------------------------------------------------------- 附件1


def _pending_remark(row: Mapping[str, str]) -> str:
    code = _text(row, "reason")
    try:
        reason = REASON_TEXT[code]
    except KeyError:
        raise ValueError(f"unknown reason code for 附件1 备注: {code!r}") from None
    lines = [reason]
    evidence = _text(row, "evidence").strip()
    if evidence:
        lines.append(evidence)
    roster = []
    address = _text(row, "address").strip()
    health = _text(row, "health").strip()
    if address:
        roster.append(f"居住地 {address}")
    if health:
        roster.append(f"健康状况 {health}")
    if roster:
        lines.append("名册登记：" + "；".join(roster))
    return "\n".join(lines)


def _method_dropdown(ws: Worksheet, first: int, last: int) -> None:
    """The 确认方式 cells of the data rows accept the values of `PENDING_METHOD_CHOICES` only."""
    column = PENDING_HEADERS.index("确认方式")
    choices = "、".join(PENDING_METHOD_CHOICES)
    ws.data_validation(
        first,
        column,
        last,
        column,
        {
            "validate": "list",
            "source": list(PENDING_METHOD_CHOICES),
            "input_title": "确认方式",
            "input_message": f"请从下拉列表选择：{choices}。联系不上本人的选“{PENDING_UNREACHABLE}”。",
            "error_type": "stop",
            "error_title": "确认方式",
            "error_message": f"确认方式只能选择：{choices}。",
        },
    )


def write_pending_workbook(
    path: Path,
    *,
    unit_no: str,
    unit_name: str,
    as_of: date,
    rows: Sequence[Mapping[str, str]],
) -> None:
    """Write 附件1 《领取养老保险待遇资格待核实人员确认表》 for one unit.

    One row per `pending`/`review` recipient. 目前养老金发放状态 comes from the roster (empty
    means 正常); 停发时间 and 停发原因 are filled only for a recipient who is not 正常, since a
    paid pension has no stop date. The two 经确认… groups are left empty for the unit. 备注
    holds the system's reason in Chinese, the evidence text, and the roster's address and health
    (to help the unit find the person; the 确认 columns are the unit's own finding). The 确认方式
    cells carry a dropdown of `PENDING_METHOD_CHOICES` (an Excel data validation).
    """
    cols = _PENDING_COLS
    width = {c.label: c.width for c in cols}
    ncols = len(cols)
    wb = _new_workbook(path, as_of, PENDING_TITLE)
    try:
        f = _Formats(wb)
        ws = wb.add_worksheet(PENDING_SHEET)
        _write_title(ws, f, ncols, "附件1", PENDING_TITLE)
        # Unit line: 单位名称（章） over the identity columns, 单位编号 in the middle, 年度 right.
        _write_line(
            ws,
            2,
            [(0, 6, f"单位名称（章）：{unit_name}"), (7, 10, f"单位编号：{unit_no}")],
            f.info,
        )
        _write_line(ws, 2, [(11, ncols - 1, f"年度：{as_of.year}")], f.info_right)
        ws.set_row(2, 22)
        first = _write_header(ws, f, cols, 3)
        _setup_sheet(ws, cols, 3, first)

        fmts = [f.data(c) for c in cols]
        fmt_center, fmt_wrap = f.center, f.wrap
        w_reason, w_remark = width["停发原因"], width["备注"]
        r = first
        for n, row in enumerate(rows, start=1):
            benefit = _text(row, "benefit_status").strip() or "正常"
            stopped = benefit != "正常"
            since = _text(row, "status_since") if stopped else ""
            stop_reason = _text(row, "status_reason") if stopped else ""
            remark = _pending_remark(row)
            ws.write_number(r, 0, n, f.number)
            ws.write_string(r, 1, row["person_no"], fmt_center)
            ws.write_string(r, 2, row["name"], fmt_center)
            ws.write_string(r, 3, _text(row, "sex"), fmt_center)
            ws.write_string(r, 4, row["id_number"], fmt_center)
            ws.write_string(r, 5, benefit, fmt_center)
            ws.write_string(r, 6, since, fmt_center)
            ws.write_string(r, 7, stop_reason, fmt_wrap)
            for k in range(8, 13):  # 确认方式 … 丧失时间: filled by the unit
                ws.write_blank(r, k, None, fmts[k])
            ws.write_string(r, 13, remark, fmt_wrap)
            height = _row_height([(stop_reason, w_reason), (remark, w_remark)])
            if height != _DATA_ROW_HEIGHT:
                ws.set_row(r, height)
            r += 1
        if r > first:
            _method_dropdown(ws, first, r - 1)

        r += 1  # one empty line between the table and the signatures
        spans = [(0, 4), (5, 9), (10, ncols - 1)]
        texts = ["核实人：", "联系电话：", _blank_date_line()]
        _write_line(ws, r, [(a, b, t) for (a, b), t in zip(spans, texts, strict=True)], f.footer)
        ws.set_row(r, 24)
    finally:
        wb.close()


# --------------------------------------------------------------------------- 附件2


def write_out_of_province_workbook(
    path: Path,
    *,
    as_of: date,
    insured_region_code: str,
    rows: Sequence[Mapping[str, str]],
) -> None:
    """Write 附件2 《外省户籍人员基本信息表》, one row per person.

    参保地行政区划 is `insured_region_code` on every row; 居住地行政区划 is the row's
    `residence_region`. Both are written as 6-character text cells; a residence code that is
    not six digits (after removing full-width digits or a `.0` tail) is kept as given and
    highlighted for the unit to correct. 居住地邮编 is taken from an optional `postcode` key.
    """
    insured = _region_code(insured_region_code)
    if not _REGION.fullmatch(insured):
        raise ValueError(f"insured_region_code must be a 6-digit 行政区划 code, got {insured_region_code!r}")
    cols = _OUT_COLS
    width = {c.label: c.width for c in cols}
    ncols = len(cols)
    wb = _new_workbook(path, as_of, OUT_OF_PROVINCE_TITLE)
    try:
        f = _Formats(wb)
        ws = wb.add_worksheet(OUT_OF_PROVINCE_SHEET)
        _write_title(ws, f, ncols, "附件2", OUT_OF_PROVINCE_TITLE)
        _write_line(
            ws,
            2,
            [(ncols - 5, ncols - 1, f"数据截至：{as_of.year}年{as_of.month}月{as_of.day}日")],
            f.info_right,
        )
        ws.set_row(2, 20)
        first = _write_header(ws, f, cols, 3)
        _setup_sheet(ws, cols, 3, first)

        center, wrap, flag = f.center, f.wrap, f.flag
        w_employer, w_hukou, w_address = width["原工作单位"], width["户口所在地"], width["异地居住地址"]
        r = first
        for n, row in enumerate(rows, start=1):
            residence = _region_code(_text(row, "residence_region"))
            employer = _text(row, "former_employer")
            hukou = _text(row, "hukou")
            address = _text(row, "address")
            ws.write_number(r, 0, n, f.number)
            ws.write_string(r, 1, _text(row, "unit_no"), center)
            ws.write_string(r, 2, insured, center)
            ws.write_string(
                r, 3, residence, center if not residence or _REGION.fullmatch(residence) else flag
            )
            ws.write_string(r, 4, row["person_no"], center)
            ws.write_string(r, 5, row["name"], center)
            ws.write_string(r, 6, _text(row, "sex"), center)
            ws.write_string(r, 7, _text(row, "ethnicity"), center)
            ws.write_string(r, 8, _text(row, "birth_date"), center)
            ws.write_string(r, 9, row["id_number"], center)
            ws.write_string(r, 10, _text(row, "political_status"), center)
            ws.write_string(r, 11, _text(row, "health"), center)
            ws.write_string(r, 12, employer, wrap)
            ws.write_string(r, 13, _text(row, "retirement_category"), center)
            ws.write_string(r, 14, _text(row, "retirement_date"), center)
            ws.write_string(r, 15, hukou, wrap)
            ws.write_string(r, 16, address, wrap)
            ws.write_string(r, 17, _text(row, "postcode"), center)
            ws.write_string(r, 18, _text(row, "phone"), center)
            height = _row_height([(employer, w_employer), (hukou, w_hukou), (address, w_address)])
            if height != _DATA_ROW_HEIGHT:
                ws.set_row(r, height)
            r += 1

        r += 1
        spans = [(0, 5), (6, 9), (10, 13), (14, ncols - 1)]
        texts = ["填报部门：", "填报人：", "联系电话：", _blank_date_line()]
        _write_line(ws, r, [(a, b, t) for (a, b), t in zip(spans, texts, strict=True)], f.footer)
        ws.set_row(r, 24)
        notes = (
            "说明：",
            "1、此表可以电子版上报。",
            "2、第2栏、第3栏必须使用《全国行政区划代码》中规定的6位数字代码；"
            f"第2栏（参保地）统一为{insured}。",
            "3、系统已按待遇领取人员名册预填，请逐项核对，空白栏目据实补填；"
            "底色标黄的居住地行政区划不是6位数字代码，请更正。",
        )
        r += 2
        for line in notes:
            ws.merge_range(r, 0, r, ncols - 1, line, f.note)
            r += 1
    finally:
        wb.close()
