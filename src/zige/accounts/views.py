"""Login and logout, revealing a masked ID or phone number, and the user administration pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, update_session_auth_hash
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from zige.accounts.access import ADMIN_ROLES, role_required
from zige.accounts.backends import client_ip
from zige.accounts.forms import LoginForm, OwnPasswordForm, SetPasswordForm, UserCreateForm, UserEditForm
from zige.accounts.models import User
from zige.accounts.scoping import can_operate, can_reveal, scope_recipients, scope_units
from zige.accounts.services import (
    CurrentPasswordRefused,
    UserError,
    user_change_own_password,
    user_create,
    user_set_password,
    user_update,
)
from zige.audit.services import audit_record
from zige.benefits.models import RecoveryCase
from zige.roster.models import Recipient, Unit

# --- login / logout ---------------------------------------------------------------------------

# One answer for every refused login — wrong password, unknown username, locked or deactivated
# account — so that the page never tells which usernames exist (only real accounts lock). The
# reason is in the audit log (`auth.login_failed`, `auth.locked`) for the bureau.
BAD_LOGIN = "用户名或密码错误，或账户已被暂时锁定。请稍后再试，或联系社保局管理员。"


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(_next_url(request))
    form = LoginForm(request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST" and form.is_valid():
        user = authenticate(
            request, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
        )
        if user is not None:
            auth_login(request, user, backend="zige.accounts.backends.LockoutBackend")
            return redirect(_next_url(request))
        error = BAD_LOGIN
    next_value = request.POST.get("next") or request.GET.get("next") or ""
    return render(
        request,
        "accounts/login.html",
        {"form": form, "error": error, "next": next_value},
        status=200,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    auth_logout(request)  # audited `auth.logout` by the user_logged_out signal
    return redirect(settings.LOGIN_URL)


@sensitive_post_parameters("old_password", "password1", "password2")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_view(request: HttpRequest) -> HttpResponse:
    """Change one's own password (the current one is asked for; a wrong one counts toward the
    lockout, and the one that locks the account ends the session)."""
    user: Any = request.user
    form = OwnPasswordForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_change_own_password(
                user=user,
                current_password=form.cleaned_data["old_password"],
                password=form.cleaned_data["password1"],
                now=timezone.now(),
                ip=client_ip(request),
            )
        except CurrentPasswordRefused as exc:
            if exc.locked:  # whoever holds this session does not know the password: it ends
                auth_logout(request)
                messages.error(request, str(exc))
                return redirect(settings.LOGIN_URL)
            form.add_error("old_password", str(exc))
        except UserError as exc:
            for message in exc.messages:
                form.add_error("password1", message)
        else:
            update_session_auth_hash(request, user)
            messages.success(request, "密码已修改。")
            return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/password.html", {"form": form})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its CSRF token (or from another site): 403 in the site's own words,
    without Django's default page (whose inline style the CSP blocks)."""
    return render(request, "accounts/csrf_failure.html", status=403)


# --- revealing personal data ------------------------------------------------------------------


@dataclass(frozen=True)
class Revealable:
    """A kind of object whose masked fields may be revealed."""

    queryset: Callable[[Any], QuerySet[Any]]  # the objects the user may see (scoped)
    fields: frozenset[str]
    audit_type: str
    audit_key: Callable[[Any], str]


REVEALABLE: dict[str, Revealable] = {
    "recipient": Revealable(
        queryset=lambda user: scope_recipients(Recipient.objects.all(), user),
        fields=frozenset({"id_number", "phone", "mobile"}),
        audit_type="roster.Recipient",
        audit_key=lambda obj: obj.person_no,
    ),
    # A unit's contact number: the mobile its deadline SMS go to (zige.notifications.unit_messages).
    "unit": Revealable(
        queryset=lambda user: scope_units(Unit.objects.all(), user),
        fields=frozenset({"phone"}),
        audit_type="roster.Unit",
        audit_key=lambda obj: obj.unit_no,
    ),
    # A recovery case's debtor contact (追回, the heir or whoever collected the pension): only the
    # bureau's staff see recovery cases at all.
    "recovery_case": Revealable(
        queryset=lambda user: (
            RecoveryCase.objects.all() if can_operate(user) else RecoveryCase.objects.none()
        ),
        fields=frozenset({"debtor_contact"}),
        audit_type="benefits.RecoveryCase",
        audit_key=lambda obj: str(obj.pk),
    ),
}


@never_cache
@login_required
@require_POST
def reveal(request: HttpRequest) -> HttpResponse:
    """The full value of one masked field, as a small HTML fragment (htmx swaps it in).

    POST `target_type=recipient`, `target_id=<the recipient's id>`, `field=id_number|phone|mobile`.
    The target is looked up through the user's scope (another unit's person is a 404), and the
    reveal is audited as `pii.reveal` with the field's name, never its value."""
    if not can_reveal(request.user):
        raise PermissionDenied
    spec = REVEALABLE.get(request.POST.get("target_type", ""))
    field = request.POST.get("field", "")
    if spec is None or field not in spec.fields:
        return HttpResponseBadRequest("target_type or field not revealable")
    target_id = request.POST.get("target_id", "")
    if not target_id.isascii() or not target_id.isdigit():
        return HttpResponse(status=404)
    obj: Model = get_object_or_404(spec.queryset(request.user), pk=int(target_id))
    value = str(getattr(obj, field) or "")
    audit_record(
        actor=request.user,
        action="pii.reveal",
        target_type=spec.audit_type,
        target_id=spec.audit_key(obj),
        after={"field": field},
        ip=client_ip(request),
        at=timezone.now(),
    )
    return render(request, "accounts/revealed.html", {"value": value, "field": field})


# --- user administration (bureau_admin) -------------------------------------------------------


def _users() -> QuerySet[User]:
    return User.objects.select_related("unit").order_by("username")


@role_required(ADMIN_ROLES)
@require_http_methods(["GET"])
def users(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [
        {"user": u, "locked": bool(u.locked_until and u.locked_until > now)}
        for u in _users().filter(is_active=True)
    ]
    inactive = list(_users().filter(is_active=False))
    return render(
        request,
        "accounts/users.html",
        {"rows": rows, "inactive": inactive, "nav": "users"},
    )


def _form_errors(form: Any, exc: UserError) -> None:
    for message in exc.messages:
        form.add_error(None, message)


@sensitive_post_parameters("password1", "password2")
@role_required(ADMIN_ROLES)
@require_http_methods(["GET", "POST"])
def user_new(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = user_create(
                actor=request.user,
                username=data["username"],
                name=data["name"],
                role=data["role"],
                unit_no=data["unit_no"].strip() or None,
                password=data["password1"],
                now=timezone.now(),
                ip=client_ip(request),
            )
        except UserError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"已创建用户 {user.username}。")
            return redirect("accounts:users")
    return render(request, "accounts/user_form.html", {"form": form, "creating": True, "nav": "users"})


@sensitive_post_parameters("password1", "password2")
@role_required(ADMIN_ROLES)
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(_users(), pk=pk)
    initial = {
        "name": target.first_name,
        "role": target.role,
        "unit_no": target.unit.unit_no if target.unit else "",
    }
    form = UserEditForm(request.POST if request.method == "POST" else None, initial=initial, prefix="u")
    password_form = SetPasswordForm(prefix="p")
    if request.method == "POST" and "set_password" in request.POST:
        password_form = SetPasswordForm(request.POST, prefix="p")
        form = UserEditForm(initial=initial, prefix="u")
        if password_form.is_valid():
            try:
                user_set_password(
                    actor=request.user,
                    user=target,
                    password=password_form.cleaned_data["password1"],
                    now=timezone.now(),
                    ip=client_ip(request),
                )
            except UserError as exc:
                _form_errors(password_form, exc)
            else:
                messages.success(request, f"已为 {target.username} 设置新密码。")
                return redirect("accounts:users")
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user_update(
                actor=request.user,
                user=target,
                name=data["name"],
                role=data["role"],
                unit_no=data["unit_no"].strip() or None,
                now=timezone.now(),
                ip=client_ip(request),
            )
        except UserError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"已保存 {target.username} 的信息。")
            return redirect("accounts:users")
    now = timezone.now()
    return render(
        request,
        "accounts/user_form.html",
        {
            "form": form,
            "password_form": password_form,
            "target": target,
            "locked": bool(target.locked_until and target.locked_until > now),
            "creating": False,
            "nav": "users",
        },
    )


def _user_action(request: HttpRequest, pk: int, done: str, **change: Any) -> HttpResponse:
    target = get_object_or_404(_users(), pk=pk)
    try:
        user_update(actor=request.user, user=target, now=timezone.now(), ip=client_ip(request), **change)
    except UserError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, done.format(username=target.username))
    return redirect("accounts:users")


@role_required(ADMIN_ROLES)
@require_POST
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(request, pk, "已停用 {username}。", is_active=False)


@role_required(ADMIN_ROLES)
@require_POST
def user_activate(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(request, pk, "已启用 {username}。", is_active=True)


@role_required(ADMIN_ROLES)
@require_POST
def user_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(request, pk, "已解锁 {username}。", unlock=True)
