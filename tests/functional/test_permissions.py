"""The permission matrix: every URL of the site, tried by every role.

`TABLE` names every URL pattern (by its namespaced name, or by its route when it has none) with
how to call it and the status each caller must get:

    anonymous · bureau_admin · bureau_operator · unit_operator on an object of their own unit ·
    unit_operator on an object of another unit · auditor

`test_every_url_is_in_the_table` walks `django.urls.get_resolver()` (the admin and the API
included) and fails on any pattern the table does not list, so a new URL cannot go untested.
To add a URL: add a `TABLE` row — `Case(expect=E(...))` with the HTTP method, `kwargs` (built
from the `World` of test objects; `side` is "own" or "other") and `data` for a POST.

Pages answer a role that may never use them with 403; an object outside a unit operator's unit
with 404 (its existence is not confirmed). API endpoints take bearer tokens of the same users.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.factories import RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory
from zige.accounts.api_tokens import token_issue
from zige.accounts.models import Role, User
from zige.audit.services import audit_record
from zige.certification.models import Decision, Run, RunStatus, Status
from zige.feeds.models import ImportBatch, ImportStatus
from zige.roster.models import Recipient, Unit

COLUMNS = ("anonymous", "bureau_admin", "bureau_operator", "unit_own", "unit_other", "auditor")


@dataclass(frozen=True)
class E:
    """Expected status codes, in the order of COLUMNS."""

    anonymous: int
    bureau_admin: int
    bureau_operator: int
    unit_own: int
    unit_other: int
    auditor: int

    def for_column(self, column: str) -> int:
        return int(getattr(self, column))


def staff(anonymous: int = 302, *, admin: int, operator: int, unit: int, auditor: int) -> E:
    """An object without a unit: a unit operator gets the same answer for 'own' and 'other'."""
    return E(anonymous, admin, operator, unit, unit, auditor)


def everyone(code: int, anonymous: int = 302) -> E:
    return E(anonymous, code, code, code, code, code)


@dataclass
class World:
    """The objects every case may point at: unit A (the unit operator's own) and unit B."""

    users: dict[str, User]
    unit: dict[str, Unit]
    person: dict[str, Recipient]
    batch: ImportBatch
    run: Run
    target_user: User  # the object of the user-administration actions
    tokens: dict[str, str] = field(default_factory=dict)


Kwargs = Callable[[World, str], dict[str, Any]]


def no_kwargs(world: World, side: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Case:
    expect: E
    method: str = "get"
    kwargs: Kwargs = no_kwargs
    data: Kwargs | None = None
    path: Callable[[World, str], str] | None = None  # for patterns without a name
    api: bool = False  # authenticate with a bearer token (JSON body for POST)
    headers: dict[str, str] = field(default_factory=dict)


def person_no(world: World, side: str) -> dict[str, Any]:
    return {"person_no": world.person[side].person_no}


def unit_no(world: World, side: str) -> dict[str, Any]:
    return {"unit_no": world.unit[side].unit_no}


def batch_pk(world: World, side: str) -> dict[str, Any]:
    return {"pk": world.batch.pk}


def run_pk(world: World, side: str) -> dict[str, Any]:
    return {"pk": world.run.pk}


def user_pk(world: World, side: str) -> dict[str, Any]:
    return {"pk": world.target_user.pk}


def reveal_data(world: World, side: str) -> dict[str, Any]:
    return {"target_type": "recipient", "target_id": world.person[side].pk, "field": "id_number"}


def token_data(world: World, side: str) -> dict[str, Any]:
    return {"username": "nobody", "password": "wrong"}  # replaced by the caller's own in `_call`


def verification_task_pk(world: World, side: str) -> dict[str, Any]:
    """The side's person's verification task (核实任务, issue #4)."""
    from tests.factories import verification_task
    from zige.verification.models import VerificationTask

    task = VerificationTask.objects.filter(recipient=world.person[side]).first()
    return {"pk": (task or verification_task(world.person[side], run=world.run)).pk}  # type: ignore[attr-defined]


def verification_attachment_pk(world: World, side: str) -> dict[str, Any]:
    from tests.factories import verification_attachment
    from zige.verification.models import Attachment, VerificationTask

    task = VerificationTask.objects.get(pk=verification_task_pk(world, side)["pk"])
    found = Attachment.objects.filter(submission__task=task).first()
    return {"pk": (found or verification_attachment(task)).pk}  # type: ignore[attr-defined]


def ledger_mark_pk(world: World, side: str) -> dict[str, Any]:
    """A high-risk mark on the side's person (服务台账, issue #4)."""
    from zige.ledger.models import SpecialMark

    mark, _ = SpecialMark.objects.get_or_create(
        recipient=world.person[side], group="high_risk", removed_at=None,
        defaults={"reason": "独居", "since": date(2026, 1, 1), "marked_by": world.users["bureau_admin"],
                  "marked_at": timezone.now()},
    )  # fmt: skip
    return {"pk": mark.pk}


def ledger_visit_pk(world: World, side: str) -> dict[str, Any]:
    """A home visit with a real JPEG photo on the side's person."""
    import io

    from PIL import Image

    from zige.ledger.services import visit_record

    person = world.person[side]
    visit = person.home_visits.first()
    if visit is None:
        jpeg = io.BytesIO()
        Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
        jpeg.seek(0)
        jpeg.name = "visit.jpg"  # type: ignore[attr-defined]
        visit = visit_record(
            actor=world.users["bureau_admin"], recipient=person, visited_on=date(2026, 11, 1), visitor="走访人",
            outcome="alive", photo=jpeg, now=timezone.now(),
        )  # fmt: skip
    return {"pk": visit.pk}


def ledger_export_pk(world: World, side: str) -> dict[str, Any]:
    from zige.ledger.models import OtherProvinceExport
    from zige.ledger.services import other_province_export

    export = OtherProvinceExport.objects.first() or other_province_export(
        actor=world.users["bureau_admin"], as_of=date(2026, 11, 30), fmt="csv", now=timezone.now()
    )
    return {"pk": export.pk}


def suggestion_pk(row: int) -> Kwargs:
    """A suggested match (号码纠错建议, rules §4a) on the world's import, one per `row`."""

    def kwargs(world: World, side: str) -> dict[str, Any]:
        from zige.feeds.models import SuggestedMatch

        person = world.person["own"]
        suggestion, _ = SuggestedMatch.objects.get_or_create(
            batch=world.batch, row=row, recipient=person,
            defaults={"original_id": person.id_number[:17] + "0", "name": person.name, "suggested_id": person.id_number,
                      "edit": "substitution", "position": 18, "from_text": "0", "to_text": person.id_number[17],
                      "confirmed_by": "name,id_birth_date", "created_at": timezone.now()},
        )  # fmt: skip
        return {"pk": suggestion.pk}

    return kwargs


def benefits_pk(make: str) -> Kwargs:
    """A payment action / export batch / recovery case / fraud case / blacklist entry on the side's person (待遇处理, issue #4)."""

    def kwargs(world: World, side: str) -> dict[str, Any]:
        from tests import factories

        return {"pk": getattr(factories, make)(world.person[side]).pk}

    return kwargs


def benefits_file(world: World, side: str) -> dict[str, Any]:
    return {**benefits_pk("export_batch")(world, side), "kind": "xlsx"}


ADMIN_CLOSED = everyone(302)  # the Django admin: no zige role is staff; its login page is the door

# fmt: off
TABLE: dict[str, Case] = {
    # reports
    "reports:dashboard": Case(everyone(200)),
    # accounts
    "accounts:login": Case(everyone(302, anonymous=200)),
    "accounts:logout": Case(everyone(302), method="post"),
    "accounts:password": Case(everyone(200)),
    "accounts:reveal": Case(E(302, 200, 200, 200, 404, 403), method="post", data=reveal_data),
    "accounts:users": Case(staff(admin=200, operator=403, unit=403, auditor=403)),
    "accounts:user_new": Case(staff(admin=200, operator=403, unit=403, auditor=403)),
    "accounts:user_edit": Case(staff(admin=200, operator=403, unit=403, auditor=403), kwargs=user_pk),
    "accounts:user_deactivate": Case(staff(admin=302, operator=403, unit=403, auditor=403), method="post", kwargs=user_pk),
    "accounts:user_activate": Case(staff(admin=302, operator=403, unit=403, auditor=403), method="post", kwargs=user_pk),
    "accounts:user_unlock": Case(staff(admin=302, operator=403, unit=403, auditor=403), method="post", kwargs=user_pk),
    # roster
    "roster:search": Case(everyone(200)),
    "roster:person": Case(E(302, 200, 200, 200, 404, 200), kwargs=person_no),
    "roster:units": Case(staff(admin=200, operator=200, unit=302, auditor=200)),
    "roster:unit": Case(E(302, 200, 200, 200, 404, 200), kwargs=unit_no),
    # imports
    "feeds:list": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "feeds:upload": Case(staff(admin=200, operator=200, unit=403, auditor=403)),
    "feeds:detail": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=batch_pk),
    "feeds:progress": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=batch_pk),
    "feeds:rejects_csv": Case(staff(admin=200, operator=200, unit=403, auditor=403), kwargs=batch_pk),
    "feeds:suggestions": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=batch_pk),
    "feeds:suggestions_find": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=batch_pk),
    "feeds:suggestion_accept": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=suggestion_pk(2)),
    "feeds:suggestion_reject": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=suggestion_pk(3)),
    # runs
    "certification:list": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "certification:start": Case(staff(admin=405, operator=405, unit=403, auditor=403)),  # POST only
    "certification:detail": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=run_pk),
    "certification:progress": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=run_pk),
    # audit log
    "audit:browse": Case(staff(admin=200, operator=403, unit=403, auditor=200)),
    "audit:export": Case(staff(admin=200, operator=403, unit=403, auditor=200), method="post"),
    # JSON API (bearer tokens; a session is not enough)
    "api:api-root": Case(everyone(404, anonymous=404), api=True),
    "api:openapi-json": Case(everyone(200, anonymous=200), api=True),
    "api:token_create": Case(everyone(200, anonymous=401), method="post", data=token_data, api=True),
    "api:person_detail": Case(E(401, 200, 200, 200, 404, 200), kwargs=person_no, api=True),
    "api:person_evidence": Case(E(401, 200, 200, 200, 404, 200), kwargs=person_no, api=True),
    "api:push_certifications": Case(everyone(401, anonymous=401), method="post", data=lambda w, s: [], api=True),
    # reminders and unattended operation (issue #5); the receipt callback takes the gateway's token, no login
    "notifications:overview": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "notifications:unit_notices": Case(E(302, 200, 200, 200, 404, 200), kwargs=unit_no),
    "notifications:unit_notices_csv": Case(E(302, 200, 200, 200, 404, 200), kwargs=unit_no),
    "notifications:receipt": Case(everyone(403, anonymous=403), method="post", kwargs=lambda w, s: {"provider": "aliyun"}),
    # verification tasks 核实任务 (issue #4 items 1-4): the unit reports, the bureau reviews
    "verification:list": Case(everyone(200)),
    "verification:export": Case(everyone(200)),
    "verification:queue": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "verification:units": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "verification:bulk": Case(staff(admin=403, operator=403, unit=200, auditor=403)),
    "verification:form1": Case(staff(admin=404, operator=404, unit=200, auditor=404)),
    "verification:detail": Case(E(302, 200, 200, 200, 404, 200), kwargs=verification_task_pk),
    "verification:submit": Case(E(302, 403, 403, 200, 404, 403), method="post", kwargs=verification_task_pk),
    "verification:review": Case(E(302, 302, 302, 403, 403, 403), method="post", kwargs=verification_task_pk),
    "verification:resolve": Case(E(302, 200, 200, 403, 403, 403), method="post", kwargs=verification_task_pk),
    "verification:attachment": Case(E(302, 200, 200, 200, 404, 200), kwargs=verification_attachment_pk),
    # special groups ledger 服务台账 and other-province residents 异地居住 (issue #4 items 7, 8)
    "ledger:index": Case(E(302, 200, 200, 302, 302, 200)),  # a unit operator goes to their own unit
    "ledger:unit": Case(E(302, 200, 200, 200, 404, 200), kwargs=unit_no),
    "ledger:not_visited_csv": Case(E(302, 200, 200, 200, 404, 200), kwargs=unit_no),
    "ledger:person": Case(E(302, 200, 200, 200, 404, 200), kwargs=person_no),
    "ledger:mark_add": Case(E(302, 302, 302, 302, 404, 403), method="post", kwargs=person_no, data=lambda w, s: {"group": "immobile", "reason": "卧床", "since": "2026-01-01"}),
    "ledger:mark_remove": Case(E(302, 302, 302, 302, 404, 403), method="post", kwargs=ledger_mark_pk, data=lambda w, s: {"reason": "已同住"}),
    "ledger:visit_new": Case(E(302, 200, 200, 200, 404, 403), kwargs=person_no),
    "ledger:visit_photo": Case(E(302, 200, 200, 200, 404, 200), kwargs=ledger_visit_pk),
    "ledger:other_province": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "ledger:other_province_export": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", data=lambda w, s: {"format": "csv"}),
    "ledger:export_download": Case(staff(admin=200, operator=200, unit=403, auditor=403), kwargs=ledger_export_pk),
    # payment actions, export batches, recovery and fraud cases (issue #4): bureau only, auditors read
    "benefits:actions": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "benefits:action_new": Case(staff(admin=200, operator=200, unit=403, auditor=403)),
    "benefits:actions_approve": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post"),
    "benefits:action": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=benefits_pk("payment_action")),
    "benefits:action_approve": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("payment_action")),
    "benefits:action_reject": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("payment_action"), data=lambda w, s: {"reason": "x"}),
    "benefits:action_withdraw": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("payment_action")),
    "benefits:action_reverse": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("payment_action"), data=lambda w, s: {"reason": "x"}),
    "benefits:batches": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "benefits:batch_create": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post"),
    "benefits:batch": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=benefits_pk("export_batch")),
    "benefits:batch_download": Case(staff(admin=200, operator=200, unit=403, auditor=403), kwargs=benefits_file),
    "benefits:batch_reexport": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("export_batch"), data=lambda w, s: {"reason": "x"}),
    "benefits:batch_confirm": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("export_batch")),
    "benefits:batch_void": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("export_batch"), data=lambda w, s: {"reason": "x"}),
    "benefits:recoveries": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "benefits:recovery": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=benefits_pk("recovery_case")),
    "benefits:recovery_notify": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("recovery_case")),
    "benefits:recovery_payment": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("recovery_case")),
    "benefits:recovery_write_off": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("recovery_case")),
    "benefits:recovery_write_off_decide": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("recovery_case")),
    "benefits:recovery_refund": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("recovery_case")),
    "benefits:recovery_refund_decide": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("recovery_case")),
    "benefits:frauds": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "benefits:fraud_new": Case(staff(admin=200, operator=200, unit=403, auditor=403)),
    "benefits:fraud": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=benefits_pk("fraud_case")),
    "benefits:fraud_fine": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("fraud_case")),
    "benefits:fraud_collect": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("fraud_case")),
    "benefits:fraud_close": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("fraud_case")),
    "benefits:fraud_dismiss": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("fraud_case")),
    "benefits:fraud_refer": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("fraud_case")),
    "benefits:blacklist": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "benefits:blacklist_add": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post"),
    "benefits:blacklist_entry": Case(staff(admin=200, operator=200, unit=403, auditor=200), kwargs=benefits_pk("blacklist_entry")),
    "benefits:blacklist_remove": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("blacklist_entry"), data=lambda w, s: {"removal_reason": "wrongly_listed", "removed_on": "2026-11-30", "note": "x"}),
    "benefits:blacklist_remove_decide": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("blacklist_entry"), data=lambda w, s: {"decision": "approve"}),
    "benefits:blacklist_period": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("blacklist_entry"), data=lambda w, s: {"until": "2030-01-01", "basis": "x"}),
    "benefits:blacklist_remove_withdraw": Case(staff(admin=302, operator=302, unit=403, auditor=403), method="post", kwargs=benefits_pk("blacklist_entry")),
    "benefits:report": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    "benefits:report_csv": Case(staff(admin=200, operator=200, unit=403, auditor=200)),
    # Django admin
    "admin:index": Case(ADMIN_CLOSED),
    "admin:login": Case(everyone(200, anonymous=200)),
    "admin:logout": Case(ADMIN_CLOSED),
    "admin:password_change": Case(ADMIN_CLOSED),
    "admin:password_change_done": Case(ADMIN_CLOSED),
    "admin:autocomplete": Case(ADMIN_CLOSED),
    "admin:jsi18n": Case(ADMIN_CLOSED),
    "admin:view_on_site": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"content_type_id": 1, "object_id": 1}),
    "admin:app_list": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"app_label": "auth"}),
    "admin:auth_group_changelist": Case(ADMIN_CLOSED),
    "admin:auth_group_add": Case(ADMIN_CLOSED),
    "admin:auth_group_history": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"object_id": 1}),
    "admin:auth_group_delete": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"object_id": 1}),
    "admin:auth_group_change": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"object_id": 1}),
    "admin/auth/group/<path:object_id>/": Case(ADMIN_CLOSED, path=lambda w, s: "/admin/auth/group/1/"),
    "admin:django_tasks_database_dbtaskresult_changelist": Case(ADMIN_CLOSED),
    "admin:django_tasks_database_dbtaskresult_add": Case(ADMIN_CLOSED),
    "admin:django_tasks_database_dbtaskresult_history": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"object_id": 1}),
    "admin:django_tasks_database_dbtaskresult_delete": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"object_id": 1}),
    "admin:django_tasks_database_dbtaskresult_change": Case(ADMIN_CLOSED, kwargs=lambda w, s: {"object_id": 1}),
    "admin/django_tasks_database/dbtaskresult/<path:object_id>/": Case(
        ADMIN_CLOSED, path=lambda w, s: "/admin/django_tasks_database/dbtaskresult/1/"
    ),
    "admin/(?P<url>.*)$": Case(ADMIN_CLOSED, path=lambda w, s: "/admin/no-such-page/"),
}
# fmt: on


# --- the URLconf ------------------------------------------------------------------------------


def _join(route1: str, route2: str) -> str:
    """As django.urls.resolvers.URLResolver._join_route."""
    return route2 if not route1 else route1 + route2.removeprefix("^")


def url_keys(patterns: list[URLPattern | URLResolver] | None = None, route: str = "", ns: tuple[str, ...] = ()) -> Iterator[str]:  # fmt: skip
    """Every URL pattern of the site: 'namespace:name', or the full route of an unnamed one."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        here = _join(route, str(p.pattern))
        if isinstance(p, URLResolver):
            yield from url_keys(p.url_patterns, here, ns + ((p.namespace,) if p.namespace else ()))
        else:
            yield ":".join((*ns, p.name)) if p.name else here


def _match_key(url: str) -> str:
    match = resolve(url)
    return match.view_name if match.url_name else match.route


def test_every_url_is_in_the_table() -> None:
    keys = list(url_keys())
    missing = [k for k in keys if k not in TABLE]
    assert not missing, (
        "URL patterns without a row in the permission matrix (add them to TABLE in "
        f"tests/functional/test_permissions.py): {missing}"
    )
    stale = sorted(set(TABLE) - set(keys))
    assert not stale, f"TABLE rows for URL patterns that no longer exist: {stale}"


def test_the_walk_finds_nested_and_unnamed_patterns() -> None:
    keys = set(url_keys())
    assert {"accounts:reveal", "audit:browse", "admin:index", "admin/(?P<url>.*)$"} <= keys
    assert any(k.startswith("api:") for k in keys)


# --- the objects and the callers --------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    now = timezone.now()
    units = {"own": UnitFactory(), "other": UnitFactory()}
    people = {side: RecipientFactory(unit=unit, name=f"保密{side}人员") for side, unit in units.items()}
    users = {
        "bureau_admin": UserFactory(username="admin", role=Role.BUREAU_ADMIN),
        "bureau_operator": UserFactory(username="operator", role=Role.BUREAU_OPERATOR),
        "unit_operator": UnitOperatorFactory(username="unitop", unit=units["own"]),
        "auditor": UserFactory(username="auditor", role=Role.AUDITOR),
    }
    batch = ImportBatch.objects.create(
        kind="roster", file_name="roster.csv", sha256="0" * 64, status=ImportStatus.SUCCEEDED, created_at=now
    )
    run = Run.objects.create(
        as_of=date(2026, 11, 30), status=RunStatus.SUCCEEDED, created_at=now, recipients=2
    )
    for person in people.values():
        Decision.objects.create(
            run=run, recipient=person, unit=person.unit, status=Status.ELIGIBLE, reason="app_auth"
        )
    audit_record(action="test.seed", target_type="test", target_id="1", at=now)
    target = UserFactory(username="target", role=Role.BUREAU_OPERATOR)
    tokens = {role: token_issue(user=user, now=now) for role, user in users.items()}
    return World(
        users=users, unit=units, person=people, batch=batch, run=run, target_user=target, tokens=tokens
    )


def _role(column: str) -> str:
    return "unit_operator" if column.startswith("unit_") else column


def _side(column: str) -> str:
    return "other" if column == "unit_other" else "own"


def _url(key: str, case: Case, world: World, side: str) -> str:
    if case.path is not None:
        return case.path(world, side)
    return reverse(key, kwargs=case.kwargs(world, side))


def _call(client: Client, key: str, case: Case, world: World, column: str) -> Any:
    role, side = _role(column), _side(column)
    url = _url(key, case, world, side)
    assert _match_key(url) == key, f"{url} resolves to {_match_key(url)}, not {key}"
    data = case.data(world, side) if case.data else None
    headers = dict(case.headers)
    if case.api:
        if role != "anonymous":
            headers["Authorization"] = f"Bearer {world.tokens[role]}"
            if key == "api:token_create":
                data = {"username": world.users[role].username, "password": PASSWORD}
        if case.method == "post":
            return client.post(url, json.dumps(data), content_type="application/json", headers=headers)
        return client.get(url, headers=headers)
    if role != "anonymous":
        client.force_login(world.users[role])
    return getattr(client, case.method)(url, data or {}, headers=headers)


CALLS = [(key, column) for key in TABLE for column in COLUMNS]


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "column"), CALLS, ids=[f"{k}-{c}" for k, c in CALLS])
def test_access(key: str, column: str, world: World, client: Client) -> None:
    case = TABLE[key]
    expected = case.expect.for_column(column)
    response = _call(client, key, case, world, column)
    assert response.status_code == expected, (
        f"{case.method.upper()} {key} as {column}: {response.status_code}, expected {expected}"
    )
    if column == "anonymous" and expected == 302:  # to a login page (the admin's own for the admin)
        assert re.search(r"/login/" if not key.startswith("admin") else r"^/admin/", response["Location"])
    if column == "unit_other" and response.status_code == 404:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        other = world.person["other"]
        for secret in (other.name, other.id_number, other.person_no):
            assert secret.encode() not in body, f"{key}: a 404 must not show {secret}"


# --- what the CSP would block -----------------------------------------------------------------

INLINE = [
    # (a json_script data block is not code: the CSP does not apply to it)
    (
        re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>\s*\S", re.I),
        "an inline <script>",
    ),
    (re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I), "a style= attribute"),
    (re.compile(r"<style[\s>]", re.I), "a <style> element"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I), "an on…= event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]
PAGES = [
    (key, column)
    for key, case in TABLE.items()
    for column in ("bureau_admin", "unit_own")
    if case.method == "get" and not case.api and case.expect.for_column(column) == 200
]


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "column"), PAGES, ids=[f"{k}-{c}" for k, c in PAGES])
def test_pages_have_nothing_the_csp_would_block(key: str, column: str, world: World, client: Client) -> None:
    """The site's CSP has no 'unsafe-inline': inline code would silently not run in a browser."""
    response = _call(client, key, TABLE[key], world, column)
    if "text/html" not in response.get("Content-Type", ""):
        return
    html = response.content.decode()
    for pattern, what in INLINE:
        found = pattern.search(html)
        assert found is None, f"{key} has {what}: {html[max(0, found.start() - 80) : found.end() + 80]}"
