"""PostgreSQL: a run's decisions in a partition of their own (migration certification 0006,
`feeds.store.StagedRows.insert_partition`), with every index and foreign key of the table."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction

from tests.factories import RecipientFactory, RunFactory
from tests.integration.test_runs import (
    ID_A,
    ID_B,
    ID_C,
    ROSTER_HEADER,
    decisions_of,
    do_import,
    do_run,
    roster_row,
    write_csv,
)
from zige.certification.models import Decision
from zige.feeds import store

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="decisions are partitioned by run on PostgreSQL"
    ),
]

TABLE = Decision._meta.db_table
DAY_AFTER = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path / "data"
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    settings.DATA_DIR.mkdir(parents=True)


def _one(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


def _roster(tmp_path: Path) -> None:
    rows = [roster_row("P1", "张三", ID_A), roster_row("P2", "李四", ID_B), roster_row("P3", "王五", ID_C)]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")


@pytest.mark.parametrize("csv", [True, False], ids=["csv", "rows"])
def test_a_run_attaches_its_decisions_as_its_partition(tmp_path: Path, settings: Any, csv: bool) -> None:
    settings.ZIGE_PG_CSV_COPY = csv
    _roster(tmp_path)
    run = do_run()
    part = store.partition_name(TABLE, run.pk)
    assert part in _partitions()
    assert _one(f"SELECT count(*) FROM {part}") == 3 == Decision.objects.filter(run=run).count()
    # every index of the table has the partition's own attached under it, and every foreign key
    assert _one(
        "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
        "WHERE x.indrelid = %s::regclass",
        [part],
    ) == _one("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [TABLE])
    assert (
        _one("SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [part])
        == 3
    )
    assert set(decisions_of(run)) == {"P1", "P2", "P3"}
    later = do_run(as_of=date(2026, 12, 1), now=DAY_AFTER)
    assert store.partition_name(TABLE, later.pk) in _partitions()
    assert decisions_of(later) == decisions_of(run)  # nothing changed in a day: the same rows
    ids = list(Decision.objects.filter(run__in=[run, later]).values_list("pk", flat=True))
    assert len(set(ids)) == 6, "ids from the table's one sequence"


def test_a_foreign_key_still_refuses_a_decision_of_nobody() -> None:
    """The partition's rows are checked when it is attached, as a row inserted into the table is."""
    person = RecipientFactory()
    run = RunFactory(status="running")
    query = f"SELECT {run.pk}, {{}}, {person.unit_id}, 'eligible', 'rail', 'rail', FALSE, 'sms', '', ''"
    duck = duckdb.connect()
    columns = ["run_id", "recipient_id", "unit_id", "status", "reason", "evidence_kind", "remind", "channel",
               "action", "effective_month"]  # fmt: skip
    with (
        pytest.raises(IntegrityError, match="violates foreign key constraint"),
        transaction.atomic(),
        store.staged_rows(duck, {"d": query.format(person.pk + 1000)}) as rows,
    ):
        rows.insert_partition(TABLE, columns, "d", key="run_id", value=run.pk)
    assert store.partition_name(TABLE, run.pk) not in _partitions(), "rolled back with the rows"
    with store.staged_rows(duck, {"d": query.format(person.pk)}) as rows:
        assert rows.insert_partition(TABLE, columns, "d", key="run_id", value=run.pk) == 1
    assert Decision.objects.get(run=run).recipient == person


def test_the_migration_goes_back_to_one_table_and_forward_again(tmp_path: Path) -> None:
    migration = importlib.import_module("zige.certification.migrations.0006_decision_partitioned_by_run")
    _roster(tmp_path)
    runs = [do_run(), do_run(as_of=date(2026, 12, 1), now=DAY_AFTER)]
    before = {run.pk: decisions_of(run) for run in runs}
    ids = sorted(Decision.objects.values_list("pk", flat=True))
    index_names = _index_names()

    with connection.schema_editor() as editor:
        migration.backward(apps, editor)
    assert not _one("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE])
    assert {run.pk: decisions_of(run) for run in runs} == before
    assert sorted(Decision.objects.values_list("pk", flat=True)) == ids and _index_names() == index_names
    assert (
        _one("SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [TABLE])
        == 3
    )

    with connection.schema_editor() as editor:
        migration.forward(apps, editor)
    assert _partitions() >= {store.partition_name(TABLE, run.pk) for run in runs}
    assert {run.pk: decisions_of(run) for run in runs} == before and _index_names() == index_names
    third = do_run(as_of=date(2026, 12, 2), now=DAY_AFTER + timedelta(days=1))
    assert max(ids) < min(Decision.objects.filter(run=third).values_list("pk", flat=True))


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", [TABLE]
        )
        return {row[0] for row in cursor.fetchall()}
