"""Suggested matches for feed rows with a broken ID (模糊匹配建议, docs/rules.md §4a): find, accept, reject.

An import keeps the rows it rejected. For the rows rejected with `bad_id_checksum`, a bureau
operator may ask for suggestions (`suggestions_find`): the engine's fuzzy fallback
(`zige.engine.fuzzy`) is run over the import's stored file against the roll as it is now, and
each confirmed candidate is kept as a `SuggestedMatch` of the import. Nothing here is evidence:

- `suggestion_accept` records the corrected row as evidence *through the normal import path*: a
  one-row file of the import's kind, the row as the agency wrote it with the suggested 身份证号,
  submitted with `import_submit` (queued, deduplicated and audited like any import). One
  operator decides; a second person is not required (the corrected row is an ordinary
  record, and the decision it leads to is taken by the next run with the usual rules).
- `suggestion_reject` closes it.

Both are audited in the same transaction. Transitions follow `TRANSITIONS`; a refused one raises
`SuggestionRefused`, whose message is shown to the user.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from zige.accounts.models import Role
from zige.accounts.scoping import can_operate
from zige.audit.services import audit_record
from zige.engine import fuzzy, sql
from zige.engine.readers import ReadError, read_table
from zige.feeds import store
from zige.feeds.models import ImportBatch, ImportStatus, SuggestedMatch, SuggestionStatus
from zige.roster.models import BenefitStatus, Recipient

TRANSITIONS: dict[tuple[str, str], str] = {
    (SuggestionStatus.OPEN, SuggestionStatus.ACCEPTED): "suggestion.accepted",
    (SuggestionStatus.OPEN, SuggestionStatus.REJECTED): "suggestion.rejected",
}
_SEES = (Role.BUREAU_ADMIN, Role.BUREAU_OPERATOR, Role.AUDITOR)
_CHUNK = 1000


class SuggestionRefused(ValueError):
    """A find, accept or reject that cannot be done; the message is for the user."""


@dataclass(frozen=True)
class FindResult:
    rows_tried: int
    suggested: int
    ambiguous: int
    new: int


# ---------------------------------------------------------------------------------------------
# Reads


def suggestions_for(*, user: Any, batch: ImportBatch) -> QuerySet[SuggestedMatch]:
    """The suggestions of one import, by row; bureau staff and auditors only (404 otherwise)."""
    if getattr(user, "role", "") not in _SEES:
        raise Http404("no such import")
    return (
        SuggestedMatch.objects.filter(batch=batch)
        .select_related("recipient", "decided_by", "correction")
        .order_by("row", "recipient__person_no")
    )


def suggestion_get(*, user: Any, suggestion_id: int) -> SuggestedMatch:
    if getattr(user, "role", "") not in _SEES:
        raise Http404("no such suggestion")
    try:
        return SuggestedMatch.objects.select_related("batch", "recipient").get(pk=suggestion_id)
    except SuggestedMatch.DoesNotExist:
        raise Http404("no such suggestion") from None


# ---------------------------------------------------------------------------------------------
# Finding


def _feed_kind(batch: ImportBatch) -> Any:
    from zige.feeds.services import KINDS

    if batch.status != ImportStatus.SUCCEEDED or batch.kind not in KINDS:
        raise SuggestionRefused("只有已完成的比对数据导入可以查找纠错建议。")
    return KINDS[batch.kind]


def _read_upload(batch: ImportBatch, columns: Any) -> Any:
    refused = SuggestionRefused(f"无法读取导入 #{batch.pk} 保存的原文件。")
    if not batch.stored_path:
        raise refused
    try:
        return read_table(store.upload_path(batch.stored_path), columns)
    except (ReadError, OSError):
        raise refused from None


def _day(now: datetime) -> Any:
    return timezone.localtime(now).date() if timezone.is_aware(now) else now.date()


def _recipients_for(ids: list[str]) -> pa.Table:
    """The 正常/暂停 recipients whose ID is one of `ids`, as the engine's `recipients` table."""
    rows: list[tuple[int, str, str, str, str]] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(
            Recipient.objects.filter(
                id_number__in=ids[start : start + _CHUNK],
                benefit_status__in=(BenefitStatus.NORMAL, BenefitStatus.SUSPENDED),
            ).values_list("pk", "person_no", "id_number", "name", "birth_date_text")
        )
    return pa.table(
        {
            "recipient_pk": pa.array([r[0] for r in rows], pa.int64()),
            "person_no": pa.array([r[1] for r in rows], pa.string()),
            "id_number": pa.array([r[2] for r in rows], pa.string()),
            "name": pa.array([r[3] for r in rows], pa.string()),
            "birth_date_text": pa.array([r[4] for r in rows], pa.string()),
        }
    )


def suggestions_find(*, batch_id: int, user: Any, now: datetime) -> FindResult:
    """Run the fuzzy fallback over a succeeded feed import and keep the new suggestions.

    The file is staged again exactly as at import (the same SQL), the variants of its
    `bad_id_checksum` rows are computed in DuckDB, and only the recipients with one of those IDs
    are read from the database. Suggestions found earlier are kept as they are (with their
    decisions); a search after the roll changed may add new ones.
    """
    if not can_operate(user):
        raise PermissionDenied("only bureau staff look for suggested matches")
    batch = ImportBatch.objects.get(pk=batch_id)
    kind = _feed_kind(batch)
    raw = _read_upload(batch, kind.columns)
    as_of = _day(now)
    con = duckdb.connect()
    try:
        present = [c for c in raw.table.column_names if c != "_row"]
        con.register("raw_source", raw.table)
        query = sql.stage_feed_sql(kind=kind, source="raw_source", present=present, file_no=0, as_of=as_of)
        con.execute(f"CREATE TABLE staged_feed AS {query}")
        hints = fuzzy.feed_hints_sql(kind=kind, source="raw_source", present=present, file_no=0)
        if hints is not None:  # a kind with its own birth date / age column
            con.execute(f"CREATE TABLE fuzzy_hints AS {hints}")
        con.unregister("raw_source")
        broken = fuzzy.broken_rows_sql(hints="fuzzy_hints" if hints is not None else None)
        con.execute(f"CREATE TABLE fuzzy_broken AS {broken}")
        con.execute(
            f"CREATE TABLE fuzzy_variants AS {fuzzy.variants_sql('SELECT * FROM fuzzy_broken', as_of=as_of)}"
        )
        ids = [r[0] for r in con.execute("SELECT DISTINCT variant FROM fuzzy_variants").fetchall()]
        con.register("roll", _recipients_for(ids))
        con.execute(f"CREATE TABLE recipients AS SELECT *, {sql.name_key_sql('name')} AS name_key FROM roll")
        con.execute(
            "CREATE TABLE fuzzy_candidates AS "
            + fuzzy.candidates_sql(
                "SELECT * FROM fuzzy_variants",
                as_of=as_of,
                roster_birth="r.birth_date_text",
                carry=["recipient_pk"],
            )
        )
        con.execute("CREATE TABLE fuzzy_suggestions AS " + fuzzy.suggestions_sql(carry=["recipient_pk"]))
        counts = fuzzy.summary_counts(con)
        found = con.execute(
            "SELECT row_no, original_id, name, event_date, recipient_pk, suggested_id, edit, position, "
            "from_text, to_text, confirmed_by, candidates FROM fuzzy_suggestions ORDER BY row_no, person_no"
        ).fetchall()
    finally:
        con.close()
    with transaction.atomic():
        known = set(SuggestedMatch.objects.filter(batch=batch).values_list("row", "recipient_id"))
        new = [
            SuggestedMatch(
                batch=batch,
                row=row,
                original_id=original,
                name=name[:100],
                event_date=day,
                recipient_id=recipient_pk,
                suggested_id=suggested,
                edit=edit,
                position=position,
                from_text=before,
                to_text=after,
                confirmed_by=basis[:100],
                candidates=candidates,
                created_at=now,
            )
            for row, original, name, day, recipient_pk, suggested, edit, position, before, after, basis, candidates in found
            if (row, recipient_pk) not in known
        ]
        SuggestedMatch.objects.bulk_create(new)
        result = FindResult(counts["rows_tried"], counts["suggested"], counts["ambiguous"], len(new))
        audit_record(
            actor=user, action="suggestions.found", target_type="import", target_id=batch.pk, at=now,
            after={"file_name": batch.file_name, **result.__dict__},
        )  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------
# Deciding


def _transition(suggestion: SuggestedMatch, target: str, *, user: Any, now: datetime) -> str:
    action = TRANSITIONS.get((suggestion.status, target))
    if action is None:
        raise SuggestionRefused(
            f"该建议已{suggestion.get_status_display()}，不能再{SuggestionStatus(target).label}。"
        )
    suggestion.status = target
    suggestion.decided_by = user
    suggestion.decided_at = now
    return action


def _corrected_rows(batch: ImportBatch, kind: Any, suggestion: SuggestedMatch) -> Iterator[list[str]]:
    """The header and the one row of the original file, with the suggested ID in place."""
    raw = _read_upload(batch, kind.columns)
    table = raw.table.filter(pc.equal(raw.table["_row"], suggestion.row))
    if table.num_rows != 1:
        raise SuggestionRefused(f"原文件中找不到第 {suggestion.row} 行。")
    columns = [c for c in kind.columns if c.name in table.column_names]
    yield [c.aliases[0] for c in columns]
    values = table.to_pylist()[0]
    yield [
        suggestion.suggested_id
        if c.name == "id_number"
        else ("" if values[c.name] is None else str(values[c.name]))
        for c in columns
    ]


def suggestion_accept(*, suggestion_id: int, user: Any, now: datetime) -> ImportBatch:
    """Accept one suggestion: the corrected row is submitted as a new import of the same kind.

    The other open candidates of the same row (an ambiguous row) are rejected with it.
    """
    from zige.feeds.services import import_submit

    if not can_operate(user):
        raise PermissionDenied("only bureau staff accept suggested matches")
    with transaction.atomic():
        suggestion = (
            SuggestedMatch.objects.select_for_update()
            .select_related("batch", "recipient")
            .get(pk=suggestion_id)
        )
        batch = suggestion.batch
        kind = _feed_kind(batch)
        action = _transition(suggestion, SuggestionStatus.ACCEPTED, user=user, now=now)
        incoming = Path(settings.UPLOAD_DIR) / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=incoming, suffix=".csv", delete=False, encoding="utf-8", newline=""
        ) as handle:
            csv.writer(handle).writerows(_corrected_rows(batch, kind, suggestion))
        source = Path(handle.name)
        try:
            correction = import_submit(
                source=source, file_name=f"{kind.code}_correction_{batch.pk}_{suggestion.row}.csv",
                kind=kind.code, user=user, now=now,
            )  # fmt: skip
        finally:
            source.unlink(missing_ok=True)
        suggestion.correction = correction
        suggestion.save(update_fields=["status", "decided_by", "decided_at", "correction"])
        others = list(
            SuggestedMatch.objects.select_for_update()
            .filter(batch=batch, row=suggestion.row, status=SuggestionStatus.OPEN)
            .exclude(pk=suggestion.pk)
        )
        for other in others:
            _transition(other, SuggestionStatus.REJECTED, user=user, now=now)
            other.save(update_fields=["status", "decided_by", "decided_at"])
        audit_record(
            actor=user, action=action, target_type="suggested_match", target_id=suggestion.pk, at=now,
            before={"status": SuggestionStatus.OPEN},
            after={"status": suggestion.status, "import": batch.pk, "row": suggestion.row,
                   "person_no": suggestion.recipient.person_no, "edit": suggestion.edit,
                   "position": suggestion.position, "correction_import": correction.pk,
                   "others_rejected": [o.pk for o in others]},
        )  # fmt: skip
    return correction


def suggestion_reject(*, suggestion_id: int, user: Any, now: datetime) -> SuggestedMatch:
    if not can_operate(user):
        raise PermissionDenied("only bureau staff reject suggested matches")
    with transaction.atomic():
        suggestion = (
            SuggestedMatch.objects.select_for_update().select_related("recipient").get(pk=suggestion_id)
        )
        action = _transition(suggestion, SuggestionStatus.REJECTED, user=user, now=now)
        suggestion.save(update_fields=["status", "decided_by", "decided_at"])
        audit_record(
            actor=user, action=action, target_type="suggested_match", target_id=suggestion.pk, at=now,
            before={"status": SuggestionStatus.OPEN},
            after={"status": suggestion.status, "import": suggestion.batch_id, "row": suggestion.row,
                   "person_no": suggestion.recipient.person_no},
        )  # fmt: skip
    return suggestion
