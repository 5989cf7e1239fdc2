"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories import NOW

PASSWORD = "correct horse battery"


@pytest.fixture
def now():  # type: ignore[no-untyped-def]
    """A fixed 'now' for services (domain code never reads the clock)."""
    return NOW


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture(autouse=True, scope="session")
def _flush_the_audit_log_too() -> Iterator[None]:
    """A transactional test's teardown empties every table with Django's `flush`, which is a
    TRUNCATE on PostgreSQL: the audit log refuses it (trigger `audit_event_no_truncate`). For
    that flush only, as the table's owner resetting a test database would, its triggers are
    disabled around the TRUNCATE, in the flush's own transaction. (On SQLite the flush is a
    DELETE, which the audit log refuses too: transactional tests there keep audit rows out of
    the test database.)"""
    from django.core.management.commands import flush

    original = flush.sql_flush

    def sql_flush(style: Any, connection: Any, **kwargs: Any) -> list[str]:
        statements: list[str] = original(style, connection, **kwargs)
        if connection.vendor != "postgresql" or not any("audit_auditevent" in s for s in statements):
            return statements
        return [
            "ALTER TABLE audit_auditevent DISABLE TRIGGER USER;",
            *statements,
            "ALTER TABLE audit_auditevent ENABLE TRIGGER USER;",
        ]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flush, "sql_flush", sql_flush)
        yield


@pytest.fixture(autouse=True, scope="session")
def _decision_partitions_for_made_up_runs() -> Iterator[None]:
    """On PostgreSQL the decisions are partitioned by run, and only a run that stores its
    decisions makes its partition (migration certification 0006, `StagedRows.insert_partition`).
    Tests that make up a finished run and insert its decisions themselves get its partition when
    the run row is saved finished (succeeded or failed); a run saved queued or running is left to
    make its own, as in production."""
    from django.db.models.signals import post_save

    from zige.certification.models import Decision, Run, RunStatus
    from zige.feeds import store

    def made_up(sender: Any, instance: Run, created: bool, **kwargs: Any) -> None:
        if created and instance.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            store.partition_ensure(Decision._meta.db_table, instance.pk)

    post_save.connect(made_up, sender=Run, dispatch_uid="test-decision-partitions")
    yield
    post_save.disconnect(sender=Run, dispatch_uid="test-decision-partitions")
