"""Certification runs over the system of record: the same decisions as `zige certify`, what
changed since the previous run, reproducibility, failure and the scoped selectors."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.http import Http404

from tests.factories import (
    NOW,
    RecipientFactory,
    RunFactory,
    UnitOperatorFactory,
    UserFactory,
    finding_evidence,
    make_id,
    write_csv,
)
from tests.sessions import SecondSession
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.certification import selectors
from zige.certification.models import Decision, DecisionChange, Run, RunStatus
from zige.certification.services import run_execute, run_submit, runs_mark_interrupted, runs_prune_decisions
from zige.demo import generate_province
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.pipeline import CertifyConfig, certify, discover_feeds
from zige.feeds import services as feed_services
from zige.feeds import store
from zige.feeds.models import ImportBatch, ImportStatus, PushedResult
from zige.roster.models import Recipient, Unit

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 30)
ROSTER_HEADER = [
    "个人编号",
    "姓名",
    "身份证号",
    "单位编号",
    "单位名称",
    "待遇状态",
    "月养老金",
    "联系电话",
    "退休日期",
    "上次认证日期",
]
ID_A = make_id(11, date(1950, 1, 1))
ID_B = make_id(12, date(1951, 1, 1))
ID_C = make_id(13, date(1952, 1, 1))
ID_D = make_id(14, date(1953, 1, 1))


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    return tmp_path / "data"


def do_import(path: Path, kind: str | None = None, now: datetime = NOW) -> ImportBatch:
    batch = feed_services.import_submit(
        source=path, file_name=path.name, kind=kind, user=None, now=now, enqueue=False
    )
    if batch.status == ImportStatus.QUEUED:
        batch = feed_services.import_execute(batch_id=batch.pk, now=now)
    assert batch.status == ImportStatus.SUCCEEDED, (path.name, batch.message)
    return batch


def do_run(as_of: date = AS_OF, now: datetime = NOW) -> Run:
    run = run_submit(as_of=as_of, user=None, now=now, enqueue=False)
    run = run_execute(run_id=run.pk, now=now)
    assert run.status == RunStatus.SUCCEEDED, run.message
    return run


DECISION_FIELDS = (
    "status", "reason", "evidence_kind", "evidence_date", "certified_on", "due_on", "remind", "channel",
    "action", "effective_month", "months", "amount",
)  # fmt: skip


def decisions_of(run: Run) -> dict[str, tuple[Any, ...]]:
    rows = Decision.objects.filter(run=run).values_list("recipient__person_no", *DECISION_FIELDS)
    return {row[0]: tuple(row[1:]) for row in rows}


# ---------------------------------------------------------------------------------------------
# The same decisions as `zige certify`


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    base = tmp_path_factory.mktemp("province")
    generated = generate_province(base / "input", recipients=1500, as_of=AS_OF, seed=7)
    out = base / "certify"
    certify(CertifyConfig(roster=generated.roster, feeds=generated.feeds, as_of=AS_OF, out=out))
    return generated, out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def expected_from_certify(out: Path) -> dict[str, tuple[Any, ...]]:
    """results.csv and actions.csv as the tuples the Decision rows hold."""
    actions = {row["person_no"]: row for row in read_csv(out / "actions.csv")}
    expected = {}
    for row in read_csv(out / "results.csv"):
        action = actions.get(row["person_no"])
        expected[row["person_no"]] = (
            row["status"],
            row["reason"],
            row["evidence_kind"],
            date.fromisoformat(row["evidence_date"]) if row["evidence_date"] else None,
            date.fromisoformat(row["certified_on"]) if row["certified_on"] else None,
            date.fromisoformat(row["due_on"]) if row["due_on"] else None,
            row["remind"] == "1",
            row["channel"],
            action["action"] if action else "",
            action["effective_month"] if action else "",
            int(action["months"]) if action else None,
            Decimal(action["amount"]) if action else None,
        )
    return expected


def test_a_run_decides_exactly_as_zige_certify_and_is_reproducible(province: tuple[Any, Path]) -> None:
    generated, out = province
    do_import(generated.roster, "roster")
    for path, _kind in discover_feeds(generated.feeds, BUILTIN_KINDS):
        do_import(path)

    first = do_run()
    expected = expected_from_certify(out)
    decided = decisions_of(first)
    assert len(decided) == len(expected) == first.recipients
    mismatches = {p: (decided.get(p), e) for p, e in expected.items() if decided.get(p) != e}
    assert not mismatches, list(mismatches.items())[:5]

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert first.summary["status"] == summary["status"]
    assert first.summary["status_reason"] == summary["status_reason"]
    assert first.summary["actions"] == summary["actions"]
    assert first.summary["reminders"] == summary["reminders"]
    assert first.summary["changes"]["previous_run"] is None and first.changed == 0
    assert (
        first.summary["units"]["top"]
        and sum(u["total"] for u in first.summary["units"]["top"]) <= first.recipients
    )
    assert first.imports.count() == ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED).count()
    assert len(first.inputs_fingerprint) == 64

    # Same inputs and as-of: the same decisions, the same fingerprint, nothing changed.
    second = do_run(now=datetime(2026, 12, 1, tzinfo=UTC))
    assert second.inputs_fingerprint == first.inputs_fingerprint
    assert decisions_of(second) == decided
    assert second.previous_id == first.pk and second.changed == 0
    assert not DecisionChange.objects.filter(run=second).exists()

    # The Parquet copy holds the same decisions.
    copy = pq.read_table(store.run_decisions_file(second.pk))
    assert copy.num_rows == second.recipients
    # Another as-of date is another fingerprint.
    later = do_run(as_of=date(2026, 12, 31), now=datetime(2026, 12, 31, 9, tzinfo=UTC))
    assert later.inputs_fingerprint != first.inputs_fingerprint


# ---------------------------------------------------------------------------------------------
# What changed since the previous run


def roster_row(no: str, name: str, id_number: str, unit: str = "U1", status: str = "正常") -> list[str]:
    return [
        no,
        name,
        id_number,
        unit,
        f"单位{unit}",
        status,
        "3000",
        "13812345678",
        "2010-01-01",
        "2026-01-15",
    ]


def test_changes_between_two_runs(tmp_path: Path) -> None:
    b_row = roster_row("P002", "李四", ID_B)
    b_row[-1] = "2025-06-01"  # certified 18 months ago: pending without new evidence
    do_import(
        write_csv(
            tmp_path / "roster1.csv",
            ROSTER_HEADER,
            [roster_row("P001", "张三", ID_A), b_row, roster_row("P003", "王五", ID_C, "U2")],
        ),
        "roster",
    )
    first = do_run()
    assert {p: d[:2] for p, d in decisions_of(first).items()} == {
        "P001": ("eligible", "last_certified"),
        "P002": ("pending", "no_evidence"),
        "P003": ("eligible", "last_certified"),
    }

    do_import(
        write_csv(
            tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], [[ID_A, "张三", "2026-10-01"]]
        )
    )
    do_import(
        write_csv(
            tmp_path / "rail_2026.csv",
            ["身份证号", "姓名", "乘车日期", "车次"],
            [[ID_B, "李四", "2026-11-01", "G1"]],
        )
    )
    do_import(
        write_csv(
            tmp_path / "roster2.csv",
            ROSTER_HEADER,
            [roster_row("P003", "王五", ID_C, "U2", status="终止"), roster_row("P004", "赵六", ID_D, "U2")],
        ),
        "roster",
    )
    second = do_run(now=datetime(2026, 12, 1, tzinfo=UTC))

    assert second.previous_id == first.pk
    changes = {
        c.recipient.person_no: (c.old_status, c.old_reason, c.new_status, c.new_reason, c.unit.unit_no)
        for c in DecisionChange.objects.filter(run=second).select_related("recipient", "unit")
    }
    assert changes == {
        "P001": ("eligible", "last_certified", "stop", "death", "U1"),
        "P002": ("pending", "no_evidence", "eligible", "rail", "U1"),
        "P003": ("eligible", "last_certified", "", "", "U2"),  # 终止: no longer in the run
        "P004": ("", "", "eligible", "last_certified", "U2"),  # new
    }
    assert second.changed == 4
    assert second.summary["changes"]["transitions"] == {
        "->eligible": 1, "eligible>-": 1, "eligible>stop": 1, "pending>eligible": 1
    }  # fmt: skip
    stop = decisions_of(second)["P001"]
    assert stop[DECISION_FIELDS.index("action")] == "stop"
    assert stop[DECISION_FIELDS.index("effective_month")] == "2026-11"
    assert stop[DECISION_FIELDS.index("months")] == 1
    assert stop[DECISION_FIELDS.index("amount")] == Decimal("3000.00")
    assert second.summary["actions"]["stop"] == {"count": 1, "months": 1, "amount": "3000.00"}
    assert second.inputs_fingerprint != first.inputs_fingerprint

    # Without the Parquet copy of the previous run, the changes come from the database alike.
    DecisionChange.objects.filter(run=second).delete()
    store.run_decisions_file(first.pk).unlink()
    third = do_run(now=datetime(2026, 12, 2, tzinfo=UTC))
    assert third.previous_id == second.pk and third.changed == 0


def test_pushed_results_are_evidence_only_for_the_exact_id(tmp_path: Path) -> None:
    """App and terminal results pushed to the system count as evidence of the person whose ID
    they carry, matched by the store key; an ID a feed import would reject (a wrong check
    character, a letter other than X) matches nobody, even when its first 17 digits are a
    recipient's."""
    from zige.accounts.models import DeviceClient

    rows = [roster_row(f"P00{i}", name, id_number) for i, (name, id_number) in enumerate(
        (("张三", ID_A), ("李四", ID_B), ("王五", ID_C)), start=1
    )]  # fmt: skip
    for row in rows:
        row[-1] = "2025-06-01"  # certified 18 months ago: pending without new evidence
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    client = DeviceClient.objects.create(
        client_id="app", name="app", kind="app_auth", secret="s", created_at=NOW
    )
    wrong_check = ID_B[:17] + ("0" if ID_B[17] != "0" else "1")
    pushed = ((ID_A, "pass"), (wrong_check, "pass"), (ID_C[:17] + "Y", "pass"), (ID_C, "fail"))
    for i, (id_number, result) in enumerate(pushed):
        PushedResult.objects.create(
            client=client, kind="app_auth", id_number=id_number, name="某人",
            auth_time=datetime(2026, 11, 20, 2, tzinfo=UTC), result=result, nonce=f"n{i}", received_at=NOW,
        )  # fmt: skip
    decided = {p: d[:4] for p, d in decisions_of(do_run()).items()}
    assert decided == {
        "P001": ("eligible", "app_auth", "app_auth", date(2026, 11, 20)),
        "P002": ("pending", "no_evidence", "last_certified", date(2025, 6, 1)),
        # a failed face check proves nothing; an ID ending in Y is no ID
        "P003": ("pending", "no_evidence", "last_certified", date(2025, 6, 1)),
    }


def test_a_review_found_alive_clears_the_earlier_losses_from_later_runs(tmp_path: Path) -> None:
    """A bureau review that finds the person alive (确认健在) clears their loss records and
    declarations of missing dated on or before the finding: the next run decides them by the
    rest of their evidence, the person page marks the cleared records, and a loss dated after
    the finding counts again (docs/rules.md §8.5). Someone else's review is untouched."""
    from zige.reports.selectors import evidence_for
    from zige.verification.models import TaskKind, VerificationTask
    from zige.verification.services import review_resolve

    rows = [
        roster_row("P001", "张三", ID_A),
        roster_row("P002", "李四", ID_B),
        roster_row("P003", "王五", ID_C),
    ]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    deaths = [[ID_A, "张三", "2026-10-01"], [ID_B, "李四", "2026-10-02"]]
    do_import(write_csv(tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], deaths))
    do_import(write_csv(tmp_path / "declared_2026.csv", ["身份证号", "姓名", "宣告日期", "宣告类型"],
                        [[ID_C, "王五", "2026-09-01", "宣告失踪"]]))  # fmt: skip
    trips = [
        [ID_A, "张三", "2026-11-01", "G1"],
        [ID_B, "李四", "2026-11-02", "G2"],
        [ID_C, "王五", "2026-11-03", "G3"],
    ]
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    first = do_run()
    assert {p: d[:2] for p, d in decisions_of(first).items()} == {
        "P001": ("review", "alive_after_death"),
        "P002": ("review", "alive_after_death"),
        "P003": ("review", "alive_after_missing"),
    }
    officer = UserFactory(username="checker", role=Role.BUREAU_OPERATOR)
    found = datetime(2026, 12, 1, 2, tzinfo=UTC)
    for person in ("P001", "P003"):
        task = VerificationTask.objects.get(recipient__person_no=person, kind=TaskKind.REVIEW)
        review_resolve(
            task_id=task.pk,
            user=officer,
            finding="alive",
            note="本人到场核实",
            now=found,
            files=finding_evidence(),
        )

    second = do_run(now=datetime(2026, 12, 2, tzinfo=UTC))
    decided = {p: d[:4] for p, d in decisions_of(second).items()}
    assert decided == {
        "P001": ("eligible", "rail", "rail", date(2026, 11, 1)),
        "P002": ("review", "alive_after_death", "rail", date(2026, 11, 2)),
        "P003": ("eligible", "rail", "rail", date(2026, 11, 3)),
    }
    assert second.summary["inputs"]["cleared_by_review"] == 2
    assert second.inputs_fingerprint != first.inputs_fingerprint
    person = Recipient.objects.get(person_no="P001")
    task = VerificationTask.objects.get(recipient=person, kind=TaskKind.REVIEW)
    marks = {(r["record_kind"], r["date"]): r.get("cleared_by") for r in evidence_for(person)}
    assert marks == {("death", date(2026, 10, 1)): task.pk, ("rail", date(2026, 11, 1)): None}

    # A death dated after the finding is a new loss.
    do_import(write_csv(tmp_path / "death_2026_12.csv", ["身份证号", "姓名", "死亡日期"],
                        [[ID_A, "张三", "2026-12-10"]]))  # fmt: skip
    third = do_run(as_of=date(2026, 12, 31), now=datetime(2027, 1, 1, tzinfo=UTC))
    assert decisions_of(third)["P001"][:4] == ("stop", "death", "death", date(2026, 12, 10))
    marks = {(r["record_kind"], r["date"]): r.get("cleared_by") for r in evidence_for(person)}
    assert marks[("death", date(2026, 12, 10))] is None


def test_a_later_death_finding_overrides_an_earlier_alive_finding(tmp_path: Path) -> None:
    """The latest bureau finding wins (docs/rules.md §8.5): 确认健在 on 2026-12-01 cleared the
    death records up to that day; a later 确认死亡 dated 2026-11-15 (before that day) ends the
    clearance from its date of death, so the next run stops the person on the finding — the
    earlier death record (2026-10-01) stays cleared. A 疑似冒领 dated before life recorded
    after it makes the next run decide 疑点核查 (§2.1) instead of silently eligible."""
    from zige.reports.selectors import evidence_for
    from zige.verification.models import TaskKind, VerificationTask
    from zige.verification.services import review_resolve

    rows = [roster_row("P001", "张三", ID_A), roster_row("P002", "李四", ID_B)]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    deaths = [[ID_A, "张三", "2026-10-01"], [ID_B, "李四", "2026-10-02"]]
    do_import(write_csv(tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], deaths))
    trips = [[ID_A, "张三", "2026-11-01", "G1"], [ID_B, "李四", "2026-11-02", "G2"]]
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    do_run()
    officer = UserFactory(username="checker", role=Role.BUREAU_OPERATOR)
    for person in ("P001", "P002"):
        task = VerificationTask.objects.get(recipient__person_no=person, kind=TaskKind.REVIEW)
        review_resolve(task_id=task.pk, user=officer, finding="alive", note="本人到场核实",
                       now=datetime(2026, 12, 1, 2, tzinfo=UTC), files=finding_evidence())  # fmt: skip
    cleared = do_run(now=datetime(2026, 12, 2, tzinfo=UTC))
    assert {p: d[:2] for p, d in decisions_of(cleared).items()} == {
        "P001": ("eligible", "rail"), "P002": ("eligible", "rail")}  # fmt: skip

    # It was an impersonator: the bureau's later findings date the deaths before 2026-12-01.
    later = datetime(2026, 12, 5, 2, tzinfo=UTC)
    found = []
    for person, finding, died in (
        ("P001", "dead", date(2026, 11, 15)),
        ("P002", "fraud", date(2026, 10, 20)),
    ):
        recipient = Recipient.objects.get(person_no=person)
        task = VerificationTask.objects.create(
            recipient=recipient, unit=recipient.unit, kind=TaskKind.REVIEW, as_of=AS_OF, reason="visit_dead",
            deadline=date(2026, 12, 31), created_at=later, updated_at=later,
        )  # fmt: skip
        review_resolve(task_id=task.pk, user=officer, finding=finding, note="冒用他人身份", now=later,
                       death_date=died, amount_obtained=Decimal("100.00"), confirm_alive_after=True)  # fmt: skip
        found.append(task.pk)
    after = do_run(as_of=date(2026, 12, 31), now=datetime(2027, 1, 1, tzinfo=UTC))
    decided = {p: d[:4] for p, d in decisions_of(after).items()}
    assert decided["P001"] == ("stop", "unit_confirmed_lost", "unit_confirmed_lost", date(2026, 11, 15))
    assert decided["P002"][:2] == ("review", "alive_after_lost")
    assert after.inputs_fingerprint != cleared.inputs_fingerprint
    marks = {(r["record_kind"], r["date"]): r.get("cleared_by") for r in evidence_for(Recipient.objects.get(
        person_no="P001"))}  # fmt: skip
    assert marks[("death", date(2026, 10, 1))] is not None  # the earlier record stays cleared
    assert marks[("unit_confirmed_lost", date(2026, 11, 15))] is None
    for pk in found:  # the findings say which 确认健在 they override
        overrides = AuditEvent.objects.get(action="task.resolved", target_id=str(pk)).after["overrides_alive"]
        assert overrides["found_on"] == "2026-12-01"


def test_two_death_findings_after_an_alive_finding_the_latest_wins(tmp_path: Path) -> None:
    """The latest bureau finding wins (docs/rules.md §8.5), also over an earlier death finding:
    确认健在 on 2026-12-01 cleared the death records up to that day; then a 确认死亡 dated D1,
    then another dated D2 (earlier or later). The clearance ends the day before D2, the latest
    finding's date — not D1's — so the next run stops the person on D2: the first finding's own
    loss record, dated D1 before D2, is cleared (else the run would stop from the month after
    D1, the finding the bureau revised), also when D1 is after the 确认健在's day (P005, which
    stopped on D1 before); dated after D2, it counts, but D2 is the earliest loss. The death
    record of 2026-10-01 stays cleared unless D2 is on or before it."""
    from zige.reports.selectors import evidence_for
    from zige.verification.models import TaskKind, VerificationTask
    from zige.verification.selectors import alive_findings
    from zige.verification.services import review_resolve

    cases = {  # person: (id, D1, D2)
        "P001": (ID_A, date(2026, 11, 15), date(2026, 11, 20)),  # later, both before the alive finding
        "P002": (ID_B, date(2026, 11, 20), date(2026, 11, 10)),  # earlier
        "P003": (ID_C, date(2026, 11, 15), date(2026, 12, 3)),  # later, after the alive finding's day
        "P004": (ID_D, date(2026, 11, 20), date(2026, 9, 20)),  # earlier than the cleared death record
        "P005": (make_id(15, date(1954, 1, 1)), date(2026, 12, 2), date(2026, 12, 3)),  # both after it
    }
    names = {"P001": "张三", "P002": "李四", "P003": "王五", "P004": "赵六", "P005": "钱七"}
    rows = [roster_row(p, names[p], id_number) for p, (id_number, _, _) in cases.items()]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    deaths = [[id_number, names[p], "2026-10-01"] for p, (id_number, _, _) in cases.items()]
    do_import(write_csv(tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], deaths))
    trips = [[id_number, names[p], "2026-09-01", "G1"] for p, (id_number, _, _) in cases.items()]
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    do_run()
    officer = UserFactory(username="checker", role=Role.BUREAU_OPERATOR)
    people = {p: Recipient.objects.get(person_no=p) for p in cases}
    for person in people.values():
        task = VerificationTask.objects.create(
            recipient=person, unit=person.unit, kind=TaskKind.REVIEW, as_of=AS_OF, reason="alive_after_death",
            period="alive", deadline=date(2026, 12, 31), created_at=NOW, updated_at=NOW,
        )  # fmt: skip
        review_resolve(task_id=task.pk, user=officer, finding="alive", note="本人到场核实",
                       now=datetime(2026, 12, 1, 2, tzinfo=UTC), files=finding_evidence())  # fmt: skip
    _two_death_findings(
        people, {p: dates for p, (_, *dates) in cases.items()}, officer, confirm_alive_after=True
    )
    cleared_to = {
        p: day for p, (day, _) in ((p, alive_findings(recipient_id=r.pk)[r.pk]) for p, r in people.items())
    }
    assert cleared_to == {
        "P001": date(2026, 11, 19), "P002": date(2026, 11, 9), "P003": date(2026, 12, 1), "P004": date(2026, 9, 19),
        "P005": date(2026, 12, 2),  # the first finding's date, which the second revised
    }  # fmt: skip
    after = do_run(as_of=date(2026, 12, 31), now=datetime(2027, 1, 1, tzinfo=UTC))
    decided = {p: d[:4] for p, d in decisions_of(after).items()}
    assert decided == {
        p: ("stop", "unit_confirmed_lost", "unit_confirmed_lost", d2) for p, (_, _, d2) in cases.items()
    }
    for p, (_, d1, d2) in cases.items():
        marks = {(r["record_kind"], r["date"]): r.get("cleared_by") for r in evidence_for(people[p])}
        assert (marks[("unit_confirmed_lost", d1)] is not None) == (d1 < d2), p
        assert marks[("unit_confirmed_lost", d2)] is None, p
        assert (marks[("death", date(2026, 10, 1))] is not None) == (d2 > date(2026, 10, 1)), p


def _two_death_findings(
    people: dict[str, Recipient],
    dates: dict[str, list[date]],
    officer: Any,
    *,
    confirm_alive_after: bool = False,
) -> dict[tuple[str, int], int]:
    """Two 确认死亡 findings for each person, on 12-04 and 12-05, dated `dates[p][0]` and
    `dates[p][1]`: the task of each (person, step). The second finding's date may be later than
    the first's record: the officer says so, with a reason."""
    from zige.verification.models import TaskKind, VerificationTask
    from zige.verification.services import review_resolve

    tasks: dict[tuple[str, int], int] = {}
    for step, at in ((1, datetime(2026, 12, 4, 2, tzinfo=UTC)), (2, datetime(2026, 12, 5, 2, tzinfo=UTC))):
        for p, days in dates.items():
            task = VerificationTask.objects.create(
                recipient=people[p], unit=people[p].unit, kind=TaskKind.REVIEW, as_of=AS_OF, reason="visit_dead",
                period=f"death:{step}", deadline=date(2026, 12, 31), created_at=at, updated_at=at,
            )  # fmt: skip
            review_resolve(task_id=task.pk, user=officer, finding="dead", note=f"第{step}次核查", now=at,
                           death_date=days[step - 1], confirm_alive_after=confirm_alive_after,
                           confirm_later_death=True, later_death_reason="再次核查：火化证明所载日期")  # fmt: skip
            tasks[p, step] = task.pk
    return tasks


def test_two_death_findings_in_a_row_the_latest_decides_the_run(tmp_path: Path) -> None:
    """The latest bureau finding wins (docs/rules.md §8.5) also with no 确认健在 before it: a
    确认死亡 dated D1, then another dated D2 — later (the officer confirms it over the first
    finding's record, with a reason) or earlier. The next run stops the person on D2, from the
    month after D2, as the finding's payment stop does: the first finding's own loss record
    (its `unit_confirm` 丧失资格 row dated D1) no longer counts. It stays in the evidence store
    and on the person's page marked as superseded by the second finding's task, and the second
    finding's audit record names the finding it superseded."""
    from zige.reports.selectors import evidence_for

    cases = {  # person: (id, D1, D2)
        "P001": (ID_A, date(2026, 11, 15), date(2026, 12, 3)),  # later, into the next month
        "P002": (ID_B, date(2026, 11, 20), date(2026, 10, 10)),  # earlier
    }
    names = {"P001": "张三", "P002": "李四"}
    rows = [roster_row(p, names[p], id_number) for p, (id_number, _, _) in cases.items()]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    trips = [[id_number, names[p], "2026-09-01", "G1"] for p, (id_number, _, _) in cases.items()]
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"], trips))
    do_run()
    officer = UserFactory(username="checker", role=Role.BUREAU_OPERATOR)
    people = {p: Recipient.objects.get(person_no=p) for p in cases}
    tasks = _two_death_findings(people, {p: dates for p, (_, *dates) in cases.items()}, officer)
    after = do_run(as_of=date(2026, 12, 31), now=datetime(2027, 1, 1, tzinfo=UTC))
    decided = {p: d[:4] for p, d in decisions_of(after).items()}
    assert decided == {
        p: ("stop", "unit_confirmed_lost", "unit_confirmed_lost", d2) for p, (_, _, d2) in cases.items()
    }
    stops = Decision.objects.filter(run=after).values_list(
        "recipient__person_no", "effective_month", "months"
    )
    assert {p: (month, months) for p, month, months in stops} == {
        "P001": ("2027-01", 0),
        "P002": ("2026-11", 2),
    }
    for p, (_, d1, d2) in cases.items():
        marks = {(r["record_kind"], r["date"]): r for r in evidence_for(people[p])}
        assert marks[("unit_confirmed_lost", d1)].get("superseded_by") == tasks[p, 2], p  # kept, marked
        assert marks[("unit_confirmed_lost", d2)].get("superseded_by") is None, p
        audit = AuditEvent.objects.get(action="task.resolved", target_id=str(tasks[p, 2])).after
        assert audit["supersedes_findings"] == [{"review_task": tasks[p, 1], "death_date": d1.isoformat()}], p


def test_a_failed_run_stores_nothing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, [roster_row("P001", "张三", ID_A)]), "roster")

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr("zige.certification.services._fingerprint", boom)
    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    run = run_execute(run_id=run.pk, now=NOW)
    assert run.status == RunStatus.FAILED
    assert "RuntimeError" in run.message and "out of memory" not in run.message and "/" not in run.message
    assert (run.failure_code, run.detail) == ("unknown", "RuntimeError: out of memory")
    assert not Decision.objects.exists() and not run.imports.exists()
    assert not store.run_decisions_file(run.pk).exists()
    assert AuditEvent.objects.filter(action="run.failed", target_id=str(run.pk)).exists()

    monkeypatch.undo()
    assert do_run().previous_id is None, "a failed run is nobody's previous run"


def test_run_submit_queues_the_task_on_commit(
    tmp_path: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, [roster_row("P001", "张三", ID_A)]), "roster")
    user = UserFactory(role=Role.BUREAU_ADMIN)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = run_submit(as_of=AS_OF, user=user, now=NOW)
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.recipients == 1 and run.progress == 100
    events = AuditEvent.objects.filter(target_type="run", target_id=str(run.pk)).order_by("seq")
    assert [(e.action, e.actor) for e in events] == [
        ("run.submitted", user.username),
        ("run.started", user.username),
        ("run.succeeded", user.username),
    ]


def test_a_second_execution_of_a_run_already_running_does_nothing(tmp_path: Path) -> None:
    """A retried task or a second worker executes a run that a worker has already claimed: it
    finds the run `running`, not `queued`, and returns it untouched; one set of results."""
    from zige.notifications.models import Message
    from zige.verification.models import VerificationTask

    people = [roster_row("P001", "张三", ID_A), roster_row("P002", "李四", ID_B)]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, people), "roster")
    user = UserFactory(role=Role.BUREAU_OPERATOR)
    run = run_submit(as_of=AS_OF, user=user, now=NOW, enqueue=False)
    second: list[Run] = []

    def meanwhile(label: str, done: int, total: int) -> None:
        if label == "decide":  # this worker has claimed the run and is deciding
            second.append(run_execute(run_id=run.pk, now=NOW))
            assert not Decision.objects.filter(run=run).exists()

    run = run_execute(run_id=run.pk, now=NOW, progress=meanwhile)
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert [r.status for r in second] == [RunStatus.RUNNING]
    assert run_execute(run_id=run.pk, now=NOW).status == RunStatus.SUCCEEDED  # and once it is done
    assert Decision.objects.filter(run=run).count() == run.recipients == 2
    assert run.imports.count() == 1
    assert Message.objects.filter(run=run).count() == 2
    assert (
        VerificationTask.objects.filter(run=run).count()
        == Decision.objects.filter(run=run, status__in=("pending", "review")).count()
    )
    events = AuditEvent.objects.filter(target_type="run", target_id=str(run.pk)).order_by("seq")
    assert [e.action for e in events] == ["run.submitted", "run.started", "run.succeeded"]
    started = events[1]
    assert started.actor == user.username and started.at == NOW
    assert (started.before, started.after) == (
        {"status": "queued"},
        {"status": "running", "as_of": "2026-11-30"},
    )


def test_a_run_status_changes_only_along_its_transitions() -> None:
    from zige.certification import services

    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    with pytest.raises(ValueError, match="does not change from queued to succeeded"):
        services._move(run.pk, RunStatus.QUEUED, RunStatus.SUCCEEDED)
    assert services._move(run.pk, RunStatus.QUEUED, RunStatus.RUNNING)
    assert not services._move(run.pk, RunStatus.QUEUED, RunStatus.RUNNING)  # taken: no second claim
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_the_database_refuses_an_unknown_run_status() -> None:
    """A raw UPDATE around the services: the check constraint refuses it (SQLite and PostgreSQL)."""
    from django.db import IntegrityError, connection, transaction

    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    table = connection.ops.quote_name(Run._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", ["done", run.pk])
    with connection.cursor() as cursor:  # a known status passes the same constraint
        cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", ["failed", run.pk])
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED


def test_a_unit_operator_may_not_start_a_run() -> None:
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        run_submit(as_of=AS_OF, user=UnitOperatorFactory(), now=NOW)


def test_progress_is_reported_in_order(tmp_path: Path) -> None:
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, [roster_row("P001", "张三", ID_A)]), "roster")
    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    seen: list[tuple[str, int, int]] = []
    run_execute(run_id=run.pk, now=NOW, progress=lambda label, done, total: seen.append((label, done, total)))
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert seen[-1][1] == seen[-1][2] and seen[0][0] == "load the roll"
    run.refresh_from_db()
    assert run.summary["timings_s"] and set(run.summary["timings_s"]) <= {label for label, _, _ in seen}


# ---------------------------------------------------------------------------------------------
# Selectors: runs and scoped decisions


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Run, Run]:
    do_import(
        write_csv(
            tmp_path / "roster.csv",
            ROSTER_HEADER,
            [roster_row("P001", "张三", ID_A), roster_row("P002", "李四", ID_B, "U2")],
        ),
        "roster",
    )
    first = do_run(as_of=date(2026, 10, 31), now=datetime(2026, 10, 31, tzinfo=UTC))
    do_import(
        write_csv(
            tmp_path / "death_2026.csv", ["身份证号", "姓名", "死亡日期"], [[ID_B, "李四", "2026-11-02"]]
        )
    )
    second = do_run(now=datetime(2026, 11, 30, 10, tzinfo=UTC))
    return first, second


def test_run_selectors(two_runs: tuple[Run, Run]) -> None:
    first, second = two_runs
    failed = Run.objects.create(
        as_of=AS_OF, status=RunStatus.FAILED, created_at=datetime(2026, 12, 5, tzinfo=UTC)
    )
    assert selectors.latest_run() == second
    assert list(selectors.runs_list()) == [failed, second, first]
    assert selectors.run_get(run_id=first.pk) == first
    with pytest.raises(Http404):
        selectors.run_get(run_id=failed.pk + 100)


def test_the_latest_run_is_the_last_finished_on_sqlite_and_postgresql() -> None:
    """`latest_run` ordered by "-finished_at": PostgreSQL sorts NULL first in a descending order,
    so a succeeded run without a finishing time (an old or hand-made row) was "the latest" there
    and not on SQLite. A run that never finished is now the last chosen on both; ties go to the
    later id; a queued, running or failed run is never the latest succeeded run. The decision
    retention keeps the latest runs by the same order, and a person's history lists runs of one
    date newest first by it."""
    older = RunFactory(finished_at=datetime(2026, 11, 29, tzinfo=UTC))
    finished = RunFactory(finished_at=datetime(2026, 11, 30, tzinfo=UTC))
    unfinished = RunFactory(finished_at=None)
    RunFactory(status=RunStatus.RUNNING, finished_at=None)
    RunFactory(status=RunStatus.FAILED, finished_at=datetime(2026, 12, 1, tzinfo=UTC))
    assert selectors.latest_run() == finished
    assert runs_prune_decisions(keep=2, now=NOW).kept == (finished.pk, older.pk)  # no copies: refused
    tie = RunFactory(finished_at=finished.finished_at)
    assert selectors.latest_run() == tie

    person = RecipientFactory()
    for run in (finished, unfinished, older):
        Decision.objects.create(run=run, recipient=person, unit=person.unit, status="eligible", reason="ok")
    history = selectors.decision_history(user=UserFactory(), recipient=person)
    assert [d.run for d in history] == [finished, older, unfinished]


def test_a_run_is_back_dated_when_another_succeeded_run_has_a_later_as_of() -> None:
    """Rules §8.4: one definition for every side effect of a run (payment actions, tasks,
    reminders). A run is back-dated when another *succeeded* run has a later as-of date; a run
    of the same date is not (ties are not back-dated), nor is a later run that is queued,
    running or failed. The later run named is the one with the latest as-of date."""
    november = RunFactory(as_of=date(2026, 11, 30))
    assert selectors.later_run(run=november) is None
    for status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED):
        RunFactory(as_of=date(2027, 1, 31), status=status)
    assert selectors.later_run(run=november) is None
    twin = RunFactory(as_of=date(2026, 11, 30))
    assert selectors.later_run(run=november) is None and selectors.later_run(run=twin) is None
    december = RunFactory(as_of=date(2026, 12, 31), finished_at=datetime(2026, 12, 31, tzinfo=UTC))
    january = RunFactory(as_of=date(2027, 1, 31), finished_at=datetime(2026, 12, 1, tzinfo=UTC))
    # By as-of date, not by finishing time: december finished last and is still back-dated.
    assert selectors.later_run(run=november) == january
    assert selectors.later_run(run=twin) == january
    assert selectors.later_run(run=december) == january
    assert selectors.later_run(run=january) is None


def test_decisions_and_changes_are_scoped_to_the_unit(two_runs: tuple[Run, Run]) -> None:
    _, second = two_runs
    u1, u2 = Unit.objects.get(unit_no="U1"), Unit.objects.get(unit_no="U2")
    bureau, auditor, operator = UserFactory(), UserFactory(role=Role.AUDITOR), UnitOperatorFactory(unit=u1)

    assert [d.recipient.person_no for d in selectors.decisions_for_unit(user=bureau, unit=None, run=second)] == [
        "P001", "P002"
    ]  # fmt: skip
    assert [d.status for d in selectors.decisions_for_unit(user=auditor, unit=u2, run=second)] == ["stop"]
    assert selectors.decisions_for_unit(user=bureau, unit=u2, run=second, status="eligible").count() == 0
    assert [
        d.recipient.person_no for d in selectors.decisions_for_unit(user=operator, unit=None, run=second)
    ] == ["P001"]
    assert selectors.decisions_for_unit(user=operator, unit=u1, run=second).count() == 1
    with pytest.raises(Http404):
        selectors.decisions_for_unit(user=operator, unit=u2, run=second)

    assert [
        (c.recipient.person_no, c.new_status) for c in selectors.run_changes(user=bureau, run=second)
    ] == [("P002", "stop")]
    assert list(selectors.run_changes(user=operator, run=second)) == []


def test_decision_history_is_newest_first_and_scoped(two_runs: tuple[Run, Run]) -> None:
    first, second = two_runs
    li_si = Recipient.objects.get(person_no="P002")
    history = list(selectors.decision_history(user=UserFactory(), recipient=li_si))
    assert [(d.run_id, d.status) for d in history] == [(second.pk, "stop"), (first.pk, "eligible")]
    operator = UnitOperatorFactory(unit=Unit.objects.get(unit_no="U1"))
    with pytest.raises(Http404):
        selectors.decision_history(user=operator, recipient=li_si)
    zhang = Recipient.objects.get(person_no="P001")
    assert selectors.decision_history(user=operator, recipient=zhang).count() == 2


def test_a_run_over_an_empty_roll_succeeds_with_no_decisions() -> None:
    run = do_run()
    assert run.recipients == 0 and run.summary["status"] == dict.fromkeys(
        ("eligible", "stop", "suspend", "review", "pending"), 0
    )
    assert run.summary["units"] == {"total": 0, "top": []}


def test_work_interrupted_by_a_dead_worker_is_marked_failed_and_can_be_redone(tmp_path: Path) -> None:
    roster = write_csv(tmp_path / "roster.csv", ROSTER_HEADER, [roster_row("P001", "张三", ID_A)])
    do_import(roster, "roster")
    rail = write_csv(tmp_path / "rail.csv", ["身份证号", "姓名", "乘车日期"], [[ID_A, "张三", "2026-11-20"]])
    # A worker took these and died: still `running`, started before the new worker came up.
    stuck = feed_services.import_submit(
        source=rail, file_name=rail.name, kind="rail", user=None, now=NOW, enqueue=False
    )
    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    ImportBatch.objects.filter(pk=stuck.pk).update(status=ImportStatus.RUNNING, started_at=NOW)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=NOW)
    half_written = store.run_decisions_file(run.pk)
    half_written.parent.mkdir(parents=True, exist_ok=True)
    half_written.write_bytes(b"PAR1")
    # Work started after the worker came up is someone else's, and queued work waits.
    later = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    other = run_submit(as_of=AS_OF, user=None, now=later, enqueue=False)
    Run.objects.filter(pk=other.pk).update(status=RunStatus.RUNNING, started_at=later)
    queued = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    worker_start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    assert feed_services.imports_mark_interrupted(now=worker_start, started_before=worker_start) == 1
    assert runs_mark_interrupted(now=worker_start, started_before=worker_start) == 1
    assert feed_services.imports_mark_interrupted(now=worker_start, started_before=worker_start) == 0

    stuck.refresh_from_db()
    run.refresh_from_db()
    assert (
        stuck.status == ImportStatus.FAILED and "中断" in stuck.message and stuck.finished_at == worker_start
    )
    assert stuck.failure_code == "interrupted" and "interrupted" in stuck.detail and "/" not in stuck.message
    assert run.status == RunStatus.FAILED and "中断" in run.message and "/" not in run.message
    assert run.failure_code == "interrupted" and "interrupted" in run.detail
    assert not half_written.exists()
    assert Run.objects.get(pk=other.pk).status == RunStatus.RUNNING
    assert Run.objects.get(pk=queued.pk).status == RunStatus.QUEUED
    assert AuditEvent.objects.filter(action="import.interrupted", target_id=str(stuck.pk)).count() == 1
    assert AuditEvent.objects.filter(action="run.interrupted", target_id=str(run.pk)).count() == 1

    # Nothing of the interrupted import counts: the same file is imported again, not a duplicate.
    again = do_import(rail, "rail")
    assert again.rows_used == 1 and again.pk != stuck.pk
    Run.objects.filter(pk=other.pk).update(status=RunStatus.FAILED)
    Run.objects.filter(pk=queued.pk).delete()
    assert do_run().status == RunStatus.SUCCEEDED


@pytest.mark.parametrize("recover", ["1", "0"])
def test_the_worker_marks_interrupted_work_when_it_starts(
    monkeypatch: pytest.MonkeyPatch, recover: str
) -> None:
    from click.testing import CliRunner

    from zige.cli_admin import worker

    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    # started before the worker (which reads the clock): any past moment
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    started: list[str] = []
    monkeypatch.setattr("django.core.management.call_command", lambda name, **_: started.append(name))
    monkeypatch.setattr("zige.notifications.cli.start_scheduler_thread", lambda: None)
    monkeypatch.setenv("ZIGE_RECOVER_INTERRUPTED", recover)
    result = CliRunner().invoke(worker, [])
    assert result.exit_code == 0, result.output
    assert started == ["db_worker"]
    expected = RunStatus.FAILED if recover == "1" else RunStatus.RUNNING
    assert Run.objects.get(pk=run.pk).status == expected


def test_a_run_is_never_dated_after_the_day_it_is_started() -> None:
    """A run's decisions are real (its proposals count the months paid up to its as-of date, its
    reminders go out): a run dated after today (China Standard Time) would stop and recover
    months not yet paid. Refused before anything is written; today itself is accepted, by the
    local date (09:00 UTC on 11-30 is 17:00 in Shanghai; 17:00 UTC is already 12-01 there)."""
    from zige.certification.services import RunRefused

    with pytest.raises(RunRefused, match="比对基准日 2026-12-01 晚于今天（2026-11-30）"):
        run_submit(as_of=date(2026, 12, 1), user=None, now=NOW, enqueue=False)
    assert not Run.objects.exists()
    assert not AuditEvent.objects.filter(action="run.submitted").exists()
    evening = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    run = run_submit(as_of=date(2026, 12, 1), user=None, now=evening, enqueue=False)
    assert run.as_of == date(2026, 12, 1)


def test_a_bureau_death_finding_is_loss_evidence_for_the_next_run(tmp_path: Path) -> None:
    """The bureau's 确认死亡 on a review task (here opened by a home visit that found the person
    dead) becomes a `unit_confirm` 丧失资格 row dated on the death, in the finding's transaction
    (as an approved unit report does): the next run stops the person (docs/rules.md §2.2), and
    the explanation names the finding. With alive evidence dated after the death, the finding
    is refused with the latest such record until the officer confirms it; the next run then
    decides 疑点核查 (§2.1: life after a loss), not a stop. A finding refused after its import
    leaves no evidence."""
    from decimal import Decimal

    from zige.ledger.services import visit_record
    from zige.reports.explain import explain_decision
    from zige.reports.selectors import contradicted_record, deciding_record, evidence_for
    from zige.verification.models import TaskKind, VerificationTask
    from zige.verification.services import SubmissionInvalid, review_resolve

    rows = [roster_row("P001", "张三", ID_A), roster_row("P002", "李四", ID_B)]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    checkups = [
        [ID_A, "张三", "2026-09-01", "太原市中心医院"],
        [ID_B, "李四", "2026-09-01", "太原市中心医院"],
    ]
    do_import(
        write_csv(tmp_path / "checkup_2026.csv", ["身份证号", "姓名", "体检日期", "体检机构"], checkups)
    )
    do_import(write_csv(tmp_path / "rail_2026.csv", ["身份证号", "姓名", "乘车日期", "车次"],
                        [[ID_B, "李四", "2026-10-15", "G1"]]))  # fmt: skip
    first = do_run()
    assert {p: d[:2] for p, d in decisions_of(first).items()} == {
        "P001": ("eligible", "checkup"),
        "P002": ("eligible", "rail"),
    }
    officer = UserFactory(username="checker", role=Role.BUREAU_OPERATOR)
    tasks = {}
    for no in ("P001", "P002"):
        person = Recipient.objects.get(person_no=no)
        visit_record(actor=officer, recipient=person, visited_on=AS_OF, visitor="社区网格员", outcome="dead",
                     notes="家属称已去世", now=NOW)  # fmt: skip
        tasks[no] = VerificationTask.objects.get(recipient=person, kind=TaskKind.REVIEW)
    found = datetime(2026, 12, 1, 2, tzinfo=UTC)

    # Refused after the import (no amount collected): nothing of it is evidence.
    with pytest.raises(SubmissionInvalid):
        review_resolve(task_id=tasks["P001"].pk, user=officer, finding="fraud", note="x",
                       death_date=date(2026, 10, 1), amount_obtained=Decimal(0), now=found)  # fmt: skip
    assert not ImportBatch.objects.filter(kind="unit_confirm", status=ImportStatus.SUCCEEDED).exists()
    assert store.live_manifests("unit_confirm") == []

    review_resolve(task_id=tasks["P001"].pk, user=officer, finding="dead", note="死亡证明",
                   death_date=date(2026, 10, 1), now=found)  # fmt: skip
    batch = ImportBatch.objects.get(kind="unit_confirm", status=ImportStatus.SUCCEEDED)
    audit = AuditEvent.objects.get(action="task.resolved", target_id=str(tasks["P001"].pk))
    assert (audit.after["evidence_batch"], audit.after["death_date"]) == (batch.pk, "2026-10-01")

    # Life after the claimed death: refused with the latest record, nothing imported.
    with pytest.raises(SubmissionInvalid) as refused:
        review_resolve(task_id=tasks["P002"].pk, user=officer, finding="dead", note="家属口述",
                       death_date=date(2026, 8, 1), now=found)  # fmt: skip
    [(field, message)] = refused.value.errors
    assert field == "confirm_alive_after"
    assert "死亡日期2026-08-01之后仍有2条生存信息" in message
    assert "最近一条：2026-10-15 乘坐G1次列车" in message and "冒领" in message
    assert ImportBatch.objects.filter(kind="unit_confirm", status=ImportStatus.SUCCEEDED).count() == 1
    review_resolve(task_id=tasks["P002"].pk, user=officer, finding="dead", note="家属口述，已核实",
                   death_date=date(2026, 8, 1), now=found, confirm_alive_after=True)  # fmt: skip
    audit = AuditEvent.objects.get(action="task.resolved", target_id=str(tasks["P002"].pk))
    assert audit.after["alive_after_death"]["confirmed"] is True

    second = do_run(now=datetime(2026, 12, 2, tzinfo=UTC))
    decided = decisions_of(second)
    assert decided["P001"][:4] == ("stop", "unit_confirmed_lost", "unit_confirmed_lost", date(2026, 10, 1))
    assert decided["P001"][8:10] == ("stop", "2026-11")
    assert decided["P002"][:4] == ("review", "alive_after_lost", "checkup", date(2026, 9, 1))
    assert second.inputs_fingerprint != first.inputs_fingerprint

    texts = {}
    for no in ("P001", "P002"):
        person = Recipient.objects.get(person_no=no)
        decision = Decision.objects.get(run=second, recipient=person)
        evidence = evidence_for(person)
        texts[no] = explain_decision(decision, deciding_record(decision, evidence), as_of=second.as_of,
                                     earlier=contradicted_record(decision, evidence))  # fmt: skip
    assert texts["P001"].startswith(
        f"2026-10-01 死亡（社保局疑点核查确认死亡，核查任务#{tasks['P001'].pk}），自2026年11月起停发"
    ), texts["P001"]
    assert texts["P002"].startswith(
        f"2026-08-01 死亡（社保局疑点核查确认死亡，核查任务#{tasks['P002'].pk}），但2026-09-01 在太原市中心医院健康体检"
    ), texts["P002"]


@pytest.mark.django_db(transaction=True)
def test_two_runs_finishing_at_once_the_earlier_dated_one_is_back_dated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs are not serialised: the scheduler's daily run executes in its own thread beside a run
    started on the page in the task worker, and `zige run` beside both. Their last transactions
    (decisions and side effects) are: PostgreSQL, two sessions, the run as of 2026-11-30 is in its
    last transaction when the run as of 2026-10-31 reaches its own; the earlier-dated run waits
    (checked with pg_blocking_pids, not a sleep), then sees the later one succeeded and is
    back-dated in every part — reminders, tasks, payment actions. Without that order it would ask
    `later_run` before the later run committed, find none, and propose, revise or withdraw on its
    stale decisions after the later run had done so (seen with both locks removed: no `backdated`).
    The audit chain's lock gave this order by accident; the run's own lock states it
    (`_serialise_run_side_effects`) and holds it alone (seen with the audit lock removed)."""
    from django.db import connection

    from zige.benefits import services as benefits

    if connection.vendor != "postgresql":
        pytest.skip("row locks between two sessions: PostgreSQL (SQLite serialises write transactions)")
    later = run_submit(as_of=date(2026, 11, 30), user=None, now=NOW, enqueue=False)
    earlier = run_submit(as_of=date(2026, 10, 31), user=None, now=NOW, enqueue=False)
    real = benefits.payment_actions_for_run
    y = SecondSession(lambda: run_execute(run_id=earlier.pk, now=NOW))

    def later_waits_for_the_earlier(*, run_id: int, now: datetime) -> int:
        if run_id == later.pk and not y.started:
            y.start_until_blocked()  # until the earlier run waits for a lock, or is done
        return real(run_id=run_id, now=now)

    monkeypatch.setattr(benefits, "payment_actions_for_run", later_waits_for_the_earlier)
    done = run_execute(run_id=later.pk, now=NOW)
    y.join()
    assert done.status == RunStatus.SUCCEEDED and done.summary.get("backdated") is None
    assert len(y.outcome) == 1 and isinstance(y.outcome[0], Run), y.outcome
    look_back = y.outcome[0]
    assert look_back.status == RunStatus.SUCCEEDED, look_back.message
    assert look_back.summary["backdated"] == {
        "later_run": later.pk, "later_as_of": "2026-11-30", "skipped": ["messages", "tasks", "payment_actions"],
    }  # fmt: skip
    assert selectors.latest_run() == done
