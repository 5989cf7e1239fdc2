"""Writes on users, and the login check with its lockout.

Every change is audited in the same transaction (`user.created`, `user.updated`,
`user.password_set`, `auth.login_failed`, `auth.locked`). Services never read the clock: the
caller passes `now`.

Lockout: `settings.ZIGE_LOCKOUT_FAILURES` wrong passwords in a row lock the account for
`settings.ZIGE_LOCKOUT_MINUTES`. Failures are counted per account (not per address), so a
password-guessing run against one account stops there; while locked, even the right password is
refused. A success resets the count. Failures for usernames that do not exist are audited too.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction

from zige.accounts.api_tokens import token_revoke_all
from zige.accounts.models import Role, User
from zige.audit.services import audit_record
from zige.roster.models import Unit

USER_TARGET = "accounts.User"


class UserError(ValueError):
    """A user change that is refused; `messages` are shown to the person who asked (Chinese)."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


@dataclass(frozen=True)
class SystemActor:
    """The actor of a change made from the command line (no logged-in user)."""

    username: str
    role: str = ""


def cli_actor() -> SystemActor:
    """`cli:<operating-system user>`: who ran a `zige` command, as recorded in the audit log."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "unknown"
    return SystemActor(username=f"cli:{who}"[:150])


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def user_snapshot(user: User) -> dict[str, Any]:
    """What the audit log records of a user (never the password hash)."""
    return {
        "username": user.username,
        "name": user.first_name,
        "role": user.role,
        "unit": user.unit.unit_no if user.unit_id and user.unit else None,
        "is_active": user.is_active,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
    }


def _unit_for(role: str, unit_no: str | None) -> Unit | None:
    if role not in Role.values:
        raise UserError(f"未知角色 {role!r}（可选：{'、'.join(Role.values)}）")
    if role == Role.UNIT_OPERATOR:
        if not unit_no:
            raise UserError("单位经办人员必须指定所属单位（--unit 单位编号）")
        unit = Unit.objects.filter(unit_no=unit_no).first()
        if unit is None:
            raise UserError(f"单位编号 {unit_no} 不存在")
        return unit
    if unit_no:
        raise UserError("只有单位经办人员可以指定所属单位")
    return None


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise UserError(*exc.messages) from None


def _active_admins_other_than(user: User) -> int:
    return User.objects.filter(role=Role.BUREAU_ADMIN, is_active=True).exclude(pk=user.pk).count()


def user_create(
    *,
    actor: Any,
    username: str,
    role: str,
    password: str,
    now: datetime,
    unit_no: str | None = None,
    name: str = "",
    ip: str = "",
) -> User:
    """A new active user with a validated password; audited `user.created`."""
    username = (username or "").strip()
    if not username:
        raise UserError("用户名不能为空")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise UserError("用户名只能包含字母、数字和 @ . + - _") from None
    if len(username) > 150:
        raise UserError("用户名最长 150 个字符")
    with transaction.atomic():
        unit = _unit_for(role, unit_no)
        if User.objects.filter(username__iexact=username).exists():
            raise UserError(f"用户名 {username} 已存在")
        user = User(username=username, role=role, unit=unit, first_name=name.strip()[:150], is_active=True)
        _check_password(password, user)
        user.set_password(password)
        user.date_joined = now
        user.save()
        audit_record(
            actor=actor,
            action="user.created",
            target_type=USER_TARGET,
            target_id=user.username,
            after=user_snapshot(user),
            ip=ip,
            at=now,
        )
    return user


def user_update(
    *,
    actor: Any,
    user: User,
    now: datetime,
    role: str = UNSET,
    unit_no: str | None = UNSET,
    is_active: bool = UNSET,
    name: str = UNSET,
    unlock: bool = False,
    ip: str = "",
) -> User:
    """Change a user's role, unit, name or active flag, or lift a lockout; audited `user.updated`
    with the values before and after (nothing is recorded when nothing changed).

    The last active bureau administrator cannot be deactivated or given another role, and nobody
    can deactivate themselves. Deactivating revokes the user's API tokens (`token_revoke_all`), so
    that reactivating the account does not bring them back."""
    with transaction.atomic():
        user = User.objects.select_for_update(of=("self",)).select_related("unit").get(pk=user.pk)
        before = user_snapshot(user)
        if role is not UNSET or unit_no is not UNSET:
            new_role = user.role if role is UNSET else role
            if unit_no is UNSET:  # keep the unit while the user stays a unit operator
                unit_no = user.unit.unit_no if new_role == Role.UNIT_OPERATOR and user.unit else None
            user.unit = _unit_for(new_role, unit_no or None)
            user.role = new_role
        if name is not UNSET:
            user.first_name = (name or "").strip()[:150]
        if is_active is not UNSET:
            if not is_active and getattr(actor, "pk", None) == user.pk:
                raise UserError("不能停用自己的账户")
            user.is_active = bool(is_active)
        if unlock:
            user.failed_logins = 0
            user.locked_until = None
        was_admin = before["role"] == Role.BUREAU_ADMIN and before["is_active"]
        still_admin = user.role == Role.BUREAU_ADMIN and user.is_active
        if was_admin and not still_admin and _active_admins_other_than(user) == 0:
            raise UserError("这是唯一在用的社保局管理员账户，不能停用或改为其他角色")
        after = user_snapshot(user)
        if after == before and not unlock:
            return user
        user.save()
        audit_record(
            actor=actor,
            action="user.updated",
            target_type=USER_TARGET,
            target_id=user.username,
            before={k: v for k, v in before.items() if after.get(k) != v} or before,
            after={k: v for k, v in after.items() if before.get(k) != v} or after,
            ip=ip,
            at=now,
        )
        if before["is_active"] and not user.is_active:
            token_revoke_all(user=user, actor=actor, reason="deactivated", now=now, ip=ip)
    return user


def user_set_password(*, actor: Any, user: User, password: str, now: datetime, ip: str = "") -> User:
    """Set a new (validated) password and lift any lockout; audited `user.password_set` (the
    password itself is never recorded). The user's other sessions end, since Django ties a session
    to the password hash, and so do their API tokens (revoked, audited `api.tokens_revoked`)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        _check_password(password, user)
        user.set_password(password)
        user.failed_logins = 0
        user.locked_until = None
        user.save()
        audit_record(
            actor=actor,
            action="user.password_set",
            target_type=USER_TARGET,
            target_id=user.username,
            after={"username": user.username},
            ip=ip,
            at=now,
        )
        token_revoke_all(user=user, actor=actor, reason="password_set", now=now, ip=ip)
    return user


class CurrentPasswordRefused(UserError):
    """The current password given to change one's own password is wrong, or the account is locked
    (`locked`: the session should end)."""

    def __init__(self, *, locked: bool) -> None:
        super().__init__(
            "当前密码错误次数过多，账户已被暂时锁定。请稍后再登录，或联系社保局管理员。"
            if locked
            else "当前密码不正确"
        )
        self.locked = locked


def user_change_own_password(
    *, user: User, current_password: str, password: str, now: datetime, ip: str = ""
) -> User:
    """A user's own 修改密码. The current password is checked as a login is (`login_attempt`,
    `via="password_change"`): a wrong one counts toward the lockout and is audited
    `auth.login_failed` — committed, whatever follows — so that the form is no unthrottled way
    to try passwords; the one that reaches `ZIGE_LOCKOUT_FAILURES` locks the account
    (`auth.locked`), and while it is locked even the right one is refused (`CurrentPasswordRefused`).
    Then the new password is set as `user_set_password` does (audited, API tokens revoked)."""
    outcome = login_attempt(
        username=user.username, password=current_password, now=now, ip=ip, via="password_change"
    )
    if not outcome.ok:
        raise CurrentPasswordRefused(locked=outcome.reason != "bad_credentials")
    return user_set_password(actor=user, user=user, password=password, now=now, ip=ip)


# --- login ------------------------------------------------------------------------------------

Reason = Literal["ok", "bad_credentials", "unknown_user", "locked", "inactive"]


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    reason: Reason
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


def lockout_failures() -> int:
    return max(1, int(settings.ZIGE_LOCKOUT_FAILURES))


def lockout_period() -> timedelta:
    return timedelta(minutes=int(settings.ZIGE_LOCKOUT_MINUTES))


def login_attempt(
    *, username: str, password: str, now: datetime, ip: str = "", via: str = "web"
) -> LoginOutcome:
    """Check a username and password, counting failures and locking the account after too many.

    The successful login itself is audited (`auth.login`) when a session starts, by the
    `user_logged_in` signal; every failure is audited here (`auth.login_failed`, with the reason),
    and the moment an account locks as `auth.locked`.
    """
    username = (username or "")[:150]
    password = password or ""
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            make_password(password)  # as slow as a real check: no timing hint that the name is unknown
            _audit_failure(username=username, reason="unknown_user", ip=ip, now=now, via=via)
            return LoginOutcome(None, "unknown_user")
        if user.locked_until is not None and user.locked_until > now:
            make_password(password)  # as slow as a check: no timing hint that the account is locked
            _audit_failure(username=username, reason="locked", ip=ip, now=now, via=via, user=user)
            return LoginOutcome(None, "locked", user.locked_until)
        expired = user.locked_until is not None
        if expired:  # the lock has run out: start counting afresh
            user.locked_until = None
            user.failed_logins = 0
        if not user.check_password(password):
            user.failed_logins += 1
            locked_until = now + lockout_period() if user.failed_logins >= lockout_failures() else None
            user.locked_until = locked_until
            user.save(update_fields=["failed_logins", "locked_until"])
            _audit_failure(username=username, reason="bad_credentials", ip=ip, now=now, via=via, user=user)
            if locked_until is not None:
                audit_record(
                    action="auth.locked",
                    target_type=USER_TARGET,
                    target_id=username,
                    after={"failures": user.failed_logins, "locked_until": locked_until.isoformat()},
                    ip=ip,
                    at=now,
                )
                return LoginOutcome(None, "locked", locked_until)
            return LoginOutcome(None, "bad_credentials")
        if not user.is_active:
            _audit_failure(username=username, reason="inactive", ip=ip, now=now, via=via, user=user)
            return LoginOutcome(None, "inactive")
        if user.failed_logins or expired:
            user.failed_logins = 0
            user.locked_until = None
            user.save(update_fields=["failed_logins", "locked_until"])
        return LoginOutcome(user, "ok")


def _audit_failure(
    *, username: str, reason: str, ip: str, now: datetime, via: str, user: User | None = None
) -> None:
    after: dict[str, Any] = {"reason": reason, "via": via}
    if user is not None:
        after["failures"] = user.failed_logins
    audit_record(
        action="auth.login_failed",
        target_type=USER_TARGET,
        target_id=username[:128],
        after=after,
        ip=ip,
        at=now,
    )
