"""The evidence store: every imported feed row, normalised once, as partitioned Parquet (issue 6).

Layout under the store's root (hive partitions, read with `hive_partitioning`):

    kind=<feed kind>/month=<YYYY-MM of event_date, or none>/b<batch_id>-<tag>.parquet
    _manifest/b<batch_id>-<tag>.json

- One import batch writes its own new files into the partitions its rows fall in, and nothing
  else: importing a day's file touches only that file's rows. Each file is sorted by `id_key`,
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

Two ways in: `ingest_csv` takes a UTF-8 CSV: for kinds without a result column through the native
scan (`zige.engine.native`, C: the rows it is sure of, then the others through the same SQL, then
a bucketed sort), else with DuckDB's parallel `read_csv`, normalised in the same pass
(`sql.stage_feed_keyed_sql`: no Python per row); `ingest_table` takes a raw table from
`zige.engine.readers` (GBK/UTF-16 CSV, Excel, Parquet, title rows, ragged rows). Both CSV paths
give the same store (tests/unit/test_native_ingest.py).
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
import mmap
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zige.engine import native, readers, sql
from zige.engine.kinds import FeedKind
from zige.ids import EARLIEST_BIRTH

# Rows per Parquet row group. A person page looks one ID up in every file and decodes the key
# column of each row group whose min/max covers it: small groups keep that lookup fast (see
# zige.feeds.store), and cost nothing measurable to the scans that read whole files.
ROW_GROUP = 16_384
MANIFEST_DIR = "_manifest"
# The store key's layout, recorded in every manifest: 2 = birth date first (`zige.ids.store_key`).
# A store written with another layout is refused (its keys would match no recipient) until
# `EvidenceStore.upgrade_key_layout` (`zige store upgrade`) rewrites it.
KEY_LAYOUT = 2
NO_MONTH = "none"
STORE_COLUMNS = ("id_key", "event_date", "end_date", "sub", "detail", "name_key", "batch_id", "row_no")
# Columns compared for duplicates (kind is the partition).
RECORD_KEY = ("id_key", "event_date", "end_date", "sub", "detail", "name_key")
# The native path's Parquet settings (measured on 3.3M rail rows: 38 % less CPU than pyarrow's
# defaults, 24 % smaller files): dictionaries where values repeat (a name, the batch), min/max
# only where a reader prunes by them (the person page by key; the month is the partition).
_DICTIONARY_COLUMNS = ("name_key", "batch_id", "sub")
_STATISTICS_COLUMNS = ("id_key", "event_date")
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
    in row order."""

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


def _write_parquet(table: pa.Table, path: Path, *, row_group_size: int) -> None:
    """A store file written by pyarrow (the native ingest, the key upgrade). store_schema=False:
    plain types for every reader, as DuckDB's COPY writes them; dictionaries and statistics only
    where they pay (docs/performance.md)."""
    pq.write_table(
        table, path, compression="zstd", compression_level=1, row_group_size=row_group_size,
        store_schema=False, use_dictionary=list(_DICTIONARY_COLUMNS), write_statistics=list(_STATISTICS_COLUMNS),
    )  # fmt: skip


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
    ) -> None:
        self.root = Path(root)
        # The native scan for CSV ingests when built (zige.engine.native); False: SQL only.
        self.use_native = use_native
        self.row_group_size = row_group_size
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
        """Every committed batch, by batch id."""
        directory = self.root / MANIFEST_DIR
        if not directory.is_dir():
            return []
        found = [BatchManifest.from_json(p.read_text(encoding="utf-8")) for p in directory.glob("b*.json")]
        for manifest in found:
            check_layout(manifest)
        return sorted(found, key=lambda m: m.batch_id)

    def manifest(self, path: str) -> BatchManifest:
        """A manifest by its relative path (as `BatchManifest.path` gives it)."""
        manifest = BatchManifest.from_json((self.root / path).read_text(encoding="utf-8"))
        check_layout(manifest)
        return manifest

    def files(
        self, kinds: Iterable[str] | None = None, *, batches: Iterable[BatchManifest] | None = None
    ) -> list[Path]:
        """The live data files: of the given batches (default: every committed one), of some kinds."""
        wanted = None if kinds is None else set(kinds)
        chosen = self.manifests() if batches is None else list(batches)
        return [
            self.root / f for m in chosen if wanted is None or m.kind in wanted for f in m.files
        ]  # fmt: skip

    def read_sql(self, paths: Sequence[Path]) -> str:
        """The rows of the given data files with `feed_kind` and `month` from their paths."""
        if not paths:
            return _EMPTY_SCAN
        listing = ", ".join(sql.quote(str(p)) for p in paths)
        return (
            f"SELECT {', '.join(STORE_COLUMNS)}, kind AS feed_kind, month "
            f"FROM read_parquet([{listing}], hive_partitioning = true, "
            "hive_types = {'kind': VARCHAR, 'month': VARCHAR})"
        )

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
        of that month under a temporary name (`threads` at once), rename them into place, then
        write the manifest: nothing is live until the manifest is."""
        write = BatchWrite()
        name = f"b{batch_id}-{tag}"
        try:
            jobs = []
            for label, writer in parts:
                relative = f"kind={kind}/month={label}/{name}.parquet"
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
    ) -> list[Path]:
        chosen = self.manifests() if existing is None else existing
        prefixes = tuple(f"kind={kind}/month={m}/" for m in months)
        return [self.root / f for m in chosen if m.kind == kind for f in m.files if f.startswith(prefixes)]

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

    # -- upgrading ---------------------------------------------------------------------------

    def upgrade_key_layout(self) -> list[str]:
        """Rewrite every batch of key layout 1 (the ID's 17 digits in order) to `KEY_LAYOUT`;
        returns the upgraded batches' names. Nothing else changes: same rows, same partitions.

        Per batch, each file is read, its keys turned birth-first (`zige.ids.store_key`), sorted
        again and written under a new name (`…-k2.parquet`); then the rewritten manifest lists the
        new files (the commit point, as for an import); then the old files are removed. A crash
        leaves the old batch whole (its manifest unchanged; the new files unlisted, written again
        by the next upgrade) or the new one (old files unlisted)."""
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
        UTF-8, no header in the first rows, a title row spanning lines, ragged rows, or empty
        lines / line breaks inside values (DuckDB numbers records, not lines, and skips empty
        lines; the check counts the file's line ends, so the row numbers given are always the
        rows a spreadsheet shows)."""
        self.timings = {}
        self.native_note = ""
        with self._step("sniff"):
            header_index, delimiter, width, positions, encoding = _sniff(path, kind)
        if self.use_native and native_eligible(kind) and native.available():
            try:
                return self._ingest_native(
                    con, path=path, kind=kind, batch_id=batch_id, tag=tag, as_of=as_of, existing=existing,
                    header_index=header_index, delimiter=delimiter, width=width, positions=positions,
                    encoding=encoding,
                )  # fmt: skip
            except native.ScanAborted as exc:
                # Something only the SQL path reads (and that path may refuse the file): it decides.
                self.timings["native scan aborted"] = (0.0, 0.0)
                self.native_note = str(exc)
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
            lines = _count_line_ends(path) - _trailing_empty_lines(path)
        # Lines = title and header rows + records, the last line with or without its line end.
        if lines - (header_index + 1) not in (records, records - 1):
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
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            buf = np.frombuffer(view, dtype=np.uint8)
            aborted = ""
            try:
                begin, end = _data_begin(buf, header_index + 1), _data_end(buf)
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
            parts = []
            for index, slow in enumerate(scan.slow):
                if not slow:
                    continue
                slow_path = Path(tmp) / f"slow-{index}.csv"
                slow_path.write_bytes(slow)
                read = _read_csv_sql(slow_path, 0, delimiter, width, row_column=True)
                parts.append(
                    f"SELECT * REPLACE (CAST(c_row AS BIGINT) + {first_row + int(starts[index])} AS c_row) FROM {read}"
                )
            if not parts:
                parts.append(
                    "SELECT " + ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in ["c_row", *(f"c{i}" for i in range(width))])
                    + " WHERE false"
                )  # fmt: skip
            raw = _raw_rows_sql(
                "(" + " UNION ALL ".join(parts) + ")", positions, width, row="CAST(c_row AS BIGINT)"
            )
            query = sql.stage_feed_keyed_sql(
                kind=kind, source=raw, present=list(positions), as_of=as_of, keep=("_blank",)
            )
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE ingest_slow AS {query}")
            except duckdb.Error as exc:  # a quoted value DuckDB refuses: the SQL path reads the file
                raise native.ScanAborted(f"read_csv of the slow rows: {exc}") from None
        try:
            with self._step("rejects"):
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE ingest_rejects AS SELECT row_no, reject_field AS field, "
                    "reject_value AS value, reject_reason AS reason FROM ingest_slow "
                    "WHERE NOT _blank AND reject_reason IS NOT NULL ORDER BY row_no"
                )
            blank_rows = _scalar(con, "SELECT count(*) FROM ingest_slow WHERE _blank")
            slow_read = _scalar(con, "SELECT count(*) FROM ingest_slow WHERE NOT _blank")
            rejected = _scalar(con, "SELECT count(*) FROM ingest_rejects")
            slow_ok = con.sql(
                "SELECT id_key, CAST(event_date AS DATE) AS event_date, row_no, name_key, detail FROM ingest_slow "
                "WHERE NOT _blank AND reject_reason IS NULL"
            ).to_arrow_table()
        finally:
            con.execute("DROP TABLE IF EXISTS ingest_slow")
        with self._step("sort and deduplicate"):
            ranges = [*scan.ranges, (scan.tail, _append_slow_rows(scan, slow_ok))]
            valid = sum(n for _, n in ranges)
            rows = native.order_rows(scan, ranges, threads=threads)
            del scan
            table, month_of_row = _store_table(rows, batch_id), rows.month
            del rows
            # month_of_row is sorted: its distinct values start where it changes (months before
            # 1970 are negative).
            first_of_month = np.ones(month_of_row.size, dtype=bool)
            first_of_month[1:] = month_of_row[1:] != month_of_row[:-1]
            labels = _month_labels(month_of_row[first_of_month])
        with self._step("drop rows stored before"):
            earlier = self._partition_files(kind.code, sorted(set(labels.values())), existing)
            if earlier and table.num_rows:
                keep = self._not_stored(con, table, earlier)
                table, month_of_row = table.filter(pa.array(keep)), month_of_row[keep]
        stored = table.num_rows
        cuts = np.flatnonzero(np.diff(month_of_row)) + 1
        bounds = [0, *cuts.tolist(), stored] if stored else [0]

        def parquet(part: pa.Table) -> Callable[[Path], None]:
            def run(temp: Path) -> None:
                _write_parquet(part, temp, row_group_size=self.row_group_size)

            return run

        parts_to_write = [
            (labels[int(month_of_row[a])], parquet(table.slice(a, b - a)))
            for a, b in itertools.pairwise(bounds)
        ]
        write = self._write_files(
            kind=kind.code, batch_id=batch_id, tag=tag, parts=parts_to_write, stored=stored, threads=threads
        )
        rows_read = valid - slow_ok.num_rows + slow_read
        return IngestResult(
            batch_id=batch_id, kind=kind.code, rows_read=rows_read, rows_used=stored,
            rows_rejected=rejected, duplicate_rows=rows_read - stored - rejected,
            blank_rows=blank_rows, header_row=header_index + 1, encoding=encoding, fast=True, write=write,
            months=[label for label, _ in parts_to_write], native=True,
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
        row_no = table.column("row_no").to_numpy()
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
    ) -> IngestResult:
        with self._step("rejects"):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ingest_rejects AS SELECT row_no, reject_field AS field, "
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


def _stored_records_sql(files: Sequence[Path]) -> str:
    """The record keys of stored files, for the anti-join that drops rows stored before."""
    listing = ", ".join(sql.quote(str(p)) for p in files)
    return f"(SELECT {', '.join(RECORD_KEY)} FROM read_parquet([{listing}]))"


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
    blank = " AND ".join(f"trim(coalesce(c{i}, ''), {sql.quote(_BLANK)}) = ''" for i in range(width))
    id_col = f"c{positions['id_number']}"
    named = ", ".join(f'c{pos} AS "{name}"' for name, pos in positions.items())
    row_sql = f", {row} AS _row" if row else ""
    return (
        f"(SELECT {named}{row_sql}, CASE WHEN substr({id_col}, 1, 1) BETWEEN '0' AND '9' THEN false "
        f"WHEN trim(coalesce({id_col}, ''), {sql.quote(_BLANK)}) <> '' THEN false "
        f"ELSE {blank} END AS _blank FROM {source})"
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


def _data_end(buf: np.ndarray) -> int:
    """The file without its trailing line ends (empty last lines, which DuckDB skips too)."""
    end = int(buf.size)
    while end > 0 and buf[end - 1] in (10, 13):
        end -= 1
    return end


def _append_slow_rows(scan: native.Scan, slow_ok: pa.Table) -> int:
    """Put the SQL-normalised valid rows after the scan's rows; how many."""
    slow_day = slow_ok.column("event_date").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int32)
    slow_key = slow_ok.column("id_key").to_numpy(zero_copy_only=False).astype(np.int64)
    slow_month, slow_dom = _months_and_days(slow_day)
    added = scan.append(
        {
            "id_key": slow_key, "day": slow_day, "month": slow_month,
            "sort_key": (slow_key.astype(np.uint64) << np.uint64(5)) | (slow_dom - 1).astype(np.uint64),
            "row_no": slow_ok.column("row_no").to_numpy(zero_copy_only=False),
        },
        slow_ok.column("name_key").combine_chunks(),
        slow_ok.column("detail").combine_chunks(),
    )  # fmt: skip
    return int(added.size)


def _numbers(arrow_type: pa.DataType, values: np.ndarray) -> pa.Array:
    """A contiguous numpy array as an Arrow array without a copy (`pa.array` converts value by
    value: 2.3 s for 20 M int64 here)."""
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def _store_table(rows: native.Ordered, batch_id: int) -> pa.Table:
    """Ordered rows in the store's columns (no copies: Arrow arrays over the scan's memory)."""
    n = int(rows.id_key.size)
    rows.spare[:] = batch_id
    return pa.table(
        {
            "id_key": _numbers(pa.int64(), rows.id_key),
            "event_date": _numbers(pa.date32(), rows.day),
            "end_date": pa.nulls(n, pa.date32()),
            "sub": pa.nulls(n, pa.string()),
            "detail": pa.LargeStringArray.from_buffers(
                n, pa.py_buffer(rows.detail_off), pa.py_buffer(rows.detail_data)
            ),
            "name_key": pa.LargeStringArray.from_buffers(
                n, pa.py_buffer(rows.name_off), pa.py_buffer(rows.name_data)
            ),
            "batch_id": _numbers(pa.int64(), rows.spare),
            "row_no": _numbers(pa.int64(), rows.row_no),
        }
    )


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


def _month_labels(months: np.ndarray) -> dict[int, str]:
    """`YYYY-MM` of each distinct month (months since 1970-01)."""
    return {int(m): f"{1970 + int(m) // 12:04d}-{int(m) % 12 + 1:02d}" for m in np.unique(months)}


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
    (row,) = con.execute(query).fetchall()  # fetched to the end: the connection is free again
    return int(row[0])


def _sniff(path: Path, kind: FeedKind) -> tuple[int, str, int, dict[str, int], str]:
    """(header row index, delimiter, header width, logical column positions, encoding) of a
    UTF-8 CSV, found as `zige.engine.readers` finds them; `NotFastPath` otherwise."""
    if path.suffix.lower() not in readers.CSV_SUFFIXES:
        raise NotFastPath("not a CSV file")
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
            return header_index, delimiter, len(cells), positions, encoding
    raise NotFastPath("no header found by the fast path")


def _lines_in(text: str, delimiter: str, records: int) -> int:
    """How many lines the first `records` CSV records of `text` take."""
    reader = readers._csv_rows(text, delimiter)
    for _ in range(records):
        next(reader)
    return int(reader.line_num)


def _trailing_empty_lines(path: Path) -> int:
    """Empty lines at the end of the file (DuckDB skips them, and they shift no row number)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    stripped = tail.rstrip(b"\r\n")
    ends = tail[len(stripped) :].count(b"\n")
    return max(0, ends - 1)


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
    "ROW_GROUP",
    "STORE_COLUMNS",
    "BatchManifest",
    "BatchWrite",
    "EvidenceStore",
    "IngestResult",
    "NotFastPath",
]
