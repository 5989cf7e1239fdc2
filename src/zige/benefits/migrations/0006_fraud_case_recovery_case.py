"""A fraud case (冒领) stores the recovery case (追回) of the death it is about
(`FraudCase.recovery_case`), instead of the pages and the report finding it by person.

Backfill, per existing fraud case, by the rule the pages used until now (the person's recovery
cases), narrowed to one case as the services now choose it: the person's latest recovery case not
cancelled that opened at or before the fraud case (the one live when it was opened), else the
first not cancelled that opened after it (the one that would have taken it when it opened). A
person with no recovery case, or only cancelled ones, keeps none. Reversible: going back drops
the field.
"""

import django.db.models.deletion
from django.db import migrations, models


def forward(apps, schema_editor):
    FraudCase = apps.get_model("benefits", "FraudCase")
    RecoveryCase = apps.get_model("benefits", "RecoveryCase")
    for fraud in FraudCase.objects.filter(recovery_case__isnull=True).order_by("pk").iterator():
        live = RecoveryCase.objects.filter(recipient_id=fraud.recipient_id).exclude(status="cancelled")
        match = (
            live.filter(opened_at__lte=fraud.opened_at).order_by("-opened_at", "-pk").first()
            or live.filter(opened_at__gt=fraud.opened_at).order_by("opened_at", "pk").first()
        )
        if match is not None:
            FraudCase.objects.filter(pk=fraud.pk).update(recovery_case_id=match.pk)


class Migration(migrations.Migration):
    dependencies = [
        ("benefits", "0005_action_monthly_amount_fixed"),
    ]

    operations = [
        migrations.AddField(
            model_name="fraudcase",
            name="recovery_case",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="fraud_cases",
                to="benefits.recoverycase",
            ),
        ),
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
