"""移出黑名单: a blacklist entry is removed (移出) — proposed by one officer with a reason, the day
and a note, approved by another (`blacklist_removal_two_people`) — and stays in the record as
已移出; an entry may carry its listing period (列入期限, `until`). docs/payments.md §4.

The one-entry-per-person and per-unit unique indexes now cover only entries not removed, so a
removed person or unit can be listed again. New fields default to an entry in the list (在列,
no period): no existing row changes.

Reversible: going back drops the fields and restores the indexes over every entry, and stops,
naming them, while any entry has a removal proposed or approved (the old indexes would refuse a
person listed again, and going back would silently put a removed person on the list again;
nothing is decided here on the officers' behalf). A period (`until`) is dropped; the listing's
audit record (`blacklist.added`) keeps it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def refuse_removals(apps, schema_editor):
    Blacklist = apps.get_model("benefits", "Blacklist")
    held = list(
        Blacklist.objects.exclude(status="listed").order_by("pk").values_list("pk", "status")[:50]
    )
    if held:
        raise RuntimeError(
            "blacklist entries with a removal proposed or approved cannot go back to before removals "
            "existed: " + ", ".join(f"#{pk} {status}" for pk, status in held)
        )


class Migration(migrations.Migration):

    dependencies = [
        ('benefits', '0008_one_fraud_case_one_blacklist_entry'),
        ('roster', '0002_recipient_name_prefix_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='blacklist',
            name='one_blacklist_entry_per_person',
        ),
        migrations.RemoveConstraint(
            model_name='blacklist',
            name='one_blacklist_entry_per_unit',
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removal_approved_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removal_note',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removal_proposed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removal_proposed_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removal_reason',
            field=models.CharField(blank=True, choices=[('expired', '列入期满'), ('credit_repaired', '信用修复'), ('revoked', '复议或诉讼撤销'), ('wrongly_listed', '错误列入')], max_length=16),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='removed_on',
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='status',
            field=models.CharField(choices=[('listed', '在列'), ('removal_proposed', '移出待审批'), ('removed', '已移出')], default='listed', max_length=16),
        ),
        migrations.AddField(
            model_name='blacklist',
            name='until',
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['listed', 'removal_proposed', 'removed'])), name='blacklist_status_known'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(('removal_reason', ''), ('removal_reason__in', ['expired', 'credit_repaired', 'revoked', 'wrongly_listed']), _connector='OR'), name='blacklist_removal_reason_known'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(('until__isnull', True), ('until__gt', models.F('since')), _connector='OR'), name='blacklist_until_after_since'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status__in', ['removal_proposed', 'removed']), _negated=True), models.Q(models.Q(('removal_reason', ''), _negated=True), ('removal_proposed_at__isnull', False), ('removal_proposed_by__isnull', False), ('removed_on__isnull', False), ('removed_on__gte', models.F('since'))), _connector='OR'), name='blacklist_removal_proposed_complete'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'removed'), _negated=True), models.Q(('removal_approved_by__isnull', False), ('removed_at__isnull', False)), _connector='OR'), name='blacklist_removed_approved'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'listed'), _negated=True), models.Q(('removal_approved_by__isnull', True), ('removal_proposed_by__isnull', True), ('removal_reason', ''), ('removed_at__isnull', True), ('removed_on__isnull', True)), _connector='OR'), name='blacklist_listed_has_no_removal'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.CheckConstraint(condition=models.Q(('removal_approved_by__isnull', True), models.Q(('removal_approved_by', models.F('removal_proposed_by')), _negated=True), _connector='OR'), name='blacklist_removal_two_people'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.UniqueConstraint(condition=models.Q(('subject_type', 'person'), models.Q(('person_id_number', ''), _negated=True), models.Q(('status', 'removed'), _negated=True)), fields=('person_id_number',), name='one_blacklist_entry_per_person'),
        ),
        migrations.AddConstraint(
            model_name='blacklist',
            constraint=models.UniqueConstraint(condition=models.Q(('subject_type', 'unit'), models.Q(('status', 'removed'), _negated=True)), fields=('unit',), name='one_blacklist_entry_per_unit'),
        ),
        migrations.RunPython(migrations.RunPython.noop, refuse_removals),
    ]
