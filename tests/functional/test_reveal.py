"""Masked by default; revealing an ID or phone number is a deliberate, audited action."""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.roster.models import Recipient

pytestmark = pytest.mark.django_db

REVEAL = "/accounts/reveal/"


@pytest.fixture
def person() -> Recipient:
    return RecipientFactory(
        person_no="P123", id_number="14010519500101123X", phone="0351-1234567", mobile="13812345678"
    )


def _reveal(client: Client, person: Recipient, field: str = "id_number", **extra: Any) -> Any:
    data = {"target_type": "recipient", "target_id": person.pk, "field": field, **extra}
    return client.post(REVEAL, data, REMOTE_ADDR="10.9.8.7")


def test_url_name() -> None:
    assert reverse("accounts:reveal") == REVEAL


@pytest.mark.parametrize(
    ("field", "value"),
    [("id_number", "14010519500101123X"), ("mobile", "13812345678"), ("phone", "0351-1234567")],
)
def test_reveal_returns_the_value_and_audits_the_field_but_not_the_value(
    client: Client, person: Recipient, field: str, value: str
) -> None:
    operator = UserFactory(role=Role.BUREAU_OPERATOR)
    client.force_login(operator)
    response = _reveal(client, person, field)
    assert response.status_code == 200
    html = response.content.decode()
    assert value in html and "<html" not in html  # a fragment for htmx
    [event] = AuditEvent.objects.filter(action="pii.reveal")
    assert (event.actor, event.actor_role, event.ip) == (operator.username, "bureau_operator", "10.9.8.7")
    assert (event.target_type, event.target_id, event.after) == ("roster.Recipient", "P123", {"field": field})
    stored = str(AuditEvent.objects.filter(pk=event.pk).values().get())
    assert value not in stored and value[-8:] not in stored


def test_unit_operator_reveals_their_own_unit_only(client: Client) -> None:
    mine, theirs = UnitFactory(), UnitFactory()
    own, foreign = RecipientFactory(unit=mine), RecipientFactory(unit=theirs)
    client.force_login(UnitOperatorFactory(unit=mine))
    assert _reveal(client, own).status_code == 200
    response = _reveal(client, foreign)
    assert response.status_code == 404 and foreign.id_number not in response.content.decode()
    assert list(AuditEvent.objects.filter(action="pii.reveal").values_list("target_id", flat=True)) == [
        own.person_no
    ]


def test_auditor_may_not_reveal(client: Client, person: Recipient) -> None:
    client.force_login(UserFactory(role=Role.AUDITOR))
    assert _reveal(client, person).status_code == 403
    assert not AuditEvent.objects.filter(action="pii.reveal").exists()


@pytest.mark.parametrize(
    "data",
    [
        {"target_type": "recipient", "field": "name"},
        {"target_type": "recipient", "field": "password"},
        {"target_type": "user", "field": "id_number"},
        {"field": "id_number"},
    ],
)
def test_only_listed_fields_of_listed_types(client: Client, person: Recipient, data: dict[str, str]) -> None:
    client.force_login(UserFactory(role=Role.BUREAU_ADMIN))
    response = client.post(REVEAL, {"target_id": person.pk, **data})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="pii.reveal").exists()


@pytest.mark.parametrize("target_id", ["999999", "abc", "", "１"])
def test_unknown_targets_are_404(client: Client, target_id: str) -> None:
    client.force_login(UserFactory(role=Role.BUREAU_ADMIN))
    response = client.post(REVEAL, {"target_type": "recipient", "target_id": target_id, "field": "id_number"})
    assert response.status_code == 404


def test_get_is_not_allowed_and_anonymous_goes_to_login(client: Client, person: Recipient) -> None:
    assert _reveal(client, person).status_code == 302
    client.force_login(UserFactory())
    assert (
        client.get(
            REVEAL, {"target_type": "recipient", "target_id": person.pk, "field": "id_number"}
        ).status_code
        == 405
    )


# --- the {% pii %} tag pages use --------------------------------------------------------------


def _render(user: Any, person: Recipient, field: str) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template("{% load pii %}{% pii person field %}")
    return template.render(
        Context({"request": request, "person": person, "field": field, "csrf_token": "tok"})
    )


def test_the_tag_masks_and_offers_reveal_to_allowed_roles(person: Recipient) -> None:
    html = _render(UserFactory(role=Role.BUREAU_OPERATOR), person, "id_number")
    assert "140105********123X" in html and "14010519500101123X" not in html
    assert 'hx-post="/accounts/reveal/"' in html and f'value="{person.pk}"' in html
    assert 'name="field" value="id_number"' in html and 'value="tok"' in html
    phone = _render(UserFactory(role=Role.BUREAU_OPERATOR), person, "mobile")
    assert "138****5678" in phone and "13812345678" not in phone


def test_the_tag_offers_no_reveal_to_auditors(person: Recipient) -> None:
    html = _render(UserFactory(role=Role.AUDITOR), person, "id_number")
    assert "140105********123X" in html and "hx-post" not in html
