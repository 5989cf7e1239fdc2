"""The normalisation SQL (zige.engine.sql) run in DuckDB against the pure-Python rules (spec §5).

ID numbers and mobile numbers have a Python twin in `zige.ids`; the tests hold the two together
on fixed cases written out here and on generated strings. Dates have no Python twin in the
package, so the tests carry their own small reference for the formats of spec §5.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zige.engine import sql
from zige.ids import IdError, check_digit, normalise_id, normalise_mobile

AS_OF = date(2026, 3, 31)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# One connection for the whole module: connecting costs more than a query over a few strings.
CON = duckdb.connect()


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return CON


def run_sql(con: duckdb.DuckDBPyConnection, select: str, values: Sequence[str | None]) -> list[Any]:
    """`select` (over the column `v`) for every value, in order, in one query."""
    table = pa.table({"i": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, pa.string())})
    con.register("t", table)
    try:
        return [row[1] for row in con.execute(f"SELECT i, {select} FROM t ORDER BY i").fetchall()]
    finally:
        con.unregister("t")


ID_SELECT = (
    "id18, "
    + sql.id_reason_sql("id_clean", "id18", AS_OF)
    + f" FROM (SELECT i, id_clean, {sql.id18_sql('id_clean')} AS id18"
    + f" FROM (SELECT i, {sql.clean_id_sql('v')} AS id_clean FROM t))"
)


def sql_ids(
    con: duckdb.DuckDBPyConnection, values: Sequence[str | None]
) -> list[tuple[str | None, str | None]]:
    """(18-character ID, None) for a usable ID, (whatever, reason) otherwise — as the staging does."""
    table = pa.table({"i": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, pa.string())})
    con.register("t", table)
    try:
        rows = con.execute(f"SELECT i, {ID_SELECT} ORDER BY i").fetchall()
    finally:
        con.unregister("t")
    return [(id18 if reason is None else None, reason) for _, id18, reason in rows]


def python_id(raw: str | None) -> tuple[str | None, str | None]:
    try:
        return normalise_id(raw, as_of=AS_OF), None
    except IdError as exc:
        return None, exc.reason


def make_id(region: str, born: date, seq: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


# ---------------------------------------------------------------------------------------------
# ID numbers (spec §5, §6)
# ---------------------------------------------------------------------------------------------

# A valid number whose check character is X, written out so a wrong weight table shows up.
VALID_X = "11010519491231002X"


def _impossible_birth(yyyymmdd: str) -> str:
    """A number with a correct check character around the given birth date."""
    first17 = f"140105{yyyymmdd}001"
    return first17 + check_digit(first17)


ID_CASES: list[tuple[str | None, str | None, str | None]] = [
    # raw, expected 18-character form, expected reason
    (VALID_X, VALID_X, None),
    ("11010519491231002x", VALID_X, None),  # lowercase x
    ("１１０１０５１９４９１２３１００２Ｘ", VALID_X, None),  # full-width digits and X
    ("１１０１０５１９４９１２３１００２ｘ", VALID_X, None),
    (" 110105 19491231 002X ", VALID_X, None),  # spaces
    ("110105\u300019491231002X", VALID_X, None),  # full-width space
    ("110105\u00a019491231002X", VALID_X, None),  # no-break space (copied from a web page)
    ("'11010519491231002X", VALID_X, None),  # Excel text marker
    ("‘11010519491231002X", VALID_X, None),  # the same after an editor "smartened" the quote
    ("\t11010519491231002X\r\n", VALID_X, None),
    # 15 digits: insert 19 and compute the check character (GB 11643)
    ("110105491231002", VALID_X, None),
    ("１１０１０５４９１２３１００２", VALID_X, None),
    # a region code that no longer exists (山西 忻州地区 142201, abolished 2000) is still an ID
    (make_id("142201", date(1952, 7, 1), 17), make_id("142201", date(1952, 7, 1), 17), None),
    ("142201520701017", make_id("142201", date(1952, 7, 1), 17), None),
    # bad ones
    ("110105194912310021", None, "bad_id_checksum"),
    ("11010519491231002", None, "bad_id_format"),  # 17 digits
    ("1101051949123100", None, "bad_id_format"),  # 16
    ("11010519491231002X1", None, "bad_id_format"),  # 19
    ("11010549123100X", None, "bad_id_format"),  # X in a 15-digit number
    ("1101051949123100X2", None, "bad_id_format"),  # X not last
    ("1101O519491231002X", None, "bad_id_format"),  # letter O for zero
    ("110105-19491231-002X", None, "bad_id_format"),
    (_impossible_birth("19500230"), None, "bad_id_birth_date"),  # 30 February
    ("", None, "missing_value"),
    ("   ", None, "missing_value"),
    (None, None, "missing_value"),
]


ID_CASES += [
    (_impossible_birth("19491301"), None, "bad_id_birth_date"),  # month 13
    (_impossible_birth("19490001"), None, "bad_id_birth_date"),  # month 0
    (_impossible_birth("19490100"), None, "bad_id_birth_date"),  # day 0
    (_impossible_birth("19000229"), None, "bad_id_birth_date"),  # 1900 was not a leap year
    (_impossible_birth("18891231"), None, "bad_id_birth_date"),  # before 1890
    (_impossible_birth("20260401"), None, "bad_id_birth_date"),  # born after the as-of date
    (_impossible_birth("20000229"), _impossible_birth("20000229"), None),  # 2000 was
    (_impossible_birth("20260331"), _impossible_birth("20260331"), None),  # born on the as-of date
    ("110105491331002", None, "bad_id_birth_date"),  # 15-digit, month 13
]


def test_the_check_digit_is_gb11643() -> None:
    # Written-out examples: a wrong weight or check-character table fails here first.
    assert check_digit("11010519491231002") == "X"
    assert check_digit("44052418800101001") == "4"
    assert check_digit("14010519500101123") == "X"  # weighted sum 145, 145 % 11 = 2 -> X


@pytest.mark.parametrize(("raw", "id18", "reason"), ID_CASES)
def test_id_cases_in_python(raw: str | None, id18: str | None, reason: str | None) -> None:
    assert python_id(raw) == (id18, reason)


def test_id_cases_in_sql(con: duckdb.DuckDBPyConnection) -> None:
    raws = [raw for raw, _, _ in ID_CASES]
    assert sql_ids(con, raws) == [(id18, reason) for _, id18, reason in ID_CASES]


# Characters that real ID cells carry: digits, X/x in both widths, the spaces and quote marks
# that clean_id removes, a few letters and punctuation that make a number invalid.
ID_NOISE = st.sampled_from([" ", "\u3000", "\u00a0", "'", "‘", "’", "`", "\t", "\r", "\n"])
ID_CHARS = st.sampled_from([*"0123456789xX０１２３４５６７８９ｘＸ-/OoI.,", " ", "\u3000", "'"])


@st.composite
def id_like(draw: st.DrawFn) -> str:
    """Mostly near-valid ID numbers (valid, 15-digit, one digit changed, noise inserted), some junk."""
    shape = draw(st.sampled_from(["valid", "valid15", "mutated", "junk"]))
    if shape == "junk":
        return "".join(draw(st.lists(ID_CHARS, max_size=22)))
    born = draw(st.dates(min_value=date(1880, 1, 1), max_value=date(2030, 12, 31)))
    region = draw(st.sampled_from(["140105", "142201", "110105", "440524", "000000"]))
    seq = draw(st.integers(0, 999))
    text = make_id(region, born, seq)
    if shape == "valid15":
        text = text[:6] + text[8:17]
    if shape == "mutated":
        pos = draw(st.integers(0, len(text) - 1))
        text = text[:pos] + draw(st.sampled_from(list("0123456789X"))) + text[pos + 1 :]
    if draw(st.booleans()):
        text = text.lower()
    if draw(st.booleans()):  # full-width, as some systems export
        text = text.translate(str.maketrans("0123456789xX", "０１２３４５６７８９ｘＸ"))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(ID_NOISE) + text[pos:]
    return text


@PROPERTY
@given(st.lists(id_like(), min_size=1, max_size=30))
def test_id_sql_matches_python(raws: list[str]) -> None:
    assert sql_ids(CON, raws) == [python_id(raw) for raw in raws]


@pytest.mark.parametrize(
    "raw",
    [
        "1101051949123100٢X",  # ARABIC-INDIC DIGIT TWO: Python accepts a non-ASCII ID
        "11010519491231002²",  # SUPERSCRIPT TWO: isdigit() is True, int() raises ValueError
        "110105\u200319491231002X",  # EM SPACE: Python strips it, the SQL does not
        "110105\u000b19491231002X",  # vertical tab: Python's \s has it, RE2's \s does not
    ],
)
def test_id_python_and_sql_agree_outside_ascii(raw: str) -> None:
    assert python_id(raw) == sql_ids(CON, [raw])[0]


# ---------------------------------------------------------------------------------------------
# Dates (spec §5): every format, impossible days, Excel serial numbers
# ---------------------------------------------------------------------------------------------

DAY = date(2026, 3, 5)
DATE_CASES: list[tuple[str | None, date | None]] = [
    ("2026-03-05", DAY),
    ("2026-3-5", DAY),
    ("2026/3/5", DAY),
    ("2026/03/05", DAY),
    ("20260305", DAY),
    ("2026年3月5日", DAY),
    ("2026年03月05日", DAY),
    ("2026.03.05", DAY),
    ("2026.3.5", DAY),
    ("2026-03-05 10:00:00", DAY),
    ("2026-03-05 23:59:59", DAY),
    ("2026/3/5 8:15", DAY),
    ("2026年3月5日 10:00", DAY),
    ("20260305 101500", DAY),
    ("20260305103000", DAY),  # a compact time stamp (spec §5: date-times with a time part)
    ("202603051030", DAY),
    ("2026年3月5日10:30", DAY),
    ("2026年3月5日10时30分", DAY),
    ("2026年03月05日 10时30分00秒", DAY),
    ("2026-03-05T10:00:00", DAY),
    ("2026-03-05T10:00:00.123+08:00", DAY),
    ("2026-03-05 10:00:00.000", DAY),
    ("  2026-03-05  ", DAY),
    ("\u30002026-03-05\u3000", DAY),
    ("46086", DAY),  # an Excel date cell read as its serial number
    ("46086.0", DAY),
    ("46086.99998", DAY),  # 23:59:59, still the same day
    ("46087", DAY + timedelta(days=1)),
    ("2024-02-29", date(2024, 2, 29)),
    ("2000-02-29", date(2000, 2, 29)),
    ("2026-02-30", None),
    ("2025-02-29", None),
    ("1900-02-29", None),
    ("2026-13-01", None),
    ("2026-00-10", None),
    ("2026-04-31", None),
    ("2026-04-00", None),
    ("2026年2月30日", None),
    ("20260230", None),
    ("2026.02.30", None),
    ("2026-02-30 10:00:00", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("不详", None),
    ("2026-03", None),
    ("26-3-5", None),
    ("2026030", None),
    ("202603051", None),
    ("20260230103000", None),  # no 30 February, whatever the time
    ("2026030510300", None),  # 13 digits
    ("2026030510", None),  # 10 digits
    ("2026年2月30日10:30", None),
    ("1234", None),
]


@pytest.mark.parametrize(("raw", "expected"), DATE_CASES)
def test_date_formats(con: duckdb.DuckDBPyConnection, raw: str | None, expected: date | None) -> None:
    assert run_sql(con, sql.parse_date_sql("v"), [raw]) == [expected]


def test_excel_serial_epoch(con: duckdb.DuckDBPyConnection) -> None:
    # Excel's day 1 is 1900-01-01 and it counts a 29 February 1900 that never was: from 1900-03-01
    # on, serial = days since 1899-12-30. Written out for a few known serials.
    got = run_sql(con, sql.parse_date_sql("v"), ["25569", "36526", "45292", "43890"])
    assert got == [date(1970, 1, 1), date(2000, 1, 1), date(2024, 1, 1), date(2020, 2, 29)]


def reference_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


DATE_WRITERS: list[Callable[[int, int, int], str]] = [
    lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    lambda y, m, d: f"{y:04d}-{m}-{d}",
    lambda y, m, d: f"{y:04d}/{m}/{d}",
    lambda y, m, d: f"{y:04d}/{m:02d}/{d:02d}",
    lambda y, m, d: f"{y:04d}{m:02d}{d:02d}",
    lambda y, m, d: f"{y:04d}年{m}月{d}日",
    lambda y, m, d: f"{y:04d}年{m:02d}月{d:02d}日",
    lambda y, m, d: f"{y:04d}.{m:02d}.{d:02d}",
    lambda y, m, d: f"{y:04d}.{m}.{d}",
]
TIME_PARTS = st.sampled_from(
    ["", " 00:00:00", " 10:00", " 23:59:59", "T08:15:00", " 8:05:03.250", "T23:59:59Z"]
)


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.integers(1900, 2099),
            st.integers(0, 13),
            st.integers(0, 32),
            st.integers(0, len(DATE_WRITERS) - 1),
            TIME_PARTS,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_parse_date_matches_the_calendar(parts: list[tuple[int, int, int, int, str]]) -> None:
    """Every format of §5, with or without a time part: the day if it exists, NULL if not."""
    texts = [DATE_WRITERS[w](y, m, d) + t for y, m, d, w, t in parts]
    got = run_sql(CON, sql.parse_date_sql("v"), texts)
    assert got == [reference_date(y, m, d) for y, m, d, _, _ in parts]


@PROPERTY
@given(
    st.lists(
        st.tuples(st.integers(10_000, 99_999), st.sampled_from(["", ".0", ".25", ".5", ".999"])), min_size=1
    )
)
def test_parse_date_excel_serials(serials: list[tuple[int, str]]) -> None:
    texts = [f"{n}{frac}" for n, frac in serials]
    got = run_sql(CON, sql.parse_date_sql("v"), texts)
    assert got == [date(1899, 12, 30) + timedelta(days=n) for n, _ in serials]


DATE_TEXT = st.text(alphabet=st.sampled_from([*"0123456789-/.年月日T: ", "\u3000"]), max_size=20)


@PROPERTY
@given(st.lists(DATE_TEXT, min_size=1, max_size=40))
def test_parse_date_never_invents_a_day(texts: list[str]) -> None:
    """Any text: no error, and a date only when its year, month and day are the text's own numbers."""
    got = run_sql(CON, sql.parse_date_sql("v"), texts)
    for text, day in zip(texts, got, strict=True):
        if day is None:
            continue
        assert isinstance(day, date), (text, day)
        stripped = text.replace("\u3000", " ").strip(" ")
        if re.fullmatch(r"[0-9]{5}(\.[0-9]+)?", stripped):
            assert day == date(1899, 12, 30) + timedelta(days=int(stripped.split(".")[0]))
            continue
        day_part = stripped.replace("T", " ").split(" ")[0].split("日")[0]
        digits = re.findall(r"[0-9]+", day_part)
        groups = [int(g) for g in digits]
        if len(groups) == 1:  # 20260305, or a compact stamp 20260305103000 / 202603051030
            g = digits[0][:8] if len(digits[0]) in (12, 14) else f"{groups[0]:08d}"
            groups = [int(g[:4]), int(g[4:6]), int(g[6:])]
        assert groups == [day.year, day.month, day.day], (text, day)


def test_parse_date_rejects_year_zero(con: duckdb.DuckDBPyConnection) -> None:
    assert run_sql(con, sql.parse_date_sql("v"), ["0000-03-05", "00000305", "0000年3月5日"]) == [None] * 3


# ---------------------------------------------------------------------------------------------
# Mobile numbers (spec §2: the SMS channel)
# ---------------------------------------------------------------------------------------------

MOBILE_CASES: list[tuple[str | None, str | None]] = [
    ("13912345678", "13912345678"),
    ("139 1234 5678", "13912345678"),
    ("139-1234-5678", "13912345678"),
    ("１３９１２３４５６７８", "13912345678"),
    ("+86 139 1234 5678", "13912345678"),
    ("+8613912345678", "13912345678"),
    ("008613912345678", "13912345678"),
    ("8613912345678", "13912345678"),
    ("(+86)13912345678", "13912345678"),
    ("\u300019912345678\u3000", "19912345678"),
    ("12912345678", None),  # second digit 2
    ("1391234567", None),  # 10 digits
    ("139123456789", None),  # 12 digits
    ("0351-7654321", None),  # a landline
    ("03517654321", None),
    ("+8503912345678", None),
    ("", None),
    (None, None),
    ("无", None),
]


@pytest.mark.parametrize(("raw", "expected"), MOBILE_CASES)
def test_mobile_cases(con: duckdb.DuckDBPyConnection, raw: str | None, expected: str | None) -> None:
    assert normalise_mobile(raw) == expected
    assert run_sql(con, sql.mobile_sql("v"), [raw]) == [expected]


PHONE_CHARS = st.sampled_from([*"0123456789+-() （）", "\u3000", "１", "３", "８", "６"])


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return "".join(draw(st.lists(PHONE_CHARS, max_size=18)))
    number = (
        "1"
        + draw(st.sampled_from("0123456789"))
        + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=8, max_size=10)))
    )
    prefix = draw(st.sampled_from(["", "+86", "0086", "86", "+86 ", "(+86)", "086"]))
    text = prefix + number
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.sampled_from([" ", "-", "\u3000", "(", ")"])) + text[pos:]
    return text


@PROPERTY
@given(st.lists(phone_like(), min_size=1, max_size=30))
def test_mobile_sql_matches_python(raws: list[str]) -> None:
    got = run_sql(CON, sql.mobile_sql("v"), raws)
    assert got == [normalise_mobile(raw) for raw in raws]


@pytest.mark.parametrize("raw", ["139١2345678", "139\u20031234\u20035678"])
def test_mobile_python_and_sql_agree_outside_ascii(raw: str) -> None:
    assert normalise_mobile(raw) == run_sql(CON, sql.mobile_sql("v"), [raw])[0]


# ---------------------------------------------------------------------------------------------
# Result texts: a negation or a revocation is never a loss, a death or a disappearance (rules §3)

UNIT_RESULT_CASES = [
    ("丧失资格", "lost"),
    ("已丧失领取资格", "lost"),
    ("不具备资格", "lost"),
    ("LOST", "lost"),
    ("未丧失资格", None),  # a negation: not a loss (and not 具备资格 either: unreadable)
    ("不丧失资格", None),
    ("并非丧失资格", None),
    ("无丧失资格情形", None),
    ("未丧失资格，具备资格", "eligible"),
    ("撤销丧失资格认定", None),  # a revocation: not a loss
    ("无法联系", "unreachable"),
    ("失联", "unreachable"),
    ("未失联", None),
    ("具备资格", "eligible"),
    ("未具备资格", None),  # before, 具备 was found in it: alive evidence
    ("eligible", "eligible"),
    ("ineligible", None),  # before, 'eligible' was found in it: alive evidence
    ("not eligible", None),
    ("", None),
    ("其他", None),
]


@pytest.mark.parametrize(("raw", "expected"), UNIT_RESULT_CASES)
def test_unit_result_negations_and_revocations(
    con: duckdb.DuckDBPyConnection, raw: str, expected: str | None
) -> None:
    from zige.engine.kinds import unit_result_of

    assert run_sql(con, sql.unit_result_sql("v"), [raw]) == [expected]
    assert unit_result_of(raw) == expected


DECLARED_CASES = [
    ("宣告死亡", "dead"),
    ("死亡", "dead"),
    ("宣告失踪", "missing"),
    ("Missing", "missing"),
    ("撤销宣告死亡", None),
    ("撤销死亡宣告", None),
    ("撤消死亡宣告", None),
    ("撤销宣告失踪", None),
    ("撤销失踪宣告", None),
    ("未死亡", None),
    ("宣告失踪（未死亡）", "missing"),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), DECLARED_CASES)
def test_declared_negations_and_revocations(
    con: duckdb.DuckDBPyConnection, raw: str, expected: str | None
) -> None:
    assert run_sql(con, sql.declared_type_sql("v"), [raw]) == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("正常", "normal"), ("", "normal"), (None, "normal"), (" 正常发放 ", "normal"), ("Normal", "normal"),
        ("暂停", "suspended"), ("暂停发放", "suspended"), ("暂 停", "suspended"), ("\u3000暂停\u3000", "suspended"),
        ("终止", "terminated"), ("终止发放", "terminated"), ("TERMINATED", "terminated"),
        # Read whole, never by what the text contains: these are bad_value, not 正常.
        ("暂停（待恢复正常）", None), ("非正常", None), ("不正常", None), ("正常？", None), ("退休", None),
    ],
)  # fmt: skip
def test_benefit_status_is_one_of_the_roster_values(
    con: duckdb.DuckDBPyConnection, raw: str | None, expected: str | None
) -> None:
    assert run_sql(con, sql.benefit_status_sql("v"), [raw]) == [expected]


IMPRISONMENT_REASONS = [
    ("服刑", True),
    ("判刑入狱", True),
    ("刑事处罚", True),
    ("判处有期徒刑二年", True),
    ("无期徒刑", True),
    ("拘役六个月", True),
    ("死缓", True),
    ("收监执行", True),
    ("判处有期徒刑一年缓刑二年", False),  # a suspended sentence: never in prison
    ("判处管制一年", False),
    ("判处罚金", False),
    ("羁押", False),
    ("无法联系", False),
    # 无期限 (indefinitely) holds 无期 (a life sentence's abbreviation) and is no sentence.
    ("长期联系不上，无期限暂停发放", False),
    ("无期限暂停", False),
    ("判处无期徒刑，无期限暂停发放", True),
    ("", False),
]


@pytest.mark.parametrize(("raw", "expected"), IMPRISONMENT_REASONS)
def test_imprisonment_reasons(con: duckdb.DuckDBPyConnection, raw: str, expected: bool) -> None:
    from zige.rules import is_imprisonment_reason

    assert is_imprisonment_reason(raw) is expected
    assert run_sql(con, sql.imprisonment_reason_sql("v"), [raw]) == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3000", "3000"),
        ("3456.78", "3456.78"),
        ("3,456.78", "3456.78"),
        ("1,234.5元", "1234.5"),
        ("￥3,456.78", "3456.78"),
        ("3,456.78 元", "3456.78"),
        ("1,234,567.89", "1234567.89"),
        ("１,２３４.５", None),  # full-width digits: not read (they never were)
        # A comma is read as a thousands separator only where it is one: a decimal comma or a
        # slip of the keyboard must not multiply a pension (it sets every stop's and resume's
        # amount, and a recovery case's debt).
        ("2856,5", None),
        ("2856，5", None),
        ("3,00", None),
        ("1,2345", None),
        ("3.000,50", None),
        (",3000", None),
        ("3000,", None),
        ("3,,000", None),
    ],
)
def test_amounts(con: duckdb.DuckDBPyConnection, raw: str, expected: str | None) -> None:
    (got,) = run_sql(con, sql.parse_amount_sql("v"), [raw])
    assert (None if got is None else format(got.normalize(), "f")) == expected
