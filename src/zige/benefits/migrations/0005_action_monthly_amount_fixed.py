"""The 月养老金 an action's figures were calculated from is kept with the action
(`PaymentAction.monthly_amount`, `monthly_fixed`), so that its page's calculation (months × that
pension) stays what the proposer and the checker saw when the person's pension changes later.

Backfill, per existing action: the person's 月养老金 in force when it was proposed, read from the
roster's change history (`roster.RecipientChange`, field `monthly_amount`; no change since: the
current one). An action without a written reason for other figures (`figures_note`) had
`amount = months × 月养老金` (rules §5) when its figures were set; a later run or finding may
have revised them, so the pension in force at the proposal, then each later one, is tried in turn,
and the first that gives the action's amount is kept. An officer's action with a written reason
(never revised) keeps the pension in force at its proposal. A reversal takes its original's. An
action none of these explain stays unfixed: its page estimates from the current pension and says
so (按当前月养老金估算). Reversible: going back drops the two fields.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import migrations, models

FEN = Decimal("0.01")
CHUNK = 500  # ids per IN list (SQLite's bound-parameter limit)


def _pension(text):
    """A RecipientChange value as a Decimal; None for an empty one; False when unreadable."""
    if not (text or "").strip():
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return False


def _amount(months, monthly):
    return (Decimal(months) * (monthly or Decimal(0))).quantize(FEN, rounding=ROUND_HALF_UP)


def _candidates(changes, current, at):
    """The pension in force at `at`, then each one it changed to after `at`, in order."""
    before = [c for c in changes if c[0] <= at]
    after = [c for c in changes if c[0] > at]
    if before:
        first = before[-1][2]
    elif after:
        first = after[0][1]
    else:
        first = current
    values = [first, *(new for _, _, new in after)]
    seen, ordered = set(), []
    for value in values:
        if value is not False and value not in seen:
            seen.add(value)
            ordered.append(value)
    return ordered, first


def forward(apps, schema_editor):
    PaymentAction = apps.get_model("benefits", "PaymentAction")
    Recipient = apps.get_model("roster", "Recipient")
    RecipientChange = apps.get_model("roster", "RecipientChange")
    rows = list(
        PaymentAction.objects.filter(monthly_fixed=False)
        .order_by("pk")
        .values_list("pk", "recipient_id", "months", "amount", "figures_note", "proposed_at", "reverses_id")
    )
    if not rows:
        return
    people = sorted({r[1] for r in rows})
    current, changes = {}, {}
    for start in range(0, len(people), CHUNK):
        chunk = people[start : start + CHUNK]
        current.update(Recipient.objects.filter(pk__in=chunk).values_list("pk", "monthly_amount"))
        for rid, at, old, new in (
            RecipientChange.objects.filter(recipient_id__in=chunk, field="monthly_amount")
            .order_by("recipient_id", "changed_at", "pk")
            .values_list("recipient_id", "changed_at", "old_value", "new_value")
        ):
            changes.setdefault(rid, []).append((at, _pension(old), _pension(new)))
    fixed = dict(
        PaymentAction.objects.filter(monthly_fixed=True).values_list("pk", "monthly_amount")
    )  # originals fixed before (a reversal takes its original's)
    updates = []
    for pk, rid, months, amount, note, at, reverses in rows:
        if reverses is not None:
            if reverses not in fixed:
                continue
            value = fixed[reverses]
        else:
            ordered, first = _candidates(changes.get(rid, []), current.get(rid), at)
            if note.strip() or months is None or amount is None:
                if first is False:
                    continue
                value = first
            else:
                matching = [v for v in ordered if _amount(months, v) == amount]
                if not matching:
                    continue
                value = matching[0]
        fixed[pk] = value
        updates.append(PaymentAction(pk=pk, monthly_amount=value, monthly_fixed=True))
    PaymentAction.objects.bulk_update(updates, ["monthly_amount", "monthly_fixed"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('benefits', '0004_action_figures_note'),
        ('roster', '0002_recipient_name_prefix_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='paymentaction',
            name='monthly_amount',
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True),
        ),
        migrations.AddField(
            model_name='paymentaction',
            name='monthly_fixed',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
