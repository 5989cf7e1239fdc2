"""One stop and one suspension on its way (proposed, approved, exported) per person, whatever its
month (rules §8.6, docs/payments.md §1): two paths proposing a stop for one death with different
months would otherwise both be approved, exported and recovered.

A database that already holds two such actions for one person cannot take the constraint: the
migration stops and names them, for an officer to reject, withdraw or reverse the wrong one
(`zige.benefits.services`) before migrating again. Nothing is decided here on their behalf.
Reversible: the constraint is dropped.
"""

from django.db import migrations, models
from django.db.models import Count


def refuse_duplicates(apps, schema_editor):
    PaymentAction = apps.get_model("benefits", "PaymentAction")
    doubled = (
        PaymentAction.objects.filter(
            kind__in=["stop", "suspend"], state__in=["proposed", "approved", "exported"], reverses__isnull=True
        )
        .values("recipient_id", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems = []
    for row in doubled[:50]:
        ids = PaymentAction.objects.filter(
            recipient_id=row["recipient_id"], kind=row["kind"],
            state__in=["proposed", "approved", "exported"], reverses__isnull=True,
        ).values_list("pk", flat=True)  # fmt: skip
        problems.append(f"recipient {row['recipient_id']} {row['kind']}: actions {sorted(ids)}")
    if problems:
        raise RuntimeError(
            "two or more stops or suspensions on their way for one person; reject, withdraw or reverse "
            "the wrong ones, then migrate again:\n" + "\n".join(problems)
        )


class Migration(migrations.Migration):
    dependencies = [("benefits", "0002_run_proposals_proposer")]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="paymentaction",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("kind__in", ["stop", "suspend"]),
                    ("reverses__isnull", True),
                    ("state__in", ["proposed", "approved", "exported"]),
                ),
                fields=("recipient", "kind"),
                name="one_open_stop_or_suspend_per_person",
            ),
        ),
    ]
