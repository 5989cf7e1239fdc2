"""The evidence store: every imported feed row, normalised once, as partitioned Parquet (issue 6).

Layout under the store's root (hive partitions, read with `hive_partitioning`):

    kind=<feed kind>/month=<YYYY-MM of event_date, or none>/b<batch_id>-<tag>.parquet
    _manifest/b<batch_id>-<tag>.json

- One import batch writes its own new files into the partitions its rows fall in, and nothing
  else: importing a day's file touches only that file's rows. (The native ingest writes a
  month of many rows as pieces `b<batch_id>-<tag>-1.parquet`, `-2`, …: consecutive rows, each
  piece sorted, so that one month is written on every core.) Each file is sorted by `id_key`,
  `event_date` (then row), in small row groups, so a lookup of one person reads one row group
  per file and a join by key reads the files in order.
- Columns: `id_key BIGINT NOT NULL` (the ID's first 17 digits as one integer, birth date and
  sequence before the region: `zige.ids.store_key`; the 18th, the check character, follows
  from them: `sql.id_number_from_key_sql`),
  `event_date DATE`, `end_date DATE`, `sub VARCHAR`, `detail VARCHAR`, `name_key VARCHAR`
  (the name without spaces, compared for duplicates), `batch_id BIGINT`, `row_no BIGINT` (the
  row of the file as a spreadsheet shows it). `kind` and `month` come from the path.
- Atomicity: data files are written under hidden temporary names and renamed into place, then
  the batch's manifest (the list of its files) is written the same way. The manifest is the
  commit point of the engine-level store: `scan_sql()` reads only the files of manifests that
  exist, so a crash at any point leaves no half batch. The system of record goes further and
  reads only the manifests of its succeeded `ImportBatch` rows (`batches=`), because its
  commit point is its database transaction.
- Duplicates: the same record (kind, key, event date, end date, sub, detail and name without
  spaces: docs/rules.md §4) is kept once: within the batch (the first row of the file) and
  against the rows already stored for the same kind in the months the batch touches (an
  anti-join over those partitions only).
- Compaction (小文件合并, `EvidenceStore.compact`): daily imports leave many small files per
  partition, and a lookup reads one row group in every file. Compaction merges a kind/month
  partition's files into one file `kind=<kind>/month=<month>/c<n>-<tag>.parquet`, sorted by
  `id_key`, `event_date`, `batch_id`, `row_no` (each batch's rows keep their order), with every
  column and the ingest's writer settings, then writes its record `_compact/c<n>.json` (which
  batches' files it holds: the commit point). Batch manifests are never rewritten: readers
  resolve a batch's files through the records (`resolve`), reading a merged file in place of
  the files it holds, and only for the batches asked for (`FileList.partial`). The replaced
  files stay for a grace period (`DEFAULT_GRACE`), so a reader that listed them before the
  commit still finds them; a later compaction removes them. One compaction at a time (a lock
  file); imports need no lock against it (they only add files, and read either side of a
  commit: the same rows).

Two ways in: `ingest_csv` takes a UTF-8 CSV: for kinds without a result column through the native
scan (`zige.engine.native`, C: the rows it is sure of, then the others through the same SQL, then
a bucketed sort), else with DuckDB's parallel `read_csv`, normalised in the same pass
(`sql.stage_feed_keyed_sql`: no Python per row); `ingest_table` takes a raw table from
`zige.engine.readers` (GBK/UTF-16 CSV, Excel, Parquet, title rows, ragged rows). Both CSV paths
give the same store (tests/unit/test_native_ingest.py).
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import fcntl
import itertools
import json
import mmap
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zige.engine import native, readers, sql, store_cache
from zige.engine.kinds import FeedKind, fields_as_written
from zige.ids import EARLIEST_BIRTH

# Rows per Parquet row group. A person page looks one ID up in every file and decodes the key
# column of each row group whose min/max covers it: small groups keep that lookup fast (see
# zige.feeds.store), and cost nothing measurable to the scans that read whole files.
ROW_GROUP = 16_384
# Rows of a month the native ingest writes as one file at least (`EvidenceStore.piece_rows`).
PIECE_ROWS = 1_000_000
MANIFEST_DIR = "_manifest"
# Compaction records (`Compaction`), one per merged file, and the lock of compaction and upgrade.
COMPACT_DIR = "_compact"
# The lock files of the imports, one per kind (`EvidenceStore.import_lock`).
LOCK_DIR = "_locks"
# The import locks this thread holds (`EvidenceStore.import_lock` is re-entrant within a thread).
_HELD_IMPORT_LOCKS = threading.local()
# How long the files a compaction replaced stay after its commit, for readers that listed them
# before: longer than any read of the store (a province's run reads it for minutes).
DEFAULT_GRACE = timedelta(hours=1)
# The order of a merged file: the store's order (key, date), then each batch's rows in turn.
MERGE_ORDER = ("id_key", "event_date", "batch_id", "row_no")
# The store key's layout, recorded in every manifest: 2 = birth date first (`zige.ids.store_key`).
# A store written with another layout is refused (its keys would match no recipient) until
# `EvidenceStore.upgrade_key_layout` (`zige store upgrade`) rewrites it.
KEY_LAYOUT = 2
NO_MONTH = "none"
STORE_COLUMNS = ("id_key", "event_date", "end_date", "sub", "detail", "name_key", "batch_id", "row_no")
# Columns compared for duplicates (kind is the partition).
RECORD_KEY = ("id_key", "event_date", "end_date", "sub", "detail", "name_key")
# The native path's Parquet settings (measured on 3.3M rail rows: 38 % less CPU than pyarrow's
# defaults, 24 % smaller files): dictionaries where values repeat (a name, the batch, the dates: a
# month file holds at most 31 days), min/max only where a reader prunes by them (the person page
# by key; the month is the partition).
_DICTIONARY_COLUMNS = ("name_key", "batch_id", "sub", "event_date", "end_date")
_STATISTICS_COLUMNS = ("id_key", "event_date")
# Per column (2026-11-30, docs/performance.md "The store's Parquet encodings"): the sorted key and
# the row number delta-packed and not compressed (a few bits a row; decoding them is what a
# certification's scan does most, and zstd on them cost more to write and to read than it saved),
# the detail text zstd level 1.
_DELTA_COLUMNS = ("id_key", "row_no")
_ZSTD_COLUMNS = ("detail",)
_PARQUET_OPTIONS: dict[str, object] = {
    "compression": {c: "zstd" if c in _ZSTD_COLUMNS else "none" for c in STORE_COLUMNS},
    "compression_level": dict.fromkeys(_ZSTD_COLUMNS, 1), "store_schema": False,
    "use_dictionary": list(_DICTIONARY_COLUMNS),
    "write_statistics": list(_STATISTICS_COLUMNS),
    "column_encoding": dict.fromkeys(_DELTA_COLUMNS, "DELTA_BINARY_PACKED"),
}  # fmt: skip
# An import's own files (the native ingest) hold the detail text uncompressed: zstd on it took
# 0.5 of a 10 M-row import's 4.4 CPU-s (docs/performance.md, "The ingest's line split and an
# import's detail text"). The weekly compaction (`compact`, `notifications.jobs`) rewrites a
# partition's import files into one file in `_PARQUET_OPTIONS` (detail zstd), as a log-structured
# store writes its newest level fast and compresses the older ones. Only the detail differs: no
# certification reads it, and its scans decode the same encodings either way.
_IMPORT_PARQUET_OPTIONS: dict[str, object] = {
    **{k: v for k, v in _PARQUET_OPTIONS.items() if k != "compression_level"}, "compression": "none",
}  # fmt: skip
# The columns as every reader sees them (pyarrow's and DuckDB's writers give the same Parquet types).
_STORE_SCHEMA = pa.schema(
    [("id_key", pa.int64()), ("event_date", pa.date32()), ("end_date", pa.date32()), ("sub", pa.string()),
     ("detail", pa.string()), ("name_key", pa.string()), ("batch_id", pa.int64()), ("row_no", pa.int64())]
)  # fmt: skip
_NATIVE_REJECTS = pa.schema([("row_no", pa.int64()), ("code", pa.uint8()), ("value", pa.large_string())])
_EMPTY_SCAN = (
    "SELECT CAST(NULL AS BIGINT) AS id_key, CAST(NULL AS DATE) AS event_date, CAST(NULL AS DATE) AS end_date, "
    "CAST(NULL AS VARCHAR) AS sub, CAST(NULL AS VARCHAR) AS detail, CAST(NULL AS VARCHAR) AS name_key, "
    "CAST(NULL AS BIGINT) AS batch_id, CAST(NULL AS BIGINT) AS row_no, CAST(NULL AS VARCHAR) AS feed_kind, "
    "CAST(NULL AS VARCHAR) AS month WHERE false"
)
# Every Unicode space and the zero-width no-break space: a cell of only these is blank (as in
# zige.engine.readers).
_BLANK = readers._BLANK_CHARS

Rename = Callable[[Path, Path], None]


def _rename(source: Path, target: Path) -> None:
    source.replace(target)


@dataclass(frozen=True)
class BatchManifest:
    """One committed batch: its kind and its files (relative to the store root)."""

    batch_id: int
    kind: str
    tag: str
    files: tuple[str, ...]
    rows: int
    key_layout: int = KEY_LAYOUT

    @property
    def name(self) -> str:
        return f"b{self.batch_id}-{self.tag}"

    @property
    def path(self) -> str:
        """The manifest's path relative to the store root."""
        return f"{MANIFEST_DIR}/{self.name}.json"

    def to_json(self) -> str:
        return json.dumps(
            {"batch_id": self.batch_id, "kind": self.kind, "tag": self.tag, "files": list(self.files),
             "rows": self.rows, "key_layout": self.key_layout},
            ensure_ascii=False, indent=1,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> BatchManifest:
        data = json.loads(text)
        return cls(
            int(data["batch_id"]),
            str(data["kind"]),
            str(data["tag"]),
            tuple(data["files"]),
            int(data["rows"]),
            int(data.get("key_layout", 1)),  # manifests before the layout was recorded: 1
        )


@dataclass(frozen=True)
class Compaction:
    """One merged file of a kind/month partition and what it holds: the record, written last,
    is the compaction's commit point. Of a partition's records the highest `number` is live;
    it holds every row of the lower ones."""

    number: int
    kind: str
    month: str
    file: str  # the merged file, relative to the store root
    sources: tuple[tuple[int, str], ...]  # (batch id, the batch's own file) of every row in it
    replaces: tuple[str, ...]  # the files this merge read: batch files, the previous merged file
    rows: int
    committed_at: str  # ISO 8601 with its offset: the replaced files go `DEFAULT_GRACE` after it
    key_layout: int = KEY_LAYOUT

    @property
    def path(self) -> str:
        """The record's path relative to the store root."""
        return f"{COMPACT_DIR}/c{self.number}.json"

    @property
    def batch_ids(self) -> frozenset[int]:
        return frozenset(b for b, _ in self.sources)

    def committed(self) -> datetime:
        return datetime.fromisoformat(self.committed_at)

    def to_json(self) -> str:
        return json.dumps(
            {"number": self.number, "kind": self.kind, "month": self.month, "file": self.file,
             "sources": [list(x) for x in self.sources], "replaces": list(self.replaces), "rows": self.rows,
             "committed_at": self.committed_at, "key_layout": self.key_layout},
            ensure_ascii=False, indent=1,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Compaction:
        data = json.loads(text)
        return cls(
            int(data["number"]), str(data["kind"]), str(data["month"]), str(data["file"]),
            tuple((int(b), str(f)) for b, f in data["sources"]), tuple(data["replaces"]), int(data["rows"]),
            str(data["committed_at"]), int(data["key_layout"]),
        )  # fmt: skip


# This process's parsed manifests and compaction records, checked against each file's identity on
# every read (`zige.engine.store_cache`): a person page lists thousands of imports' manifests per
# request, and reading and parsing them cost more than its query (docs/performance.md).
_MANIFESTS = store_cache.ParsedFiles(BatchManifest.from_json)
_COMPACTIONS = store_cache.ParsedFiles(Compaction.from_json)
# Per store root: the live records (the objects `_COMPACTIONS` gave) and which holds each batch
# file (`EvidenceStore._holder`).
_HOLDERS: dict[str, tuple[tuple[Compaction, ...], dict[str, Compaction]]] = {}


class FileList(list[Path]):
    """Store files to read: a list of paths, and the batches they were resolved for.

    `partial` are merged files that also hold rows of batches not asked for: they are read for
    the rows of `batch_ids` only. `EvidenceStore.read_sql` (and everything reading through it)
    applies that filter; a plain list made from this one would not."""

    def __init__(
        self, paths: Iterable[Path] = (), *, partial: Iterable[Path] = (), batch_ids: Iterable[int] = ()
    ) -> None:
        super().__init__(paths)
        self.partial = frozenset(partial)
        self.batch_ids = frozenset(batch_ids)

    def existing(self) -> FileList:
        """The files that are on disk (for readers that tolerate a missing one)."""
        return FileList(
            (p for p in self if p.is_file()), partial=(p for p in self.partial if p.is_file()),
            batch_ids=self.batch_ids,
        )  # fmt: skip


@dataclass(frozen=True)
class CompactedPartition:
    """What one partition's merge did (for the operator's report and the audit log)."""

    kind: str
    month: str
    files: int  # the files merged (the previous merged file counts as one)
    batches: int  # batches whose rows the new file holds
    rows: int
    bytes_before: int
    bytes_after: int
    seconds: float
    record: str  # the record's relative path


@dataclass
class CompactionResult:
    partitions: list[CompactedPartition] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # files and records the sweeps removed
    removed_bytes: int = 0


class StoreBusy(Exception):
    """Another compaction or key upgrade holds the store's lock."""


@dataclass
class BatchWrite:
    """What one batch put on disk: the manifest (None until committed), its files and the
    directories it created (all removed by `EvidenceStore.discard` after a failure)."""

    manifest: BatchManifest | None = None
    paths: list[Path] = field(default_factory=list)
    created_dirs: list[Path] = field(default_factory=list)


@dataclass
class IngestResult:
    """Counts of one import (rows_read = rows_used + rows_rejected + duplicate_rows).

    The rejects stay in the connection's table `ingest_rejects` (row_no, field, value, reason),
    in row order; `field` names the column as the file heads it (出行日期（乘车日期）:
    `zige.engine.kinds.fields_as_written`)."""

    batch_id: int
    kind: str
    rows_read: int
    rows_used: int
    rows_rejected: int
    duplicate_rows: int
    blank_rows: int
    header_row: int
    encoding: str
    fast: bool  # read by DuckDB's read_csv (True) or by zige.engine.readers
    write: BatchWrite
    months: list[str]
    native: bool = False  # normalised by the native scan (zige.engine.native)

    @property
    def manifest(self) -> BatchManifest:
        assert self.write.manifest is not None
        return self.write.manifest


def _write_parquet(
    table: pa.Table, path: Path, *, row_group_size: int, options: dict[str, object] = _PARQUET_OPTIONS
) -> None:
    """A store file written by pyarrow (the native ingest: `_IMPORT_PARQUET_OPTIONS`, the key
    upgrade). store_schema=False: plain types for every reader, as DuckDB's COPY writes them;
    dictionaries and statistics only where they pay (docs/performance.md)."""
    pq.write_table(table, path, row_group_size=row_group_size, **options)


def _write_parquet_stream(batches: Iterable[pa.RecordBatch], path: Path, *, row_group_size: int) -> int:
    """`_write_parquet` of a stream of record batches (the compaction's sorted rows): the same
    settings and row groups of exactly `row_group_size` rows (the last one shorter), without
    holding more than a row group in memory. Returns the rows written."""
    written = 0
    pending: list[pa.RecordBatch] = []
    held = 0
    with pq.ParquetWriter(path, _STORE_SCHEMA, **_PARQUET_OPTIONS) as writer:

        def flush(table: pa.Table) -> None:
            writer.write_table(table, row_group_size=row_group_size)

        for batch in batches:
            pending.append(batch.cast(_STORE_SCHEMA))
            held += batch.num_rows
            if held >= row_group_size:
                table = pa.Table.from_batches(pending, _STORE_SCHEMA)
                full = held - held % row_group_size
                flush(table.slice(0, full))
                written += full
                rest = table.slice(full)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            flush(pa.Table.from_batches(pending, _STORE_SCHEMA))
            written += held
    return written


def _remove(path: Path) -> None:
    """Remove a file that nothing lists any more (tests make it fail)."""
    path.unlink(missing_ok=True)


class StoreLayoutError(Exception):
    """The store holds batches written with another key layout (`KEY_LAYOUT`)."""


def check_layout(manifest: BatchManifest) -> None:
    """`StoreLayoutError` unless the batch was written with this version's key layout."""
    if manifest.key_layout != KEY_LAYOUT:
        raise StoreLayoutError(
            f"batch {manifest.name} was written with store key layout {manifest.key_layout}; this "
            f"version reads layout {KEY_LAYOUT}: run `zige store upgrade` (or import the batch's file again)"
        )


class NotFastPath(Exception):
    """The file needs the general readers (encoding, layout, empty lines); nothing was written."""


class EvidenceStore:
    """The store under `root`; see the module docstring. Engine-level: no Django."""

    def __init__(
        self,
        root: Path,
        *,
        row_group_size: int = ROW_GROUP,
        rename: Rename | None = None,
        use_native: bool = True,
        piece_rows: int = PIECE_ROWS,
    ) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        # The native scan for CSV ingests when built (zige.engine.native); False: SQL only.
        self.use_native = use_native
        self.row_group_size = row_group_size
        # The native ingest writes a month of more rows than this, and than its share of the
        # threads' work, as several files (`_pieces`).
        self.piece_rows = piece_rows
        self._rename = rename or _rename
        # (wall, CPU) seconds of the steps of the last ingest or write, for the benchmark.
        self.timings: dict[str, tuple[float, float]] = {}
        # Why the last CSV ingest left the native scan for the SQL path ("" when it did not).
        self.native_note = ""

    @contextlib.contextmanager
    def _step(self, label: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            done = (time.perf_counter() - wall, time.process_time() - cpu)
            before = self.timings.get(label, (0.0, 0.0))
            self.timings[label] = (before[0] + done[0], before[1] + done[1])

    # -- reading -----------------------------------------------------------------------------

    def manifests(self) -> list[BatchManifest]:
        """Every committed batch, by batch id (each manifest parsed once per process: `_MANIFESTS`)."""
        found = _MANIFESTS.every(f"{self._root}/{MANIFEST_DIR}", "b")
        for manifest in found:
            check_layout(manifest)
        return sorted(found, key=lambda m: m.batch_id)

    def manifest(self, path: str) -> BatchManifest:
        """A manifest by its relative path (as `BatchManifest.path` gives it), parsed once per
        process (`_MANIFESTS`: read again when the file at the path is another one)."""
        folder, _, name = path.rpartition("/")  # string operations: 10,000 a request
        directory = folder if folder.startswith("/") else f"{self._root}/{folder}" if folder else self._root
        manifest = _MANIFESTS.get(directory, name)
        check_layout(manifest)
        return manifest

    def compactions(self) -> list[Compaction]:
        """Every committed compaction record, by number (superseded ones too, until swept); each
        parsed once per process (`_COMPACTIONS`)."""
        found = _COMPACTIONS.every(f"{self._root}/{COMPACT_DIR}", "c")
        for record in found:
            if record.key_layout != KEY_LAYOUT:
                raise StoreLayoutError(
                    f"compacted file {record.file} was written with store key layout {record.key_layout}; "
                    f"this version reads layout {KEY_LAYOUT}"
                )
        return sorted(found, key=lambda c: c.number)

    def live_compactions(self) -> dict[tuple[str, str], Compaction]:
        """The live record of each compacted partition (kind, month): its highest number."""
        live: dict[tuple[str, str], Compaction] = {}
        for record in self.compactions():
            live[record.kind, record.month] = record
        return live

    def resolve(self, batches: Iterable[BatchManifest], kinds: Iterable[str] | None = None) -> FileList:
        """The files holding the rows of `batches` (of some kinds): each batch file, or the live
        merged file of its partition in its place (once), marked partial when it also holds
        rows of batches not asked for."""
        wanted = None if kinds is None else set(kinds)
        chosen = [m for m in batches if wanted is None or m.kind in wanted]
        ids = {m.batch_id for m in chosen}
        holder = self._holder(self.live_compactions().values())
        paths: list[Path] = []
        partial: list[Path] = []
        used: set[int] = set()
        for m in chosen:
            for f in m.files:
                record = holder.get(f)
                if record is None:
                    paths.append(self.root / f)
                elif record.number not in used:
                    used.add(record.number)
                    paths.append(self.root / record.file)
                    if not record.batch_ids <= ids:
                        partial.append(self.root / record.file)
        return FileList(paths, partial=partial, batch_ids=ids if partial else ())

    def _holder(self, live: Iterable[Compaction]) -> dict[str, Compaction]:
        """The live record holding each batch file, by the file; built again only when the live
        records are other objects (`_COMPACTIONS` gives the same object while a record's file
        is the same). The dictionary is shared: read it, never change it."""
        records = tuple(sorted(live, key=lambda c: c.number))
        cached = _HOLDERS.get(self._root)
        if (
            cached is not None
            and len(cached[0]) == len(records)
            and all(a is b for a, b in zip(cached[0], records, strict=True))
        ):
            return cached[1]
        holder = {f: c for c in records for _, f in c.sources}
        _HOLDERS[self._root] = (records, holder)  # one assignment: safe between threads
        return holder

    def files(
        self, kinds: Iterable[str] | None = None, *, batches: Iterable[BatchManifest] | None = None
    ) -> FileList:
        """The files holding the rows of the given batches (default: every committed one), of some
        kinds: batch files and merged files (`resolve`)."""
        return self.resolve(self.manifests() if batches is None else batches, kinds)

    def read_sql(self, paths: Sequence[Path]) -> str:
        """The rows of the given data files with `feed_kind` and `month` from their paths (a
        `FileList`'s partial files for the rows of its batches only)."""
        if not paths:
            return _EMPTY_SCAN
        return _read_parquet_sql(
            paths, f"{', '.join(STORE_COLUMNS)}, kind AS feed_kind, month",
            "hive_partitioning = true, hive_types = {'kind': VARCHAR, 'month': VARCHAR}",
        )  # fmt: skip

    def scan_sql(
        self, kinds: Iterable[str] | None = None, *, batches: Iterable[BatchManifest] | None = None
    ) -> str:
        """A SELECT over the live files: the store columns, `feed_kind` and `month`."""
        return self.read_sql(self.files(kinds, batches=batches))

    # -- writing -----------------------------------------------------------------------------

    def write_batch(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        source: str,
        kind: str,
        batch_id: int,
        tag: str,
        existing: Sequence[BatchManifest] | None = None,
    ) -> tuple[BatchWrite, int, list[str]]:
        """Store the valid rows of `source` (a table or query with RECORD_KEY and `row_no`) as
        batch `batch_id`; returns (what was written, rows stored, months touched).

        Duplicates within the batch keep their first row; rows already stored for `kind` in the
        touched months (of the `existing` batches, default every committed one) are dropped.
        Nothing is live until the manifest is renamed into place, last."""
        month = "CASE WHEN event_date IS NULL THEN -1 ELSE year(event_date) * 100 + month(event_date) END"
        keys = ", ".join(RECORD_KEY)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW store_source AS SELECT {keys}, row_no, {month} AS month_key FROM ({source})"
        )
        months = [
            int(m)
            for (m,) in con.execute("SELECT DISTINCT month_key FROM store_source ORDER BY 1").fetchall()
        ]
        labels = {m: (NO_MONTH if m < 0 else f"{m // 100:04d}-{m % 100:02d}") for m in months}
        earlier = self._partition_files(kind, list(labels.values()), existing)
        batch = f"SELECT {keys}, min(row_no) AS row_no, month_key FROM store_source GROUP BY ALL"
        if earlier:
            batch = f"SELECT b.* FROM ({batch}) b ANTI JOIN {_stored_records_sql(earlier)} x ON {_same_record_sql('b', 'x')}"
        with self._step("deduplicate and sort"):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE store_new AS {batch} ORDER BY month_key, id_key, event_date, row_no"
            )
        con.execute("DROP VIEW store_source")
        counts = dict(con.execute("SELECT month_key, count(*) FROM store_new GROUP BY ALL").fetchall())
        columns = ", ".join(
            c if c != "batch_id" else f"CAST({int(batch_id)} AS BIGINT) AS batch_id" for c in STORE_COLUMNS
        )

        def copy(key: int) -> Callable[[Path], None]:
            def run(temp: Path) -> None:
                con.execute(
                    f"COPY (SELECT {columns} FROM store_new WHERE month_key = {key}) TO {sql.quote(str(temp))} "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {self.row_group_size})"
                )

            return run

        parts = [(labels[key], copy(key)) for key in months if counts.get(key)]
        try:
            write = self._write_files(
                kind=kind, batch_id=batch_id, tag=tag, parts=parts, stored=sum(counts.values())
            )
        finally:
            con.execute("DROP TABLE IF EXISTS store_new")
        return write, sum(int(v) for v in counts.values()), [label for label, _ in parts]

    def _write_files(
        self,
        *,
        kind: str,
        batch_id: int,
        tag: str,
        parts: Sequence[tuple[str, Callable[[Path], None]]],
        stored: int,
        threads: int = 1,
    ) -> BatchWrite:
        """Write each (month label, writer of a Parquet file at a given path) as the batch's file
        of that month — `<batch>.parquet`, or `<batch>-1.parquet`, `<batch>-2.parquet`, … when
        a month comes in several pieces — under a temporary name (`threads` at once), rename
        them into place, then write the manifest: nothing is live until the manifest is."""
        write = BatchWrite()
        name = f"b{batch_id}-{tag}"
        per_month = collections.Counter(label for label, _ in parts)
        seen: collections.Counter[str] = collections.Counter()
        try:
            jobs = []
            for label, writer in parts:
                seen[label] += 1
                stem = name if per_month[label] == 1 else f"{name}-{seen[label]}"
                relative = f"kind={kind}/month={label}/{stem}.parquet"
                target = self.root / relative
                self._mkdirs(target.parent, write)
                temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
                write.paths.append(temp)
                jobs.append((writer, temp, target, relative))
            with self._step("write parquet"):
                if threads > 1 and len(jobs) > 1:
                    with ThreadPoolExecutor(threads) as pool:
                        list(pool.map(lambda job: job[0](job[1]), jobs))
                else:
                    for writer, temp, _, _ in jobs:
                        writer(temp)
            files: list[str] = []
            for index, (_, temp, target, relative) in enumerate(jobs):
                self._rename(temp, target)
                write.paths[index] = target
                files.append(relative)
            manifest = BatchManifest(batch_id, kind, tag, tuple(files), int(stored))
            target = self.root / manifest.path
            self._mkdirs(target.parent, write)
            temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
            write.paths.append(temp)
            temp.write_text(manifest.to_json(), encoding="utf-8")
            self._rename(temp, target)
            write.paths[-1] = target
            write.manifest = manifest
        except BaseException:
            self.discard(write)
            raise
        return write

    def _partition_files(
        self, kind: str, months: Sequence[str], existing: Sequence[BatchManifest] | None
    ) -> FileList:
        """The files holding the stored rows of `kind` in `months` (of the `existing` batches)."""
        chosen = self.manifests() if existing is None else existing
        prefixes = tuple(str(self.root / f"kind={kind}/month={m}") + "/" for m in months)
        files = self.resolve(chosen, [kind])
        return FileList(
            (p for p in files if str(p).startswith(prefixes)),
            partial=files.partial,
            batch_ids=files.batch_ids,
        )

    def _mkdirs(self, directory: Path, write: BatchWrite) -> None:
        missing = []
        probe = directory
        while not probe.exists() and probe != self.root.parent:
            missing.append(probe)
            probe = probe.parent
        directory.mkdir(parents=True, exist_ok=True)
        write.created_dirs.extend(reversed(missing))

    def discard(self, write: BatchWrite) -> None:
        """Remove what a batch wrote (after a failure), manifest first; never raises."""
        for path in sorted(write.paths, key=lambda p: p.parent.name != MANIFEST_DIR):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for directory in sorted(write.created_dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
        write.manifest = None

    # -- compacting --------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's compaction lock (compaction and key upgrade, one at a time, across
        processes); `StoreBusy` when another holds it."""
        directory = self.root / COMPACT_DIR
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusy(f"another compaction or upgrade of {self.root} is running") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def import_lock(self, kind: str) -> Iterator[None]:
        """Hold the lock of the imports of one kind, waiting for it (across processes). An
        import reads the rows stored before (the succeeded batches' manifests), drops its rows
        already among them, writes its files and then commits its batch: two imports of a kind
        in that window at once would each miss the other's rows and both store the rows they
        share. The system of record (zige.feeds.services) holds this lock from reading the
        manifests to its commit. Not the compaction lock (`lock`): imports need none against a
        compaction, and must not fail while one runs.

        Re-entrant within a thread: a caller that runs an import inside a transaction of its own
        (the bureau's approval of a verification report, whose evidence commits with the
        approval) takes the lock before that transaction and holds it to its commit; the
        import's own `import_lock` inside it then waits for nothing."""
        directory = self.root / LOCK_DIR
        directory.mkdir(parents=True, exist_ok=True)
        path = (directory / f"import-{kind}.lock").resolve()
        held: set[Path] = getattr(_HELD_IMPORT_LOCKS, "paths", None) or set()
        _HELD_IMPORT_LOCKS.paths = held
        if path in held:
            yield
            return
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.add(path)
            try:
                yield
            finally:
                held.discard(path)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def compact(
        self,
        *,
        now: datetime,
        batches: Sequence[BatchManifest] | None = None,
        kinds: Iterable[str] | None = None,
        min_files: int = 2,
        grace: timedelta = DEFAULT_GRACE,
        con: duckdb.DuckDBPyConnection | None = None,
        progress: Callable[[CompactedPartition], None] | None = None,
    ) -> CompactionResult:
        """Merge each kind/month partition holding `min_files` or more files of `batches`
        (default: every committed batch; the system of record gives its succeeded ones) into one
        file; remove what earlier compactions replaced once `grace` has passed since their commit.

        Per partition: the rows of its files (the batches' own files and the partition's live
        merged file, whole) are sorted by `MERGE_ORDER` and written with the ingest's settings
        under a temporary name, renamed into place, then the record (`Compaction`) is written and
        renamed: the commit point. A failure or a crash before it leaves the partition as it was
        (the next compaction removes a left-over file); after it, readers resolve the batches to
        the new file and the replaced files wait for the sweep. `now` (aware) dates the commit."""
        if min_files < 2:
            raise ValueError("min_files must be at least 2")
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        result = CompactionResult()
        wanted = None if kinds is None else set(kinds)
        with self.lock():
            self._sweep(now, grace, result)
            chosen = self.manifests() if batches is None else list(batches)
            for manifest in chosen:
                check_layout(manifest)
            live = self.live_compactions()
            holder = {f: c for c in live.values() for _, f in c.sources}
            fresh: dict[tuple[str, str], list[tuple[int, str]]] = {}
            for manifest in chosen:
                if wanted is not None and manifest.kind not in wanted:
                    continue
                for f in manifest.files:
                    if f not in holder:
                        fresh.setdefault((manifest.kind, _month_of(f)), []).append((manifest.batch_id, f))
            own = con is None
            con = duckdb.connect() if con is None else con
            try:
                for (kind, month), new in sorted(fresh.items()):
                    previous = live.get((kind, month))
                    if len(new) + (previous is not None) < min_files:
                        continue
                    done = self._merge(con, kind=kind, month=month, previous=previous, new=new, now=now)
                    result.partitions.append(done)
                    if progress is not None:
                        progress(done)
            finally:
                if own:
                    con.close()
            self._sweep(now, grace, result)
        return result

    def _merge(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        kind: str,
        month: str,
        previous: Compaction | None,
        new: Sequence[tuple[int, str]],
        now: datetime,
    ) -> CompactedPartition:
        """Merge one partition (see `compact`)."""
        started = time.perf_counter()
        inputs = ([previous.file] if previous is not None else []) + [f for _, f in new]
        sources = (previous.sources if previous is not None else ()) + tuple(new)
        records = self.compactions()
        number = max((c.number for c in records), default=0) + 1
        # The commit times rise with the numbers, whatever clock the callers pass (the sweep relies on it).
        committed = max([now, *(c.committed() for c in records)])
        relative = f"kind={kind}/month={month}/c{number}-{uuid.uuid4().hex[:8]}.parquet"
        target = self.root / relative
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        expected = sum(pq.ParquetFile(self.root / f).metadata.num_rows for f in inputs)
        before = sum((self.root / f).stat().st_size for f in inputs)
        record = Compaction(
            number, kind, month, relative, sources, tuple(inputs), expected, committed.isoformat()
        )
        record_path = self.root / record.path
        record_temp = record_path.with_name(f".{record_path.name}.{uuid.uuid4().hex[:8]}.tmp")
        listing = ", ".join(sql.quote(str(self.root / f)) for f in inputs)
        query = (
            f"SELECT {', '.join(STORE_COLUMNS)} FROM read_parquet([{listing}], hive_partitioning = false) "
            f"ORDER BY {', '.join(MERGE_ORDER)}"
        )
        try:
            with self._step("compact: sort and write"):
                reader = con.sql(query).to_arrow_reader(self.row_group_size)
                written = _write_parquet_stream(reader, temp, row_group_size=self.row_group_size)
            if written != expected:
                raise RuntimeError(f"compaction of {kind}/{month} wrote {written} rows of {expected}")
            self._rename(temp, target)
            record_temp.write_text(record.to_json(), encoding="utf-8")
            self._rename(record_temp, record_path)  # the commit point
        except BaseException:
            for path in (record_temp, temp, target):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            raise
        return CompactedPartition(
            kind=kind, month=month, files=len(inputs), batches=len(sources), rows=written, bytes_before=before,
            bytes_after=target.stat().st_size, seconds=time.perf_counter() - started, record=record.path,
        )  # fmt: skip

    def _sweep(self, now: datetime, grace: timedelta, result: CompactionResult) -> None:
        """Under the lock: remove the files each record replaced once `grace` has passed since its
        commit, then the records a later one superseded (their file is gone with it), then what a
        compaction that never committed left (its merged file, temporary files)."""
        records = self.compactions()
        expired = [c for c in records if c.committed() + grace <= now]

        def remove(relative: str) -> None:
            path = self.root / relative
            if path.exists():
                size = path.stat().st_size
                _remove(path)
                result.removed.append(relative)
                result.removed_bytes += size

        for record in expired:
            for relative in record.replaces:
                remove(relative)
        done = {c.number for c in expired}
        by_partition: dict[tuple[str, str], list[Compaction]] = {}
        for record in records:
            by_partition.setdefault((record.kind, record.month), []).append(record)
        for chain in by_partition.values():
            for record, successor in itertools.pairwise(chain):
                if successor.number in done:  # its replaced files, `record.file` among them, are gone
                    remove(record.path)
        kept = {c.file for c in records}
        for pattern in ("kind=*/month=*/c*.parquet", "kind=*/month=*/.c*.tmp", f"{COMPACT_DIR}/.c*.tmp"):
            for path in self.root.glob(pattern):
                relative = path.relative_to(self.root).as_posix()
                if relative not in kept and _COMPACTED_NAME.match(path.name):
                    remove(relative)

    # -- upgrading ---------------------------------------------------------------------------

    def upgrade_key_layout(self) -> list[str]:
        """Rewrite every batch of key layout 1 (the ID's 17 digits in order) to `KEY_LAYOUT`;
        returns the upgraded batches' names. Nothing else changes: same rows, same partitions.

        Per batch, each file is read, its keys turned birth-first (`zige.ids.store_key`), sorted
        again and written under a new name (`…-k2.parquet`); then the rewritten manifest lists the
        new files (the commit point, as for an import); then the old files are removed. A crash
        leaves the old batch whole (its manifest unchanged; the new files unlisted, written again
        by the next upgrade) or the new one (old files unlisted)."""
        with self.lock():
            return self._upgrade_key_layout()

    def _upgrade_key_layout(self) -> list[str]:
        directory = self.root / MANIFEST_DIR
        upgraded: list[str] = []
        for path in sorted(directory.glob("b*.json")) if directory.is_dir() else []:
            manifest = BatchManifest.from_json(path.read_text(encoding="utf-8"))
            if manifest.key_layout == KEY_LAYOUT:
                continue
            if manifest.key_layout != 1:
                check_layout(manifest)
            files = []
            for relative in manifest.files:
                # Layout 1's key is the integer of the ID's first 17 digits: `key_of_digits_sql`.
                source = f"read_parquet({sql.quote(str(self.root / relative))}, hive_partitioning = false)"
                rekeyed = f"SELECT * REPLACE ({sql.key_of_digits_sql('id_key')} AS id_key) FROM {source}"
                with duckdb.connect() as con:
                    table = con.sql(
                        f"SELECT * FROM ({rekeyed}) ORDER BY id_key, event_date, row_no"
                    ).to_arrow_table()
                target = relative.removesuffix(".parquet") + "-k2.parquet"
                temp = self.root / f"{target}.{uuid.uuid4().hex[:8]}.tmp"
                _write_parquet(table, temp, row_group_size=self.row_group_size)
                self._rename(temp, self.root / target)
                files.append(target)
            new = BatchManifest(manifest.batch_id, manifest.kind, manifest.tag, tuple(files), manifest.rows)
            temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            temp.write_text(new.to_json(), encoding="utf-8")
            self._rename(temp, path)
            for relative in manifest.files:
                with contextlib.suppress(OSError):
                    (self.root / relative).unlink()
            upgraded.append(manifest.name)
        return upgraded

    # -- importing ---------------------------------------------------------------------------

    def ingest_csv(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        path: Path,
        kind: FeedKind,
        batch_id: int,
        tag: str,
        as_of: date,
        existing: Sequence[BatchManifest] | None = None,
    ) -> IngestResult:
        """Normalise a UTF-8 CSV into the store with DuckDB's parallel `read_csv`.

        Raises `NotFastPath` (nothing written) when the file needs `zige.engine.readers`: not
        UTF-8, no header in the first rows, a title row spanning lines, ragged rows, a carriage
        return not followed by a line feed (a row end to the readers and a spreadsheet, not to
        the line counts here), or empty lines / line breaks inside values (DuckDB numbers
        records, not lines, and skips empty
        lines; the check counts the file's line ends, so the row numbers given are always the
        rows a spreadsheet shows)."""
        self.timings = {}
        self.native_note = ""
        with self._step("sniff"):
            header_index, delimiter, width, positions, encoding, headers = _sniff(path, kind)
        fields = fields_as_written(kind.columns, headers)
        if self.use_native and native_eligible(kind) and native.available():
            try:
                return self._ingest_native(
                    con, path=path, kind=kind, batch_id=batch_id, tag=tag, as_of=as_of, existing=existing,
                    header_index=header_index, delimiter=delimiter, width=width, positions=positions,
                    encoding=encoding, fields=fields,
                )  # fmt: skip
            except native.ScanAborted as exc:
                # Something only the SQL path reads (and that path may refuse the file): it decides.
                self.timings["native scan aborted"] = (0.0, 0.0)
                self.native_note = str(exc)
            finally:
                # The import's scratch memory, free again, kept for the next (`native.MappingPool`).
                native.POOL.recycle()
        raw = _raw_rows_sql(_read_csv_sql(path, header_index + 1, delimiter, width), positions, width)
        query = sql.stage_feed_keyed_sql(
            kind=kind, source=raw, present=list(positions), as_of=as_of, row="CAST(NULL AS BIGINT)",
            keep=("_blank",),
        )  # fmt: skip
        try:
            with self._step("read and normalise"):
                con.execute(f"CREATE OR REPLACE TEMP TABLE ingest_staged AS {query}")
        except duckdb.Error as exc:  # invalid UTF-8, a ragged row, a quote problem
            raise NotFastPath(f"read_csv: {exc}") from None
        records = _scalar(con, "SELECT count(*) FROM ingest_staged")
        with self._step("count line ends"):
            trailing, final_end = _file_end(path)
            lines = _count_line_ends(path) - trailing
        # Lines = title and header rows + records, the last without its line end when the file
        # has none: told apart, so that a skipped empty line cannot stand in for a missing end.
        if lines - (header_index + 1) != records - (0 if final_end else 1):
            con.execute("DROP TABLE ingest_staged")
            raise NotFastPath("empty lines or line breaks inside values: the readers number them")
        first_row = header_index + 2
        con.execute(
            "CREATE OR REPLACE TEMP VIEW ingest_rows AS "
            f"SELECT * REPLACE (rowid + {first_row} AS row_no) FROM ingest_staged WHERE NOT _blank"
        )
        return self._finish_ingest(
            con, kind=kind, batch_id=batch_id, tag=tag, existing=existing, header_row=header_index + 1,
            encoding=encoding, fast=True, blank_rows=_scalar(con, "SELECT count(*) FROM ingest_staged WHERE _blank"),
            fields=fields,
        )  # fmt: skip

    def _ingest_native(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        path: Path,
        kind: FeedKind,
        batch_id: int,
        tag: str,
        as_of: date,
        existing: Sequence[BatchManifest] | None,
        header_index: int,
        delimiter: str,
        width: int,
        positions: dict[str, int],
        encoding: str,
        fields: Mapping[str, str],
    ) -> IngestResult:
        """`ingest_csv` through the native scan (zige.engine.native): the rows it is sure of are
        normalised in C, one thread per core; the rest (messy or rejected) go through the same SQL
        as the other path, read from a side file of their lines; the rows are ordered and their
        duplicates dropped by cache-sized buckets (`native.order_rows`). Same store, same counts,
        same rejects as the SQL path
        (tests/unit/test_native_ingest.py). Raises `native.ScanAborted` before writing anything
        when the file needs the SQL path."""
        first_row = header_index + 2
        threads = max(1, _scalar(con, "SELECT current_setting('threads')"))
        options = {
            "width": width, "delimiter": delimiter, "id_col": positions["id_number"],
            "name_col": positions.get("name", -1), "date_col": positions.get("event_date", -1),
            "other_cols": [positions.get(c.name, -1) for c in kind.others],
            "other_required": [c.required for c in kind.others],
            "birth_low": int(EARLIEST_BIRTH.strftime("%Y%m%d")), "birth_high": int(as_of.strftime("%Y%m%d")),
        }  # fmt: skip
        # Mapped with its pages at once (MAP_POPULATE, where there is one): the first pass over
        # a lazily mapped file of 637 MB spent 0.1-0.2 s faulting its pages in one by one.
        populate = getattr(mmap, "MAP_POPULATE", 0)
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ) as view,
        ):
            buf = np.frombuffer(view, dtype=np.uint8)
            aborted = ""
            try:
                begin, end = _data_begin(buf, header_index + 1), _data_end(buf)
                if _lone_cr(buf[:begin]):
                    # `_sniff` found the header with the csv module (a lone CR ends a line there),
                    # `_data_begin` counted line feeds: they disagree on where the data starts.
                    raise native.ScanAborted("a carriage return not followed by a line feed before the data")
                with self._step("native scan"):
                    scan = native.scan_file(
                        buf, begin, max(begin, end), first_row=first_row, threads=threads, **options
                    )
            except native.ScanAborted as exc:
                aborted = str(exc)  # raised again below: its traceback holds views of the map
            finally:
                del buf
        if aborted:
            raise native.ScanAborted(aborted)
        starts = np.cumsum([0, *scan.lines])
        with self._step("slow rows (SQL)"), tempfile.TemporaryDirectory(prefix="zige-ingest-") as tmp:
            sources = []
            for index, slow in enumerate(scan.slow):
                if not slow:
                    continue
                slow_path = Path(tmp) / f"slow-{index}.csv"
                slow_path.write_bytes(slow)
                read = _read_csv_sql(slow_path, 0, delimiter, width, row_column=True)
                sources.append(
                    f"SELECT * REPLACE (CAST(c_row AS BIGINT) + {first_row + int(starts[index])} AS c_row) FROM {read}"
                )

            def staged(source: str) -> pa.Table:
                raw = _raw_rows_sql(f"({source})", positions, width, row="CAST(c_row AS BIGINT)")
                query = sql.stage_feed_keyed_sql(
                    kind=kind, source=raw, present=list(positions), as_of=as_of, keep=("_blank",)
                )
                with con.cursor() as cursor:
                    return cursor.sql(query).to_arrow_table()

            try:
                # Each range's slow rows on a connection of its own, at once: DuckDB runs a query
                # over a few tens of thousands of rows on one thread (one row group), and its
                # normalisation costs about 4 µs a row (docs/performance.md).
                if len(sources) > 1 and threads > 1:
                    with ThreadPoolExecutor(min(threads, len(sources))) as pool:
                        tables = list(pool.map(staged, sources))
                else:
                    tables = [staged(source) for source in sources]
            except duckdb.Error as exc:  # a quoted value DuckDB refuses: the SQL path reads the file
                raise native.ScanAborted(f"read_csv of the slow rows: {exc}") from None
            if tables:  # none when the scan took every row (its SQL alone cost 0.03-0.09 s)
                con.register("ingest_slow_staged", pa.concat_tables(tables))
                try:
                    con.execute(
                        "CREATE OR REPLACE TEMP TABLE ingest_slow AS SELECT * FROM ingest_slow_staged"
                    )
                finally:
                    con.unregister("ingest_slow_staged")
        rejected_here = _native_rejects(scan.rejects)
        con.register("ingest_native_rejects", rejected_here)
        try:
            with self._step("rejects"):
                reasons = " ".join(
                    f"WHEN {code} THEN {sql.quote(r)}" for code, r in native.REJECT_REASONS.items()
                )
                slow_rejects = (
                    f"SELECT row_no, {sql.field_as_written_sql('reject_field', fields)} AS field, "
                    "reject_value AS value, reject_reason AS reason "
                    "FROM ingest_slow WHERE NOT _blank AND reject_reason IS NOT NULL UNION ALL "
                )
                id_field = sql.quote(fields.get(sql.ID_FIELD, sql.ID_FIELD))
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE ingest_rejects AS SELECT * FROM ({slow_rejects if tables else ''}"
                    f"SELECT row_no, {id_field} AS field, CAST(value AS VARCHAR) AS value, "
                    f"CASE code {reasons} END AS reason FROM ingest_native_rejects) ORDER BY row_no"
                )
            rejected = _scalar(con, "SELECT count(*) FROM ingest_rejects")
            blank_rows = slow_read = 0
            slow_ok = pa.table({})
            if tables:  # the rows the SQL path normalised
                blank_rows = _scalar(con, "SELECT count(*) FROM ingest_slow WHERE _blank")
                slow_read = _scalar(con, "SELECT count(*) FROM ingest_slow WHERE NOT _blank")
                slow_ok = con.sql(
                    "SELECT id_key, CAST(event_date AS DATE) AS event_date, row_no, name_key, detail "
                    "FROM ingest_slow WHERE NOT _blank AND reject_reason IS NULL"
                ).to_arrow_table()
        finally:
            con.execute("DROP TABLE IF EXISTS ingest_slow")
            con.unregister("ingest_native_rejects")
        with self._step("sort and deduplicate"):
            ranges = [*scan.ranges, (scan.tail, _append_slow_rows(scan, slow_ok))]
            valid = sum(n for _, n in ranges)
            parts = native.order_rows(scan, ranges, threads=threads)
            del scan
            table = _store_table(parts)
            month_of_row = parts[0].month if len(parts) == 1 else np.concatenate([p.month for p in parts])
            del parts
            months, month_starts = _month_runs(month_of_row)
        with self._step("drop rows stored before"):
            earlier = self._partition_files(kind.code, [_month_label(m) for m in months], existing)
            if earlier and table.num_rows:
                keep = self._not_stored(con, _with_empty_columns(table), earlier)
                table, month_of_row = table.filter(_booleans(keep)), month_of_row[keep]
                months, month_starts = _month_runs(month_of_row)
        stored = table.num_rows

        def parquet(part: pa.Table) -> Callable[[Path], None]:
            def run(temp: Path) -> None:
                # The batch's columns made here, a month's rows at a time: the writers' memory
                # is used again from month to month instead of fresh for the whole file.
                _write_parquet(
                    _with_batch_columns(part, batch_id), temp, row_group_size=self.row_group_size,
                    options=_IMPORT_PARQUET_OPTIONS,
                )  # fmt: skip

            return run

        parts_to_write = [
            (_month_label(month), parquet(table.slice(a, b - a)))
            for month, (first, last) in zip(months, itertools.pairwise([*month_starts, stored]), strict=True)
            for a, b in _pieces(first, last, max(self.piece_rows, -(-stored // threads)))
        ]
        write = self._write_files(
            kind=kind.code, batch_id=batch_id, tag=tag, parts=parts_to_write, stored=stored, threads=threads
        )
        rows_read = valid - slow_ok.num_rows + slow_read + rejected_here.num_rows
        return IngestResult(
            batch_id=batch_id, kind=kind.code, rows_read=rows_read, rows_used=stored,
            rows_rejected=rejected, duplicate_rows=rows_read - stored - rejected,
            blank_rows=blank_rows, header_row=header_index + 1, encoding=encoding, fast=True, write=write,
            months=list(dict.fromkeys(label for label, _ in parts_to_write)), native=True,
        )  # fmt: skip

    def _not_stored(
        self, con: duckdb.DuckDBPyConnection, table: pa.Table, earlier: Sequence[Path]
    ) -> np.ndarray:
        """Which rows of `table` are not stored before for the kind (the SQL path's anti-join)."""
        con.register("native_new", table.select([*RECORD_KEY, "row_no"]))
        try:
            stored = con.execute(
                f"SELECT b.row_no FROM native_new b SEMI JOIN {_stored_records_sql(earlier)} x "
                f"ON {_same_record_sql('b', 'x')}"
            ).fetchnumpy()["row_no"]
        finally:
            con.unregister("native_new")
        row_no = _integers(table.column("row_no"), np.int64)
        keep: np.ndarray = ~np.isin(row_no, np.asarray(stored, dtype=np.int64))
        return keep

    def ingest_table(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        raw: readers.RawTable,
        kind: FeedKind,
        batch_id: int,
        tag: str,
        as_of: date,
        existing: Sequence[BatchManifest] | None = None,
    ) -> IngestResult:
        """Normalise a raw table from `zige.engine.readers` into the store (any file format)."""
        self.timings = {}
        present = [c for c in raw.table.column_names if c != "_row"]
        con.register("ingest_raw", raw.table)
        try:
            query = sql.stage_feed_keyed_sql(kind=kind, source="ingest_raw", present=present, as_of=as_of)
            con.execute(f"CREATE OR REPLACE TEMP TABLE ingest_staged AS {query}")
        finally:
            con.unregister("ingest_raw")
        con.execute("CREATE OR REPLACE TEMP VIEW ingest_rows AS SELECT * FROM ingest_staged")
        return self._finish_ingest(
            con, kind=kind, batch_id=batch_id, tag=tag, existing=existing, header_row=raw.header_row,
            encoding=raw.encoding, fast=False, blank_rows=raw.blank_rows,
            fields=fields_as_written(kind.columns, raw.headers),
        )  # fmt: skip

    def _finish_ingest(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        kind: FeedKind,
        batch_id: int,
        tag: str,
        existing: Sequence[BatchManifest] | None,
        header_row: int,
        encoding: str,
        fast: bool,
        blank_rows: int,
        fields: Mapping[str, str],
    ) -> IngestResult:
        with self._step("rejects"):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ingest_rejects AS SELECT row_no, "
                f"{sql.field_as_written_sql('reject_field', fields)} AS field, "
                "reject_value AS value, reject_reason AS reason FROM ingest_rows WHERE reject_reason IS NOT NULL "
                "ORDER BY row_no"
            )
        rows_read = _scalar(con, "SELECT count(*) FROM ingest_rows")
        rejected = _scalar(con, "SELECT count(*) FROM ingest_rejects")
        try:
            write, stored, months = self.write_batch(
                con,
                source=f"SELECT {', '.join(RECORD_KEY)}, row_no FROM ingest_rows WHERE reject_reason IS NULL",
                kind=kind.code,
                batch_id=batch_id,
                tag=tag,
                existing=existing,
            )
        finally:
            con.execute("DROP VIEW IF EXISTS ingest_rows")
            con.execute("DROP TABLE IF EXISTS ingest_staged")
        return IngestResult(
            batch_id=batch_id, kind=kind.code, rows_read=rows_read, rows_used=stored, rows_rejected=rejected,
            duplicate_rows=rows_read - stored - rejected, blank_rows=blank_rows, header_row=header_row,
            encoding=encoding, fast=fast, write=write, months=months,
        )  # fmt: skip


# Names only a compaction writes: merged files, and its temporary files (records and data).
_COMPACTED_NAME = re.compile(
    r"^(c\d+-[0-9a-f]{8}\.parquet|\.c\d+-[0-9a-f]{8}\.parquet\.[0-9a-f]{8}\.tmp|\.c\d+\.json\.[0-9a-f]{8}\.tmp)$"
)


def _month_of(relative: str) -> str:
    """The month label of a data file's relative path (`kind=…/month=<label>/…`)."""
    return relative.split("/")[1].removeprefix("month=")


def _stored_records_sql(files: Sequence[Path]) -> str:
    """The record keys of stored files, for the anti-join that drops rows stored before."""
    return f"({_read_parquet_sql(files, ', '.join(RECORD_KEY), 'hive_partitioning = false')})"


def _read_parquet_sql(files: Sequence[Path], columns: str, options: str) -> str:
    """`SELECT columns FROM read_parquet(files, options)`; a `FileList`'s partial files only for
    the rows of its batches."""
    partial = files.partial if isinstance(files, FileList) else frozenset()

    def listing(paths: Iterable[Path]) -> str:
        return ", ".join(sql.quote(str(p)) for p in paths)

    whole = [p for p in files if p not in partial]
    some = [p for p in files if p in partial]
    parts = [f"SELECT {columns} FROM read_parquet([{listing(whole)}], {options})"] if whole else []
    if some:
        assert isinstance(files, FileList)
        ids = ", ".join(str(int(b)) for b in sorted(files.batch_ids))
        where = f"batch_id IN ({ids})" if ids else "false"
        parts.append(f"SELECT {columns} FROM read_parquet([{listing(some)}], {options}) WHERE {where}")
    return " UNION ALL ".join(parts)


def _same_record_sql(a: str, b: str) -> str:
    """Rows `a` and `b` are the same record (docs/rules.md §4)."""
    rest = " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in RECORD_KEY if c != "id_key")
    return f"{a}.id_key = {b}.id_key AND {rest}"


def native_eligible(kind: FeedKind) -> bool:
    """Kinds the native scan normalises: no result/class column (`sub`) and no date among the
    other columns (a sentence's end date); the others go through SQL only."""
    return sql.kind_sub_column(kind) is None and all(c.type == "text" for c in kind.others)


def _read_csv_sql(path: Path, skip: int, delimiter: str, width: int, *, row_column: bool = False) -> str:
    """DuckDB's parallel `read_csv` of a feed CSV as text columns c0.. (and c_row first)."""
    names = (["c_row"] if row_column else []) + [f"c{i}" for i in range(width)]
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    return (
        f"read_csv({sql.quote(str(path))}, header = false, skip = {skip}, "
        f"delim = {sql.quote(delimiter)}, quote = '\"', escape = '\"', all_varchar = true, "
        f"auto_detect = false, columns = {columns}, strict_mode = true)"
    )


def _raw_rows_sql(source: str, positions: dict[str, int], width: int, *, row: str | None = None) -> str:
    """The logical columns of `source` (c0..) and `_blank` (every cell blank), and `_row` from
    the expression `row` when given."""
    blank = " AND ".join(_blank_sql(f"c{i}") for i in range(width))
    id_col = f"c{positions['id_number']}"
    named = ", ".join(f'c{pos} AS "{name}"' for name, pos in positions.items())
    row_sql = f", {row} AS _row" if row else ""
    return (
        f"(SELECT {named}{row_sql}, CASE WHEN substr({id_col}, 1, 1) BETWEEN '0' AND '9' THEN false "
        f"WHEN NOT {_blank_sql(id_col)} THEN false "
        f"ELSE {blank} END AS _blank FROM {source})"
    )


def _blank_sql(col: str) -> str:
    """Whether the cell `col` is empty or only blank characters (`readers._BLANK_CHARS`). DuckDB's
    trim with a set of characters costs about 2 µs a call here, so it runs only on a cell that
    starts with one of them (a rejected row's empty ID and its cells: 0.3 s of a 10 M-row
    file's 70,000 rejects)."""
    chars = sql.quote(_BLANK)
    return (
        f"({col} IS NULL OR {col} = '' OR "
        f"(strpos({chars}, substr({col}, 1, 1)) > 0 AND trim({col}, {chars}) = ''))"
    )


def _data_begin(buf: np.ndarray, lines_before: int) -> int:
    """The byte offset just after the first `lines_before` line feeds (title and header rows)."""
    if lines_before == 0:
        return 0
    step, start = 1 << 16, 0
    seen = 0
    while start < buf.size:
        found = np.flatnonzero(buf[start : start + step] == 10)
        if seen + found.size >= lines_before:
            return start + int(found[lines_before - seen - 1]) + 1
        seen += found.size
        start += step
    return int(buf.size)


def _lone_cr(head: np.ndarray) -> bool:
    """Whether `head` (the title and header rows: small) holds a CR that is not part of a CRLF."""
    cr = head == 13
    if not cr.any():
        return False
    return bool((cr[:-1] & (head[1:] != 10)).any() or cr[-1])


def _data_end(buf: np.ndarray) -> int:
    """The file without its trailing line ends (empty last lines, which DuckDB skips too and
    the readers drop: no rows on any path, `readers._tolerant_body`)."""
    end = int(buf.size)
    while end > 0 and buf[end - 1] in (10, 13):
        end -= 1
    return end


def _integers(column: pa.ChunkedArray | pa.Array, dtype: type[np.int32] | type[np.int64]) -> np.ndarray:
    """A null-free integer or date column as numpy, read from its chunks' data buffers. pyarrow's
    `to_numpy`, `combine_chunks` of no chunks and `pa.array` of Python or numpy values import
    pandas on their first call (1-4 s in a fresh process on this kind of machine), which every
    `zige import feed` would pay."""
    parts = []
    for array in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        if array.null_count:
            raise ValueError(f"{array.null_count} NULLs in a column that has none")
        if len(array):
            width = array.type.bit_width // 8
            values = np.frombuffer(array.buffers()[1], dtype=f"<i{width}")
            parts.append(values[array.offset : array.offset + len(array)])
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _booleans(values: np.ndarray) -> pa.Array:
    """A numpy bool array as an Arrow one, packed here (`pa.array` of numpy imports pandas too)."""
    bits = np.packbits(values.astype(bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), int(values.size), [None, pa.py_buffer(bits)])


def _native_rejects(rejects: Sequence[native.Rejects]) -> pa.Table:
    """The rows the native scan rejected itself, as a table (row_no, code, value): Arrow arrays
    over its buffers (`pa.array` of NumPy values would import pandas)."""
    parts = []
    for part in rejects:
        n = int(part.rows.size)
        offsets = np.zeros(n + 1, dtype=np.int64)
        offsets[1:] = part.ends
        values = pa.LargeStringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(part.data))
        )
        columns = [_numbers(pa.int64(), part.rows), _numbers(pa.uint8(), part.codes), values]
        parts.append(pa.Table.from_arrays(columns, schema=_NATIVE_REJECTS))
    return pa.concat_tables(parts) if parts else _NATIVE_REJECTS.empty_table()


def _append_slow_rows(scan: native.Scan, slow_ok: pa.Table) -> int:
    """Put the SQL-normalised valid rows after the scan's rows; how many."""
    if not slow_ok.num_rows:
        return 0  # (and no empty text columns to combine: see `_integers`)
    slow_day = _integers(slow_ok.column("event_date"), np.int32)  # date32: days since 1970-01-01
    slow_key = _integers(slow_ok.column("id_key"), np.int64)
    slow_month, slow_dom = _months_and_days(slow_day)
    added = scan.append(
        {
            "id_key": slow_key, "day": slow_day, "month": slow_month,
            "sort_key": (slow_key.astype(np.uint64) << np.uint64(5)) | (slow_dom - 1).astype(np.uint64),
            "row_no": _integers(slow_ok.column("row_no"), np.int64),
        },
        slow_ok.column("name_key").combine_chunks(),
        slow_ok.column("detail").combine_chunks(),
    )  # fmt: skip
    return int(added.size)


def _numbers(arrow_type: pa.DataType, values: np.ndarray) -> pa.Array:
    """A contiguous numpy array as an Arrow array without a copy (`pa.array` converts value by
    value: 2.3 s for 20 M int64 here)."""
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def _store_table(parts: Sequence[native.Ordered]) -> pa.Table:
    """Ordered rows (`native.order_rows`' parts, a chunk each) as the store's columns that vary
    by row (no copies: Arrow arrays over the scan's memory); `_with_batch_columns` adds the
    others."""

    def chunk(rows: native.Ordered) -> pa.Table:
        n = int(rows.id_key.size)
        return pa.table(
            {
                "id_key": _numbers(pa.int64(), rows.id_key),
                "event_date": _numbers(pa.date32(), rows.day),
                "detail": pa.LargeStringArray.from_buffers(
                    n, pa.py_buffer(rows.detail_off), pa.py_buffer(rows.detail_data)
                ),
                "name_key": pa.LargeStringArray.from_buffers(
                    n, pa.py_buffer(rows.name_off), pa.py_buffer(rows.name_data)
                ),
                "row_no": _numbers(pa.int64(), rows.row_no),
            }
        )

    return pa.concat_tables([chunk(rows) for rows in parts])


def _with_empty_columns(table: pa.Table) -> pa.Table:
    """`_store_table`'s rows with the record columns the kinds the native scan reads leave
    empty: no end date and no `sub` (what `_not_stored` compares: `RECORD_KEY`)."""
    n = table.num_rows
    return table.append_column("end_date", pa.nulls(n, pa.date32())).append_column(
        "sub", pa.nulls(n, pa.string())
    )


def _with_batch_columns(table: pa.Table, batch_id: int) -> pa.Table:
    """`_store_table`'s rows with every store column, in the store's order: the empty ones
    (`_with_empty_columns`) and the batch."""
    batch = _numbers(pa.int64(), np.full(table.num_rows, batch_id, dtype=np.int64))
    return _with_empty_columns(table).append_column("batch_id", batch).select(list(STORE_COLUMNS))


def _pieces(first: int, last: int, at_most: int) -> list[tuple[int, int]]:
    """Rows [first, last) of a month in as few consecutive pieces of about equal size as keep
    each at `at_most` rows or fewer: a day's feed is one month, and pyarrow writes a file on one
    core (10 M rows of one month: 1.7-1.9 s in one file, 1.0 s in two, docs/performance.md)."""
    count = max(1, -(-(last - first) // at_most))
    return [
        (first + (last - first) * k // count, first + (last - first) * (k + 1) // count) for k in range(count)
    ]


def _month_runs(months: np.ndarray) -> tuple[list[int], list[int]]:
    """The distinct values of a sorted array of months (since 1970-01, negative before it) and
    where each starts: one binary search a month, not a pass over the rows. The value searched
    for is the array's own scalar: with a Python int, numpy converts the whole array to int64
    first (19 ms for 10 M rows, each month: 0.2-0.4 s of a 10 M-row import)."""
    found: list[int] = []
    starts: list[int] = []
    at = 0
    while at < months.size:
        month = months[at]
        found.append(int(month))
        starts.append(at)
        at = int(np.searchsorted(months, month, side="right"))
    return found, starts


def _months_and_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(months since 1970-01, day of the month) of days since 1970-01-01, in integer arithmetic
    (the proleptic Gregorian calendar, as fastcsv.c's days_from_civil counts)."""
    z = days.astype(np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day_of_month = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return (year - 1970) * 12 + (month - 1), day_of_month


def _month_label(month: int) -> str:
    """`YYYY-MM` of a month since 1970-01."""
    return f"{1970 + month // 12:04d}-{month % 12 + 1:02d}"


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
    (row,) = con.execute(query).fetchall()  # fetched to the end: the connection is free again
    return int(row[0])


def _sniff(path: Path, kind: FeedKind) -> tuple[int, str, int, dict[str, int], str, dict[str, str]]:
    """(header row index, delimiter, header width, logical column positions, encoding, headers as
    found: logical column -> label) of a UTF-8 CSV, found as `zige.engine.readers` finds them;
    `NotFastPath` otherwise."""
    if path.suffix.lower() not in readers.CSV_SUFFIXES:
        raise NotFastPath("not a CSV file")
    if not path.is_file():
        raise NotFastPath("no such file")  # the readers' `ReadError` says so
    with path.open("rb") as handle:
        head = handle.read(65536)
    if b"\x00" in head[:4096]:
        raise NotFastPath("UTF-16/32 or binary")
    encoding = "utf-8"
    if head.startswith(codecs.BOM_UTF8):
        head, encoding = head[3:], "utf-8-sig"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < 65536 - 3)
    except UnicodeDecodeError:
        raise NotFastPath("not UTF-8") from None
    if text.startswith("\ufeff"):
        raise NotFastPath("a second byte-order mark")
    for delimiter in readers._DELIMITERS:
        reader = readers._csv_rows(text, delimiter)
        rows = list(readers._limited(reader, readers.HEADER_SEARCH_ROWS))
        found = readers._find_header(rows, kind.columns)
        if found is not None:
            header_index, positions, cells = found
            lines_before = _lines_in(text, delimiter, header_index + 1)
            if lines_before != header_index + 1:
                raise NotFastPath("a title or header row spans lines")
            headers = {name: str(cells[pos]).strip() for name, pos in positions.items()}
            return header_index, delimiter, len(cells), positions, encoding, headers
    raise NotFastPath("no header found by the fast path")


def _lines_in(text: str, delimiter: str, records: int) -> int:
    """How many lines the first `records` CSV records of `text` take."""
    reader = readers._csv_rows(text, delimiter)
    for _ in range(records):
        next(reader)
    return int(reader.line_num)


def _file_end(path: Path) -> tuple[int, bool]:
    """(empty lines at the end of the file, whether its last line has a line feed). DuckDB
    skips the empty lines, and they shift no row number."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    stripped = tail.rstrip(b"\r\n")
    ends = tail[len(stripped) :].count(b"\n")
    return max(0, ends - 1), ends > 0


def _count_line_ends(path: Path) -> int:
    """Line feeds in the file (numpy over a memory map: about 4 GB/s)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    total = 0
    step = 1 << 26
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        data = np.frombuffer(view, dtype=np.uint8)
        try:
            for start in range(0, size, step):
                total += int(np.count_nonzero(data[start : start + step] == 10))
        finally:
            del data
    return total


__all__ = [
    "DEFAULT_GRACE",
    "ROW_GROUP",
    "STORE_COLUMNS",
    "BatchManifest",
    "BatchWrite",
    "CompactedPartition",
    "Compaction",
    "CompactionResult",
    "EvidenceStore",
    "FileList",
    "IngestResult",
    "NotFastPath",
    "StoreBusy",
]
