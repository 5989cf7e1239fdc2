"""factory_boy factories for the system-of-record models."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import factory
from factory.django import DjangoModelFactory

from zige.accounts.models import Role, User
from zige.certification.models import Run, RunStatus
from zige.ids import check_digit
from zige.roster.models import Recipient, Unit

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def make_id(seq: int, birth: date = date(1950, 1, 1), region: str = "140105") -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + check_digit(first17)


class UnitFactory(DjangoModelFactory[Unit]):
    class Meta:
        model = Unit
        django_get_or_create = ("unit_no",)

    unit_no = factory.Sequence(lambda n: f"1401{n:07d}")
    name = factory.Sequence(lambda n: f"测试单位{n}")


class RecipientFactory(DjangoModelFactory[Recipient]):
    class Meta:
        model = Recipient

    person_no = factory.Sequence(lambda n: f"P{n:010d}")
    # A different birth day for every thousand people: unique for millions of factory calls.
    id_number = factory.Sequence(lambda n: make_id(n, birth=date(1940, 1, 1) + timedelta(days=n // 1000)))
    name = factory.Sequence(lambda n: f"测试{n}")
    unit = factory.SubFactory(UnitFactory)
    unit_name = factory.LazyAttribute(lambda o: o.unit.name)
    sex = "男"
    benefit_status = "normal"
    monthly_amount = Decimal("3000.00")
    phone = "13812345678"
    mobile = "13812345678"
    retirement_date = date(2010, 1, 1)
    last_certified_on = date(2026, 1, 15)


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.BUREAU_OPERATOR
    unit = None
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


class UnitOperatorFactory(UserFactory):
    role = Role.UNIT_OPERATOR
    unit = factory.SubFactory(UnitFactory)


class RunFactory(DjangoModelFactory[Run]):
    """A certification run's row alone (no decisions, no copy): succeeded as of `NOW`'s date."""

    class Meta:
        model = Run

    as_of = date(2026, 11, 30)
    status = RunStatus.SUCCEEDED
    created_at = NOW
    started_at = NOW
    finished_at = NOW


# --- issue #4: verification tasks ----------------------------------------------------------


def verification_task(
    recipient: Recipient, *, status: str = "open", kind: str = "unit", run: object = None
) -> object:
    """A verification task for `recipient` (and a succeeded run to hang it on when none is given)."""
    from zige.certification.models import Run, RunStatus
    from zige.verification.models import TaskEvent, VerificationTask

    if run is None:
        run = Run.objects.create(as_of=date(2026, 11, 30), status=RunStatus.SUCCEEDED, created_at=NOW)
    task = VerificationTask.objects.create(
        recipient=recipient, unit=recipient.unit, kind=kind, period=f"due:test-{recipient.pk}-{kind}", status=status,
        run=run, as_of=date(2026, 11, 30), reason="no_evidence" if kind == "unit" else "alive_after_death",
        deadline=date(2027, 2, 28), created_at=NOW, updated_at=NOW,
        closed_at=None if status in ("open", "submitted", "returned", "overdue") else NOW,
        closed_by_run=run if status == "auto_closed" else None,  # only a run closes a task by itself
    )  # fmt: skip
    TaskEvent.objects.create(task=task, from_status="", to_status="open", at=NOW)
    return task


# --- issue #4: payment actions and cases -------------------------------------------------


def payment_action(recipient: Recipient, *, state: str = "proposed", kind: str = "stop", months: int = 3,
                   amount: str = "9000.00", proposed_by: object = None, approved_by: object = None) -> object:  # fmt: skip
    """A payment action in `state` (approved states get an approver: a fresh bureau operator)."""
    from zige.benefits.models import PaymentAction

    if state in ("approved", "exported", "confirmed") and approved_by is None:
        approved_by = UserFactory(role=Role.BUREAU_OPERATOR)
    return PaymentAction.objects.create(
        recipient=recipient, unit=recipient.unit, kind=kind, effective_month="2026-09", months=months,
        amount=Decimal(amount), source="manual", source_ref="test", state=state, proposed_by=proposed_by,
        proposed_at=NOW, approved_by=approved_by, approved_at=NOW if approved_by else None,
    )  # fmt: skip


def recovery_case(recipient: Recipient, *, amount: str = "9000.00") -> object:
    """An open recovery case on an approved stop of `recipient`."""
    from zige.benefits.models import RecoveryCase

    action = payment_action(recipient, state="approved", amount=amount)
    return RecoveryCase.objects.create(
        action=action,
        recipient=recipient,
        unit=recipient.unit,
        amount=Decimal(amount),
        months=3,
        opened_at=NOW,
    )


def fraud_case(recipient: Recipient, *, amount: str = "1000.00", opened_by: object = None,
               recovery: object = None) -> object:  # fmt: skip
    """A fraud case of `recipient`, arising from the recovery case `recovery` (or none)."""
    from zige.benefits.models import FraudCase

    return FraudCase.objects.create(
        recipient=recipient, unit=recipient.unit, amount_obtained=Decimal(amount),
        opened_by=opened_by or UserFactory(role=Role.BUREAU_OPERATOR), opened_at=NOW, recovery_case=recovery,
    )  # fmt: skip


def blacklist_entry(recipient: Recipient, *, since: date = date(2026, 11, 1), until: date | None = None,
                    by: object = None, fraud: object = None) -> object:  # fmt: skip
    """A blacklist entry (在列) of `recipient` by name and ID number, linked to the fraud case `fraud`."""
    from zige.benefits.models import Blacklist

    return Blacklist.objects.create(
        subject_type="person", person_name=recipient.name, person_id_number=recipient.id_number,
        reason="冒领已死亡人员养老金", since=since, until=until, by=by or UserFactory(role=Role.BUREAU_OPERATOR),
        fraud_case=fraud, created_at=NOW,
    )  # fmt: skip


def export_batch(recipient: Recipient) -> object:
    """An export batch (files written under DATA_DIR) holding one approved stop of `recipient`."""
    from zige.benefits.services import export_batch_create

    payment_action(recipient, state="approved")
    return export_batch_create(user=None, now=NOW)


def verification_attachment(task: object) -> object:
    """A submitted report on `task` by an operator of its unit, with a stored JPEG photo."""
    import io

    from PIL import Image

    from zige.verification.models import Attachment, Submission
    from zige.verification.uploads import attachment_store, upload_check

    submission = Submission.objects.create(
        task=task, number=1, method="visit", result="eligible", confirmed_on=date(2026, 11, 29), address="太原市",
        health="良好", submitted_by=UnitOperatorFactory(unit=task.unit), submitted_at=NOW,  # type: ignore[attr-defined]
    )  # fmt: skip
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (30, 60, 90)).save(buffer, "JPEG")
    stored = attachment_store(upload=upload_check(name="visit.jpg", data=buffer.getvalue(), allowed={"jpeg"}))
    return Attachment.objects.create(
        submission=submission, role="on_site", file_kind="jpeg", original_name="visit.jpg", sha256=stored.sha256,
        size=stored.size, stored_path=stored.stored_path, scan="not_scanned", uploaded_by=submission.submitted_by,
        uploaded_at=NOW,
    )  # fmt: skip


def finding_evidence() -> list[object]:
    """A checked on-site photo and a written confirmation (PDF): the evidence a 确认健在 finding
    on a review task needs, for anyone (special groups need both)."""
    import io

    from PIL import Image

    from zige.verification.services import Evidence
    from zige.verification.uploads import EVERYTHING, upload_check

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (90, 60, 30)).save(buffer, "JPEG")
    pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
    return [
        Evidence("on_site", upload_check(name="onsite.jpg", data=buffer.getvalue(), allowed=EVERYTHING)),
        Evidence("written", upload_check(name="signed.pdf", data=pdf, allowed=EVERYTHING)),
    ]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A UTF-8 CSV file of `header` and `rows` (an import's input)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
