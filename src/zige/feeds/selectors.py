"""Reads of imports, their rejects and the evidence store.

Imports are the bureau's business: bureau staff and auditors see every import; a unit operator
sees none (404, the same answer as for an import that does not exist).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from zige.accounts.models import Role
from zige.engine.sql import id_number_from_key_sql, record_kind_sql
from zige.feeds import store
from zige.feeds.models import ImportBatch, ImportReject, PushedResult
from zige.ids import clean_id, store_key, upgrade_15_to_18

_SEES_IMPORTS = (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR)


def _check_may_see_imports(user: Any) -> None:
    if not getattr(user, "is_authenticated", False) or getattr(user, "role", "") not in _SEES_IMPORTS:
        raise Http404("no such import")


def imports_list(*, user: Any, kind: str | None = None, status: str | None = None) -> QuerySet[ImportBatch]:
    """Every import, newest first (optionally of one kind or status)."""
    _check_may_see_imports(user)
    batches = ImportBatch.objects.select_related("created_by", "duplicate_of").order_by("-created_at", "-pk")
    if kind:
        batches = batches.filter(kind=kind)
    if status:
        batches = batches.filter(status=status)
    return batches


def import_get(*, user: Any, batch_id: int) -> ImportBatch:
    _check_may_see_imports(user)
    try:
        return ImportBatch.objects.select_related("created_by", "duplicate_of").get(pk=batch_id)
    except ImportBatch.DoesNotExist:
        raise Http404("no such import") from None


def rejects_for(*, batch: ImportBatch) -> QuerySet[ImportReject]:
    """The rejected rows of an import, in file order (file, row, field, value, reason)."""
    return ImportReject.objects.filter(batch=batch).order_by("row", "pk")


_duck_lock = threading.Lock()
_duck: tuple[int, duckdb.DuckDBPyConnection] | None = None  # (pid, this process's DuckDB)


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on one in-memory DuckDB database per process (a cursor per call: thread-safe).

    Opening a database costs about 30 ms, more than the lookup itself, and the person page reads
    the evidence store on every request. A process forked from one that had it opens its own.
    Its memory (the cache of Parquet data it keeps between lookups) is capped at 256 MB."""
    global _duck
    with _duck_lock:
        if _duck is None or _duck[0] != os.getpid():
            _duck = (os.getpid(), duckdb.connect(config={"memory_limit": "256MB"}))
        return _duck[1].cursor()


def _normalised_id(id_number: str) -> str:
    text = clean_id(id_number)
    if len(text) == 15 and text.isdigit():
        return upgrade_15_to_18(text)
    return text


def evidence_for_person(
    *, id_number: str, limit: int | None = None, keep: Sequence[KeepRange] = ()
) -> list[dict[str, Any]]:
    """Every evidence record of one person, newest first: the rows of succeeded feed imports
    (read from the evidence store with DuckDB; the files are sorted by ID, so only the matching
    row groups are read) and the results pushed by the app and terminals.

    `limit`: only the newest `limit` records (cut in the queries, not after loading every one),
    and besides them every record that `keep` names: (kind, first day, last day), the kind being
    a record's `record_kind` or its `kind` — the records that decide the person's current
    decision stay however old (`reports.selectors.deciding_ranges`). `evidence_count_for_person`
    counts them all.

    Each record: kind, record_kind (declared_dead / declared_missing / unit_confirmed_lost split
    out), date, end_date, sub (pass/fail, eligible/lost/unreachable, dead/missing,
    custodial/non_custodial), detail (the kind's other columns joined by `|`), file_name, row,
    batch_id. The caller has already checked that the user may see the person.
    """
    wanted = _normalised_id(id_number)
    records: list[dict[str, Any]] = []
    files = store.evidence_files()  # batch files and merged ones (`zige store compact`)
    if files and len(wanted) == 18 and wanted[:17].isdigit():
        query = (
            f"SELECT batch_id, row_no, feed_kind, {record_kind_sql()} AS record_kind, event_date, "
            f"end_date, sub, detail FROM ({store.evidence_read_sql(files)}) "
            f"WHERE id_key = ? AND {id_number_from_key_sql('id_key')} = ?"
        )
        params: list[Any] = [store_key(wanted), wanted]
        if limit is not None:
            kept = " OR ".join(
                "((record_kind = ? OR feed_kind = ?) AND event_date BETWEEN ? AND ?)" for _ in keep
            )
            query = (
                "SELECT batch_id, row_no, feed_kind, record_kind, event_date, end_date, sub, detail FROM ("
                f"{query}) QUALIFY row_number() OVER "
                "(ORDER BY event_date DESC, feed_kind, batch_id DESC, row_no DESC) <= ?"
                + (f" OR {kept}" if keep else "")
            )
            params.append(limit)
            for kind, first, last in keep:
                params.extend([kind, kind, first, last])
        with duckdb_cursor() as con:  # the store's key of an ID: zige.ids.store_key
            rows = con.execute(query, params).fetchall()
        names = dict(ImportBatch.objects.filter(pk__in={r[0] for r in rows}).values_list("pk", "file_name"))
        for batch_id, row_no, kind, record_kind, day, end_date, sub, detail in rows:
            records.append(
                {
                    "kind": kind,
                    "record_kind": record_kind,
                    "date": day,
                    "end_date": end_date,
                    "sub": sub or "",
                    "detail": detail or "",
                    "file_name": names.get(batch_id, ""),
                    "row": row_no,
                    "batch_id": batch_id,
                    "source": "import",
                }
            )
    for pushed in _pushed_for_person(wanted, limit=limit, keep=keep):
        detail = (
            f"{pushed.method}|{pushed.device_no}|{pushed.result}"
            if pushed.kind == "terminal_auth"
            else f"{pushed.result}|{pushed.similarity}"
        )
        records.append(
            {
                "kind": pushed.kind,
                "record_kind": pushed.kind,
                "date": timezone.localtime(pushed.auth_time).date(),
                "end_date": None,
                "sub": pushed.result,
                "detail": detail,
                "file_name": pushed.client.name,
                "row": None,
                "batch_id": None,
                "source": "push",
            }
        )
    records.sort(key=_newest_first)
    if limit is not None and len(records) > limit:  # the newest of both sources, and the kept
        records = [r for i, r in enumerate(records) if i < limit or _kept(r, keep)]
    return records


# A range of records kept beyond a limit: (record_kind or kind, first day, last day).
KeepRange = tuple[str, date, date]


def _kept(record: dict[str, Any], keep: Sequence[KeepRange]) -> bool:
    kinds = {record.get("record_kind"), record.get("kind")}
    return any(kind in kinds and first <= record["date"] <= last for kind, first, last in keep)


def _pushed_for_person(id_number: str, *, limit: int | None, keep: Sequence[KeepRange]) -> list[PushedResult]:
    """The results pushed for the person: all, or the newest `limit` and those `keep` names."""
    qs = PushedResult.objects.filter(id_number=id_number).select_related("client")
    if limit is None:
        return list(qs)
    wanted = Q(pk__in=qs.order_by("-auth_time", "-pk").values("pk")[:limit])
    for kind, first, last in keep:
        start = timezone.make_aware(datetime.combine(first, time.min))
        end = timezone.make_aware(
            datetime.combine(min(last, date.max - timedelta(days=1)) + timedelta(days=1), time.min)
        )
        wanted |= Q(kind=kind, auth_time__gte=start, auth_time__lt=end)
    return list(qs.filter(wanted))


def evidence_count_for_person(*, id_number: str, without_bureau_findings: bool = False) -> int:
    """How many evidence records `evidence_for_person` gives the person without a limit: one
    COUNT over the matching row groups of the store, and one over the pushed results.
    `without_bureau_findings`: not the `unit_confirm` rows of the bureau's 疑点核查 findings (for a
    user who may not see them, `reports.selectors.evidence_visible`)."""
    from zige.reports.explain import BUREAU_FINDING

    wanted = _normalised_id(id_number)
    count = 0
    files = store.evidence_files()
    if files and len(wanted) == 18 and wanted[:17].isdigit():
        with duckdb_cursor() as con:
            hidden = (
                " AND NOT (feed_kind = 'unit_confirm' "
                "AND starts_with(trim(split_part(coalesce(detail, ''), '|', 1)), ?))"
            )
            row = con.execute(
                f"SELECT count(*) FROM ({store.evidence_read_sql(files)}) "
                f"WHERE id_key = ? AND {id_number_from_key_sql('id_key')} = ?"
                + (hidden if without_bureau_findings else ""),
                [store_key(wanted), wanted, *([BUREAU_FINDING] if without_bureau_findings else [])],
            ).fetchone()
        count = int(row[0]) if row else 0
    return count + PushedResult.objects.filter(id_number=wanted).count()


def _newest_first(record: dict[str, Any]) -> tuple[int, str, int, int]:
    day: date = record["date"]
    return (-day.toordinal(), record["kind"], -(record["batch_id"] or 0), -(record["row"] or 0))
