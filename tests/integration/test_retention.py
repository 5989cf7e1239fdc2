"""Decision retention: the latest runs keep their decisions in the database, older runs' are
deleted once their Parquet copy is checked (`runs_prune_decisions`), and every reader answers
an archived run from its copy, in the user's scope."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from tests.factories import UnitOperatorFactory, UserFactory
from tests.integration.test_runs import (
    ID_A,
    ID_B,
    ID_C,
    ROSTER_HEADER,
    do_import,
    do_run,
    roster_row,
    write_csv,
)
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.audit.services import audit_verify
from zige.certification import archive, selectors
from zige.certification import services as certification_services
from zige.certification.models import Decision, DecisionChange, Run, RunStatus
from zige.certification.services import ArchiveError, run_decisions_export, runs_prune_decisions
from zige.feeds import store
from zige.reports import selectors as reports_selectors
from zige.roster.models import Recipient, Unit

pytestmark = pytest.mark.django_db

PRUNED_AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def use_data_dirs(settings: Any, tmp_path: Path) -> Path:
    """A data directory of the test's own; no pruning unless a test asks for it."""
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    settings.DATA_DIR = tmp_path / "data"
    settings.ZIGE_KEEP_RUN_DECISIONS = None  # these tests prune by hand (one test sets it)
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    return use_data_dirs(settings, tmp_path)


@dataclass
class History:
    runs: list[Run]  # oldest first
    zhang: Recipient  # P001, unit U1, eligible throughout
    li: Recipient  # P002, unit U1, eligible, then dead from the third run on
    wang: Recipient  # P003, unit U2, eligible throughout
    u1: Unit
    u2: Unit


MONTH_ENDS = [date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31), date(2026, 11, 30)]


@pytest.fixture
def history(tmp_path: Path) -> History:
    return make_history(tmp_path)


def make_history(tmp_path: Path) -> History:
    """Five monthly runs of three people; 李四 dies before the third."""
    do_import(
        write_csv(
            tmp_path / "roster.csv",
            ROSTER_HEADER,
            [
                roster_row("P001", "张三", ID_A),
                roster_row("P002", "李四", ID_B),
                roster_row("P003", "王五", ID_C, "U2"),
            ],
        ),
        "roster",
    )
    runs = []
    for day in MONTH_ENDS:
        if day == MONTH_ENDS[2]:
            do_import(
                write_csv(
                    tmp_path / "death_2026.csv",
                    ["身份证号", "姓名", "死亡日期"],
                    [[ID_B, "李四", "2026-09-02"]],
                )
            )
        runs.append(do_run(as_of=day, now=datetime(day.year, day.month, day.day, 20, tzinfo=UTC)))
    people = {r.person_no: r for r in Recipient.objects.all()}
    return History(
        runs,
        people["P001"],
        people["P002"],
        people["P003"],
        Unit.objects.get(unit_no="U1"),
        Unit.objects.get(unit_no="U2"),
    )


def rows_in_database(run: Run) -> int:
    return Decision.objects.filter(run=run).count()


def prune(history: History, keep: int = 2) -> None:
    """Prune, then reload the runs as a page would find them."""
    runs_prune_decisions(keep=keep, now=PRUNED_AT)
    for run in history.runs:
        run.refresh_from_db()


def decision_values(decision: Decision | None) -> dict[str, Any]:
    assert decision is not None
    return {
        f.attname: getattr(decision, f.attname) for f in Decision._meta.concrete_fields if f.attname != "id"
    }


# ---------------------------------------------------------------------------------------------
# Pruning


def test_prune_keeps_the_latest_runs_and_archives_the_older_ones(history: History) -> None:
    r1, r2, r3, r4, r5 = history.runs
    changes = list(DecisionChange.objects.order_by("pk").values_list("run_id", "recipient_id", "new_status"))
    summaries = {r.pk: r.summary for r in history.runs}

    result = runs_prune_decisions(keep=2, now=PRUNED_AT)

    assert result.kept == (r5.pk, r4.pk)
    assert [(p.run_id, p.rows, p.archived_now) for p in result.pruned] == [
        (r1.pk, 3, True), (r2.pk, 3, True), (r3.pk, 3, True)
    ]  # fmt: skip
    assert result.rows == 9 and result.refused == ()
    assert [rows_in_database(r) for r in history.runs] == [0, 0, 0, 3, 3]
    for run in history.runs:
        run.refresh_from_db()
        assert run.summary == summaries[run.pk] and run.recipients == 3  # the run's record stays
    assert [r.decisions_pruned_at for r in history.runs] == [PRUNED_AT, PRUNED_AT, PRUNED_AT, None, None]
    assert r1.decisions_sha256 == archive.file_sha256(store.run_decisions_file(r1.pk))
    assert r4.decisions_sha256 == ""
    # The changes stay for good, and the copies stay where they were.
    assert (
        list(DecisionChange.objects.order_by("pk").values_list("run_id", "recipient_id", "new_status"))
        == changes
    )
    assert all(store.run_decisions_file(r.pk).is_file() for r in history.runs)

    events = list(AuditEvent.objects.filter(action="run.decisions_pruned").order_by("seq"))
    assert [e.target_id for e in events] == [str(r1.pk), str(r2.pk), str(r3.pk)]
    assert events[0].before == {"decisions_in_database": 3}
    assert events[0].after["copy"] == f"runs/{r1.pk}/decisions.parquet"
    assert events[0].after["copy_rows"] == 3 and events[0].after["copy_sha256"] == r1.decisions_sha256
    assert events[2].after["copy_status"] == {"eligible": 2, "stop": 1}
    assert events[0].at == PRUNED_AT and events[0].actor == ""
    assert audit_verify().ok


def test_prune_is_idempotent(history: History) -> None:
    runs_prune_decisions(keep=2, now=PRUNED_AT)
    audited = AuditEvent.objects.count()
    again = runs_prune_decisions(keep=2, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert again.pruned == () and again.refused == ()
    assert AuditEvent.objects.count() == audited
    assert Run.objects.get(pk=history.runs[0].pk).decisions_pruned_at == PRUNED_AT
    # A larger `keep` later brings nothing back and prunes nothing more.
    assert runs_prune_decisions(keep=4, now=PRUNED_AT).pruned == ()
    assert [rows_in_database(r) for r in history.runs] == [0, 0, 0, 3, 3]


def test_prune_refuses_a_run_whose_copy_is_missing_or_incomplete(history: History) -> None:
    r1, r2, r3, r4, _ = history.runs
    store.run_decisions_file(r1.pk).unlink()
    copy = store.run_decisions_file(r2.pk)
    pq.write_table(pq.read_table(copy).slice(0, 2), copy)  # a copy with 2 rows of the run's 3
    four = store.run_decisions_file(r4.pk)
    table = pq.read_table(four)
    statuses = ["stop"] * table.num_rows  # right row count, wrong decisions
    pq.write_table(
        table.set_column(table.schema.get_field_index("status"), "status", pa.array(statuses)), four
    )

    result = runs_prune_decisions(keep=2, now=PRUNED_AT)
    assert result.kept == (history.runs[4].pk, r4.pk)
    refused = {r.run_id: r.reason for r in result.refused}
    assert set(refused) == {r1.pk, r2.pk}
    assert f"runs/{r1.pk}/decisions.parquet is missing" in refused[r1.pk]
    assert "holds 2 rows, the run decided 3" in refused[r2.pk]
    assert [p.run_id for p in result.pruned] == [r3.pk]
    assert [rows_in_database(r) for r in history.runs] == [3, 3, 0, 3, 3]
    assert Run.objects.filter(decisions_pruned_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(action="run.decisions_pruned").count() == 1

    # The fourth run's copy, when its time comes, disagrees with its summary: refused too.
    do_run(as_of=date(2026, 12, 31), now=datetime(2026, 12, 31, 20, tzinfo=UTC))
    later = runs_prune_decisions(keep=2, now=PRUNED_AT)
    assert {r.run_id for r in later.refused} == {r1.pk, r2.pk, r4.pk}
    assert "differs from the run's summary" in {r.run_id: r.reason for r in later.refused}[r4.pk]
    assert rows_in_database(r4) == 3


def test_keep_is_at_least_two_and_only_bureau_staff_prune(history: History) -> None:
    with pytest.raises(ValueError, match="2 or more"):
        runs_prune_decisions(keep=1, now=PRUNED_AT)
    with pytest.raises(PermissionDenied):
        runs_prune_decisions(keep=2, now=PRUNED_AT, user=UnitOperatorFactory(unit=history.u1))
    with pytest.raises(PermissionDenied):
        runs_prune_decisions(keep=2, now=PRUNED_AT, user=UserFactory(role=Role.AUDITOR))
    assert sum(rows_in_database(r) for r in history.runs) == 15
    officer = UserFactory(role=Role.BUREAU_OPERATOR, username="wang")
    assert len(runs_prune_decisions(keep=2, now=PRUNED_AT, user=officer).pruned) == 3
    assert set(AuditEvent.objects.filter(action="run.decisions_pruned").values_list("actor", flat=True)) == {
        "wang"
    }


def test_rows_are_deleted_in_chunks_and_an_interrupted_deletion_is_finished_later(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(On PostgreSQL, as when a run's partition cannot be dropped: the table stayed busy.)"""
    monkeypatch.setattr(certification_services, "PRUNE_CHUNK_ROWS", 2)
    monkeypatch.setattr(store, "partition_drop", lambda table, value: None)
    real = certification_services._delete_decisions

    def crash(run_id: int) -> int:
        raise RuntimeError("the worker died")

    monkeypatch.setattr(certification_services, "_delete_decisions", crash)
    with pytest.raises(RuntimeError):
        runs_prune_decisions(keep=2, now=PRUNED_AT)
    first = history.runs[0]
    first.refresh_from_db()
    assert first.decisions_archived and rows_in_database(first) == 3  # archived, rows left behind
    assert (
        selectors.decision_history(user=UserFactory(), recipient=history.zhang).filter(run=first).count() == 0
    )

    monkeypatch.setattr(certification_services, "_delete_decisions", real)
    with CaptureQueriesContext(connection) as queries:
        result = runs_prune_decisions(keep=2, now=PRUNED_AT)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert [(p.run_id, p.rows, p.archived_now) for p in result.pruned] == [
        (first.pk, 3, False), (history.runs[1].pk, 3, True), (history.runs[2].pk, 3, True)
    ]  # fmt: skip
    assert len(deletes) == 6 and all("LIMIT 2" in sql for sql in deletes)  # 2 + 1 rows per run: two chunks
    assert AuditEvent.objects.filter(action="run.decisions_pruned").count() == 3  # one per run, never two
    assert [rows_in_database(r) for r in history.runs] == [0, 0, 0, 3, 3]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="decisions are partitioned by run on PostgreSQL"
)
def test_a_pruned_runs_partition_is_dropped_with_its_rows(history: History) -> None:
    def partitions() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'certification_decision'::regclass"
            )
            return {row[0] for row in cursor.fetchall()}

    names = [store.partition_name("certification_decision", r.pk) for r in history.runs]
    assert set(names) <= partitions()
    with CaptureQueriesContext(connection) as queries:
        result = runs_prune_decisions(keep=2, now=PRUNED_AT)
    assert [(p.run_id, p.rows) for p in result.pruned] == [(r.pk, 3) for r in history.runs[:3]]
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert not set(names[:3]) & partitions() and set(names[3:]) <= partitions()
    assert [rows_in_database(r) for r in history.runs] == [0, 0, 0, 3, 3]
    assert runs_prune_decisions(keep=2, now=PRUNED_AT).pruned == ()  # nothing left to do


def test_a_successful_run_prunes_by_the_setting(settings: Any, history: History) -> None:
    settings.ZIGE_KEEP_RUN_DECISIONS = 3
    sixth = do_run(as_of=date(2026, 12, 31), now=datetime(2026, 12, 31, 20, tzinfo=UTC))
    assert sixth.changed == 0  # compared with the fifth run, as ever
    assert [rows_in_database(r) for r in [*history.runs, sixth]] == [0, 0, 0, 3, 3, 3]
    events = AuditEvent.objects.filter(action="run.decisions_pruned")
    assert sorted(int(e.target_id) for e in events) == [r.pk for r in history.runs[:3]]


def test_a_failed_retention_leaves_the_run_succeeded(
    settings: Any, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ZIGE_KEEP_RUN_DECISIONS = 2

    def broken(**kwargs: Any) -> Any:
        raise OSError("disk unplugged")

    monkeypatch.setattr(certification_services, "runs_prune_decisions", broken)
    sixth = do_run(as_of=date(2026, 12, 31), now=datetime(2026, 12, 31, 20, tzinfo=UTC))
    assert sixth.status == RunStatus.SUCCEEDED and rows_in_database(history.runs[0]) == 3


def test_the_next_run_refuses_to_compare_with_an_archived_run_without_its_copy(history: History) -> None:
    latest = history.runs[-1]
    Run.objects.filter(pk=latest.pk).update(decisions_pruned_at=PRUNED_AT)  # as if archived by hand
    Decision.objects.filter(run=latest).delete()
    store.run_decisions_file(latest.pk).unlink()
    at = datetime(2026, 12, 31, 20, tzinfo=UTC)  # a run is never dated after the day it starts
    run = certification_services.run_submit(as_of=date(2026, 12, 31), user=None, now=at, enqueue=False)
    run = certification_services.run_execute(run_id=run.pk, now=at)
    assert run.status == RunStatus.FAILED and not DecisionChange.objects.filter(run=run).exists()


# ---------------------------------------------------------------------------------------------
# Readers of an archived run


def test_a_persons_history_reads_the_archived_runs_from_their_copies(history: History) -> None:
    r1, r2, r3, r4, r5 = history.runs
    before = {d.run_id: decision_values(d) for d in Decision.objects.filter(recipient=history.li)}
    prune(history)
    bureau = UserFactory()

    kept = selectors.decision_history(user=bureau, recipient=history.li)
    assert [(d.run_id, d.status) for d in kept] == [(r5.pk, "stop"), (r4.pk, "stop")]
    spans = selectors.archived_history(user=bureau, recipient=history.li)
    assert [
        (s.first.pk, s.last.pk, s.runs, s.decision.status, s.decision.reason) for s in spans if s.decision
    ] == [
        (r3.pk, r3.pk, 1, "stop", "death"),  # the run in which he changed starts a span
        (r1.pk, r2.pk, 2, "eligible", "last_certified"),
    ]
    stop = spans[0].decision
    assert stop is not None and stop.run == r3 and stop.action == "stop" and stop.effective_month == "2026-10"
    # Every field as the database held it before the run was archived.
    assert decision_values(stop) == before[r3.pk]
    assert decision_values(spans[1].decision) == before[r1.pk]
    assert [
        (s.first.pk, s.last.pk, s.runs)
        for s in selectors.archived_history(user=bureau, recipient=history.zhang)
    ] == [(r1.pk, r3.pk, 3)]

    # Every archived run's decision, one by one, is the span's.
    for run in (r1, r2, r3):
        assert selectors.decision_in_run(run=run, recipient=history.li).status == (  # type: ignore[union-attr]
            "stop" if run == r3 else "eligible"
        )
    assert selectors.decision_in_run(run=r5, recipient=history.li).status == "stop"  # type: ignore[union-attr]


def test_a_run_kept_in_the_database_between_archived_ones_cuts_the_spans(history: History) -> None:
    r1, r2, r3, r4, r5 = history.runs
    store.run_decisions_file(r2.pk).unlink()  # the second run keeps its rows
    prune(history)
    bureau = UserFactory()
    spans = selectors.archived_history(user=bureau, recipient=history.zhang)
    assert [(s.first.pk, s.last.pk, s.runs) for s in spans] == [(r3.pk, r3.pk, 1), (r1.pk, r1.pk, 1)]
    assert [d.run_id for d in selectors.decision_history(user=bureau, recipient=history.zhang)] == [
        r5.pk,
        r4.pk,
        r2.pk,
    ]


def test_a_missing_copy_of_an_archived_run_is_shown_as_missing(history: History) -> None:
    prune(history)
    store.run_decisions_file(history.runs[0].pk).unlink()
    spans = selectors.archived_history(user=UserFactory(), recipient=history.zhang)
    assert [(s.first.pk, s.missing, s.decision) for s in spans] == [(history.runs[0].pk, True, None)]


def test_archived_reads_keep_the_unit_scope(history: History) -> None:
    r3 = history.runs[2]
    prune(history)
    operator = UnitOperatorFactory(unit=history.u1)
    bureau, auditor = UserFactory(), UserFactory(role=Role.AUDITOR)

    with pytest.raises(Http404):
        selectors.archived_history(user=operator, recipient=history.wang)
    assert selectors.archived_history(user=operator, recipient=history.zhang)

    assert [d.recipient.person_no for d in selectors.decisions_for_unit(user=operator, unit=None, run=r3)] == [
        "P001", "P002"
    ]  # fmt: skip
    assert [
        (d.recipient.person_no, d.unit.unit_no, d.status)
        for d in selectors.decisions_for_unit(user=auditor, unit=history.u2, run=r3)
    ] == [("P003", "U2", "eligible")]
    assert [d.recipient.person_no for d in selectors.decisions_for_unit(user=bureau, unit=None, run=r3)] == [
        "P001", "P002", "P003"
    ]  # fmt: skip
    assert [
        d.recipient.person_no
        for d in selectors.decisions_for_unit(user=bureau, unit=None, run=r3, status="stop")
    ] == ["P002"]
    with pytest.raises(Http404):
        selectors.decisions_for_unit(user=operator, unit=history.u2, run=r3)
    unit_b = UnitOperatorFactory(unit=history.u2)
    assert [d.recipient.person_no for d in selectors.decisions_for_unit(user=unit_b, unit=None, run=r3)] == [
        "P003"
    ]

    # The run page's counts: a unit's from the copy, filtered to the unit in the query.
    board = reports_selectors.run_counts(r3, operator)
    assert board.by_status == {"eligible": 1, "stop": 1} and board.total == 2
    assert [(a["action"], a["n"]) for a in board.actions] == [("stop", 1)]
    assert reports_selectors.run_counts(r3, unit_b).by_status == {"eligible": 1}
    assert reports_selectors.run_counts(r3, AnonymousUser()).total == 0
    # Bureau staff read the run's summary, as before.
    assert reports_selectors.run_counts(r3, bureau).by_status == {"eligible": 2, "stop": 1}

    # The dashboard's trend for a unit: archived runs from their copies, kept runs from the database.
    trend = reports_selectors.dashboard(operator).trend
    assert [t["counts"] for t in trend] == [
        {"eligible": 2}, {"eligible": 2}, {"eligible": 1, "stop": 1}, {"eligible": 1, "stop": 1}, {"eligible": 1, "stop": 1}
    ]  # fmt: skip
    assert [t["counts"] for t in reports_selectors.dashboard(unit_b).trend] == [{"eligible": 1}] * 5


# ---------------------------------------------------------------------------------------------
# Export (an auditor asks for an archived run's decisions)


def test_export_writes_an_archived_runs_decisions_and_checks_the_copy(
    history: History, tmp_path: Path
) -> None:
    r1, r2, r3, *_ = history.runs
    prune(history)
    out = tmp_path / "export" / "run3.csv"
    assert run_decisions_export(run_id=r3.pk, out=out, now=PRUNED_AT) == 3
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["person_no"], r["unit_no"], r["status"], r["reason"], r["action"]) for r in rows] == [
        ("P001", "U1", "eligible", "last_certified", ""),
        ("P002", "U1", "stop", "death", "stop"),
        ("P003", "U2", "eligible", "last_certified", ""),
    ]
    assert rows[1]["as_of"] == "2026-09-30" and rows[1]["effective_month"] == "2026-10"
    assert run_decisions_export(run_id=r3.pk, out=tmp_path / "u2.csv", now=PRUNED_AT, unit_no="U2") == 1
    event = AuditEvent.objects.filter(action="run.decisions_exported").order_by("seq").first()
    assert event is not None and event.target_id == str(r3.pk) and event.after["rows"] == 3

    # A copy changed after it was archived is refused.
    copy = store.run_decisions_file(r1.pk)
    pq.write_table(pq.read_table(copy), copy, compression="gzip")
    with pytest.raises(ArchiveError, match="has changed since it was archived"):
        run_decisions_export(run_id=r1.pk, out=tmp_path / "run1.csv", now=PRUNED_AT)
    store.run_decisions_file(r2.pk).unlink()
    with pytest.raises(ArchiveError, match="no decisions copy"):
        run_decisions_export(run_id=r2.pk, out=tmp_path / "run2.csv", now=PRUNED_AT)
    with pytest.raises(PermissionDenied):
        run_decisions_export(run_id=r3.pk, out=out, now=PRUNED_AT, user=UnitOperatorFactory(unit=history.u1))


def test_export_writes_the_rosters_numbers_formula_safe(history: History, tmp_path: Path) -> None:
    """个人编号 and 单位编号 are typed by people (the roster): one beginning with `=`, `+`, `-` or
    `@` is written with a leading `'` (docs/security.md), so that Excel or WPS shows it and does
    not run it; the others, codes and dates, are written exactly."""
    r3 = history.runs[2]
    Recipient.objects.filter(pk=history.li.pk).update(person_no="@SUM(1,2)")
    Unit.objects.filter(pk=history.u2.pk).update(unit_no='=HYPERLINK("http://x")')
    out = tmp_path / "run3.csv"
    assert run_decisions_export(run_id=r3.pk, out=out, now=PRUNED_AT) == 3
    with out.open(encoding="utf-8", newline="") as handle:
        rows = sorted((r["person_no"], r["unit_no"], r["status"]) for r in csv.DictReader(handle))
    assert rows == [
        ("'@SUM(1,2)", "U1", "stop"),
        ("P001", "U1", "eligible"),
        ("P003", '\'=HYPERLINK("http://x")', "eligible"),
    ]
