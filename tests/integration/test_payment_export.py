"""Export batches: files for the payment system, exported exactly once, checksums and control
totals verified by reading the files back, re-export, confirm, void."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from openpyxl import load_workbook

from tests.factories import NOW, RecipientFactory, UserFactory, payment_action
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.benefits.models import ActionState, BatchState, ExportBatch, ExportLine, PaymentAction
from zige.benefits.services import (
    BATCH_TRANSITIONS,
    EXPORT_COLUMNS,
    BenefitsError,
    batch_paths,
    export_batch_confirm,
    export_batch_create,
    export_batch_reexport,
    export_batch_void,
    export_dir,
    export_file_download,
    export_orphans,
    export_orphans_sweep,
    payment_action_approve,
    payment_action_reverse,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def officer() -> Any:
    return UserFactory(username="exporter", role=Role.BUREAU_OPERATOR)


def approved(n: int, amounts: list[str] | None = None) -> list[PaymentAction]:
    out = []
    for i in range(n):
        amount = amounts[i] if amounts else f"{1000 + i}.{i % 100:02d}"
        out.append(payment_action(RecipientFactory(), state="approved", amount=amount))
    return out


def read_csv(path: Path) -> tuple[list[str], list[list[str]], list[str]]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    return rows[0], rows[1:-1], rows[-1]


def test_export_writes_xlsx_and_csv_with_control_totals_and_checksums(officer: Any) -> None:
    actions = approved(5, ["3000.00", "0.00", "1234.56", "99999.99", "0.01"])
    rejected_person = RecipientFactory()
    payment_action(rejected_person, state="rejected")  # not approved: not exported
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    expected_total = Decimal("3000.00") + Decimal("1234.56") + Decimal("99999.99") + Decimal("0.01")
    assert (batch.count, batch.total_amount) == (5, expected_total)
    paths = batch_paths(batch)

    # CSV: header, rows, control row; sha256 matches the bytes, the record and the sidecar.
    header, rows, control = read_csv(paths["csv"])
    assert tuple(header) == EXPORT_COLUMNS
    assert len(rows) == 5
    assert sum(Decimal(r[-1]) for r in rows) == expected_total
    assert control[0] == "TOTAL" and int(control[1]) == 5 and Decimal(control[-1]) == expected_total
    by_id = {int(r[1]): r for r in rows}
    for a in actions:
        r = by_id[a.pk]
        assert r[2:4] == [a.recipient.person_no, a.recipient.id_number]  # full ID for the payment system
        assert r[7:] == ["stop", "2026-09", "3", f"{a.amount:.2f}"]
    csv_sum = hashlib.sha256(paths["csv"].read_bytes()).hexdigest()
    assert csv_sum == batch.csv_sha256
    assert paths["csv.sha256"].read_text() == f"{csv_sum}  {paths['csv'].name}\n"

    # XLSX: the same rows, a control row and a control sheet.
    xlsx_sum = hashlib.sha256(paths["xlsx"].read_bytes()).hexdigest()
    assert xlsx_sum == batch.xlsx_sha256
    assert paths["xlsx.sha256"].read_text().split() == [xlsx_sum, paths["xlsx"].name]
    wb = load_workbook(paths["xlsx"])
    sheet = list(wb["payments"].iter_rows(values_only=True))
    assert tuple(sheet[0]) == EXPORT_COLUMNS
    body, last = sheet[1:-1], sheet[-1]
    assert [str(r[2]) for r in body] == [r[2] for r in rows]
    assert sum(Decimal(str(r[-1])).quantize(Decimal("0.01")) for r in body) == expected_total
    assert (
        last[0] == "TOTAL"
        and last[1] == 5
        and Decimal(str(last[-1])).quantize(Decimal("0.01")) == expected_total
    )
    control_sheet = dict(wb["control"].iter_rows(values_only=True))
    assert control_sheet["count"] == 5 and Decimal(control_sheet["total_amount"]) == expected_total

    for a in actions:
        a.refresh_from_db()
        assert a.state == ActionState.EXPORTED and a.exported_at == NOW
    event = AuditEvent.objects.get(action="export_batch.created")
    assert sorted(event.after["actions"]) == sorted(a.pk for a in actions)


def test_text_a_spreadsheet_would_run_is_quoted_in_the_csv_and_text_in_the_xlsx(officer: Any) -> None:
    """Names and unit names come from the roster: `=...` must not become a formula in the
    operator's spreadsheet (CSV: a leading apostrophe; XLSX: a text cell). Amounts are numbers."""
    person = RecipientFactory(name='=HYPERLINK("http://evil","点我")')
    person.unit.name = "@SUM(A1:A9)"
    person.unit.save()
    payment_action(person, state="approved", amount="1234.50")
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    paths = batch_paths(batch)
    _, [row], control = read_csv(paths["csv"])
    assert row[4] == "'" + person.name and row[6] == "'@SUM(A1:A9)"
    assert row[-1] == "1234.50" and control[-1] == "1234.50"
    wb = load_workbook(paths["xlsx"])
    [cells] = wb["payments"].iter_rows(min_row=2, max_row=2)
    assert (cells[4].value, cells[4].data_type) == (person.name, "s")
    assert (cells[6].value, cells[6].data_type) == ("@SUM(A1:A9)", "s")
    assert cells[-1].value == 1234.5


def test_each_action_is_exported_exactly_once(officer: Any) -> None:
    first_actions = approved(3)
    first = export_batch_create(user=officer, now=NOW)
    assert first is not None and first.count == 3
    assert export_batch_create(user=officer, now=NOW) is None  # nothing new
    later = approved(2)
    second = export_batch_create(user=officer, now=NOW)
    assert second is not None and second.count == 2
    assert set(second.lines.values_list("action_id", flat=True)) == {a.pk for a in later}
    # The database refuses a second live line for an action.
    with pytest.raises(IntegrityError), transaction.atomic():
        line = first.lines.first()
        assert line is not None
        ExportLine.objects.create(
            batch=second, action=first_actions[0], line_no=99, person_no="x", id_number="x", name="x",
            unit_no="x", action_code="stop", effective_month="2026-09", months=1, amount=Decimal("1"),
        )  # fmt: skip


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("where", ["audit", "xlsx rename"])
def test_a_batch_that_does_not_commit_leaves_no_files(
    where: str, officer: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files hold full ID numbers: they exist only for a committed batch. A failure after
    they were rendered — the audit row, or the disk while renaming the xlsx into place after the
    csv — leaves no batch, the actions approved, and no file (nor a temporary one)."""
    from zige.benefits import services

    actions = approved(2)
    with monkeypatch.context() as patch:
        if where == "audit":
            real_audit = services.audit_record

            def audit(**kwargs: Any) -> Any:
                if kwargs["action"] == "export_batch.created":
                    raise RuntimeError("audit log unavailable")
                return real_audit(**kwargs)

            patch.setattr(services, "audit_record", audit)
        else:
            real_replace = Path.replace

            def replace(self: Path, target: Any) -> Any:
                if str(target).endswith(".xlsx"):
                    raise OSError(28, "No space left on device")
                return real_replace(self, target)

            patch.setattr(Path, "replace", replace)
        with pytest.raises((RuntimeError, OSError)):
            export_batch_create(user=officer, now=NOW)
    assert not ExportBatch.objects.exists()
    assert {a.state for a in PaymentAction.objects.filter(pk__in=[a.pk for a in actions])} == {"approved"}
    assert _files(data_dir / "payments") == []
    # The next batch (on SQLite, the same number) writes its own four files.
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None and batch.count == 2
    assert _files(data_dir / "payments") == sorted(p.name for p in batch_paths(batch).values())
    assert hashlib.sha256(batch_paths(batch)["csv"].read_bytes()).hexdigest() == batch.csv_sha256


def test_reexport_gives_the_same_bytes_and_is_audited(officer: Any) -> None:
    approved(3)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    paths = batch_paths(batch)
    csv_before, xlsx_before = paths["csv"].read_bytes(), paths["xlsx"].read_bytes()
    paths["csv"].unlink()
    paths["xlsx"].unlink()
    # The roster changes after the export: the batch keeps what it sent.
    PaymentAction.objects.first().recipient.__class__.objects.update(name="改过的名字")  # type: ignore[union-attr]
    with pytest.raises(BenefitsError, match="原因"):
        export_batch_reexport(batch_id=batch.pk, user=officer, reason=" ", now=NOW)
    export_batch_reexport(batch_id=batch.pk, user=officer, reason="支付系统要求重发", now=NOW)
    assert paths["csv"].read_bytes() == csv_before
    assert paths["xlsx"].read_bytes() == xlsx_before
    batch.refresh_from_db()
    assert batch.reexports == 1
    event = AuditEvent.objects.get(action="export_batch.reexported")
    assert event.after["reason"] == "支付系统要求重发"


def test_confirm_and_void_follow_the_table(officer: Any) -> None:
    assert {("exported", "confirmed"), ("exported", "void")} == BATCH_TRANSITIONS
    actions = approved(2)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    export_batch_confirm(batch_id=batch.pk, user=officer, ref="ZF-2026-001", now=NOW)
    batch.refresh_from_db()
    assert batch.state == BatchState.CONFIRMED and batch.confirm_ref == "ZF-2026-001"
    assert {a.state for a in PaymentAction.objects.filter(pk__in=[a.pk for a in actions])} == {"confirmed"}
    for call in (
        lambda: export_batch_confirm(batch_id=batch.pk, user=officer, ref="", now=NOW),
        lambda: export_batch_void(batch_id=batch.pk, user=officer, reason="x", now=NOW),
    ):
        with pytest.raises(BenefitsError, match="状态不能从"):
            call()


def test_a_void_batch_frees_its_actions_for_the_next_export(officer: Any) -> None:
    actions = approved(2)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    with pytest.raises(BenefitsError, match="原因"):
        export_batch_void(batch_id=batch.pk, user=officer, reason="", now=NOW)
    export_batch_void(batch_id=batch.pk, user=officer, reason="支付系统拒收：格式错误", now=NOW)
    assert {a.state for a in PaymentAction.objects.filter(pk__in=[a.pk for a in actions])} == {"approved"}
    with pytest.raises(BenefitsError, match="状态不能从"):
        export_batch_confirm(batch_id=batch.pk, user=officer, ref="", now=NOW)
    with pytest.raises(BenefitsError, match="作废"):
        export_batch_reexport(batch_id=batch.pk, user=officer, reason="x", now=NOW)
    again = export_batch_create(user=officer, now=NOW)
    assert again is not None and again.count == 2


def test_void_moves_back_only_exported_actions_as_the_table_says(officer: Any) -> None:
    """Voiding follows ACTION_TRANSITIONS (exported → approved) as confirming does: a batch one
    of whose actions is no longer exported (here confirmed, as if the payment system had taken
    it) is not voided, and nothing changes — the confirmed action is not made approved again,
    to be exported and paid a second time."""
    actions = approved(2)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    PaymentAction.objects.filter(pk=actions[0].pk).update(state=ActionState.CONFIRMED, confirmed_at=NOW)
    with pytest.raises(BenefitsError, match="状态不能从“已确认”变为“已审批”"):
        export_batch_void(batch_id=batch.pk, user=officer, reason="支付系统拒收", now=NOW)
    batch.refresh_from_db()
    assert batch.state == BatchState.EXPORTED and batch.lines.filter(active=True).count() == 2
    states = dict(PaymentAction.objects.filter(pk__in=[a.pk for a in actions]).values_list("pk", "state"))
    assert states == {actions[0].pk: "confirmed", actions[1].pk: "exported"}
    assert not AuditEvent.objects.filter(action="export_batch.voided").exists()


def test_a_reversal_is_exported_after_its_approval(officer: Any) -> None:
    checker = UserFactory(role=Role.BUREAU_ADMIN)
    (original,) = approved(1, ["4500.00"])
    export_batch_create(user=officer, now=NOW)
    reversal = payment_action_reverse(action_id=original.pk, user=officer, reason="死亡信息错误", now=NOW)
    assert export_batch_create(user=officer, now=NOW) is None  # not approved yet
    payment_action_approve(action_id=reversal.pk, user=checker, now=NOW)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    _, rows, _ = read_csv(batch_paths(batch)["csv"])
    assert [(int(r[1]), r[7], r[-1]) for r in rows] == [(reversal.pk, "reverse_stop", "4500.00")]
    original.refresh_from_db()
    assert original.state == ActionState.EXPORTED  # the original is never changed


def test_download_is_audited_and_bureau_only(officer: Any) -> None:
    approved(1)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    path = export_file_download(batch_id=batch.pk, kind="xlsx", user=officer, ip="10.0.0.1", now=NOW)
    assert path == batch_paths(batch)["xlsx"]
    assert AuditEvent.objects.filter(action="export_batch.downloaded", ip="10.0.0.1").count() == 1
    with pytest.raises(BenefitsError, match="社保局"):
        export_file_download(
            batch_id=batch.pk, kind="xlsx", user=UserFactory(role=Role.AUDITOR), ip="", now=NOW
        )
    with pytest.raises(BenefitsError, match="未知"):
        export_file_download(batch_id=batch.pk, kind="../secret", user=officer, ip="", now=NOW)


def test_the_xlsx_is_byte_identical_whatever_the_time_of_writing(officer: Any) -> None:
    """openpyxl stamps zip entries with the current time; the export does not."""
    import time

    from zige.benefits.services import _rows_of, render_xlsx

    approved(2)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    one = render_xlsx(
        batch_id=batch.pk, rows=_rows_of(batch), total=batch.total_amount, created=batch.created_at
    )
    time.sleep(2.1)
    two = render_xlsx(
        batch_id=batch.pk, rows=_rows_of(batch), total=batch.total_amount, created=batch.created_at
    )
    assert one == two


def test_reexport_refuses_when_the_kept_lines_no_longer_give_the_recorded_checksum(officer: Any) -> None:
    approved(2)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    paths = batch_paths(batch)
    before = paths["csv"].read_bytes()
    ExportLine.objects.filter(batch=batch, line_no=1).update(amount=Decimal("1.00"))  # tampered
    with pytest.raises(BenefitsError, match="校验值不一致"):
        export_batch_reexport(batch_id=batch.pk, user=officer, reason="重发", now=NOW)
    assert paths["csv"].read_bytes() == before  # nothing was written
    batch.refresh_from_db()
    assert batch.reexports == 0
    assert not AuditEvent.objects.filter(action="export_batch.reexported").exists()


# --- files no batch accounts for (a killed export) -------------------------------------------


def _killed_export(officer: Any) -> list[str]:
    """An export whose process died after renaming its files into place and before the commit:
    the batch rolled back, and nobody removed the files (no `except` ran in the dead process)."""
    from zige.benefits import services

    approved(1)
    batches = ExportBatch.objects.count()

    class Killed(Exception):
        pass

    with pytest.raises(Killed), transaction.atomic():
        services._export_batch_create(user=officer, now=NOW, placed=[])
        raise Killed
    assert ExportBatch.objects.count() == batches
    return _files(export_dir())


def _age(folder: Path, hours: float) -> None:
    import os
    import time

    stamp = time.time() - hours * 3600
    for path in folder.iterdir():
        os.utime(path, (stamp, stamp))


def test_status_reports_and_sweep_removes_only_files_without_a_batch(officer: Any, data_dir: Path) -> None:
    from click.testing import CliRunner

    from zige.cli import main

    approved(1)
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    kept = sorted(p.name for p in batch_paths(batch).values())
    orphans = sorted(set(_killed_export(officer)) - set(kept))
    assert len(orphans) == 4  # csv, xlsx and their .sha256, with full ID numbers
    folder = export_dir()
    (folder / ".payments-000077-20261130.csv.0badf00d.tmp").write_bytes(b"half written")
    (folder / "README.txt").write_text("not an export file", encoding="utf-8")
    _age(folder, 2)
    listed = export_orphans(now=timezone.now())
    assert sorted(o.path.name for o in listed) == sorted(
        [*orphans, ".payments-000077-20261130.csv.0badf00d.tmp"]
    )
    assert not set(kept) & {o.path.name for o in listed}

    runner = CliRunner()
    status = runner.invoke(main, ["status", "--json"])
    report = json.loads(status.output)
    assert status.exit_code == 1
    assert sorted(Path(p).name for p in report["orphan_export_files"]) == sorted(o.path.name for o in listed)
    assert any("without a batch" in p and "zige payments sweep" in p for p in report["problems"])

    dry = runner.invoke(main, ["payments", "sweep", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{len(listed)} file(s) would remove" in dry.output
    assert len(_files(folder)) == len(kept) + len(listed) + 1
    assert not AuditEvent.objects.filter(action="export_file.swept").exists()

    done = runner.invoke(main, ["payments", "sweep", "--user", "exporter"])
    assert done.exit_code == 0, done.output
    assert _files(folder) == sorted([*kept, "README.txt"])
    assert hashlib.sha256(batch_paths(batch)["csv"].read_bytes()).hexdigest() == batch.csv_sha256
    event = AuditEvent.objects.get(action="export_file.swept")
    assert event.actor == "exporter" and sorted(event.after["removed"]) == sorted(o.path.name for o in listed)
    again = runner.invoke(main, ["status", "--json"])
    assert json.loads(again.output)["orphan_export_files"] == []


def test_recent_files_and_void_batches_files_are_never_swept(officer: Any, data_dir: Path) -> None:
    """A file younger than an hour may be an export still committing; a void batch is still a
    batch: neither is listed nor removed."""
    orphans = _killed_export(officer)
    assert export_orphans(now=timezone.now()) == []
    assert export_orphans_sweep(user=officer, now=timezone.now(), dry_run=False) == []
    assert _files(export_dir()) == orphans
    with pytest.raises(BenefitsError, match="小时以前"):
        export_orphans_sweep(user=officer, now=timezone.now(), dry_run=False, min_age=timedelta(minutes=5))
    for path in export_dir().iterdir():
        path.unlink()
    batch = export_batch_create(user=officer, now=NOW)
    assert batch is not None
    export_batch_void(batch_id=batch.pk, user=officer, reason="支付系统退回", now=NOW)
    _age(export_dir(), 2)
    assert export_orphans_sweep(user=officer, now=timezone.now(), dry_run=False) == []
    assert len(_files(export_dir())) == 4
    with pytest.raises(BenefitsError):
        export_orphans_sweep(user=UserFactory(role=Role.AUDITOR), now=timezone.now(), dry_run=True)
