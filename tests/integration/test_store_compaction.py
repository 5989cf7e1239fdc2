"""Compaction of the system of record's evidence store (`zige store compact`, `store_compact`,
the weekly job): runs, person pages and every other reader of the store give what they gave
before, imports before, during and after it store each row once, and a failure changes nothing.

Runs on SQLite and on PostgreSQL (`ZIGE_DATABASE_URL`)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pytest
from click.testing import CliRunner

from tests.factories import NOW, make_id, write_csv
from zige.audit.models import AuditEvent
from zige.certification.models import Decision, Run, RunStatus
from zige.certification.services import run_execute, run_submit
from zige.cli_admin import store_group
from zige.demo import generate_province
from zige.engine import store as engine_store
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.readers import read_table
from zige.engine.store import StoreBusy
from zige.feeds import selectors, services, store
from zige.feeds.models import ImportBatch, ImportStatus
from zige.ledger.selectors import remote_results
from zige.notifications import jobs
from zige.notifications.config import NotifyConfig
from zige.notifications.models import JobRun
from zige.notifications.services import _app_failures
from zige.roster.models import Recipient

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 30)
LATER = NOW + timedelta(hours=2)  # past the default grace of the replaced files
RAIL = next(k for k in BUILTIN_KINDS if k.code == "rail")
RAIL_HEADER = [c.aliases[0] for c in RAIL.columns]  # 身份证号, 姓名, 乘车日期, 车次, 出发站, 到达站


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    return tmp_path / "data"


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A generated province of 1,500 people whose rail files come in daily-import slices: many
    files in every rail month, as a year of daily imports leaves them."""
    base = tmp_path_factory.mktemp("province")
    generated = generate_province(base / "input", recipients=1500, as_of=AS_OF, seed=7)
    feeds = sorted(p for p in Path(generated.feeds).iterdir() if not p.name.startswith("rail_"))
    for rail in sorted(Path(generated.feeds).glob("rail_*.csv")):  # GBK, title rows: read as an import does
        raw = read_table(rail, RAIL.columns).table
        rows = [list(r) for r in zip(*(raw.column(c.name).to_pylist() for c in RAIL.columns), strict=True)]
        for part in range(4):
            feeds.append(write_csv(base / f"{rail.stem}_part{part}.csv", RAIL_HEADER, rows[part::4]))
    return Path(generated.roster), feeds


def do_import(path: Path, kind: str | None = None) -> ImportBatch:
    batch = services.import_submit(
        source=path, file_name=path.name, kind=kind, user=None, now=NOW, enqueue=False
    )
    if batch.status == ImportStatus.QUEUED:
        batch = services.import_execute(batch_id=batch.pk, now=NOW)
    return batch


def do_run() -> dict[str, tuple[Any, ...]]:
    run = run_execute(run_id=run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False).pk, now=NOW)
    assert run.status == RunStatus.SUCCEEDED, run.message
    fields = (
        "status",
        "reason",
        "evidence_kind",
        "evidence_date",
        "certified_on",
        "due_on",
        "action",
        "months",
    )
    return {
        r[0]: r[1:] for r in Decision.objects.filter(run=run).values_list("recipient__person_no", *fields)
    }


def stored_rows(files: list[Path]) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        return sorted(con.execute(f"SELECT * FROM ({store.evidence_read_sql(files)})").fetchall(), key=repr)


def compact(*args: str) -> Any:
    """`zige store compact` at the tests' NOW: the command reads the clock, and the sweeps after
    it (at LATER, past the grace) must come after its compaction whatever the time of day."""
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        return CliRunner().invoke(store_group, ["compact", *args])


def test_a_compacted_store_gives_the_same_runs_person_pages_and_readers(
    province: tuple[Path, list[Path]], data_dirs: Path
) -> None:
    roster, feeds = province
    assert do_import(roster, "roster").status == ImportStatus.SUCCEEDED
    for path in feeds:
        batch = do_import(path)
        assert batch.status == ImportStatus.SUCCEEDED, (path.name, batch.message)
    people = list(Recipient.objects.order_by("pk").values_list("id_number", flat=True)[:300])
    decisions = do_run()
    pages = {p: selectors.evidence_for_person(id_number=p) for p in people}
    assert sum(len(v) for v in pages.values()) > 500
    every = stored_rows(store.evidence_files())
    app = stored_rows(store.evidence_files("app_auth"))
    failures, remote = _app_failures(AS_OF), remote_results(people, as_of=AS_OF)
    before = store.evidence_files()
    files_before, partitions = len(before), {(p.parent.parent.name, p.parent.name) for p in before}
    assert files_before > len(partitions) + 60

    result = compact()

    assert result.exit_code == 0, result.output
    assert "rail 2026-03: 4 files -> 1" in result.output and "partition(s) merged" in result.output
    files = store.evidence_files()
    assert sorted((p.parent.parent.name, p.parent.name) for p in files) == sorted(partitions)  # one each
    assert all(p.name.startswith("c") for p in files if "kind=rail/" in str(p))
    assert stored_rows(files) == every
    assert stored_rows(store.evidence_files("app_auth")) == app
    assert {p: selectors.evidence_for_person(id_number=p) for p in people} == pages
    names = dict(ImportBatch.objects.values_list("pk", "file_name"))
    assert all(
        r["file_name"] == names[r["batch_id"]] for v in pages.values() for r in v if r["source"] == "import"
    )
    assert _app_failures(AS_OF) == failures and remote_results(people, as_of=AS_OF) == remote
    assert do_run() == decisions
    [event] = AuditEvent.objects.filter(action="store.compacted")
    assert {(p["kind"], p["month"]) for p in event.after["partitions"]} >= {
        ("rail", "2026-03"),
        ("rail", "2026-11"),
    }

    # The replaced files go with a compaction after the grace; nothing else changes.
    removed = services.store_compact(now=LATER)
    assert removed.partitions == [] and len(removed.removed) > files_before - len(partitions)
    assert not list((data_dirs / "evidence").glob("kind=rail/month=*/b*.parquet"))
    assert stored_rows(store.evidence_files()) == every
    assert {p: selectors.evidence_for_person(id_number=p) for p in people} == pages

    # Importing again: the same bytes are a duplicate import; the same rows in another file are
    # found in the merged files and stored no second time.
    rail = next(p for p in feeds if p.name.startswith("rail_2026q3"))
    assert do_import(rail).status == ImportStatus.DUPLICATE
    with rail.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    again = do_import(write_csv(data_dirs / "rail_2026q3_resent.csv", header, rows[::-1]))  # other bytes
    assert again.status == ImportStatus.SUCCEEDED, again.message
    assert again.rows_read == len(rows) and again.rows_used == 0
    assert again.duplicate_rows == again.rows_read - again.rows_rejected
    assert stored_rows(store.evidence_files()) == every


def rail_file(path: Path, rows: list[tuple[str, str]]) -> Path:
    return write_csv(path, RAIL_HEADER, [[i, "张三", day, "G1", "太原", "北京"] for i, day in rows])


def ids() -> list[str]:
    return [make_id(n, date(1950 + n % 7, 1, 1)) for n in range(30)]


def test_a_reader_of_some_imports_reads_only_their_rows_of_a_merged_file(tmp_path: Path) -> None:
    who = ids()
    batches = [
        do_import(
            rail_file(tmp_path / f"rail_0{n}.csv", [(who[n * 3 + k], f"2026-03-0{n + 1}") for k in range(3)])
        )
        for n in range(3)
    ]
    one = stored_rows(store.evidence_batch_files(batches[:1]))
    two = stored_rows(store.evidence_batch_files(batches[1:]))
    assert len(one) == 3 and len(two) == 6
    assert compact().exit_code == 0
    files = store.evidence_batch_files(batches[:1])
    assert len(files) == 1 and files.partial == frozenset(files)
    assert stored_rows(files) == one and stored_rows(store.evidence_batch_files(batches[1:])) == two
    assert not store.evidence_batch_files(batches).partial


def test_an_import_reads_the_stored_rows_it_listed_before_a_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate check lists the stored files, then reads them: a compaction committing in
    between (and the replaced files' grace) leaves it the same rows."""
    who = ids()
    for n in range(3):
        do_import(
            rail_file(
                tmp_path / f"rail_0{n}.csv", [(who[n], "2026-03-05"), (who[10 + n], "2026-04-0" + str(n + 1))]
            )
        )
    real = engine_store._stored_records_sql
    ran: list[int] = []

    def listed_then_compacted(files: Any) -> str:
        query = real(files)
        ran.append(len(services.store_compact(now=NOW).partitions))
        return query

    monkeypatch.setattr(engine_store, "_stored_records_sql", listed_then_compacted)
    batch = do_import(
        rail_file(tmp_path / "rail_resent.csv", [(who[0], "2026-03-05"), (who[1], "2026-03-06")])
    )
    assert ran == [2]
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert (batch.rows_used, batch.duplicate_rows) == (1, 1)
    rows = stored_rows(store.evidence_files())
    assert len(rows) == 7 and len(set(rows)) == 7


def test_an_import_committing_after_a_compaction_keeps_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction between an import's written files and its transaction merges only succeeded
    imports: the new one's files stay its own, and are merged by the next compaction."""
    who = ids()
    for n in range(2):
        do_import(rail_file(tmp_path / f"rail_0{n}.csv", [(who[n], "2026-03-05")]))
    real = services._finish

    def compacted_first(batch: ImportBatch, **kwargs: Any) -> None:
        services.store_compact(now=NOW)
        real(batch, **kwargs)

    monkeypatch.setattr(services, "_finish", compacted_first)
    late = do_import(rail_file(tmp_path / "rail_late.csv", [(who[5], "2026-03-09"), (who[0], "2026-03-05")]))
    monkeypatch.undo()
    assert late.status == ImportStatus.SUCCEEDED and (late.rows_used, late.duplicate_rows) == (1, 1)
    files = store.evidence_files()
    assert sorted(p.name.split("-")[0] for p in files) == [f"b{late.pk}", "c1"]
    assert len(stored_rows(files)) == 3
    assert services.store_compact(now=NOW).partitions[0].batches == 3
    assert len(store.evidence_files()) == 1 and len(stored_rows(store.evidence_files())) == 3


def test_a_failed_compaction_changes_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dirs: Path
) -> None:
    who = ids()
    for n in range(3):
        do_import(rail_file(tmp_path / f"rail_0{n}.csv", [(who[n], "2026-03-05"), (who[n], "2026-04-05")]))
    page = selectors.evidence_for_person(id_number=who[1])
    listing = sorted(p for p in (data_dirs / "evidence").rglob("*") if p.is_file())

    def rename(source: Path, target: Path) -> None:
        if target.suffix == ".json":
            raise OSError("disk full")
        source.replace(target)

    monkeypatch.setattr("zige.feeds.store._rename", rename)
    result = compact()
    assert result.exit_code == 1 and "disk full" in result.output
    assert selectors.evidence_for_person(id_number=who[1]) == page
    lock = data_dirs / "evidence" / "_compact" / ".lock"
    assert sorted(p for p in (data_dirs / "evidence").rglob("*") if p.is_file()) == sorted([*listing, lock])
    assert not AuditEvent.objects.filter(action="store.compacted").exists()
    monkeypatch.undo()
    assert compact().exit_code == 0
    assert selectors.evidence_for_person(id_number=who[1]) == page


def test_a_person_page_parses_each_manifest_and_record_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page lists every succeeded import's manifest and the compaction records on each
    request: parsed once (`zige.engine.store_cache`), then read again only when new or replaced."""
    who = ids()
    for n in range(3):
        do_import(
            rail_file(tmp_path / f"rail_0{n}.csv", [(who[n], "2026-03-05"), (who[0], f"2026-04-0{n + 1}")])
        )
    parsed: list[str] = []
    real = engine_store.json.loads

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(text, str) and '"key_layout"' in text:  # not the audit log's JSON
            parsed.append("record" if '"sources"' in text else "manifest")
        return real(text, *args, **kwargs)

    monkeypatch.setattr(engine_store.json, "loads", counting)
    page = selectors.evidence_for_person(id_number=who[0])
    assert len([r for r in page if r["source"] == "import"]) == 4
    parsed.clear()
    assert selectors.evidence_for_person(id_number=who[0]) == page
    assert parsed == [], "the second request parsed manifests again"

    # An import after the cache was filled: its manifest alone is read, its rows are on the page.
    late = do_import(rail_file(tmp_path / "rail_late.csv", [(who[0], "2026-03-20")]))
    parsed.clear()
    newer = selectors.evidence_for_person(id_number=who[0])
    assert parsed == ["manifest"]
    assert [r for r in newer if r["batch_id"] == late.pk] and len(newer) == len(page) + 1
    # A compaction after it: its records alone are read (by the compaction), the page is the same.
    parsed.clear()
    assert compact().exit_code == 0
    assert selectors.evidence_for_person(id_number=who[0]) == newer
    assert sorted(set(parsed)) == ["record"]
    # The replaced files go after the grace: still the same page, nothing parsed again.
    services.store_compact(now=LATER)
    parsed.clear()
    assert selectors.evidence_for_person(id_number=who[0]) == newer and parsed == []


def test_the_command_takes_a_kind_and_a_threshold_and_refuses_a_second_compaction(tmp_path: Path) -> None:
    who = ids()
    for n in range(3):
        do_import(rail_file(tmp_path / f"rail_0{n}.csv", [(who[n], "2026-03-05")]))
    for n in range(2):
        path = tmp_path / f"death_0{n}.csv"
        write_csv(path, ["身份证号", "姓名", "死亡日期"], [[who[20 + n], "李四", "2026-03-07"]])
        do_import(path)
    result = compact("--kind", "death", "--min-files", "3")
    assert result.exit_code == 0 and "0 partition(s) merged" in result.output
    result = compact("--kind", "death")
    assert (
        "death 2026-03: 2 files -> 1" in result.output
        and "rail" not in result.output.split("store compact")[0]
    )
    assert len(store.evidence_files("rail")) == 3 and len(store.evidence_files("death")) == 1
    with store.evidence_store().lock():
        busy = compact()
    assert busy.exit_code == 1 and "another compaction" in busy.output
    with pytest.raises(StoreBusy), store.evidence_store().lock():
        services.store_compact(now=NOW)


# ---------------------------------------------------------------------------------------------
# The weekly job


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def beijing(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_the_schedule_compacts_once_a_week_on_its_day(tmp_path: Path) -> None:
    who = ids()
    for n in range(2):
        do_import(rail_file(tmp_path / f"rail_0{n}.csv", [(who[n], "2026-03-05")]))
    config = NotifyConfig()  # Sundays at 04:00 (ZIGE_STORE_COMPACT_AT)
    sunday = date(2026, 11, 29)
    call: Callable[[datetime], Any] = lambda at: jobs.store_compact_weekly(clock=Clock(at), config=config)  # noqa: E731
    assert call(beijing(sunday, 3, 59)) is None
    assert call(beijing(date(2026, 11, 30), 4, 30)) is None  # a Monday
    job = call(beijing(sunday, 4, 10))
    assert job is not None and job.status == "succeeded" and job.key == "2026-W48"
    assert job.detail["partitions"] == 1 and job.detail["rows"] == 2
    assert call(beijing(sunday, 5, 0)) is None  # once a week
    assert len(store.evidence_files()) == 1
    assert (
        jobs.store_compact_weekly(
            clock=Clock(beijing(date(2026, 12, 6), 4, 0)), config=NotifyConfig(store_compact_at=None)
        )
        is None
    )
    assert JobRun.objects.filter(job="store_compact").count() == 1
    assert Run.objects.count() == 0
