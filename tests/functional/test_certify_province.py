"""`zige certify` end to end on a generated province, checked from its output files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from zige import rules
from zige.demo import generate_province
from zige.engine.pipeline import Certification, CertifyConfig, discover_feeds

AS_OF = date(2026, 11, 30)
STATUSES = {"eligible", "stop", "suspend", "review", "pending"}
ZIGE = [sys.executable, "-m", "zige"]


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("province")
    generated = generate_province(base / "input", recipients=4000, as_of=AS_OF, seed=11)
    out = base / "out"
    completed = subprocess.run(
        [*ZIGE, "certify", "--roster", str(generated.roster), "--feeds", str(generated.feeds),
         "--as-of", AS_OF.isoformat(), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return generated.roster, generated.feeds, out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_output_file_is_written(province: tuple[Path, Path, Path]) -> None:
    _, _, out = province
    for name in (
        "results.csv",
        "actions.csv",
        "rejects.csv",
        "reminders.csv",
        "summary.json",
        "out_of_province.xlsx",
    ):
        assert (out / name).is_file(), name
    assert list((out / "pending").glob("*.xlsx"))


def test_results_have_the_contract_columns_and_one_row_per_recipient(
    province: tuple[Path, Path, Path],
) -> None:
    _, _, out = province
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == [
        "person_no", "id_number", "name", "unit_no", "status", "reason", "evidence_kind", "evidence_date",
        "certified_on", "due_on", "remind", "channel",
    ]  # fmt: skip
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert len(rows) == summary["recipients"] == sum(summary["status"].values())
    assert len({r["person_no"] for r in rows}) == len(rows)
    assert {r["status"] for r in rows} == STATUSES, "a province of 4,000 exercises every status"
    for row in rows:
        assert row["remind"] in ("0", "1")
        assert (row["channel"] != "") == (row["remind"] == "1")
        if row["certified_on"]:
            assert date.fromisoformat(row["due_on"]) > date.fromisoformat(row["certified_on"])
        assert len(row["id_number"]) == 18


def test_counts_reconcile_per_file_and_match_rejects_csv(province: tuple[Path, Path, Path]) -> None:
    _, _, out = province
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rejects = Counter(r["file"] for r in read_csv(out / "rejects.csv"))
    for report in summary["files"]:
        assert report["rows_read"] == report["rows_used"] + report["rows_rejected"] + report["duplicate_rows"]
        assert rejects[report["file"]] == report["rows_rejected"], report["file"]
    assert sum(rejects.values()) == summary["rejects"]["total"] > 0
    for reject in read_csv(out / "rejects.csv"):
        assert int(reject["row"]) >= 2 and reject["field"] and reject["reason"]


def test_results_equal_the_python_rules_on_the_same_data(province: tuple[Path, Path, Path]) -> None:
    """The whole province, decided again person by person by `zige.rules` from the staged data."""
    roster, feeds, out = province
    config = CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=out / "unused")
    run = Certification(config)
    run.stage(discover_feeds(feeds, config.kinds))
    run.decide()
    records: dict[str, list[rules.Record]] = defaultdict(list)
    for ident, kind, day, sub, end in run.con.execute(
        "SELECT id_number, feed_kind, event_date, sub, end_date FROM evidence"
    ).fetchall():
        penalty = {"custodial": "有期徒刑", "non_custodial": "管制"}.get(sub, sub or "")
        records[ident].append(rules.Record(kind=kind, day=day, sub=penalty, end_date=end))
    people = run.con.execute(
        "SELECT person_no, id_number, benefit_status, status_since, status_reason, monthly_amount, mobile, "
        "retirement_date, last_certified_on FROM recipients"
    ).fetchall()
    run.con.close()
    results = {r["person_no"]: r for r in read_csv(out / "results.csv")}
    actions = {r["person_no"]: r for r in read_csv(out / "actions.csv")}
    assert len(people) == len(results)
    for person_no, ident, benefit, since, reason, amount, mobile, retired, last in people:
        recipient = rules.Recipient(
            person_no=person_no, id_number=ident, benefit_status=benefit, status_since=since,
            status_reason=reason, monthly_amount=amount, mobile=mobile, retirement_date=retired,
            last_certified_on=last,
        )  # fmt: skip
        want = rules.decide(recipient=recipient, records=records[ident], as_of=AS_OF)
        got = results[person_no]
        assert (got["status"], got["reason"], got["evidence_kind"], got["evidence_date"]) == (
            want.status, want.reason, want.evidence_kind or "", str(want.evidence_date or ""),
        ), person_no  # fmt: skip
        assert got["due_on"] == str(want.due_on or "")
        if want.action is None:
            assert person_no not in actions
        else:
            action = actions[person_no]
            assert action["action"] == want.action.action
            assert action["effective_month"] == want.action.effective_month
            assert int(action["months"]) == want.action.months
            assert Decimal(action["amount"]) == want.action.amount


def test_actions_are_decimal_yuan_and_consistent_with_results(province: tuple[Path, Path, Path]) -> None:
    _, _, out = province
    statuses = {r["person_no"]: r["status"] for r in read_csv(out / "results.csv")}
    actions = read_csv(out / "actions.csv")
    assert {a["action"] for a in actions} == {"stop", "suspend", "resume"}
    for action in actions:
        assert action["amount"].count(".") == 1 and len(action["amount"].split(".")[1]) == 2
        assert len(action["effective_month"]) == 7
        expected_status = {"stop": "stop", "suspend": "suspend", "resume": "eligible"}[action["action"]]
        assert statuses[action["person_no"]] == expected_status
    stops = [a for a in actions if a["action"] == "stop"]
    assert len(stops) == sum(1 for s in statuses.values() if s == "stop")


def test_reminders_match_the_remind_flag(province: tuple[Path, Path, Path]) -> None:
    _, _, out = province
    flagged = {r["person_no"]: r for r in read_csv(out / "results.csv") if r["remind"] == "1"}
    reminders = read_csv(out / "reminders.csv")
    assert {r["person_no"] for r in reminders} == set(flagged)
    for reminder in reminders:
        assert reminder["channel"] == flagged[reminder["person_no"]]["channel"]
        assert reminder["due_on"] == flagged[reminder["person_no"]]["due_on"]
        if reminder["channel"] == "sms":
            assert len(reminder["phone"]) == 11 and reminder["phone"].startswith("1")
        else:
            assert reminder["phone"] == ""
        assert "认证" in reminder["message"]


def test_pending_workbooks_list_each_units_pending_and_review_people(
    province: tuple[Path, Path, Path],
) -> None:
    _, _, out = province
    expected: dict[str, set[str]] = defaultdict(set)
    for row in read_csv(out / "results.csv"):
        if row["status"] in ("pending", "review"):
            expected[row["unit_no"]].add(row["id_number"])
    files = {p.stem: p for p in (out / "pending").glob("*.xlsx")}
    assert set(files) == set(expected)
    unit_no, path = sorted(files.items())[0]
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    texts = [str(c.value) for row in sheet.iter_rows(max_row=6) for c in row if c.value]
    assert any("领取养老保险待遇资格待核实人员确认表" in t for t in texts)
    assert any(unit_no in t for t in texts)
    assert sheet.freeze_panes is not None
    ids = {
        c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str) and len(c.value) == 18
    }
    assert expected[unit_no] <= ids


def test_out_of_province_lists_other_provinces_without_a_card(province: tuple[Path, Path, Path]) -> None:
    _, _, out = province
    sheet = openpyxl.load_workbook(out / "out_of_province.xlsx").active
    assert sheet is not None
    ids = [
        c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str) and len(c.value) == 18
    ]
    assert ids, "the demo province has out-of-province recipients without a card"
    assert all(not i.startswith("14") for i in ids)


def test_rerun_gives_identical_results(province: tuple[Path, Path, Path], tmp_path: Path) -> None:
    roster, feeds, out = province
    subprocess.run(
        [*ZIGE, "certify", "--roster", str(roster), "--feeds", str(feeds), "--as-of", AS_OF.isoformat(),
         "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("results.csv", "actions.csv", "rejects.csv", "reminders.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_fatal_error_is_one_line_and_non_zero(tmp_path: Path, province: tuple[Path, Path, Path]) -> None:
    roster, _, _ = province
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "taxi_2026.csv").write_text("身份证号,姓名,日期\n", encoding="utf-8")
    completed = subprocess.run(
        [*ZIGE, "certify", "--roster", str(roster), "--feeds", str(feeds), "--as-of", "2026-11-30",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode != 0
    assert "taxi_2026.csv" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "out" / "results.csv").exists()
