"""返还: a recovery case whose stop was reversed after money had been recovered owes that money
back — 待返还 (refund_due) → 返还待复核 (refund_recorded, by one officer: amount, date, reference)
→ 已返还 (refunded, approved by another: `recovery_refund_two_people`) — docs/payments.md §3.

New statuses and fields; no existing row changes. Reversible: going back drops them, and stops,
naming the cases, while any case is in one of the refund states (the old status check would refuse
them; nothing is decided here on the officers' behalf).
"""

import django.db.models.deletion
import django.db.models.expressions
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


REFUND_STATES = ["refund_due", "refund_recorded", "refunded"]


def refuse_refund_cases(apps, schema_editor):
    RecoveryCase = apps.get_model("benefits", "RecoveryCase")
    held = list(RecoveryCase.objects.filter(status__in=REFUND_STATES).values_list("pk", "status")[:50])
    if held:
        raise RuntimeError(
            "recovery cases in a refund state cannot go back to before refunds existed: "
            + ", ".join(f"#{pk} {status}" for pk, status in held)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("benefits", "0006_fraud_case_recovery_case"),
        ("roster", "0002_recipient_name_prefix_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="recoverycase",
            name="recovery_status_known",
        ),
        migrations.AddField(
            model_name="recoverycase",
            name="refund_amount",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True),
        ),
        migrations.AddField(
            model_name="recoverycase",
            name="refund_approved_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="recoverycase",
            name="refund_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="recoverycase",
            name="refund_ref",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="recoverycase",
            name="refunded_on",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="recoverycase",
            name="status",
            field=models.CharField(
                choices=[
                    ("open", "已立案"),
                    ("notified", "已通知"),
                    ("repaying", "退还中"),
                    ("recovered", "已追回"),
                    ("write_off_proposed", "核销待审批"),
                    ("written_off", "已核销"),
                    ("cancelled", "已撤销"),
                    ("refund_due", "待返还"),
                    ("refund_recorded", "返还待复核"),
                    ("refunded", "已返还"),
                ],
                default="open",
                max_length=24,
            ),
        ),
        migrations.AddConstraint(
            model_name="recoverycase",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "status__in",
                        [
                            "open",
                            "notified",
                            "repaying",
                            "recovered",
                            "write_off_proposed",
                            "written_off",
                            "cancelled",
                            "refund_due",
                            "refund_recorded",
                            "refunded",
                        ],
                    )
                ),
                name="recovery_status_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="recoverycase",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("refund_approved_by__isnull", True),
                    models.Q(("refund_approved_by", models.F("refund_by")), _negated=True),
                    _connector="OR",
                ),
                name="recovery_refund_two_people",
            ),
        ),
        migrations.AddConstraint(
            model_name="recoverycase",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "refunded"), _negated=True),
                    models.Q(
                        ("refund_amount__isnull", False),
                        ("refund_approved_by__isnull", False),
                        ("refund_by__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="recovery_refunded_approved",
            ),
        ),
        migrations.AddConstraint(
            model_name="recoverycase",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("refund_amount__isnull", True),
                    models.Q(
                        ("refund_amount__gt", 0),
                        (
                            "refund_amount__lte",
                            django.db.models.expressions.CombinedExpression(
                                models.F("recovered"), "+", models.Value(Decimal("0.005"))
                            ),
                        ),
                    ),
                    _connector="OR",
                ),
                name="recovery_refund_within_recovered",
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, refuse_refund_cases),
    ]
