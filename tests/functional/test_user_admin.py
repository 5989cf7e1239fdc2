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
