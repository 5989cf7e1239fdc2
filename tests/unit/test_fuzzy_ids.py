"""The fuzzy-fallback SQL builders (zige.engine.fuzzy) against a plain-Python reference.

The reference spells out the rule of docs/rules.md §4a by brute force: every single edit of the
broken ID (one character replaced at any of the 18 positions — X only last —, or two
neighbouring characters swapped) that passes the GB 11643 check digit and whose digits 7-14 are a
real birth date between 1890-01-01 and the as-of date. The SQL must produce exactly that set.
"""

from __future__ import annotations

import random
from datetime import date

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zige.engine import fuzzy
from zige.engine.kinds import BUILTIN_KINDS, Column, FeedKind
from zige.ids import EARLIEST_BIRTH, check_digit

AS_OF = date(2026, 11, 30)
CON = duckdb.connect()
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Edit = tuple[str, int, str, str, str]  # (edit, position, from, to, variant)


def reference_variants(broken: str, as_of: date = AS_OF) -> set[Edit]:
    found: set[Edit] = set()

    def keep(edit: str, pos: int, before: str, after: str, variant: str) -> None:
        if "X" in variant[:17] or check_digit(variant[:17]) != variant[17]:
            return
        try:
            born = date(int(variant[6:10]), int(variant[10:12]), int(variant[12:14]))
        except ValueError:
            return
        if EARLIEST_BIRTH <= born <= as_of:
            found.add((edit, pos, before, after, variant))

    for i in range(18):
        for ch in "0123456789X" if i == 17 else "0123456789":
            if ch != broken[i]:
                keep("substitution", i + 1, broken[i], ch, broken[:i] + ch + broken[i + 1 :])
    for i in range(17):
        if broken[i] != broken[i + 1]:
            swapped = broken[:i] + broken[i + 1] + broken[i] + broken[i + 2 :]
            keep("transposition", i + 1, broken[i : i + 2], broken[i + 1] + broken[i], swapped)
    return found


def sql_variants(ids: list[str], as_of: date = AS_OF) -> dict[str, set[Edit]]:
    table = pa.table(
        {
            "file_no": pa.array([1] * len(ids), pa.int32()),
            "row_no": pa.array(range(2, len(ids) + 2), pa.int64()),
            "feed_kind": ["rail"] * len(ids),
            "original_id": ids,
            "name": ["张三"] * len(ids),
            "name_key": ["张三"] * len(ids),
            "event_date": pa.array([None] * len(ids), pa.date32()),
            "hint_birth": pa.array([None] * len(ids), pa.date32()),
            "hint_age": pa.array([None] * len(ids), pa.int32()),
        }
    )
    CON.register("broken_t", table)
    try:
        rows = CON.execute(
            "SELECT original_id, edit, position, from_text, to_text, variant "
            f"FROM ({fuzzy.variants_sql('SELECT * FROM broken_t', as_of=as_of)})"
        ).fetchall()
    finally:
        CON.unregister("broken_t")
    out: dict[str, set[Edit]] = {i: set() for i in ids}
    for original, edit, pos, before, after, variant in rows:
        out[original].add((edit, pos, before, after, variant))
    return out


def valid_id(rng: random.Random) -> str:
    born = date.fromordinal(rng.randrange(date(1930, 1, 1).toordinal(), date(1970, 1, 1).toordinal()))
    first17 = f"14{rng.randrange(10000):04d}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + check_digit(first17)


def test_single_edits_of_a_valid_id_always_fail_the_check_digit_and_the_true_id_is_a_variant() -> None:
    rng = random.Random(6)
    goods = [valid_id(rng) for _ in range(300)]
    bads = [fuzzy.typo(g, rng)[0] for g in goods]
    variants = sql_variants(bads)
    for good, bad in zip(goods, bads, strict=True):
        assert check_digit(bad[:17]) != bad[17]  # GB 11643 catches every single edit
        assert good in {v[-1] for v in variants[bad]}, (good, bad)
        assert len(variants[bad]) <= 35  # 17 positions + the check character + 17 swaps


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=17, max_size=17), st.sampled_from("0123456789X"))
def test_sql_variants_equal_the_brute_force_reference(first17: str, last: str) -> None:
    broken = first17 + last
    if check_digit(first17) == last:
        broken = first17 + ("0" if last != "0" else "1")
    assert sql_variants([broken])[broken] == reference_variants(broken)


@pytest.mark.parametrize(
    "good",
    [
        "11010519491231002X",  # X check character: swapping 17/18 would move X among the digits
        "140105194912310020",
        "140105200001010019",
    ],
)
def test_fixed_ids_match_the_reference_for_every_edit(good: str) -> None:
    good = good[:17] + check_digit(good[:17])
    edits = [good[:i] + c + good[i + 1 :] for i in range(18) for c in "0123456789" if c != good[i]]
    edits += [good[:i] + good[i + 1] + good[i] + good[i + 2 :] for i in range(17) if good[i] != good[i + 1]]
    broken = [e for e in edits if "X" not in e[:17] and check_digit(e[:17]) != e[17]]
    variants = sql_variants(broken)
    for b in broken:
        assert variants[b] == reference_variants(b), b
        assert good in {v[-1] for v in variants[b]}


def test_the_check_character_edit_gives_exactly_one_variant() -> None:
    good = "140105194912310020"
    good = good[:17] + check_digit(good[:17])
    bad = good[:17] + ("X" if good[17] != "X" else "0")
    subs18 = [v for v in sql_variants([bad])[bad] if v[0] == "substitution" and v[1] == 18]
    assert subs18 == [("substitution", 18, bad[17], good[17], good)]


def test_a_variant_with_an_impossible_or_future_birth_date_is_dropped() -> None:
    # The true ID is born after the as-of date; the other variants follow the reference's rule
    # (month 13, day 32, … are dropped there too).
    good = "140105194902280017"
    good = good[:17] + check_digit(good[:17])
    bad = good[:17] + ("X" if good[17] != "X" else "0")
    variants = {v[-1] for v in sql_variants([bad], as_of=date(1949, 2, 27))[bad]}
    assert good not in variants  # born after the as-of date
    assert variants == {v[-1] for v in reference_variants(bad, date(1949, 2, 27))}


def recipients_table(rows: list[tuple[str, str, str, str | None]]) -> pa.Table:
    return pa.table(
        {
            "person_no": [r[0] for r in rows],
            "id_number": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "name_key": [r[2].replace(" ", "") for r in rows],
            "birth_date_text": [r[3] for r in rows],
        }
    )


def staged_table(rows: list[tuple[int, str, str]]) -> pa.Table:
    return pa.table(
        {
            "file_no": pa.array([1] * len(rows), pa.int32()),
            "row_no": pa.array([r[0] for r in rows], pa.int64()),
            "feed_kind": ["rail"] * len(rows),
            "id_number": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "name_key": [r[2].replace(" ", "") for r in rows],
            "event_date": pa.array([date(2026, 5, 1)] * len(rows), pa.date32()),
            "reject_reason": ["bad_id_checksum"] * len(rows),
        }
    )


def suggest(
    staged: pa.Table, recipients: pa.Table, hints: pa.Table | None = None
) -> tuple[list[tuple[object, ...]], dict[str, int]]:
    con = duckdb.connect()
    con.register("staged_feed", staged)
    con.register("recipients", recipients)
    if hints is not None:
        con.register("hints", hints)
    counts = fuzzy.create_suggestions(
        con,
        as_of=AS_OF,
        hints="hints" if hints is not None else None,
        roster_birth="r.birth_date_text",
    )
    rows = con.execute(
        "SELECT status, row_no, person_no, suggested_id, edit, position, from_text, to_text, confirmed_by, candidates "
        "FROM fuzzy_suggestions ORDER BY row_no, person_no"
    ).fetchall()
    return rows, counts


def with_check(first17: str) -> str:
    return first17 + check_digit(first17)


def test_a_confirmed_variant_is_suggested_with_the_edit_and_its_basis() -> None:
    good = with_check("14010519491231002")
    bad = good[:17] + ("X" if good[17] != "X" else "0")
    rows, counts = suggest(
        staged_table([(5, bad, "王 芳"), (6, bad, "李四"), (7, "140105194912310", "王芳")]),
        recipients_table([("P1", good, "王芳", "1949-12-31")]),
    )
    assert rows == [
        (
            "suggested",
            5,
            "P1",
            good,
            "substitution",
            18,
            bad[17],
            good[17],
            "name,id_birth_date,roster_birth_date",
            1,
        )
    ]
    assert counts["rows_tried"] == 2  # the 15-digit ID is not a broken check digit
    assert counts["suggested"] == 1 and counts["unconfirmed"] == 1 and counts["ambiguous"] == 0


def test_a_roster_birth_date_that_disagrees_refuses_the_suggestion() -> None:
    good = with_check("14010519491231002")
    bad = good[:17] + ("X" if good[17] != "X" else "0")
    rows, counts = suggest(
        staged_table([(5, bad, "王芳")]), recipients_table([("P1", good, "王芳", "1950-01-01")])
    )
    assert rows == [] and counts["unconfirmed"] == 1


def test_two_confirmed_recipients_make_the_row_ambiguous_for_both() -> None:
    # Two recipients called 王芳, born the same day, whose IDs are both one edit from the typo.
    rng = random.Random(3)
    while True:
        first17 = f"140105195003{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
        bad = first17 + ("X" if check_digit(first17) != "X" else "0")
        found = sorted(v[-1] for v in reference_variants(bad) if v[-1][6:14] == bad[6:14])
        if len(found) >= 2:
            break
    a, b = found[:2]
    rows, counts = suggest(
        staged_table([(9, bad, "王芳")]),
        recipients_table([("PA", a, "王芳", None), ("PB", b, "王芳", None)]),
    )
    assert [(r[0], r[2], r[-1]) for r in rows] == [("ambiguous", "PA", 2), ("ambiguous", "PB", 2)]
    assert counts["ambiguous"] == 1 and counts["suggested"] == 0


def test_the_feed_birth_date_and_age_columns_confirm_or_refuse() -> None:
    good = with_check("14010519491231002")
    bad = good[:17] + ("X" if good[17] != "X" else "0")
    hints = pa.table(
        {
            "file_no": pa.array([1, 1, 1, 1], pa.int32()),
            "row_no": pa.array([5, 6, 7, 8], pa.int64()),
            "hint_birth": pa.array([date(1949, 12, 31), date(1949, 12, 30), None, None], pa.date32()),
            "hint_age": pa.array([None, None, 77, 60], pa.int32()),
        }
    )
    rows, counts = suggest(
        staged_table([(5, bad, "王芳"), (6, bad, "王芳"), (7, bad, "王芳"), (8, bad, "王芳")]),
        recipients_table([("P1", good, "王芳", None)]),
        hints,
    )
    # 2026-05-01: aged 76 (77 within the one year of tolerance); 60 is far off.
    assert [(r[1], r[8]) for r in rows] == [
        (5, "name,id_birth_date,feed_birth_date"),
        (7, "name,id_birth_date,feed_age"),
    ]
    assert counts["unconfirmed"] == 2


def test_feed_hints_come_only_from_a_birth_date_or_age_column() -> None:
    assert all(
        fuzzy.feed_hints_sql(kind=k, source="t", present=["id_number", "name"], file_no=1) is None
        for k in BUILTIN_KINDS
    )
    kind = FeedKind(
        "social_card_use",
        "社保卡",
        Column("event_date", ("刷卡日期",), "date"),
        (Column("born", ("出生日期",)), Column("age", ("年龄",))),
        custom=True,
    )
    query = fuzzy.feed_hints_sql(kind=kind, source="t", present=["born", "age"], file_no=3)
    assert query is not None
    con = duckdb.connect()
    con.register("t", pa.table({"_row": [2, 3], "born": ["1949年12月31日", "?"], "age": ["76岁", "x"]}))
    assert con.execute(query).fetchall() == [(3, 2, date(1949, 12, 31), 76), (3, 3, None, None)]


def test_age_on_counts_whole_years() -> None:
    con = duckdb.connect()
    before = fuzzy.age_on_sql("DATE '1950-06-15'", "DATE '2026-06-14'")
    on_the_day = fuzzy.age_on_sql("DATE '1950-06-15'", "DATE '2026-06-15'")
    assert con.execute(f"SELECT {before}, {on_the_day}").fetchone() == (75, 76)
