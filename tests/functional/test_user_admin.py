"""The user administration pages (bureau_admin) and changing one's own password."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.factories import UnitFactory, UserFactory
from zige.accounts.models import Role, User
from zige.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

STRONG = "zhengque ma dianchi 9"


@pytest.fixture
def admin(client: Client) -> User:
    user = UserFactory(username="root-admin", role=Role.BUREAU_ADMIN)
    client.force_login(user)
    return user


def test_list_shows_users_and_locks(client: Client, admin: User) -> None:
    UserFactory(username="locked-one", locked_until=timezone.now() + timedelta(minutes=5))
    UserFactory(username="gone", is_active=False)
    html = client.get(reverse("accounts:users")).content.decode()
    assert "root-admin" in html and "locked-one" in html and "已锁定" in html
    assert "已停用的用户" in html and "gone" in html


def test_create_a_unit_operator(client: Client, admin: User) -> None:
    unit = UnitFactory()
    data = {
        "username": "zhang", "name": "张三", "role": "unit_operator", "unit_no": unit.unit_no,
        "password1": STRONG, "password2": STRONG,
    }  # fmt: skip
    response = client.post(reverse("accounts:user_new"), data)
    assert response.status_code == 302
    user = User.objects.get(username="zhang")
    assert user.unit == unit and user.first_name == "张三" and user.check_password(STRONG)
    event = AuditEvent.objects.get(action="user.created")
    assert event.actor == "root-admin" and event.after["unit"] == unit.unit_no


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"role": "unit_operator", "unit_no": ""}, "必须指定所属单位"),
        ({"password2": "something else 123"}, "不一致"),
        ({"password1": "short", "password2": "short"}, "密码"),
    ],
)
def test_create_shows_errors(client: Client, admin: User, changes: dict[str, str], error: str) -> None:
    data = {"username": "zhang", "role": "auditor", "unit_no": "", "password1": STRONG, "password2": STRONG}
    response = client.post(reverse("accounts:user_new"), {**data, **changes})
    assert response.status_code == 200 and error in response.content.decode()
    assert not User.objects.filter(username="zhang").exists()


def test_edit_role_and_set_password(client: Client, admin: User) -> None:
    user = UserFactory(username="li", role=Role.BUREAU_OPERATOR)
    url = reverse("accounts:user_edit", args=[user.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"u-name": "李", "u-role": "auditor", "u-unit_no": ""})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.role == Role.AUDITOR and user.first_name == "李"
    event = AuditEvent.objects.filter(action="user.updated").latest("seq")
    assert event.before == {"role": "bureau_operator", "name": ""} and event.after == {
        "role": "auditor",
        "name": "李",
    }

    response = client.post(url, {"set_password": "1", "p-password1": STRONG, "p-password2": STRONG})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert AuditEvent.objects.filter(action="user.password_set", target_id="li").exists()


def test_deactivate_and_activate(client: Client, admin: User) -> None:
    user = UserFactory(username="wu")
    assert client.post(reverse("accounts:user_deactivate", args=[user.pk])).status_code == 302
    assert not User.objects.get(pk=user.pk).is_active
    assert client.post(reverse("accounts:user_activate", args=[user.pk])).status_code == 302
    assert User.objects.get(pk=user.pk).is_active
    changes = [(e.before, e.after) for e in AuditEvent.objects.filter(action="user.updated").order_by("seq")]
    assert changes == [
        ({"is_active": True}, {"is_active": False}),
        ({"is_active": False}, {"is_active": True}),
    ]


def test_an_admin_cannot_deactivate_themselves(client: Client, admin: User) -> None:
    response = client.post(reverse("accounts:user_deactivate", args=[admin.pk]), follow=True)
    assert "不能停用自己" in response.content.decode()
    assert User.objects.get(pk=admin.pk).is_active


def test_change_own_password(client: Client) -> None:
    user = UserFactory(username="ma", role=Role.UNIT_OPERATOR, unit=UnitFactory())
    client.force_login(user)
    url = reverse("accounts:password")
    wrong = client.post(url, {"old_password": "nope", "password1": STRONG, "password2": STRONG})
    assert "当前密码不正确" in wrong.content.decode()
    response = client.post(url, {"old_password": PASSWORD, "password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert client.get(reverse("reports:dashboard")).status_code == 200  # still logged in


def test_wrong_current_passwords_count_toward_the_lockout(client: Client, settings: object) -> None:
    """修改密码 asks for the current password: before, a wrong one was only told 当前密码不正确,
    uncounted, so a stolen session could try passwords there without end. Each wrong one now
    counts as a failed login (audited `auth.login_failed`, via `password_change`); the last
    locks the account and ends the session, and while locked even the right one is refused."""
    from zige.accounts.services import lockout_failures

    user = UserFactory(username="ma", role=Role.UNIT_OPERATOR, unit=UnitFactory())
    client.force_login(user)
    url = reverse("accounts:password")
    tries = lockout_failures()
    for _ in range(tries - 1):
        wrong = client.post(url, {"old_password": "nope", "password1": STRONG, "password2": STRONG})
        assert wrong.status_code == 200 and "当前密码不正确" in wrong.content.decode()
    user.refresh_from_db()
    assert user.failed_logins == tries - 1 and user.locked_until is None
    failed = AuditEvent.objects.filter(action="auth.login_failed", target_id="ma").order_by("seq")
    assert [e.after["via"] for e in failed] == ["password_change"] * (tries - 1)
    assert failed.last().after["reason"] == "bad_credentials"  # type: ignore[union-attr]
    locked = client.post(url, {"old_password": "nope", "password1": STRONG, "password2": STRONG}, follow=True)
    user.refresh_from_db()
    assert user.locked_until is not None and user.failed_logins == tries
    assert AuditEvent.objects.filter(action="auth.locked", target_id="ma").count() == 1
    assert locked.redirect_chain[-1][0].startswith(reverse("accounts:login"))  # the session ended
    assert "账户已被暂时锁定" in locked.content.decode()
    client.force_login(user)  # a session that survived elsewhere: the right password is refused too
    refused = client.post(
        url, {"old_password": PASSWORD, "password1": STRONG, "password2": STRONG}, follow=True
    )
    user.refresh_from_db()
    assert user.check_password(PASSWORD) and not user.check_password(STRONG)
    assert "账户已被暂时锁定" in refused.content.decode()
    assert client.post(reverse("accounts:login"), {"username": "ma", "password": PASSWORD}).status_code == 200


def test_the_right_current_password_resets_the_count(client: Client) -> None:
    user = UserFactory(username="ma", role=Role.UNIT_OPERATOR, unit=UnitFactory())
    client.force_login(user)
    url = reverse("accounts:password")
    client.post(url, {"old_password": "nope", "password1": STRONG, "password2": STRONG})
    assert User.objects.get(pk=user.pk).failed_logins == 1
    assert (
        client.post(url, {"old_password": PASSWORD, "password1": STRONG, "password2": STRONG}).status_code
        == 302
    )
    user.refresh_from_db()
    assert user.failed_logins == 0 and user.check_password(STRONG)


def test_the_unit_is_cleared_for_a_role_without_one(client: Client, admin: User) -> None:
    """The unit field stays filled when the role is changed away from 单位经办人员 (or filled by
    mistake for another role): the form refused to save with 只有单位经办人员可以指定所属单位. A
    role bound to no unit now takes no unit, whatever the field holds; a unit operator must have one."""
    unit = UnitFactory()
    data = {
        "username": "zhao",
        "role": "auditor",
        "unit_no": unit.unit_no,
        "password1": STRONG,
        "password2": STRONG,
    }
    assert client.post(reverse("accounts:user_new"), data).status_code == 302
    assert User.objects.get(username="zhao").unit is None
    assert AuditEvent.objects.get(action="user.created", target_id="zhao").after["unit"] is None

    operator = UserFactory(username="qian", role=Role.UNIT_OPERATOR, unit=unit)
    url = reverse("accounts:user_edit", args=[operator.pk])
    page = client.get(url).content.decode()
    assert f'value="{unit.unit_no}"' in page  # the field as the admin finds it
    response = client.post(url, {"u-name": "", "u-role": "bureau_operator", "u-unit_no": unit.unit_no})
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.role == Role.BUREAU_OPERATOR and operator.unit is None
    event = AuditEvent.objects.filter(action="user.updated", target_id="qian").latest("seq")
    assert event.after == {"role": "bureau_operator", "unit": None}

    response = client.post(url, {"u-name": "", "u-role": "unit_operator", "u-unit_no": " "})
    assert response.status_code == 200
    assert '<p class="field__error">单位经办人员必须指定所属单位' in response.content.decode()
    assert User.objects.get(pk=operator.pk).role == Role.BUREAU_OPERATOR
