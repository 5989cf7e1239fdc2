"""Users: creation and changes (audited), roles, the login lockout, session expiry, the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import NOW, UnitFactory, UnitOperatorFactory, UserFactory
from zige.accounts.models import Role, User
from zige.accounts.services import (
    SystemActor,
    UserError,
    login_attempt,
    user_create,
    user_set_password,
    user_update,
)
from zige.audit.models import AuditEvent
from zige.audit.services import audit_verify
from zige.cli import main

pytestmark = pytest.mark.django_db

ACTOR = SystemActor(username="cli:test")
STRONG = "zhengque ma dianchi 9"


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- user_create / user_update / user_set_password -------------------------------------------


def test_user_create_is_audited_without_the_password() -> None:
    unit = UnitFactory(unit_no="14010000001")
    user = user_create(
        actor=ACTOR, username="li.si", role=Role.UNIT_OPERATOR, unit_no="14010000001",
        name="李四", password=STRONG, now=NOW,
    )  # fmt: skip
    assert user.unit == unit and user.is_active and user.check_password(STRONG)
    [event] = events("user.created")
    assert event.actor == "cli:test" and event.target_type == "accounts.User" and event.target_id == "li.si"
    assert event.after == {
        "username": "li.si", "name": "李四", "role": "unit_operator", "unit": "14010000001",
        "is_active": True, "locked_until": None,
    }  # fmt: skip
    assert event.at == NOW
    row = str(AuditEvent.objects.filter(pk=event.pk).values().get())
    assert STRONG not in row and user.password not in row


@pytest.mark.parametrize(
    ("role", "unit_no", "message"),
    [
        ("unit_operator", None, "必须指定所属单位"),
        ("unit_operator", "99999", "不存在"),
        ("bureau_operator", "14010000001", "只有单位经办人员"),
        ("superuser", None, "未知角色"),
    ],
)
def test_user_create_checks_role_and_unit(role: str, unit_no: str | None, message: str) -> None:
    UnitFactory(unit_no="14010000001")
    with pytest.raises(UserError, match=message):
        user_create(actor=ACTOR, username="x", role=role, unit_no=unit_no, password=STRONG, now=NOW)
    assert not User.objects.filter(username="x").exists()
    assert not events("user.created")


def test_user_create_refuses_weak_passwords_and_taken_names() -> None:
    with pytest.raises(UserError):
        user_create(actor=ACTOR, username="wang", role=Role.AUDITOR, password="12345678", now=NOW)
    user_create(actor=ACTOR, username="wang", role=Role.AUDITOR, password=STRONG, now=NOW)
    with pytest.raises(UserError, match="已存在"):
        user_create(actor=ACTOR, username="WANG", role=Role.AUDITOR, password=STRONG, now=NOW)


def test_database_refuses_a_unit_operator_without_a_unit() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="bad", role=Role.UNIT_OPERATOR)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="bad2", role="root")


def test_user_update_records_before_and_after() -> None:
    admin = UserFactory(role=Role.BUREAU_ADMIN)
    unit = UnitFactory()
    user = UserFactory(username="zhao", role=Role.BUREAU_OPERATOR)
    user_update(actor=admin, user=user, role=Role.UNIT_OPERATOR, unit_no=unit.unit_no, now=NOW)
    user.refresh_from_db()
    assert (user.role, user.unit) == (Role.UNIT_OPERATOR, unit)
    [event] = events("user.updated")
    assert event.actor == admin.username and event.actor_role == "bureau_admin"
    assert event.before == {"role": "bureau_operator", "unit": None}
    assert event.after == {"role": "unit_operator", "unit": unit.unit_no}

    user_update(actor=admin, user=user, is_active=False, now=NOW)
    assert events("user.updated")[-1].before == {"is_active": True}
    assert events("user.updated")[-1].after == {"is_active": False}
    user_update(actor=admin, user=user, is_active=False, now=NOW)  # no change: nothing recorded
    assert len(events("user.updated")) == 2


def test_the_last_admin_cannot_be_removed_and_nobody_deactivates_themselves() -> None:
    admin = UserFactory(role=Role.BUREAU_ADMIN)
    with pytest.raises(UserError, match="不能停用自己"):
        user_update(actor=admin, user=admin, is_active=False, now=NOW)
    with pytest.raises(UserError, match="唯一"):
        user_update(actor=ACTOR, user=admin, role=Role.AUDITOR, now=NOW)
    other = UserFactory(role=Role.BUREAU_ADMIN)
    user_update(actor=other, user=admin, role=Role.AUDITOR, now=NOW)
    assert User.objects.get(pk=admin.pk).role == Role.AUDITOR


def test_user_set_password_lifts_the_lock_and_records_no_secret() -> None:
    user = UserFactory(failed_logins=5, locked_until=NOW + timedelta(minutes=10))
    user_set_password(actor=ACTOR, user=user, password=STRONG, now=NOW)
    user.refresh_from_db()
    assert user.check_password(STRONG) and user.failed_logins == 0 and user.locked_until is None
    [event] = events("user.password_set")
    assert event.after == {"username": user.username}
    with pytest.raises(UserError):
        user_set_password(actor=ACTOR, user=user, password="password", now=NOW)


# --- login and lockout ------------------------------------------------------------------------


@pytest.fixture
def three_strikes(settings: Any) -> None:
    settings.ZIGE_LOCKOUT_FAILURES = 3
    settings.ZIGE_LOCKOUT_MINUTES = 15


def test_lockout_after_n_failures_even_for_the_right_password(three_strikes: None) -> None:
    user = UserFactory(username="chen")
    for i in range(2):
        outcome = login_attempt(username="chen", password="wrong", now=NOW + timedelta(seconds=i))
        assert outcome.reason == "bad_credentials"
    third = login_attempt(username="chen", password="wrong", now=NOW + timedelta(seconds=2))
    assert third.reason == "locked" and third.locked_until == NOW + timedelta(seconds=2, minutes=15)
    refused = login_attempt(username="chen", password=PASSWORD, now=NOW + timedelta(minutes=5))
    assert refused.reason == "locked" and refused.user is None
    user.refresh_from_db()
    assert user.failed_logins == 3
    assert [e.after["reason"] for e in events("auth.login_failed")] == ["bad_credentials"] * 3 + ["locked"]
    [locked] = events("auth.locked")
    assert locked.target_id == "chen" and locked.after["failures"] == 3


def test_unlocks_after_the_period_with_an_injected_clock(three_strikes: None) -> None:
    UserFactory(username="chen")
    for i in range(3):
        login_attempt(username="chen", password="wrong", now=NOW + timedelta(seconds=i))
    locked_at = NOW + timedelta(seconds=2)
    just_before = locked_at + timedelta(minutes=15) - timedelta(microseconds=1)
    assert login_attempt(username="chen", password=PASSWORD, now=just_before).reason == "locked"
    after = login_attempt(username="chen", password=PASSWORD, now=locked_at + timedelta(minutes=15))
    assert after.ok
    user = User.objects.get(username="chen")
    assert user.failed_logins == 0 and user.locked_until is None


def test_after_a_lock_runs_out_the_count_starts_afresh(three_strikes: None) -> None:
    UserFactory(username="chen")
    for i in range(3):
        login_attempt(username="chen", password="wrong", now=NOW + timedelta(seconds=i))
    later = NOW + timedelta(hours=1)
    assert login_attempt(username="chen", password="wrong", now=later).reason == "bad_credentials"
    assert User.objects.get(username="chen").failed_logins == 1


def test_failures_are_counted_per_account_and_reset_by_success(three_strikes: None) -> None:
    UserFactory(username="a")
    UserFactory(username="b")
    for _ in range(2):
        login_attempt(username="a", password="wrong", now=NOW)
    assert login_attempt(username="b", password=PASSWORD, now=NOW).ok
    assert User.objects.get(username="b").failed_logins == 0
    assert login_attempt(username="a", password=PASSWORD, now=NOW).ok
    assert User.objects.get(username="a").failed_logins == 0
    for _ in range(2):
        login_attempt(username="a", password="wrong", now=NOW)
    assert login_attempt(username="a", password=PASSWORD, now=NOW).ok  # 2 + 2 never reached 3


def test_unknown_usernames_and_inactive_users_are_audited() -> None:
    UserFactory(username="gone", is_active=False)
    assert login_attempt(username="ghost", password="x", now=NOW, ip="10.0.0.9").reason == "unknown_user"
    assert login_attempt(username="gone", password=PASSWORD, now=NOW).reason == "inactive"
    unknown, inactive = events("auth.login_failed")
    assert (unknown.target_id, unknown.ip, unknown.after) == (
        "ghost",
        "10.0.0.9",
        {"reason": "unknown_user", "via": "web"},
    )
    assert inactive.target_id == "gone" and inactive.after["reason"] == "inactive"
    assert audit_verify().ok


def test_every_authenticate_call_goes_through_the_lockout(three_strikes: None) -> None:
    """The admin's login form and the API use django.contrib.auth.authenticate(): same lockout."""
    UserFactory(username="chen")
    request = RequestFactory().post("/admin/login/")
    for _ in range(3):
        assert authenticate(request, username="chen", password="wrong") is None
    assert authenticate(request, username="chen", password=PASSWORD) is None
    assert events("auth.locked")
    assert {e.after["via"] for e in events("auth.login_failed")} == {"admin"}


# --- the login page ---------------------------------------------------------------------------


def test_login_page_locks_out_and_an_admin_unlocks(three_strikes: None, client: Client) -> None:
    UserFactory(username="chen")
    login = reverse("accounts:login")
    for _ in range(3):
        response = client.post(login, {"username": "chen", "password": "wrong"})
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post(login, {"username": "chen", "password": PASSWORD})
    assert "_auth_user_id" not in client.session and "用户名或密码错误" in response.content.decode()
    assert events("auth.login_failed")[-1].after["reason"] == "locked"

    admin = UserFactory(role=Role.BUREAU_ADMIN)
    admin_client = Client()
    admin_client.force_login(admin)
    chen = User.objects.get(username="chen")
    assert admin_client.post(reverse("accounts:user_unlock", args=[chen.pk])).status_code == 302
    assert events("user.updated")[-1].after == {"locked_until": None}
    response = client.post(login, {"username": "chen", "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(chen.pk)


def _login_page_answer(username: str, password: str) -> tuple[int, str]:
    """The login page's answer with what differs by construction taken out (the CSRF token, the
    username typed back into the form)."""
    response = Client().post(reverse("accounts:login"), {"username": username, "password": password})
    html = re.sub(r'(csrfmiddlewaretoken" value=|"X-CSRFToken": )"[^"]*"', "", response.content.decode())
    return response.status_code, html.replace(f'value="{username}"', 'value="USERNAME"')


def test_a_locked_account_and_an_unknown_username_get_the_same_page(three_strikes: None) -> None:
    """The page never says "locked": an unknown name and a real, locked account (even with its
    right password) look alike from outside; the audit log still records the lockout."""
    UserFactory(username="chen")
    answers = {}
    for name in ("chen", "nobody"):
        for _ in range(4):
            _login_page_answer(name, "wrong")
        answers[name] = (_login_page_answer(name, "wrong"), _login_page_answer(name, PASSWORD))
    assert answers["chen"] == answers["nobody"]
    (status, page), _ = answers["chen"]
    assert status == 200 and "用户名或密码错误，或账户已被暂时锁定" in page and "已被锁定" not in page
    assert [e.target_id for e in events("auth.locked")] == ["chen"]
    reasons = [e.after["reason"] for e in events("auth.login_failed") if e.target_id == "chen"]
    assert reasons == ["bad_credentials"] * 3 + ["locked"] * 3
    assert {e.after["reason"] for e in events("auth.login_failed") if e.target_id == "nobody"} == {
        "unknown_user"
    }


def test_a_locked_account_costs_a_password_hash_as_an_unknown_name_does(
    three_strikes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timing hint either: the locked path hashes the password as the unknown-name path does."""
    from zige.accounts import services

    UserFactory(username="chen")
    for i in range(3):
        login_attempt(username="chen", password="wrong", now=NOW + timedelta(seconds=i))
    calls: list[str] = []
    real = services.make_password
    monkeypatch.setattr(
        services, "make_password", lambda raw, *a, **k: calls.append(raw) or real(raw, *a, **k)
    )
    assert (
        login_attempt(username="chen", password=PASSWORD, now=NOW + timedelta(minutes=1)).reason == "locked"
    )
    assert (
        login_attempt(username="nobody", password=PASSWORD, now=NOW + timedelta(minutes=1)).reason
        == "unknown_user"
    )
    assert calls == [PASSWORD, PASSWORD]


def test_login_and_logout_are_audited(client: Client) -> None:
    user = UserFactory(username="zhou")
    response = client.post(
        reverse("accounts:login"), {"username": "zhou", "password": PASSWORD}, REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 302
    [login] = events("auth.login")
    assert (login.actor, login.actor_role, login.ip) == ("zhou", user.role, "10.1.2.3")
    client.post(reverse("accounts:logout"))
    [logout] = events("auth.logout")
    assert logout.actor == "zhou"
    assert "_auth_user_id" not in client.session
    assert audit_verify().ok


def test_login_redirects_only_to_this_site(client: Client) -> None:
    UserFactory(username="zhou")
    data = {"username": "zhou", "password": PASSWORD}
    response = client.post(reverse("accounts:login") + "?next=https://evil.example/", data)
    assert response["Location"] == reverse("reports:dashboard")
    client.logout()
    response = client.post(reverse("accounts:login") + "?next=/roster/", data)
    assert response["Location"] == "/roster/"


def test_a_deactivated_user_loses_their_session(client: Client) -> None:
    user = UserFactory()
    client.force_login(user)
    assert client.get(reverse("reports:dashboard")).status_code == 200
    user_update(actor=ACTOR, user=user, is_active=False, now=NOW)
    assert client.get(reverse("reports:dashboard")).status_code == 302


# --- session expiry ---------------------------------------------------------------------------


def _session_clock(monkeypatch: pytest.MonkeyPatch, ahead: timedelta) -> None:
    """Move the clock the session store reads expiry against."""
    from django.contrib.sessions.backends import db as session_db
    from django.utils import timezone

    real_now = timezone.now
    monkeypatch.setattr(session_db, "timezone", SimpleNamespace(now=lambda: real_now() + ahead))


def test_session_survives_activity_and_expires_when_idle(
    settings: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.SESSION_SAVE_EVERY_REQUEST  # the timeout counts from the last request
    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    client.force_login(UserFactory())
    dashboard = reverse("reports:dashboard")
    assert client.get(dashboard).status_code == 200
    _session_clock(monkeypatch, idle - timedelta(minutes=1))
    assert client.get(dashboard).status_code == 200  # still within the idle period
    monkeypatch.undo()
    _session_clock(monkeypatch, idle + timedelta(minutes=1))
    response = client.get(dashboard)
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_role_can_be_created_and_logs_in(role: str, client: Client) -> None:
    unit_no = UnitFactory().unit_no if role == Role.UNIT_OPERATOR else None
    user_create(actor=ACTOR, username=f"u-{role}", role=role, unit_no=unit_no, password=STRONG, now=NOW)
    response = client.post(reverse("accounts:login"), {"username": f"u-{role}", "password": STRONG})
    assert response.status_code == 302
    assert client.get(reverse("reports:dashboard")).status_code == 200


def test_unit_operator_flags() -> None:
    operator = UnitOperatorFactory()
    assert not operator.is_bureau and operator.role_label == "单位经办人员"
    assert UserFactory(role=Role.BUREAU_ADMIN).is_bureau


# --- the command line -------------------------------------------------------------------------


def test_cli_user_create_reads_the_password_from_a_pipe() -> None:
    unit = UnitFactory()
    runner = CliRunner()
    result = runner.invoke(
        main, ["user", "create", "wu", "--role", "unit_operator", "--unit", unit.unit_no], input=STRONG + "\n"
    )
    assert result.exit_code == 0, result.output
    user = User.objects.get(username="wu")
    assert user.unit == unit and user.check_password(STRONG)
    [event] = events("user.created")
    assert event.actor.startswith("cli:")
    listing = runner.invoke(main, ["user", "list"])
    assert listing.exit_code == 0 and "wu" in listing.output and unit.unit_no in listing.output


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["--role", "unit_operator"], STRONG + "\n"),  # no unit
        (["--role", "auditor"], "123\n"),  # weak password
        (["--role", "auditor"], ""),  # no password at all
        (["--role", "root"], STRONG + "\n"),  # unknown role
    ],
)
def test_cli_user_create_refuses(args: list[str], stdin: str) -> None:
    result = CliRunner().invoke(main, ["user", "create", "bad", *args], input=stdin)
    assert result.exit_code != 0
    assert not User.objects.filter(username="bad").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "unit_operator"], "--unit"),
        (["--role", "unit_operator", "--unit", "  "], "--unit"),
        (["--role", "auditor", "--unit", "14010000001"], "unit_operator"),
    ],
)
def test_cli_user_create_checks_role_and_unit_before_asking_for_the_password(
    args: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit operator without --unit was asked for the password (twice, on a terminal), then
    refused with exit 1: the usage mistake is told first, as a usage error (exit 2), and no
    password is read."""
    import zige.cli_admin

    def no_prompt() -> str:
        raise AssertionError("the password was asked for")

    monkeypatch.setattr(zige.cli_admin, "_read_password", no_prompt)
    result = CliRunner().invoke(main, ["user", "create", "wu", *args], input=STRONG + "\n")
    assert result.exit_code == 2, result.output
    assert says in result.output and "单位" in result.output
    assert not User.objects.filter(username="wu").exists()


def test_cli_set_password() -> None:
    UserFactory(username="qian", failed_logins=9, locked_until=NOW + timedelta(days=1))
    result = CliRunner().invoke(main, ["user", "set-password", "qian"], input=STRONG + "\n")
    assert result.exit_code == 0, result.output
    user = User.objects.get(username="qian")
    assert user.check_password(STRONG) and user.locked_until is None


def _zige(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    zige = Path(sys.executable).with_name("zige")
    return subprocess.run(
        [str(zige), *args], input=stdin, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_cli_honours_zige_data_dir_and_database_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ZIGE_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["ZIGE_DATA_DIR"] = str(tmp_path / "data")
    created = _zige("user", "create", "sun", "--role", "auditor", env=env, stdin=STRONG + "\n")
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "data" / "zige.sqlite3").exists()
    listed = _zige("user", "list", env=env)
    assert "sun" in listed.stdout and "auditor" in listed.stdout
    verified = _zige("audit", "verify", env=env)
    assert verified.returncode == 0 and "intact: 1 events" in verified.stdout

    env["ZIGE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    created = _zige("user", "create", "sun", "--role", "auditor", env=env, stdin=STRONG + "\n")
    assert created.returncode == 0, created.stderr  # a different database: the name is free there
    assert (tmp_path / "elsewhere.sqlite3").exists()
    migrated = _zige("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
