"""Messages that earlier unit moves left with the old unit go to the person's unit now.

Until commit 1404fd0 a roster import that moved a person to another unit moved their
verification tasks but not their messages: an unsent reminder (a queued or retrying SMS, with the
old unit's phone in its text) or a notice on the unit's notice list (`listed`) kept naming the old
unit. The notice list already reads the people in the unit now (`selectors.unit_notices`), but
the stored unit, and the text, stayed wrong. This does once, for every such message, what
`services.messages_reassign` does at an import: the messages not gone out yet (queued, retrying,
listed) whose unit is not their person's current one get that unit and their text written again
for it (a template that does not render keeps the text), audited `messages.reassigned` (target
this migration: how many, and each message's old and new unit). A message sent, delivered,
failed, undelivered, in flight or cancelled is history and stays as it is.

Reverse: nothing. The old filing was wrong (the old unit was shown a person it no longer has,
and the new unit never saw the notice); putting it back would only bring the defect back, and
which rows were re-filed is in the audit event.
"""

from typing import Any

from django.db import migrations
from django.db.models import F

# services.UNSENT_STATUSES, as they were when this migration was written.
UNSENT = ("queued", "retrying", "listed")
# content.REASON_NO_MOBILE / REASON_SMS_UNDELIVERABLE and models.Message.notice_reason, copied:
# a migration gets historical models (apps.get_model), which have no properties or methods.
REASON_NO_MOBILE = "本人无手机号码"
REASON_SMS_UNDELIVERABLE = "发给本人手机的短信无法送达"
TARGET = "notifications.0005_refile_movers_messages"
_LOCK_KEY = 7_262_018  # zige.audit.services._LOCK_KEY: appends to the audit chain are serialised


def _reason(message: Any) -> str:
    reason = (message.params or {}).get("reason")
    if isinstance(reason, str) and reason:
        return reason
    return REASON_SMS_UNDELIVERABLE if (message.last_error or "").startswith("SMS #") else REASON_NO_MOBILE


def _renderer() -> Any:
    """The text as `messages_reassign` writes it: `content.render` with the configured templates
    and app (services.app_for's rule, copied: services itself works on the live models). `render`
    and the two configs are plain Python that touch no model, so they are safe to import here;
    None (keep every text) if they cannot be, e.g. after a later change removed them."""
    try:
        from zige.ledger.config import current as ledger_config
        from zige.notifications.config import current
        from zige.notifications.content import render
    except ImportError:
        return None
    config, home = current(), ledger_config().home_province

    def text(message: Any, person: Any, unit: Any) -> Any:
        remote = person.has_social_card == "no" and person.id_number and not person.id_number.startswith(home)
        try:
            return render(
                config, kind=message.kind, channel=message.channel, name=person.name, due_on=message.due_on,
                person_no=person.person_no, unit_phone=unit.phone or "",
                app=config.remote_app_name if remote else config.app_name, reason=_reason(message),
            )  # fmt: skip
        except (ValueError, TypeError):  # TemplateError (a ValueError), or a later signature
            return None

    return text


def _audit(apps: Any, schema_editor: Any, *, after: dict[str, Any]) -> None:
    """One `messages.reassigned` event, appended to the chain as `audit_record` does; its hash is
    `audit.services._digest` (imported: `zige audit verify` recomputes the chain with it)."""
    from django.utils import timezone

    from zige.audit.services import GENESIS, _digest, _json_safe

    event_model = apps.get_model("audit", "AuditEvent")
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    prev_hash = event_model.objects.order_by("-seq").values_list("hash", flat=True).first() or GENESIS
    fields = {
        "at": timezone.now(), "actor": "", "actor_role": "", "action": "messages.reassigned",
        "target_type": "migration", "target_id": TARGET, "before": None, "after": _json_safe(after), "ip": "",
    }  # fmt: skip
    event_model.objects.create(prev_hash=prev_hash, hash=_digest(prev_hash=prev_hash, **fields), **fields)


def refile(apps: Any, schema_editor: Any) -> None:
    message_model = apps.get_model("notifications", "Message")
    stale = (
        message_model.objects.filter(recipient__isnull=False, status__in=UNSENT)
        .exclude(unit_id=F("recipient__unit_id"))
        .select_related("unit", "recipient__unit")
        .order_by("pk")
    )
    if not stale.exists():
        return
    text = _renderer()
    units: dict[str, dict[str, str]] = {}
    people: set[int] = set()
    for message in stale.iterator():
        person = message.recipient
        units[str(message.pk)] = {"from": message.unit.unit_no, "to": person.unit.unit_no}
        people.add(person.pk)
        message.unit_id = person.unit_id
        rendered = text(message, person, person.unit) if text is not None else None
        if rendered is not None:
            message.text, message.params, message.segments = rendered.text, rendered.params, rendered.segments
        message.save(update_fields=["unit", "text", "params", "segments"])
    _audit(apps, schema_editor, after={"messages": len(units), "units": units, "movers": len(people)})


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_no_truncate_trigger"),
        ("notifications", "0004_status_known"),
        ("roster", "0002_recipient_name_prefix_index"),
    ]

    operations = [
        # Reverse: nothing to undo (see the module's docstring): the old filing was wrong.
        migrations.RunPython(refile, migrations.RunPython.noop),
    ]
