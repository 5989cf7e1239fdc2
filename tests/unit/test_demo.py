"""The synthetic province (zige.demo): deterministic, and as messy and as realistic as promised.

The files are read back here with a small reader of their own (not the engine's), and the
recipients are classified with a compact reading of spec §2, to check that every status and
reason occurs, in shares a province would have.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook

from zige.calendar import add_months
from zige.demo import XLSX_MAX_ROWS, DemoProvince, generate_province
from zige.engine.kinds import (
    BUILTIN_KINDS,
    ID_ALIASES,
    LOSS_KINDS,
    ROSTER_COLUMNS,
    FeedKind,
    builtin_kind_codes,
    kind_for_filename,
    normalise_header,
)
from zige.ids import IdError, birth_date_of, normalise_id, sex_of
from zige.regions import PROVINCES, REGIONS, SHANXI_ABOLISHED

AS_OF = date(2026, 3, 31)
N = 2000
KINDS = {k.code: k for k in BUILTIN_KINDS}


# ---------------------------------------------------------------------------------------------
# A small reader, independent of the engine's


def decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("gb18030"), "gb18030"


def read_rows(path: Path) -> list[list[Any]]:
    if path.suffix == ".csv":
        text, _ = decode(path.read_bytes())
        return list(csv.reader(io.StringIO(text, newline="")))
    if path.suffix in (".xlsx", ".xls"):
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        return [list(r) for r in sheet.to_python(skip_empty_area=False)]
    table = pq.read_table(path)
    return [table.column_names, *[list(r.values()) for r in table.to_pylist()]]


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a 15-digit ID typed into Excel as a number
    return str(value)


def header_index(rows: list[list[Any]]) -> int:
    """The first row that holds an ID column (spec §5: title rows come first)."""
    wanted = {normalise_header(a) for a in ID_ALIASES}
    return next(i for i, row in enumerate(rows) if wanted & {normalise_header(c) for c in row})


def column_positions(header: list[Any], kind: FeedKind) -> dict[str, int]:
    """Each column of the kind at its first alias found (aliases are most specific first)."""
    labels = [normalise_header(c) for c in header]
    found: dict[str, int] = {}
    for column in kind.columns:
        for alias in column.aliases:
            if normalise_header(alias) in labels:
                found[column.name] = labels.index(normalise_header(alias))
                break
    return found


_DATES = (
    ("iso", re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")),
    ("datetime", re.compile(r"^(\d{4})-(\d{2})-(\d{2}) \d{2}:\d{2}:\d{2}$")),
    ("slash", re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")),
    ("slash_time", re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2}) \d{1,2}:\d{2}$")),
    ("compact", re.compile(r"^(\d{4})(\d{2})(\d{2})$")),
    ("cn", re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")),
    ("dot", re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")),
)


def date_style(value: str) -> str | None:
    return next((name for name, pattern in _DATES if pattern.match(value)), None)


def parse_date(value: Any) -> date | None:
    """A date, or None for an empty, malformed or impossible one."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    for _, pattern in _DATES:
        m = pattern.match(str(value).strip())
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


@dataclass
class Record:
    kind: str
    day: date
    values: dict[str, str]
    file: str


@dataclass
class FeedFile:
    path: Path
    kind: str
    rows: list[list[Any]]  # everything, title rows included
    header_at: int
    columns: dict[str, int]

    def data(self) -> Iterator[list[Any]]:
        for row in self.rows[self.header_at + 1 :]:
            if any(text(c).strip() for c in row):
                yield row


@dataclass
class Province:
    result: DemoProvince
    roster_rows: list[list[str]]  # everything, title rows included
    roster_header_at: int
    feeds: list[FeedFile]

    @property
    def roster_header(self) -> list[str]:
        return self.roster_rows[self.roster_header_at]

    def roster_data(self) -> list[dict[str, str]]:
        header = self.roster_header
        return [dict(zip(header, row, strict=True)) for row in self.roster_rows[self.roster_header_at + 1 :]]

    def records(self) -> dict[str, list[Record]]:
        """Usable feed records by normalised ID (rows with a bad ID or date left out)."""
        found: dict[str, list[Record]] = defaultdict(list)
        for feed in self.feeds:
            for row in feed.data():
                try:
                    idn = normalise_id(text(row[feed.columns["id_number"]]), as_of=AS_OF)
                except IdError:
                    continue
                day = parse_date(row[feed.columns["event_date"]])
                if day is None:
                    continue
                values = {name: text(row[i]) for name, i in feed.columns.items()}
                found[idn].append(Record(feed.kind, day, values, feed.path.name))
        return found


def load(result: DemoProvince) -> Province:
    roster_rows = read_rows(result.roster)
    feeds = []
    for path in sorted(result.feeds.iterdir()):
        kind = kind_for_filename(path.name, BUILTIN_KINDS)
        assert kind is not None, path.name
        rows = read_rows(path)
        at = header_index(rows)
        feeds.append(FeedFile(path, kind.code, rows, at, column_positions(rows[at], kind)))
    return Province(result, roster_rows, header_index(roster_rows), feeds)


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Province:
    return load(generate_province(tmp_path_factory.mktemp("demo"), recipients=N, as_of=AS_OF))


# ---------------------------------------------------------------------------------------------
# Determinism and the returned paths


def _contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path, province: Province) -> None:
    again = generate_province(tmp_path / "again", recipients=N, as_of=AS_OF)
    first_root = province.result.roster.parent
    assert _contents(tmp_path / "again") == _contents(first_root)
    assert [p.relative_to(tmp_path / "again") for p in again.files] == [
        p.relative_to(first_root) for p in province.result.files
    ]


def test_another_seed_writes_another_province(tmp_path: Path, province: Province) -> None:
    generate_province(tmp_path, recipients=N, as_of=AS_OF, seed=7)
    other = _contents(tmp_path)
    first = _contents(province.result.roster.parent)
    assert other["roster.csv"] != first["roster.csv"]
    assert sum(other.get(name) == data for name, data in first.items()) == 0


def test_the_paths_returned_are_the_files_written(province: Province) -> None:
    result = province.result
    root = result.roster.parent
    assert result.roster == root / "roster.csv"
    assert result.feeds == root / "feeds"
    assert set(result.files) == {p for p in root.rglob("*") if p.is_file()}
    assert result.recipients == N


def test_a_second_run_replaces_stale_feeds_and_keeps_other_files(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "rail_1999q1.csv").write_text("身份证号,姓名,乘车日期\n", encoding="utf-8")
    (feeds / "README.txt").write_text("notes", encoding="utf-8")
    result = generate_province(tmp_path, recipients=150, as_of=AS_OF)
    assert not (feeds / "rail_1999q1.csv").exists()
    assert (feeds / "README.txt").exists()
    assert (feeds / "README.txt") not in result.files


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipients": 99}, "at least 100"),
        ({"home_province": "99"}, "99"),
        ({"home_province": "1"}, "2-digit"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_province(tmp_path, as_of=AS_OF, **{"recipients": 500, **kwargs})


def test_another_as_of_day_and_home_province(tmp_path: Path) -> None:
    result = generate_province(tmp_path, recipients=300, as_of=date(2024, 2, 29), home_province="41")
    rows = read_rows(result.roster)
    assert rows[0][0].startswith("河南省2024年")
    at = header_index(rows)
    ids = [
        normalise_id(r[2], as_of=date(2024, 2, 29)) for r in rows[at + 1 :] if _valid(r[2], date(2024, 2, 29))
    ]
    assert sum(i.startswith("41") for i in ids) > 0.8 * len(ids)


def _valid(raw: str, as_of: date = AS_OF) -> bool:
    try:
        normalise_id(raw, as_of=as_of)
    except IdError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The roster


def test_roster_is_gb18030_and_not_utf8(province: Province) -> None:
    data = province.result.roster.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert "姓名" in data.decode("gb18030")


def test_roster_has_title_rows_then_the_full_header(province: Province) -> None:
    rows = province.roster_rows
    assert rows[0][0] == "山西省2026年养老保险待遇领取人员名册"
    assert province.roster_header_at == 2
    labels = {normalise_header(c) for c in province.roster_header}
    for column in ROSTER_COLUMNS:  # every column of spec §4, required and optional
        assert labels & {normalise_header(a) for a in column.aliases}, column.name


def test_roster_holds_exactly_the_recipients_asked_for(province: Province) -> None:
    status = Counter(row["待遇状态"] for row in province.roster_data())
    assert status["正常"] + status["暂停"] + status[""] == N
    assert 0.93 * N < status["正常"] < 0.98 * N
    assert 0.02 * N < status["暂停"] < 0.045 * N
    assert 0.005 * N < status["终止"] < 0.02 * N
    assert 1 <= status[""] <= 10  # empty means 正常
    assert set(status) == {"正常", "暂停", "终止", ""}


def test_roster_ids_are_valid_except_the_deliberately_broken(province: Province) -> None:
    reasons: Counter[str] = Counter()
    for row in province.roster_data():
        try:
            normalise_id(row["身份证号"], as_of=AS_OF)
        except IdError as error:
            reasons[error.reason] += 1
    assert set(reasons) == {"bad_id_checksum", "missing_value"}
    assert 2 <= reasons["bad_id_checksum"] <= 4
    assert reasons["missing_value"] == 1


def test_roster_ids_come_in_every_form_spec_5_allows(province: Province) -> None:
    raw = [row["身份证号"] for row in province.roster_data()]
    assert sum(len(r) == 15 and r.isdigit() for r in raw) >= 0.004 * N
    assert any(r.endswith("x") for r in raw)
    assert any("１" in r or "４" in r for r in raw)
    assert any(r.startswith("'") for r in raw)
    assert any(r != r.strip() or " " in r for r in raw)
    # Most are plain: the quirks stay quirks.
    assert sum(len(r) == 18 and r[:17].isdigit() for r in raw) > 0.97 * len(raw)


def test_roster_sex_and_birth_date_agree_with_the_id(province: Province) -> None:
    checked = 0
    for row in province.roster_data():
        if not _valid(row["身份证号"]):
            continue
        id18 = normalise_id(row["身份证号"], as_of=AS_OF)
        assert row["性别"] == sex_of(id18)
        born = birth_date_of(id18)
        assert row["出生日期"] == born.isoformat()
        assert 1926 <= born.year <= 1966
        retired = parse_date(row["退休日期"])
        assert retired is not None and born < retired <= AS_OF
        assert 50 <= (retired - born).days / 365.25 <= 61
        checked += 1
    assert checked > 0.99 * N


def test_roster_ids_carry_real_region_codes_some_from_other_provinces(province: Province) -> None:
    known = {r.code for r in REGIONS}
    abolished = {r.code for r in SHANXI_ABOLISHED}
    ids = [normalise_id(r["身份证号"], as_of=AS_OF) for r in province.roster_data() if _valid(r["身份证号"])]
    assert {i[:6] for i in ids} <= known
    away = [i for i in ids if not i.startswith("14")]
    assert 0.03 * len(ids) < len(away) < 0.08 * len(ids)
    assert {i[:2] for i in away} <= set(PROVINCES)
    assert len({i[:2] for i in away}) >= 5
    assert sum(i[:6] in abolished for i in ids) > 0.01 * len(ids)
    assert len({i for i in ids if i[:6] in ("142201", "142301")}) >= 1


def test_out_of_province_people_without_a_social_security_card(province: Province) -> None:
    rows = [r for r in province.roster_data() if _valid(r["身份证号"])]
    away = [r for r in rows if not normalise_id(r["身份证号"], as_of=AS_OF).startswith("14")]
    no_card = [r for r in away if r["是否办理社保卡"] == "否"]
    assert 0.2 * len(away) < len(no_card) < 0.8 * len(away)
    home = [r for r in rows if normalise_id(r["身份证号"], as_of=AS_OF).startswith("14")]
    assert sum(r["是否办理社保卡"] == "是" for r in home) > 0.95 * len(home)


def test_roster_values_look_like_a_pension_roster(province: Province) -> None:
    rows = [r for r in province.roster_data() if r["待遇状态"] != "终止"]
    amounts = [float(r["月养老金（元）"]) for r in rows]
    assert all(re.fullmatch(r"\d+\.\d{2}", r["月养老金（元）"]) for r in rows)
    assert sum(2000 <= a <= 6000 for a in amounts) > 0.98 * len(amounts)
    phones = Counter(
        "empty"
        if not p
        else "mobile"
        if re.fullmatch(r"1[3-9]\d{9}", p)
        else "landline"
        if "-" in p[:5]
        else "other"
        for p in (r["联系电话"] for r in rows)
    )
    assert 0.7 * len(rows) < phones["mobile"] < 0.85 * len(rows)
    assert 0.1 * len(rows) < phones["empty"] < 0.2 * len(rows)
    assert phones["landline"] > 0.03 * len(rows)
    assert {r["离退休类别"] for r in rows} <= {"退休", "离休", "退职"}
    assert Counter(r["离退休类别"] for r in rows)["退休"] > 0.95 * len(rows)
    assert all(re.fullmatch(r"\d{6}", r["居住地行政区划"]) for r in rows)
    assert all(re.fullmatch(r"\d{11}", r["单位编号"]) for r in rows if r["单位编号"])
    units = {r["单位编号"] for r in rows if r["单位编号"]}
    assert 3 <= len(units) <= N / 100
    names = [r["姓名"].strip() for r in rows if r["姓名"].strip()]
    assert sum(2 <= len(n) <= 3 for n in names) > 0.97 * len(names)
    assert any(" " in n for n in names)
    suspended = [r for r in rows if r["待遇状态"] == "暂停"]
    assert all(r["停发原因"] for r in suspended)
    assert 0.7 * len(suspended) < sum(bool(r["状态变更日期"]) for r in suspended) < len(suspended)


def test_roster_rows_that_must_be_rejected(province: Province) -> None:
    data = province.roster_data()
    rows = [tuple(r.values()) for r in data]
    assert max(Counter(rows).values()) == 2  # an exact duplicate row
    by_person: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    by_id: dict[str, set[str]] = defaultdict(set)
    for row, values in zip(data, rows, strict=True):
        if row["个人编号"]:
            by_person[row["个人编号"]].add(values)
        if _valid(row["身份证号"]):
            by_id[normalise_id(row["身份证号"], as_of=AS_OF)].add(row["个人编号"])
    assert sum(len(v) > 1 for v in by_person.values()) >= 1  # one 个人编号, rows that differ
    assert sum(len(v) > 1 for v in by_id.values()) >= 1  # one ID, two 个人编号 (重复领取)
    required = ("个人编号", "姓名", "身份证号", "单位编号")
    assert all(any(not r[c].strip() for r in data) for c in required)  # each required value missing once
    certified = [r["上次认证日期"] for r in data if r["上次认证日期"]]
    assert any(parse_date(c) is None for c in certified)  # 2026-02-30
    assert {date_style(c) for c in certified} >= {"iso", "slash", "compact", "cn", "dot"} - {None}


# ---------------------------------------------------------------------------------------------
# The feeds


def test_every_builtin_kind_has_files(province: Province) -> None:
    assert {f.kind for f in province.feeds} == set(builtin_kind_codes())
    suffixes = Counter(f.path.suffix for f in province.feeds)
    assert suffixes[".xlsx"] >= 2 and suffixes[".parquet"] >= 1 and suffixes[".csv"] >= 20


def test_every_feed_has_the_columns_its_kind_needs(province: Province) -> None:
    for feed in province.feeds:
        required = {c.name for c in KINDS[feed.kind].columns if c.required}
        assert required <= set(feed.columns), feed.path.name


def test_feed_csv_encodings_vary(province: Province) -> None:
    encodings = Counter(decode(f.path.read_bytes())[1] for f in province.feeds if f.path.suffix == ".csv")
    assert encodings["utf-8"] >= 3 and encodings["utf-8-sig"] >= 3 and encodings["gb18030"] >= 3


def test_feed_headers_chinese_english_aliases_and_extras(province: Province) -> None:
    headers = [{text(c) for c in f.rows[f.header_at]} for f in province.feeds]
    every = set().union(*headers)
    assert {"公民身份号码", "证件号码", "社会保障号码", "出行日期", "判决日期", "入院日期"} <= every
    assert sum("id_number" in h for h in headers) >= 3
    assert sum("身份证号" in h for h in headers) >= 5
    known = {normalise_header(a) for k in BUILTIN_KINDS for c in k.columns for a in c.aliases}
    assert {h for h in every if normalise_header(h) not in known} >= {"序号", "席别", "注销日期", "备注"}
    assert sum(f.header_at > 0 for f in province.feeds) >= 5  # title rows above the header


def test_feed_dates_come_in_every_format(province: Province) -> None:
    styles: Counter[str | None] = Counter()
    cells = 0
    for feed in province.feeds:
        for row in feed.data():
            value = row[feed.columns["event_date"]]
            if isinstance(value, datetime | date):
                styles["cell"] += 1
            elif feed.path.suffix == ".csv":
                styles[date_style(text(value))] += 1
            cells += 1
    assert {"iso", "datetime", "slash", "slash_time", "compact", "cn", "dot", "cell"} <= set(styles)
    bad = [
        text(row[f.columns["event_date"]])
        for f in province.feeds
        for row in f.data()
        if parse_date(row[f.columns["event_date"]]) is None
    ]
    assert any(b and date_style(b) for b in bad)  # impossible days (2025-02-30)
    assert all(not b or date_style(b) for b in bad)  # or missing ones
    assert len(bad) < 0.002 * cells


def test_feed_ids_carry_the_quirks_of_spec_5_and_a_few_bad_ones(province: Province) -> None:
    raw = [text(row[f.columns["id_number"]]) for f in province.feeds for row in f.data()]
    forms: Counter[str] = Counter()
    for r in raw:
        if len(r) == 15 and r.isdigit():
            forms["15"] += 1
        elif r.endswith("x"):
            forms["x"] += 1
        elif "１" in r or "４" in r:
            forms["fullwidth"] += 1
        elif r.startswith("'"):
            forms["apostrophe"] += 1
        elif r != r.strip() or " " in r:
            forms["spaces"] += 1
    assert min(forms[k] for k in ("15", "x", "fullwidth", "apostrophe", "spaces")) >= 3
    reasons: Counter[str] = Counter()
    for r in raw:
        try:
            normalise_id(r, as_of=AS_OF)
        except IdError as error:
            reasons[error.reason] += 1
    assert set(reasons) <= {"bad_id_checksum", "missing_value"}
    assert reasons["bad_id_checksum"] >= 1
    assert 2 <= sum(reasons.values()) < 0.002 * len(raw)
    missing_dates = sum(not text(row[f.columns["event_date"]]) for f in province.feeds for row in f.data())
    assert reasons["missing_value"] + missing_dates >= 1


def test_feed_duplicates_within_and_across_files_and_blank_lines(province: Province) -> None:
    within = 0
    across: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
    for feed in province.feeds:
        kind = KINDS[feed.kind]
        others = [c.name for c in kind.columns if c.name not in ("id_number", "name", "event_date")]
        seen: Counter[tuple[Any, ...]] = Counter()
        for row in feed.data():
            try:
                idn = normalise_id(text(row[feed.columns["id_number"]]), as_of=AS_OF)
            except IdError:
                continue
            day = parse_date(row[feed.columns["event_date"]])
            key = (idn, day, *(text(row[feed.columns[c]]) for c in others if c in feed.columns))
            seen[key] += 1
        within += sum(n - 1 for n in seen.values())
        across[feed.kind].update(seen.keys())
    assert within >= 10
    assert sum(n > 1 for n in across["rail"].values()) >= 1  # a week re-sent in the next quarter's file
    blank = 0
    for feed in province.feeds:
        if feed.path.suffix == ".csv":
            blank += sum(not any(c.strip() for c in row) for row in feed.rows[feed.header_at + 1 :])
    assert blank >= 2


def test_xlsx_feeds_have_a_merged_title_and_real_date_cells(province: Province) -> None:
    workbooks = [f for f in province.feeds if f.path.suffix == ".xlsx"]
    for feed in workbooks:
        sheet = openpyxl.load_workbook(feed.path).active
        assert sheet is not None
        assert [str(r) for r in sheet.merged_cells.ranges] == [f"A1:{chr(64 + sheet.max_column)}1"]
        dates = [row[feed.columns["event_date"]] for row in feed.data()]
        assert sum(isinstance(d, datetime | date) for d in dates) > 0.9 * len(dates)
        assert sheet.max_row <= XLSX_MAX_ROWS + 2
    numeric_ids = [
        row[f.columns["id_number"]]
        for f in workbooks
        for row in f.data()
        if isinstance(row[f.columns["id_number"]], float | int)
    ]
    assert all(len(text(i)) == 15 for i in numeric_ids)


def test_parquet_feed_has_typed_columns(province: Province) -> None:
    (feed,) = [f for f in province.feeds if f.path.suffix == ".parquet"]
    schema = pq.read_schema(feed.path)
    assert str(schema.field("认证时间").type).startswith("timestamp")
    assert str(schema.field("相似度").type) == "double"
    assert len(feed.rows) > 100


def test_records_after_the_as_of_day_and_people_off_the_roster(province: Province) -> None:
    roster = {
        normalise_id(r["身份证号"], as_of=AS_OF) for r in province.roster_data() if _valid(r["身份证号"])
    }
    records = province.records()
    every = [r for rs in records.values() for r in rs]
    after = [r for r in every if r.day > AS_OF]
    assert 0.01 * len(every) < len(after) < 0.08 * len(every)
    assert {r.kind for r in after} >= {"rail", "app_auth", "death"}
    off = sum(len(rs) for idn, rs in records.items() if idn not in roster)
    assert 0.15 * len(every) < off < 0.45 * len(every)
    on = len(every) - off
    assert 2.5 * N < on < 5 * N  # 3-5 rows per recipient, give or take


# ---------------------------------------------------------------------------------------------
# Realistic proportions: a compact reading of spec §2


ALIVE = {"rail", "flight", "hospital", "checkup", "border", "overseas_review", "release"}
CUSTODIAL = ("有期徒刑", "无期徒刑", "拘役", "死刑")
NON_CUSTODIAL = ("缓刑", "管制", "监外执行")


def _alive(r: Record) -> bool:
    if r.kind in ALIVE:
        return True
    if r.kind in ("app_auth", "terminal_auth"):
        return r.values["result"] in ("成功", "pass")
    return r.kind == "unit_confirm" and r.values["result"] == "具备资格"


def _loss(r: Record) -> str | None:
    if r.kind in ("death", "cremation"):
        return r.kind
    if r.kind == "declared" and r.values["declared_type"] == "宣告死亡":
        return "declared_dead"
    if r.kind == "unit_confirm" and r.values["result"] == "丧失资格":
        return "unit_confirmed_lost"
    return None


def classify(row: dict[str, str], records: list[Record]) -> tuple[str, str, bool]:
    """(status, reason, remind) of one recipient."""
    records = [r for r in records if r.day <= AS_OF]
    alive = [r.day for r in records if _alive(r)]
    losses = sorted((r.day, LOSS_KINDS.index(why)) for r in records if (why := _loss(r)))
    missing = sorted(
        r.day for r in records if r.kind == "declared" and r.values["declared_type"] == "宣告失踪"
    )
    if losses:
        x, why = losses[0][0], LOSS_KINDS[losses[0][1]]
        if any(d > x for d in alive):
            return (
                "review",
                "alive_after_lost" if why == "unit_confirmed_lost" else "alive_after_death",
                False,
            )
    if missing and any(d > missing[0] for d in alive):
        return "review", "alive_after_missing", False
    if losses:
        return "stop", LOSS_KINDS[losses[0][1]], False
    releases = [r.day for r in records if r.kind == "release"]
    for r in records:
        penalty = r.values.get("penalty", "")
        if r.kind == "sentence" and any(p in penalty for p in CUSTODIAL):
            if any(m in penalty for m in NON_CUSTODIAL) or any(r.day <= d for d in releases):
                continue
            end = parse_date(r.values.get("end_date", ""))
            if end is None or end >= AS_OF:
                return "suspend", "imprisoned", False
    if missing:
        return "suspend", "declared_missing", False
    for r in records:
        if (
            r.kind == "unit_confirm"
            and r.values["result"] == "无法联系"
            and not any(d > r.day for d in alive)
        ):
            return "suspend", "unreachable", False
    rank = {k.code: k.rank for k in BUILTIN_KINDS}
    candidates = [(r.day, -rank[r.kind], r.kind) for r in records if _alive(r)]
    certified = parse_date(row["上次认证日期"])
    if certified and certified <= AS_OF:
        candidates.append((certified, -100, "last_certified"))
    if not candidates:
        retired = parse_date(row["退休日期"])
        candidates = [(retired, 0, "retirement")] if retired else []
    if not candidates:
        return "pending", "no_evidence", False
    day, _, reason = max(candidates)
    due = add_months(day, 12)
    if due <= AS_OF:
        return "pending", "no_evidence", False
    return "eligible", reason, due <= add_months(AS_OF, 3)


@pytest.fixture(scope="module")
def outcomes(province: Province) -> list[tuple[str, str, bool]]:
    records = province.records()
    rows = [
        r for r in province.roster_data() if r["待遇状态"] in ("正常", "暂停", "") and _valid(r["身份证号"])
    ]
    ids = Counter(normalise_id(r["身份证号"], as_of=AS_OF) for r in rows)
    result = []
    for row in rows:
        idn = normalise_id(row["身份证号"], as_of=AS_OF)
        if ids[idn] == 1:
            result.append(classify(row, records.get(idn, [])))
    return result


def test_every_status_and_reason_of_spec_2_occurs(outcomes: list[tuple[str, str, bool]]) -> None:
    reasons = {(status, reason) for status, reason, _ in outcomes}
    expected = {
        ("review", "alive_after_death"),
        ("review", "alive_after_lost"),
        ("review", "alive_after_missing"),
        ("stop", "death"),
        ("stop", "cremation"),
        ("stop", "declared_dead"),
        ("stop", "unit_confirmed_lost"),
        ("suspend", "imprisoned"),
        ("suspend", "declared_missing"),
        ("suspend", "unreachable"),
        ("eligible", "last_certified"),
        ("eligible", "retirement"),
        ("pending", "no_evidence"),
    } | {("eligible", k.code) for k in BUILTIN_KINDS if k.alive != "none"}
    assert expected <= reasons


def test_statuses_come_in_the_shares_of_a_province(outcomes: list[tuple[str, str, bool]]) -> None:
    n = len(outcomes)
    status = Counter(s for s, _, _ in outcomes)
    assert 0.83 * n < status["eligible"] < 0.92 * n
    assert 0.06 * n < status["pending"] < 0.11 * n
    assert 0.012 * n < status["stop"] < 0.035 * n
    assert 0.003 * n < status["suspend"] < 0.02 * n
    assert 0 < status["review"] < 0.006 * n
    reminded = sum(remind for _, _, remind in outcomes)
    assert 0.04 * n < reminded < 0.09 * n
    eligible = Counter(r for s, r, _ in outcomes if s == "eligible")
    for kind in ("rail", "checkup", "app_auth", "hospital"):  # what old people mostly leave behind
        assert eligible[kind] > 0.08 * n, kind
