"""Forms of the login page and the user administration pages."""

from __future__ import annotations

from typing import Any

from django import forms

from zige.accounts.models import Role


class LoginForm(forms.Form):
    username = forms.CharField(
        label="用户名",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="密码",
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class _PasswordPair(forms.Form):
    password1 = forms.CharField(
        label="密码", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="再次输入密码", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "两次输入的密码不一致")
        return data


def _unit_for_role(form: forms.Form, data: dict[str, Any]) -> dict[str, Any]:
    """Only a unit operator belongs to a unit: for another role the unit field is ignored (it
    stays filled when the role is changed away from 单位经办人员), for a unit operator it is
    required."""
    role = data.get("role")
    if role is None:
        return data
    if role != Role.UNIT_OPERATOR:
        data["unit_no"] = ""
    elif not (data.get("unit_no") or "").strip():
        form.add_error("unit_no", "单位经办人员必须指定所属单位：请填写单位编号")
    return data


class UserCreateForm(_PasswordPair):
    username = forms.CharField(label="用户名", max_length=150)
    name = forms.CharField(label="姓名", max_length=150, required=False)
    role = forms.ChoiceField(label="角色", choices=Role.choices)
    unit_no = forms.CharField(
        label="所属单位编号",
        max_length=64,
        required=False,
        help_text="仅单位经办人员填写，其他角色不属于任何单位",
    )

    field_order = ["username", "name", "role", "unit_no", "password1", "password2"]

    def clean(self) -> dict[str, Any]:
        return _unit_for_role(self, super().clean())


class UserEditForm(forms.Form):
    name = forms.CharField(label="姓名", max_length=150, required=False)
    role = forms.ChoiceField(label="角色", choices=Role.choices)
    unit_no = forms.CharField(
        label="所属单位编号",
        max_length=64,
        required=False,
        help_text="仅单位经办人员填写，其他角色不属于任何单位",
    )

    def clean(self) -> dict[str, Any]:
        return _unit_for_role(self, super().clean() or {})


class SetPasswordForm(_PasswordPair):
    pass


class OwnPasswordForm(_PasswordPair):
    old_password = forms.CharField(
        label="当前密码",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    field_order = ["old_password", "password1", "password2"]
