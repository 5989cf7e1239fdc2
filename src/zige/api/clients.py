"""Device clients: the phone app's back end and terminal devices that push results.

`device_client_create` returns the client and its signing secret; the secret is shown to the
operator once (the CLI prints it) and handed to the device's vendor.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.db import transaction

from zige.accounts.models import DeviceClient
from zige.audit.services import audit_record


def device_client_create(
    *, name: str, kind: str, now: datetime, actor: Any = None, client_id: str = ""
) -> tuple[DeviceClient, str]:
    """A new active client of `kind` (`app_auth` or `terminal_auth`) and its HMAC secret."""
    if kind not in DeviceClient.Kind.values:
        raise ValueError(f"unknown device client kind {kind!r}; expected one of {DeviceClient.Kind.values}")
    name = name.strip()
    if not name:
        raise ValueError("a device client needs a name")
    secret = secrets.token_hex(32)
    with transaction.atomic():
        client = DeviceClient.objects.create(
            client_id=client_id or f"{kind.split('_')[0]}-{secrets.token_hex(8)}",
            name=name,
            kind=kind,
            secret=secret,
            active=True,
            created_at=now,
        )
        audit_record(
            actor=actor,
            action="device_client.created",
            target_type="accounts.DeviceClient",
            target_id=client.client_id,
            after={"name": client.name, "kind": client.kind},
            at=now,
        )
    return client, secret


def device_client_deactivate(*, client: DeviceClient, now: datetime, actor: Any = None) -> DeviceClient:
    """Refuse further pushes from `client` (its stored results stay)."""
    with transaction.atomic():
        DeviceClient.objects.filter(pk=client.pk).update(active=False)
        client.active = False
        audit_record(
            actor=actor,
            action="device_client.deactivated",
            target_type="accounts.DeviceClient",
            target_id=client.client_id,
            before={"active": True},
            after={"active": False},
            at=now,
        )
    return client
