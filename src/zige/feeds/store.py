"""What the system keeps outside its relational tables, and bulk writes into them.

Files (all under `ZIGE_DATA_DIR`, none served directly):

- uploads: every imported file, named by its content hash (`uploads/ab/ab12….csv`);
- the evidence store (`zige.engine.store`): the used rows of each succeeded feed import in
  Parquet files partitioned by kind and month
  (`evidence/kind=<kind>/month=<YYYY-MM>/b<batch_id>-<hash8>.parquet`, listed by the batch's
  manifest `evidence/_manifest/b<batch_id>-<hash8>.json`, which `ImportBatch.evidence_path`
  names), sorted by ID key so that DuckDB reads only the row groups of the IDs asked for (small
  ones, `EVIDENCE_ROW_GROUP`: a person page reads one from every file); `zige store compact`
  merges each partition's files into one (`evidence/kind=…/month=…/c<n>-<tag>.parquet`, recorded
  in `evidence/_compact/c<n>.json`), and every read below resolves a batch's files through those
  records (`EvidenceStore.resolve`);
- run copies: each run's decisions as Parquet (`runs/<run_id>/decisions.parquet`).

A file is written under a temporary name and renamed into place *before* the database
transaction that refers to it commits. A file that no succeeded batch or run refers to is
ignored by everything, so a crash at any point leaves the previous state intact. Paths are
stored relative to their directory, so a data directory can be moved.

Bulk writes: `bulk_insert` feeds many rows into a table in the current transaction — COPY on
PostgreSQL, `executemany` on SQLite. Never a per-row ORM save for 500,000 rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import DatabaseError, connection

from zige.engine.sql import id_number_from_key_sql, quote
from zige.engine.store import STORE_COLUMNS, BatchManifest, BatchWrite, EvidenceStore, FileList

# The columns of an evidence file (kind and month are in its path).
EVIDENCE_COLUMNS = STORE_COLUMNS
_CHUNK = 1 << 20
# Rows per Parquet row group of an evidence file. The person page looks one ID up in every file
# and DuckDB decodes the ID column of each row group whose min/max covers it: 16,384 rows make
# that lookup three times faster than 65,536 on a 500,000-person province (22 ms instead of 66
# over 44 files), and cost nothing measurable to the runs that read whole files.
EVIDENCE_ROW_GROUP = 16_384


# ---------------------------------------------------------------------------------------------
# Uploads


@dataclass(frozen=True)
class StoredUpload:
    sha256: str
    size: int
    stored_path: str  # relative to settings.UPLOAD_DIR


def upload_save(source: Path, *, suffix: str) -> StoredUpload:
    """Copy `source` into the upload store under its content hash, hashing while copying."""
    root = Path(settings.UPLOAD_DIR)
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle, temp_name = tempfile.mkstemp(prefix=".upload-", dir=root)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as target, source.open("rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                target.write(chunk)
        sha = digest.hexdigest()
        relative = f"{sha[:2]}/{sha}{suffix.lower()}"
        final = root / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            temp.unlink()
        else:
            temp.chmod(0o600)
            temp.replace(final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return StoredUpload(sha, size, relative)


def upload_path(stored_path: str) -> Path:
    """The uploaded file of a batch (`ImportBatch.stored_path`)."""
    return Path(settings.UPLOAD_DIR) / stored_path


# ---------------------------------------------------------------------------------------------
# The evidence store


def evidence_store() -> EvidenceStore:
    """The partitioned evidence store under `EVIDENCE_DIR` (`zige.engine.store`)."""
    return EvidenceStore(
        Path(settings.EVIDENCE_DIR),
        row_group_size=EVIDENCE_ROW_GROUP,
        rename=lambda source, target: _rename(source, target),  # late-bound: tests inject failures
    )


def evidence_file(evidence_path: str) -> Path:
    """The manifest of a batch (`ImportBatch.evidence_path`): the list of its Parquet files."""
    return Path(settings.EVIDENCE_DIR) / evidence_path


def batch_manifests(batches: Iterable[Any]) -> list[BatchManifest]:
    """The manifests of the given `ImportBatch` rows (those with evidence)."""
    estore = evidence_store()
    return [estore.manifest(b.evidence_path) for b in batches if b.evidence_path]


def live_manifests(kind: str | Sequence[str] | None = None) -> list[BatchManifest]:
    """The manifests of every succeeded feed import (the live batches; of one kind, some or
    all), oldest first."""
    from zige.feeds.models import ImportBatch, ImportStatus

    batches = ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED).exclude(evidence_path="")
    if kind is not None:
        batches = batches.filter(kind__in=[kind] if isinstance(kind, str) else list(kind))
    # The paths only, no model instances: the person page asks on every request, and 10,000
    # imports' instances took 90-130 ms, their paths 8 ms (docs/performance.md).
    paths = batches.order_by("pk").values_list("evidence_path", flat=True)
    estore = evidence_store()
    return [estore.manifest(p) for p in paths]


def evidence_files(kind: str | Sequence[str] | None = None) -> FileList:
    """The files holding the rows of every succeeded feed import (one kind, some or all): batch files
    and merged ones. Read them with `evidence_read_sql` or `parquet_list_sql`, which read a
    merged file that also holds other batches' rows for these batches' rows only."""
    return evidence_store().files(batches=live_manifests(kind))


def evidence_read_sql(paths: Sequence[Path]) -> str:
    """The store's rows of the given files (`zige.engine.store.STORE_COLUMNS` + feed_kind, month);
    of a `FileList`, only its batches' rows."""
    return evidence_store().read_sql(paths)


def parquet_list_sql(paths: Sequence[Path]) -> str:
    """A subquery over the given evidence files with the columns of the old one-file-per-batch
    layout as well: `id_number` (from the key), `name` (the name without spaces), `feed_kind`."""
    return (
        f"(SELECT *, {id_number_from_key_sql('id_key')} AS id_number, name_key AS name "
        f"FROM ({evidence_read_sql(paths)}))"
    )


def evidence_batch_files(batches: Iterable[Any]) -> FileList:
    """The files holding the rows of the given succeeded `ImportBatch` rows (their own files, or
    the merged files that hold them: read with `evidence_read_sql`)."""
    return evidence_store().files(batches=batch_manifests(batches))


def _rename(source: Path, target: Path) -> None:
    source.replace(target)


def discard(path: Path | BatchWrite | None) -> None:
    """Remove a file, or what a failed batch wrote, that nothing refers to; never raises."""
    if isinstance(path, BatchWrite):
        evidence_store().discard(path)
    elif path is not None:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def batch_written(evidence_path: str) -> BatchWrite:
    """What a batch put in the evidence store — its manifest and its own files (those its
    manifest lists) — for `discard`, when the transaction that was to mark it succeeded rolled
    back: an import run inside a caller's transaction
    (`zige.verification.services.submission_review`). Only for a batch that never committed: a
    committed batch's files may be read, or merged, at any time."""
    estore = evidence_store()
    manifest = estore.manifest(evidence_path)
    return BatchWrite(
        manifest=manifest, paths=[*(estore.root / f for f in manifest.files), estore.root / manifest.path]
    )


def upload_discard(stored_path: str) -> None:
    """Remove an uploaded file that no import batch refers to (its batch rolled back with the
    caller's transaction); one a batch refers to stays. Never raises."""
    from zige.feeds.models import ImportBatch

    if not stored_path:
        return
    try:
        referred = ImportBatch.objects.filter(stored_path=stored_path).exists()
    except DatabaseError:  # cannot tell: keep it
        return
    if not referred:
        discard(upload_path(stored_path))


# ---------------------------------------------------------------------------------------------
# Run copies


def run_dir(run_id: int) -> Path:
    return Path(settings.RUNS_DIR) / str(run_id)


def run_decisions_file(run_id: int) -> Path:
    return run_dir(run_id) / "decisions.parquet"


def run_write_decisions(con: duckdb.DuckDBPyConnection, *, query: str, run_id: int) -> Path:
    """Write a run's decisions (the rows of `query`) as Parquet, via a temporary name."""
    directory = run_dir(run_id)
    if directory.exists():
        shutil.rmtree(directory)  # left by an earlier attempt of the same run that failed
    directory.mkdir(parents=True)
    target = run_decisions_file(run_id)
    temp = target.with_name(f".{target.name}.tmp")
    try:
        con.execute(
            f"COPY ({query}) TO {quote(str(temp))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)"
        )
        _rename(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


# ---------------------------------------------------------------------------------------------
# Bulk reads and writes on the relational store


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


# Values per IN (...) list of one statement: SQLite limits a statement's parameters.
IN_LIST_SIZE = 5_000


def in_lists(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`values` in slices short enough for one `field__in=` filter each."""
    for start in range(0, len(values), IN_LIST_SIZE):
        yield values[start : start + IN_LIST_SIZE]


# PostgreSQL: a bulk write of at least this many rows refreshes the table's planner statistics.
ANALYZE_AFTER_ROWS = 10_000


def bulk_insert(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert many rows into `table` in the current transaction; returns the number written.

    Values are Python values (str, int, Decimal, date, bool, None). Datetimes must be passed
    through `db_datetime` first.

    On PostgreSQL, `ANALYZE table` follows a write of `ANALYZE_AFTER_ROWS` rows or more (in the
    same transaction, which sees its own rows): the planner must not plan the pages' queries on
    a 500,000-person roll with the statistics of an empty table until autovacuum comes by (if it
    is on at all); without them a search by 个人编号 scanned the whole roll (0.13 s instead of
    0.5 ms). SQLite keeps no statistics; its queries are written for its fixed rules.
    """
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    count = 0
    connection.ensure_connection()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the driver's cursor, in Django's transaction
        if connection.vendor == "postgresql":
            with raw.copy(f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            if count >= ANALYZE_AFTER_ROWS:
                raw.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        else:
            # A larger page cache for this connection: index inserts of 500,000 rows otherwise
            # spend most of their time re-reading B-tree pages (64 MB, released on close).
            raw.execute("PRAGMA cache_size = -65536")
            marks = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES ({marks})"
            for chunk in _chunks(rows, 10_000):
                raw.executemany(statement, chunk)
                count += len(chunk)
    return count


def duck_rows(con: duckdb.DuckDBPyConnection, query: str, size: int = 50_000) -> Iterator[tuple[Any, ...]]:
    """The rows of a DuckDB query as tuples, fetched in chunks."""
    result = con.execute(query)
    while batch := result.fetchmany(size):
        yield from batch


def db_datetime(value: Any) -> Any:
    """A datetime as the database driver expects it for a DateTimeField (naive UTC on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def fetch_arrow(query: str, columns: Sequence[str]) -> pa.Table:
    """The rows of a database query as an Arrow table of text columns (NULL stays NULL).

    On PostgreSQL through COPY … TO STDOUT as CSV (fast for hundreds of thousands of rows);
    on SQLite through the cursor. Every selected column must be text already (cast in `query`),
    and `query` takes no parameters (it is built from trusted parts only).
    """
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        import pyarrow.csv as pa_csv

        with connection.cursor() as cursor:
            raw = cursor.cursor
            buffer = bytearray()
            with raw.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER false)") as copy:
                for data in copy:
                    buffer += data
        if not buffer:
            return pa.table({c: pa.array([], pa.string()) for c in columns})
        return pa_csv.read_csv(
            pa.BufferReader(bytes(buffer)),
            read_options=pa_csv.ReadOptions(column_names=list(columns)),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(query)
        rows = raw.fetchall()
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pa.table({c: pa.array(list(v), pa.string()) for c, v in zip(columns, data, strict=True)})
