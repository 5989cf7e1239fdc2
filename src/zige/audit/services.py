"""Writing and verifying the audit log.

Every state change calls `audit_record` inside the same transaction as the change, so a change
and its audit row commit or roll back together. Each row's hash covers its content and the
previous row's hash (a chain); `audit_verify` recomputes the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from zige.audit.models import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 7_262_018  # PostgreSQL advisory lock serialising appends to the chain


def _json_safe(value: Any) -> Any:
    """The value as it will come back from the JSON column (Decimals and dates as text)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _digest(*, prev_hash: str, at: datetime, actor: str, actor_role: str, action: str, target_type: str,
            target_id: str, before: Any, after: Any, ip: str) -> str:  # fmt: skip
    payload = {
        "prev": prev_hash,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "role": actor_role,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "before": before,
        "after": after,
        "ip": ip,
    }
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def audit_record(
    *,
    actor: Any = None,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    before: Any = None,
    after: Any = None,
    ip: str = "",
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        last = AuditEvent.objects.order_by("-seq").values_list("hash", flat=True).first()
        prev_hash = last or GENESIS
        moment = at or timezone.now()
        username = getattr(actor, "username", "") if actor is not None else ""
        role = getattr(actor, "role", "") if actor is not None else ""
        fields = {
            "at": moment,
            "actor": username or "",
            "actor_role": role or "",
            "action": action,
            "target_type": target_type,
            "target_id": str(target_id),
            "before": _json_safe(before),
            "after": _json_safe(after),
            "ip": ip,
        }
        digest = _digest(prev_hash=prev_hash, **fields)
        return AuditEvent.objects.create(prev_hash=prev_hash, hash=digest, **fields)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str = ""


def _events() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("seq").iterator(chunk_size=5000)


def audit_verify() -> ChainReport:
    """Recompute the chain: an edited row, a deleted row or a reordered row is found.

    Rows cut from the end, or every row, leave a consistent chain (an empty log verifies): only
    a head recorded elsewhere (`zige audit verify --anchor`) tells such a log from one that never
    had them. The id sequence is no witness (a rolled-back audited change uses a number too)."""
    prev_hash = GENESIS
    count = 0
    for event in _events():
        count += 1
        if event.prev_hash != prev_hash:
            return ChainReport(
                False, count, event.seq, "previous-hash link broken (a row was removed or inserted)"
            )
        expected = _digest(
            prev_hash=event.prev_hash, at=event.at, actor=event.actor, actor_role=event.actor_role,
            action=event.action, target_type=event.target_type, target_id=event.target_id,
            before=event.before, after=event.after, ip=event.ip,
        )  # fmt: skip
        if expected != event.hash:
            return ChainReport(
                False, count, event.seq, "content does not match its hash (the row was edited)"
            )
        prev_hash = event.hash
    return ChainReport(True, count)
