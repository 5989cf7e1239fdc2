"""`feeds.store.bulk_update` stores what each object's `save()` would store, on SQLite
(`executemany`) and PostgreSQL (`UPDATE … FROM unnest(…)`) alike: NULLs, decimals, booleans,
date-times, foreign keys, text with quotes — and touches no other row or field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.factories import NOW, RecipientFactory, UserFactory
from zige.benefits.models import PaymentAction
from zige.feeds import store

pytestmark = pytest.mark.django_db

FIELDS = ["effective_month", "months", "amount", "monthly_amount", "monthly_fixed", "state", "closed_by",
          "closed_at", "close_reason"]  # fmt: skip


def _action(i: int) -> PaymentAction:
    person = RecipientFactory()
    return PaymentAction.objects.create(
        recipient=person, unit=person.unit, kind="stop", effective_month="2026-09", months=3,
        amount=Decimal("900.00"), monthly_amount=Decimal("300.0000"), source="run", source_ref=f"run:{i}",
        proposed_at=NOW, note=f"note {i}",
    )  # fmt: skip


def test_bulk_update_stores_what_save_stores() -> None:
    actions = [_action(i) for i in range(5)]
    officer = UserFactory()
    untouched = _action(99)
    closed_at = datetime(2026, 12, 1, 1, 2, 3, 456789, tzinfo=UTC)
    values = [
        (
            "2026-10",
            4,
            Decimal("1234.56"),
            Decimal("308.6400"),
            True,
            "withdrawn",
            officer,
            closed_at,
            'a "q", b',
        ),
        ("2026-11", None, None, None, False, "proposed", None, None, ""),
        (
            "2027-01",
            0,
            Decimal("0.00"),
            Decimal("0.0001"),
            True,
            "withdrawn",
            officer,
            closed_at,
            "认证批次 #3 撤回",
        ),
        ("2026-09", 3, Decimal("900.00"), Decimal("300.0000"), False, "proposed", None, None, "line\nbreak"),
        ("2026-12", 1387, Decimal("416081.00"), None, False, "withdrawn", None, closed_at, "\\."),
    ]
    for action, row in zip(actions, values, strict=True):
        for name, value in zip(FIELDS, row, strict=True):
            setattr(action, name, value)
    assert store.bulk_update(PaymentAction, actions, FIELDS) == 5
    for action, row in zip(actions, values, strict=True):
        stored = PaymentAction.objects.get(pk=action.pk)
        assert tuple(getattr(stored, name) for name in FIELDS) == row
        assert (stored.note, stored.proposed_at, stored.kind) == (action.note, NOW, "stop")
    stored = PaymentAction.objects.get(pk=untouched.pk)
    assert (stored.effective_month, stored.state, stored.close_reason) == ("2026-09", "proposed", "")
    assert store.bulk_update(PaymentAction, [], FIELDS) == 0
