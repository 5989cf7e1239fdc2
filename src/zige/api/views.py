"""The JSON API (django-ninja). The OpenAPI document is served at /api/openapi.json.

- POST /api/v1/token                       username + password -> bearer token
- GET  /api/v1/persons/{person_no}          a person (masked) and their current decision
- GET  /api/v1/persons/{person_no}/evidence the person's evidence timeline
- POST /api/v1/push/certifications          results pushed by the app back end / terminals (HMAC)

A person outside the caller's scope is a 404 with the same body as a person that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.openapi.schema import OpenAPISchema

from zige.accounts.api_tokens import token_issue, token_lifetime
from zige.accounts.masking import mask_id, mask_name, mask_phone
from zige.accounts.scoping import scope_recipients
from zige.api.auth import BearerAuth, api_login, client_ip
from zige.api.schemas import (
    DecisionOut,
    ErrorOut,
    EvidenceOut,
    PersonOut,
    PushItemIn,
    PushOut,
    TokenIn,
    TokenOut,
)
from zige.certification.models import Run, RunStatus
from zige.certification.selectors import decision_in_run
from zige.engine.labels import KIND_ZH, REASON_ZH, STATUS_ZH
from zige.feeds.push import PushRefused, PushSignature, max_bytes, max_items, pushed_result_record
from zige.reports.selectors import evidence_visible
from zige.roster.models import BenefitStatus, Recipient


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail


NOT_FOUND = "未找到 / Not found"
UNAUTHENTICATED = "需要有效的访问令牌 / A valid bearer token is required"
# One answer for every refused token request (wrong password, unknown username, locked or
# deactivated account): which usernames exist is never told; the reason is in the audit log.
BAD_CREDENTIALS = (
    "用户名或密码错误，或账户已被暂时锁定 / "
    "Incorrect username or password, or the account is locked for a while"
)

DEVICE_SIGNATURE_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Zige-Signature",
    "description": (
        'hex(HMAC-SHA256(client secret, "{X-Zige-Timestamp}\\n{X-Zige-Nonce}\\n{hex(SHA-256(body))}")), '
        "sent with X-Zige-Client, X-Zige-Timestamp and X-Zige-Nonce"
    ),
}


class ZigeAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemes = schema["components"].setdefault("securitySchemes", {})
        schemes["ZigeDeviceSignature"] = DEVICE_SIGNATURE_SCHEME
        return schema


api = ZigeAPI(
    title="zige 资格认证 API",
    version="1",
    description=(
        "Pension-recipient eligibility certification. Staff authenticate with a bearer token from "
        "`POST /api/v1/token`; the phone app's back end and terminal devices sign their pushes with "
        "HMAC-SHA256 (see `POST /api/v1/push/certifications`)."
    ),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url=None,  # no Swagger UI: it loads assets from a CDN, which the site's CSP forbids
    auth=BearerAuth(),
)


def _error(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "code": code}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.detail)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, "unauthenticated", UNAUTHENTICATED)
    response["WWW-Authenticate"] = 'Bearer realm="zige"'
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", NOT_FOUND)


@api.exception_handler(PushRefused)
def _push_refused(request: HttpRequest, exc: PushRefused) -> HttpResponse:
    return _error(request, exc.status, exc.reason, exc.message)


# --- token -------------------------------------------------------------------------------------


@api.post(
    "/v1/token",
    auth=None,
    response={200: TokenOut, 401: ErrorOut},
    tags=["auth"],
    summary="Issue a bearer token",
)
def token_create(request: HttpRequest, body: TokenIn) -> dict[str, Any]:
    """Exchange a username and password for a bearer token (valid for 8 hours by default).

    Failed attempts count towards the same lockout as the login page. Every refusal is the same
    401 `bad_credentials`, a locked account's too, so that the answer never tells whether a
    username exists."""
    outcome = api_login(request=request, username=body.username, password=body.password)
    user = outcome.user
    if user is None:  # wrong password, unknown, locked or inactive user: one answer for all four
        raise ApiError(401, "bad_credentials", BAD_CREDENTIALS)
    now = timezone.now()
    raw = token_issue(user=user, now=now, ip=client_ip(request))
    return {"token": raw, "token_type": "Bearer", "expires_at": (now + token_lifetime()).isoformat()}


# --- persons -----------------------------------------------------------------------------------


def _person(request: HttpRequest, person_no: str) -> Recipient:
    """The person if the caller may see them; otherwise 404 (existence never confirmed)."""
    user = getattr(request, "auth", None)  # set by BearerAuth
    person: Recipient | None = (
        scope_recipients(Recipient.objects.select_related("unit"), user).filter(person_no=person_no).first()
    )
    if person is None:
        raise ApiError(404, "not_found", NOT_FOUND)
    return person


def _current_decision(person: Recipient) -> dict[str, Any] | None:
    """The person's decision in the latest succeeded run (latest as-of date, then newest run)."""
    run = Run.objects.filter(status=RunStatus.SUCCEEDED).order_by("-as_of", "-pk").first()
    if run is None:
        return None
    decision = decision_in_run(run=run, recipient=person)  # an archived run's from its copy
    if decision is None:
        return None
    return {
        "run_id": run.pk,
        "as_of": run.as_of,
        "status": decision.status,
        "status_label": STATUS_ZH.get(decision.status, decision.status),
        "reason": decision.reason,
        "reason_label": REASON_ZH.get(decision.reason) or KIND_ZH.get(decision.reason) or decision.reason,
        "evidence_kind": decision.evidence_kind,
        "evidence_date": decision.evidence_date,
        "certified_on": decision.certified_on,
        "due_on": decision.due_on,
        "remind": decision.remind,
        "channel": decision.channel,
        "action": decision.action,
        "effective_month": decision.effective_month,
        "months": decision.months,
        "amount": None if decision.amount is None else f"{decision.amount:.2f}",
    }


@api.get(
    "/v1/persons/{person_no}",
    response={200: PersonOut, 401: ErrorOut, 404: ErrorOut},
    tags=["persons"],
    summary="A person (masked) and their current decision",
)
def person_detail(request: HttpRequest, person_no: str) -> dict[str, Any]:
    """The person with masked name, ID and phone numbers, and their decision in the latest run."""
    person = _person(request, person_no)
    decision = _current_decision(person)
    return {
        "person_no": person.person_no,
        "name": mask_name(person.name),
        "id_number": mask_id(person.id_number),
        "phone": mask_phone(person.phone),
        "mobile": mask_phone(person.mobile),
        "unit": {"unit_no": person.unit.unit_no, "name": person.unit.name},
        "benefit_status": person.benefit_status,
        "benefit_status_label": BenefitStatus(person.benefit_status).label
        if person.benefit_status in BenefitStatus.values
        else person.benefit_status,
        "decision": DecisionOut(**decision) if decision else None,
    }


@api.get(
    "/v1/persons/{person_no}/evidence",
    response={200: list[EvidenceOut], 401: ErrorOut, 404: ErrorOut},
    tags=["persons"],
    summary="A person's evidence timeline",
)
def person_evidence(request: HttpRequest, person_no: str) -> list[dict[str, Any]]:
    """The person's evidence records (agency feeds and pushed results), newest first, as the
    person page shows them to the caller: a unit operator never gets the bureau's 疑点核查
    findings (`reports.selectors.evidence_visible`; docs/security.md)."""
    person = _person(request, person_no)
    return evidence_visible(person, getattr(request, "auth", None))


# --- pushed results ----------------------------------------------------------------------------

_PUSH_BODY_SCHEMA = {
    "type": "array",
    "maxItems": max_items(),
    "items": PushItemIn.model_json_schema(),
}
_PUSH_HEADERS = [
    {"in": "header", "name": name, "required": True, "schema": {"type": "string"}, "description": text}
    for name, text in (
        ("X-Zige-Client", "the device client id"),
        ("X-Zige-Timestamp", "unix seconds, within 5 minutes of the server clock"),
        ("X-Zige-Nonce", "8-48 characters of A-Z a-z 0-9 _ -, never reused"),
        ("X-Zige-Signature", "hex HMAC-SHA256 (see the operation's description)"),
    )
]


@api.post(
    "/v1/push/certifications",
    auth=None,
    response={200: PushOut, 400: ErrorOut, 401: ErrorOut, 409: ErrorOut, 413: ErrorOut},
    tags=["push"],
    summary="Push certification results (app back end, terminals)",
    openapi_extra={
        "parameters": _PUSH_HEADERS,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _PUSH_BODY_SCHEMA}}},
        "security": [{"ZigeDeviceSignature": []}],
    },
)
def push_certifications(request: HttpRequest) -> dict[str, Any]:
    """Store face / finger-vein certification results as evidence for the next run.

    Sign with the client's secret: `X-Zige-Signature = hex(HMAC-SHA256(secret,
    "{X-Zige-Timestamp}\\n{X-Zige-Nonce}\\n{hex(SHA-256(body))}"))`. The timestamp (unix seconds)
    must be within 5 minutes of the server's clock and the nonce (8-48 of `A-Z a-z 0-9 _ -`) never
    reused. The body is a JSON array of at most 1000 results; each invalid item is reported by its
    index and a reason code, the valid ones are stored.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_bytes():
        raise PushRefused(413, "body_too_large")
    headers = request.headers
    outcome = pushed_result_record(
        client=headers.get("X-Zige-Client", "").strip(),
        payload=request.body,
        signature=PushSignature(
            timestamp=headers.get("X-Zige-Timestamp", "").strip(),
            nonce=headers.get("X-Zige-Nonce", "").strip(),
            signature=headers.get("X-Zige-Signature", "").strip(),
        ),
        now=timezone.now(),
        ip=client_ip(request),
    )
    return {
        "accepted": outcome.accepted,
        "rejected": [{"index": r.index, "field": r.field, "reason": r.reason} for r in outcome.rejected],
    }
