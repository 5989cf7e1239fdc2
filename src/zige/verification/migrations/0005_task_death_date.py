"""A dead / fraud finding keeps its date of death on the task (it ends an earlier 确认健在's
clearance from that day, docs/rules.md §8.5). Findings recorded before this migration have it
in their audit record (`task.resolved`, `death_date`): it is copied from there."""

from datetime import date
from typing import Any

from django.db import migrations, models


def death_dates_from_the_audit(apps: Any, schema_editor: Any) -> None:
    task_model = apps.get_model("verification", "VerificationTask")
    event_model = apps.get_model("audit", "AuditEvent")
    tasks = set(
        str(pk)
        for pk in task_model.objects.filter(finding__in=["dead", "fraud"], death_date__isnull=True).values_list(
            "pk", flat=True
        )
    )
    if not tasks:
        return
    events = event_model.objects.filter(action="task.resolved", target_type="verification_task", target_id__in=tasks)
    for target, after in events.order_by("seq").values_list("target_id", "after"):
        day = (after or {}).get("death_date")
        if day:
            task_model.objects.filter(pk=int(target)).update(death_date=date.fromisoformat(day))


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_no_truncate_trigger"),
        ("verification", "0004_task_auto_closed_names_its_run"),
    ]

    operations = [
        migrations.AddField(
            model_name="verificationtask",
            name="death_date",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.RunPython(death_dates_from_the_audit, migrations.RunPython.noop),
    ]
