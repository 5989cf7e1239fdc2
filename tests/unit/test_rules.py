"""Every rule of the certification contract (spec §1, §2, §8), one table per section.

The expected values below are read off `/work/shared/spec/certification-rules.md` (and the notice
晋社保局发〔2018〕40号 it comes from), not off `zige.rules`: the SQL engine is held to `zige.rules` by
a property test, so this file is what holds `zige.rules` to the contract.

A row names the clause it checks (`2.3a-...` is §2 status 3, part (a)), the recipient, the feed
records and the as-of date `D` (2026-03-31 unless the row says otherwise), and only the outputs
that clause is about. Records are written as text, `"kind YYYY-MM-DD [sub] [end]"`, with the
normalised results the readers hand over: `app_auth 2026-01-05 fail`, `unit_confirm 2026-01-05
unreachable`, `declared 2026-01-05 missing`, `sentence 2025-12-01 有期徒刑 2027-11-30`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zige.calendar import add_months
from zige.ids import normalise_mobile
from zige.rules import BenefitStatus, Decision, Recipient, Record, decide, is_alive, loss_kind

D = "2026-03-31"
STATUSES = {"eligible", "stop", "suspend", "review", "pending"}


# --- builders ------------------------------------------------------------------------------------


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def person(
    *,
    status: BenefitStatus = "normal",
    since: str | None = None,
    reason: str = "",
    pension: str | None = None,
    phone: str | None = None,
    retired: str | None = None,
    last: str | None = None,
) -> Recipient:
    """A roster row in scope; `phone` is the raw 联系电话, normalised as the reader does."""
    return Recipient(
        person_no="P0001",
        id_number="14010519500101001X",
        benefit_status=status,
        status_since=_day(since),
        status_reason=reason,
        monthly_amount=Decimal(pension) if pension is not None else None,
        mobile=normalise_mobile(phone),
        retirement_date=_day(retired),
        last_certified_on=_day(last),
    )


def rec(text: str) -> Record:
    """`"kind YYYY-MM-DD [sub] [end]"` -> Record."""
    kind, on, *rest = text.split()
    return Record(
        kind=kind,
        day=date.fromisoformat(on),
        sub=rest[0] if rest else "",
        end_date=_day(rest[1]) if len(rest) > 1 else None,
    )


def case(
    id_: str,
    records: Sequence[str] = (),
    *,
    who: Recipient | None = None,
    as_of: str = D,
    xfail: str | None = None,
    **expected: Any,
) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(
        who or person(),
        [rec(r) for r in records],
        date.fromisoformat(as_of),
        expected,
        id=id_,
        marks=marks,
    )


def view(decision: Decision, key: str) -> Any:
    """One output of a decision in the form the tables write it."""
    if key == "evidence":
        if decision.evidence_kind is None and decision.evidence_date is None:
            return None
        return f"{decision.evidence_kind} {decision.evidence_date}"
    if key == "C":
        return decision.certified_on and decision.certified_on.isoformat()
    if key == "due":
        return decision.due_on and decision.due_on.isoformat()
    if key == "action":
        a = decision.action
        if a is None:
            return None
        assert isinstance(a.amount, Decimal), "money is decimal, never float (§8)"
        return f"{a.action} {a.effective_month} {a.months} {a.amount}"
    return getattr(decision, key)


def check(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    decision = decide(recipient=who, records=records, as_of=as_of)
    assert {key: view(decision, key) for key in expected} == expected


# --- §1 certified_on C and due_on ------------------------------------------------------------------

# fmt: off
CERTIFIED_ON = [
    case("1-C-evidence-later-than-roster", ["rail 2025-09-10"], who=person(last="2025-06-01"),
         status="eligible", reason="rail", evidence="rail 2025-09-10", C="2025-09-10", due="2026-09-10"),
    case("1-C-roster-later-than-evidence", ["rail 2025-09-10"], who=person(last="2025-10-01"),
         status="eligible", reason="last_certified", evidence="last_certified 2025-10-01", C="2025-10-01",
         due="2026-10-01"),
    case("1-C-newest-of-several-evidence", ["rail 2025-05-01", "hospital 2025-11-11", "checkup 2025-08-08"],
         reason="hospital", evidence="hospital 2025-11-11", C="2025-11-11"),
    case("1-C-tie-roster-and-evidence-evidence-wins", ["flight 2025-09-10"], who=person(last="2025-09-10"),
         reason="flight", evidence="flight 2025-09-10", C="2025-09-10"),
    case("1-C-tie-kinds-rail-before-flight", ["flight 2025-09-10", "rail 2025-09-10"],
         reason="rail", evidence="rail 2025-09-10"),
    case("1-C-tie-kinds-flight-before-hospital", ["hospital 2025-09-10", "flight 2025-09-10"],
         reason="flight"),
    case("1-C-tie-kinds-hospital-before-checkup", ["checkup 2025-09-10", "hospital 2025-09-10"],
         reason="hospital"),
    case("1-C-tie-kinds-checkup-before-border", ["border 2025-09-10", "checkup 2025-09-10"],
         reason="checkup"),
    case("1-C-tie-kinds-border-before-app", ["app_auth 2025-09-10 pass", "border 2025-09-10"],
         reason="border"),
    case("1-C-tie-kinds-app-before-terminal-before-unit",
         ["unit_confirm 2025-09-10 eligible", "terminal_auth 2025-09-10 pass", "app_auth 2025-09-10 pass"],
         reason="app_auth", evidence="app_auth 2025-09-10"),
    case("1-C-tie-kinds-terminal-before-unit",
         ["unit_confirm 2025-09-10 eligible", "terminal_auth 2025-09-10 pass"],
         reason="terminal_auth"),
    case("1-C-tie-kinds-unit-before-overseas",
         ["overseas_review 2025-09-10", "unit_confirm 2025-09-10 eligible"],
         reason="unit_confirm"),
    case("1-C-tie-kinds-overseas-before-release", ["release 2025-09-10", "overseas_review 2025-09-10"],
         reason="overseas_review"),
    case("1-C-tie-kinds-failed-app-does-not-take-the-tie",
         ["terminal_auth 2025-09-10 pass", "app_auth 2025-09-10 fail"],
         reason="terminal_auth"),
    case("1-C-retirement-when-both-empty", who=person(retired="2025-08-01"),
         status="eligible", reason="retirement", evidence="retirement 2025-08-01", C="2025-08-01",
         due="2026-08-01"),
    case("1-C-retirement-not-used-when-roster-last-exists",
         who=person(retired="2025-12-01", last="2025-06-01"),
         reason="last_certified", C="2025-06-01"),
    case("1-C-retirement-not-used-when-evidence-exists", ["rail 2025-06-01"],
         who=person(retired="2025-12-01"),
         reason="rail", C="2025-06-01"),
    case("1-C-retirement-not-used-when-evidence-exists-even-if-expired", ["rail 2024-06-01"],
         who=person(retired="2025-12-01"),
         status="pending", evidence="rail 2024-06-01", C="2024-06-01"),
    case("1-C-roster-last-after-D-ignored", ["rail 2025-05-01"], who=person(last="2026-04-01"),
         reason="rail", C="2025-05-01"),
    case("1-C-roster-last-after-D-ignored-falls-back-to-retirement",
         who=person(last="2026-04-01", retired="2025-06-01"),
         reason="retirement", C="2025-06-01"),
    case("1-C-roster-retirement-after-D-ignored", who=person(retired="2026-04-01"),
         status="pending", reason="no_evidence", C=None, due=None),
    case("1-C-roster-last-on-D-counts", who=person(last=D),
         status="eligible", reason="last_certified", C=D, due="2027-03-31"),
    case("1-C-roster-retirement-on-D-counts", who=person(retired=D),
         status="eligible", reason="retirement", C=D),
    case("1-C-evidence-on-D-counts", ["rail 2026-03-31"], who=person(last="2025-06-01"),
         reason="rail", C=D, due="2027-03-31"),
    case("1-C-evidence-after-D-is-not-evidence", ["rail 2026-04-01"], who=person(last="2025-01-01"),
         status="pending", evidence="last_certified 2025-01-01", C="2025-01-01", due="2026-01-01"),
    case("1-C-evidence-after-D-not-the-newest", ["rail 2025-10-01", "flight 2026-04-01"],
         reason="rail", C="2025-10-01"),
    case("1-C-only-evidence-after-D-and-no-roster-dates-no-C", ["rail 2026-04-01"], status="pending", C=None),
    case("1-C-failed-app-not-evidence", ["app_auth 2026-01-01 fail"], who=person(last="2025-06-01"),
         reason="last_certified", C="2025-06-01"),
    case("1-C-failed-terminal-not-evidence", ["terminal_auth 2026-01-01 fail"], who=person(last="2025-06-01"),
         reason="last_certified", C="2025-06-01"),
    case("1-C-non-custodial-sentence-not-evidence", ["sentence 2026-01-01 管制"], who=person(last="2025-06-01"),
         reason="last_certified", C="2025-06-01"),
    case("1-C-loss-record-not-evidence", ["death 2026-01-01"], who=person(last="2025-06-01"),
         status="stop", C="2025-06-01", due="2026-06-01"),
    case("1-C-unit-lost-not-evidence", ["unit_confirm 2026-01-01 lost"], who=person(last="2025-06-01"),
         status="stop", C="2025-06-01"),
    case("1-C-unit-unreachable-not-evidence", ["unit_confirm 2026-01-01 unreachable"],
         who=person(last="2025-06-01"),
         status="suspend", C="2025-06-01"),
    case("1-C-declared-missing-not-evidence", ["declared 2026-01-01 missing"], who=person(last="2025-06-01"),
         status="suspend", C="2025-06-01"),
    case("1-due-clamped-leap-day-still-eligible-day-before", who=person(last="2024-02-29"),
         as_of="2025-02-27",
         status="eligible", C="2024-02-29", due="2025-02-28"),
    case("1-due-clamped-leap-day-pending-on-due-day", who=person(last="2024-02-29"), as_of="2025-02-28",
         status="pending", due="2025-02-28"),
    case("1-due-clamped-from-evidence-leap-day", ["checkup 2028-02-29"], as_of="2028-03-31",
         C="2028-02-29", due="2029-02-28"),
    case("1-due-month-end-not-clamped-when-it-exists", ["rail 2025-08-31"], C="2025-08-31", due="2026-08-31"),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), CERTIFIED_ON)
def test_certified_on(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- §2.1 review -------------------------------------------------------------------------------------

# fmt: off
REVIEW = [
    case("2.1-alive-after-death", ["death 2025-12-10", "rail 2026-01-05"],
         status="review", reason="alive_after_death", evidence="rail 2026-01-05", C="2026-01-05",
         due="2027-01-05"),
    case("2.1-alive-after-cremation", ["cremation 2025-12-10", "flight 2026-01-05"],
         status="review", reason="alive_after_death", evidence="flight 2026-01-05"),
    case("2.1-alive-after-declared-dead", ["declared 2025-12-10 dead", "hospital 2026-01-05"],
         status="review", reason="alive_after_death", evidence="hospital 2026-01-05"),
    case("2.1-alive-after-unit-lost", ["unit_confirm 2025-12-10 lost", "app_auth 2026-01-05 pass"],
         status="review", reason="alive_after_lost", evidence="app_auth 2026-01-05"),
    case("2.1-evidence-is-earliest-alive-after-X-not-C",
         ["hospital 2025-11-01", "death 2025-12-10", "rail 2026-02-01", "app_auth 2026-01-15 pass"],
         status="review", evidence="app_auth 2026-01-15", C="2026-02-01"),
    case("2.1-X-is-earliest-loss-unit-then-death",
         ["unit_confirm 2025-10-01 lost", "rail 2025-11-01", "death 2025-12-01"],
         status="review", reason="alive_after_lost", evidence="rail 2025-11-01"),
    case("2.1-X-is-earliest-loss-death-then-unit",
         ["death 2025-10-01", "unit_confirm 2025-12-01 lost", "rail 2026-01-10"],
         status="review", reason="alive_after_death", evidence="rail 2026-01-10"),
    case("2.1-X-same-day-death-type-before-unit",
         ["unit_confirm 2025-12-01 lost", "death 2025-12-01", "rail 2026-01-10"],
         status="review", reason="alive_after_death"),
    case("2.1-alive-same-day-as-X-is-not-after", ["death 2025-12-10", "rail 2025-12-10"],
         status="stop", reason="death"),
    case("2.1-alive-only-before-X", ["rail 2025-12-09", "death 2025-12-10"], status="stop", reason="death"),
    case("2.1-alive-after-X-but-after-D-ignored", ["death 2025-12-10", "rail 2026-04-01"],
         status="stop", reason="death"),
    case("2.1-alive-after-X-on-D", ["death 2025-12-10", "rail 2026-03-31"],
         status="review", reason="alive_after_death", evidence="rail 2026-03-31"),
    case("2.1-failed-app-after-death-not-alive", ["death 2025-12-10", "app_auth 2026-01-05 fail"],
         status="stop"),
    case("2.1-failed-terminal-after-death-not-alive", ["death 2025-12-10", "terminal_auth 2026-01-05 fail"],
         status="stop"),
    case("2.1-unit-eligible-after-death", ["death 2025-12-10", "unit_confirm 2026-01-05 eligible"],
         status="review", evidence="unit_confirm 2026-01-05"),
    case("2.1-release-after-death", ["death 2025-12-10", "release 2026-01-05"],
         status="review", evidence="release 2026-01-05"),
    case("2.1-unit-unreachable-after-death-not-alive",
         ["death 2025-12-10", "unit_confirm 2026-01-05 unreachable"],
         status="stop"),
    case("2.1-roster-last-certified-after-death-not-alive-evidence", ["death 2025-12-10"],
         who=person(last="2026-01-05"),
         status="stop", C="2026-01-05"),
    case("2.1-alive-after-missing", ["declared 2025-12-10 missing", "rail 2026-01-05"],
         status="review", reason="alive_after_missing", evidence="rail 2026-01-05"),
    case("2.1-alive-after-the-first-of-two-declarations",
         ["declared 2025-10-01 missing", "rail 2025-11-01", "declared 2026-01-10 missing"],
         status="review", reason="alive_after_missing", evidence="rail 2025-11-01"),
    case("2.1-alive-same-day-as-missing-is-not-after", ["declared 2025-12-10 missing", "rail 2025-12-10"],
         status="suspend", reason="declared_missing"),
    case("2.1-alive-after-missing-but-after-D-ignored", ["declared 2025-12-10 missing", "rail 2026-04-01"],
         status="suspend", reason="declared_missing"),
    case("2.1-missing-review-before-stop",
         ["declared 2025-10-01 missing", "rail 2025-11-01", "death 2025-12-01"],
         status="review", reason="alive_after_missing", evidence="rail 2025-11-01"),
    case("2.1-missing-review-before-suspend-imprisoned",
         ["declared 2025-10-01 missing", "rail 2025-11-01", "sentence 2025-12-01 有期徒刑"],
         status="review", reason="alive_after_missing"),
    case("2.1-missing-review-before-eligible", ["declared 2025-10-01 missing", "rail 2026-03-01"],
         who=person(last="2026-02-01"),
         status="review", reason="alive_after_missing"),
    case("2.1-loss-after-D-no-review", ["rail 2026-03-01", "death 2026-04-02"],
         status="eligible", reason="rail"),
    case("2.1-review-on-a-suspended-recipient", ["death 2025-12-10", "rail 2026-01-05"],
         who=person(status="suspended", since="2025-06-01", reason="无法联系"),
         status="review", action=None),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), REVIEW)
def test_review(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- §2.2 stop -----------------------------------------------------------------------------------------

# fmt: off
STOP = [
    case("2.2-death", ["death 2025-12-10"], status="stop", reason="death", evidence="death 2025-12-10"),
    case("2.2-cremation", ["cremation 2025-12-10"],
         status="stop", reason="cremation", evidence="cremation 2025-12-10"),
    case("2.2-declared-dead", ["declared 2025-12-10 dead"],
         status="stop", reason="declared_dead", evidence="declared_dead 2025-12-10"),
    case("2.2-unit-confirmed-lost", ["unit_confirm 2025-12-10 lost"],
         status="stop", reason="unit_confirmed_lost", evidence="unit_confirmed_lost 2025-12-10"),
    case("2.2-earliest-loss-gives-reason", ["death 2025-11-05", "cremation 2025-11-01"],
         status="stop", reason="cremation", evidence="cremation 2025-11-01"),
    case("2.2-earliest-loss-unit-before-death", ["death 2025-12-05", "unit_confirm 2025-11-20 lost"],
         reason="unit_confirmed_lost", evidence="unit_confirmed_lost 2025-11-20"),
    case("2.2-same-day-death-before-cremation", ["cremation 2025-12-10", "death 2025-12-10"], reason="death"),
    case("2.2-same-day-cremation-before-declared-dead", ["declared 2025-12-10 dead", "cremation 2025-12-10"],
         reason="cremation"),
    case("2.2-same-day-declared-dead-before-unit-lost",
         ["unit_confirm 2025-12-10 lost", "declared 2025-12-10 dead"],
         reason="declared_dead"),
    case("2.2-same-day-cremation-before-unit-lost", ["unit_confirm 2025-12-10 lost", "cremation 2025-12-10"],
         reason="cremation"),
    case("2.2-same-day-all-four-death-first",
         ["unit_confirm 2025-12-10 lost", "declared 2025-12-10 dead", "cremation 2025-12-10", "death 2025-12-10"],
         reason="death", evidence="death 2025-12-10"),
    case("2.2-loss-on-D", ["death 2026-03-31"], status="stop", reason="death"),
    case("2.2-loss-after-D-ignored", ["death 2026-04-01"], who=person(last="2025-06-01"),
         status="eligible", reason="last_certified"),
    case("2.2-earlier-loss-after-D-does-not-count", ["death 2026-01-10", "cremation 2026-04-01"],
         reason="death"),
    case("2.2-declared-missing-is-not-a-loss", ["declared 2025-12-10 missing"],
         status="suspend", reason="declared_missing"),
    case("2.2-stop-before-suspend-imprisoned", ["sentence 2025-06-01 有期徒刑", "death 2025-12-10"],
         status="stop", reason="death"),
    case("2.2-stop-before-suspend-missing", ["declared 2025-06-01 missing", "death 2025-12-10"],
         status="stop", reason="death"),
    case("2.2-stop-before-suspend-unreachable", ["unit_confirm 2025-06-01 unreachable", "death 2025-12-10"],
         status="stop"),
    case("2.2-stop-before-eligible-C-still-filled", ["rail 2025-12-01", "death 2025-12-10"],
         status="stop", reason="death", C="2025-12-01", due="2026-12-01", remind=False, channel=None),
    case("2.2-stop-with-no-C", ["death 2025-12-10"], status="stop", C=None, due=None),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), STOP)
def test_stop(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- §2.3 suspend --------------------------------------------------------------------------------------

# Recipient with a fresh roster certification, so "not suspended" shows as eligible.
CERTIFIED = person(last="2025-06-01")

# fmt: off
SUSPEND = [
    # (a) imprisoned
    *(case(f"2.3a-custodial-{label}", [f"sentence 2025-12-01 {penalty}"], who=CERTIFIED,
           status="suspend", reason="imprisoned", evidence="sentence 2025-12-01", C="2025-06-01")
      for label, penalty in (("youqi-tuxing", "有期徒刑"), ("wuqi-tuxing", "无期徒刑"), ("juyi", "拘役"),
                             ("sixing", "死刑"), ("sixing-huanqi", "死刑缓期执行"),
                             ("youqi-tuxing-with-term", "有期徒刑三年"))),
    *(case(f"2.3a-non-custodial-never-suspends-{label}", [f"sentence 2025-12-01 {penalty}"], who=CERTIFIED,
           status="eligible", reason="last_certified")
      for label, penalty in (("youqi-huanxing", "有期徒刑缓刑"), ("juyi-huanxing", "拘役缓刑"), ("huanxing", "缓刑"),
                             ("guanzhi", "管制"), ("zanyu-jianwai-zhixing", "暂予监外执行"),
                             ("youqi-jianwai-zhixing", "有期徒刑监外执行"))),
    case("2.3a-suspended-sentence-not-custodial-with-end-after-D", ["sentence 2025-12-01 有期徒刑缓刑 2028-12-01"],
         who=CERTIFIED,
         status="eligible"),
    case("2.3a-penalty-outside-custodial-list-not-custodial", ["sentence 2025-12-01 罚金"], who=CERTIFIED,
         status="eligible"),
    case("2.3a-start-on-D", ["sentence 2026-03-31 有期徒刑"], who=CERTIFIED,
         status="suspend", evidence="sentence 2026-03-31"),
    case("2.3a-start-after-D", ["sentence 2026-04-01 有期徒刑"], who=CERTIFIED, status="eligible"),
    case("2.3a-release-on-start-day-included", ["sentence 2025-12-01 拘役", "release 2025-12-01"],
         status="eligible", reason="release"),
    case("2.3a-release-on-D-included", ["sentence 2025-12-01 有期徒刑", "release 2026-03-31"],
         status="eligible", reason="release"),
    case("2.3a-release-between-start-and-D", ["sentence 2025-12-01 有期徒刑 2027-12-01", "release 2026-02-10"],
         status="eligible", reason="release"),
    case("2.3a-release-day-before-start-does-not-count", ["release 2025-11-30", "sentence 2025-12-01 有期徒刑"],
         status="suspend", reason="imprisoned"),
    case("2.3a-release-after-D-does-not-count", ["sentence 2025-12-01 有期徒刑", "release 2026-04-01"],
         who=CERTIFIED,
         status="suspend", reason="imprisoned"),
    case("2.3a-planned-end-empty", ["sentence 2020-01-01 无期徒刑"], who=CERTIFIED,
         status="suspend", evidence="sentence 2020-01-01"),
    case("2.3a-planned-end-on-D", ["sentence 2025-12-01 有期徒刑 2026-03-31"], who=CERTIFIED, status="suspend"),
    case("2.3a-planned-end-after-D", ["sentence 2025-12-01 有期徒刑 2026-04-01"], who=CERTIFIED,
         status="suspend"),
    case("2.3a-planned-end-before-D-served", ["sentence 2025-12-01 拘役 2026-03-30"], who=CERTIFIED,
         status="eligible", reason="last_certified"),
    case("2.3a-earliest-start-among-sentences", ["sentence 2026-01-10 有期徒刑", "sentence 2025-10-05 拘役"],
         who=CERTIFIED,
         evidence="sentence 2025-10-05"),
    case("2.3a-earliest-start-skips-served-sentence",
         ["sentence 2024-01-01 有期徒刑 2024-12-31", "sentence 2025-11-01 有期徒刑"], who=CERTIFIED,
         evidence="sentence 2025-11-01"),
    case("2.3a-earliest-start-skips-non-custodial",
         ["sentence 2025-01-01 有期徒刑缓刑", "sentence 2025-11-01 有期徒刑"], who=CERTIFIED,
         evidence="sentence 2025-11-01"),
    case("2.3a-release-ends-first-sentence-not-a-later-one",
         ["sentence 2025-01-01 有期徒刑", "release 2025-06-01", "sentence 2025-10-01 有期徒刑"],
         status="suspend", reason="imprisoned", evidence="sentence 2025-10-01"),
    case("2.3a-imprisoned-before-eligible-even-with-fresh-evidence",
         ["sentence 2025-12-01 有期徒刑", "rail 2026-01-05"],
         status="suspend", reason="imprisoned", C="2026-01-05", due="2027-01-05", remind=False),
    case("2.3a-imprisoned-with-no-C", ["sentence 2025-12-01 有期徒刑"],
         status="suspend", reason="imprisoned", C=None, due=None),
    # (b) declared missing
    case("2.3b-declared-missing", ["declared 2026-01-15 missing"], who=CERTIFIED,
         status="suspend", reason="declared_missing", evidence="declared_missing 2026-01-15"),
    case("2.3b-declared-missing-on-D", ["declared 2026-03-31 missing"], who=CERTIFIED,
         status="suspend", reason="declared_missing"),
    case("2.3b-declared-missing-after-D-ignored", ["declared 2026-04-01 missing"], who=CERTIFIED,
         status="eligible"),
    case("2.3b-alive-before-declaration-does-not-lift-it", ["rail 2026-01-10", "declared 2026-01-15 missing"],
         status="suspend", reason="declared_missing", C="2026-01-10"),
    # (c) unreachable
    case("2.3c-unreachable", ["unit_confirm 2026-01-15 unreachable"], who=CERTIFIED,
         status="suspend", reason="unreachable", evidence="unit_confirm 2026-01-15"),
    case("2.3c-unreachable-on-D", ["unit_confirm 2026-03-31 unreachable"], who=CERTIFIED,
         status="suspend", reason="unreachable"),
    case("2.3c-unreachable-after-D-ignored", ["unit_confirm 2026-04-01 unreachable"], who=CERTIFIED,
         status="eligible"),
    case("2.3c-alive-after-clears-it", ["unit_confirm 2026-01-15 unreachable", "rail 2026-02-01"],
         status="eligible", reason="rail"),
    case("2.3c-same-day-alive-is-not-after", ["unit_confirm 2026-01-15 unreachable", "rail 2026-01-15"],
         status="suspend", reason="unreachable", evidence="unit_confirm 2026-01-15"),
    case("2.3c-alive-before-does-not-clear", ["rail 2026-01-01", "unit_confirm 2026-01-15 unreachable"],
         status="suspend", reason="unreachable"),
    case("2.3c-unit-eligible-after-clears-it",
         ["unit_confirm 2026-01-15 unreachable", "unit_confirm 2026-02-15 eligible"],
         status="eligible", reason="unit_confirm"),
    case("2.3c-failed-app-after-does-not-clear",
         ["unit_confirm 2026-01-15 unreachable", "app_auth 2026-02-15 fail"], who=CERTIFIED,
         status="suspend", reason="unreachable"),
    case("2.3c-alive-after-D-does-not-clear", ["unit_confirm 2026-01-15 unreachable", "rail 2026-04-01"],
         who=CERTIFIED,
         status="suspend", reason="unreachable"),
    case("2.3c-roster-last-certified-after-is-not-alive-evidence", ["unit_confirm 2026-01-15 unreachable"],
         who=person(last="2026-02-01"),
         status="suspend", reason="unreachable", C="2026-02-01"),
    case("2.3c-later-unreachable-after-alive",
         ["unit_confirm 2025-10-01 unreachable", "rail 2025-11-01", "unit_confirm 2026-02-01 unreachable"],
         status="suspend", reason="unreachable", evidence="unit_confirm 2026-02-01"),
    # order between (a), (b), (c)
    case("2.3-order-imprisoned-before-missing", ["declared 2025-12-01 missing", "sentence 2026-01-01 有期徒刑"],
         reason="imprisoned", evidence="sentence 2026-01-01"),
    case("2.3-order-imprisoned-before-unreachable",
         ["unit_confirm 2025-12-01 unreachable", "sentence 2026-01-01 有期徒刑"],
         reason="imprisoned", evidence="sentence 2026-01-01"),
    case("2.3-order-missing-before-unreachable",
         ["unit_confirm 2025-12-01 unreachable", "declared 2026-01-01 missing"],
         reason="declared_missing", evidence="declared_missing 2026-01-01"),
    case("2.3-order-all-three",
         ["unit_confirm 2025-11-01 unreachable", "declared 2025-12-01 missing", "sentence 2026-01-01 拘役"],
         status="suspend", reason="imprisoned", evidence="sentence 2026-01-01"),
    case("2.3-order-non-custodial-falls-through-to-missing",
         ["declared 2025-12-01 missing", "sentence 2025-11-01 管制"],
         reason="declared_missing"),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), SUSPEND)
def test_suspend(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- §2.4 eligible -------------------------------------------------------------------------------------

ALIVE_RECORDS = {
    "rail": "rail 2026-01-10",
    "flight": "flight 2026-01-10",
    "hospital": "hospital 2026-01-10",
    "checkup": "checkup 2026-01-10",
    "border": "border 2026-01-10",
    "app_auth": "app_auth 2026-01-10 pass",
    "terminal_auth": "terminal_auth 2026-01-10 pass",
    "unit_confirm": "unit_confirm 2026-01-10 eligible",
    "overseas_review": "overseas_review 2026-01-10",
    "release": "release 2026-01-10",
}

# fmt: off
ELIGIBLE = [
    *(case(f"2.4-reason-is-kind-{kind}", [text], who=person(last="2025-01-01"),
           status="eligible", reason=kind, evidence=f"{kind} 2026-01-10", C="2026-01-10", due="2027-01-10")
      for kind, text in ALIVE_RECORDS.items()),
    case("2.4-reason-last-certified", who=person(last="2025-06-01", retired="2010-01-01"),
         status="eligible", reason="last_certified", evidence="last_certified 2025-06-01"),
    case("2.4-reason-retirement", who=person(retired="2025-06-01"),
         status="eligible", reason="retirement", evidence="retirement 2025-06-01"),
    case("2.4-due-day-after-D", who=person(last="2025-04-01"), status="eligible", due="2026-04-01"),
    case("2.4-due-on-D-is-not-eligible", who=person(last="2025-03-31"), status="pending", due="2026-03-31"),
    case("2.4-failed-app-is-not-the-reason", ["app_auth 2026-01-10 fail"], who=person(last="2025-06-01"),
         status="eligible", reason="last_certified"),
    case("2.4-failed-terminal-is-not-the-reason", ["terminal_auth 2026-01-10 fail"],
         who=person(last="2025-06-01"),
         status="eligible", reason="last_certified"),
    case("2.4-eligible-normal-recipient-no-action", ["rail 2026-01-10"], who=person(pension="2000.00"),
         status="eligible", action=None),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), ELIGIBLE)
def test_eligible(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- §2.5 pending --------------------------------------------------------------------------------------

# fmt: off
PENDING = [
    case("2.5-no-C-at-all",
         status="pending", reason="no_evidence", evidence=None, C=None, due=None, remind=False, channel=None,
         action=None),
    case("2.5-expired-evidence", ["rail 2025-03-31"],
         status="pending", reason="no_evidence", evidence="rail 2025-03-31", C="2025-03-31", due="2026-03-31"),
    case("2.5-expired-last-certified", who=person(last="2025-02-01"),
         status="pending", reason="no_evidence", evidence="last_certified 2025-02-01", C="2025-02-01",
         due="2026-02-01"),
    case("2.5-expired-retirement", who=person(retired="2010-07-01"),
         status="pending", reason="no_evidence", evidence="retirement 2010-07-01", C="2010-07-01",
         due="2011-07-01"),
    case("2.5-only-failed-app", ["app_auth 2026-03-01 fail"], status="pending", reason="no_evidence", C=None),
    case("2.5-only-failed-terminal", ["terminal_auth 2026-03-01 fail"],
         status="pending", reason="no_evidence", C=None),
    case("2.5-only-non-custodial-sentence", ["sentence 2026-01-01 有期徒刑缓刑"],
         status="pending", reason="no_evidence", evidence=None),
    case("2.5-unreachable-cleared-by-alive-that-has-since-expired",
         ["unit_confirm 2024-10-01 unreachable", "rail 2024-11-01"],
         status="pending", reason="no_evidence", evidence="rail 2024-11-01"),
    case("2.5-pending-suspended-recipient-no-action",
         who=person(status="suspended", since="2025-06-01", reason="无法联系", pension="2000.00"),
         status="pending", action=None),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), PENDING)
def test_pending(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- §2 remind and channel -------------------------------------------------------------------------------

MOBILE = "13812345678"

# fmt: off
REMIND = [
    case("2-remind-due-on-D-plus-3-months", who=person(last="2025-06-30", phone=MOBILE),
         status="eligible", due="2026-06-30", remind=True, channel="sms"),
    case("2-remind-due-day-after-D-plus-3-months", who=person(last="2025-07-01", phone=MOBILE),
         status="eligible", due="2026-07-01", remind=False, channel=None),
    case("2-remind-due-day-after-D", who=person(last="2025-04-01", phone=MOBILE),
         due="2026-04-01", remind=True, channel="sms"),
    case("2-remind-D-plus-3-clamped-to-feb-28", who=person(last="2025-02-28", phone=MOBILE),
         as_of="2025-11-30",
         due="2026-02-28", remind=True),
    case("2-remind-D-plus-3-clamped-not-overflowed-into-march", who=person(last="2025-03-01", phone=MOBILE),
         as_of="2025-11-30",
         due="2026-03-01", remind=False),
    case("2-remind-D-leap-day-plus-3", who=person(last="2027-05-29", phone=MOBILE), as_of="2028-02-29",
         due="2028-05-29", remind=True),
    case("2-remind-D-leap-day-plus-3-day-after", who=person(last="2027-05-30", phone=MOBILE),
         as_of="2028-02-29",
         remind=False),
    case("2-remind-from-evidence", ["flight 2025-05-20"], who=person(phone=MOBILE),
         reason="flight", remind=True, channel="sms"),
    case("2-channel-unit-without-phone", who=person(last="2025-06-30"), remind=True, channel="unit"),
    case("2-channel-unit-with-landline", who=person(last="2025-06-30", phone="0351-7654321"),
         remind=True, channel="unit"),
    case("2-channel-unit-mobile-starting-12", who=person(last="2025-06-30", phone="12812345678"),
         remind=True, channel="unit"),
    case("2-channel-unit-10-digits", who=person(last="2025-06-30", phone="1381234567"),
         remind=True, channel="unit"),
    case("2-channel-unit-12-digits", who=person(last="2025-06-30", phone="138123456789"),
         remind=True, channel="unit"),
    case("2-channel-sms-19x", who=person(last="2025-06-30", phone="19912345678"), remind=True, channel="sms"),
    case("2-channel-sms-with-country-code-and-spaces",
         who=person(last="2025-06-30", phone="+86 139 1234 5678"),
         remind=True, channel="sms"),
    case("2-no-remind-pending-even-if-due-soon", who=person(last="2025-03-31", phone=MOBILE),
         status="pending", remind=False, channel=None),
    case("2-no-remind-suspend-with-due-soon", ["unit_confirm 2026-01-15 unreachable"],
         who=person(last="2025-05-01", phone=MOBILE),
         status="suspend", due="2026-05-01", remind=False, channel=None),
    case("2-no-remind-review-with-due-soon", ["death 2025-04-10", "rail 2025-04-20"],
         who=person(phone=MOBILE),
         status="review", due="2026-04-20", remind=False, channel=None),
    case("2-no-remind-stop-with-due-soon", ["rail 2025-04-20", "death 2025-04-25"], who=person(phone=MOBILE),
         status="stop", due="2026-04-20", remind=False, channel=None),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), REMIND)
def test_remind_and_channel(
    who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]
) -> None:
    check(who, records, as_of, expected)


# --- §3 which records are alive evidence, which are loss records --------------------------------------------

# fmt: off
EVIDENCE_CLASS = [
    *(pytest.param(text, True, None, id=f"3-alive-{kind}") for kind, text in ALIVE_RECORDS.items()),
    pytest.param("app_auth 2026-01-10 fail", False, None, id="3-app-auth-fail-not-alive"),
    pytest.param("terminal_auth 2026-01-10 fail", False, None, id="3-terminal-auth-fail-not-alive"),
    pytest.param("unit_confirm 2026-01-10 lost", False, "unit_confirmed_lost", id="3-unit-lost-is-loss"),
    pytest.param("unit_confirm 2026-01-10 unreachable", False, None, id="3-unit-unreachable-neither"),
    pytest.param("death 2026-01-10", False, "death", id="3-death-is-loss"),
    pytest.param("cremation 2026-01-10", False, "cremation", id="3-cremation-is-loss"),
    pytest.param("declared 2026-01-10 dead", False, "declared_dead", id="3-declared-dead-is-loss"),
    pytest.param("declared 2026-01-10 missing", False, None, id="3-declared-missing-not-loss"),
    pytest.param("sentence 2026-01-10 有期徒刑", False, None, id="3-custodial-sentence-neither"),
    pytest.param("sentence 2026-01-10 管制", False, None, id="3-non-custodial-sentence-neither"),
]
# fmt: on


@pytest.mark.parametrize(("text", "alive", "loss"), EVIDENCE_CLASS)
def test_evidence_class(text: str, alive: bool, loss: str | None) -> None:
    record = rec(text)
    assert (is_alive(record), loss_kind(record)) == (alive, loss)


# --- §8 payment changes ------------------------------------------------------------------------------------

PAY = "2000.00"
NORMAL = person(pension=PAY)


def suspended(since: str | None, reason: str = "无法联系", pension: str | None = PAY) -> Recipient:
    return person(status="suspended", since=since, reason=reason, pension=pension)


# fmt: off
PAYMENTS = [
    # stop
    case("8-stop-normal-death-across-year-boundary", ["death 2025-12-10"], who=NORMAL,
         action="stop 2026-01 3 6000.00"),
    case("8-stop-normal-death-in-month-of-D-zero-months", ["death 2026-03-05"], who=NORMAL,
         action="stop 2026-04 0 0.00"),
    case("8-stop-normal-death-on-D", ["death 2026-03-31"], who=NORMAL, action="stop 2026-04 0 0.00"),
    case("8-stop-normal-death-month-before-D", ["death 2026-02-28"], who=NORMAL,
         action="stop 2026-03 1 2000.00"),
    case("8-stop-normal-death-first-of-month", ["death 2026-01-01"], who=NORMAL,
         action="stop 2026-02 2 4000.00"),
    case("8-stop-normal-cremation", ["cremation 2025-11-02"], who=NORMAL, action="stop 2025-12 4 8000.00"),
    case("8-stop-normal-declared-dead", ["declared 2025-09-30 dead"], who=NORMAL,
         action="stop 2025-10 6 12000.00"),
    case("8-stop-normal-unit-lost", ["unit_confirm 2026-01-20 lost"], who=NORMAL,
         action="stop 2026-02 2 4000.00"),
    case("8-stop-effective-after-earliest-loss", ["cremation 2026-02-03", "death 2026-01-28"], who=NORMAL,
         action="stop 2026-02 2 4000.00"),
    case("8-stop-D-in-january-across-year-boundary", ["death 2025-11-30"], who=NORMAL, as_of="2026-01-15",
         action="stop 2025-12 2 4000.00"),
    case("8-stop-death-in-december-D-in-december", ["death 2025-12-10"], who=NORMAL, as_of="2025-12-31",
         action="stop 2026-01 0 0.00"),
    case("8-stop-suspended-paid-until-month-before-since", ["death 2025-06-10"], who=suspended("2025-10-15"),
         action="stop 2025-07 3 6000.00"),
    case("8-stop-suspended-since-month-after-effective", ["death 2025-06-10"], who=suspended("2025-08-01"),
         action="stop 2025-07 1 2000.00"),
    case("8-stop-suspended-since-in-effective-month-zero", ["death 2025-06-10"], who=suspended("2025-07-05"),
         action="stop 2025-07 0 0.00"),
    case("8-stop-suspended-before-loss-zero", ["death 2025-06-10"], who=suspended("2025-03-01"),
         action="stop 2025-07 0 0.00"),
    case("8-stop-suspended-no-since-zero", ["death 2025-06-10"], who=suspended(None),
         action="stop 2025-07 0 0.00"),
    case("8-stop-suspended-imprisoned-recipient-dies", ["sentence 2024-01-01 有期徒刑", "death 2025-12-10"],
         who=suspended("2024-02-01", reason="服刑"),
         status="stop", action="stop 2026-01 0 0.00"),
    # Reading: "roster dates after D are ignored" (§2.4), so a 状态变更日期 after D counts as none.
    case("8-stop-suspended-since-after-D-counts-as-none", ["death 2025-12-10"], who=suspended("2026-05-01"),
         action="stop 2026-01 0 0.00"),
    case("8-stop-no-pension-amount-zero", ["death 2025-12-10"], who=person(), action="stop 2026-01 3 0.00"),
    case("8-stop-half-up-to-fen", ["death 2025-12-10"], who=person(pension="1234.565"),
         action="stop 2026-01 3 3703.70"),
    case("8-stop-half-up-not-half-even", ["death 2026-02-10"], who=person(pension="1000.125"),
         action="stop 2026-03 1 1000.13"),
    case("8-stop-half-up-below-half-rounds-down", ["death 2025-12-10"], who=person(pension="1234.564"),
         action="stop 2026-01 3 3703.69"),
    case("8-stop-decimal-not-float", ["death 2025-12-10"], who=person(pension="0.10"),
         action="stop 2026-01 3 0.30"),
    case("8-review-after-death-no-action", ["death 2025-12-10", "rail 2026-01-05"], who=NORMAL,
         status="review", action=None),
    # suspend
    case("8-suspend-imprisoned-across-year-boundary", ["sentence 2025-12-01 有期徒刑"],
         who=person(pension="3000.00", last="2025-06-01"),
         action="suspend 2026-01 3 9000.00"),
    case("8-suspend-imprisoned-from-earliest-start", ["sentence 2026-01-10 有期徒刑", "sentence 2025-10-05 拘役"],
         who=NORMAL,
         action="suspend 2025-11 5 10000.00"),
    case("8-suspend-declared-missing", ["declared 2026-02-14 missing"], who=NORMAL,
         action="suspend 2026-03 1 2000.00"),
    case("8-suspend-unreachable-on-D-zero-months", ["unit_confirm 2026-03-31 unreachable"], who=NORMAL,
         action="suspend 2026-04 0 0.00"),
    case("8-suspend-unreachable", ["unit_confirm 2025-11-20 unreachable"], who=NORMAL,
         action="suspend 2025-12 4 8000.00"),
    case("8-suspend-half-up-to-fen", ["declared 2025-12-10 missing"], who=person(pension="1234.565"),
         action="suspend 2026-01 3 3703.70"),
    case("8-suspend-no-pension", ["declared 2025-12-10 missing"], who=person(),
         action="suspend 2026-01 3 0.00"),
    case("8-suspend-on-suspended-recipient-no-action", ["sentence 2025-12-01 有期徒刑"],
         who=suspended("2025-12-05", reason="服刑"),
         status="suspend", action=None),
    case("8-suspend-unreachable-on-suspended-recipient-no-action", ["unit_confirm 2025-12-01 unreachable"],
         who=suspended("2025-12-05"),
         status="suspend", action=None),
    # resume, not imprisonment
    case("8-resume-back-pay-from-month-of-since", ["rail 2026-03-01"], who=suspended("2025-11-20"),
         status="eligible", action="resume 2026-04 5 10000.00"),
    case("8-resume-since-in-month-of-D-one-month", ["rail 2026-03-20"], who=suspended("2026-03-02"),
         action="resume 2026-04 1 2000.00"),
    case("8-resume-empty-reason-counts-as-not-imprisonment", ["unit_confirm 2026-02-01 eligible"],
         who=suspended("2026-01-31", reason=""),
         action="resume 2026-04 3 6000.00"),
    case("8-resume-after-unreachable-cleared",
         ["unit_confirm 2025-12-01 unreachable", "app_auth 2026-02-01 pass"], who=suspended("2025-12-05"),
         status="eligible", action="resume 2026-04 4 8000.00"),
    case("8-resume-via-roster-last-certified",
         who=person(status="suspended", since="2025-12-31", reason="待核实未认证", pension=PAY, last="2026-01-10" ),
         status="eligible", action="resume 2026-04 4 8000.00"),
    case("8-resume-D-in-december-effective-next-year", ["rail 2025-12-01"], who=suspended("2025-10-10"),
         as_of="2025-12-31",
         action="resume 2026-01 3 6000.00"),
    case("8-resume-half-up-to-fen", ["rail 2026-03-01"], who=suspended("2026-01-10", pension="1234.565"),
         action="resume 2026-04 3 3703.70"),
    # 月养老金 read to four places first (docs/rules.md §5): 1000.0049999 is 1000.0050, a month 1000.01.
    case("8-resume-pension-read-to-four-places", ["rail 2026-03-01"], who=suspended("2026-03-10", pension="1000.0049999"),
         action="resume 2026-04 1 1000.01"),
    case("8-resume-no-pension", ["rail 2026-03-01"], who=suspended("2026-01-10", pension=None),
         action="resume 2026-04 3 0.00"),
    case("8-resume-indefinite-suspension-is-no-life-sentence", ["rail 2026-03-01"],
         who=suspended("2025-11-20", reason="长期联系不上，无期限暂停发放"),
         status="eligible", action="resume 2026-04 5 10000.00"),
    # resume after imprisonment
    case("8-resume-imprisonment-from-month-after-release",
         ["sentence 2025-02-01 有期徒刑 2027-01-31", "release 2026-01-15"],
         who=suspended("2025-03-01", reason="服刑"),
         status="eligible", reason="release", action="resume 2026-04 2 4000.00"),
    case("8-resume-imprisonment-never-before-the-suspension",
         ["release 2020-03-10", "sentence 2025-05-20 有期徒刑 2026-05-19", "checkup 2026-09-01"],
         who=suspended("2025-06-01", reason="服刑"), as_of="2026-11-30",
         status="eligible", action="resume 2026-12 18 36000.00"),  # not 80 months from 2020-04
    case("8-resume-imprisonment-reason-contains-panxing", ["release 2026-01-15"],
         who=suspended("2025-03-01", reason="判刑入狱"),
         action="resume 2026-04 2 4000.00"),
    case("8-resume-imprisonment-reason-contains-xingshi", ["release 2026-01-15"],
         who=suspended("2025-03-01", reason="刑事处罚"),
         action="resume 2026-04 2 4000.00"),
    case("8-resume-imprisonment-reason-names-the-penalty", ["release 2026-01-15"],
         who=suspended("2025-03-01", reason="判处有期徒刑二年"),
         action="resume 2026-04 2 4000.00"),
    case("8-resume-imprisonment-reason-juyi", ["release 2026-01-15"],
         who=suspended("2025-03-01", reason="拘役六个月"),
         action="resume 2026-04 2 4000.00"),
    case("8-resume-imprisonment-reason-shouijan", ["rail 2026-03-01"],
         who=suspended("2025-03-01", reason="收监执行"),
         action="resume 2026-04 0 0.00"),
    case("8-resume-suspended-sentence-is-no-imprisonment", ["rail 2026-03-01"],
         who=suspended("2025-03-01", reason="判处有期徒刑一年缓刑二年"),
         action="resume 2026-04 13 26000.00"),
    case("8-resume-a-fine-is-no-imprisonment", ["rail 2026-03-01"],
         who=suspended("2025-03-01", reason="判处罚金"),
         action="resume 2026-04 13 26000.00"),
    case("8-resume-imprisonment-release-in-month-of-D-zero", ["release 2026-03-02"],
         who=suspended("2025-03-01", reason="服刑"),
         action="resume 2026-04 0 0.00"),
    case("8-resume-imprisonment-latest-release", ["release 2025-10-01", "release 2026-01-15"],
         who=suspended("2025-03-01", reason="服刑"),
         action="resume 2026-04 2 4000.00"),
    case("8-resume-imprisonment-release-across-year-boundary", ["release 2025-12-31"],
         who=suspended("2025-03-01", reason="服刑"),
         action="resume 2026-04 3 6000.00"),
    case("8-resume-imprisonment-no-release-zero", ["rail 2026-03-01"],
         who=suspended("2025-03-01", reason="服刑"),
         status="eligible", action="resume 2026-04 0 0.00"),
    case("8-resume-imprisonment-release-after-D-ignored", ["rail 2026-03-01", "release 2026-04-02"],
         who=suspended("2025-03-01", reason="服刑"),
         action="resume 2026-04 0 0.00"),
    case("8-resume-imprisonment-half-up", ["release 2025-12-15"],
         who=suspended("2025-03-01", reason="服刑", pension="1234.565"),
         action="resume 2026-04 3 3703.70"),
    # resume without 状态变更日期
    case("8-resume-no-since-zero-months", ["rail 2026-03-01"], who=suspended(None),
         status="eligible", action="resume 2026-04 0 0.00"),
    # nothing else
    case("8-pending-normal-no-action", who=NORMAL, status="pending", action=None),
    case("8-pending-suspended-no-action", who=suspended("2025-03-01"), status="pending", action=None),
    case("8-eligible-normal-no-action", ["rail 2026-03-01"], who=NORMAL, status="eligible", action=None),
]
# fmt: on


@pytest.mark.parametrize(("who", "records", "as_of", "expected"), PAYMENTS)
def test_payment_action(who: Recipient, records: list[Record], as_of: date, expected: dict[str, Any]) -> None:
    check(who, records, as_of, expected)


# --- properties ----------------------------------------------------------------------------------------

SUBS: dict[str, tuple[str, ...]] = {
    "app_auth": ("pass", "fail"),
    "terminal_auth": ("pass", "fail"),
    "unit_confirm": ("eligible", "lost", "unreachable"),
    "declared": ("dead", "missing"),
    "sentence": (
        "有期徒刑",
        "无期徒刑",
        "拘役",
        "死刑缓期执行",
        "有期徒刑缓刑",
        "管制",
        "暂予监外执行",
        "罚金",
    ),
}
KINDS = (*ALIVE_RECORDS, "death", "cremation", "declared", "sentence")
AS_OFS = tuple(
    date.fromisoformat(t) for t in ("2026-03-31", "2025-02-28", "2028-02-29", "2025-12-31", "2025-11-30")
)
# Days cluster around D and a year before it, so ties, boundaries and expiries are common.
OFFSETS = (0, 1, -1, -2, -31, -92, -365, -366, -367, -400, 2, 40)


@st.composite
def days(draw: st.DrawFn, as_of: date) -> date:
    return as_of + timedelta(days=draw(st.sampled_from(OFFSETS) | st.integers(-900, 60)))


@st.composite
def records(draw: st.DrawFn, as_of: date, after_d: bool = False) -> Record:
    kind = draw(st.sampled_from(KINDS))
    on = as_of + timedelta(days=draw(st.integers(1, 400))) if after_d else draw(days(as_of))
    end = draw(st.none() | days(as_of)) if kind == "sentence" else None
    return Record(kind=kind, day=on, sub=draw(st.sampled_from(SUBS.get(kind, ("",)))), end_date=end)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Recipient, list[Record], date]:
    as_of = draw(st.sampled_from(AS_OFS))
    maybe_day = st.none() | days(as_of)
    who = Recipient(
        person_no="P0001",
        id_number="14010519500101001X",
        benefit_status=draw(st.sampled_from(("normal", "suspended"))),
        status_since=draw(maybe_day),
        status_reason=draw(
            st.sampled_from(
                ("", "服刑", "判刑", "刑事处罚", "无法联系", "判处有期徒刑二年", "有期徒刑一年缓刑二年")
            )
        ),
        monthly_amount=draw(st.none() | st.decimals("0", "9999.999", places=3)),
        mobile=draw(st.sampled_from((None, MOBILE))),
        retirement_date=draw(maybe_day),
        last_certified_on=draw(maybe_day),
    )
    return who, draw(st.lists(records(as_of), max_size=8)), as_of


def _decide(scenario: tuple[Recipient, list[Record], date]) -> Decision:
    who, recs, as_of = scenario
    return decide(recipient=who, records=recs, as_of=as_of)


FAST = settings(max_examples=150, deadline=None)


@FAST
@given(scenarios())
def test_property_status_is_one_of_five(scenario: tuple[Recipient, list[Record], date]) -> None:
    assert _decide(scenario).status in STATUSES


@FAST
@given(scenarios())
def test_property_certified_on_never_after_D(scenario: tuple[Recipient, list[Record], date]) -> None:
    decision = _decide(scenario)
    assert decision.certified_on is None or decision.certified_on <= scenario[2]


@FAST
@given(scenarios())
def test_property_due_on_is_C_plus_12_months(scenario: tuple[Recipient, list[Record], date]) -> None:
    decision = _decide(scenario)
    if decision.certified_on is None:
        assert decision.due_on is None
    else:
        assert decision.due_on == add_months(decision.certified_on, 12)


@FAST
@given(scenarios())
def test_property_eligible_iff_due_after_D_below_higher_statuses(
    scenario: tuple[Recipient, list[Record], date],
) -> None:
    decision = _decide(scenario)
    if decision.status == "eligible":
        assert decision.due_on is not None and decision.due_on > scenario[2]
    if decision.status == "pending":
        assert decision.due_on is None or decision.due_on <= scenario[2]
        assert decision.reason == "no_evidence"


@FAST
@given(scenarios())
def test_property_remind_implies_eligible(scenario: tuple[Recipient, list[Record], date]) -> None:
    decision = _decide(scenario)
    if decision.remind:
        assert decision.status == "eligible"
        assert decision.channel in ("sms", "unit")
    else:
        assert decision.channel is None


@FAST
@given(scenarios(), st.data())
def test_property_records_after_D_change_nothing(
    scenario: tuple[Recipient, list[Record], date], data: st.DataObject
) -> None:
    who, recs, as_of = scenario
    later = data.draw(st.lists(records(as_of, after_d=True), min_size=1, max_size=4))
    assert decide(recipient=who, records=[*recs, *later], as_of=as_of) == _decide(scenario)


@FAST
@given(scenarios(), st.randoms(use_true_random=False))
def test_property_record_order_does_not_matter(
    scenario: tuple[Recipient, list[Record], date], rnd: Any
) -> None:
    who, recs, as_of = scenario
    shuffled = list(recs)
    rnd.shuffle(shuffled)
    assert decide(recipient=who, records=shuffled, as_of=as_of) == _decide(scenario)


@FAST
@given(scenarios())
def test_property_months_and_amount(scenario: tuple[Recipient, list[Record], date]) -> None:
    who = scenario[0]
    action = _decide(scenario).action
    if action is None:
        return
    assert action.months >= 0
    pension = who.monthly_amount or Decimal(0)
    assert action.amount == (action.months * pension).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert action.amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("benefit_status", "since", "reason", "kind", "month", "release", "months", "why"),
    [
        ("normal", None, "", "stop", "2026-10", None, 2, ""),
        (
            "normal",
            None,
            "",
            "stop",
            "2026-12",
            None,
            0,
            "养老金按月预发至 2026-11，生效月份 2026-12 起尚未发放",
        ),
        ("suspended", None, "", "stop", "2026-09", None, 0, "暂停人员无状态变更日期"),
        ("suspended", date(2026, 11, 10), "", "stop", "2026-09", None, 2, ""),
        (
            "suspended",
            date(2026, 5, 1),
            "",
            "stop",
            "2026-09",
            None,
            0,
            "状态变更日期 2026-05-01 起已暂停发放",
        ),
        ("normal", None, "", "suspend", "2026-11", None, 1, ""),
        ("normal", None, "", "suspend", "2026-12", None, 0, "生效月份 2026-12 起尚未发放"),
        ("suspended", None, "", "resume", "2026-12", None, 0, "无状态变更日期，补发月数无法确定"),
        ("suspended", date(2026, 9, 5), "待核实", "resume", "2026-12", None, 3, ""),
        ("suspended", date(2025, 5, 1), "服刑", "resume", "2026-12", None, 0, "无刑满释放记录"),
        ("suspended", date(2025, 5, 1), "服刑", "resume", "2026-12", date(2026, 8, 3), 3, ""),
        (
            "suspended",
            date(2025, 5, 1),
            "服刑",
            "resume",
            "2026-12",
            date(2026, 11, 3),
            0,
            "刑满释放（2026-11-03）",
        ),
    ],
)
def test_payment_months_gives_the_months_and_why_they_are_0_from_one_set_of_branches(
    benefit_status: BenefitStatus, since: date | None, reason: str, kind: str, month: str, release: date | None,
    months: int, why: str,
) -> None:  # fmt: skip
    """`rules.payment_months` is the one place of §5's branches: the months it gives are the
    months of `payment_action` (a run's or a finding's action), and its reason — empty when the
    months are more than 0 — is what the pages show beside 0 个月 (`benefits.selectors.zero_months_reason`)."""
    from zige.rules import payment_action, payment_months

    as_of = date(2026, 11, 30)
    who = Recipient(person_no="1", id_number="x", benefit_status=benefit_status, status_since=since,
                    status_reason=reason, monthly_amount=Decimal("1000"))  # fmt: skip
    got = payment_months(recipient=who, kind=kind, effective_month=month, latest_release=release, as_of=as_of)
    assert got.months == months
    assert (why in got.reason) if why else got.reason == ""
    status = {"stop": "stop", "suspend": "suspend", "resume": "eligible"}[kind]
    evidence = date(int(month[:4]), int(month[5:]), 1) - timedelta(days=1)  # the month before `month`
    decision = Decision(status=status, reason="", evidence_kind="x", evidence_date=evidence, certified_on=None,
                        due_on=None, remind=False, channel=None, action=None)  # fmt: skip
    action = payment_action(recipient=who, decision=decision, latest_release=release, as_of=as_of)
    assert action is not None and action.months == months
    if kind != "resume":  # a resume is always from the month after `as_of`
        assert action.effective_month == month
    assert action.amount == Decimal(months) * 1000


def test_amounts_show_rounded_half_up_to_fen() -> None:
    """docs/rules.md §5: half-up to fen, on the page too. Python's formatting alone rounds
    half-even: a four-place 月养老金 of 2976.545 showed 2,976.54, beside an amount of 3 × 2976.545
    = 8,929.64 that the checker could not make out of it."""
    from zige.audit.display import _money
    from zige.rules import payment_amount, to_fen
    from zige.web.templatetags.zige import money

    assert to_fen(Decimal("2976.545")) == Decimal("2976.55") and to_fen(Decimal("2976.544")) == Decimal(
        "2976.54"
    )
    assert money(Decimal("2976.5450")) == "2,976.55" and _money("2976.545") == "2,976.55"
    assert money("3052691.2") == "3,052,691.20" and money(None) == "0.00"
    assert payment_amount(3, Decimal("2976.545")) == Decimal("8929.64")
