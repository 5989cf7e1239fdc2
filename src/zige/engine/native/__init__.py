"""The native fast path of the evidence store's CSV ingest (`fastcsv.c`), loaded with ctypes.

Built by `python -m zige.engine.native` (which `make setup` runs) into `_fastcsv.so` next to the
source, with the machine's C compiler and no Python headers. ctypes releases the GIL for the
duration of each call, so `scan_file` runs one scan per core on separate byte ranges of the file
(and `order_rows` starts a second thread of its own, with pthreads).

Without the library (no compiler, or `ZIGE_NATIVE=0`) the store uses its SQL path, which gives the
same store, only slower: `available()` says which one runs.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import mmap
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "fastcsv.c"
LIBRARY = HERE / "_fastcsv.so"
OK = 0  # zige_scan returns ZIGE_OK, or ZIGE_ABORT / ZIGE_FULL (reason in abort_reason)
# Tests: every line split by the scan's byte loop, not 16 bytes at a time (fastcsv.c, the fast split).
BYTE_LOOP = False
FULL_REASON = 5  # an output buffer too small (status ZIGE_FULL)
ABORT_REASONS = {
    1: "an empty line",
    2: "a row of another width",
    3: "a quoted value spanning lines",
    4: "invalid UTF-8",
    6: "a carriage return not followed by a line feed",
}

# The rejects the scan gives itself (REJECT_* in fastcsv.c): code -> the SQL path's reason. Both
# are that path's first failing check of the row, the ID's (`zige.engine.sql.fast_id_sql`).
REJECT_REASONS = {1: "missing_value", 2: "bad_id_checksum"}

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_I32 = ctypes.c_int32


class _ScanArgs(ctypes.Structure):
    """Mirror of `zige_scan_args` in fastcsv.c (same order and types)."""

    _fields_ = [
        ("buf", _P), ("begin", _I64), ("end", _I64), ("width", _I32), ("delim", _I32),
        ("id_col", _I32), ("name_col", _I32), ("date_col", _I32), ("n_other", _I32),
        ("other_cols", _P), ("other_required", _P), ("birth_low", _I32), ("birth_high", _I32),
        ("max_rows", _I64), ("row_base", _I64),
        ("id_key", _P), ("day", _P), ("month", _P), ("sort_key", _P), ("row_no", _P),
        ("name_start", _P), ("name_end", _P), ("name_data", _P), ("name_pos", _I64), ("name_limit", _I64),
        ("detail_start", _P), ("detail_end", _P), ("detail_data", _P), ("detail_pos", _I64), ("detail_limit", _I64),
        ("slow_data", _P), ("slow_cap", _I64),
        ("reject_row", _P), ("reject_code", _P), ("reject_end", _P), ("reject_data", _P), ("reject_cap", _I64),
        ("n_fast", _I64), ("n_lines", _I64), ("n_slow", _I64), ("slow_bytes", _I64), ("abort_line", _I64),
        ("n_reject", _I64), ("status", _I32), ("abort_reason", _I32), ("byte_loop", _I32),
    ]  # fmt: skip


def build(*, force: bool = False, quiet: bool = False) -> Path | None:
    """Compile `fastcsv.c` into `_fastcsv.so` (when missing or older than the source)."""
    if not force and LIBRARY.exists() and LIBRARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return LIBRARY
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    program = compiler.split()[0]
    if shutil.which(program) is None:
        if not quiet:
            print(f"zige.engine.native: no C compiler ({program}); the store ingests through SQL only")
        return None
    temp = LIBRARY.with_name(f".{LIBRARY.name}.{os.getpid()}.tmp")
    command = [
        *compiler.split(),
        "-O3",
        "-std=gnu99",
        "-pthread",
        "-shared",
        "-fPIC",
        "-o",
        str(temp),
        str(SOURCE),
    ]
    subprocess.run(command, check=True)
    temp.replace(LIBRARY)
    if not quiet:
        print(f"zige.engine.native: built {LIBRARY}")
    return LIBRARY


@cache
def _library() -> Any:
    if os.environ.get("ZIGE_NATIVE", "1") == "0" or not LIBRARY.exists():
        return None
    lib = ctypes.CDLL(str(LIBRARY))
    lib.zige_count_lines.restype = _I64
    lib.zige_count_lines.argtypes = [_P, _I64, _I64]
    lib.zige_scan.restype = _I32
    lib.zige_scan.argtypes = [ctypes.POINTER(_ScanArgs)]
    lib.zige_order_rows.restype = _I64
    lib.zige_order_rows.argtypes = [
        _I64, *([_P] * 11), _I32, _I64, _P, _I64, *([_P] * 9), _I32, _I64, _I64, _I64, _P,
        _P, _I64, _P, _I64, _P, _I64,
    ]  # fmt: skip
    lib.zige_utf8_valid.restype = _I32
    lib.zige_utf8_valid.argtypes = [_P, _I64]
    lib.zige_bucket_row_bytes.restype = _I64
    lib.zige_bucket_row_bytes.argtypes = []
    return lib


def available() -> bool:
    """Whether the native library is built and enabled (`ZIGE_NATIVE` is not `0`)."""
    return _library() is not None


def _ptr(array: npt.NDArray[Any]) -> int:
    return int(array.ctypes.data)


def small_pages(count: int, dtype: Any) -> npt.NDArray[Any]:
    """An uninitialised array of `count` items (like `np.empty`) on memory of its own in the
    kernel's small pages. NumPy asks for transparent huge pages for large arrays; on a virtual
    machine that reports free memory to its host (the development machines,
    benchmarks/fresh_memory.py) a fresh huge page is one the host has taken back, and filling it
    costs 1.7-2.3 s a GB against about 0.45 s in small pages: the scan's 1 GB of arrays took
    2.1-2.4 s in huge pages, 1.35-1.6 s in small ones (docs/performance.md).

    A mapping of 1 MB or more comes from the `POOL` when one there is free and large enough: its
    pages are in memory already, where a fresh one costs the kernel a fault and a zeroed page
    each. The memory is free again when the last array or Arrow buffer over it goes."""
    size = max(1, count * np.dtype(dtype).itemsize)
    if size < POOL_SMALLEST:
        area = _mapping(size)
    else:
        taken = POOL.take(size)
        if taken is None:
            taken = _mapping(POOL.size_class(size))
            POOL.add(taken)
        area = taken
    return np.frombuffer(area, dtype=dtype, count=count)


def _mapping(size: int) -> mmap.mmap:
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        area.madvise(mmap.MADV_NOHUGEPAGE)
    return area


POOL_SMALLEST = 1 << 20  # smaller arrays come and go with malloc's own reuse


@dataclass
class _Kept:
    area: mmap.mmap
    advised: bool = False  # handed back to the kernel as reclaimable (MADV_FREE) since its last use


class MappingPool:
    """The native ingest's large mappings, kept between imports in one process.

    An import maps about 1.6 GB of scratch memory per 10 M rows (the scan's arrays, the buckets
    of `order_rows`) and, without a pool, gives it back at its end. On these virtual machines the
    next import's fresh pages then cost 0.32-0.40 s a GB (the kernel's fault and zeroing, and the
    host's page given back): 16-20 % of an import's CPU. A worker that imports one file after
    another (a morning's feeds, a backlog) uses the same pages again instead.

    A mapping is free when nothing refers to it but the pool: no NumPy array, view or Arrow
    buffer over it is left (CPython's reference count says so; a mapping still referred to is
    never handed out). `recycle()`, at the end of an import, marks the free ones MADV_FREE: the
    kernel may take their pages back when memory runs short (the next use then gets fresh zero
    pages, as without the pool), and otherwise they stay where they are. At most `keep` free
    mappings are kept (the oldest others are unmapped). Sizes are rounded up to a class (at
    most a fifth more, virtual only: pages never touched cost nothing), so that the next day's
    file, a little longer, fits in today's mappings. `ZIGE_NATIVE_POOL=0` turns it off."""

    def __init__(self, *, keep: int = 48, enabled: bool = True) -> None:
        self.keep = keep
        self.enabled = enabled
        self.fill_on_reuse: int | None = None  # tests: a reused mapping filled with this byte first
        self.reuses = 0  # mappings handed out again
        self._kept: list[_Kept] = []
        self._lock = threading.Lock()
        probe = _Kept(mmap.mmap(-1, 1))
        self._unused_refs = sys.getrefcount(probe.area)  # the pool's own and the call's
        probe.area.close()

    @staticmethod
    def size_class(size: int) -> int:
        """The smallest class of `size` bytes or more: 2^(k/4) MB, in whole pages (at most 19 %
        and a page above `size`; a class is its own class)."""

        def of(k: int) -> int:
            return -(-math.ceil(POOL_SMALLEST * 2 ** (k / 4)) // mmap.PAGESIZE) * mmap.PAGESIZE

        k = max(0, math.ceil(4 * math.log2(max(size, 1) / POOL_SMALLEST)))
        while k > 0 and of(k - 1) >= size:
            k -= 1
        while of(k) < size:
            k += 1
        return of(k)

    def _free(self, kept: _Kept) -> bool:
        return sys.getrefcount(kept.area) <= self._unused_refs

    def take(self, size: int) -> mmap.mmap | None:
        """The smallest free mapping of `size` bytes or more (None: map a new one)."""
        if not self.enabled:
            return None
        with self._lock:
            best: _Kept | None = None
            for kept in self._kept:
                if (
                    len(kept.area) >= size
                    and self._free(kept)
                    and (best is None or len(kept.area) < len(best.area))
                ):
                    best = kept
            if best is None:
                return None
            best.advised = False
            self.reuses += 1
            self._kept.remove(best)
            self._kept.append(best)  # the most recently used last
            area = best.area
        if self.fill_on_reuse is not None:
            np.frombuffer(area, dtype=np.uint8)[:size].fill(self.fill_on_reuse)
        return area

    def add(self, area: mmap.mmap) -> None:
        if self.enabled:
            with self._lock:
                self._kept.append(_Kept(area))

    def recycle(self) -> None:
        """Mark the free mappings reclaimable, and unmap the oldest past `keep` free ones."""
        with self._lock:
            free = [kept for kept in self._kept if self._free(kept)]
            for kept in free[: max(0, len(free) - self.keep)]:
                self._kept.remove(kept)
                kept.area.close()
            for kept in free[max(0, len(free) - self.keep) :]:
                if not kept.advised and hasattr(mmap, "MADV_FREE"):
                    kept.area.madvise(mmap.MADV_FREE)
                kept.advised = True

    def clear(self) -> None:
        """Unmap every free mapping (those still in use are forgotten, and go with their arrays)."""
        with self._lock:
            for kept in self._kept:
                if self._free(kept):
                    kept.area.close()
            self._kept.clear()

    def held_bytes(self) -> int:
        """The mappings' sizes (virtual: what was touched of them is what they hold)."""
        with self._lock:
            return sum(len(kept.area) for kept in self._kept)


POOL = MappingPool(enabled=os.environ.get("ZIGE_NATIVE_POOL", "1") != "0")


# The per-row arrays of a scan: name -> dtype.
ROW_ARRAYS = {
    "id_key": np.int64, "day": np.int32, "month": np.int32, "sort_key": np.uint64, "row_no": np.int64,
    "name_start": np.int64, "name_end": np.int64, "detail_start": np.int64, "detail_end": np.int64,
}  # fmt: skip


@dataclass(frozen=True)
class _Region:
    """One range of whole lines and where its rows and texts go in the shared arrays."""

    begin: int
    end: int
    lines: int  # room for this many rows (an estimate, or its line feeds + 1)
    row_at: int
    first_row: int  # its lines are numbered from here (the file's first; `_scan_ranges` moves them on)
    name_at: int
    name_cap: int
    detail_at: int
    detail_cap: int


@dataclass(frozen=True)
class Rejects:
    """The rows of a range the scan rejected itself: spreadsheet row numbers, reason codes
    (`REJECT_REASONS`), and the ID cells' values as Arrow string buffers (`ends`: each value's
    end in `data`, the first starting at 0)."""

    rows: npt.NDArray[np.int64]
    codes: npt.NDArray[np.uint8]
    ends: npt.NDArray[np.int64]
    data: npt.NDArray[np.uint8]


@dataclass
class Scan:
    """A scanned file: per-row arrays shared by all ranges (range k's fast rows at
    `[row_at_k, row_at_k + fast_k)`, then room for the rows the SQL path normalises from `tail`
    on), the text buffers (row i's name key is `name_data[name_start[i]:name_end[i]]`), the
    lines each range had, the slow lines' text of each and the rows each rejected itself."""

    arrays: dict[str, npt.NDArray[Any]]
    name_data: npt.NDArray[np.uint8]
    detail_data: npt.NDArray[np.uint8]
    ranges: list[tuple[int, int]]  # (first row index, fast rows) of each range
    lines: list[int]
    slow: list[bytes]
    tail: int
    name_tail: int
    detail_tail: int
    rejects: list[Rejects] = field(default_factory=list)  # of each range (none: `order_rows`' tests)

    def append(self, columns: dict[str, npt.NDArray[Any]], names: Any, details: Any) -> npt.NDArray[np.int64]:
        """Put the SQL path's rows (`columns` by name; `names` and `details` Arrow strings) after
        the fast rows; their indices."""
        n = len(names)
        at = self.tail
        for name, values in columns.items():
            self.arrays[name][at : at + n] = values
        for texts, data, tail in (
            ("name", self.name_data, self.name_tail),
            ("detail", self.detail_data, self.detail_tail),
        ):
            values = (names if texts == "name" else details).cast(pa.large_string())
            if not n:
                continue
            offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[
                values.offset : values.offset + n + 1
            ]
            first, last = int(offsets[0]), int(offsets[-1])
            if last > first:
                data[tail : tail + last - first] = np.frombuffer(values.buffers()[2], dtype=np.uint8)[
                    first:last
                ]
            self.arrays[f"{texts}_start"][at : at + n] = offsets[:-1] - first + tail
            self.arrays[f"{texts}_end"][at : at + n] = offsets[1:] - first + tail
        return np.arange(at, at + n, dtype=np.int64)


class ScanAborted(Exception):
    """The file holds something only the SQL path reads (then the whole file goes there)."""


class _ScanFull(ScanAborted):
    """A range had more rows (or slow text) than its estimate made room for (`scan_file`)."""


def utf8_valid(data: bytes) -> bool | None:
    """Whether `data` is valid UTF-8 by the scan's check (None: not on this CPU)."""
    buf = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(1, dtype=np.uint8)
    got = int(_library().zige_utf8_valid(_ptr(buf), len(data)))
    return None if got < 0 else bool(got)


def line_ends(buf: npt.NDArray[np.uint8], begin: int, end: int) -> int:
    lib = _library()
    return int(lib.zige_count_lines(_ptr(buf), begin, end))


def _scan(
    buf: npt.NDArray[np.uint8],
    region: _Region,
    arrays: dict[str, npt.NDArray[Any]],
    name_data: npt.NDArray[np.uint8],
    detail_data: npt.NDArray[np.uint8],
    *,
    width: int,
    delimiter: str,
    id_col: int,
    name_col: int,
    date_col: int,
    other_cols: list[int],
    other_required: list[bool],
    birth_low: int,
    birth_high: int,
) -> tuple[int, int, bytes, Rejects]:
    """Scan one region; (fast rows, lines, slow lines' text, the rows it rejected itself)."""
    lib = _library()
    others = np.asarray(other_cols, dtype=np.int32)
    required = np.asarray(other_required, dtype=np.uint8)
    rows = region.lines
    # a slow line gains its number and a delimiter. Only reserved: untouched pages cost nothing.
    slow_data = small_pages(region.end - region.begin + rows * 24, np.uint8)
    # A reject's value is its ID cell: no longer than its line.
    reject_row, reject_code = small_pages(rows, np.int64), small_pages(rows, np.uint8)
    reject_end, reject_data = (
        small_pages(rows + 1, np.int64),
        small_pages(region.end - region.begin + 1, np.uint8),
    )

    def row_ptr(name: str) -> int:
        array = arrays[name]
        return _ptr(array) + region.row_at * array.itemsize

    args = _ScanArgs(
        _ptr(buf), region.begin, region.end, width, ord(delimiter), id_col, name_col, date_col, len(other_cols),
        _ptr(others), _ptr(required), birth_low, birth_high,
        rows, region.first_row,
        *(row_ptr(k) for k in ("id_key", "day", "month", "sort_key", "row_no")),
        row_ptr("name_start"), row_ptr("name_end"), _ptr(name_data), region.name_at, region.name_at + region.name_cap,
        row_ptr("detail_start"), row_ptr("detail_end"), _ptr(detail_data), region.detail_at,
        region.detail_at + region.detail_cap,
        _ptr(slow_data), slow_data.size,
        _ptr(reject_row), _ptr(reject_code), _ptr(reject_end), _ptr(reject_data), reject_data.size,
    )  # fmt: skip
    args.byte_loop = int(BYTE_LOOP)
    status = lib.zige_scan(ctypes.byref(args))
    if status != OK:
        reason = ABORT_REASONS.get(args.abort_reason, "an output buffer too small")
        error = _ScanFull if args.abort_reason == FULL_REASON else ScanAborted
        raise error(f"{reason} at data line {args.abort_line + 1}")
    n = int(args.n_reject)
    ends = reject_end[:n]
    rejects = Rejects(reject_row[:n], reject_code[:n], ends, reject_data[: int(ends[-1]) if n else 0])
    return int(args.n_fast), int(args.n_lines), slow_data[: args.slow_bytes].tobytes(), rejects


def split_points(buf: npt.NDArray[np.uint8], begin: int, end: int, parts: int) -> list[int]:
    """Byte offsets cutting `[begin, end)` into about `parts` ranges of whole lines."""
    cuts = [begin]
    for k in range(1, parts):
        target = begin + (end - begin) * k // parts
        if target <= cuts[-1]:
            continue
        found = np.flatnonzero(buf[target : min(end, target + (1 << 20))] == 10)
        if found.size == 0:
            continue
        cuts.append(target + int(found[0]) + 1)
    cuts.append(end)
    return [c for i, c in enumerate(cuts) if i == 0 or c > cuts[i - 1]]


def scan_file(
    buf: npt.NDArray[np.uint8], begin: int, end: int, *, first_row: int, threads: int, **options: Any
) -> Scan:
    """Scan `buf[begin:end]` (whole lines; the first is spreadsheet row `first_row`) in
    `threads` ranges at once (small files: one); `ScanAborted` when the SQL path must read it.

    Each range's rows get room for an estimate of its lines (`estimated_lines`), so that the
    file is read once, by the scan, rather than first by a count of its line feeds (a pass over
    memory that cost about 5 % of an import's CPU): a range with more lines than that stops
    (`_ScanFull`) and the file is scanned again with room for its counted lines. The ranges
    number their rows from `first_row` each, and the later ranges' numbers move on by the lines
    of those before them once all are scanned."""
    parts = max(1, threads) if end - begin > SPLIT_FROM_BYTES else 1
    cuts = split_points(buf, begin, end, parts)
    pairs = list(itertools.pairwise(cuts))
    try:
        return _scan_ranges(buf, pairs, [estimated_lines(buf, a, b) for a, b in pairs], first_row, options)
    except _ScanFull:
        pass
    if len(pairs) > 1:
        with ThreadPoolExecutor(len(pairs)) as pool:
            counts = list(pool.map(lambda pair: line_ends(buf, *pair) + 1, pairs))
    else:
        counts = [line_ends(buf, a, b) + 1 for a, b in pairs]
    try:
        return _scan_ranges(buf, pairs, counts, first_row, options)
    except _ScanFull as exc:  # room for every line and its text: not expected
        raise ScanAborted(str(exc)) from None


# A file larger than this is scanned in `threads` ranges at once.
SPLIT_FROM_BYTES = 4 << 20
# The share of room a range's rows get above its estimated lines, and the bytes sampled for it.
ESTIMATE_MARGIN = 1.25
ESTIMATE_SAMPLE = 1 << 20


def estimated_lines(buf: npt.NDArray[np.uint8], begin: int, end: int) -> int:
    """An estimate, from two samples of the range (its first and its middle MB), of the lines
    of `buf[begin:end]`, with a margin above it: the room `scan_file` makes for its rows."""
    size = end - begin
    if size <= 2 * ESTIMATE_SAMPLE:
        return line_ends(buf, begin, end) + 1
    middle = begin + size // 2
    feeds = max(
        line_ends(buf, begin, begin + ESTIMATE_SAMPLE), line_ends(buf, middle, middle + ESTIMATE_SAMPLE)
    )
    return int(size * (feeds + 1) / ESTIMATE_SAMPLE * ESTIMATE_MARGIN) + 1024


def _scan_ranges(
    buf: npt.NDArray[np.uint8],
    pairs: list[tuple[int, int]],
    room: list[int],
    first_row: int,
    options: dict[str, Any],
) -> Scan:
    """`scan_file`'s scan of the ranges `pairs`, each with room for `room` lines."""
    others = len(options["other_cols"])
    regions: list[_Region] = []
    row_at = name_at = detail_at = 0
    for (a, b), lines in zip(pairs, room, strict=True):
        # A row's name and detail are no longer than its line (plus separators).
        name_cap, detail_cap = b - a + 1, b - a + lines * (others + 1)
        regions.append(_Region(a, b, lines, row_at, first_row, name_at, name_cap, detail_at, detail_cap))
        row_at, name_at, detail_at = row_at + lines, name_at + name_cap, detail_at + detail_cap
    # Room after the fast rows for the SQL path's rows and texts: no more rows than lines, texts
    # no longer than theirs (and the two slots more that `order_rows`' text offsets take). Only
    # reserved: the pages never written cost nothing.
    arrays = {name: small_pages(2 * row_at + 2, dtype) for name, dtype in ROW_ARRAYS.items()}
    name_data = small_pages(2 * name_at + 1, np.uint8)
    detail_data = small_pages(2 * detail_at + 1, np.uint8)

    def run(region: _Region) -> tuple[int, int, bytes, Rejects]:
        return _scan(buf, region, arrays, name_data, detail_data, **options)

    if len(regions) <= 1:
        results = [run(r) for r in regions]
    else:
        with ThreadPoolExecutor(len(regions)) as pool:
            results = list(pool.map(run, regions))
    # Each range numbered its rows from `first_row`: the later ones move on by the lines before them.
    before = 0
    for region, (fast, lines, _, rejects) in zip(regions, results, strict=True):
        if before:
            arrays["row_no"][region.row_at : region.row_at + fast] += before
            rejects.rows[:] += before
        before += lines
    return Scan(
        arrays, name_data, detail_data,
        ranges=[(r.row_at, fast) for r, (fast, *_) in zip(regions, results, strict=True)],
        lines=[result[1] for result in results], slow=[result[2] for result in results],
        rejects=[result[3] for result in results],
        tail=row_at, name_tail=name_at, detail_tail=detail_at,
    )  # fmt: skip


# Rows a bucket of `order_rows` should hold: a bucket's rows and texts stay in the cache.
BUCKET_ROWS = 8192
MAX_BUCKETS = 1 << 22


@dataclass
class Ordered:
    """Rows in the store's order, duplicates dropped: the columns and the texts (Arrow buffers)."""

    id_key: npt.NDArray[np.int64]
    day: npt.NDArray[np.int32]
    month: npt.NDArray[np.int32]
    row_no: npt.NDArray[np.int64]
    name_off: npt.NDArray[np.int64]
    name_data: npt.NDArray[np.uint8]
    detail_off: npt.NDArray[np.int64]
    detail_data: npt.NDArray[np.uint8]


def order_rows(
    scan: Scan,
    ranges: list[tuple[int, int]],
    *,
    bucket_rows: int = BUCKET_ROWS,
    threads: int = 2,
    split_from: int = 65_536,
) -> list[Ordered]:
    """The rows of `ranges` ((first index, count) into the scan's arrays) in the store's order
    (month, id_key, day, row number) without exact duplicates (same key, day, name and detail:
    the first row of the file wins): zige_order_rows, by cache-sized buckets, the last pass on
    `threads` (1 or 2) threads from `split_from` rows on. The rows come in parts, one after the
    other in that order: two when the last pass ran on two threads, each written over the
    scan's memory where its pages are in memory already (the second part's texts where the
    scan's second range wrote its own), and not moved together."""
    lib = _library()
    a = scan.arrays
    ranges = [(at, n) for at, n in ranges if n]
    total = sum(n for _, n in ranges)
    at_arr = np.asarray([at for at, _ in ranges] or [0], dtype=np.int64)
    n_arr = np.asarray([n for _, n in ranges] or [0], dtype=np.int64)
    if total:
        lowest = min(int(a["month"][at : at + n].min()) for at, n in ranges)
        highest = max(int(a["month"][at : at + n].max()) for at, n in ranges)
        months = highest - lowest + 1
        # Splitters: quantiles of a sample of the sort keys (every step-th row).
        step = max(1, total // 65_536)
        sample = np.sort(np.concatenate([a["sort_key"][at : at + n : step] for at, n in ranges]))
        per_month = max(1, min(total // (bucket_rows * months), MAX_BUCKETS // months, sample.size))
        chosen = sample[(np.arange(1, per_month) * sample.size) // per_month]
        # distinct, in order (chosen is sorted; np.unique would import numpy.ma: 45 ms)
        splitters = chosen[np.concatenate([[True], chosen[1:] != chosen[:-1]])] if chosen.size else chosen
        # A range's texts lie one after the other, in its rows' order (`scan_file`, `append`).
        name_bytes = sum(int(a["name_end"][at + n - 1] - a["name_start"][at]) for at, n in ranges)
        detail_bytes = sum(int(a["detail_end"][at + n - 1] - a["detail_start"][at]) for at, n in ranges)
    else:
        lowest, months, name_bytes, detail_bytes = 0, 1, 0, 0
        splitters = np.zeros(0, dtype=np.uint64)
    splitters = np.ascontiguousarray(splitters, dtype=np.uint64)
    # The outputs overwrite the scan's arrays (read only before the outputs are written): their
    # pages are in memory already. id_key (not read: the key is in the sort key) holds the buckets.
    out = Ordered(
        a["sort_key"].view(np.int64), a["day"], a["month"], a["row_no"], a["name_start"], scan.name_data,
        a["detail_start"], scan.detail_data,
    )  # fmt: skip
    assert (
        out.name_off.size >= total + 2
        and out.name_data.size > name_bytes
        and out.detail_data.size > detail_bytes
    )
    # The second part's texts from where the second range's begin, when they fit from there.
    name_from2 = detail_from2 = 0
    if len(ranges) > 1:
        second_at = ranges[1][0]
        name_from2, detail_from2 = int(a["name_start"][second_at]), int(a["detail_start"][second_at])
        if (
            name_from2 + name_bytes >= out.name_data.size
            or detail_from2 + detail_bytes >= out.detail_data.size
        ):
            name_from2 = detail_from2 = 0
    second = np.zeros(4, dtype=np.int64)
    # The buckets' room: from the pool, where the last import's is (its pages in memory).
    room_rows = small_pages(max(1, total) * int(lib.zige_bucket_row_bytes()), np.uint8)
    room_names, room_details = small_pages(name_bytes + 1, np.uint8), small_pages(detail_bytes + 1, np.uint8)
    kept = lib.zige_order_rows(
        len(ranges), _ptr(at_arr), _ptr(n_arr), _ptr(a["sort_key"]), _ptr(a["month"]),
        _ptr(a["row_no"]), _ptr(a["name_start"]), _ptr(a["name_end"]), _ptr(scan.name_data),
        _ptr(a["detail_start"]), _ptr(a["detail_end"]), _ptr(scan.detail_data), lowest, months,
        _ptr(splitters), splitters.size, _ptr(a["id_key"]),
        _ptr(out.id_key), _ptr(out.day), _ptr(out.month), _ptr(out.row_no),
        _ptr(out.name_off), _ptr(out.name_data), _ptr(out.detail_off), _ptr(out.detail_data), threads,
        split_from, name_from2, detail_from2, _ptr(second),
        _ptr(room_rows), total, _ptr(room_names), room_names.size, _ptr(room_details), room_details.size,
    )  # fmt: skip
    del room_rows, room_names, room_details  # free again for the pool
    if kept < 0:
        raise MemoryError("order rows: no memory for the buckets")
    at, rows, names_at, details_at = (int(v) for v in second)
    parts = [_part(out, 0, kept, 0, 0, 0)]
    if rows:
        parts.append(_part(out, at, rows, at + 1, names_at, details_at))
    return parts


def _part(out: Ordered, at: int, rows: int, off_at: int, names_at: int, details_at: int) -> Ordered:
    """`rows` rows of `out` from row `at`, their text offsets from slot `off_at` and texts from
    bytes `names_at` and `details_at` (each part's offsets start at 0)."""
    name_off, detail_off = (
        out.name_off[off_at : off_at + rows + 1],
        out.detail_off[off_at : off_at + rows + 1],
    )
    return Ordered(
        out.id_key[at : at + rows], out.day[at : at + rows], out.month[at : at + rows],
        out.row_no[at : at + rows], name_off, out.name_data[names_at : names_at + int(name_off[-1])],
        detail_off, out.detail_data[details_at : details_at + int(detail_off[-1])],
    )  # fmt: skip
