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
PostgreSQL, `executemany` on SQLite. Never a per-row ORM save for 500,000 rows. A province's
rows between DuckDB and a SQLite file go through Arrow in C instead (`fetch_arrow`,
`staged_rows`: ADBC's SQLite driver on scratch files attached to Django's connection) whenever
no transaction is open: Python's `sqlite3` builds a Python object for every value, 26 million of
them for a run's roll. On PostgreSQL a run's decisions go from DuckDB's CSV writer to `COPY`
unparsed (`staged_rows`), for the same reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Field, Model

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


# ---------------------------------------------------------------------------------------------
# SQLite through Arrow: scratch files between Django's connection and ADBC's driver
#
# ADBC's SQLite driver carries its own copy of the SQLite library. Two copies of SQLite must never
# open the same database file in one process: POSIX locks belong to the process, so each copy
# takes the other's connections for its own, and closing one copy's file releases the other's
# locks ("How To Corrupt An SQLite Database File", §2.2.1). Measured here: a run whose roll ADBC
# read straight from the database died of SIGBUS when the driver reset the WAL index that
# Python's sqlite3 had mapped. So ADBC only ever opens a scratch file of its own, created empty
# and attached to Django's connection when ADBC is done with it (`staged_rows`), or written by
# Django's connection and detached before ADBC opens it (`fetch_arrow`): never the same file at
# the same time.


def _sqlite_file_outside_transaction() -> Path | None:
    """The SQLite database file, when a scratch file can be attached to this connection: no
    transaction is open (SQLite refuses `ATTACH` inside one) and the database is a file. None on
    PostgreSQL, for an in-memory database (the tests'), inside `transaction.atomic`, or when
    `ZIGE_SQLITE_ARROW` is off — the callers then use this connection's cursor."""
    if connection.vendor != "sqlite" or not settings.ZIGE_SQLITE_ARROW:
        return None
    connection.ensure_connection()
    if connection.in_atomic_block or not connection.get_autocommit():
        return None
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or "mode=memory" in name:  # Django's in-memory forms (the tests')
        return None
    return Path(name)


@contextlib.contextmanager
def _scratch_file(database: Path) -> Iterator[Path]:
    """An empty scratch file beside the database (SQLite takes an empty file for an empty
    database), mode 0600 (its rows are personal data, like the database's), removed on leaving
    with whatever SQLite left beside it."""
    handle, name = tempfile.mkstemp(prefix=".scratch-", suffix=".sqlite3", dir=database.parent)
    os.close(handle)
    scratch = Path(name)
    try:
        yield scratch
    finally:
        for path in (scratch, *(Path(f"{scratch}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def _scratch_dir() -> Iterator[Path]:
    """An empty scratch directory in the data directory, mode 0700 (the rows it will hold are
    personal data), removed with its files on leaving."""
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=settings.DATA_DIR))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _attached(scratch: Path, schema: str) -> Iterator[Any]:
    """`scratch` attached to Django's connection as `schema` (not journalled: it is thrown away);
    yields the driver's cursor."""
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(f"ATTACH DATABASE ? AS {schema}", [str(scratch)])
        try:
            raw.execute(f"PRAGMA {schema}.journal_mode = OFF")
            raw.execute(f"PRAGMA {schema}.synchronous = OFF")
            yield raw
        finally:
            raw.execute(f"DETACH DATABASE {schema}")


def _adbc_sqlite(path: Path) -> Any:
    """ADBC's connection to a scratch file (never to the database: see above)."""
    import adbc_driver_sqlite.dbapi

    con = adbc_driver_sqlite.dbapi.connect(str(path), autocommit=True)
    with con.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode = OFF")
        cursor.execute("PRAGMA synchronous = OFF")
    return con


# ADBC's SQLite driver types a column by its first batch of rows (a column NULL in all of them
# would be typed INT64 and refuse text later): one batch holds the whole result.
_ONE_BATCH = str(1 << 30)


def _fetch_arrow_scratch(database: Path, query: str, columns: Sequence[str]) -> pa.Table:
    """`query`'s rows copied by SQLite itself into a scratch file, then read from it by ADBC."""
    with _scratch_file(database) as scratch:
        with _attached(scratch, "zige_scratch") as raw:
            raw.execute(f"CREATE TABLE zige_scratch.result AS {query}")
        reader = _adbc_sqlite(scratch)
        try:
            with reader.cursor() as cursor:
                cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ONE_BATCH})
                cursor.execute("SELECT * FROM result ORDER BY rowid")
                table = cursor.fetch_arrow_table()
        finally:
            reader.close()
    if table.num_columns != len(columns):
        raise ValueError(f"the query gave {table.num_columns} columns, not {len(columns)}")
    # A column NULL in every row comes typed INT64: text like the others (all NULL).
    return pa.table({c: table.column(i).cast(pa.string()) for i, c in enumerate(columns)})


class StagedRows:
    """DuckDB queries' rows ready to be inserted into tables of the relational store
    (`staged_rows`): `insert` puts one query's rows into a table, in the caller's transaction."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        queries: Mapping[str, str],
        schema: str | None,
        csv: Mapping[str, tuple[Path, int]] | None = None,
    ) -> None:
        self._con = con
        self._queries = dict(queries)
        self._schema = schema
        self._csv = dict(csv or {})

    def insert_partition(self, table: str, columns: Sequence[str], name: str, *, key: str, value: int) -> int:
        """`insert` into `table`'s partition for `value` (PostgreSQL, a table partitioned by
        list of column `key`, its ids from an identity column `id`). When that partition does
        not exist yet, the rows go into a new table of their own, which is then attached as it:
        PostgreSQL builds each index in one sort and checks each foreign key with one join,
        instead of both row by row (2 million decisions: 22 s instead of 66 s,
        docs/performance.md). Elsewhere, and into a partition that exists, `insert`."""
        part = partition_name(table, value)
        if not _partitioned(table) or _exists(part):
            return self.insert(table, columns, name)
        quote_name = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            # The rows' ids from the table's own sequence (a partition has no identity of its own);
            # the CHECK lets ATTACH see that every row belongs, without reading them again.
            cursor.execute(
                f"CREATE TABLE {quote_name(part)} (LIKE {quote_name(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
            cursor.execute(
                f"ALTER TABLE {quote_name(part)} ALTER COLUMN id SET DEFAULT nextval(%s::regclass)",
                [sequence],
            )
            cursor.execute(
                f"ALTER TABLE {quote_name(part)} ADD CONSTRAINT {quote_name(part + '_only')} CHECK ({quote_name(key)} = {int(value)})"
            )
        count = self.insert(part, columns, name)
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {quote_name(table)} ATTACH PARTITION {quote_name(part)} FOR VALUES IN ({int(value)})"
            )
        return count

    def insert(self, table: str, columns: Sequence[str], name: str) -> int:
        """Insert the rows of the query named `name` into `table` (`columns`, in the query's
        column order); returns how many."""
        if name in self._csv:
            path, rows = self._csv[name]
            return _copy_csv(table, columns, path, rows)
        if self._schema is None:
            return bulk_insert(table, columns, duck_rows(self._con, self._queries[name]))
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        staged = ", ".join(f"c{i}" for i in range(len(columns)))
        with connection.cursor() as cursor:
            raw = cursor.cursor
            raw.execute("PRAGMA cache_size = -65536")  # as in `bulk_insert`: the indexes' pages
            raw.execute(
                f"INSERT INTO {connection.ops.quote_name(table)} ({names}) "
                f"SELECT {staged} FROM {self._schema}.{connection.ops.quote_name(name)} ORDER BY rowid"
            )
            return int(raw.rowcount)


# The Arrow types a staged column may have, as Python's sqlite3 module and Django store them:
# integers, text, booleans as 0/1, dates as YYYY-MM-DD text, decimals as their text (`_stageable`).
def _stageable(table: pa.Table) -> pa.Table:
    columns = []
    for i, column in enumerate(table.columns):
        kind = column.type
        if pa.types.is_decimal(kind):
            column = column.cast(pa.string())  # Django passes str(Decimal): the same digits
        elif not (
            pa.types.is_integer(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_date32(kind)
            or pa.types.is_null(kind)
        ):
            # A timestamp, say, would be written in another text form than Django's.
            raise TypeError(f"column {i} ({table.column_names[i]}) is {kind}: not staged for SQLite")
        columns.append(column)
    return pa.table(columns, names=[f"c{i}" for i in range(len(columns))])


# DuckDB's CSV writer prints these types as PostgreSQL's CSV `COPY` reads them back into the
# columns Django made for them: integers, text (the empty string quoted, NULL an unquoted empty
# field), booleans as true/false, dates as YYYY-MM-DD and decimals as their digits. Others (a
# timestamp's time zone, a double's rounding) are refused rather than trusted (`_csv_checked`).
_CSV_TYPES = frozenset(
    {"null", "boolean", "varchar", "date", "decimal", "tinyint", "smallint", "integer", "bigint",
     "utinyint", "usmallint", "uinteger"}
)  # fmt: skip


def _csv_checked(con: duckdb.DuckDBPyConnection, query: str) -> str:
    relation = con.sql(query)
    for column, kind in zip(relation.columns, relation.types, strict=True):
        if kind.id not in _CSV_TYPES:
            raise TypeError(f"column {column} is {kind}: not staged as CSV for PostgreSQL")
    return query


def _copy_csv(table: str, columns: Sequence[str], path: Path, rows: int) -> int:
    """PostgreSQL: `COPY table FROM STDIN` of a CSV file DuckDB wrote (`staged_rows`), sent in
    1 MB blocks; the count PostgreSQL reports must be the `rows` DuckDB wrote."""
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    quoted = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {quoted} ({names}) FROM STDIN (FORMAT csv)") as copy, path.open("rb") as source:
            while block := source.read(_CHUNK):
                copy.write(block)
        copied = int(raw.rowcount)
        if copied != rows:
            raise DatabaseError(f"COPY {table}: PostgreSQL took {copied:,} rows of the {rows:,} staged")
        if copied >= ANALYZE_AFTER_ROWS:
            raw.execute(f"ANALYZE {quoted}")  # as in `bulk_insert`
    return copied


def partition_name(table: str, value: int) -> str:
    """The name of `table`'s partition for `value` (a run's decisions: `certification_decision_r12`)."""
    return f"{table}_r{int(value)}"


def partition_ensure(table: str, value: int) -> None:
    """`table`'s partition for `value`, created empty when missing, for rows inserted through
    the table one by one (PostgreSQL, a table partitioned by list; nothing elsewhere). A run's
    decisions do not need it (`StagedRows.insert_partition` makes their partition)."""
    if not _partitioned(table) or _exists(part := partition_name(table, value)):
        return
    quote_name = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {quote_name(part)} PARTITION OF {quote_name(table)} FOR VALUES IN ({int(value)})"
        )


def partition_drop(table: str, value: int) -> int | None:
    """Drop `table`'s partition for `value` with its rows, in a transaction of its own; returns
    how many rows it held. None when there is none to drop (SQLite, a table not partitioned, no
    such partition) or when the table stays busy: dropping a partition locks the whole table for
    a moment, so it waits at most 5 s for queries under way and then leaves it (the caller
    deletes the rows otherwise). A pruned run's decisions go so: at once, their space back at
    once, and no empty partition left for queries over every run (a person's history) to look in."""
    part = partition_name(table, value)
    if not _partitioned(table) or not _exists(part):
        return None
    quote_name = connection.ops.quote_name
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '5s'")
            cursor.execute(f"LOCK TABLE {quote_name(table)} IN ACCESS EXCLUSIVE MODE")
            cursor.execute(f"SELECT count(*) FROM {quote_name(part)}")
            (rows,) = cursor.fetchone()
            cursor.execute(f"DROP TABLE {quote_name(part)}")
    except OperationalError:
        return None
    return int(rows)


def _partitioned(table: str) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table])
        return cursor.fetchone() is not None


def _exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return bool(cursor.fetchone()[0])


@contextlib.contextmanager
def staged_rows(con: duckdb.DuckDBPyConnection, queries: Mapping[str, str]) -> Iterator[StagedRows]:
    """The rows of DuckDB `queries` (name → query), for `StagedRows.insert` inside the
    transaction that follows. Enter it *before* that transaction.

    On a SQLite file with no transaction open, each query's rows go through Arrow into a
    scratch SQLite file beside the database (ADBC's driver: no Python object per value),
    attached to this connection, so that each `insert` is one `INSERT … SELECT` inside SQLite:
    2 million decisions in about a third of `executemany`'s time (docs/performance.md). The
    file is detached and removed on leaving, whatever happened. On PostgreSQL, DuckDB writes
    each query's rows as a CSV file in the data directory and `insert` sends it to
    `COPY … FROM STDIN` as it is: no Python object per row or value either (`ZIGE_PG_CSV_COPY=0`
    turns this off). Elsewhere (an open SQLite transaction, an in-memory database) `insert` is
    `bulk_insert` over the query's rows.
    """
    if connection.vendor == "postgresql" and settings.ZIGE_PG_CSV_COPY:
        with _scratch_dir() as scratch:
            written = {}
            for name, query in queries.items():
                path = scratch / f"{name}.csv"
                (rows,) = con.execute(
                    f"COPY ({_csv_checked(con, query)}) TO {quote(str(path))} (FORMAT csv, HEADER false)"
                ).fetchone() or (0,)
                written[name] = (path, int(rows))
            yield StagedRows(con, queries, None, csv=written)
        return
    database = _sqlite_file_outside_transaction()
    if database is None:
        yield StagedRows(con, queries, None)
        return
    with _scratch_file(database) as scratch:
        writer = _adbc_sqlite(scratch)
        try:
            with writer.cursor() as cursor:
                for name, query in queries.items():
                    cursor.adbc_ingest(name, _stageable(con.sql(query).to_arrow_table()), mode="create")
        finally:
            writer.close()
        with _attached(scratch, "zige_staged"):
            yield StagedRows(con, queries, "zige_staged")


def bulk_update(model: type[Model], objects: Sequence[Model], fields: Sequence[str]) -> int:
    """Save `fields` of many loaded `objects` of `model` in the current transaction; returns how
    many. On SQLite one `UPDATE … WHERE pk = ?` each through the driver's `executemany`; on
    PostgreSQL one `UPDATE … FROM unnest(…)` per 10,000, each column's values one typed array.

    What Django's `bulk_update` stores (each value through its field's `get_db_prep_save`), without
    its `CASE WHEN pk = … THEN …` per object and field: for the 67,735 proposals a month's first
    run revises, that built 2.4 million expressions in Python (docs/performance.md)."""
    if not objects:
        return 0
    meta = model._meta
    columns: list[Field[Any, Any]] = []
    for name in fields:
        field = meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete:
            raise ValueError(f"{meta.label}.{name} is not a column")
        columns.append(field)
    quote_name = connection.ops.quote_name
    assignments = ", ".join(f"{quote_name(field.column)} = %s" for field in columns)
    statement = (
        f"UPDATE {quote_name(meta.db_table)} SET {assignments} WHERE {quote_name(meta.pk.column)} = %s"
    )
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns] + [obj.pk]
        for obj in objects
    ]
    if connection.vendor == "postgresql":
        # One statement per 10,000 rows, the values as one typed array per column: PostgreSQL
        # answered each `UPDATE` of `executemany` in turn (67,735 revised proposals: 13 s).
        types = [field.db_type(connection) for field in columns] + [meta.pk.db_type(connection)]
        names = [f"c{i}" for i in range(len(columns))] + ["pk"]
        assignments = ", ".join(f"{quote_name(field.column)} = v.c{i}" for i, field in enumerate(columns))
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        statement = (
            f"UPDATE {quote_name(meta.db_table)} AS t SET {assignments} FROM unnest({arrays}) "
            f"AS v({', '.join(names)}) WHERE t.{quote_name(meta.pk.column)} = v.pk"
        )
        with connection.cursor() as cursor:
            for chunk in _chunks(rows, 10_000):
                cursor.execute(statement, [list(values) for values in zip(*chunk, strict=True)])
        return len(rows)
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, 10_000):
            cursor.executemany(statement, chunk)
    return len(rows)


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

    On PostgreSQL through COPY … TO STDOUT as CSV (fast for hundreds of thousands of rows); on
    a SQLite file with no transaction open through a scratch file that SQLite fills and ADBC's
    driver reads into Arrow (C all the way: 2 million recipients' roll in about a third of the
    cursor's time, docs/performance.md); otherwise through this connection's cursor. Every
    selected column must be text already (cast in `query`), and `query` takes no parameters (it
    is built from trusted parts only).
    """
    connection.ensure_connection()
    if (database := _sqlite_file_outside_transaction()) is not None:
        return _fetch_arrow_scratch(database, query, columns)
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
