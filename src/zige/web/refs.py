"""The internal references a record keeps to another (`payment_action:12`, `review:34`, …), said
in Chinese for the pages, with a link where the viewer may open the page it names.

The services store such references as short text (`VerificationTask.payment_ref`,
`PaymentAction.source_ref`, `FraudCase.source_ref`); an officer reads "疑点核查 #34", never the
code. Pages of the bureau's records (待遇处理, 冒领案件, 认证批次) are linked only for the roles that
may open them (`zige.reports.pages.RECORDS_ROLES`): a unit operator gets the label alone. A
reference nobody foresaw (a fraud case's lead typed by hand) is shown as it was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

# prefix -> (Chinese label, URL name of the page, whether that page is the bureau's records only)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "payment_action": ("待遇处理", "benefits:action", True),
    "action": ("待遇处理", "benefits:action", True),
    "fraud_case": ("冒领案件", "benefits:fraud", True),
    "review": ("疑点核查", "verification:detail", False),
    "verification": ("单位核实", "verification:detail", False),
    "overdue": ("核实逾期：核实任务", "verification:detail", False),
    "task": ("核实任务", "verification:detail", False),
    "run": ("认证批次", "certification:detail", True),
}
_REF = re.compile(r"^(?P<kind>[a-z_]+):(?P<pk>\d+)(?:-(?P<number>\d+))?$")


@dataclass(frozen=True)
class Ref:
    label: str  # 疑点核查 #34, 单位核实 #56（第 2 次上报）, or the text as written
    url: str  # "" when not linked


def _records_viewer(user: Any) -> bool:
    from zige.reports.pages import RECORDS_ROLES

    return getattr(user, "role", "") in RECORDS_ROLES


def parse(value: str, user: Any = None) -> list[Ref]:
    """The references in `value` (space-separated), each labelled and linked for `user`."""
    refs: list[Ref] = []
    for part in (value or "").split():
        match = _REF.match(part)
        known = _KINDS.get(match["kind"]) if match else None
        if match is None or known is None:
            if part.startswith("manual:"):  # a manual action: the officer who proposed it
                refs.append(Ref(f"人工提出（{part.partition(':')[2]}）", ""))  # the username
            else:
                refs.append(Ref(part, ""))
            continue
        label, url_name, records_only = known
        text = f"{label} #{match['pk']}"
        if match["number"]:
            text += f"（第 {match['number']} 次上报）"
        linked = user is not None and (_records_viewer(user) or not records_only)
        refs.append(Ref(text, reverse(url_name, args=[int(match["pk"])]) if linked else ""))
    return refs


def source_label(source: str, source_label_default: str, ref: str) -> str:
    """The Chinese name of where a payment action came from: a verification-sourced action whose
    reference is a review task came from the bureau's 疑点核查, not from a unit's 单位核实."""
    if source == "verification" and (ref or "").startswith("review:"):
        return "疑点核查"
    return source_label_default


def say_next(request: Any, following: Any, *, url_name: str, none_left: str) -> None:
    """After an officer finishes an item of a queue: a message linking 下一条, the `following`
    item (a record with a `recipient` and a `get_kind_display`; its page is `url_name`), or
    `none_left` when the queue holds nothing more for them."""
    from django.contrib import messages
    from django.utils.html import format_html

    if following is None:
        messages.info(request, none_left)
        return
    messages.info(
        request,
        format_html(
            '<a href="{}" data-testid="next">下一条：#{} {} {}</a>',
            reverse(url_name, args=[following.pk]), following.pk,
            following.recipient.name, following.get_kind_display(),
        ),
    )  # fmt: skip
