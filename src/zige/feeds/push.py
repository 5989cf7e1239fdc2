"""Certification results pushed by the phone app's back end and by terminal devices.

A push is a JSON list of results, signed by its device client:

    X-Zige-Client:    the client id
    X-Zige-Timestamp: unix seconds, within `ZIGE_PUSH_MAX_SKEW_SECONDS` (300) of the server clock
    X-Zige-Nonce:     8-48 characters of [A-Za-z0-9_-], never reused
    X-Zige-Signature: hex(HMAC-SHA256(secret, f"{timestamp}\\n{nonce}\\n{sha256(body).hexdigest()}"))

`pushed_result_record` checks the signature, validates each item and stores the valid ones as
`PushedResult` rows (evidence for the next run), all in one transaction with the audit event
`push.received`. A refused request raises `PushRefused` (its HTTP status and reason code) and is
audited as `push.refused`.

Each stored row's `nonce` is `"{nonce}:{index}"`, so a replayed request collides with the unique
constraint on `PushedResult.nonce` (HTTP 409). A request none of whose items was valid stores no
row, so its replay is not detected — and stores nothing either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from zige.accounts.models import DeviceClient
from zige.audit.services import audit_record
from zige.engine.sql import FAIL_VALUES, PASS_VALUES
from zige.feeds.models import PushedResult
from zige.ids import IdError, normalise_id

DEFAULT_MAX_ITEMS = 1000
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_SKEW_SECONDS = 300

NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,48}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_PASS = frozenset(PASS_VALUES)
_FAIL = frozenset(FAIL_VALUES)


def max_items() -> int:
    return int(getattr(settings, "ZIGE_PUSH_MAX_ITEMS", DEFAULT_MAX_ITEMS))


def max_bytes() -> int:
    return int(getattr(settings, "ZIGE_PUSH_MAX_BYTES", DEFAULT_MAX_BYTES))


def max_skew() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "ZIGE_PUSH_MAX_SKEW_SECONDS", DEFAULT_MAX_SKEW_SECONDS)))


@dataclass(frozen=True)
class PushSignature:
    """The signing headers of a push request (values as received, possibly empty)."""

    timestamp: str
    nonce: str
    signature: str


class PushRefused(Exception):
    """The whole request is refused: `status` is the HTTP status, `reason` a stable code."""

    MESSAGES = {
        "missing_headers": "缺少签名请求头 / Signature headers missing",
        "stale_timestamp": "请求时间戳超出允许范围 / Timestamp outside the allowed window",
        "bad_nonce": "随机数格式错误 / Malformed nonce",
        "unknown_client": "客户端未登记或已停用 / Unknown or inactive client",
        "bad_signature": "签名错误 / Bad signature",
        "body_too_large": "请求体过大 / Request body too large",
        "too_many_items": "单次推送条目过多 / Too many items in one push",
        "bad_json": "请求体不是合法的JSON / Body is not valid JSON",
        "not_a_list": "请求体应为JSON数组 / Body must be a JSON array",
        "replayed_nonce": "重复的请求（随机数已使用）/ Replayed request (nonce already used)",
    }

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    @property
    def message(self) -> str:
        return self.MESSAGES.get(self.reason, self.reason)


@dataclass(frozen=True)
class ItemRejected:
    index: int
    field: str
    reason: str


@dataclass
class PushOutcome:
    accepted: int = 0
    rejected: list[ItemRejected] = field(default_factory=list)


def signature_compute(*, secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The hex signature a client sends for `body` (also used by the tests and client examples)."""
    message = f"{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def _device_actor(client_id: str) -> SimpleNamespace:
    return SimpleNamespace(username=f"device:{client_id[:64]}", role="device")


def _refuse(*, status: int, reason: str, client_id: str, nonce: str, ip: str, now: datetime) -> PushRefused:
    """Audit the refusal (in its own transaction) and return the exception to raise."""
    with transaction.atomic():
        audit_record(
            actor=_device_actor(client_id),
            action="push.refused",
            target_type="accounts.DeviceClient",
            target_id=client_id[:128],
            after={"reason": reason, "nonce": nonce[:64]},
            ip=ip,
            at=now,
        )
    return PushRefused(status, reason)


def _verify(*, client_id: str, body: bytes, signature: PushSignature, now: datetime, ip: str) -> DeviceClient:
    def refuse(status: int, reason: str) -> PushRefused:
        return _refuse(
            status=status, reason=reason, client_id=client_id, nonce=signature.nonce, ip=ip, now=now
        )

    if not (client_id and signature.timestamp and signature.nonce and signature.signature):
        raise refuse(401, "missing_headers")
    if not signature.timestamp.isdigit() or len(signature.timestamp) > 12:
        raise refuse(401, "stale_timestamp")
    if abs(now.timestamp() - int(signature.timestamp)) > max_skew().total_seconds():
        raise refuse(401, "stale_timestamp")
    if not NONCE_RE.fullmatch(signature.nonce):
        raise refuse(401, "bad_nonce")
    client = DeviceClient.objects.filter(client_id=client_id, active=True).first()
    if client is None:
        raise refuse(401, "unknown_client")
    if len(body) > max_bytes():
        raise refuse(413, "body_too_large")
    expected = signature_compute(
        secret=client.secret, timestamp=signature.timestamp, nonce=signature.nonce, body=body
    )
    given = signature.signature.strip().lower()
    # Constant-time comparison; a non-hex or wrong-length value is compared against itself so the
    # time taken does not depend on where it differs.
    well_formed = bool(_HEX64.fullmatch(given))
    matches = hmac.compare_digest(
        expected.encode("ascii"), (given if well_formed else expected).encode("ascii")
    )
    if not (well_formed and matches):
        raise refuse(401, "bad_signature")
    return client


def _nonce_used(nonce: str) -> bool:
    """Whether an earlier request with this nonce stored results. (SQLite's LIKE ignores case, so
    the prefix is compared again in Python.)"""
    prefix = f"{nonce}:"
    stored = PushedResult.objects.filter(nonce__startswith=prefix).values_list("nonce", flat=True)
    return any(value.startswith(prefix) for value in stored)


class _Replayed(Exception):
    """The nonce was used by an earlier request."""


class ItemError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _text(item: dict[str, Any], key: str, *, max_length: int, required: bool) -> str:
    value = item.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ItemError(key, "missing_value")
        return ""
    if not isinstance(value, str):
        raise ItemError(key, "bad_value")
    value = value.strip()
    if len(value) > max_length:
        raise ItemError(key, "too_long")
    return value


def _auth_time(raw: Any, *, now: datetime) -> datetime:
    if raw is None or raw == "":
        raise ItemError("auth_time", "missing_value")
    if not isinstance(raw, str):
        raise ItemError("auth_time", "bad_datetime")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ItemError("auth_time", "bad_datetime") from None
    if timezone.is_naive(moment):  # a device's local time (the bureau's time zone)
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    if moment > now + max_skew():
        raise ItemError("auth_time", "future_datetime")
    return moment


def _result(raw: Any) -> str:
    if raw is None or raw == "":
        raise ItemError("result", "missing_value")
    if isinstance(raw, bool):
        value = "true" if raw else "false"
    elif isinstance(raw, str | int):
        value = str(raw).strip().lower()
    else:
        raise ItemError("result", "bad_result")
    if value in _PASS:
        return "pass"
    if value in _FAIL:
        return "fail"
    raise ItemError("result", "bad_result")


def _similarity(raw: Any) -> str:
    if raw is None or raw == "":
        return ""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ItemError("similarity", "bad_similarity")
    text = str(raw).strip()
    try:
        number = float(text)
    except ValueError:
        raise ItemError("similarity", "bad_similarity") from None
    if not math.isfinite(number) or number < 0 or len(text) > 16:
        raise ItemError("similarity", "bad_similarity")
    return text


def _item_row(item: Any, *, client: DeviceClient, nonce: str, now: datetime) -> PushedResult:
    if not isinstance(item, dict):
        raise ItemError("", "not_an_object")
    raw_id = item.get("id_number")
    if raw_id is not None and not isinstance(raw_id, str):
        raise ItemError("id_number", "bad_id_format")
    try:
        id_number = normalise_id(raw_id, as_of=timezone.localtime(now).date())
    except IdError as exc:
        raise ItemError("id_number", exc.reason) from None
    return PushedResult(
        client=client,
        kind=client.kind,
        id_number=id_number,
        name=_text(item, "name", max_length=100, required=True),
        auth_time=_auth_time(item.get("auth_time"), now=now),
        result=_result(item.get("result")),
        method=_text(item, "method", max_length=32, required=False),
        device_no=_text(item, "device_no", max_length=64, required=False),
        similarity=_similarity(item.get("similarity")),
        nonce=nonce,
        received_at=now,
    )


def pushed_result_record(
    *, client: str, payload: bytes, signature: PushSignature, now: datetime, ip: str = ""
) -> PushOutcome:
    """Verify, validate and store one push from the client named `client` (its client id).

    Raises `PushRefused` for a refused request (nothing stored); otherwise returns how many
    items were stored and which were rejected (index, field, reason code).
    """
    device = _verify(client_id=client, body=payload, signature=signature, now=now, ip=ip)
    nonce = signature.nonce

    def refuse(status: int, reason: str) -> PushRefused:
        return _refuse(status=status, reason=reason, client_id=client, nonce=nonce, ip=ip, now=now)

    try:
        items = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise refuse(400, "bad_json") from None
    if not isinstance(items, list):
        raise refuse(400, "not_a_list")
    if len(items) > max_items():
        raise refuse(413, "too_many_items")

    outcome = PushOutcome()
    rows: list[PushedResult] = []
    for index, item in enumerate(items):
        try:
            rows.append(_item_row(item, client=device, nonce=f"{nonce}:{index}", now=now))
        except ItemError as exc:
            outcome.rejected.append(ItemRejected(index, exc.field, exc.reason))
    outcome.accepted = len(rows)

    try:
        with transaction.atomic():
            if _nonce_used(nonce):
                raise _Replayed
            PushedResult.objects.bulk_create(rows)
            audit_record(
                actor=_device_actor(device.client_id),
                action="push.received",
                target_type="accounts.DeviceClient",
                target_id=device.client_id,
                after={
                    "kind": device.kind,
                    "nonce": nonce,
                    "items": len(items),
                    "accepted": outcome.accepted,
                    "rejected": len(outcome.rejected),
                    "reasons": dict(sorted(Counter(r.reason for r in outcome.rejected).items())),
                },
                ip=ip,
                at=now,
            )
    except _Replayed:
        raise refuse(409, "replayed_nonce") from None
    except IntegrityError:
        if _nonce_used(nonce):  # the same request stored concurrently: the unique constraint refused it
            raise refuse(409, "replayed_nonce") from None
        raise
    return outcome
