"""Certification runs (writes): queue a run, and execute it over the system of record.

`run_execute` feeds the province-scale engine (`zige.engine.scale.ScaleRun`: the decision
builders of `zige certify`'s batch chain over the store's rows, reduced by key first) with the
database's recipients, the evidence store and the pushed results, then stores every
recipient's decision, what changed since the previous run, a summary for the dashboard and a
fingerprint of the inputs — in one transaction. A copy of the decisions is written as Parquet
(`runs/<id>/decisions.parquet`) before that transaction; the next run compares with it.

Same inputs and as-of date give the same decisions and the same fingerprint.

Decision retention (`runs_prune_decisions`, docs/architecture.md): after a run succeeds, the
runs older than the latest `ZIGE_KEEP_RUN_DECISIONS` succeeded ones lose their `Decision` rows,
each only once its Parquet copy is checked; the copy is their record from then on
(`certification.archive` reads it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

import zige
from zige.accounts.models import User
from zige.accounts.scoping import can_operate
from zige.audit.services import audit_record
from zige.certification import archive
from zige.certification.models import (
    LATEST_FINISHED_FIRST,
    RUN_TRANSITIONS,
    Decision,
    DecisionChange,
    Run,
    RunStatus,
    Status,
)
from zige.certification.selectors import latest_run
from zige.engine.outputs import decision_counts
from zige.engine.scale import ScaleRun
from zige.engine.sql import fast_id_sql, formula_safe_sql, id18_sql, quote
from zige.feeds import store
from zige.feeds.failures import RUN_INTERRUPTED, run_failure_for
from zige.feeds.models import ImportBatch, ImportStatus, PushedResult
from zige.roster.models import Unit

logger = logging.getLogger(__name__)

# progress(label, steps_done, steps_total)
Progress = Callable[[str, int, int], None]
SUMMARY_TOP_UNITS = 20

# The roll as the engine's `staged_roster` shape, from the database's text (see `_load_roll`):
# the columns the decisions and payment actions read, and the keys of the decision rows.
_ROLL_TEXT = (
    "recipient_id", "unit_id", "unit_no", "person_no", "name", "id_number", "benefit_status", "status_since",
    "status_reason", "monthly_amount", "mobile", "retirement_date", "last_certified_on",
)  # fmt: skip
_DATES = ("status_since", "retirement_date", "last_certified_on")
_DECISION_COLUMNS = archive.COPY_COLUMNS


# ---------------------------------------------------------------------------------------------
# Submitting


class RunRefused(ValueError):
    """A run that cannot be started as asked; the message is for the officer (Chinese)."""


def run_submit(*, as_of: date, user: User | None, now: datetime, enqueue: bool = True) -> Run:
    """Record a run as of `as_of` and queue it (on commit); `enqueue=False` leaves the work to
    the caller (the CLI runs `run_execute` inline).

    `as_of` may not be after the day the run is started (China Standard Time, the local date of
    `now`): a run's decisions are real — its proposals count the months paid up to `as_of`, its
    reminders go out, the latest run revises and withdraws proposals — so a run dated in the
    future would stop and recover months not yet paid (docs/rules.md §8.6)."""
    if user is not None and not can_operate(user):
        raise PermissionDenied("only bureau staff start certification runs")
    today = timezone.localdate(now)
    if as_of > today:
        raise RunRefused(
            f"比对基准日 {as_of:%Y-%m-%d} 晚于今天（{today:%Y-%m-%d}）：认证批次只能按今天或以前的日期比对"
        )
    with transaction.atomic():
        run = Run.objects.create(as_of=as_of, status=RunStatus.QUEUED, created_by=user, created_at=now)
        audit_record(
            actor=user, action="run.submitted", target_type="run", target_id=run.pk, at=now,
            after={"as_of": as_of.isoformat()},
        )  # fmt: skip
        if enqueue:
            run_id = run.pk
            transaction.on_commit(lambda: _enqueue(run_id))
    return run


def _enqueue(run_id: int) -> None:
    from zige.certification.tasks import run_task

    run_task.enqueue(run_id)


# ---------------------------------------------------------------------------------------------
# Executing


@dataclass
class _Tracker:
    run_id: int
    callback: Progress | None
    total: int = 8
    done: int = 0
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    _label: str = ""
    _since: float = 0.0

    def step(self, label: str, *, save: bool = True) -> None:
        """Start a step: report it, save the percentage on the run, time the previous step."""
        moment = time.perf_counter()
        if self._label:
            self.timings[self._label] = round(moment - self._since, 3)
        self._label, self._since = label, moment
        if self.callback is not None:
            self.callback(label, self.done, self.total)
        if save:
            Run.objects.filter(pk=self.run_id).update(progress=round(100 * self.done / self.total))
        self.done += 1

    def at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=round(time.perf_counter() - self.started, 3))


@dataclass(frozen=True)
class _Inputs:
    feed_batches: list[ImportBatch]
    roster_batches: list[ImportBatch]
    pushed: int
    cleared: int  # people a resolved review found alive (`_load_cleared`)


def _move(run_id: int, before: str, to: str, **fields: Any) -> bool:
    """Change run `run_id`'s status from `before` to `to` (one of `RUN_TRANSITIONS`) and set
    `fields`, only if it is still `before` (a conditional UPDATE: of two callers, one wins).
    True if it changed; the caller audits it in the same transaction."""
    if (before, to) not in RUN_TRANSITIONS:
        raise ValueError(f"a run's status does not change from {before} to {to}")
    return bool(Run.objects.filter(pk=run_id, status=before).update(status=to, **fields))


def _claim(run: Run, *, now: datetime) -> bool:
    """Take a queued run for this worker (`queued → running`), audited `run.started` in the same
    transaction. False, with nothing changed, when it is not queued: another worker (a retried
    task, a second worker, the CLI) has it or had it."""
    with transaction.atomic():
        if not _move(
            run.pk,
            RunStatus.QUEUED,
            RunStatus.RUNNING,
            started_at=now,
            progress=0,
            message="",
            failure_code="",
            detail="",
        ):
            return False
        audit_record(
            actor=run.created_by, action="run.started", target_type="run", target_id=run.pk, at=now,
            before={"status": RunStatus.QUEUED},
            after={"status": RunStatus.RUNNING, "as_of": run.as_of.isoformat()},
        )  # fmt: skip
    return True


def run_execute(*, run_id: int, now: datetime, progress: Progress | None = None) -> Run:
    """Decide every recipient for a queued run and store the results; returns the run.

    The run is claimed first (`queued → running`, audited `run.started`): a run that is not
    queued — running in another worker, or finished — is returned unchanged and not executed
    again (logged). Never raises for a failure of the run itself: the run is marked `failed`
    with a message.
    """
    run = Run.objects.select_related("created_by").get(pk=run_id)
    if not _claim(run, now=now):
        run.refresh_from_db()
        logger.warning("run %s is %s, not queued: not executed again", run.pk, run.status)
        return run
    tracker = _Tracker(run.pk, progress)
    try:
        _execute(run, now=now, tracker=tracker)
    except Exception as exc:
        if not Run.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists():
            store.discard(store.run_decisions_file(run.pk))
        _record_failure(run, exc, now=tracker.at(now))
    run.refresh_from_db()
    if run.status == RunStatus.SUCCEEDED:
        _apply_retention(now=tracker.at(now))
    if progress is not None and run.status == RunStatus.SUCCEEDED:
        progress("done", tracker.total, tracker.total)
    return run


def _apply_retention(*, now: datetime) -> None:
    """After a run committed: archive the runs older than the latest `ZIGE_KEEP_RUN_DECISIONS`
    (`runs_prune_decisions`). A failure here is logged and leaves the run succeeded: the rows
    stay, and the next run (or `zige decisions prune`) tries again."""
    keep = settings.ZIGE_KEEP_RUN_DECISIONS
    if keep is None:
        return
    try:
        result = runs_prune_decisions(keep=keep, now=now)
    except Exception:
        logger.exception("decision retention failed (the run itself succeeded)")
        return
    for refused in result.refused:
        logger.warning("run %s keeps its decisions in the database: %s", refused.run_id, refused.reason)


def runs_mark_interrupted(*, now: datetime, started_before: datetime) -> int:
    """Mark `failed` every run still `running` that a task worker started before
    `started_before` (see `feeds.services.imports_mark_interrupted`). A run stores its decisions
    in its final transaction, so an interrupted one left none; its half-written decisions file
    is removed. Returns how many; each gets an audit row in the same transaction."""
    marked = 0
    stuck = Run.objects.filter(status=RunStatus.RUNNING, started_at__lt=started_before)
    for run in stuck.order_by("pk"):
        with transaction.atomic():
            if not _move(
                run.pk, RunStatus.RUNNING, RunStatus.FAILED, message=RUN_INTERRUPTED.message,
                failure_code=RUN_INTERRUPTED.code, detail=RUN_INTERRUPTED.detail, finished_at=now,
            ):  # fmt: skip
                continue
            audit_record(
                actor=None, action="run.interrupted", target_type="run", target_id=run.pk, at=now,
                before={"status": RunStatus.RUNNING, "started_at": run.started_at.isoformat() if run.started_at else None},
                after={"status": RunStatus.FAILED, "as_of": run.as_of.isoformat()},
            )  # fmt: skip
        store.discard(store.run_decisions_file(run.pk))
        marked += 1
    return marked


def _record_failure(run: Run, exc: Exception, *, now: datetime) -> None:
    logger.exception("run %s (as of %s) failed", run.pk, run.as_of)
    failure = run_failure_for(exc)  # code, Chinese message, English detail (zige.feeds.failures)
    with transaction.atomic():
        if not _move(
            run.pk, RunStatus.RUNNING, RunStatus.FAILED, message=failure.message,
            failure_code=failure.code, detail=failure.detail, finished_at=now,
        ):  # fmt: skip
            return  # finished after all (the error came after the commit), or taken over
        audit_record(
            actor=run.created_by, action="run.failed", target_type="run", target_id=run.pk, at=now,
            after={"as_of": run.as_of.isoformat(), "failure_code": failure.code, "message": failure.message,
                   "detail": failure.detail},
        )  # fmt: skip


def _load_roll(con: duckdb.DuckDBPyConnection, *, as_of: date) -> None:
    """Table `run_roll`: the recipients (正常/暂停) from the database, in the columns the decision
    builders read (`zige.engine.scale.recipients_for_decide_sql`), with their database keys and
    store key (`id_key`)."""
    columns = ", ".join(
        f"CAST(u.{c} AS TEXT)" if c == "unit_no" else f"CAST(r.{c} AS TEXT)"
        for c in ("id" if c == "recipient_id" else c for c in _ROLL_TEXT)
    )
    text = store.fetch_arrow(
        f"SELECT {columns} FROM roster_recipient r JOIN roster_unit u ON u.id = r.unit_id "
        "WHERE r.benefit_status IN ('normal', 'suspended')",
        list(_ROLL_TEXT),
    )
    con.register("roll_text", text)
    shaped = []
    for c in _ROLL_TEXT:
        if c in ("recipient_id", "unit_id"):
            shaped.append(f"CAST({c} AS BIGINT) AS {c}")
        elif c in _DATES:
            shaped.append(f"TRY_CAST({c} AS DATE) AS {c}")
        elif c == "monthly_amount":
            shaped.append(f"TRY_CAST({c} AS DECIMAL(18, 4)) AS {c}")
        elif c == "mobile":
            shaped.append(f"nullif({c}, '') AS {c}")
        else:
            shaped.append(f"coalesce({c}, '') AS {c}")
    keyed = _with_key_sql(f"(SELECT {', '.join(shaped)} FROM roll_text)", as_of)
    con.execute(f"CREATE TABLE run_roll AS {keyed}")  # no order: every reader orders what it needs
    con.unregister("roll_text")


def _with_key_sql(source: str, as_of: date) -> str:
    """`source`'s rows with `id_key`: the store key of their `id_number` as a feed's ID is keyed
    (`sql.fast_id_sql`: cleaned, 15-digit numbers upgraded, check character and birth date
    verified), NULL when the import would have rejected it — such an ID matches no stored record
    (the store holds valid IDs only)."""
    key, reason, derived = fast_id_sql("id_number", as_of)
    # `derived` ends in an open subquery, closed by `FROM source) s0a`.
    return f"""
SELECT * EXCLUDE (id_plain, id_hi, id_lo, id_clean, id18), CASE WHEN {reason} IS NULL THEN {key} END AS id_key
FROM (
  SELECT *, CASE WHEN NOT id_plain THEN {id18_sql("id_clean")} END AS id18
  FROM (SELECT *, {derived} FROM {source}) s0a) s0
) s1"""


def _pushed_table() -> pa.Table:
    """Results pushed by the app and terminals, one row each (`row_no`: their key): evidence of
    the run (`_evidence_sql`) and part of its fingerprint."""
    rows = list(
        PushedResult.objects.order_by("pk").values_list(
            "pk", "kind", "id_number", "name", "auth_time", "result", "method", "device_no", "similarity"
        )
    )
    columns: dict[str, list[Any]] = {
        k: [] for k in ("row_no", "feed_kind", "id_number", "name", "event_date", "sub", "detail")
    }
    for pk, kind, id_number, name, auth_time, result, method, device_no, similarity in rows:
        columns["row_no"].append(pk)
        columns["feed_kind"].append(kind)
        columns["id_number"].append(id_number.upper())
        columns["name"].append(name)
        columns["event_date"].append(timezone.localtime(auth_time).date())
        columns["sub"].append(result)
        columns["detail"].append(
            f"{method}|{device_no}|{result}" if kind == "terminal_auth" else f"{result}|{similarity}"
        )
    return pa.table(
        {
            "row_no": pa.array(columns["row_no"], pa.int64()),
            "feed_kind": pa.array(columns["feed_kind"], pa.string()),
            "id_number": pa.array(columns["id_number"], pa.string()),
            "name": pa.array(columns["name"], pa.string()),
            "event_date": pa.array(columns["event_date"], pa.date32()),
            "sub": pa.array(columns["sub"], pa.string()),
            "detail": pa.array(columns["detail"], pa.string()),
        }
    )


def _evidence_sql(batches: list[ImportBatch], *, as_of: date) -> str:
    """The evidence as `zige.engine.scale` reads a store (feed_kind, month, id_key, event_date,
    end_date, sub): the files of the succeeded feed imports and the pushed results."""
    parts = [
        "SELECT feed_kind, strftime(event_date, '%Y-%m') AS month, id_key, event_date, "
        f"CAST(NULL AS DATE) AS end_date, sub FROM ({_with_key_sql('pushed', as_of)})"
    ]
    if batches:
        files = store.evidence_read_sql(store.evidence_batch_files(batches))
        parts.append(f"SELECT feed_kind, month, id_key, event_date, end_date, sub FROM ({files})")
    return "\nUNION ALL\n".join(parts)


def _load_cleared(con: duckdb.DuckDBPyConnection) -> int:
    """Table `run_cleared` (id_key, cleared_on) for `ScaleRun.full`: the people of the roll a
    resolved review found alive, with the day of the latest finding (their loss and missing
    records dated on or before it are no evidence: docs/rules.md §8.5; a later death finding
    ends it before its date of death, `alive_findings`). Returns how many."""
    from zige.verification.selectors import alive_findings

    found = alive_findings()
    people = sorted(found)
    con.execute(
        "CREATE OR REPLACE TABLE cleared_people AS "
        "SELECT unnest(?::BIGINT[]) AS recipient_id, unnest(?::DATE[]) AS cleared_on",
        [people, [found[p][0] for p in people]],
    )
    con.execute(
        "CREATE OR REPLACE TABLE run_cleared AS SELECT r.id_key, c.cleared_on "
        "FROM cleared_people c JOIN run_roll r ON r.recipient_id = c.recipient_id WHERE r.id_key IS NOT NULL"
    )
    return len(people)


def _load_superseded(con: duckdb.DuckDBPyConnection) -> int:
    """Table `run_superseded` (id_key, event_date) for `ScaleRun.full`: per person of the roll,
    the dates of death of the bureau's death findings that a later one superseded (their own
    `unit_confirm` 丧失资格 rows are no evidence: docs/rules.md §8.5, the latest finding wins;
    `superseded_findings`). Returns how many findings."""
    from zige.verification.selectors import superseded_findings

    found = [(person, f.death_date) for person, fs in superseded_findings().items() for f in fs]
    con.execute(
        "CREATE OR REPLACE TABLE superseded_findings AS "
        "SELECT unnest(?::BIGINT[]) AS recipient_id, unnest(?::DATE[]) AS event_date",
        [[p for p, _ in found], [d for _, d in found]],
    )
    con.execute(
        "CREATE OR REPLACE TABLE run_superseded AS SELECT DISTINCT r.id_key, s.event_date "
        "FROM superseded_findings s JOIN run_roll r ON r.recipient_id = s.recipient_id WHERE r.id_key IS NOT NULL"
    )
    return len(found)


def _inputs(*, pushed: int, cleared: int) -> _Inputs:
    """Every succeeded import: the roster imports made the roll, the feed imports the evidence."""
    succeeded = list(ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED).order_by("pk"))
    return _Inputs(
        feed_batches=[b for b in succeeded if b.kind != "roster"],
        roster_batches=[b for b in succeeded if b.kind == "roster"],
        pushed=pushed,
        cleared=cleared,
    )


def _fingerprint(con: duckdb.DuckDBPyConnection, *, as_of: date, feed_batches: list[ImportBatch]) -> str:
    """sha256 over the engine version, the as-of date, the content hashes of the evidence
    imports, the pushed results, the roll (every 正常/暂停 recipient's fields that the
    decisions read, with their 个人编号 and 单位编号), the reviews' alive findings and the death
    findings a later one superseded."""
    roll_columns = [c for c in _ROLL_TEXT if c not in ("recipient_id", "unit_id")]
    roll_hash = con.execute(
        "SELECT coalesce(sha256(string_agg(md5(concat_ws(chr(31), "
        + ", ".join(f"coalesce(CAST({c} AS VARCHAR), chr(0))" for c in roll_columns)
        + ")), '' ORDER BY person_no)), '') FROM run_roll"
    ).fetchone()
    pushed_hash = con.execute(
        "SELECT coalesce(sha256(string_agg(md5(concat_ws(chr(31), feed_kind, id_number, name, "
        "CAST(event_date AS VARCHAR), sub, detail)), '' ORDER BY row_no)), '') FROM pushed"
    ).fetchone()
    cleared_hash = con.execute(
        "SELECT coalesce(sha256(string_agg(concat_ws(':', recipient_id, cleared_on), ',' "
        "ORDER BY recipient_id)), '') FROM cleared_people"
    ).fetchone()
    superseded_hash = con.execute(
        "SELECT coalesce(sha256(string_agg(DISTINCT concat_ws(':', recipient_id, event_date), ',' "
        "ORDER BY concat_ws(':', recipient_id, event_date))), '') FROM superseded_findings"
    ).fetchone()
    assert roll_hash is not None and pushed_hash is not None and cleared_hash is not None
    assert superseded_hash is not None
    payload = {
        "engine": zige.__version__,
        "as_of": as_of.isoformat(),
        "evidence": sorted(f"{b.kind}:{b.sha256}" for b in feed_batches),
        "pushed": pushed_hash[0],
        "roll": roll_hash[0],
        "cleared": cleared_hash[0],
        # Only with superseded death findings: the fingerprints of runs without stay as they were.
        **({"superseded": superseded_hash[0]} if superseded_hash[0] else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _previous_run(run: Run) -> Run | None:
    """The run this one records its changes against: the current run when it starts (the latest
    as-of date, then the last to finish, as `selectors.latest_run`), not merely the last to
    finish — a back-dated run finished in between is a look back (docs/rules.md §8.4), and the
    next run's changes are from the current conclusions, not from that look back's."""
    return (
        Run.objects.filter(status=RunStatus.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-as_of", *LATEST_FINISHED_FIRST)
        .first()
    )


def _load_previous(con: duckdb.DuckDBPyConnection, previous: Run | None) -> None:
    """Table `prev (recipient_id, unit_id, status, reason)`: the previous run's decisions."""
    if previous is None:
        con.execute("CREATE TABLE prev (recipient_id BIGINT, unit_id BIGINT, status VARCHAR, reason VARCHAR)")
        return
    copy = store.run_decisions_file(previous.pk)
    if copy.is_file():
        con.execute(
            "CREATE TABLE prev AS SELECT recipient_id, unit_id, status, reason "
            f"FROM read_parquet({quote(str(copy))})"
        )
        return
    if previous.decisions_archived:
        # Never the case with the retention rule (the current run, which the next compares
        # with, keeps its rows); comparing with no rows would record every recipient as new.
        raise RuntimeError(
            f"run {previous.pk}'s decisions are archived but its copy {archive.copy_name(previous.pk)} is missing"
        )
    text = store.fetch_arrow(
        "SELECT CAST(recipient_id AS TEXT), CAST(unit_id AS TEXT), status, reason "
        f"FROM {Decision._meta.db_table} WHERE run_id = {int(previous.pk)}",
        ["recipient_id", "unit_id", "status", "reason"],
    )
    con.register("prev_text", text)
    con.execute(
        "CREATE TABLE prev AS SELECT CAST(recipient_id AS BIGINT) AS recipient_id, "
        "CAST(unit_id AS BIGINT) AS unit_id, status, reason FROM prev_text"
    )
    con.unregister("prev_text")


def _summary(
    con: duckdb.DuckDBPyConnection, *, run: Run, inputs: _Inputs, previous: Run | None, evidence_rows: int
) -> dict[str, Any]:
    counts = decision_counts(con, decisions="run_decisions", actions="run_decisions WHERE action <> ''")
    statuses = [s.value for s in Status]
    unit_rows = con.execute(
        f"""
        SELECT unit_id, count(*) AS total,
          {", ".join(f"count(*) FILTER (WHERE status = {quote(s)}) AS {s}" for s in statuses)}
        FROM run_decisions GROUP BY unit_id
        ORDER BY pending + review DESC, total DESC, unit_id LIMIT {SUMMARY_TOP_UNITS}
        """
    ).fetchall()
    units_total = con.execute("SELECT count(DISTINCT unit_id) FROM run_decisions").fetchone()
    names = {u.pk: (u.unit_no, u.name) for u in Unit.objects.filter(pk__in=[r[0] for r in unit_rows])}
    top_units = [
        {
            "unit_id": row[0],
            "unit_no": names.get(row[0], ("", ""))[0],
            "name": names.get(row[0], ("", ""))[1],
            "total": row[1],
            "status": dict(zip(statuses, row[2:], strict=True)),
        }
        for row in unit_rows
    ]
    change_status = dict(
        con.execute("SELECT new_status, count(*) FROM run_changes GROUP BY ALL ORDER BY ALL").fetchall()
    )
    transitions = {
        f"{old or '-'}>{new or '-'}": n
        for old, new, n in con.execute(
            "SELECT old_status, new_status, count(*) FROM run_changes GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    return {
        "as_of": run.as_of.isoformat(),
        **counts,
        "units": {"total": units_total[0] if units_total else 0, "top": top_units},
        "changes": {
            "previous_run": previous.pk if previous else None,
            "total": sum(change_status.values()),
            "new_status": change_status,
            "transitions": transitions,
        },
        "inputs": {
            "feed_imports": len(inputs.feed_batches),
            "roster_imports": len(inputs.roster_batches),
            "evidence_records": evidence_rows,
            "pushed_results": inputs.pushed,
            "cleared_by_review": inputs.cleared,
        },
    }


# PostgreSQL advisory lock: one run at a time stores its decisions and makes its side effects.
_RUN_SIDE_EFFECTS_LOCK = 7_262_020


def _serialise_run_side_effects() -> None:
    """Wait, at the start of the transaction that stores a run's decisions and makes its side
    effects (reminders, tasks, payment actions), until no other run is in its own (docs/rules.md
    §8.4).

    Runs are not serialised: the scheduler's daily run executes in its own thread beside a run
    started on the page in the task worker, and `zige run` beside both; their decisions are
    computed side by side. Their last transactions must follow one another: each part asks
    `later_run` whether the run is back-dated, and on PostgreSQL (read committed) an
    earlier-dated run could ask just before a later-dated one committed — then propose, revise or
    withdraw on its stale decisions after the later run had done so on the current ones, or skip
    one part and not the next. Taken here, the lock makes the second see the first as succeeded.
    The audit chain's lock (`audit_record`) happens to give the same order today, from the run's
    first audit event on; this one states it where the rule needs it. SQLite serialises write
    transactions anyway (`transaction_mode` IMMEDIATE). A run still running when another finishes
    is not later (`later_run`): it may fail, and the run that finishes first is the current one
    until a later-dated one succeeds and revises or withdraws what it proposed."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_RUN_SIDE_EFFECTS_LOCK])


def _execute(run: Run, *, now: datetime, tracker: _Tracker) -> None:
    con = duckdb.connect()
    try:
        tracker.step("load the roll")
        _load_roll(con, as_of=run.as_of)
        tracker.step("load the evidence")
        pushed = _pushed_table()
        con.register("pushed", pushed)
        inputs = _inputs(pushed=pushed.num_rows, cleared=_load_cleared(con))
        _load_superseded(con)
        evidence = _evidence_sql(inputs.feed_batches, as_of=run.as_of)
        evidence_count = con.execute(f"SELECT count(*) FROM ({evidence}) e").fetchone()
        tracker.step("decide")
        # The province-scale engine (zige.engine.scale; the same decision builders as the batch
        # chain of `zige certify`): the store's rows are read once, by key, never as ID text.
        ScaleRun(con, "SELECT * FROM run_roll", run.as_of).full(
            evidence, cleared="run_cleared", superseded="run_superseded"
        )
        con.execute(
            """
            CREATE TABLE run_decisions AS
            SELECT r.recipient_id, r.unit_id, d.status, d.reason, coalesce(d.evidence_kind, '') AS evidence_kind,
                   d.evidence_date, d.certified_on, d.due_on, d.remind = 1 AS remind,
                   coalesce(d.channel, '') AS channel, coalesce(a.action, '') AS action,
                   coalesce(a.effective_month, '') AS effective_month, CAST(a.months AS BIGINT) AS months,
                   CAST(a.amount AS DECIMAL(16, 2)) AS amount
            FROM decisions d JOIN run_roll r USING (person_no) LEFT JOIN actions a USING (person_no)
            """
        )
        tracker.step("compare with the previous run")
        previous = _previous_run(run)
        _load_previous(con, previous)
        changes_where = "FALSE" if previous is None else (
            "p.recipient_id IS NULL OR n.recipient_id IS NULL OR p.status <> n.status OR p.reason <> n.reason"
        )  # fmt: skip
        con.execute(
            f"""
            CREATE TABLE run_changes AS
            SELECT coalesce(n.recipient_id, p.recipient_id) AS recipient_id,
                   coalesce(n.unit_id, p.unit_id) AS unit_id,
                   coalesce(p.status, '') AS old_status, coalesce(n.status, '') AS new_status,
                   coalesce(p.reason, '') AS old_reason, coalesce(n.reason, '') AS new_reason
            FROM run_decisions n FULL OUTER JOIN prev p ON n.recipient_id = p.recipient_id
            WHERE {changes_where}
            """
        )
        tracker.step("summarise")
        fingerprint = _fingerprint(con, as_of=run.as_of, feed_batches=inputs.feed_batches)
        summary = _summary(
            con, run=run, inputs=inputs, previous=previous,
            evidence_rows=int(evidence_count[0]) if evidence_count else 0,
        )  # fmt: skip
        tracker.step("write the decisions copy")
        store.run_write_decisions(
            con,
            query=f"SELECT {', '.join(_DECISION_COLUMNS)} FROM run_decisions ORDER BY recipient_id",
            run_id=run.pk,
        )
        tracker.step("save the decisions")
        staged = {
            "decisions": f"SELECT {run.pk}, {', '.join(_DECISION_COLUMNS)} FROM run_decisions ORDER BY recipient_id",
            "changes": f"SELECT {run.pk}, recipient_id, unit_id, old_status, new_status, old_reason, new_reason "
            "FROM run_changes ORDER BY recipient_id",
        }
        with store.staged_rows(con, staged) as rows, transaction.atomic():
            _serialise_run_side_effects()
            current = Run.objects.select_for_update().get(pk=run.pk)
            if current.status != RunStatus.RUNNING:
                raise RuntimeError(f"run {run.pk} is {current.status}, no longer running")
            written = rows.insert_partition(
                Decision._meta.db_table,
                ["run_id", *_DECISION_COLUMNS],
                "decisions",
                key="run_id",
                value=run.pk,
            )
            changed = rows.insert(
                DecisionChange._meta.db_table,
                ["run_id", "recipient_id", "unit_id", "old_status", "new_status", "old_reason", "new_reason"],
                "changes",
            )
            through = Run.imports.through
            through.objects.bulk_create(
                [
                    through(run_id=run.pk, importbatch_id=b.pk)
                    for b in inputs.roster_batches + inputs.feed_batches
                ],
                batch_size=5000,
            )
            tracker.step("done", save=False)
            summary["timings_s"] = dict(tracker.timings)
            finished = tracker.at(now)
            if not _move(
                run.pk, RunStatus.RUNNING, RunStatus.SUCCEEDED, previous=previous, inputs_fingerprint=fingerprint,
                summary=summary, recipients=written, changed=changed, progress=100, finished_at=finished, message="",
                failure_code="", detail="",
            ):  # fmt: skip
                raise RuntimeError(f"run {run.pk} is no longer running")  # locked above: not expected
            audit_record(
                actor=run.created_by, action="run.succeeded", target_type="run", target_id=run.pk, at=finished,
                after={"as_of": run.as_of.isoformat(), "recipients": written, "changed": changed,
                       "status": summary["status"], "inputs_fingerprint": fingerprint},
            )  # fmt: skip
            # --- issue #5: the run's reminders, in the same transaction as its decisions ---
            from zige.notifications.services import messages_for_run

            messages_for_run(run_id=run.pk, now=finished)
            # --- end issue #5 ---
            # --- issue #4: the run's verification tasks and proposed payment actions, same transaction ---
            from zige.benefits.services import payment_actions_for_run
            from zige.verification.services import tasks_for_run

            tasks_for_run(run_id=run.pk, now=finished)
            payment_actions_for_run(run_id=run.pk, now=finished)
            # --- end issue #4 ---
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# A back-dated run's side effects (docs/rules.md §8.4)

# What a run does besides deciding, each skipped by a back-dated run (`selectors.later_run`), in
# the order `_execute` does them: the reminders, the verification tasks, the payment actions.
BACKDATED_PARTS = ("messages", "tasks", "payment_actions")


def run_record_backdated(*, run_id: int, part: str, later: Run) -> None:
    """Keep in run `run_id`'s summary (`backdated`) that it skipped `part` (one of
    `BACKDATED_PARTS`) because it is back-dated, with the later run that made it so (its id and
    as-of date): the run page says it in Chinese. Called by each part's service in its own
    transaction, beside its audit row; a part recorded once stays once."""
    if part not in BACKDATED_PARTS:
        raise ValueError(f"a run has no side effect {part!r}")
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).only("summary").first()
        if run is None:
            return
        summary = dict(run.summary or {})
        kept = summary.get("backdated") or {}
        skipped = set(kept.get("skipped") or ()) | {part}
        summary["backdated"] = {
            "later_run": later.pk,
            "later_as_of": later.as_of.isoformat(),
            "skipped": [p for p in BACKDATED_PARTS if p in skipped],
        }
        Run.objects.filter(pk=run_id).update(summary=summary)


# ---------------------------------------------------------------------------------------------
# Decision retention (docs/architecture.md, "Decision retention")

MIN_KEEP = 2
# Decision rows deleted per statement, each statement its own transaction: SQLite's write lock
# and PostgreSQL's transaction stay short while a run's 2,000,000 rows go.
PRUNE_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class PrunedRun:
    run_id: int
    as_of: date
    rows: int  # Decision rows deleted from the database by this call
    archived_now: bool  # False: archived before; rows an interrupted deletion left were removed now


@dataclass(frozen=True)
class RefusedRun:
    run_id: int
    as_of: date
    reason: str  # why the run keeps its rows (its copy is missing, unreadable or incomplete)


@dataclass(frozen=True)
class PruneResult:
    keep: int
    kept: tuple[int, ...]  # the latest `keep` succeeded runs, newest first: untouched
    pruned: tuple[PrunedRun, ...]
    refused: tuple[RefusedRun, ...]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pruned)


def runs_prune_decisions(*, keep: int, now: datetime, user: Any = None) -> PruneResult:
    """Delete the `Decision` rows of every succeeded run older than the latest `keep` (by
    finishing time) but the current run (`selectors.latest_run`: the latest as-of date, which
    every page reads from the database — kept even when back-dated runs finished after it, so
    that `keep` + 1 runs may stay), each only once its Parquet copy is checked
    (`archive.check_copy`: present, readable, `run.recipients` rows by its metadata, every
    column, the summary's count per status); a run whose copy fails keeps its rows and is
    reported with the reason. Returns what was kept, pruned and refused.

    Each run is archived in its own transaction — `decisions_pruned_at`, the copy's SHA-256 and
    one audit row (`run.decisions_pruned`) — and from that commit on every reader takes its
    decisions from the copy (`certification.archive`). Its rows are then deleted
    `PRUNE_CHUNK_ROWS` at a time, each chunk committed on its own; rows an interrupted deletion
    left are removed by the next call. Idempotent: a second call finds nothing to do.
    """
    if keep < MIN_KEEP:
        raise ValueError(f"keep must be {MIN_KEEP} or more (the latest run and the one it compares with)")
    if isinstance(user, User) and not can_operate(user):
        raise PermissionDenied("only bureau staff prune decisions")
    succeeded = Run.objects.filter(status=RunStatus.SUCCEEDED)
    kept = tuple(succeeded.order_by(*LATEST_FINISHED_FIRST).values_list("pk", flat=True)[:keep])
    current = latest_run()
    if current is not None and current.pk not in kept:
        kept = (*kept, current.pk)
    pruned: list[PrunedRun] = []
    refused: list[RefusedRun] = []
    for run in succeeded.exclude(pk__in=kept).order_by("finished_at", "pk"):
        archived_now = False
        if not run.decisions_archived:
            check = archive.check_copy(run)
            if check.problem:
                refused.append(RefusedRun(run.pk, run.as_of, check.problem))
                continue
            archived_now = _archive_run(run, check=check, keep=keep, now=now, user=user)
            if (
                not archived_now
                and not Run.objects.filter(pk=run.pk, decisions_pruned_at__isnull=False).exists()
            ):
                continue
        rows = _delete_decisions(run.pk)
        if archived_now or rows:
            pruned.append(PrunedRun(run.pk, run.as_of, rows, archived_now))
    return PruneResult(keep=keep, kept=kept, pruned=tuple(pruned), refused=tuple(refused))


def _archive_run(run: Run, *, check: archive.CopyCheck, keep: int, now: datetime, user: Any) -> bool:
    """Mark `run` archived, audited in the same transaction; False if it no longer qualifies."""
    with transaction.atomic():
        locked = (
            Run.objects.select_for_update()
            .filter(pk=run.pk, status=RunStatus.SUCCEEDED, decisions_pruned_at__isnull=True)
            .first()
        )
        if locked is None:
            return False
        in_database = Decision.objects.filter(run_id=run.pk).count()
        Run.objects.filter(pk=run.pk).update(decisions_pruned_at=now, decisions_sha256=check.sha256)
        audit_record(
            actor=user, action="run.decisions_pruned", target_type="run", target_id=run.pk, at=now,
            before={"decisions_in_database": in_database},
            after={"as_of": run.as_of.isoformat(), "recipients": run.recipients, "copy": archive.copy_name(run.pk),
                   "copy_rows": check.rows, "copy_sha256": check.sha256, "copy_status": check.status,
                   "keep": keep},
        )  # fmt: skip
    return True


def _delete_decisions(run_id: int) -> int:
    """Delete an archived run's Decision rows, `PRUNE_CHUNK_ROWS` per statement and transaction
    (`DELETE … WHERE id IN (SELECT id … WHERE run_id = ? LIMIT n)`: the run_id index finds the
    next chunk on SQLite and PostgreSQL alike). On PostgreSQL the run's partition is dropped
    instead, rows and all (`feeds.store.partition_drop`; migration certification 0006), unless
    the table stays busy. Returns how many."""
    dropped = store.partition_drop(Decision._meta.db_table, run_id)
    if dropped is not None:
        return dropped
    table = connection.ops.quote_name(Decision._meta.db_table)
    statement = (
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE run_id = %s LIMIT {PRUNE_CHUNK_ROWS})"
    )
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [run_id])
            count = max(int(cursor.rowcount), 0)
        deleted += count
        if count < PRUNE_CHUNK_ROWS:
            return deleted


def run_decisions_export(
    *, run_id: int, out: Path, now: datetime, user: Any = None, unit_no: str | None = None
) -> int:
    """Write run `run_id`'s decisions to the CSV file `out` (UTF-8, header), from its Parquet
    copy whether the run is archived or not, with each person's 个人编号 and 单位编号; `unit_no`
    keeps one unit. An archived run's copy must still have the SHA-256 recorded when it was
    archived. 个人编号 and 单位编号 (typed by people) are formula-safe (docs/security.md).
    Audited (`run.decisions_exported`); returns the number of rows."""
    from zige.accounts.models import Role
    from zige.roster.models import Unit

    if isinstance(user, User) and user.role not in (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR):
        raise PermissionDenied("only bureau staff and auditors export a run's decisions")
    run = Run.objects.get(pk=run_id, status=RunStatus.SUCCEEDED)
    path = archive.copy_path(run.pk)
    if not path.is_file():
        raise ArchiveError(f"run {run.pk} has no decisions copy ({archive.copy_name(run.pk)})")
    sha256 = archive.file_sha256(path)
    if run.decisions_archived and sha256 != run.decisions_sha256:
        raise ArchiveError(
            f"run {run.pk}'s copy {archive.copy_name(run.pk)} has changed since it was archived "
            f"(SHA-256 {sha256[:12]}…, recorded {run.decisions_sha256[:12]}…)"
        )
    unit_filter = ""
    if unit_no is not None:
        unit = Unit.objects.filter(unit_no=unit_no).first()
        if unit is None:
            raise ArchiveError(f"no unit {unit_no!r}")
        unit_filter = f"WHERE d.unit_id = {int(unit.pk)}"
    con = duckdb.connect()
    try:
        con.register(
            "people",
            store.fetch_arrow(
                "SELECT CAST(id AS TEXT), person_no FROM roster_recipient", ["id", "person_no"]
            ),
        )
        con.register(
            "units", store.fetch_arrow("SELECT CAST(id AS TEXT), unit_no FROM roster_unit", ["id", "unit_no"])
        )
        columns = ", ".join(f"d.{c}" for c in _DECISION_COLUMNS[2:])
        query = f"""
            SELECT {int(run.pk)} AS run_id, DATE {quote(run.as_of.isoformat())} AS as_of,
                   {formula_safe_sql("p.person_no")} AS person_no, {formula_safe_sql("u.unit_no")} AS unit_no,
                   d.recipient_id, {columns}
            FROM read_parquet({quote(str(path))}) d
            LEFT JOIN people p ON CAST(p.id AS BIGINT) = d.recipient_id
            LEFT JOIN units u ON CAST(u.id AS BIGINT) = d.unit_id
            {unit_filter}
            ORDER BY p.person_no, d.recipient_id"""
        out.parent.mkdir(parents=True, exist_ok=True)
        temp = out.with_name(f".{out.name}.tmp")
        written = con.execute(f"COPY ({query}) TO {quote(str(temp))} (HEADER, DELIMITER ',')").fetchone()
        rows = int(written[0]) if written else 0
        temp.replace(out)
    finally:
        con.close()
    with transaction.atomic():
        audit_record(
            actor=user, action="run.decisions_exported", target_type="run", target_id=run.pk, at=now,
            after={"as_of": run.as_of.isoformat(), "rows": rows, "unit_no": unit_no or "", "file": out.name,
                   "file_sha256": archive.file_sha256(out), "copy_sha256": sha256},
        )  # fmt: skip
    return rows


class ArchiveError(Exception):
    """A run's decisions copy cannot be used (missing, or changed since it was archived)."""
