"""A statement-level trigger that refuses TRUNCATE on the audit log (PostgreSQL).

The row-level triggers of 0002 refuse UPDATE and DELETE, but TRUNCATE fires no row trigger: it
emptied the log, and the empty chain then verified. SQLite has no TRUNCATE (its `DELETE FROM`
without WHERE fires the row triggers of 0002), so this migration does nothing there.
"""

from django.db import migrations

POSTGRES_CREATE = [
    # The function of 0002 raises whatever fires it; a statement-level trigger may call it too.
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;",
]


def _run(statements_by_vendor):
    def apply(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_CREATE}),
            _run({"postgresql": POSTGRES_DROP}),
        )
    ]
