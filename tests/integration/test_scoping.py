"""Row-level scope: unit operators see only their own unit, in the query itself."""

from __future__ import annotations

import pytest

from tests.factories import RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory
from zige.accounts.masking import mask_id, mask_phone
from zige.accounts.models import Role
from zige.accounts.scoping import scope_recipients, scope_units
from zige.roster.models import Recipient, Unit

pytestmark = pytest.mark.django_db


def test_unit_operator_sees_only_their_unit() -> None:
    mine, theirs = UnitFactory(), UnitFactory()
    RecipientFactory.create_batch(3, unit=mine)
    RecipientFactory.create_batch(2, unit=theirs)
    operator = UnitOperatorFactory(unit=mine)
    visible = scope_recipients(Recipient.objects.all(), operator)
    assert visible.count() == 3
    assert set(visible.values_list("unit_id", flat=True)) == {mine.pk}
    assert list(scope_units(Unit.objects.all(), operator)) == [mine]


@pytest.mark.parametrize("role", [Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR])
def test_bureau_roles_see_every_unit(role: str) -> None:
    RecipientFactory.create_batch(2, unit=UnitFactory())
    RecipientFactory.create_batch(2, unit=UnitFactory())
    assert scope_recipients(Recipient.objects.all(), UserFactory(role=role)).count() == 4


def test_anonymous_and_roleless_users_see_nothing() -> None:
    from django.contrib.auth.models import AnonymousUser

    RecipientFactory()
    assert scope_recipients(Recipient.objects.all(), AnonymousUser()).count() == 0


def test_masks() -> None:
    assert mask_id("14010519500101123X") == "140105********123X"
    assert mask_phone("13812345678") == "138****5678"
