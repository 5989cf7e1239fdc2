"""The JSON API: tokens, persons (scoped, masked), pushed results (signed), the OpenAPI document."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from zige.accounts.api_tokens import token_authenticate, token_issue, token_revoke_all
from zige.accounts.models import ApiToken, DeviceClient, Role, User
from zige.api.clients import device_client_create, device_client_deactivate
from zige.audit.models import AuditEvent
from zige.audit.services import audit_verify
from zige.certification.models import Decision, Run, RunStatus
from zige.feeds.models import PushedResult
from zige.feeds.push import signature_compute
from zige.roster.models import Recipient

pytestmark = pytest.mark.django_db

PUSH_URL = "/api/v1/push/certifications"


# --- helpers -----------------------------------------------------------------------------------


def bearer(user: User, *, now: datetime | None = None) -> dict[str, str]:
    raw = token_issue(user=user, now=now or timezone.now())
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def get_json(path: str, **headers: str) -> tuple[int, Any]:
    response = Client().get(path, **headers)  # type: ignore[arg-type]
    return response.status_code, response.json()


def push(
    body: bytes | list[Any],
    *,
    client: DeviceClient,
    secret: str,
    timestamp: int | None = None,
    nonce: str | None = None,
    sign_with: str | None = None,
) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    signature = signature_compute(secret=sign_with or secret, timestamp=ts, nonce=nonce, body=raw)
    response = Client().post(
        PUSH_URL,
        data=raw,
        content_type="application/json",
        HTTP_X_ZIGE_CLIENT=client.client_id,
        HTTP_X_ZIGE_TIMESTAMP=ts,
        HTTP_X_ZIGE_NONCE=nonce,
        HTTP_X_ZIGE_SIGNATURE=signature,
    )
    return response.status_code, response.json()


def item(id_number: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id_number": id_number,
        "name": "张三",
        "auth_time": "2026-11-28T10:15:00+08:00",
        "result": "pass",
        "similarity": 97.5,
    } | overrides


@pytest.fixture
def app_client(now: datetime) -> tuple[DeviceClient, str]:
    return device_client_create(name="手机APP后台", kind=DeviceClient.Kind.APP, now=now)


@pytest.fixture
def terminal_client(now: datetime) -> tuple[DeviceClient, str]:
    return device_client_create(name="社区认证终端", kind=DeviceClient.Kind.TERMINAL, now=now)


# --- token -------------------------------------------------------------------------------------


def test_token_issued_for_good_credentials_and_only_its_hash_stored(password: str) -> None:
    user = UserFactory(username="wang")
    response = Client().post(
        "/api/v1/token", {"username": "wang", "password": password}, content_type="application/json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert token.startswith("zige_") and len(token) > 40
    stored = ApiToken.objects.get(user=user)
    assert stored.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.key_hash
    assert stored.expires_at - stored.created_at == timedelta(hours=8)
    event = AuditEvent.objects.get(action="api.token_issued")
    assert event.actor == "wang" and event.target_id == str(stored.pk)
    # The token works.
    status, _ = get_json("/api/v1/persons/nobody", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 404


@pytest.mark.parametrize("case", ["wrong_password", "unknown_user", "inactive_user"])
def test_token_denied(case: str, password: str) -> None:
    UserFactory(username="li", is_active=case != "inactive_user")
    credentials = {
        "wrong_password": {"username": "li", "password": "not the password"},
        "unknown_user": {"username": "nobody", "password": password},
        "inactive_user": {"username": "li", "password": password},
    }[case]
    response = Client().post("/api/v1/token", credentials, content_type="application/json")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "bad_credentials"
    assert "用户名或密码错误" in body["detail"] and "Incorrect username or password" in body["detail"]
    assert not ApiToken.objects.exists()
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.target_id == credentials["username"]
    assert failed.after["via"] == "api"
    reason = {
        "wrong_password": "bad_credentials",
        "unknown_user": "unknown_user",
        "inactive_user": "inactive",
    }
    assert failed.after["reason"] == reason[case]


def test_token_logins_share_the_lockout(settings: Any, password: str) -> None:
    settings.ZIGE_LOCKOUT_FAILURES = 3
    user = UserFactory(username="zhao")
    for _ in range(3):
        response = Client().post(
            "/api/v1/token", {"username": "zhao", "password": "guess"}, content_type="application/json"
        )
        assert response.status_code == 401
    user.refresh_from_db()
    assert user.locked_until is not None
    response = Client().post(
        "/api/v1/token", {"username": "zhao", "password": password}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "bad_credentials"  # never "locked": see the test below
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.filter(action="auth.locked", target_id="zhao").exists()


def test_a_locked_account_and_an_unknown_username_get_the_same_answer(settings: Any, password: str) -> None:
    settings.ZIGE_LOCKOUT_FAILURES = 3
    UserFactory(username="zhao")

    def ask(username: str, pw: str) -> tuple[int, Any]:
        response = Client().post(
            "/api/v1/token", {"username": username, "password": pw}, content_type="application/json"
        )
        return response.status_code, response.json()

    answers = {}
    for name in ("zhao", "nobody"):
        for _ in range(4):
            ask(name, "guess")
        answers[name] = (ask(name, "guess"), ask(name, password))
    assert answers["zhao"] == answers["nobody"]
    status, body = answers["zhao"][1]
    assert (status, body["code"]) == (401, "bad_credentials")
    assert not ApiToken.objects.exists()
    locked = AuditEvent.objects.get(action="auth.locked")
    assert locked.target_id == "zhao"
    last = AuditEvent.objects.filter(action="auth.login_failed", target_id="zhao").order_by("-seq").first()
    assert last is not None and (last.after["reason"], last.after["via"]) == ("locked", "api")


def test_token_request_needs_both_fields() -> None:
    response = Client().post("/api/v1/token", {"username": "li"}, content_type="application/json")
    assert response.status_code == 422


# --- bearer authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer zige_not-a-real-token", "Token abc", "Basic bGk6cHc="],
    ids=["none", "empty", "unknown", "wrong-scheme", "basic"],
)
def test_bearer_token_required(header: str | None) -> None:
    person = RecipientFactory()
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().get(f"/api/v1/persons/{person.person_no}", **headers)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_refused() -> None:
    person = RecipientFactory()
    user = UserFactory()
    stale = bearer(user, now=timezone.now() - timedelta(hours=8, seconds=1))
    fresh = bearer(user, now=timezone.now() - timedelta(hours=7, minutes=59))
    assert get_json(f"/api/v1/persons/{person.person_no}", **stale)[0] == 401
    assert get_json(f"/api/v1/persons/{person.person_no}", **fresh)[0] == 200


def test_token_of_deactivated_user_refused() -> None:
    person = RecipientFactory()
    user = UserFactory()
    headers = bearer(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert get_json(f"/api/v1/persons/{person.person_no}", **headers)[0] == 401


def test_token_authenticate_service(now: datetime) -> None:
    user = UserFactory()
    raw = token_issue(user=user, now=now)
    assert token_authenticate(raw=raw, now=now + timedelta(hours=7)) == user
    assert ApiToken.objects.get().last_used_at == now + timedelta(hours=7)
    assert token_authenticate(raw=raw, now=now + timedelta(hours=8)) is None
    assert token_authenticate(raw=raw + "x", now=now) is None
    assert token_authenticate(raw="", now=now) is None


def test_token_lifetime_follows_settings(settings: Any, now: datetime) -> None:
    settings.ZIGE_API_TOKEN_HOURS = 1
    user = UserFactory()
    raw = token_issue(user=user, now=now)
    assert token_authenticate(raw=raw, now=now + timedelta(minutes=59)) == user
    assert token_authenticate(raw=raw, now=now + timedelta(minutes=61)) is None


# --- revocation: password set or reset, deactivation -------------------------------------------

NEW_PASSWORD = "Xin-mima-2026-qiang"


def _token_for(username: str, password: str) -> dict[str, str]:
    response = Client().post(
        "/api/v1/token", {"username": username, "password": password}, content_type="application/json"
    )
    assert response.status_code == 200
    return {"HTTP_AUTHORIZATION": f"Bearer {response.json()['token']}"}


def test_a_token_issued_before_a_password_reset_is_refused_after_it(password: str) -> None:
    """An administrator resets the password on the user page: the token got with the old
    password is dead at once (audited), a new one with the new password works."""
    person = RecipientFactory()
    user = UserFactory(username="zhou")
    UserFactory(username="qian")  # a bystander, whose token must survive
    headers, other = _token_for("zhou", password), _token_for("qian", password)
    assert get_json(f"/api/v1/persons/{person.person_no}", **headers)[0] == 200
    admin = Client()
    admin.force_login(UserFactory(username="boss", role=Role.BUREAU_ADMIN))
    response = admin.post(
        f"/accounts/users/{user.pk}/",
        {"set_password": "1", "p-password1": NEW_PASSWORD, "p-password2": NEW_PASSWORD},
        REMOTE_ADDR="10.2.3.4",
    )
    assert response.status_code == 302
    status, body = get_json(f"/api/v1/persons/{person.person_no}", **headers)
    assert (status, body["code"]) == (401, "unauthenticated")
    assert get_json(f"/api/v1/persons/{person.person_no}", **other)[0] == 200  # someone else's: untouched
    event = AuditEvent.objects.get(action="api.tokens_revoked")
    assert (event.actor, event.target_id, event.after, event.ip) == (
        "boss", "zhou", {"tokens": 1, "reason": "password_set"}, "10.2.3.4"
    )  # fmt: skip
    assert ApiToken.objects.get(user=user).revoked_at is not None  # kept, with its last use
    assert get_json(f"/api/v1/persons/{person.person_no}", **_token_for("zhou", NEW_PASSWORD))[0] == 200
    assert audit_verify().ok


def test_changing_ones_own_password_revokes_ones_tokens(password: str) -> None:
    person = RecipientFactory()
    user = UserFactory(username="sun")
    headers = _token_for("sun", password)
    client = Client()
    client.force_login(user)
    response = client.post(
        "/accounts/password/",
        {"old_password": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert get_json(f"/api/v1/persons/{person.person_no}", **headers)[0] == 401
    assert AuditEvent.objects.get(action="api.tokens_revoked").after["reason"] == "password_set"


def test_a_deactivated_users_token_stays_dead_after_reactivation(password: str) -> None:
    person = RecipientFactory()
    user = UserFactory(username="wu")
    headers = _token_for("wu", password)
    admin = Client()
    admin.force_login(UserFactory(username="boss", role=Role.BUREAU_ADMIN))
    admin.post(f"/accounts/users/{user.pk}/deactivate/")
    assert get_json(f"/api/v1/persons/{person.person_no}", **headers)[0] == 401
    admin.post(f"/accounts/users/{user.pk}/activate/")
    user.refresh_from_db()
    assert user.is_active
    assert get_json(f"/api/v1/persons/{person.person_no}", **headers)[0] == 401
    event = AuditEvent.objects.get(action="api.tokens_revoked")
    assert (event.actor, event.target_id, event.after) == (
        "boss",
        "wu",
        {"tokens": 1, "reason": "deactivated"},
    )


def test_web_logout_leaves_api_tokens_alone(password: str) -> None:
    """Documented choice (docs/security.md): a browser session and an API token are separate
    credentials; logging out ends the session only."""
    person = RecipientFactory()
    user = UserFactory(username="zheng")
    headers = _token_for("zheng", password)
    client = Client()
    client.force_login(user)
    client.post("/accounts/logout/")
    assert AuditEvent.objects.filter(action="auth.logout", target_id="zheng").exists()
    assert get_json(f"/api/v1/persons/{person.person_no}", **headers)[0] == 200
    assert not AuditEvent.objects.filter(action="api.tokens_revoked").exists()


def test_token_revoke_all_service(now: datetime) -> None:
    user = UserFactory()
    live, expired = token_issue(user=user, now=now), token_issue(user=user, now=now - timedelta(hours=9))
    assert token_revoke_all(user=user, actor=None, reason="password_set", now=now) == 1  # the live one
    assert token_authenticate(raw=live, now=now) is None and token_authenticate(raw=expired, now=now) is None
    assert token_revoke_all(user=user, actor=None, reason="password_set", now=now) == 0
    assert AuditEvent.objects.filter(action="api.tokens_revoked").count() == 1  # nothing to revoke: no row


# --- persons -----------------------------------------------------------------------------------


def test_person_is_masked() -> None:
    unit = UnitFactory(unit_no="14010000001", name="太原市第一机床厂")
    person = RecipientFactory(
        unit=unit, name="王小明", id_number="14010519500101123X", phone="03517654321", mobile="13812345678"
    )
    status, body = get_json(f"/api/v1/persons/{person.person_no}", **bearer(UserFactory()))
    assert status == 200
    assert body == {
        "person_no": person.person_no,
        "name": "王*明",
        "id_number": "140105********123X",
        "phone": "035****4321",
        "mobile": "138****5678",
        "unit": {"unit_no": "14010000001", "name": "太原市第一机床厂"},
        "benefit_status": "normal",
        "benefit_status_label": "正常",
        "decision": None,
    }
    assert "14010519500101123X" not in json.dumps(body)


@pytest.mark.parametrize("role", [Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR])
def test_bureau_roles_and_auditors_read_any_unit(role: str) -> None:
    person = RecipientFactory()
    assert get_json(f"/api/v1/persons/{person.person_no}", **bearer(UserFactory(role=role)))[0] == 200


def test_unit_operator_gets_404_outside_their_unit_same_as_nonexistent() -> None:
    mine, theirs = UnitFactory(), UnitFactory()
    own = RecipientFactory(unit=mine)
    foreign = RecipientFactory(unit=theirs)
    headers = bearer(UnitOperatorFactory(unit=mine))

    assert get_json(f"/api/v1/persons/{own.person_no}", **headers)[0] == 200
    foreign_status, foreign_body = get_json(f"/api/v1/persons/{foreign.person_no}", **headers)
    missing_status, missing_body = get_json("/api/v1/persons/P9999999999", **headers)
    assert foreign_status == missing_status == 404
    assert foreign_body == missing_body == {"detail": "未找到 / Not found", "code": "not_found"}
    # The evidence timeline is scoped the same way.
    assert get_json(f"/api/v1/persons/{foreign.person_no}/evidence", **headers) == (404, missing_body)


def _run(*, as_of: date, status: str = RunStatus.SUCCEEDED) -> Run:
    return Run.objects.create(as_of=as_of, status=status, created_at=datetime(2026, 11, 1, tzinfo=UTC))


def _decision(run: Run, person: Recipient, **fields: Any) -> Decision:
    return Decision.objects.create(run=run, recipient=person, unit=person.unit, **fields)


def test_decision_from_latest_succeeded_run() -> None:
    person = RecipientFactory()
    headers = bearer(UserFactory())
    older = _run(as_of=date(2026, 10, 31))
    _decision(older, person, status="eligible", reason="rail", evidence_kind="rail")
    latest = _run(as_of=date(2026, 11, 30))
    _decision(
        latest,
        person,
        status="suspend",
        reason="no_evidence",
        certified_on=date(2025, 10, 20),
        due_on=date(2026, 10, 20),
        remind=True,
        channel="短信",
        action="suspend",
        effective_month="2026-12",
        months=1,
        amount=Decimal("3000"),
    )
    failed = _run(as_of=date(2026, 12, 31), status=RunStatus.FAILED)  # ignored: not succeeded
    _decision(failed, person, status="stop", reason="death")

    status, body = get_json(f"/api/v1/persons/{person.person_no}", **headers)
    assert status == 200
    assert body["decision"] == {
        "run_id": latest.pk,
        "as_of": "2026-11-30",
        "status": "suspend",
        "status_label": "暂停发放",
        "reason": "no_evidence",
        "reason_label": "认证期内无比对信息",
        "evidence_kind": "",
        "evidence_date": None,
        "certified_on": "2025-10-20",
        "due_on": "2026-10-20",
        "remind": True,
        "channel": "短信",
        "action": "suspend",
        "effective_month": "2026-12",
        "months": 1,
        "amount": "3000.00",
    }


def test_an_archived_runs_decision_comes_from_its_copy(settings: Any, tmp_path: Path) -> None:
    """The latest run's rows gone from the database (archived: `decisions_pruned_at`), the API
    answers from the run's Parquet copy what it answered from the rows."""
    from tests.integration.test_runs import (
        ID_A,
        ID_B,
        ROSTER_HEADER,
        do_import,
        do_run,
        roster_row,
        write_csv,
    )

    settings.DATA_DIR = tmp_path / "data"
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    rows = [roster_row("P1", "张三", ID_A), roster_row("P2", "李四", ID_B)]
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    run = do_run()
    headers = bearer(UserFactory())
    from_rows = get_json("/api/v1/persons/P1", **headers)
    assert from_rows[0] == 200 and from_rows[1]["decision"]["run_id"] == run.pk
    Run.objects.filter(pk=run.pk).update(
        decisions_pruned_at=timezone.now()
    )  # archived, as the retention does
    Decision.objects.filter(run=run).delete()
    assert get_json("/api/v1/persons/P1", **headers) == from_rows


def test_an_eligible_decision_s_reason_label_is_the_evidence_kind_in_chinese() -> None:
    """For 具备资格 the reason is the evidence kind (`rail`); its label was the bare code, not 铁路出行."""
    person = RecipientFactory()
    _decision(_run(as_of=date(2026, 11, 30)), person, status="eligible", reason="rail", evidence_kind="rail")
    decision = get_json(f"/api/v1/persons/{person.person_no}", **bearer(UserFactory()))[1]["decision"]
    assert (decision["reason"], decision["reason_label"]) == ("rail", "铁路出行")


def test_no_decision_when_person_not_in_latest_run() -> None:
    person = RecipientFactory()
    _decision(_run(as_of=date(2026, 10, 31)), person, status="eligible", reason="rail")
    _run(as_of=date(2026, 11, 30))  # the person joined the roll after it
    assert get_json(f"/api/v1/persons/{person.person_no}", **bearer(UserFactory()))[1]["decision"] is None


def test_evidence_timeline() -> None:
    try:
        from zige.feeds.selectors import evidence_for_person  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pytest.skip("zige.feeds.selectors.evidence_for_person is not written yet (records engineer)")
    person = RecipientFactory()
    status, body = get_json(f"/api/v1/persons/{person.person_no}/evidence", **bearer(UserFactory()))
    assert status == 200
    expected = json.loads(json.dumps(list(evidence_for_person(id_number=person.id_number)), default=str))
    assert [
        {k: v for k, v in row.items() if k in e} for row, e in zip(body, expected, strict=True)
    ] == expected


# --- pushed results ----------------------------------------------------------------------------


def test_push_accepted_and_stored(app_client: tuple[DeviceClient, str]) -> None:
    client, secret = app_client
    good = make_id(7)
    old15 = "140105500101123"  # a 15-digit number, upgraded to 18
    status, body = push(
        [item(good), item(old15, result="失败", similarity="88.1", auth_time="2026-11-28 10:15:00")],
        client=client,
        secret=secret,
    )
    assert status == 200
    assert body == {"accepted": 2, "rejected": []}
    rows = list(PushedResult.objects.order_by("nonce"))
    assert [r.id_number for r in rows] == [good, "14010519500101123X"]
    assert [r.result for r in rows] == ["pass", "fail"]
    assert {r.kind for r in rows} == {"app_auth"}
    assert {r.client_id for r in rows} == {client.pk}
    # Offset-less times are Beijing time.
    assert rows[1].auth_time == datetime(2026, 11, 28, 2, 15, tzinfo=UTC)
    assert rows[0].similarity == "97.5" and rows[1].similarity == "88.1"
    event = AuditEvent.objects.get(action="push.received")
    assert event.actor == f"device:{client.client_id}"
    assert event.after["accepted"] == 2 and event.after["rejected"] == 0 and event.after["items"] == 2
    assert audit_verify().ok


def test_terminal_push_keeps_method_and_device(terminal_client: tuple[DeviceClient, str]) -> None:
    client, secret = terminal_client
    status, body = push(
        [item(make_id(8), method="指静脉", device_no="TY-0042", result="成功")], client=client, secret=secret
    )
    assert (status, body) == (200, {"accepted": 1, "rejected": []})
    row = PushedResult.objects.get()
    assert (row.kind, row.method, row.device_no, row.result) == ("terminal_auth", "指静脉", "TY-0042", "pass")


def test_invalid_items_rejected_per_index(app_client: tuple[DeviceClient, str]) -> None:
    client, secret = app_client
    good = make_id(9)
    bad_checksum = good[:17] + ("0" if good[17] != "0" else "1")
    items: list[Any] = [
        item(good),
        item(bad_checksum),
        item("12345"),
        item(""),
        item(good, result="maybe"),
        item(good, auth_time="yesterday"),
        item(good, name=""),
        "not an object",
        item(good, similarity="high"),
        item(good, auth_time=(timezone.now() + timedelta(hours=1)).isoformat()),
        item(make_id(10)),
    ]
    status, body = push(items, client=client, secret=secret)
    assert status == 200
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"index": 1, "field": "id_number", "reason": "bad_id_checksum"},
        {"index": 2, "field": "id_number", "reason": "bad_id_format"},
        {"index": 3, "field": "id_number", "reason": "missing_value"},
        {"index": 4, "field": "result", "reason": "bad_result"},
        {"index": 5, "field": "auth_time", "reason": "bad_datetime"},
        {"index": 6, "field": "name", "reason": "missing_value"},
        {"index": 7, "field": "", "reason": "not_an_object"},
        {"index": 8, "field": "similarity", "reason": "bad_similarity"},
        {"index": 9, "field": "auth_time", "reason": "future_datetime"},
    ]
    assert sorted(PushedResult.objects.values_list("id_number", flat=True)) == sorted([good, make_id(10)])
    event = AuditEvent.objects.get(action="push.received")
    assert event.after["rejected"] == 9 and event.after["reasons"]["bad_id_checksum"] == 1


def test_wrong_key_refused(app_client: tuple[DeviceClient, str]) -> None:
    client, secret = app_client
    status, body = push([item(make_id(1))], client=client, secret=secret, sign_with="0" * 64)
    assert status == 401 and body["code"] == "bad_signature"
    assert not PushedResult.objects.exists()
    assert AuditEvent.objects.get(action="push.refused").after["reason"] == "bad_signature"


def test_unknown_or_inactive_client_refused(app_client: tuple[DeviceClient, str], now: datetime) -> None:
    client, secret = app_client
    ghost = DeviceClient(client_id="ghost", secret=secret, kind=client.kind)
    assert push([item(make_id(1))], client=ghost, secret=secret)[0] == 401
    device_client_deactivate(client=client, now=now)
    status, body = push([item(make_id(1))], client=client, secret=secret)
    assert status == 401 and body["code"] == "unknown_client"
    assert not PushedResult.objects.exists()


def test_missing_signature_headers_refused() -> None:
    response = Client().post(PUSH_URL, data=b"[]", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_headers"


# 300 s is the window. A timestamp 301 s in the past only gets older by the time the server reads
# it; one in the future gets nearer: +301 passed on a loaded CI machine that took over a second
# between the test's clock and the server's, so the future one is a minute beyond the window.
@pytest.mark.parametrize("offset", [-301, 360])
def test_stale_timestamp_refused(app_client: tuple[DeviceClient, str], offset: int) -> None:
    client, secret = app_client
    status, body = push([item(make_id(1))], client=client, secret=secret, timestamp=int(time.time()) + offset)
    assert status == 401 and body["code"] == "stale_timestamp"
    assert not PushedResult.objects.exists()


def test_replayed_nonce_refused(app_client: tuple[DeviceClient, str]) -> None:
    client, secret = app_client
    body = [item(make_id(1)), item(make_id(2))]
    nonce = secrets.token_hex(16)
    assert push(body, client=client, secret=secret, nonce=nonce) == (200, {"accepted": 2, "rejected": []})
    status, answer = push(body, client=client, secret=secret, nonce=nonce)
    assert status == 409 and answer["code"] == "replayed_nonce"
    assert PushedResult.objects.count() == 2


def test_oversized_body_refused(app_client: tuple[DeviceClient, str], settings: Any) -> None:
    client, secret = app_client
    too_many = [item(make_id(n)) for n in range(1001)]
    status, body = push(too_many, client=client, secret=secret)
    assert status == 413 and body["code"] == "too_many_items"

    settings.ZIGE_PUSH_MAX_BYTES = 2048
    status, body = push([item(make_id(n)) for n in range(30)], client=client, secret=secret)
    assert status == 413 and body["code"] == "body_too_large"
    assert not PushedResult.objects.exists()


@pytest.mark.parametrize(("raw", "code"), [(b"{not json", "bad_json"), (b'{"id_number": "x"}', "not_a_list")])
def test_malformed_body_refused(app_client: tuple[DeviceClient, str], raw: bytes, code: str) -> None:
    client, secret = app_client
    status, body = push(raw, client=client, secret=secret)
    assert status == 400 and body["code"] == code


def test_device_client_create(now: datetime) -> None:
    client, secret = device_client_create(name="终端", kind="terminal_auth", now=now)
    assert len(secret) == 64 and client.secret == secret and client.active
    assert AuditEvent.objects.get(action="device_client.created").target_id == client.client_id
    with pytest.raises(ValueError, match="kind"):
        device_client_create(name="x", kind="rail", now=now)


# --- OpenAPI -----------------------------------------------------------------------------------


def test_openapi_document() -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/v1/token",
        "/api/v1/persons/{person_no}",
        "/api/v1/persons/{person_no}/evidence",
        "/api/v1/push/certifications",
    }
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["ZigeDeviceSignature"]["in"] == "header"
    person = document["paths"]["/api/v1/persons/{person_no}"]["get"]
    assert person["security"] == [{"BearerAuth": []}]
    assert "security" not in document["paths"]["/api/v1/token"]["post"]
    push_op = document["paths"]["/api/v1/push/certifications"]["post"]
    assert push_op["security"] == [{"ZigeDeviceSignature": []}]
    assert {p["name"] for p in push_op["parameters"]} >= {"X-Zige-Client", "X-Zige-Signature"}
    for name in ("PersonOut", "DecisionOut", "TokenOut", "PushOut", "ErrorOut"):
        assert name in document["components"]["schemas"]
    # Every $ref resolves.
    refs = {m for m in _refs(document)}
    assert refs and all(
        r.removeprefix("#/components/schemas/") in document["components"]["schemas"] for r in refs
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_no_docs_ui_loading_external_assets() -> None:
    assert Client().get("/api/docs").status_code == 404


def test_replay_check_is_case_sensitive(app_client: tuple[DeviceClient, str]) -> None:
    client, secret = app_client
    assert push([item(make_id(1))], client=client, secret=secret, nonce="AbCdEfGh12")[0] == 200
    assert push([item(make_id(2))], client=client, secret=secret, nonce="abcdefgh12")[0] == 200
    assert push([item(make_id(3))], client=client, secret=secret, nonce="abcdefgh12")[0] == 409
