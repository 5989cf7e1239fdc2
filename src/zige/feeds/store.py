"""What the system keeps outside its relational tables, and bulk writes into them.

Files (all under `ZIGE_DATA_DIR`, none served directly):

- uploads: every imported file, named by its content hash (`uploads/ab/ab12….csv`);
- the evidence store: the used rows of each succeeded feed import as one Parquet file
  (`evidence/<kind>/<batch_id>-<hash8>.parquet`), sorted by ID number so that DuckDB reads only
  the row groups of the IDs asked for (small ones, `EVIDENCE_ROW_GROUP`: a person page reads one
  from every file);
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
from django.db import connection

from zige.engine.sql import quote

# The columns of an evidence file: `staged_feed` without the reject columns, with the batch.
EVIDENCE_COLUMNS = (
    "batch_id", "row_no", "feed_kind", "id_number", "name", "name_key", "event_date", "end_date", "sub",
    "detail",
)  # fmt: skip
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


def evidence_file(evidence_path: str) -> Path:
    """The Parquet file of a batch (`ImportBatch.evidence_path`)."""
    return Path(settings.EVIDENCE_DIR) / evidence_path


def evidence_files(kind: str | None = None) -> list[tuple[int, Path]]:
    """(batch id, Parquet file) of every succeeded feed import, oldest first; one kind or all."""
    from zige.feeds.models import ImportBatch, ImportStatus

    batches = ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED).exclude(evidence_path="")
    if kind is not None:
        batches = batches.filter(kind=kind)
    return [
        (pk, evidence_file(path)) for pk, path in batches.order_by("pk").values_list("pk", "evidence_path")
    ]


def parquet_list_sql(paths: Sequence[Path]) -> str:
    """`read_parquet([...])` over the given files (callers make sure the list is not empty)."""
    return "read_parquet([" + ", ".join(quote(str(p)) for p in paths) + "])"


def _rename(source: Path, target: Path) -> None:
    source.replace(target)


def evidence_write(
    con: duckdb.DuckDBPyConnection, *, query: str, kind: str, batch_id: int, sha256: str
) -> str:
    """Write the rows of `query` (EVIDENCE_COLUMNS) as the batch's Parquet file; return its path.

    Written to a temporary name and renamed into place, sorted by ID number and date.
    """
    relative = f"{kind}/{batch_id}-{sha256[:8]}.parquet"
    target = Path(settings.EVIDENCE_DIR) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    columns = ", ".join(EVIDENCE_COLUMNS)
    try:
        con.execute(
            f"COPY (SELECT {columns} FROM ({query}) ORDER BY id_number, event_date, row_no) "
            f"TO {quote(str(temp))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {EVIDENCE_ROW_GROUP})"
        )
        _rename(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return relative


def discard(path: Path | None) -> None:
    """Remove a file nothing refers to (after a failure); never raises."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


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
