"""Start Django from the `zige` command line, with the database migrated."""

from __future__ import annotations

import os


def setup_django(*, migrate: bool = True) -> None:
    """Configure Django for `ZIGE_DATA_DIR` / `ZIGE_DATABASE_URL`, and bring the schema up to date.

    Migrating on start keeps the embedded default (SQLite under ./var) a zero-step install.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zige.web.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            call_command("migrate", interactive=False, verbosity=0)
