"""HTTP hardening: the content security policy and other headers, CSRF, the session cookie and
its idle timeout, and no caching of pages with personal data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.factories import RecipientFactory, UserFactory
from zige.accounts.models import Role

pytestmark = pytest.mark.django_db


def _csp(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(UserFactory(role=Role.BUREAU_ADMIN))
    return client


@pytest.mark.parametrize("url", ["accounts:login", "reports:dashboard", "audit:browse", "accounts:users"])
def test_content_security_policy_forbids_inline_code(admin_client: Client, url: str) -> None:
    client = Client() if url == "accounts:login" else admin_client
    response = client.get(reverse(url))
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"]
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header and "*" not in header


def test_secure_headers_on_every_response(client: Client) -> None:
    for response in (client.get(reverse("accounts:login")), client.get("/no-such-page/")):
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "Content-Security-Policy" in response


def test_api_responses_carry_the_headers_too(client: Client) -> None:
    response = client.get("/api/openapi.json")
    assert response["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in response


# --- CSRF -------------------------------------------------------------------------------------


def test_login_form_needs_its_csrf_token() -> None:
    UserFactory(username="he")
    client = Client(enforce_csrf_checks=True)
    data = {"username": "he", "password": PASSWORD}
    refused = client.post(reverse("accounts:login"), data)
    assert refused.status_code == 403 and "CSRF" in refused.content.decode()
    assert "<style" not in refused.content.decode()  # not Django's default page: the CSP blocks its style
    page = client.get(reverse("accounts:login"))
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    token = page.cookies["csrftoken"].value
    response = client.post(reverse("accounts:login"), {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("accounts:logout", {}),
        ("accounts:reveal", {"target_type": "recipient", "field": "id_number"}),
        ("audit:export", {}),
        ("accounts:user_new", {}),
    ],
)
def test_post_actions_refuse_a_request_without_the_token(name: str, data: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(role=Role.BUREAU_ADMIN))
    if name == "accounts:reveal":
        data["target_id"] = RecipientFactory().pk
    assert client.post(reverse(name), data).status_code == 403


def test_htmx_requests_send_the_token_as_a_header() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    token = client.get(reverse("reports:dashboard")).cookies["csrftoken"].value
    person = RecipientFactory()
    data = {"target_type": "recipient", "target_id": person.pk, "field": "id_number"}
    response = client.post(reverse("accounts:reveal"), data, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and person.id_number in response.content.decode()


# --- the session ------------------------------------------------------------------------------


def test_session_cookie_is_httponly_samesite_and_ends_with_the_browser(client: Client) -> None:
    UserFactory(username="he")
    response = client.post(reverse("accounts:login"), {"username": "he", "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["max-age"] and not cookie["expires"]  # a browser-session cookie


def test_login_gives_a_new_session_key(client: Client) -> None:
    UserFactory(username="he")
    client.get(reverse("accounts:login"))
    client.session.save()
    before = client.session.session_key
    client.post(reverse("accounts:login"), {"username": "he", "password": PASSWORD})
    assert client.session.session_key != before  # no session fixation


def test_idle_timeout_slides_with_each_request_and_ends_the_session(settings: Any, client: Client) -> None:
    client.force_login(UserFactory())
    dashboard = reverse("reports:dashboard")
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get(dashboard).status_code == 200
    expires = Session.objects.get(session_key=key).expire_date
    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs(expires - (timezone.now() + idle)) < timedelta(seconds=30)  # pushed forward by the request
    assert idle <= timedelta(minutes=30)

    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(dashboard)
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


# --- caching ----------------------------------------------------------------------------------


def test_pages_for_a_logged_in_user_are_never_cached(admin_client: Client) -> None:
    for url in (reverse("reports:dashboard"), reverse("audit:browse"), reverse("accounts:users")):
        cache_control = admin_client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control


def test_a_revealed_value_is_never_cached(admin_client: Client) -> None:
    person = RecipientFactory()
    data = {"target_type": "recipient", "target_id": person.pk, "field": "phone"}
    response = admin_client.post(reverse("accounts:reveal"), data)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
