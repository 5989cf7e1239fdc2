"""Reads of the roll: units, recipients and the history of their fields, scoped to the user."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404

from zige.accounts.scoping import scope_by_unit_field, scope_recipients, scope_units
from zige.ids import clean_id, upgrade_15_to_18
from zige.roster.models import Recipient, RecipientChange, Unit

# A typed ID number: 18 characters (the last may be X) or the old 15 digits.
ID_RE = re.compile(r"^(\d{17}[\dX]|\d{15})$")


def normalise_query(q: str) -> str:
    """Search text as staff type it: no spaces; full-width digits made ASCII."""
    text = (q or "").translate({0xFF10 + i: ord("0") + i for i in range(10)})
    return re.sub(r"\s+", "", text)


def id_candidates(text: str) -> set[str] | None:
    """The stored forms of a typed ID number (15-digit numbers are stored upgraded), or None."""
    cleaned = clean_id(text)
    if not ID_RE.match(cleaned):
        return None
    return {cleaned, upgrade_15_to_18(cleaned)} if len(cleaned) == 15 else {cleaned}


def name_prefix(text: str) -> Q:
    """Names that start with `text`, as a condition the index on `name` answers.

    PostgreSQL answers LIKE 'text%' from that index (varchar_pattern_ops, in any collation).
    SQLite's LIKE ignores the case of ASCII letters and so never uses an index: a scan of the whole
    roll (0.2 s at 500,000 people). There the same names are also bounded as a range of strings,
    [text, text with its last character incremented), which the index answers: only when `text`
    has no ASCII letter, where LIKE and the range select exactly the same names.
    """
    q = Q(name__startswith=text)
    if connection.vendor == "sqlite" and text and not re.search(r"[A-Za-z]", text):
        following = ord(text[-1]) + 1
        if 0xD800 <= following <= 0xDFFF:  # no string holds a lone surrogate
            following = 0xE000
        if following <= 0x10FFFF:
            q &= Q(name__gte=text, name__lt=text[:-1] + chr(following))
    return q


def person_matches(q: str, *, path: str = "") -> Q:
    """The people a list's one search box (个人编号 / 身份证号 / 姓名) names, as the roll's search
    reads it (`normalise_query`): the 个人编号, the 身份证号 whole (`id_candidates`: a lower-case
    x, a 15-digit number), or the start of the name (`name_prefix`). `path`: the way from the
    listed rows to the person (`"recipient__"`): then the people are a subquery of the roll,
    where each condition has its index, rather than an OR across the join, which none answers
    (a person's tasks out of 40,000: 205 ms alone at 500,000 people, measured). Nothing when
    the text is empty."""
    text = normalise_query(q)
    if not text:
        return Q(pk__in=[])
    people = Q(person_no=text) | name_prefix(text)
    if ids := id_candidates(text):
        people |= Q(id_number__in=ids)
    if not path:
        return people
    return Q(**{f"{path}in": Recipient.objects.filter(people).values("pk")})


def units_list(*, user: Any) -> QuerySet[Unit]:
    return scope_units(Unit.objects.all(), user).order_by("unit_no")


def unit_get(*, user: Any, unit_id: int) -> Unit:
    try:
        unit: Unit = scope_units(Unit.objects.all(), user).get(pk=unit_id)
    except Unit.DoesNotExist:
        raise Http404("no such unit") from None
    return unit


def recipients_list(
    *, user: Any, unit: Unit | None = None, q: str = "", benefit_status: str = ""
) -> QuerySet[Recipient]:
    """Recipients the user may see, by person_no; `q` matches 个人编号 or 身份证号 exactly, or the name."""
    recipients = scope_recipients(Recipient.objects.select_related("unit"), user)
    if unit is not None:
        recipients = recipients.filter(unit=unit)
    if benefit_status:
        recipients = recipients.filter(benefit_status=benefit_status)
    if q := q.strip():
        recipients = recipients.filter(
            Q(person_no=q) | Q(id_number=q.upper()) | Q(name__contains=q.replace(" ", ""))
        )
    return recipients.order_by("person_no")


def recipient_get(*, user: Any, recipient_id: int) -> Recipient:
    """One recipient, or 404 when it does not exist or the user may not see it."""
    try:
        recipient: Recipient = scope_recipients(Recipient.objects.select_related("unit"), user).get(
            pk=recipient_id
        )
    except Recipient.DoesNotExist:
        raise Http404("no such recipient") from None
    return recipient


def recipient_history(*, user: Any, recipient: Recipient) -> QuerySet[RecipientChange]:
    """Every recorded change of the recipient's roster fields, newest first.

    Values are text; for `unit_id` they are the units' 单位编号.
    """
    changes = RecipientChange.objects.filter(recipient=recipient).select_related("batch")
    return scope_by_unit_field(changes, user, "recipient__unit_id").order_by("-changed_at", "-pk")


@dataclass(frozen=True, kw_only=True)
class StatusAt:
    """The roster's 待遇状态, 状态变更日期 and 停发原因 of a person as they stood at some moment."""

    benefit_status: str
    status_since: date | None
    status_reason: str


def status_at(*, recipient: Recipient, at: datetime) -> StatusAt:
    """The person's 待遇状态, 状态变更日期 and 停发原因 as the roster said at `at`, from the history
    of their fields (`RecipientChange`): a field changed by an import after `at` had the old value
    of the first such change; one not changed since has its current value. Not scoped: for a
    page that already shows the person (e.g. the figures of a payment action proposed then)."""
    fields = ("benefit_status", "status_since", "status_reason")
    values: dict[str, str] = {
        "benefit_status": recipient.benefit_status,
        "status_since": recipient.status_since.isoformat() if recipient.status_since else "",
        "status_reason": recipient.status_reason,
    }
    later = (
        RecipientChange.objects.filter(recipient=recipient, field__in=fields, changed_at__gt=at)
        .order_by("-changed_at", "-pk")
        .values_list("field", "old_value")
    )
    for field, old in later:  # newest first: the first change after `at` is applied last
        values[field] = old
    since = values["status_since"].strip()
    return StatusAt(
        benefit_status=values["benefit_status"],
        status_since=date.fromisoformat(since[:10]) if since else None,
        status_reason=values["status_reason"],
    )
