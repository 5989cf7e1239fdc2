"""PostgreSQL: the decisions table becomes partitioned by run (`PARTITION BY LIST (run_id)`), one
partition a run; SQLite is left as it is (it has no partitions).

Why: a province's run stores 2 million decisions. Inserted into the one table, each row went
into six indexes and queued three foreign-key checks that PostgreSQL runs one row at a time at
commit (it also locks each recipient's row for them): measured on 2 million decisions, the
`COPY` took 24 s and the checks 42 s. A run now writes its decisions into a table of their own,
which is then attached as the run's partition (`certification.services`, `feeds.store`
`StagedRows.insert_partition`): PostgreSQL builds each index in one sort and checks each foreign
key with one join, in about a third of the time (docs/performance.md).

The model is unchanged: Django reads and writes through the partitioned table. What PostgreSQL
asks of a partitioned table: its primary key and unique constraints include `run_id` (the key
is (id, run_id); ids still come from the one identity sequence, so they stay unique), and
every row belongs to a partition — the run that stores decisions creates its own
(`StagedRows.insert_partition`). There is no default partition: attaching next to one locks it
for the rest of the run's transaction, and every query on decisions not limited to a run (a
person's history) would wait behind it.

Forward and reverse copy the rows (every kept run's) and rebuild each index and constraint of
the table under its own name, read from the catalog: a later migration finds them as Django
named them. On a production database this holds the decisions table for the copy: about 15 s
for 2 million rows on a 2-core machine (PostgreSQL's log of one), so minutes for the 7 kept
runs of a province — migrate between daily runs, with the web pages stopped or patient."""

from django.db import migrations

TABLE = "certification_decision"


def _definitions(cursor, table: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The table's constraints (name, type, definition: primary key, unique, foreign key) and the
    statements of its other indexes, as the catalog gives them."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY contype DESC, conname",
        [table],
    )
    constraints = [(name, kind, definition) for name, kind, definition in cursor.fetchall()]
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        [table],
    )
    return constraints, [row[0] for row in cursor.fetchall()]


def _rebuild(cursor, *, partitioned: bool) -> None:
    old = f"{TABLE}_old"
    constraints, indexes = _definitions(cursor, TABLE)
    cursor.execute(f"SELECT DISTINCT run_id FROM {TABLE} ORDER BY 1")
    runs = [row[0] for row in cursor.fetchall()]
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
    by = " PARTITION BY LIST (run_id)" if partitioned else ""
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY){by}"
    )
    if partitioned:
        for run in runs:
            cursor.execute(f"CREATE TABLE {TABLE}_r{int(run)} PARTITION OF {TABLE} FOR VALUES IN ({int(run)})")
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old}")
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), coalesce((SELECT max(id) FROM {old}), 0) + 1, false)"
    )
    cursor.execute(f"DROP TABLE {old}")  # and its indexes, constraints and sequence: their names are free
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    cursor.execute(f"ALTER SEQUENCE {cursor.fetchone()[0]} RENAME TO {TABLE}_id_seq")
    for name, kind, definition in constraints:
        if kind == "p":  # a partitioned table's key includes the partition column
            definition = "PRIMARY KEY (id, run_id)" if partitioned else "PRIMARY KEY (id)"
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for statement in indexes:
        cursor.execute(statement)


def forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=True)


def backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("certification", "0005_decision_no_prefix_indexes")]

    operations = [migrations.RunPython(forward, backward)]
