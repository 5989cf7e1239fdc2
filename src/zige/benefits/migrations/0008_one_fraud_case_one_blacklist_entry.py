"""One fraud case not ended (立案, 已处罚) per person, one blacklist entry per person and per unit
(docs/payments.md §4): partial unique indexes, the person by the normalised ID number.

The blacklist's person ID numbers are compared, and then stored, normalised as the service has
read them since `blacklist_add` normalised its input (`zige.ids.normalise_id`: upper-case X,
spaces and full-width digits cleaned, 15 digits upgraded to 18); a number that does not read as
an ID is left as it is. As migration 0003 does, a database that already holds two open fraud
cases of one person, two entries for one ID number or two for one unit cannot take the
constraints: the migration stops and names them, for an officer to close or dismiss the wrong case (or remove the duplicate
entry) before migrating again; nothing is decided here on their behalf. Reversible: the
constraints are dropped (the normalised numbers stay normalised: the same numbers, read alike).
"""

from datetime import date

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count

# No clock in a migration: any birth date up to the end of time passes the ID's birth-date check.
AS_OF = date(9999, 12, 31)


def normalise_and_refuse_duplicates(apps, schema_editor):
    from zige.ids import IdError, normalise_id

    Blacklist = apps.get_model("benefits", "Blacklist")
    FraudCase = apps.get_model("benefits", "FraudCase")
    people = Blacklist.objects.filter(subject_type="person").exclude(person_id_number="")
    normal: dict[int, str] = {}
    for pk, number in people.values_list("pk", "person_id_number").iterator():
        try:
            normal[pk] = normalise_id(number, as_of=AS_OF)
        except IdError:
            normal[pk] = number  # not an ID: left as it is
    by_number: dict[str, list[int]] = {}
    for pk, number in sorted(normal.items()):
        by_number.setdefault(number, []).append(pk)
    problems = [
        f"blacklist entries of ID number {n}: {ids}" for n, ids in sorted(by_number.items()) if len(ids) > 1
    ]
    groups = (
        (
            "open fraud cases of recipient",
            FraudCase.objects.filter(status__in=["open", "fined"]),
            "recipient_id",
        ),
        ("blacklist entries of unit", Blacklist.objects.filter(subject_type="unit"), "unit_id"),
    )
    for what, rows, key in groups:
        for row in rows.values(key).annotate(n=Count("id")).filter(n__gt=1).order_by(key)[:50]:
            ids = sorted(rows.filter(**{key: row[key]}).values_list("pk", flat=True))
            problems.append(f"{what} {row[key]}: {ids}")
    if problems:
        raise RuntimeError(
            "a person with two fraud cases not ended, or a person or unit blacklisted twice; close or "
            "dismiss the wrong case, or remove the duplicate entry, then migrate again:\n"
            + "\n".join(problems[:50])
        )
    for pk, number in people.values_list("pk", "person_id_number"):
        if normal[pk] != number:
            Blacklist.objects.filter(pk=pk).update(person_id_number=normal[pk])


class Migration(migrations.Migration):
    dependencies = [
        ("benefits", "0007_recovery_refund"),
        ("roster", "0002_recipient_name_prefix_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(normalise_and_refuse_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="blacklist",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("subject_type", "person"), models.Q(("person_id_number", ""), _negated=True)
                ),
                fields=("person_id_number",),
                name="one_blacklist_entry_per_person",
            ),
        ),
        migrations.AddConstraint(
            model_name="blacklist",
            constraint=models.UniqueConstraint(
                condition=models.Q(("subject_type", "unit")),
                fields=("unit",),
                name="one_blacklist_entry_per_unit",
            ),
        ),
        migrations.AddConstraint(
            model_name="fraudcase",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["open", "fined"])),
                fields=("recipient",),
                name="one_open_fraud_case_per_person",
            ),
        ),
    ]
