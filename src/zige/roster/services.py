"""Writes to the roll: applying a staged roster file to units and recipients.

`roster_apply_staged` is called by `zige.feeds.services.import_execute` inside the import's one
transaction, with the roster file already read and normalised in DuckDB (tables
`staged_roster` and `roster_outcome` of `zige.engine.sql`). It compares the file with the
recipients in the database — in DuckDB, set-based — and writes in bulk:

- new units (and a unit's name when the roster names it differently);
- new recipients; changed recipients (every tracked field, `roster.models.TRACKED_FIELDS`);
- one `RecipientChange` per changed field, old and new value as text;
- the active verification tasks of everyone whose unit changed, moved to the new unit
  (`zige.verification.services.tasks_reassign`, audited as `task.reassigned`);
- the unsent reminders of everyone it terminates (待遇状态 终止), cancelled
  (`zige.notifications.services.messages_cancel_for_terminated`, audited as `messages.cancelled`);
- the rejects of the file (`ImportReject`), including rows that collide with a *different*
  recipient already on the roll (`duplicate_id_number`) and rows the store cannot hold.

Recipients absent from the file are left as they are (a roster file may be partial; a change of
status comes through 待遇状态). See docs/rules.md, "System of record".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
from django.db import connection

from zige.engine.sql import field_as_written_sql, quote, roster_rejects_sql
from zige.feeds import store
from zige.roster.models import TRACKED_FIELDS, Unit

# Database column -> (kind, maximum length). Text longer than the column is cut to fit; key
# fields that are too long reject the row instead (see `_STORE_LIMITS`).
_COLUMNS: dict[str, tuple[str, int]] = {
    "name": ("text", 100),
    "id_number": ("text", 18),
    "unit_name": ("text", 200),
    "sex": ("text", 8),
    "birth_date_text": ("text", 32),
    "benefit_status": ("text", 16),
    "status_since": ("date", 0),
    "status_reason": ("text", 200),
    "monthly_amount": ("amount", 0),
    "phone": ("text", 64),
    "mobile": ("text", 11),
    "address": ("text", 300),
    "retirement_date": ("date", 0),
    "last_certified_on": ("date", 0),
    "lives_abroad": ("text", 8),
    "has_social_card": ("text", 8),
    "health": ("text", 100),
    "retirement_category": ("text", 50),
    "ethnicity": ("text", 50),
    "political_status": ("text", 50),
    "former_employer": ("text", 200),
    "hukou": ("text", 300),
    "residence_region": ("text", 32),
}
# (condition on the staged row, field label, value, reason): rows the relational store cannot hold.
_STORE_LIMITS = (
    ("length(i.person_no) > 64", "个人编号", "i.person_no", "bad_value"),
    ("length(i.name) > 100", "姓名", "i.name", "bad_value"),
    ("length(i.unit_no) > 64", "单位编号", "i.unit_no", "bad_value"),
    ("i.monthly_amount >= 10000000000", "月养老金", "CAST(i.monthly_amount AS VARCHAR)", "bad_amount"),
)
_EXISTING_TEXT = ("person_no", "unit_no", *_COLUMNS)


@dataclass(frozen=True)
class RosterCounts:
    rows_used: int
    rows_rejected: int
    duplicate_rows: int
    created: int
    updated: int
    changes: int


Progress = Callable[[str], None]


def _incoming_sql() -> str:
    """Used roster rows shaped as recipient columns (cut to the column lengths)."""
    shaped = []
    for column, (kind, length) in _COLUMNS.items():
        if column in ("mobile", "lives_abroad", "has_social_card"):
            shaped.append(f"coalesce(s.{column}, '') AS {column}")
        elif kind == "text" and column not in ("name", "id_number", "benefit_status"):
            shaped.append(f"left(coalesce(s.{column}, ''), {length}) AS {column}")
        elif kind == "amount":
            shaped.append(f"s.{column} AS {column}")
        else:
            shaped.append(f"s.{column}")
    return (
        f"SELECT s.file_no, s.row_no, s.person_no, s.unit_no, {', '.join(shaped)} "
        "FROM staged_roster s JOIN roster_outcome o USING (file_no, row_no) WHERE o.outcome = 'used'"
    )


def _decimal_text(expr: str) -> str:
    """An amount as plain text without trailing zeros ('3456.78', '3000'); '' for NULL."""
    return f"coalesce(rtrim(rtrim(CAST(CAST({expr} AS DECIMAL(14, 4)) AS VARCHAR), '0'), '.'), '')"


def _text_of(column: str, alias: str, *, loaded_as_text: bool) -> str:
    kind = _COLUMNS[column][0] if column in _COLUMNS else "text"
    expr = f"{alias}.{column}"
    if kind == "date":
        inner = f"TRY_CAST({expr} AS DATE)" if loaded_as_text else expr
        return f"coalesce(CAST({inner} AS VARCHAR), '')"
    if kind == "amount":
        return _decimal_text(f"TRY_CAST({expr} AS DECIMAL(18, 4))" if loaded_as_text else expr)
    return f"coalesce({expr}, '')"


def _load_existing(con: duckdb.DuckDBPyConnection) -> None:
    """Every recipient of the roll into DuckDB (`existing`, all text but the keys)."""
    columns = ", ".join(
        "CAST(u.unit_no AS TEXT)" if c == "unit_no" else f"CAST(r.{c} AS TEXT)" for c in _EXISTING_TEXT
    )
    table = store.fetch_arrow(
        f"SELECT CAST(r.id AS TEXT), {columns} FROM roster_recipient r JOIN roster_unit u ON u.id = r.unit_id",
        ["id", *_EXISTING_TEXT],
    )
    con.register("existing_arrow", table)
    con.execute(
        "CREATE OR REPLACE TABLE existing AS SELECT CAST(id AS BIGINT) AS id, * EXCLUDE (id) FROM existing_arrow"
    )
    con.unregister("existing_arrow")


def _source_column(column: str) -> str:
    """The file's column a recipient column comes from (the mobile is read from the phones)."""
    return "phone" if column == "mobile" else column


def _name_key(expr: str) -> str:
    """A 姓名 as compared for a change: without its spaces, ASCII or full-width (U+3000)."""
    return f"replace(replace(coalesce({expr}, ''), ' ', ''), chr(12288), '')"


def _keep_stored_values(con: duckdb.DuckDBPyConnection, present: Collection[str] | None) -> None:
    """In `accepted`, what a known recipient keeps of the stored row, in one set-based rewrite of
    the table (a province's roll is millions of rows):

    - the fields whose column the file does not have (`present`; None: it has them all): a
      partial file (a 调待 list of 个人编号, 姓名, 身份证号, 单位编号 and 月养老金) changes what it
      has, and no missing 待遇状态 puts a suspended or terminated person back to 正常, no missing
      上次认证日期 erases a certification;
    - the stored spelling of a 姓名 that differs from the file's only by spaces (`孙 八` for
      `孙八`, ASCII or full-width): no change is recorded (`_changes_sql` compares the kept
      value) and the stored name does not churn between files that space it differently.

    New recipients keep the file's values and the defaults (docs/rules.md §8.1)."""
    absent = [
        c
        for c in _COLUMNS
        if present is not None and _source_column(c) not in present and c not in ("name", "id_number")
    ]
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'accepted'"
        ).fetchall()
    )
    kept = [
        f"CASE WHEN a.recipient_id IS NULL THEN a.{c} ELSE TRY_CAST(e.{c} AS {types[c]}) END AS {c}"
        for c in absent
    ]
    kept.append(
        "CASE WHEN e.id IS NOT NULL AND a.name IS DISTINCT FROM e.name "
        f"AND {_name_key('a.name')} = {_name_key('e.name')} THEN e.name ELSE a.name END AS name"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE accepted AS SELECT a.* REPLACE ({', '.join(kept)}) "
        "FROM accepted a LEFT JOIN existing e ON e.id = a.recipient_id"
    )


def _sync_units(con: duckdb.DuckDBPyConnection) -> None:
    """Create the units the file names that are new; rename units the file names differently.

    Leaves the table `unit_ids (unit_no, unit_id)` for every unit of the accepted rows.
    """
    wanted = con.execute(
        "SELECT unit_no, coalesce(mode(unit_name) FILTER (WHERE unit_name <> ''), '') "
        "FROM accepted_rows GROUP BY unit_no ORDER BY unit_no"
    ).fetchall()
    known = {u.unit_no: u for u in Unit.objects.all()}
    new = [Unit(unit_no=no, name=name[:200]) for no, name in wanted if no not in known]
    renamed = []
    for no, name in wanted:
        unit = known.get(no)
        if unit is not None and name and unit.name != name[:200]:
            unit.name = name[:200]
            renamed.append(unit)
    if new:
        Unit.objects.bulk_create(new, batch_size=5000)
    if renamed:
        Unit.objects.bulk_update(renamed, ["name"], batch_size=1000)
    rows = list(Unit.objects.values_list("unit_no", "pk"))
    con.execute("CREATE OR REPLACE TABLE unit_ids (unit_no VARCHAR, unit_id BIGINT)")
    if rows:
        con.executemany("INSERT INTO unit_ids VALUES (?, ?)", rows)


def _changes_sql() -> str:
    parts = []
    for field in TRACKED_FIELDS:
        column = "unit_no" if field == "unit_id" else field
        new = _text_of(column, "a", loaded_as_text=False)
        old = _text_of(column, "e", loaded_as_text=True)
        parts.append(
            f"SELECT a.recipient_id, {quote(field)} AS field, {old} AS old_value, {new} AS new_value "
            f"FROM accepted a JOIN existing e ON e.id = a.recipient_id WHERE {old} <> {new}"
        )
    return "\nUNION ALL\n".join(parts)


def _write_changes(rows: Sequence[Sequence[Any]]) -> int:
    """Insert the RecipientChange rows (a separate function so that tests can make it fail)."""
    return store.bulk_insert(
        "roster_recipientchange",
        ["recipient_id", "batch_id", "field", "old_value", "new_value", "changed_at"],
        rows,
    )


_RECIPIENT_COLUMNS = ("person_no", "unit_id", *_COLUMNS)


def _recipient_select(alias: str = "a") -> str:
    return ", ".join(
        f"CAST({alias}.monthly_amount AS DECIMAL(14, 4))" if c == "monthly_amount" else f"{alias}.{c}"
        for c in _RECIPIENT_COLUMNS
    )


def _update_recipients(con: duckdb.DuckDBPyConnection, batch_id: int) -> None:
    """Rewrite every changed recipient from the file, and mark everyone named as last seen here.

    The rows go through temporary tables (bulk-loaded) and two set-based UPDATEs.
    """
    quote_name = connection.ops.quote_name
    columns = [*_RECIPIENT_COLUMNS, "last_import_id"]
    with connection.cursor() as cursor:
        for temp in ("zige_recipient_update", "zige_recipient_seen"):
            cursor.execute(f"DROP TABLE IF EXISTS {temp}")
        cursor.execute(
            "CREATE TEMPORARY TABLE zige_recipient_update AS "
            f"SELECT id, {', '.join(columns)} FROM roster_recipient WHERE 1 = 0"
        )
        cursor.execute("CREATE TEMPORARY TABLE zige_recipient_seen (id BIGINT PRIMARY KEY)")
    store.bulk_insert(
        "zige_recipient_update",
        ["id", *columns],
        store.duck_rows(
            con,
            f"SELECT a.recipient_id, {_recipient_select()}, {batch_id} FROM accepted a "
            "WHERE a.recipient_id IN (SELECT recipient_id FROM changes) ORDER BY a.recipient_id",
        ),
    )
    store.bulk_insert(
        "zige_recipient_seen",
        ["id"],
        store.duck_rows(
            con,
            "SELECT recipient_id FROM accepted WHERE recipient_id IS NOT NULL "
            "AND recipient_id NOT IN (SELECT recipient_id FROM changes) ORDER BY recipient_id",
        ),
    )
    assignments = ", ".join(f"{quote_name(c)} = u.{quote_name(c)}" for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # plan the joins with the real row counts
            cursor.execute("ANALYZE zige_recipient_update")
            cursor.execute("ANALYZE zige_recipient_seen")
        cursor.execute(
            f"UPDATE roster_recipient SET {assignments} FROM zige_recipient_update u "
            "WHERE roster_recipient.id = u.id"
        )
        cursor.execute(
            "UPDATE roster_recipient SET last_import_id = %s "
            "WHERE id IN (SELECT id FROM zige_recipient_seen) AND last_import_id IS DISTINCT FROM %s",
            [batch_id, batch_id],
        )
        for temp in ("zige_recipient_update", "zige_recipient_seen"):
            cursor.execute(f"DROP TABLE {temp}")


def roster_apply_staged(
    *,
    con: duckdb.DuckDBPyConnection,
    batch_id: int,
    now: datetime,
    actor: Any | None = None,
    progress: Progress | None = None,
    fields: Mapping[str, str] | None = None,
    present: Collection[str] | None = None,
) -> RosterCounts:
    """Apply the staged roster in `con` to the roll; call inside the import's transaction.
    `actor`: who started the import (audit of the verification tasks that follow a move).
    `fields`: the rejects' fields as the file heads the columns (label -> 公民身份号码（身份证号）,
    `zige.engine.kinds.fields_as_written`).
    `present`: the roster columns the file has (`zige.engine.kinds.Column.name`; None: all). A
    known recipient keeps the fields of the columns the file does not have (docs/rules.md §8.1)."""
    report = progress or (lambda _label: None)
    report("compare with the roll")
    _load_existing(con)
    limit_checks = " ".join(f"WHEN {cond} THEN {quote(reason)}" for cond, _, _, reason in _STORE_LIMITS)
    limit_fields = " ".join(f"WHEN {cond} THEN {quote(label)}" for cond, label, _, _ in _STORE_LIMITS)
    limit_values = " ".join(f"WHEN {cond} THEN {value}" for cond, _, value, _ in _STORE_LIMITS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE matched AS
        SELECT i.*, p.id AS recipient_id, x.id AS id_owner,
          CASE {limit_checks}
               WHEN x.id IS NOT NULL AND x.id IS DISTINCT FROM p.id THEN 'duplicate_id_number' END
            AS store_reason,
          CASE {limit_fields} ELSE '身份证号' END AS store_field,
          CASE {limit_values} ELSE i.id_number END AS store_value
        FROM ({_incoming_sql()}) i
        LEFT JOIN existing p ON p.person_no = i.person_no
        LEFT JOIN existing x ON x.id_number = i.id_number
        """
    )
    con.execute("CREATE OR REPLACE TABLE accepted_rows AS SELECT * FROM matched WHERE store_reason IS NULL")
    _sync_units(con)
    con.execute(
        "CREATE OR REPLACE TABLE accepted AS SELECT m.*, u.unit_id FROM accepted_rows m "
        "JOIN unit_ids u USING (unit_no)"
    )
    _keep_stored_values(con, present)
    con.execute(f"CREATE OR REPLACE TABLE changes AS {_changes_sql()}")

    report("write recipients")
    store.bulk_insert(
        "roster_recipient",
        [*_RECIPIENT_COLUMNS, "first_import_id", "last_import_id"],
        store.duck_rows(
            con,
            f"SELECT {_recipient_select()}, {batch_id}, {batch_id} FROM accepted a "
            "WHERE a.recipient_id IS NULL ORDER BY a.person_no",
        ),
    )
    _update_recipients(con, batch_id)

    report("write change history")
    changed_at = store.db_datetime(now)
    change_rows = [
        (recipient_id, batch_id, field, old, new, changed_at)
        for recipient_id, field, old, new in con.execute(
            "SELECT recipient_id, field, old_value, new_value FROM changes ORDER BY recipient_id, field"
        ).fetchall()
    ]
    _write_changes(change_rows)

    # People who moved to another unit take their active verification tasks with them, in this
    # transaction (docs/verification.md §3: a unit sees and acts on its current people only).
    movers = [
        r
        for (r,) in con.execute(
            "SELECT DISTINCT recipient_id FROM changes WHERE field = 'unit_id'"
        ).fetchall()
    ]
    if movers:
        from zige.verification.services import tasks_reassign

        tasks_reassign(recipient_ids=movers, now=now, actor=actor, source=f"（名册导入 #{batch_id}）")
        # … and the reminders not gone out yet: a unit notice belongs on the new unit's list.
        from zige.notifications.services import messages_reassign

        messages_reassign(recipient_ids=movers, batch_id=batch_id, now=now, actor=actor)

    # People this import terminates (待遇状态 终止) are in no later run, so no run will cancel
    # their reminders nor close their tasks: what of theirs has not gone out yet is cancelled, and
    # their unit tasks still waiting for the unit are closed (no longer on its 附件1, reminded or
    # escalated), here, in this transaction.
    terminated = [
        r
        for (r,) in con.execute(
            "SELECT DISTINCT recipient_id FROM changes "
            "WHERE field = 'benefit_status' AND new_value = 'terminated' ORDER BY recipient_id"
        ).fetchall()
    ]
    if terminated:
        from zige.notifications.services import messages_cancel_for_terminated

        messages_cancel_for_terminated(recipient_ids=terminated, batch_id=batch_id, now=now, actor=actor)
        from zige.verification.services import tasks_close_for_terminated

        tasks_close_for_terminated(recipient_ids=terminated, batch_id=batch_id, now=now, actor=actor)

    report("write rejects")
    rejects = store.bulk_insert(
        "feeds_importreject",
        ["batch_id", "row", "field", "value", "reason"],
        store.duck_rows(
            con,
            f"""
            SELECT {batch_id}, row_no, {field_as_written_sql("field", fields or {})}, value, reason FROM (
              SELECT row_no, field, value, reason FROM ({roster_rejects_sql()})
              UNION ALL
              SELECT row_no, store_field, store_value, store_reason FROM matched WHERE store_reason IS NOT NULL
            ) ORDER BY row_no
            """,
        ),
    )
    counts = con.execute(
        """
        SELECT
          (SELECT count(*) FROM accepted),
          (SELECT count(*) FROM roster_outcome WHERE outcome = 'duplicate'),
          (SELECT count(*) FROM accepted WHERE recipient_id IS NULL),
          (SELECT count(DISTINCT recipient_id) FROM changes),
          (SELECT count(*) FROM changes)
        """
    ).fetchone()
    assert counts is not None
    used, duplicates, created, updated, changes = (int(c) for c in counts)
    return RosterCounts(
        rows_used=used, rows_rejected=rejects, duplicate_rows=duplicates, created=created,
        updated=updated, changes=changes,
    )  # fmt: skip
