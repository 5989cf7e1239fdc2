"""factory_boy factories for the system-of-record models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from zige.accounts.models import Role, User
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
