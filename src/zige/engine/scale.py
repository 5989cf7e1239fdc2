"""Certification at province scale: recipients (Parquet) + the evidence store -> decisions (issue 6).

The decisions are exactly those of the batch chain (`Certification.decide`, spec §2 and §8 as
written in docs/rules.md): the same builders of `zige.engine.sql` decide. What changes is how
much evidence they read. A province's store holds a billion rows, most of them trips by people
who draw no pension, and for each recipient most of their own rows cannot change a decision:
of a hundred train trips only the newest can give `C`, and only the earliest one after a death
can make a `review`. So one pass over the store keeps, per recipient:

- every row of the rare kinds (deaths, cremations, declarations, unit confirmations, sentences,
  releases: they decide `stop`, `suspend`, `review` and the back pay);
- for each routine alive kind (rail, flight, hospital, checkup, border, app/terminal
  authentication, overseas review) and result (`sub`): the newest record, the earliest record
  after the person's earliest loss, and the earliest after their earliest declaration of
  missing (notice 二(一), 二(二); docs/rules.md §2.1, §1 `C`);
- every routine record dated within `window_days` before the as-of date or later (the
  *recent* rows), so that a death reported tomorrow, or a later as-of date, can be decided
  from the kept rows without reading the store again.

The winners are looked for newest months first, in two parts over disjoint months: the month
before the window's and the window's month for every recipient (read and joined once: the same
rows give the winners and the recent rows), then the older months (most of the store) only for
the recipients who had no alive record there or have a loss or a declaration of missing;
DuckDB's join filter drops everyone else's rows in the scan, so the join and the per-person
aggregate see a small share of the recipients' rows (`ScaleRun._reduce_full`). Every scan is
limited to the recipients' key range (`key_range_sql`): the store key begins with the birth date
(`zige.ids.store_key`) and the files are sorted by it, so the row groups of everyone born after
the youngest recipient are skipped on their statistics, unread.

Every kept row is a real row of the store, and the kept rows contain every extreme the
decision builders look for (max alive date with its same-day ranks, min alive date after each
date that matters), so the builders give the same answer on the reduced rows as on all rows.
tests/integration/test_scale_certify.py holds the two to identical decisions and actions.

The reduced rows are kept (Parquet, under a state directory) with the recipients' rare rows,
their loss dates, their winners, the key above which a new record can change each one's
decision (`saved_thresholds_sql`), and everyone's results and payment actions. A daily increment
reads only the new batch's files: its rows join the kept rows, and only recipients whose
earliest loss or declaration moved to before the recent window need a targeted re-read (of the
store's months from that date on). At the state's as-of date a decision can change only for a
recipient the batch has a deciding row for — a rare row, alive evidence newer than their saved
newest, or alive evidence after their loss (`decide_again_sql`; most of a day's rows are trips
older than the person's newest) — so only those are decided again: the ones with no rare row
but units' confirmations of eligibility from the batch's newest winner and those confirmations
alone (`newest_facts_sql`), the others from their rows, and
everyone else keeps the saved result. The written output is then the saved files with the
changed rows beside them (`output_sql` reads the merge). A later as-of date changes a decision
only where the builders read something of the date that differs between the two: a kept row
dated in between, a deadline or a reminder reached, a sentence's planned end passed, a roll date
reached, an action's months in a new month (`due_again_sql`). Those people are decided again
too, from their kept rows; everyone else keeps the saved result.

A day of a chain (an increment that saves the next state) writes only what changed: the kept
rows the batch added as one more part beside the state's (`reduced-0001.parquet`, ...), and the
results and actions of the people decided since the state's base as `results-changed.parquet`
and `actions-changed.parquet` beside the base files (read as `output_sql` reads a run's output;
a changed result carries the decision, and its ID, name and unit are the base row's, so an
increment reads and writes none of the roll's widest text);
the thresholds are merged (only the people decided again have new ones), the loss dates and
winners written again (a few seconds less than rewriting the 2 million results and the kept rows
each day). Past `MAX_REDUCED_PARTS` parts, or when the changed results reach `REBASE_SHARE` of
the base's, they are written whole again.

The builders (`*_sql`) use the dialect-neutral subset (joins, filters, GROUP BY with FILTER,
min/max, UNION ALL) so the same text runs on Spark; only `store_scan_sql` and the file writes are
DuckDB's.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from zige.engine import sql

# Kinds whose every record's class depends only on (kind, sub): reduced to extremes.
AGGREGATED_KINDS: tuple[str, ...] = (
    "rail", "flight", "hospital", "checkup", "border", "app_auth", "terminal_auth", "overseas_review",
)  # fmt: skip
# The other built-in kinds are kept whole (they are rare): death, cremation, declared,
# unit_confirm, sentence, release.
LOSS_CONDITION = (
    "(feed_kind IN ('death', 'cremation') OR (feed_kind = 'declared' AND sub = 'dead') "
    "OR (feed_kind = 'unit_confirm' AND sub = 'lost'))"
)
MISSING_CONDITION = "(feed_kind = 'declared' AND sub = 'missing')"
STATE_VERSION = 6  # 4: saved.parquet; 5: its newer_than; 6: parts and changed results of chained days
# A version-5 state reads as a version-6 one with no parts and no changed results.
READABLE_STATE_VERSIONS = (5, 6)
# A chained day adds a part of kept rows; past this many the kept rows are written as one file.
MAX_REDUCED_PARTS = 32
# The changed results of chained days are written beside the base's until they hold this share
# of its rows; then the merged results and actions are written whole (the base of what follows).
REBASE_SHARE = 0.25
DEFAULT_WINDOW_DAYS = 10
# A state's files other than these outputs are written uncompressed: an increment reads them
# whole (the kept rows, the thresholds, the winners), and undoing Snappy on them cost it 0.06 s
# of 0.79 (measured on the full bench, 2026-12-02); a full run writes them no slower. The
# results and actions are the run's output too (`ScaleRun.write` links them), kept compressed.
OUTPUT_FILES = ("results", "actions")

DECISION_COLUMNS = (
    "person_no", "id_number", "name", "unit_no", "status", "reason", "evidence_kind", "evidence_date",
    "certified_on", "due_on", "remind", "channel",
)  # fmt: skip

# The columns of a result that are the roll's text, not the decision: a changed result leaves
# them empty and takes them from the person's saved result (`output_sql`, `filled_results_sql`).
ROLL_TEXT_COLUMNS = ("id_number", "name", "unit_no")


def _aggregated() -> str:
    return sql.in_list_sql("e.feed_kind", AGGREGATED_KINDS)


# ---------------------------------------------------------------------------------------------
# Builders (dialect-neutral)
# ---------------------------------------------------------------------------------------------


def recipient_keys_sql() -> str:
    """The keys of the people decided: 正常 and 暂停 recipients (`recipients_input`)."""
    return "SELECT DISTINCT id_key FROM recipients_input WHERE benefit_status IN ('normal', 'suspended')"


def rare_kinds_sql(source: str) -> str:
    """Every row of `source` of the kinds kept whole."""
    return f"SELECT e.* FROM {source} e WHERE NOT {_aggregated()}"


def rare_rows_sql(source: str = "store", month_from: str | None = None) -> str:
    """Every row of the kinds kept whole that belongs to a recipient (`recipient_keys`)."""
    months = f" AND e.month >= {sql.quote(month_from)}" if month_from else ""
    return f"""
SELECT e.feed_kind, e.id_key, e.event_date, e.end_date, e.sub
FROM {source} e JOIN recipient_keys k ON e.id_key = k.id_key
WHERE NOT {_aggregated()}{months}
"""


def uncleared_sql(rows: str, cleared: str = "cleared", superseded: str | None = None) -> str:
    """`rows` (rare rows: feed_kind, id_key, event_date, sub, …) less the loss records and
    declarations of missing that a bureau review cleared: a person's in `cleared` (id_key,
    cleared_on; one row a person) dated on or before the day the review found them alive
    (确认健在, docs/rules.md §8.5). Those dated later count again. `superseded` (id_key,
    event_date): the dates of the bureau's death findings that a later one superseded; the
    person's `unit_confirm` 丧失资格 rows of those dates (the findings' own loss records) are no
    evidence either (§8.5: the latest finding wins)."""
    kept = f"""
SELECT e.* FROM ({rows}) e LEFT JOIN {cleared} c ON e.id_key = c.id_key
WHERE c.id_key IS NULL OR e.event_date > c.cleared_on OR NOT ({LOSS_CONDITION} OR {MISSING_CONDITION})
"""
    if superseded is None:
        return kept
    return f"""
SELECT e.* FROM ({kept}) e
WHERE NOT (e.feed_kind = 'unit_confirm' AND e.sub = 'lost' AND EXISTS (
    SELECT 1 FROM {superseded} s WHERE s.id_key = e.id_key AND s.event_date = e.event_date))
"""


def targets_sql(as_of: date, rare: str = "rare", keys: str = "recipient_keys") -> str:
    """Per recipient (of `keys`): the earliest loss and the earliest declaration of missing dated
    <= as_of (the dates after which alive evidence makes a `review`, docs/rules.md §2.1)."""
    day = sql.date_literal(as_of)
    return f"""
SELECT k.id_key, x.loss_date, x.missing_date
FROM {keys} k LEFT JOIN (
  SELECT id_key,
    min(event_date) FILTER (WHERE {LOSS_CONDITION}) AS loss_date,
    min(event_date) FILTER (WHERE {MISSING_CONDITION}) AS missing_date
  FROM {rare} WHERE event_date <= {day}
  GROUP BY id_key
) x ON k.id_key = x.id_key
"""


# Kinds whose `sub` tells alive from not (the others have no `sub`).
SUB_KINDS = ("app_auth", "terminal_auth")


def key_range_sql() -> str:
    """The lowest and highest store key of the recipients. A key begins with the birth date
    (`zige.ids.store_key`), so the range is the roll's birth dates, and a filter on it skips the
    store's row groups of everyone born after the youngest recipient on their statistics."""
    return "SELECT min(id_key), max(id_key) FROM recipient_keys"


def _in_key_range_sql(key_range: tuple[int, int], col: str = "id_key") -> str:
    return f"{col} BETWEEN {key_range[0]} AND {key_range[1]}"


def _rank_sql(kinds: Sequence[str]) -> str:
    return (
        "CASE "
        + " ".join(f"WHEN e.feed_kind = {sql.quote(k)} THEN {sql.ALIVE_RANK[k]}" for k in kinds)
        + " END"
    )


def _kind_of_rank_sql(rank: str, kinds: Sequence[str]) -> str:
    return (
        "CASE " + " ".join(f"WHEN {rank} = {sql.ALIVE_RANK[k]} THEN {sql.quote(k)}" for k in kinds) + " END"
    )


def alive_branches_sql(source: str, columns: str, where: str, kinds: Sequence[str] = AGGREGATED_KINDS) -> str:
    """The routine alive rows of `source` (passed authentications only) matching `where`: one
    SELECT of `columns` per kind with its rank as a literal `alive_rank` (cheaper than a CASE, and
    each branch reads its kind's partitions only), joined by UNION ALL."""
    branches = []
    for kind in kinds:
        alive = f"feed_kind = {sql.quote(kind)}" + (" AND sub = 'pass'" if kind in SUB_KINDS else "")
        branches.append(
            f"SELECT {columns}, {sql.ALIVE_RANK[kind]} AS alive_rank FROM {source} WHERE {alive} AND {where}"
        )
    return "\n  UNION ALL ".join(branches)


def _period_sql(since: date | None, before: date | None) -> str:
    """The month partitions and days from `since` (inclusive) to `before` (exclusive). A day that
    begins a month is a partition boundary: then the month filter alone selects the rows, and
    the date is not compared row by row (the scan need not decode `event_date` to filter)."""
    where = ""
    if since is not None:
        # (`month=none` holds rows without a date: it sorts after every month)
        where += f" AND month >= {sql.quote(_month_label(since))} AND month <> 'none'"
        if since.day != 1:
            where += f" AND event_date >= {sql.date_literal(since)}"
    if before is not None:
        if before.day == 1:
            where += f" AND month < {sql.quote(_month_label(before))}"
        else:
            where += (
                f" AND month <= {sql.quote(_month_label(before))} AND event_date < {sql.date_literal(before)}"
            )
    return where


def joined_alive_sql(
    *,
    key_range: tuple[int, int],
    source: str = "store",
    people: str = "targets",
    where: str = "",
    kinds: Sequence[str] = AGGREGATED_KINDS,
) -> str:
    """The routine alive rows of `source` (one branch per kind: its partitions only) that belong
    to `people`, matching `where` (` AND …`), with the person's loss and missing dates: id_key,
    event_date, alive_rank, loss_date, missing_date.

    `key_range` (`key_range_sql`) is a first filter before the join: the young people who make
    most of the trips cannot be recipients, and their row groups are skipped unread."""
    rows = alive_branches_sql(source, "id_key, event_date", f"{_in_key_range_sql(key_range)}{where}", kinds)
    return f"""
SELECT e.id_key, e.event_date, e.alive_rank, t.loss_date, t.missing_date
FROM (
  {rows}
) e JOIN {people} t ON e.id_key = t.id_key
"""


def winners_of_sql(rows: str, d: sql.Dialect = sql.DUCKDB) -> str:
    """Per person, over `rows` (`joined_alive_sql`'s columns): the newest alive record and the
    earliest after the loss date and after the declaration of missing, each as its day and the
    key `day x 100 + rank` the decision builders order by (same-day ties: the first kind of the
    §3 table). Output: id_key, newest, newest_key, after_loss, after_loss_key, after_missing,
    after_missing_key."""
    newest_key = _newest_key_sql(d, "e.alive_rank")
    key = f"{d.days('e.event_date')} * 100 + e.alive_rank"
    after_loss = "e.event_date > e.loss_date"
    after_missing = "e.event_date > e.missing_date"
    return f"""
SELECT e.id_key,
  max(e.event_date) AS newest,
  max({newest_key}) AS newest_key,
  min(e.event_date) FILTER (WHERE {after_loss}) AS after_loss,
  min({key}) FILTER (WHERE {after_loss}) AS after_loss_key,
  min(e.event_date) FILTER (WHERE {after_missing}) AS after_missing,
  min({key}) FILTER (WHERE {after_missing}) AS after_missing_key
FROM ({rows}) e
GROUP BY e.id_key
"""


def winners_sql(
    *,
    window_start: date,
    key_range: tuple[int, int],
    source: str = "store",
    people: str = "targets",
    kinds: Sequence[str] = AGGREGATED_KINDS,
    d: sql.Dialect = sql.DUCKDB,
    since: date | None = None,
    before: date | None = None,
) -> str:
    """`winners_of_sql` over the routine rows of `people` dated on or before `window_start`.

    `since` / `before`: only the rows dated on or after / before that day (and only the month
    partitions that can hold them): `ScaleRun.full` reduces the recent months and the older ones
    apart.
    """
    # Rows before a `before` on or before the day after the window's start are all on or before it.
    late = before is None or before > window_start + timedelta(days=1)
    where = f" AND event_date <= {sql.date_literal(window_start)}" if late else ""
    where += _period_sql(since, before)
    rows = joined_alive_sql(key_range=key_range, source=source, people=people, where=where, kinds=kinds)
    return winners_of_sql(rows, d)


def _month_label(day: date) -> str:
    """The store's month partition of a day (`month=YYYY-MM`)."""
    return f"{day.year:04d}-{day.month:02d}"


def unresolved_sql(recent_winners: str = "recent_winners", people: str = "targets") -> str:
    """The people whose winners the older rows can still change: those without an alive record
    in the recent months (their newest may be older), and those with a loss or a declaration of
    missing (their earliest alive record after it may be older). For everyone else an older row
    is older than the newest, and no earliest-after is looked for."""
    return (
        f"SELECT t.* FROM {people} t WHERE t.loss_date IS NOT NULL OR t.missing_date IS NOT NULL "
        f"OR t.id_key NOT IN (SELECT id_key FROM {recent_winners})"
    )


def merged_winners_sql(parts: Sequence[str]) -> str:
    """The winners over the union of the rows of `parts` (winner tables over disjoint rows): the
    newest is the newest of the newest, the earliest the earliest of the earliest."""
    rows = " UNION ALL ".join(f"SELECT * FROM {p}" for p in parts)
    return f"""
SELECT id_key, max(newest) AS newest, max(newest_key) AS newest_key,
  min(after_loss) AS after_loss, min(after_loss_key) AS after_loss_key,
  min(after_missing) AS after_missing, min(after_missing_key) AS after_missing_key
FROM ({rows}) w
GROUP BY id_key
"""


def winner_rows_sql(winners: str = "winners", kinds: Sequence[str] = AGGREGATED_KINDS) -> str:
    """The winners as evidence rows (feed_kind, id_key, sub, event_date)."""
    parts = []
    for day, rank in (
        ("newest", "100 - newest_key % 100"),
        ("after_loss", "after_loss_key % 100"),
        ("after_missing", "after_missing_key % 100"),
    ):
        kind = _kind_of_rank_sql(f"({rank})", kinds)
        sub = f"CASE WHEN {sql.in_list_sql(kind, SUB_KINDS)} THEN 'pass' END"
        parts.append(
            f"SELECT {kind} AS feed_kind, id_key, {sub} AS sub, {day} AS event_date FROM {winners} "
            f"WHERE {day} IS NOT NULL"
        )
    return "\nUNION ALL\n".join(parts)


def ranked_rows_sql(rows: str, kinds: Sequence[str] = AGGREGATED_KINDS) -> str:
    """Rows with an `alive_rank` (`joined_alive_sql`) as kept rows (feed_kind, id_key, sub,
    event_date): the rank names the kind, and an alive authentication's `sub` is `pass`."""
    kind = _kind_of_rank_sql("e.alive_rank", kinds)
    ranks = ", ".join(str(sql.ALIVE_RANK[k]) for k in kinds if k in SUB_KINDS)
    sub = f"CASE WHEN e.alive_rank IN ({ranks}) THEN 'pass' END" if ranks else "CAST(NULL AS VARCHAR)"
    return f"SELECT {kind} AS feed_kind, e.id_key, {sub} AS sub, e.event_date FROM ({rows}) e"


def reduced_evidence_sql(reduced: str = "reduced", rare: str = "rare") -> str:
    """The kept rows as evidence rows (feed_kind, id_key, event_date, end_date, sub)."""
    return f"""
SELECT feed_kind, id_key, event_date, CAST(NULL AS DATE) AS end_date, sub FROM {reduced}
UNION ALL
SELECT feed_kind, id_key, event_date, end_date, sub FROM {rare}
"""


def changed_targets_sql(old: str = "old_targets", new: str = "targets") -> str:
    """Recipients whose loss date or declaration of missing moved (or appeared), with the date
    that moved (the other one NULL)."""
    loss = "n.loss_date IS NOT NULL AND (o.loss_date IS NULL OR n.loss_date <> o.loss_date)"
    missing = "n.missing_date IS NOT NULL AND (o.missing_date IS NULL OR n.missing_date <> o.missing_date)"
    return f"""
SELECT n.id_key, n.loss_date, n.missing_date,
  CASE WHEN {loss} THEN n.loss_date END AS loss_moved,
  CASE WHEN {missing} THEN n.missing_date END AS missing_moved
FROM {new} n LEFT JOIN {old} o ON n.id_key = o.id_key
WHERE ({loss}) OR ({missing})
"""


def recipients_evidence_sql(as_of: date) -> str:
    """The scoped evidence of a `ScaleRun` (`sql.scoped_evidence_sql`'s rows): the rows dated on or
    before the as-of date. Without its semi join to `recipients`: every kept row was joined to the
    recipients' keys when it was kept (`joined_alive_sql`, `rare_rows_sql`, `batch_newer_sql`), so
    the join would keep them all, and it built its hash table of the recipients for each of the
    three statements that read `scoped` (0.2-0.35 s of a 9-10 s full run, 0.025 s of an
    increment's 0.7, measured 2026-12-02)."""
    return f"SELECT e.* FROM evidence e WHERE e.event_date <= {sql.date_literal(as_of)}"


def special_scoped_sql(as_of: date) -> str:
    """The scoped rows `after_facts_sql` and `imprisonment_sql` can use: every row of the people
    with a loss or a declaration of missing, and the 无法联系, custodial-sentence and release rows
    of everyone (the other people's after-facts are empty either way)."""
    return (
        f"{recipients_evidence_sql(as_of)} AND (e.is_unreachable OR e.is_custodial OR e.is_release OR "
        "e.id_number IN (SELECT id_number FROM facts WHERE loss_date IS NOT NULL OR missing_date IS NOT NULL))"
    )


def compact_sql() -> str:
    """The deciding routine rows of each person (feed_kind, id_key, sub, event_date), from a
    decided run's `facts` and `after_facts`: the newest alive record, and the earliest alive
    records after the loss and after the declaration of missing (the winners, same-day ranks
    included). With the rare rows they decide the person exactly as all their rows do, and a
    new batch's rows merge into them."""
    parts = []
    for kind, day, table in (
        ("alive_kind", "alive_date", "facts"),
        ("alive_after_loss_kind", "alive_after_loss_date", "after_facts"),
        ("alive_after_missing_kind", "alive_after_missing_date", "after_facts"),
    ):
        sub = f"CASE WHEN {sql.in_list_sql(kind, SUB_KINDS)} THEN 'pass' END"
        parts.append(
            f"SELECT {kind} AS feed_kind, id_number AS id_key, {sub} AS sub, {day} AS event_date FROM {table} "
            f"WHERE {day} IS NOT NULL AND {sql.in_list_sql(kind, AGGREGATED_KINDS)}"
        )
    return "\nUNION ALL\n".join(parts)


def recipients_for_decide_sql(*, text: bool = True) -> str:
    """`recipients` as the decision builders read it, joined on the integer key. `text=False`:
    without the name, the 18-character ID and the unit (NULL), which no decision reads and a
    result only carries: an increment's changed results take them from the saved results
    (`output_sql`), and leaving them unread spares it the roll's widest text columns."""
    empty = "CAST(NULL AS VARCHAR)"
    name, id18, unit = ("name", "id_number", "unit_no") if text else (empty, empty, empty)
    return f"""
SELECT person_no, {name} AS name, id_key AS id_number, {id18} AS id18, {unit} AS unit_no, benefit_status, status_since,
  status_reason, monthly_amount, mobile, retirement_date, last_certified_on
FROM recipients_input WHERE benefit_status IN ('normal', 'suspended')
"""


def evidence_for_decide_sql(source: str, as_of: date) -> str:
    """The `evidence` table of the decision builders (classified, keyed by `id_key`). Rows dated
    after the as-of date are left out here: they are not evidence (`scoped_evidence_sql`)."""
    ranks = dict(sql.ALIVE_RANK)
    alive_always = ["rail", "flight", "hospital", "checkup", "border", "overseas_review", "release"]
    return (
        f"SELECT id_key AS id_number, feed_kind, event_date, end_date, sub, "
        f"{sql.classify_sql(alive_ranks=ranks, alive_always=alive_always)} FROM {source} "
        f"WHERE event_date <= {sql.date_literal(as_of)}"
    )


def results_sql(decisions: str = "decisions", recipients: str = "recipients") -> str:
    """The decisions with the 18-character ID back in place."""
    columns = ", ".join(f"d.{c}" if c != "id_number" else "r.id18 AS id_number" for c in DECISION_COLUMNS)
    return f"SELECT {columns} FROM {decisions} d JOIN {recipients} r ON d.person_no = r.person_no"


def unfilled_results_sql(decisions: str = "decisions") -> str:
    """The decisions as results without the roll's text (`ROLL_TEXT_COLUMNS` NULL): what an
    increment writes for the people decided again (`filled_results_sql` fills them). Decided
    without that text (`recipients_for_decide_sql(text=False)`), they need no join to the roll."""
    columns = ", ".join(
        f"CAST(NULL AS VARCHAR) AS {c}" if c in ROLL_TEXT_COLUMNS else f"d.{c}" for c in DECISION_COLUMNS
    )
    return f"SELECT {columns} FROM {decisions} d"


def decisions_of_results_sql(results: str = "results") -> str:
    """`decisions` from results: the ID back to its store key."""
    columns = ", ".join(
        c if c != "id_number" else f"{sql.id_key_sql('id_number')} AS id_number" for c in DECISION_COLUMNS
    )
    return f"SELECT {columns} FROM {results}"


def only_people_sql(table: str, people: str = "touched", key: str = "id_key") -> str:
    """The rows of `table` whose `key` is among `people`' `id_key`s."""
    return f"SELECT t.* FROM {table} t WHERE t.{key} IN (SELECT id_key FROM {people})"


def merge_kept_sql(old: str, new: str, people: str, key: str = "person_no") -> str:
    """The old rows of the people not decided again, and the new rows (`people`: a table with a
    `key` column naming the people decided again)."""
    return f"SELECT o.* FROM {old} o WHERE o.{key} NOT IN (SELECT {key} FROM {people}) UNION ALL SELECT * FROM {new}"


def _newest_key_sql(d: sql.Dialect, rank: str | None = None) -> str:
    """The key `person_facts_sql` takes the newest alive record by (`winners_sql`'s newest_key) of
    a row `e`: its day x 100 + 100 - its rank (`rank`: an expression of it; else its kind's)."""
    return f"{d.days('e.event_date')} * 100 + 100 - {rank or _rank_sql(AGGREGATED_KINDS)}"


def _after_day_key_sql(day: str, d: sql.Dialect) -> str:
    """The highest `_newest_key_sql` of a record dated `day`: a record's key is above it exactly
    when the record is dated after `day` (ranks are 1-99, so a day's keys are day x 100 + 1 to
    day x 100 + 99)."""
    return f"{d.days(day)} * 100 + 99"


def saved_thresholds_sql(
    targets: str = "targets", compact: str = "compact", d: sql.Dialect = sql.DUCKDB
) -> str:
    """Per recipient (one row each): `newer_than`, the key (`_newest_key_sql`) above which a new
    alive record can change their decision: the lowest of the key of their newest saved alive
    winner (`compact`), and the keys after their earliest loss and declaration of missing
    (`targets`, `_after_day_key_sql`). NULL when no alive winner is saved (the newest may then be
    a rare row's): every record can. A run's state keeps it (`saved.parquet`), so that an
    increment compares a batch's records with one number a person, without joining the winners
    again (`batch_newer_sql`)."""
    loss, missing = _after_day_key_sql("t.loss_date", d), _after_day_key_sql("t.missing_date", d)
    # least() skips NULLs in both dialects: a person without a loss keeps their newest key.
    return f"""
SELECT t.id_key, CASE WHEN c.newest_key IS NOT NULL THEN least(c.newest_key, {loss}, {missing}) END AS newer_than
FROM {targets} t LEFT JOIN (
  SELECT e.id_key, max({_newest_key_sql(d)}) AS newest_key FROM {compact} e GROUP BY e.id_key
) c ON t.id_key = c.id_key
"""


def saved_with_changes_sql(saved: str = "old_saved", changed: str = "changed") -> str:
    """The saved thresholds, with none (every record counts) for the people whose loss or
    missing date the batch moved (`changed_targets_sql`): they are decided again from their kept
    rows anyway, and more of their rows decide as the needed ones do."""
    return (
        f"SELECT s.id_key, CASE WHEN s.id_key IN (SELECT id_key FROM {changed}) THEN NULL "
        f"ELSE s.newer_than END AS newer_than FROM {saved} s"
    )


def batch_newer_sql(
    as_of: date,
    *,
    key_range: tuple[int, int],
    batch: str = "batch",
    saved: str = "saved",
    d: sql.Dialect = sql.DUCKDB,
) -> str:
    """The batch's alive records dated on or before `as_of` that can change a recipient's
    decision: those whose key is above the person's saved `newer_than` (`saved_thresholds_sql`:
    newer than their newest saved winner, or after their earliest loss or declaration of
    missing; with none saved, every record), as (id_key, event_date, alive_rank), each once.
    One pass over the batch's files (`key_range` as in `winners_sql`).

    Any other alive record of the batch changes none of what the decision builders read: not the
    newest alive record (docs/rules.md §1 `C`: it is not newer; the same day and kind is the same
    winner), not the earliest alive records after the loss and the declaration of missing (§2.1:
    it is not after them). So these rows, the saved winners (and, for a person whose loss
    moved, the kept rows) decide exactly as all the person's rows do."""
    in_range = _in_key_range_sql(key_range)
    rows = alive_branches_sql(
        batch, "id_key, event_date", f"event_date <= {sql.date_literal(as_of)} AND {in_range}"
    )
    return f"""
SELECT DISTINCT e.id_key, e.event_date, e.alive_rank
FROM (
  {rows}
) e JOIN {saved} s ON e.id_key = s.id_key
WHERE s.newer_than IS NULL OR {_newest_key_sql(d, "e.alive_rank")} > s.newer_than
"""


def due_again_sql(
    state_as_of: date,
    as_of: date,
    *,
    results: str = "old_results",
    actions: str = "old_actions",
    roll: str = "recipients_input",
    kept: Sequence[str] = ("old_reduced", "old_rare"),
    rare: str = "old_rare",
    d: sql.Dialect = sql.DUCKDB,
) -> str:
    """The recipients whose saved decision or action (decided at `state_as_of`, D) the later
    as-of date D' can change with no new row: what the decision builders read of the as-of date
    (docs/rules.md §2, §3, §8), each compared at both dates from the state's files:
    - a row dated in (D, D'] becomes evidence (`sql.scoped_evidence_sql`; `kept`: the routine rows
      after D and every rare row);
    - a custodial sentence with its planned end in [D, D') stops counting (`sql.imprisonment_sql`);
    - the roll's last certification, retirement or status date in (D, D'] starts counting;
    - an eligible decision's deadline is reached (due_on <= D'), or its reminder starts
      (`sql.decisions_sql`'s own test, at D');
    - in a new month, every action: its months and amount count to the as-of month
      (`sql.actions_sql`).
    Everyone else's decision and action at D' are the saved ones."""
    before, day = sql.date_literal(state_as_of), sql.date_literal(as_of)
    parts = [
        f"SELECT {sql.id_key_sql('id_number')} AS id_key FROM {results} WHERE status = 'eligible' "
        f"AND (due_on <= {day} OR (remind = 0 AND due_on <= {d.add_months(day, 3)}))",
        *(f"SELECT id_key FROM {rows} WHERE event_date > {before} AND event_date <= {day}" for rows in kept),
        f"SELECT id_key FROM {rare} WHERE feed_kind = 'sentence' AND sub = 'custodial' "
        f"AND end_date >= {before} AND end_date < {day}",
        *(
            f"SELECT id_key FROM {roll} WHERE {col} > {before} AND {col} <= {day}"
            for col in ("last_certified_on", "retirement_date", "status_since")
        ),
    ]
    if (as_of.year, as_of.month) != (state_as_of.year, state_as_of.month):
        parts.append(f"SELECT id_key FROM {roll} WHERE person_no IN (SELECT person_no FROM {actions})")
    return "\nUNION ".join(parts)


def decide_again_sql(
    batch_newer: str = "batch_newer",
    batch_rare: str = "batch_rare",
    changed: str = "changed",
    due: str | None = None,
) -> str:
    """The recipients whose decision can change: those with a rare row in the batch or a loss
    date that moved, those with alive evidence in the batch that can change it
    (`batch_newer_sql`), and at a later as-of date those it is `due` for (`due_again_sql`).
    Everyone else keeps their saved decision and actions: a person's decision depends only on
    their roll row, their rows and the as-of date, the batch changes none of what the builders
    read of theirs (no rare row, and see `batch_newer_sql`), and the new as-of date changes
    nothing the builders read of theirs (`due_again_sql`)."""
    due_people = f" UNION SELECT id_key FROM {due}" if due else ""
    return (
        f"SELECT id_key FROM {batch_rare} UNION SELECT id_key FROM {changed} "
        f"UNION SELECT id_key FROM {batch_newer}{due_people}"
    )


# The one rare row that is alive evidence and nothing else: a unit's confirmation that its
# retiree is eligible (单位确认具备资格; docs/rules.md §1, rank 8). It moves no loss, declaration of
# missing, 无法联系, sentence or release, so a person whose kept rare rows are all such is decided
# from their newest record as one with none is (`plain_again_sql`, `newest_facts_sql`).
ALIVE_ONLY_RARE = "(feed_kind = 'unit_confirm' AND sub = 'eligible')"


def plain_again_sql(
    again: str = "touched",
    rare: str = "touched_rare",
    changed: str = "changed",
    due: str | None = None,
    batch_rare: str = "batch_rare",
) -> str:
    """The people decided again who have no rare row in the batch and no kept rare row but unit
    confirmations of eligibility (`ALIVE_ONLY_RARE`), no moved loss date (hence no loss either)
    and whom the as-of date does not make `due`: `decide_again_sql` took them because the batch's
    newest alive record is newer than their saved one (they are in `batch_newer`: touched, with no
    batch rare row and no moved date). (A person due may have kept rows dated between the two as-of
    dates.) `rare`: the rare rows of `again` (`touched_rare`), or all of them."""
    not_due = f" AND a.id_key NOT IN (SELECT id_key FROM {due})" if due else ""
    return (
        f"SELECT a.id_key FROM {again} a WHERE a.id_key NOT IN (SELECT id_key FROM {rare} WHERE NOT {ALIVE_ONLY_RARE}) "
        f"AND a.id_key NOT IN (SELECT id_key FROM {batch_rare}) "
        f"AND a.id_key NOT IN (SELECT id_key FROM {changed}){not_due}"
    )


def newest_facts_sql(
    as_of: date,
    rows: str = "batch_newer",
    people: str = "plain",
    rare: str = "touched_rare",
    d: sql.Dialect = sql.DUCKDB,
) -> str:
    """`person_facts_sql`'s row (id_number, alive_date, alive_kind; the rest NULL) for each of
    `people` (`plain_again_sql`): with no rare row but unit confirmations of eligibility there is
    no loss, declaration of missing, 无法联系, sentence or release, and the newest alive record
    (docs/rules.md §1 `C`) is the newest of the batch's records above their threshold (`rows`:
    `batch_newer_sql`) and their confirmations dated by `as_of` (in `rare`), so their decision
    needs none of their other rows: every other alive record of theirs is older than their saved
    newest winner, which every row of `rows` is newer than (`saved_thresholds_sql`; with no
    winner saved, `rows` holds all their batch's records)."""
    rank = sql.ALIVE_RANK["unit_confirm"]
    kind = _kind_of_rank_sql("(100 - w.newest_key % 100)", (*AGGREGATED_KINDS, "unit_confirm"))
    confirmations = (
        f"SELECT id_key, event_date, {rank} AS alive_rank FROM {rare} "
        f"WHERE {ALIVE_ONLY_RARE} AND event_date <= {sql.date_literal(as_of)}"
    )
    return f"""
SELECT w.id_key, w.newest, {kind} FROM (
  SELECT e.id_key, max(e.event_date) AS newest, max({_newest_key_sql(d, "e.alive_rank")}) AS newest_key
  FROM (SELECT id_key, event_date, alive_rank FROM {rows} UNION ALL {confirmations}) e
  WHERE e.id_key IN (SELECT id_key FROM {people}) GROUP BY e.id_key
) w
"""


CHANGED_SUFFIX = "-changed"  # results-changed.parquet, actions-changed.parquet


def filled_results_sql(changed: str, base: str) -> str:
    """`changed` results (`ROLL_TEXT_COLUMNS` empty) with those columns from the same person's
    row of the `base` results: the recipients of an increment are its state's, so the person's
    ID, name and unit are the ones the base holds. A LEFT JOIN: a row is never lost, and a person the
    base lacked would show with the columns empty rather than vanish."""
    columns = ", ".join(f"b.{c}" if c in ROLL_TEXT_COLUMNS else f"c.{c}" for c in DECISION_COLUMNS)
    return f"SELECT {columns} FROM {changed} c LEFT JOIN {base} b ON c.person_no = b.person_no"


def output_sql(out: Path, table: str) -> str:
    """A written run's `results` or `actions` (`ScaleRun.write`). After a fast increment the
    directory holds the previous run's files and, beside them, the rows of the people decided
    again (`results-changed.parquet`, `actions-changed.parquet`), which replace those people's
    rows (their actions too: a person decided again may have none now). A changed result
    carries the decision only: its ID, name and unit are the base row's (`filled_results_sql`)."""

    def path(name: str) -> str:
        return f"read_parquet({sql.quote(str(out / f'{name}.parquet'))})"

    if not (out / f"results{CHANGED_SUFFIX}.parquet").exists():
        return f"SELECT * FROM {path(table)}"
    again = path(f"results{CHANGED_SUFFIX}")
    changed = path(table + CHANGED_SUFFIX)
    if table == "results":
        changed = f"({filled_results_sql(again, path(table))})"
    return (
        f"SELECT o.* FROM {path(table)} o WHERE o.person_no NOT IN (SELECT person_no FROM {again}) "
        f"UNION ALL SELECT * FROM {changed}"
    )


# ---------------------------------------------------------------------------------------------
# Running on DuckDB
# ---------------------------------------------------------------------------------------------


EMPTY_STORE = (
    "SELECT CAST(NULL AS VARCHAR) AS feed_kind, CAST(NULL AS VARCHAR) AS month, CAST(NULL AS BIGINT) AS id_key, "
    "CAST(NULL AS DATE) AS event_date, CAST(NULL AS DATE) AS end_date, CAST(NULL AS VARCHAR) AS sub WHERE 1 = 0"
)


def store_scan_sql(paths: Sequence[Path | str]) -> str:
    """The store's rows (hive partitions kind=/month=) as feed_kind, month, id_key, event_date,
    end_date, sub. `paths` are store roots; roots without any file are skipped."""
    roots = [p for p in paths if any(Path(p).glob("kind=*/month=*/*.parquet"))]
    if not roots:
        return EMPTY_STORE
    globs = ", ".join(sql.quote(f"{p}/kind=*/month=*/*.parquet") for p in roots)
    return (
        "SELECT kind AS feed_kind, month, id_key, event_date, end_date, sub "
        f"FROM read_parquet([{globs}], hive_partitioning = true, "
        "hive_types = {'kind': VARCHAR, 'month': VARCHAR})"
    )


def floor_sql(paths: Sequence[Path | str]) -> str:
    """The scan floor: read the columns the certification needs (kind, id_key, event_date, sub)."""
    return (
        "SELECT count(*), max(id_key), max(event_date), max(sub), count(DISTINCT feed_kind) "
        f"FROM ({store_scan_sql(paths)})"
    )


def reduced_parts(state: Path) -> list[Path]:
    """A state's kept rows: `reduced.parquet`, then the parts chained days added, in order."""
    return [state / "reduced.parquet", *sorted(state.glob("reduced-*.parquet"))]


def _link(source: Path, target: Path) -> None:
    """`target` as a second name of `source` (a copy where the file system has none). Neither
    is changed in place afterwards: `ScaleRun.save_state` writes a new state directory, and
    `ScaleRun.write` removes a name before it writes one."""
    if source.resolve() == target.resolve():
        return
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@dataclass
class ScaleRun:
    """One certification on a DuckDB connection; `decisions` and `actions` tables when done."""

    con: duckdb.DuckDBPyConnection
    recipients: Path | str  # a Parquet file, or a query giving the normalised recipients
    as_of: date
    window_days: int = DEFAULT_WINDOW_DAYS
    timings: dict[str, float] = field(default_factory=dict)
    key_range: tuple[int, int] = (0, 0)
    merged: bool = False  # a fast increment: `results` and `decisions` are views over the merge
    base: Path | None = None  # with `merged`: the state whose saved results the new rows replace
    saved: Path | None = None  # a full run's state, which holds its results and actions
    cleared: bool = False  # decided with cleared loss records (`full`): no increment from its state

    def _timed(self, label: str, statement: str) -> None:
        started = time.perf_counter()
        self.con.execute(statement)
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - started

    def _timed_build_right(self, label: str, statement: str) -> None:
        """`_timed`, with each hash join's right side as its hash table. DuckDB estimates a
        filtered Parquet scan at a fraction of its rows and would hash a batch's millions of rows
        to probe them with the 2 million saved ones, at twice the cost of the other way round."""
        self.con.execute("SET disabled_optimizers = 'build_side_probe_side'")
        try:
            self._timed(label, statement)
        finally:
            self.con.execute("RESET disabled_optimizers")

    def _load_recipients(self, kind: str = "TABLE", keys: str | None = None) -> None:
        """`recipients_input` and `recipient_keys` (`keys`: a query giving them, e.g. the state's)."""
        self._timed(
            "recipients",
            f"CREATE OR REPLACE {kind} recipients_input AS "
            + (
                f"SELECT * FROM read_parquet({sql.quote(str(self.recipients))})"
                if isinstance(self.recipients, Path)
                else self.recipients
            ),
        )
        # The state's keys are a file of one column, read as it is needed: a view (2 million
        # keys copied into a table cost the increment 0.03-0.1 s).
        kind_of_keys = "VIEW" if keys else "TABLE"
        self._timed(
            "recipients", f"CREATE OR REPLACE {kind_of_keys} recipient_keys AS {keys or recipient_keys_sql()}"
        )
        low, high = self.con.execute(key_range_sql()).fetchone() or (None, None)
        self.key_range = (int(low or 0), int(high or 0))

    @property
    def window_start(self) -> date:
        return self.as_of - timedelta(days=self.window_days)

    def full(
        self,
        store: Sequence[Path | str] | str,
        state: Path | None = None,
        *,
        cleared: str | None = None,
        superseded: str | None = None,
    ) -> None:
        """Reduce the whole store, decide, and keep the reduced rows in `state`.

        `store` lists store roots, or is a query giving the store's columns (`feed_kind`,
        `month`, `id_key`, `event_date`, `end_date`, `sub`). `cleared`: a table of the people a
        bureau review found alive (id_key, cleared_on; `uncleared_sql`), whose earlier loss and
        missing records are then no evidence (a state saved with them takes no increment);
        `superseded`, with `cleared` only: the superseded death findings' dates (id_key,
        event_date), whose `unit_confirm` 丧失资格 rows are no evidence either.
        """
        # A view: the keys and the decided recipients' rows are each read once.
        self._load_recipients("VIEW")
        source = store if isinstance(store, str) else store_scan_sql(store)
        self.con.execute(f"CREATE OR REPLACE VIEW store AS {source}")
        rare = rare_rows_sql() if cleared is None else uncleared_sql(rare_rows_sql(), cleared, superseded)
        self._timed("rare", f"CREATE OR REPLACE TABLE rare AS {rare}")
        self.cleared = cleared is not None
        self._timed("reduce", f"CREATE OR REPLACE TABLE targets AS {targets_sql(self.as_of)}")
        self._reduce_full(window_start=self.window_start)
        self.decide()
        if state is not None:
            self._keep_compact()
            self.save_state(state, state_as_of=self.as_of)
            self.saved = state

    def _reduce_full(self, *, window_start: date) -> None:
        """`reduced` := the winners of the store's older rows and every recent row of the
        recipients, newest months first.

        A recipient with any alive record in the month before the window's (or in the window's
        month, before it) has their newest there, so their rows of the older months can change
        nothing unless they have a loss or a declaration of missing (`unresolved_sql`). The
        older months, most of the store, are then joined to the few others only: DuckDB's join
        filter drops the other people's rows in the scan, and the hash join and the per-person
        aggregate see a sliver of the recipients' rows instead of all of them."""
        split = date(window_start.year, window_start.month, 1) - timedelta(days=1)
        split = date(split.year, split.month, 1)
        # The recent months are read and joined once: their rows up to the window's start give
        # the winners, the later ones are kept whole.
        start = sql.date_literal(window_start)
        joined = joined_alive_sql(key_range=self.key_range, where=_period_sql(split, None))
        self._timed("reduce recent", f"CREATE OR REPLACE TABLE recent_joined AS {joined}")
        recent = winners_of_sql(f"SELECT * FROM recent_joined WHERE event_date <= {start}")
        self._timed("reduce recent", f"CREATE OR REPLACE TABLE recent_winners AS {recent}")
        self._timed("reduce older", f"CREATE OR REPLACE TABLE unresolved AS {unresolved_sql()}")
        older = winners_sql(
            window_start=window_start, key_range=self.key_range, people="unresolved", before=split
        )
        self._timed("reduce older", f"CREATE OR REPLACE TABLE older_winners AS {older}")
        merged = merged_winners_sql(["recent_winners", "older_winners"])
        self._timed("reduce recent", f"CREATE OR REPLACE TABLE winners AS {merged}")
        recent = ranked_rows_sql(f"SELECT * FROM recent_joined WHERE event_date > {start}")
        self._timed(
            "reduce recent", f"CREATE OR REPLACE TABLE reduced AS {winner_rows_sql()} UNION ALL {recent}"
        )
        self.con.execute("DROP TABLE recent_joined")

    def _reduce(
        self,
        table: str,
        label: str,
        *,
        window_start: date,
        source: str = "store",
        people: str = "targets",
        month_from: str | None = None,
    ) -> None:
        """`table` := the winners of the older rows and every recent row of `people` in `source`
        (from the month `month_from` on), as `_reduce_full` keeps them: the rows read and joined
        once, then split at the window's start."""
        months = f" AND month >= {sql.quote(month_from)}" if month_from else ""
        joined = joined_alive_sql(key_range=self.key_range, source=source, people=people, where=months)
        self._timed(label, f"CREATE OR REPLACE TABLE {table}_joined AS {joined}")
        start = sql.date_literal(window_start)
        winners = winners_of_sql(f"SELECT * FROM {table}_joined WHERE event_date <= {start}")
        self._timed(label, f"CREATE OR REPLACE TABLE winners AS {winners}")
        recent = ranked_rows_sql(f"SELECT * FROM {table}_joined WHERE event_date > {start}")
        self._timed(label, f"CREATE OR REPLACE TABLE {table} AS {winner_rows_sql()} UNION ALL {recent}")
        self.con.execute(f"DROP TABLE {table}_joined")

    def decide(
        self,
        reduced: str = "reduced",
        *,
        rare: str = "rare",
        people: str | None = None,
        newest_facts: str | None = None,
        roll_text: bool = True,
    ) -> None:
        """Run the batch chain's decision builders on the kept rows (`reduced` and `rare`); with
        `people` (a table of `id_key`s), only those recipients are decided. `newest_facts`: the
        facts of recipients decided without rows (`newest_facts_sql`). `roll_text=False`: the
        results are left without the roll's ID, name and unit (`recipients_for_decide_sql`)."""
        con = self.con
        self.saved = None  # new decisions: a state saved before does not hold them
        recipients = recipients_for_decide_sql(text=roll_text)
        if people is not None:
            recipients += f" AND id_key IN (SELECT id_key FROM {people})"
        self._timed("decide", f"CREATE OR REPLACE TABLE recipients AS {recipients}")
        self._timed(
            "decide evidence",
            f"CREATE OR REPLACE TABLE evidence AS {evidence_for_decide_sql(f'({reduced_evidence_sql(reduced, rare)}) x', self.as_of)}",
        )
        self._timed("decide", f"CREATE OR REPLACE TEMP VIEW scoped AS {recipients_evidence_sql(self.as_of)}")
        self._timed("decide facts", f"CREATE OR REPLACE TABLE facts AS {sql.person_facts_sql()}")
        if newest_facts is not None:
            self._timed(
                "decide facts", f"INSERT INTO facts (id_number, alive_date, alive_kind) {newest_facts}"
            )
        self._timed("decide", f"CREATE OR REPLACE TEMP VIEW scoped AS {special_scoped_sql(self.as_of)}")
        for table, query in (
            ("after_facts", sql.after_facts_sql()),
            ("imprisonment", sql.imprisonment_sql(self.as_of)),
            ("decisions", sql.decisions_sql(self.as_of)),
            ("actions", sql.actions_sql(self.as_of)),
        ):
            self._timed(f"decide {table}", f"CREATE OR REPLACE TABLE {table} AS {query}")
        con.execute("DROP TABLE evidence")

    def _keep_compact(self) -> None:
        """`compact` (`compact_sql`) from the decided run's facts: only a state saved from the run
        reads it (its winners and thresholds), so a run that saves none does not build it."""
        self._timed("decide", f"CREATE OR REPLACE TABLE compact AS {compact_sql()}")

    def save_state(self, state: Path, *, state_as_of: date) -> None:
        """Write the state an increment starts from: every file after a full run; after a
        chained day's increment, what changed beside the base state's files (`_chained_files`).

        The state is written whole into a new directory beside `state`, which then replaces
        it: a crash while writing leaves the earlier state as it was, and between the two
        renames there is no state at `state` (an increment refuses to start) and the earlier
        one lies beside it (`.<name>.old`) — never some files of each. `state` must be a state
        directory, an empty one or none."""
        started = time.perf_counter()
        if state.exists() and any(state.iterdir()) and not (state / "state.json").exists():
            raise ValueError(f"{state}: not a state directory (no state.json); nothing was written")
        fresh, old = state.with_name(f".{state.name}.new"), state.with_name(f".{state.name}.old")
        for leftover in (fresh, old):
            shutil.rmtree(leftover, ignore_errors=True)
        fresh.mkdir(parents=True)
        # file name -> the query that gives it, or the file it is a second name of
        files: dict[str, str | Path] = {
            f"{t}.parquet": f"SELECT * FROM {t}" for t in ("rare", "targets", "compact")
        }
        files["saved.parquet"] = saved_thresholds_sql()
        if self.merged and self.base is not None:
            files.update(self._chained_files(self.base))
        else:
            files["reduced.parquet"] = "SELECT * FROM reduced"
            files["results.parquet"] = self._results_query()
            files["actions.parquet"] = "SELECT * FROM actions"
        for name, source in files.items():
            if isinstance(source, Path):
                _link(source, fresh / name)
            else:
                options = "" if name.startswith(OUTPUT_FILES) else ", COMPRESSION uncompressed"
                self.con.execute(
                    f"COPY ({source}) TO {sql.quote(str(fresh / name))} (FORMAT parquet{options})"
                )
        meta = {
            "version": STATE_VERSION, "as_of": state_as_of.isoformat(), "window_days": self.window_days,
            "recipients": str(self.recipients), "cleared": self.cleared,
        }  # fmt: skip
        (fresh / "state.json").write_text(json.dumps(meta, indent=2))
        if state.exists():
            state.rename(old)
        fresh.rename(state)
        shutil.rmtree(old, ignore_errors=True)
        self.timings["save state"] = time.perf_counter() - started

    def _chained_files(self, base: Path) -> dict[str, str | Path]:
        """A chained day's state files over the `base` state's: its kept-row parts and this
        day's kept rows (`new_reduced`) as one more (past `MAX_REDUCED_PARTS`, all in one file);
        its results and actions with the rows of everyone decided again since it was written
        whole beside them (`changed_results`, `changed_actions`: `output_sql` reads the two), or
        the merged ones written whole once those reach `REBASE_SHARE` of its results."""
        # Loss dates and winners change only for the people decided again (`touched`: a batch's
        # rare row or a rare row dated since the state's date makes a person so), and so do the
        # thresholds: the others' are the base's.
        theirs = saved_thresholds_sql(f"({only_people_sql('targets')})", f"({only_people_sql('compact')})")
        files: dict[str, str | Path] = {
            "saved.parquet": merge_kept_sql("old_saved", f"({theirs})", "touched", key="id_key")
        }
        parts = reduced_parts(base)
        if len(parts) >= MAX_REDUCED_PARTS:
            files["reduced.parquet"] = "SELECT * FROM old_reduced UNION ALL SELECT * FROM new_reduced"
        else:
            files.update({part.name: part for part in parts})
            files[f"reduced-{len(parts):04d}.parquet"] = "SELECT * FROM new_reduced"
        changed = self._count("changed_results")
        if changed > REBASE_SHARE * self._count(f"read_parquet({sql.quote(str(base / 'results.parquet'))})"):
            files.update({f"{t}.parquet": f"SELECT * FROM {t}" for t in ("results", "actions")})
        else:
            for table in ("results", "actions"):
                files[f"{table}.parquet"] = base / f"{table}.parquet"
                files[f"{table}{CHANGED_SUFFIX}.parquet"] = f"SELECT * FROM changed_{table}"
        return files

    def increment(
        self,
        *,
        state: Path,
        batch: Sequence[Path | str],
        store: Sequence[Path | str],
        save: Path | None = None,
    ) -> None:
        """Decide again after a new batch (its files under `batch`), from the kept rows.

        `store` lists every store root including the batch's (read only for recipients whose
        earliest loss moved to before the recent window). The as-of date may be the state's or
        later. The recipients must be the state's.
        """
        meta = json.loads((state / "state.json").read_text())
        if meta.get("version") not in READABLE_STATE_VERSIONS:
            raise ValueError(f"{state}: state version {meta.get('version')} is not {STATE_VERSION}")
        if meta.get("cleared"):
            # The batch's rows of a cleared person, and clearances since, would need the state's
            # rare rows cleared again: a full run decides.
            raise ValueError(f"{state}: decided with cleared loss records: run in full")
        if save is not None and save.resolve() == state.resolve():
            # The views of this run read the state's files until they are written.
            raise ValueError(f"{save}: the next state is saved beside the state it starts from, not over it")
        state_as_of = date.fromisoformat(meta["as_of"])
        if self.as_of < state_as_of:
            raise ValueError(f"as-of {self.as_of} is before the state's {state_as_of}: run in full")
        self.window_days = int(meta["window_days"])
        window_start = state_as_of - timedelta(days=self.window_days)
        con = self.con
        # `recipients_input` is a view: an increment reads the whole rows of the people decided
        # again only.

        def load(table: str, kind: str = "TABLE") -> str:
            path = sql.quote(str(state / (table.removeprefix("old_") + ".parquet")))
            return f"CREATE OR REPLACE {kind} {table} AS SELECT * FROM read_parquet({path})"

        self._timed("load state", load("old_targets", "VIEW"))
        self._timed("load state", load("old_rare", "VIEW"))
        # The state's recipients are this run's: their keys are the saved targets' (one row each).
        self._load_recipients("VIEW", keys="SELECT id_key FROM old_targets")
        # The kept rows are read only for the people whose loss moved (or a later as-of date).
        parts = ", ".join(sql.quote(str(part)) for part in reduced_parts(state))
        self._timed(
            "load state", f"CREATE OR REPLACE VIEW old_reduced AS SELECT * FROM read_parquet([{parts}])"
        )
        self._timed("load state", load("old_compact", "VIEW"))
        con.execute(f"CREATE OR REPLACE VIEW batch AS {store_scan_sql(batch)}")
        # A batch's rows of the rare kinds are few: kept first, with their exact count, so that
        # the join hashes them rather than the 2 million keys (DuckDB estimates a filtered
        # Parquet scan at millions of rows).
        self._timed("batch", f"CREATE OR REPLACE TEMP TABLE batch_rare_kinds AS {rare_kinds_sql('batch')}")
        self._timed("batch", f"CREATE OR REPLACE TABLE batch_rare AS {rare_rows_sql('batch_rare_kinds')}")
        later = self.as_of > state_as_of
        # Everyone's loss dates are needed when everyone's kept rows are (the next state);
        # otherwise only the people with a rare row in the batch can have new ones.
        everyone = save is not None
        self._timed(
            "batch",
            f"CREATE OR REPLACE {'TABLE' if everyone else 'VIEW'} rare AS "
            "SELECT * FROM old_rare UNION ALL SELECT * FROM batch_rare",
        )
        if everyone:
            self._timed("batch targets", f"CREATE OR REPLACE TABLE targets AS {targets_sql(state_as_of)}")
        else:
            batch_people = "(SELECT DISTINCT id_key FROM batch_rare)"
            rows = f"(SELECT * FROM rare WHERE id_key IN {batch_people})"
            query = targets_sql(state_as_of, rare=rows, keys=batch_people)
            self._timed("batch targets", f"CREATE OR REPLACE TABLE targets AS {query}")
        self._timed("batch targets", f"CREATE OR REPLACE TABLE changed AS {changed_targets_sql()}")
        if everyone:
            # The batch's kept rows, for the next state.
            self._reduce("batch_reduced", "batch", window_start=window_start, source="batch")
        # Loss dates that moved to before the recent window: re-read those people's rows
        # from the month of the earliest such date on (the store is partitioned by month).
        start = sql.date_literal(window_start)
        con.execute(
            "CREATE OR REPLACE TABLE reread_people AS SELECT * FROM changed "
            f"WHERE loss_moved <= {start} OR missing_moved <= {start}"
        )
        moved = con.execute(
            f"SELECT min(CASE WHEN loss_moved <= {start} THEN loss_moved END), "
            f"min(CASE WHEN missing_moved <= {start} THEN missing_moved END) FROM reread_people"
        ).fetchone()
        first = min((d for d in (moved or ()) if d is not None), default=None)
        kept = ["SELECT * FROM batch_reduced"]  # the next state's kept rows beside the state's
        # What decides the people decided from their rows (`general`, below): their previous
        # winners, the batch's rows that can matter, for people whose loss moved their kept rows,
        # and at a later as-of date the kept rows dated since the state's.
        deciding = [
            only_people_sql("old_compact", "general"),
            ranked_rows_sql(only_people_sql("batch_newer", "general")),
            "SELECT o.* FROM old_reduced o JOIN changed c ON o.id_key = c.id_key",
        ]
        if later:
            since = f"(SELECT * FROM old_reduced WHERE event_date > {sql.date_literal(state_as_of)})"
            deciding.append(only_people_sql(since, "general"))
        if first is not None:
            month_from = f"{first.year:04d}-{first.month:02d}"
            con.execute(f"CREATE OR REPLACE VIEW store AS {store_scan_sql(store)}")
            self._reduce(
                "reread", "re-read", window_start=window_start, people="reread_people", month_from=month_from
            )
            self.timings["re-read from"] = float(first.year * 100 + first.month)
            kept.append("SELECT * FROM reread")
            deciding.append("SELECT * FROM reread")
        # Only the people the batch or the new as-of date can decide otherwise are decided again
        # (a decision depends on the person's rows, the roll and the as-of date); everyone else
        # keeps their saved decision. Of the people the batch touches, most only get a trip
        # older than their newest evidence: `decide_again_sql` keeps only those whose decision
        # can change; at a later as-of date, those whom the date itself can change are added.
        self._timed("touched", load("old_saved", "VIEW"))
        self._timed("touched", f"CREATE OR REPLACE VIEW saved AS {saved_with_changes_sql()}")
        newer = batch_newer_sql(self.as_of, key_range=self.key_range)
        self._timed_build_right("touched", f"CREATE OR REPLACE TABLE batch_newer AS {newer}")
        # A chained day's state: its base results with the changed ones beside (`save_state`).
        for table in ("results", "actions"):
            self._timed("load state", f"CREATE OR REPLACE VIEW old_{table} AS {output_sql(state, table)}")
        due = None
        if later:
            due = "due"
            self._timed("due", f"CREATE OR REPLACE TABLE due AS {due_again_sql(state_as_of, self.as_of)}")
        self._timed("touched", f"CREATE OR REPLACE TABLE touched AS {decide_again_sql(due=due)}")
        self._timed("touched", f"CREATE OR REPLACE TABLE touched_rare AS {only_people_sql('rare')}")
        # Most of them have only routine rows (or those and units' confirmations of eligibility):
        # their facts follow from the batch's newest record (`newest_facts_sql`). The others
        # (`general`) are decided from their rows, and only theirs are evidence.
        self._timed("touched", f"CREATE OR REPLACE TABLE plain AS {plain_again_sql(due=due)}")
        self._timed(
            "touched",
            "CREATE OR REPLACE TABLE general AS "
            "SELECT id_key FROM touched WHERE id_key NOT IN (SELECT id_key FROM plain)",
        )
        self._timed("batch deciding", f"CREATE OR REPLACE TABLE deciding AS {' UNION ALL '.join(deciding)}")
        # The roll's ID, name and unit are the saved results' (the recipients are the state's): not read.
        self.decide(
            "deciding",
            rare=f"({only_people_sql('touched_rare', 'general')}) general_rare",
            people="touched",
            newest_facts=newest_facts_sql(self.as_of),
            roll_text=False,
        )
        # Only the new rows are materialised: `write` puts them beside the saved files, and
        # `results`, `actions` and `decisions` are views over the merge (read lazily).
        # A view: `write` computes the new results once, into their file.
        con.execute("ALTER TABLE decisions RENAME TO new_decisions")
        # `new_rows`: the new results as written (ID, name and unit empty); `new_results`: with them.
        self._timed("merge", f"CREATE OR REPLACE VIEW new_rows AS {unfilled_results_sql('new_decisions')}")
        base_results = f"read_parquet({sql.quote(str(state / 'results.parquet'))})"  # every recipient's
        filled = filled_results_sql("new_rows", base_results)
        self._timed("merge", f"CREATE OR REPLACE VIEW new_results AS {filled}")
        con.execute("ALTER TABLE actions RENAME TO new_actions")
        con.execute(
            f"CREATE OR REPLACE VIEW actions AS {merge_kept_sql('old_actions', 'new_actions', 'recipients')}"
        )
        merged = merge_kept_sql("old_results", "new_results", "recipients")
        con.execute(f"CREATE OR REPLACE VIEW results AS {merged}")
        con.execute(f"CREATE OR REPLACE VIEW decisions AS {decisions_of_results_sql()}")
        # The rows `write` puts beside the state's base files: the new ones, and those of a
        # chained state's changed files of the people not decided again today. A table when
        # the next state is saved (it holds them too), else computed once, into their file.
        kind = "TABLE" if save is not None else "VIEW"
        for table in ("results", "actions"):
            changed_file = state / f"{table}{CHANGED_SUFFIX}.parquet"
            new = "new_rows" if table == "results" else f"new_{table}"
            query = f"SELECT * FROM {new}"
            if changed_file.exists():
                query = merge_kept_sql(f"read_parquet({sql.quote(str(changed_file))})", new, "recipients")
            self._timed("merge", f"CREATE OR REPLACE {kind} changed_{table} AS {query}")
        self.merged = True
        self.base = state
        self.timings["decided again"] = float(self._count("recipients"))
        self.timings["decided from the newest"] = float(self._count("plain"))
        if due is not None:
            self.timings["due at the later date"] = float(self._count("due"))
        if save is not None:
            # The new state is as of this run's date: its winners (`compact`) are.
            self._keep_compact()
            merged = merge_kept_sql("old_compact", "compact", "touched", key="id_key")
            self._timed("merge", f"CREATE OR REPLACE TABLE merged_compact AS {merged}")
            con.execute("DROP TABLE compact")
            con.execute("ALTER TABLE merged_compact RENAME TO compact")
            self._timed("batch", f"CREATE OR REPLACE VIEW new_reduced AS {' UNION ALL '.join(kept)}")
            self._timed("batch", f"CREATE OR REPLACE TABLE targets AS {targets_sql(self.as_of)}")
            self.save_state(save, state_as_of=self.as_of)

    def _count(self, table: str) -> int:
        (row,) = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()
        return int(row[0])

    def status_counts(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT status, count(*) FROM decisions GROUP BY status").fetchall())

    def _results_query(self) -> str:
        """The results (decisions with the 18-character ID): merged ones after a fast increment."""
        return "SELECT * FROM results" if self.merged else results_sql()

    def write(self, out: Path) -> None:
        """`results.parquet` and `actions.parquet` in `out`. After a fast increment: the state's
        base files, linked, and the rows of the people decided again since beside them
        (`output_sql` reads the merge): rewriting every result for a few changed ones would cost
        more than the increment's decisions."""
        started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        for table in ("results", "actions"):
            target = out / f"{table}.parquet"
            changed = out / f"{table}{CHANGED_SUFFIX}.parquet"
            changed.unlink(missing_ok=True)
            if self.merged and self.base is not None:
                _link(self.base / f"{table}.parquet", target)
                query, target = f"SELECT * FROM changed_{table}", changed
            elif self.saved is not None and not self.merged:
                # The full run's state holds the same files: linked, not computed again.
                _link(self.saved / f"{table}.parquet", target)
                continue
            else:
                query = self._results_query() if table == "results" else "SELECT * FROM actions"
                target.unlink(missing_ok=True)  # it may be a state file's second name
            self.con.execute(f"COPY ({query}) TO {sql.quote(str(target))} (FORMAT parquet)")
        self.timings["write"] = time.perf_counter() - started
