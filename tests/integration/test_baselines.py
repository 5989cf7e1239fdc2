"""The benchmark's baselines (issue 6 item 3) decide exactly what the engine decides.

On a generated province, `pandas_certify` (merge, group by, apply) and `splink_certify`
(Splink's deterministic links, then the same apply) must give every recipient the engine's
status, reason, deciding evidence, due date and payment action. Small hand-made frames pin the
linkage itself: what Splink links, and what it must not.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any, Literal

import pandas as pd
import pytest

from zige.bench.baselines import (
    as_date,
    pandas_certify,
    recipients_evidence_from_engine,
    splink_certify,
    splink_link,
)
from zige.demo import generate_province
from zige.engine.pipeline import Certification, CertifyConfig, discover_feeds
from zige.ids import check_digit, store_key

AS_OF = date(2026, 11, 30)
COMPARED = (
    "status",
    "reason",
    "evidence_kind",
    "evidence_date",
    "certified_on",
    "due_on",
    "remind",
    "channel",
)
ACTION = ("action", "effective_month", "months", "amount")


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("baselines")
    generated = generate_province(base / "input", recipients=2500, as_of=AS_OF, seed=23)
    config = CertifyConfig(roster=generated.roster, feeds=generated.feeds, as_of=AS_OF, out=base / "unused")
    run = Certification(config)
    run.stage(discover_feeds(generated.feeds, config.kinds))
    run.decide()
    recipients, evidence = recipients_evidence_from_engine(run.con)
    decisions = {
        row[0]: row[1:]
        for row in run.con.execute(f"SELECT person_no, {', '.join(COMPARED)} FROM decisions").fetchall()
    }
    actions = {
        row[0]: row[1:]
        for row in run.con.execute(f"SELECT person_no, {', '.join(ACTION)} FROM actions").fetchall()
    }
    ids = dict(run.con.execute("SELECT person_no, id_number FROM recipients").fetchall())
    run.con.close()
    return {
        "recipients": recipients,
        "evidence": evidence,
        "decisions": decisions,
        "actions": actions,
        "ids": ids,
    }


def _none(value: Any) -> Any:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def assert_same_as_engine(result: pd.DataFrame, province: dict[str, Any]) -> None:
    decisions, actions = province["decisions"], province["actions"]
    assert len(result) == len(decisions) == result["person_no"].nunique()
    statuses = set()
    for row in result.to_dict("records"):
        person_no = row["person_no"]
        got = tuple(as_date(row[c]) if c.endswith(("_date", "_on")) else _none(row[c]) for c in COMPARED)
        assert got == decisions[person_no], person_no
        statuses.add(row["status"])
        if _none(row["action"]) is None:
            assert person_no not in actions, person_no
        else:
            want = actions[person_no]
            assert (row["action"], row["effective_month"], int(row["months"]), Decimal(row["amount"])) == want
    assert statuses == {"eligible", "stop", "suspend", "review", "pending"}, "every status is exercised"


@pytest.mark.slow
def test_frames_from_the_engine_carry_the_integer_id_key(province: dict[str, Any]) -> None:
    recipients, evidence = province["recipients"], province["evidence"]
    assert {"person_no", "id_number", "benefit_status", "monthly_amount", "status_since"} <= set(recipients)
    assert list(evidence.columns) == [
        "id_key", "feed_kind", "event_date", "end_date", "sub", "detail", "name_key",
    ]  # fmt: skip
    for row in recipients.head(50).itertuples():
        assert row.id_key == store_key(row.id_number)
    assert str(evidence["id_key"].dtype) == "int64"
    assert isinstance(recipients["monthly_amount"].dropna().iloc[0], Decimal)


@pytest.mark.slow
def test_pandas_baseline_decides_every_person_as_the_engine(province: dict[str, Any]) -> None:
    result = pandas_certify(recipients=province["recipients"], evidence=province["evidence"], as_of=AS_OF)
    assert_same_as_engine(result, province)


@pytest.mark.slow
@pytest.mark.parametrize("decide_with", ["pandas", "engine"])
def test_splink_baseline_decides_every_person_as_the_engine(
    province: dict[str, Any], decide_with: Literal["pandas", "engine"]
) -> None:
    result = splink_certify(
        recipients=province["recipients"], evidence=province["evidence"], as_of=AS_OF, decide_with=decide_with
    )
    assert_same_as_engine(result, province)
    assert result.attrs["link_seconds"] > 0


@pytest.mark.slow
def test_dates_read_back_as_pandas_datetimes_give_the_same_counts(province: dict[str, Any]) -> None:
    """The store's Parquet files read into pandas give datetime64 columns, not date objects."""
    recipients = province["recipients"].copy()
    evidence = province["evidence"].copy()
    for frame, columns in (
        (recipients, ("status_since", "retirement_date", "last_certified_on")),
        (evidence, ("event_date", "end_date")),
    ):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column])
    recipients["monthly_amount"] = recipients["monthly_amount"].astype(float)
    engine_counts = pd.Series([d[0] for d in province["decisions"].values()]).value_counts()
    for certify in (pandas_certify, partial(splink_certify, decide_with="engine")):
        result = certify(recipients=recipients, evidence=evidence, as_of=AS_OF)
        assert result["status"].value_counts().to_dict() == engine_counts.to_dict(), certify


@pytest.mark.slow
def test_splink_links_every_evidence_row_of_a_recipient(province: dict[str, Any]) -> None:
    recipients, evidence = province["recipients"], province["evidence"]
    keys = set(recipients["id_key"])
    linked = splink_link(recipients=recipients, evidence=evidence)
    assert linked["matched_rows"] == int(evidence["id_key"].isin(keys).sum())
    assert linked["matched_people"] == len(keys & set(evidence["id_key"]))
    assert linked["seconds"] > 0


# --- hand-made frames: the linkage and the apply step on their own --------------------------


def make_id(birth: str, seq: str) -> str:
    first17 = f"140105{birth}{seq}"
    return first17 + check_digit(first17)


def recipient(person_no: str, ident: str, name: str, **extra: Any) -> dict[str, Any]:
    row = {
        "person_no": person_no, "name": name, "name_key": name, "id_number": ident, "id_key": store_key(ident),
        "unit_no": "U1", "benefit_status": "normal", "monthly_amount": Decimal("3000.00"),
        "mobile": "13812345678", "status_since": None, "status_reason": "", "retirement_date": None,
        "last_certified_on": None,
    }  # fmt: skip
    return {**row, **extra}


def record(ident: str, kind: str, day: date, sub: str | None = None, **extra: Any) -> dict[str, Any]:
    row = {
        "id_key": store_key(ident), "feed_kind": kind, "event_date": day, "end_date": None, "sub": sub,
        "detail": "", "name_key": "",
    }  # fmt: skip
    return {**row, **extra}


A = make_id("19500101", "011")
B = make_id("19520202", "022")
B_TYPO = make_id("19520202", "023")  # another valid ID with B's birth date: a typo that passes
C = make_id("19540303", "033")
STRANGER = make_id("19560404", "044")

CASES = [
    # (person, records, status, reason)
    ("A", [record(A, "rail", date(2026, 5, 1))], "eligible", "rail"),
    ("A", [record(A, "death", date(2026, 3, 1))], "stop", "death"),
    (
        "A",
        [record(A, "death", date(2026, 3, 1)), record(A, "hospital", date(2026, 4, 1))],
        "review",
        "alive_after_death",
    ),
    ("A", [record(A, "sentence", date(2026, 1, 5), "custodial")], "suspend", "imprisoned"),
    ("A", [record(A, "sentence", date(2026, 1, 5), "non_custodial")], "pending", "no_evidence"),
    ("A", [record(A, "rail", date(2025, 10, 1))], "pending", "no_evidence"),
    ("A", [record(A, "app_auth", date(2026, 6, 1), "fail")], "pending", "no_evidence"),
    ("A", [record(STRANGER, "rail", date(2026, 5, 1))], "pending", "no_evidence"),
    ("A", [record(A, "rail", date(2026, 12, 5))], "pending", "no_evidence"),
]


CERTIFIERS = (pandas_certify, splink_certify, partial(splink_certify, decide_with="engine"))


@pytest.mark.parametrize(("person", "records", "status", "reason"), CASES)
def test_both_baselines_apply_the_rules_to_each_persons_own_records(
    person: str, records: list[dict[str, Any]], status: str, reason: str
) -> None:
    recipients = pd.DataFrame([recipient("P1", A, "甲"), recipient("P2", C, "丙")])
    evidence = pd.DataFrame([*records, record(C, "death", date(2026, 2, 1))])
    for certify in CERTIFIERS:
        result = certify(recipients=recipients, evidence=evidence, as_of=AS_OF).set_index("person_no")
        assert (result.loc["P1", "status"], result.loc["P1", "reason"]) == (status, reason), certify
        assert (result.loc["P2", "status"], result.loc["P2", "reason"]) == ("stop", "death")


def test_terminated_recipients_are_not_decided() -> None:
    recipients = pd.DataFrame(
        [recipient("P1", A, "甲"), recipient("P2", C, "丙", benefit_status="terminated")]
    )
    evidence = pd.DataFrame([record(A, "rail", date(2026, 5, 1))])
    for certify in CERTIFIERS:
        result = certify(recipients=recipients, evidence=evidence, as_of=AS_OF)
        assert list(result["person_no"]) == ["P1"]


def test_splink_links_on_the_exact_id_key_and_optionally_on_name_and_birth_date() -> None:
    recipients = pd.DataFrame([recipient("P1", A, "甲"), recipient("P2", B, "乙")])
    evidence = pd.DataFrame(
        [
            record(A, "rail", date(2026, 5, 1), name_key="甲"),
            record(A, "flight", date(2026, 6, 1), name_key="甲"),
            record(B_TYPO, "hospital", date(2026, 7, 1), name_key="乙"),  # same name and birth, other ID
            record(B_TYPO, "hospital", date(2026, 7, 2), name_key="丁"),  # other name: never linked
            record(STRANGER, "rail", date(2026, 5, 1), name_key="甲"),  # same name, other birth date
        ]
    )
    exact = splink_link(recipients=recipients, evidence=evidence)
    assert (exact["matched_rows"], exact["matched_people"]) == (2, 1)
    loose = splink_link(recipients=recipients, evidence=evidence, name_birth=True)
    assert (loose["matched_rows"], loose["matched_people"]) == (3, 2)
    result = splink_certify(recipients=recipients, evidence=evidence, as_of=AS_OF, name_birth=True)
    assert result.set_index("person_no").loc["P2", "reason"] == "hospital"
    result = splink_certify(recipients=recipients, evidence=evidence, as_of=AS_OF)
    assert result.set_index("person_no").loc["P2", "status"] == "pending"


def test_the_action_carries_the_amount_in_decimal_yuan() -> None:
    recipients = pd.DataFrame([recipient("P1", A, "甲", monthly_amount=Decimal("1234.56"))])
    evidence = pd.DataFrame([record(A, "death", date(2026, 8, 15))])
    row = pandas_certify(recipients=recipients, evidence=evidence, as_of=AS_OF).iloc[0]
    assert (row["action"], row["effective_month"], row["months"]) == ("stop", "2026-09", 3)
    assert row["amount"] == Decimal("3703.68")
