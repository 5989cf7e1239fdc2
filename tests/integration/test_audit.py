"""The audit log: append-only in the database itself (UPDATE, DELETE and, on PostgreSQL,
TRUNCATE refused), and hash-chained so tampering is found.

A DBA with raw SQL can drop the triggers; the tests do the same (inside the test's transaction,
which rolls the DDL back on SQLite and PostgreSQL alike) to show that `zige audit verify` then
still finds the edited or deleted row by its seq.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from django.db import DatabaseError, connection, transaction

from tests.factories import NOW
from zige.audit.models import AuditEvent
from zige.audit.services import GENESIS, audit_record, audit_verify
from zige.cli import main

pytestmark = pytest.mark.django_db


class Actor:
    username = "wang"
    role = "bureau_operator"


def _chain(n: int = 5) -> list[AuditEvent]:
    after = {"role": "bureau_operator", "amount": "3000.00", "名": "张三"}
    return [
        audit_record(
            actor=Actor(),
            action="user.updated",
            target_type="accounts.User",
            target_id=f"u{i}",
            before={"role": "auditor"},
            after=after,
            ip="10.0.0.1",
            at=NOW + timedelta(seconds=i),
        )
        for i in range(n)
    ]


def _drop_triggers() -> None:
    """What a DBA could do; rolled back with the test's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER audit_event_no_change ON audit_auditevent")
        else:
            cursor.execute("DROP TRIGGER audit_event_no_update")
            cursor.execute("DROP TRIGGER audit_event_no_delete")


def test_the_chain_links_each_row_to_the_one_before() -> None:
    rows = _chain(3)
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    report = audit_verify()
    assert report.ok and report.events == 3 and report.first_bad_seq is None


def test_an_empty_log_verifies() -> None:
    assert audit_verify().ok


def test_zige_audit_verify_says_when_the_log_is_empty() -> None:
    """An empty log is consistent in itself: the command says so, and that an anchor tells an
    emptied log from a new one."""
    empty = CliRunner().invoke(main, ["audit", "verify"])
    assert empty.exit_code == 0, empty.output
    assert "intact: 0 events (empty" in empty.output and "--anchor" in empty.output


def test_a_rolled_back_change_leaves_no_row_and_the_chain_intact() -> None:
    _chain(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="user.created", target_id="x")
        raise RuntimeError("the change failed")
    _chain(1)
    assert audit_verify().ok and AuditEvent.objects.count() == 3


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "'someone else'"), ("action", "'auth.login'"), ("target_id", "'u99'"), ("ip", "'1.2.3.4'")],
)
def test_an_edited_row_is_detected_with_its_seq(column: str, value: str) -> None:
    rows = _chain(5)
    _drop_triggers()
    victim = rows[2].seq
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE audit_auditevent SET {column} = {value} WHERE seq = %s", [victim])
    report = audit_verify()
    assert not report.ok
    assert report.first_bad_seq == victim
    assert "edited" in report.problem


def test_an_edited_json_value_is_detected() -> None:
    rows = _chain(4)
    _drop_triggers()
    AuditEvent.objects.filter(seq=rows[1].seq).update(after={"role": "bureau_admin"})
    report = audit_verify()
    assert (report.ok, report.first_bad_seq) == (False, rows[1].seq)


def test_a_deleted_row_in_the_middle_is_detected() -> None:
    rows = _chain(5)
    _drop_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [rows[2].seq])
    report = audit_verify()
    assert not report.ok
    assert report.first_bad_seq == rows[3].seq  # the row whose link now points at nothing
    assert "removed" in report.problem


def test_a_rewritten_hash_breaks_the_next_link() -> None:
    rows = _chain(3)
    _drop_triggers()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET hash = %s WHERE seq = %s", ["f" * 64, rows[0].seq])
    report = audit_verify()
    assert (report.ok, report.first_bad_seq) == (False, rows[0].seq)


def _refused(action: object) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        action()  # type: ignore[operator]


def test_the_database_refuses_update_and_delete_through_the_orm() -> None:
    rows = _chain(3)
    event = AuditEvent.objects.get(seq=rows[1].seq)
    _refused(lambda: AuditEvent.objects.filter(seq=event.seq).update(actor="x"))
    _refused(lambda: AuditEvent.objects.filter(seq=event.seq).delete())
    _refused(lambda: AuditEvent.objects.all().delete())
    event.actor = "x"
    _refused(lambda: event.save())
    _refused(lambda: AuditEvent.objects.get(seq=rows[2].seq).delete())
    assert AuditEvent.objects.count() == 3
    assert AuditEvent.objects.get(seq=event.seq).actor == "wang"
    assert audit_verify().ok


def test_the_database_refuses_raw_sql_too() -> None:
    rows = _chain(2)

    def update() -> None:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET actor = 'x' WHERE seq = %s", [rows[0].seq])

    def delete() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")

    _refused(update)
    _refused(delete)
    assert audit_verify().ok


def test_the_database_refuses_truncate_on_postgresql() -> None:
    """TRUNCATE fires no row trigger: a statement-level one refuses it (SQLite has no TRUNCATE;
    its DELETE without WHERE is refused above)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    _chain(3)

    def truncate() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE audit_auditevent")

    _refused(truncate)
    report = audit_verify()
    assert (report.ok, report.events) == (True, 3)


def test_zige_audit_verify_exit_status() -> None:
    rows = _chain(4)
    runner = CliRunner()
    intact = runner.invoke(main, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "intact: 4 events" in intact.output and f"{rows[-1].seq}:{rows[-1].hash}" in intact.output

    _drop_triggers()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET target_id = 'forged' WHERE seq = %s", [rows[1].seq])
    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"seq {rows[1].seq}" in broken.output and "edited" in broken.output


def test_an_anchor_catches_rows_cut_from_the_end() -> None:
    rows = _chain(4)
    head = f"{rows[-1].seq}:{rows[-1].hash}"
    runner = CliRunner()
    assert runner.invoke(main, ["audit", "verify", "--anchor", head]).exit_code == 0
    _drop_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq >= %s", [rows[2].seq])
    assert audit_verify().ok  # the shorter chain is consistent in itself
    cut = runner.invoke(main, ["audit", "verify", "--anchor", head])
    assert cut.exit_code == 1 and f"seq {rows[-1].seq}" in cut.output and "missing" in cut.output
    assert runner.invoke(main, ["audit", "verify", "--anchor", "12:nothex"]).exit_code == 2
