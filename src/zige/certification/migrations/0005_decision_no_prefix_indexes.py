"""The decisions' and changes' `run` and `recipient` lose their single-column indexes: each is
the first column of a composite index already (the unique (run, recipient), (run, status,
reason), (recipient, run), …), and a province's run inserts 2 million decisions into every index.

The indexes are dropped by name, not by `AlterField`: on SQLite that would copy the whole
decisions table twice (every kept run's rows). The names are Django's own for these columns (the
same on SQLite and PostgreSQL), and the reverse creates them again."""

import django.db.models.deletion
from django.db import migrations, models

# (table, column, Django's name for the column's index)
_INDEXES = (
    ("certification_decision", "recipient_id", "certification_decision_recipient_id_9d2b7ed0"),
    ("certification_decision", "run_id", "certification_decision_run_id_3dbf2317"),
    ("certification_decisionchange", "recipient_id", "certification_decisionchange_recipient_id_9d5ac6e4"),
    ("certification_decisionchange", "run_id", "certification_decisionchange_run_id_b6566bae"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("certification", "0004_run_failure_code_detail"),
        ("roster", "0002_recipient_name_prefix_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for table, column, name in _INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="decision",
                    name="recipient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="decisions",
                        to="roster.recipient",
                    ),
                ),
                migrations.AlterField(
                    model_name="decision",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="decisions",
                        to="certification.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="decisionchange",
                    name="recipient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="roster.recipient",
                    ),
                ),
                migrations.AlterField(
                    model_name="decisionchange",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="changes",
                        to="certification.run",
                    ),
                ),
            ],
        ),
    ]
