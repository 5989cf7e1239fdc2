"""A roster import that terminates a person (待遇状态 终止) closes their unit tasks still waiting
for the unit by itself (`auto_closed`, docs/verification.md §1): the task names that import
(`closed_by_import`), as a run's auto-closed task names its run. The check becomes
`task_auto_closed_names_what_closed_it`: an auto-closed task names exactly one of the two, any
other task neither.

New field; no existing row changes (every auto-closed task names its run). Reversible: going back
drops the field and restores `task_auto_closed_names_its_run`, and stops, naming them, while any
task was closed by an import (the old check would refuse them; nothing is decided here on the
officers' behalf).
"""

import django.db.models.deletion
from django.db import migrations, models


def refuse_tasks_closed_by_an_import(apps, schema_editor):
    VerificationTask = apps.get_model("verification", "VerificationTask")
    held = list(
        VerificationTask.objects.filter(closed_by_import__isnull=False).values_list("pk", "closed_by_import_id")[:50]
    )
    if held:
        raise RuntimeError(
            "verification tasks closed by a roster import (终止) cannot go back to before imports closed tasks: "
            + ", ".join(f"#{pk} (import {batch})" for pk, batch in held)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("certification", "0006_decision_partitioned_by_run"),
        ("feeds", "0004_import_status_known"),
        ("roster", "0002_recipient_name_prefix_index"),
        ("verification", "0005_task_death_date"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="verificationtask",
            name="task_auto_closed_names_its_run",
        ),
        migrations.AddField(
            model_name="verificationtask",
            name="closed_by_import",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="feeds.importbatch",
            ),
        ),
        migrations.AddConstraint(
            model_name="verificationtask",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("status", "auto_closed"),
                        models.Q(
                            models.Q(("closed_by_import__isnull", True), ("closed_by_run__isnull", False)),
                            models.Q(("closed_by_import__isnull", False), ("closed_by_run__isnull", True)),
                            _connector="OR",
                        ),
                    ),
                    models.Q(
                        models.Q(("status", "auto_closed"), _negated=True),
                        ("closed_by_import__isnull", True),
                        ("closed_by_run__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="task_auto_closed_names_what_closed_it",
            ),
        ),
        # Last, so that going back checks first.
        migrations.RunPython(migrations.RunPython.noop, refuse_tasks_closed_by_an_import),
    ]
