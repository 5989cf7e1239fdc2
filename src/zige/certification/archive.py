"""The decisions of archived runs, read from their Parquet copies (decision retention).

Every run writes its decisions to `runs/<id>/decisions.parquet` before its transaction commits
(`feeds.store.run_write_decisions`: one row per recipient, `COPY_COLUMNS`, sorted by
`recipient_id`). Once a run is older than the latest `ZIGE_KEEP_RUN_DECISIONS` succeeded runs,
`services.runs_prune_decisions` checks that copy (`check_copy`) and deletes the run's `Decision`
rows from the database; the run is then *archived* (`Run.decisions_pruned_at`). Its summary,
counts and `DecisionChange` rows stay in the database.

The readers here answer from an archived run's copy what the database answered before: one
person's decision (`person_decisions`), a run's counts and decisions in the user's scope
(`counts`, `status_counts`, `decisions`). Each query is filtered to one person or to the rows
`accounts.scoping.unit_scope` allows — the same rule as `scope_recipients` — inside DuckDB, so a
unit's staff never receive another unit's rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings

from zige.accounts.scoping import UnitScope
from zige.certification.models import Decision, Run
from zige.engine.sql import quote
from zige.feeds import store

logger = logging.getLogger(__name__)

# The columns of a run's copy, in the order the run writes them (and inserts the rows).
COPY_COLUMNS = (
    "recipient_id", "unit_id", "status", "reason", "evidence_kind", "evidence_date", "certified_on", "due_on",
    "remind", "channel", "action", "effective_month", "months", "amount",
)  # fmt: skip
_DECISION_FIELDS = COPY_COLUMNS[2:]


def copy_path(run_id: int) -> Path:
    """Where run `run_id`'s decisions copy is (whether or not it exists)."""
    return store.run_decisions_file(run_id)


def copy_name(run_id: int) -> str:
    """The copy's path relative to the data directory, as messages and the audit log give it."""
    path = copy_path(run_id)
    try:
        return str(path.relative_to(Path(settings.DATA_DIR)))
    except ValueError:
        return str(path)


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---------------------------------------------------------------------------------------------
# Checking a copy before the database's rows go


@dataclass(frozen=True)
class CopyCheck:
    """What `check_copy` found: `problem` is empty when the copy may stand for the run's rows."""

    problem: str
    rows: int = 0
    sha256: str = ""
    status: dict[str, int] = field(default_factory=dict)


def check_copy(run: Run) -> CopyCheck:
    """Whether run `run`'s Parquet copy holds its decisions: the file exists and opens, its
    metadata counts `run.recipients` rows (the number the run inserted), it has every column of
    a decision, and its rows per status are the run's summary's. With the file's SHA-256."""
    path = copy_path(run.pk)
    name = copy_name(run.pk)
    if not path.is_file():
        return CopyCheck(f"no copy: {name} is missing")
    try:
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
        columns = set(parquet.schema_arrow.names)
    except (OSError, pa.ArrowException) as exc:
        return CopyCheck(f"copy unreadable: {name} ({type(exc).__name__}: {exc})")
    if rows != run.recipients:
        return CopyCheck(
            f"copy incomplete: {name} holds {rows:,} rows, the run decided {run.recipients:,}", rows
        )
    if missing := [c for c in COPY_COLUMNS if c not in columns]:
        return CopyCheck(f"copy lacks columns {', '.join(missing)}: {name}", rows)
    con = duckdb.connect()
    try:
        status = {
            str(s): int(n)
            for s, n in con.execute(
                f"SELECT status, count(*) FROM read_parquet({quote(str(path))}) GROUP BY ALL"
            ).fetchall()
        }
    except duckdb.Error as exc:
        return CopyCheck(f"copy unreadable: {name} ({type(exc).__name__}: {exc})", rows)
    finally:
        con.close()
    summarised = {str(s): int(n) for s, n in (run.summary or {}).get("status", {}).items() if int(n)}
    if summarised and summarised != status:
        return CopyCheck(
            f"copy differs from the run's summary by status: {name} {status} vs {summarised}", rows
        )
    return CopyCheck("", rows, file_sha256(path), status)


# ---------------------------------------------------------------------------------------------
# Reading archived runs


def _existing(runs: Iterable[Run]) -> tuple[dict[str, Run], list[Run]]:
    """The runs' copies by path (as DuckDB reports `filename`), and the runs whose copy is gone."""
    found: dict[str, Run] = {}
    missing: list[Run] = []
    for run in runs:
        path = copy_path(run.pk)
        if path.is_file():
            found[str(path)] = run
        else:
            logger.warning("run %s is archived but its copy %s is missing", run.pk, path)
            missing.append(run)
    return found, missing


def _files_sql(paths: Iterable[str]) -> str:
    return "read_parquet([" + ", ".join(quote(p) for p in paths) + "], filename = true)"


def _query(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query on the process's DuckDB (the person page's, `feeds.selectors`: opening a
    database costs more than reading a person's row group from a copy)."""
    from zige.feeds.selectors import duckdb_cursor

    with duckdb_cursor() as con:
        return con.execute(sql, list(params)).fetchall()


def _scope_where(scope: UnitScope) -> tuple[str, list[Any]]:
    if scope.unit_id is None:
        return "TRUE", []
    return "unit_id = ?", [scope.unit_id]


def _decision(run: Run, row: Sequence[Any]) -> Decision:
    """An unsaved `Decision` of `run` from a copy's row (COPY_COLUMNS order)."""
    values = dict(zip(COPY_COLUMNS, row, strict=True))
    amount = values["amount"]
    return Decision(
        run=run,
        recipient_id=int(values["recipient_id"]),
        unit_id=int(values["unit_id"]),
        **{k: values[k] for k in _DECISION_FIELDS if k != "amount"},
        amount=None if amount is None else Decimal(amount),
    )


@dataclass(frozen=True)
class PersonDecisions:
    found: dict[int, Decision]  # run id -> the person's decision in that run
    missing: list[Run]  # archived runs whose copy is gone (nothing can be said about them)


def person_decisions(recipient_id: int, runs: Sequence[Run]) -> PersonDecisions:
    """One person's decision in each of `runs` they were in, from the runs' copies: one DuckDB
    query over the files, which reads the footer and one row group of each (sorted by
    `recipient_id`). The caller has checked that the user may see the person."""
    files, missing = _existing(runs)
    if not files:
        return PersonDecisions({}, missing)
    rows = _query(
        f"SELECT filename, {', '.join(COPY_COLUMNS)} FROM {_files_sql(files)} WHERE recipient_id = ?",
        [recipient_id],
    )
    found = {}
    for filename, *row in rows:
        run = files[str(filename)]
        found[run.pk] = _decision(run, row)
    return PersonDecisions(found, missing)


@dataclass
class Counts:
    """A run's counts in a scope, shaped as `reports.selectors` aggregates the database's rows."""

    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: list[dict[str, Any]] = field(default_factory=list)  # status, reason, n
    remind: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)  # action, n, months, amount
    units: list[dict[str, Any]] = field(default_factory=list)  # unit_id, total, pending, review, work


def counts(run: Run, scope: UnitScope, *, top_units: int = 10) -> Counts:
    """An archived run's counts for the rows `scope` allows (one query per table of the page)."""
    result = Counts()
    if scope.nothing:
        return result
    files, _missing = _existing([run])
    if not files:
        return result
    source = _files_sql(files)
    where, params = _scope_where(scope)
    for status, reason, n in _query(
        f"SELECT status, reason, count(*) FROM {source} WHERE {where} GROUP BY ALL", params
    ):
        result.by_status[status] = result.by_status.get(status, 0) + int(n)
        result.by_reason.append({"status": status, "reason": reason, "n": int(n)})
    result.by_reason.sort(key=lambda r: (-r["n"], r["status"], r["reason"]))
    remind = _query(f"SELECT count(*) FROM {source} WHERE {where} AND remind", params)
    result.remind = int(remind[0][0]) if remind else 0
    result.actions = [
        {
            "action": a,
            "n": int(n),
            "months": int(m or 0),
            "amount": Decimal(amount) if amount is not None else None,
        }
        for a, n, m, amount in _query(
            f"SELECT action, count(*), sum(months), sum(amount) FROM {source} "
            f"WHERE {where} AND action <> '' GROUP BY ALL ORDER BY action",
            params,
        )
    ]
    result.units = [
        {"unit_id": int(u), "total": int(t), "pending": int(p), "review": int(r), "work": int(p) + int(r)}
        for u, t, p, r in _query(
            f"""SELECT unit_id, count(*) AS total, count(*) FILTER (WHERE status = 'pending') AS pending,
                      count(*) FILTER (WHERE status = 'review') AS review
               FROM {source} WHERE {where} GROUP BY unit_id
               HAVING pending + review > 0 ORDER BY pending + review DESC, unit_id LIMIT {int(top_units)}""",
            params,
        )
    ]
    return result


def status_counts(runs: Sequence[Run], scope: UnitScope) -> dict[int, dict[str, int]]:
    """Rows per status of each archived run in `runs`, for the rows `scope` allows (one query)."""
    if scope.nothing or not runs:
        return {}
    files, _missing = _existing(runs)
    if not files:
        return {}
    where, params = _scope_where(scope)
    found: dict[int, dict[str, int]] = {}
    for filename, status, n in _query(
        f"SELECT filename, status, count(*) FROM {_files_sql(files)} WHERE {where} GROUP BY ALL", params
    ):
        found.setdefault(files[str(filename)].pk, {})[status] = int(n)
    return found


def decisions(
    run: Run, scope: UnitScope, *, unit_id: int | None = None, status: str | None = None
) -> list[Decision]:
    """An archived run's decisions for the rows `scope` allows (and one unit, one status),
    as unsaved `Decision` objects with their recipient and unit attached, by 个人编号."""
    from zige.roster.models import Recipient, Unit

    if scope.nothing:
        return []
    files, _missing = _existing([run])
    if not files:
        return []
    where, params = _scope_where(scope)
    if unit_id is not None:
        where, params = f"{where} AND unit_id = ?", [*params, unit_id]
    if status:
        where, params = f"{where} AND status = ?", [*params, status]
    rows = _query(
        f"SELECT {', '.join(COPY_COLUMNS)} FROM {_files_sql(files)} WHERE {where} ORDER BY recipient_id",
        params,
    )
    found = [_decision(run, row) for row in rows]
    people: dict[int, Recipient] = {}
    units: dict[int, Unit] = {}
    for chunk in store.in_lists([d.recipient_id for d in found]):
        people.update(Recipient.objects.in_bulk(list(chunk)))
    for chunk in store.in_lists(sorted({d.unit_id for d in found})):
        units.update(Unit.objects.in_bulk(list(chunk)))
    for d in found:
        d.recipient = people[d.recipient_id]
        d.unit = units[d.unit_id]
    found.sort(key=lambda d: d.recipient.person_no)
    return found
