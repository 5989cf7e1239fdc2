"""Imports of the roster and of agency feeds (writes).

`import_submit` stores the uploaded file and records a batch (or a duplicate: the same content
was already imported); `import_execute` is the background task's body (and the CLI's inline
work): read the file with the engine's readers, normalise it with the engine's SQL in DuckDB,
then write everything in one transaction.

- Roster: `zige.roster.services.roster_apply_staged` updates units, recipients and the history
  of each changed field.
- Feed: rows are normalised into the partitioned evidence store (`zige.engine.store`: Parquet by
  kind and month, the ID as a 64-bit key), deduplicated within the file and against the stored
  rows of the same kind in the months the file touches; the batch's new files and its manifest
  are renamed into place *before* the transaction that marks the batch succeeded. A file no
  succeeded batch's manifest lists is ignored by everything. Run inside a caller's transaction
  (`zige.verification.services.submission_review`), that transaction is a savepoint and the
  batch succeeds with the caller's commit; the caller holds the kind's import lock to it and
  discards the files if it rolls back (`store.batch_written`).

A failure at any point leaves the previous state intact and marks the batch `failed` with a
code, a Chinese message for the officer and the English detail for support staff
(`zige.feeds.failures`, the one place failures get their words); the traceback of a failure
that is not the file's goes to the server log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from zige.accounts.models import User
from zige.accounts.scoping import can_operate
from zige.audit.services import audit_record
from zige.engine import sql
from zige.engine.kinds import BUILTIN_KINDS, ROSTER_COLUMNS, FeedKind, fields_as_written, kind_for_filename
from zige.engine.readers import SUPPORTED_SUFFIXES, RawTable, read_table
from zige.engine.store import (
    DEFAULT_GRACE,
    BatchWrite,
    CompactedPartition,
    CompactionResult,
    EvidenceStore,
    NotFastPath,
)
from zige.feeds import store
from zige.feeds.failures import (
    INTERRUPTED,
    ImportFailure,
    ImportRefused,
    duplicate_failure,
    failure_for,
    is_file_problem,
    suffix_text,
)
from zige.feeds.models import IMPORT_TRANSITIONS, ImportBatch, ImportReject, ImportStatus

logger = logging.getLogger(__name__)

ROSTER = "roster"
KINDS: dict[str, FeedKind] = {k.code: k for k in BUILTIN_KINDS}
_ROSTER_LOCK = 7_262_019  # PostgreSQL advisory lock: one roster import writes at a time

# progress(label, percent_done, 100)
Progress = Callable[[str, int, int], None]


def _known_kinds() -> str:
    return ", ".join(KINDS)


def resolve_kind(*, kind: str | None, file_name: str) -> str:
    """`roster`, the given feed kind, or the feed kind the file name starts with (spec §3)."""
    if kind:
        code = kind.strip().lower()
        if code == ROSTER or code in KINDS:
            return code
        raise ImportRefused(
            "unknown_kind",
            kind=kind,
            known=f"{ROSTER}、{'、'.join(KINDS)}",
            detail=f"Unknown kind {kind!r}; known: {ROSTER}, {_known_kinds()}.",
        )
    found = kind_for_filename(file_name, BUILTIN_KINDS)
    if found is None:
        raise ImportRefused(
            "kind_from_name",
            file=file_name,
            detail=f"Cannot tell the kind of {file_name!r} from its name: start the name with a kind "
            f"(e.g. rail_2026.csv) or give the kind ({_known_kinds()}).",
        )
    return found.code


def _clean_file_name(file_name: str) -> str:
    name = Path(file_name.replace("\\", "/")).name.strip() or "upload"
    return name[:255]


# ---------------------------------------------------------------------------------------------
# Submitting


def import_submit(
    *,
    source: Path,
    file_name: str,
    kind: str | None,
    user: User | None,
    now: datetime,
    enqueue: bool = True,
) -> ImportBatch:
    """Store `source` and record an import of it; queue the work (on commit) unless it is a
    duplicate of a succeeded import of the same kind, which is recorded as `duplicate`.

    `kind` is `roster` for the roster; for a feed, the kind or None (then from `file_name`).
    `enqueue=False` leaves the work to the caller (the CLI runs `import_execute` inline).
    Raises `ImportRefused` (a `ValueError`) for an unknown kind, an unsupported or too large
    file, and `PermissionDenied` for a user who may not import.
    """
    if user is not None and not can_operate(user):
        raise PermissionDenied("only bureau staff import files")
    name = _clean_file_name(file_name)
    code = resolve_kind(kind=kind, file_name=name)
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise ImportRefused(
            "unsupported_type",
            file=name,
            suffix=suffix_text(suffix),
            detail=f"Unsupported file type {suffix or '(none)'}; expected one of {supported}.",
        )
    size = source.stat().st_size
    limit = int(getattr(settings, "ZIGE_MAX_IMPORT_BYTES", 2 * 1024**3))
    if size > limit:
        raise ImportRefused(
            "too_large",
            file=name,
            size=filesizeformat(size),  # as the import pages show sizes (字节 / KB / MB / GB)
            limit=filesizeformat(limit),
            detail=f"The file is too large ({size:,} bytes; limit {limit:,}).",
        )
    stored = store.upload_save(source, suffix=suffix)
    with transaction.atomic():
        original = (
            ImportBatch.objects.filter(kind=code, sha256=stored.sha256, status=ImportStatus.SUCCEEDED)
            .order_by("pk")
            .first()
        )
        batch = ImportBatch.objects.create(
            kind=code, file_name=name, sha256=stored.sha256, size=stored.size,
            stored_path=stored.stored_path, created_by=user, created_at=now,
        )  # fmt: skip
        if original is not None:
            _record_duplicate(batch, original, now=now, before=ImportStatus.QUEUED)
            return batch
        audit_record(
            actor=user, action="import.submitted", target_type="import", target_id=batch.pk, at=now,
            after={"kind": code, "file_name": name, "sha256": stored.sha256, "size": stored.size},
        )  # fmt: skip
        if enqueue:
            batch_id = batch.pk
            transaction.on_commit(lambda: _enqueue(batch_id))
    return batch


def _enqueue(batch_id: int) -> None:
    from zige.feeds.tasks import import_task

    import_task.enqueue(batch_id)


def _move(batch_id: int, before: str, to: str, **fields: Any) -> bool:
    """Change import `batch_id`'s status from `before` to `to` (one of `IMPORT_TRANSITIONS`) and
    set `fields`, only if it is still `before` (a conditional UPDATE: of two callers, one wins).
    True if it changed; the caller audits it in the same transaction."""
    if (before, to) not in IMPORT_TRANSITIONS:
        raise ValueError(f"an import's status does not change from {before} to {to}")
    return bool(ImportBatch.objects.filter(pk=batch_id, status=before).update(status=to, **fields))


def _record_duplicate(batch: ImportBatch, original: ImportBatch, *, now: datetime, before: str) -> bool:
    """Mark `batch` (still `before`) a duplicate of `original`, audited; False if it was not."""
    failure = duplicate_failure(original_pk=original.pk, original_file=original.file_name)
    outcome = {
        "message": failure.message, "failure_code": failure.code, "detail": failure.detail,
        "duplicate_of": original, "progress": 100, "finished_at": now,
    }  # fmt: skip
    if not _move(batch.pk, before, ImportStatus.DUPLICATE, **outcome):
        return False
    batch.status = ImportStatus.DUPLICATE
    for name, value in outcome.items():
        setattr(batch, name, value)
    audit_record(
        actor=batch.created_by, action="import.duplicate", target_type="import", target_id=batch.pk, at=now,
        after={"kind": batch.kind, "file_name": batch.file_name, "sha256": batch.sha256,
               "duplicate_of": original.pk},
    )  # fmt: skip
    return True


def _succeeded_twin(batch: ImportBatch) -> ImportBatch | None:
    return (
        ImportBatch.objects.filter(kind=batch.kind, sha256=batch.sha256, status=ImportStatus.SUCCEEDED)
        .exclude(pk=batch.pk)
        .order_by("pk")
        .first()
    )


# ---------------------------------------------------------------------------------------------
# Executing


class _Twin(Exception):
    def __init__(self, original: ImportBatch) -> None:
        super().__init__(original.pk)
        self.original = original


@dataclass
class _Tracker:
    """Reports progress to the caller and saves the percentage on the batch (its own short
    statement, outside the import's transaction, so that a page polling the batch sees it)."""

    batch_id: int
    callback: Progress | None
    started: float = field(default_factory=time.perf_counter)
    written: list[Path | BatchWrite] = field(default_factory=list)

    def step(self, label: str, percent: int, *, save: bool = True) -> None:
        if self.callback is not None:
            self.callback(label, percent, 100)
        if save:
            ImportBatch.objects.filter(pk=self.batch_id).update(progress=percent)

    def at(self, now: datetime) -> datetime:
        """`now` plus the time spent so far (the finishing time, without reading the clock)."""
        return now + timedelta(seconds=round(time.perf_counter() - self.started, 3))


def _claim(batch: ImportBatch, *, now: datetime) -> bool:
    """Take a queued import for this worker (`queued → running`), audited `import.started` in the
    same transaction. False, with nothing changed, when it is not queued: another worker (a
    retried task, a second worker) has it or had it."""
    with transaction.atomic():
        if not _move(
            batch.pk, ImportStatus.QUEUED, ImportStatus.RUNNING, started_at=now, progress=0, message="",
            failure_code="", detail="",
        ):  # fmt: skip
            return False
        audit_record(
            actor=batch.created_by, action="import.started", target_type="import", target_id=batch.pk, at=now,
            before={"status": ImportStatus.QUEUED},
            after={"status": ImportStatus.RUNNING, "kind": batch.kind, "file_name": batch.file_name},
        )  # fmt: skip
    return True


def import_execute(*, batch_id: int, now: datetime, progress: Progress | None = None) -> ImportBatch:
    """Do the import of a queued batch; returns it succeeded, failed or duplicate.

    The batch is claimed first (`queued → running`, audited `import.started`): a batch that is
    not queued — running in another worker, or finished — is returned unchanged and not
    imported again (logged). Never raises for a bad file: the batch is marked `failed` with the
    reason.
    """
    batch = ImportBatch.objects.select_related("created_by").get(pk=batch_id)
    original = _succeeded_twin(batch) if batch.status == ImportStatus.QUEUED else None
    if original is not None:  # the same content succeeded while this one waited
        with transaction.atomic():
            duplicate = _record_duplicate(batch, original, now=now, before=ImportStatus.QUEUED)
        if duplicate:
            return batch
    if not _claim(batch, now=now):
        batch.refresh_from_db()
        logger.warning("import %s is %s, not queued: not executed again", batch.pk, batch.status)
        return batch
    tracker = _Tracker(batch.pk, progress)
    try:
        if batch.kind == ROSTER:
            _execute_roster(batch, now=now, tracker=tracker)
        else:
            _execute_feed(batch, now=now, tracker=tracker)
    except Exception as exc:
        original = _twin_of(batch, exc)
        if original is not None:
            for path in tracker.written:
                store.discard(path)
            with transaction.atomic():
                _record_duplicate(batch, original, now=tracker.at(now), before=ImportStatus.RUNNING)
        else:
            if not ImportBatch.objects.filter(pk=batch.pk, status=ImportStatus.SUCCEEDED).exists():
                for path in tracker.written:
                    store.discard(path)
            _record_failure(batch, exc, now=tracker.at(now))
    batch.refresh_from_db()
    if progress is not None and batch.status == ImportStatus.SUCCEEDED:
        progress("done", 100, 100)
    return batch


def imports_mark_interrupted(*, now: datetime, started_before: datetime) -> int:
    """Mark `failed` every import still `running` that a task worker started before
    `started_before` (the start of the only worker: whatever was running then, its process
    ended mid-import). Nothing of such an import is live: its evidence files are listed by no
    succeeded batch and its roster rows were never committed (the import's final transaction
    is the commit point), so failing it loses nothing and the file can be uploaded again.
    Returns how many; each gets an audit row in the same transaction."""
    marked = 0
    stuck = ImportBatch.objects.filter(status=ImportStatus.RUNNING, started_at__lt=started_before)
    for batch in stuck.order_by("pk"):
        with transaction.atomic():
            if not _move(
                batch.pk, ImportStatus.RUNNING, ImportStatus.FAILED, message=INTERRUPTED.message,
                failure_code=INTERRUPTED.code, detail=INTERRUPTED.detail, finished_at=now, evidence_path="",
            ):  # fmt: skip
                continue
            audit_record(
                actor=None, action="import.interrupted", target_type="import", target_id=batch.pk, at=now,
                before={"status": ImportStatus.RUNNING, "started_at": batch.started_at.isoformat() if batch.started_at else None},
                after={"status": ImportStatus.FAILED, "kind": batch.kind, "file_name": batch.file_name},
            )  # fmt: skip
        marked += 1
    return marked


def _twin_of(batch: ImportBatch, exc: Exception) -> ImportBatch | None:
    """The succeeded import of the same content that makes this failed one a duplicate: found by
    the last check (`_Twin`), or committed by another import after that check, so that marking
    this one succeeded broke the constraint `import_content_once`."""
    if isinstance(exc, _Twin):
        return exc.original
    if isinstance(exc, IntegrityError):
        return _succeeded_twin(batch)
    return None


def _record_failure(batch: ImportBatch, exc: Exception, *, now: datetime) -> None:
    failure: ImportFailure = failure_for(exc, file_name=batch.file_name)
    if is_file_problem(exc):
        logger.warning("import %s (%s, %s) failed: %s", batch.pk, batch.kind, batch.file_name, failure.detail)
    else:
        logger.error("import %s (%s, %s) failed: %s", batch.pk, batch.kind, batch.file_name, failure.code,
                     exc_info=exc)  # fmt: skip
    with transaction.atomic():
        if not _move(
            batch.pk, ImportStatus.RUNNING, ImportStatus.FAILED, message=failure.message,
            failure_code=failure.code, detail=failure.detail, finished_at=now, evidence_path="",
        ):  # fmt: skip
            return  # finished after all (the error came after the commit), or taken over
        audit_record(
            actor=batch.created_by, action="import.failed", target_type="import", target_id=batch.pk,
            at=now, after={"kind": batch.kind, "file_name": batch.file_name, "code": failure.code,
                           "message": failure.message, "detail": failure.detail},
        )  # fmt: skip


def _staging_day(now: datetime) -> date:
    """The as-of date for validating IDs at import (a birth date may not be after it)."""
    return timezone.localtime(now).date() if timezone.is_aware(now) else now.date()


def _read(batch: ImportBatch, columns: Any) -> RawTable:
    return read_table(store.upload_path(batch.stored_path), columns)


def _lock_running(batch: ImportBatch) -> None:
    """Inside the final transaction: the batch is still ours, and its content not yet imported."""
    current = ImportBatch.objects.select_for_update().get(pk=batch.pk)
    if current.status != ImportStatus.RUNNING:
        raise RuntimeError(f"import {batch.pk} is {current.status}, no longer running")
    original = _succeeded_twin(batch)
    if original is not None:
        raise _Twin(original)


def _file_fields(raw: RawTable) -> dict[str, Any]:
    return {
        "format": raw.format,
        "encoding": raw.encoding[:32],
        "header_row": raw.header_row,
        "rows_read": raw.rows_read,
        "blank_rows": raw.blank_rows,
    }


def _finish(batch: ImportBatch, *, now: datetime, fields: dict[str, Any]) -> None:
    fields |= {"progress": 100, "finished_at": now, "message": "", "failure_code": "", "detail": ""}
    if not _move(batch.pk, ImportStatus.RUNNING, ImportStatus.SUCCEEDED, **fields):
        raise RuntimeError(f"import {batch.pk} is no longer running")  # locked by `_lock_running`
    counts = {
        k: fields[k]
        for k in ("rows_read", "rows_used", "rows_rejected", "duplicate_rows", "blank_rows", "unmatched",
                  "created", "updated")
        if k in fields
    }  # fmt: skip
    audit_record(
        actor=batch.created_by, action="import.succeeded", target_type="import", target_id=batch.pk, at=now,
        after={"kind": batch.kind, "file_name": batch.file_name, "sha256": batch.sha256, **counts},
    )  # fmt: skip


def _execute_roster(batch: ImportBatch, *, now: datetime, tracker: _Tracker) -> None:
    from zige.roster.services import roster_apply_staged

    tracker.step(f"read {batch.file_name}", 5)
    raw = _read(batch, ROSTER_COLUMNS)
    tracker.step("normalise", 25)
    con = duckdb.connect()
    try:
        present = [c for c in raw.table.column_names if c != "_row"]
        query = sql.stage_roster_sql(source="raw_source", present=present, file_no=0, as_of=_staging_day(now))
        con.register("raw_source", raw.table)
        con.execute(f"CREATE TABLE staged_roster AS {query}")
        con.unregister("raw_source")
        con.execute(f"CREATE TABLE roster_outcome AS {sql.roster_outcome_sql()}")
        tracker.step("compare with the roll", 40)
        steps = iter((50, 70, 85, 95))
        with transaction.atomic():
            _lock_running(batch)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ROSTER_LOCK])
            counts = roster_apply_staged(
                con=con, batch_id=batch.pk, now=now, actor=batch.created_by,
                progress=lambda label: tracker.step(label, next(steps, 95), save=False),
                fields=fields_as_written(ROSTER_COLUMNS, raw.headers), present=present,
            )  # fmt: skip
            _finish(
                batch,
                now=tracker.at(now),
                fields=_file_fields(raw)
                | {
                    "rows_used": counts.rows_used,
                    "rows_rejected": counts.rows_rejected,
                    "duplicate_rows": counts.duplicate_rows,
                    "created": counts.created,
                    "updated": counts.updated,
                },
            )
    finally:
        con.close()


def _execute_feed(batch: ImportBatch, *, now: datetime, tracker: _Tracker) -> None:
    """Normalise the file into the evidence store (`zige.engine.store`), then record the batch.

    A UTF-8 CSV is scanned by the native C scan (zige.engine.native: the rows it is sure of,
    one thread per core; the others through the same SQL), or, without the library or for kinds
    with a result column, read by DuckDB's parallel `read_csv` and normalised in the same pass; any
    other file (GBK, UTF-16, Excel, Parquet, ragged rows, empty lines) by the engine's readers.
    The batch's files and manifest are renamed into place before the transaction that marks it
    succeeded; until then nothing reads them, and a failure removes them.

    Imports of one kind run one at a time (`EvidenceStore.import_lock`, a file lock beside the
    store, so the same for SQLite and PostgreSQL): from reading the rows stored before to the
    commit, or two imports of overlapping files would both store the rows they share."""
    kind = KINDS[batch.kind]
    tracker.step(f"read and normalise {batch.file_name}", 5)
    estore = store.evidence_store()
    with estore.import_lock(kind.code):
        _execute_feed_locked(batch, kind=kind, estore=estore, now=now, tracker=tracker)


def _execute_feed_locked(
    batch: ImportBatch, *, kind: FeedKind, estore: EvidenceStore, now: datetime, tracker: _Tracker
) -> None:
    """`_execute_feed` under the kind's import lock."""
    existing = store.live_manifests(kind.code)
    con = duckdb.connect()
    try:
        tag, as_of = batch.sha256[:8], _staging_day(now)
        try:
            result = estore.ingest_csv(
                con, path=store.upload_path(batch.stored_path), kind=kind, batch_id=batch.pk, tag=tag, as_of=as_of,
                existing=existing,
            )  # fmt: skip
        except NotFastPath:
            raw = _read(batch, kind.columns)
            tracker.step("normalise", 30)
            result = estore.ingest_table(
                con, raw=raw, kind=kind, batch_id=batch.pk, tag=tag, as_of=as_of, existing=existing
            )
            file_format = raw.format
        else:
            file_format = "csv"
        tracker.written.append(result.write)
        scanned = ", native scan" if result.native else ""
        tracker.step(
            f"evidence written ({result.rows_used:,} rows in {len(result.months)} months{scanned})", 60
        )
        tracker.step("match with the roll", 70)
        recipients = store.fetch_arrow(
            "SELECT CAST(id_number AS TEXT) FROM roster_recipient "
            "WHERE benefit_status IN ('normal', 'suspended')",
            ["id_number"],
        )
        con.register("recipient_ids", recipients)
        written = [estore.root / f for f in result.manifest.files]
        unmatched = 0
        if written:
            unmatched = int(
                con.execute(
                    f"SELECT count(*) FROM ({estore.read_sql(written)}) u WHERE NOT EXISTS ("
                    f"SELECT 1 FROM recipient_ids r WHERE {sql.id_key_sql('r.id_number')} = u.id_key)"
                ).fetchone()[0]  # type: ignore[index]
            )
        tracker.step("save", 90)
        with transaction.atomic():
            _lock_running(batch)
            stored = store.bulk_insert(
                ImportReject._meta.db_table,
                ["batch_id", "row", "field", "value", "reason"],
                store.duck_rows(
                    con,
                    f"SELECT {batch.pk}, row_no, field, value, reason FROM ingest_rejects ORDER BY row_no",
                ),
            )
            assert stored == result.rows_rejected
            _finish(
                batch,
                now=tracker.at(now),
                fields={
                    "format": file_format,
                    "encoding": result.encoding[:32],
                    "header_row": result.header_row,
                    "rows_read": result.rows_read,
                    "blank_rows": result.blank_rows,
                    "rows_used": result.rows_used,
                    "rows_rejected": result.rows_rejected,
                    "duplicate_rows": result.duplicate_rows,
                    "unmatched": unmatched,
                    "evidence_path": result.manifest.path,
                },
            )
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Compacting the evidence store


def store_compact(
    *,
    now: datetime,
    min_files: int = 2,
    kind: str | None = None,
    grace: timedelta = DEFAULT_GRACE,
    progress: Callable[[CompactedPartition], None] | None = None,
) -> CompactionResult:
    """Merge each kind/month partition of the evidence store holding `min_files` or more files
    of succeeded imports (of one kind or all) into one file (`EvidenceStore.compact`); audited
    when it merged or removed anything.

    Only succeeded imports are merged: an import still running has its manifest on disk before
    its transaction commits, and its files stay its own. No lock against imports is needed: an
    import only adds its own new files, and its duplicate check reads the partition either
    before or after a compaction's commit — the same rows — while the replaced files stay for
    `grace`. Two compactions (or a compaction and `zige store upgrade`) exclude each other by
    the store's lock file (`StoreBusy`)."""
    result = store.evidence_store().compact(
        now=now, batches=store.live_manifests(kind), kinds=None if kind is None else [kind],
        min_files=min_files, grace=grace, progress=progress,
    )  # fmt: skip
    if result.partitions or result.removed:
        with transaction.atomic():
            audit_record(
                action="store.compacted", target_type="evidence_store", at=now,
                after={
                    "partitions": [
                        {"kind": p.kind, "month": p.month, "files": p.files, "rows": p.rows, "record": p.record}
                        for p in result.partitions
                    ],
                    "removed": len(result.removed), "removed_bytes": result.removed_bytes,
                },
            )  # fmt: skip
    return result
