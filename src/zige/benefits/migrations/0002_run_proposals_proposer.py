"""The officer who started a run is the proposer (the maker) of its payment actions
(`zige.benefits.services.payment_actions_for_run`), so that they cannot approve them
(`action_maker_is_not_checker`).

Run proposals still waiting for approval get their run's `created_by` as `proposed_by`; decided
ones keep their history as it is (one approved by its run's initiator would break the constraint).
Proposals of runs without a user (the scheduler, the command line) stay without a proposer.
Reversible: run proposals whose proposer is their run's initiator lose it again, as before.
"""

from django.db import migrations
from django.db.models import F


def forward(apps, schema_editor):
    PaymentAction = apps.get_model("benefits", "PaymentAction")
    pending = PaymentAction.objects.filter(
        source="run", state="proposed", proposed_by__isnull=True, run__created_by__isnull=False
    )
    for run_id, maker_id in pending.values_list("run_id", "run__created_by_id").distinct():
        pending.filter(run_id=run_id).update(proposed_by_id=maker_id)


def backward(apps, schema_editor):
    PaymentAction = apps.get_model("benefits", "PaymentAction")
    PaymentAction.objects.filter(source="run", proposed_by=F("run__created_by")).update(proposed_by=None)


class Migration(migrations.Migration):
    dependencies = [
        ("benefits", "0001_initial"),
        ("certification", "0002_run_decisions_pruned"),
    ]

    operations = [migrations.RunPython(forward, backward)]
