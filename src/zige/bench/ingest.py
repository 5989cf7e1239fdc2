"""Ingest benchmark (issue 6 item 2): a messy rail feed, normalised into the evidence store.

`measure_ingest` generates (once, cached in `workdir`) a CSV of a rail-like feed with the mess
agencies send — IDs with spaces, lower-case x, full-width digits, 15-digit old numbers, wrong
check digits and empty cells; dates in every format of docs/rules.md §4; exact duplicates written
differently — then times, in the same process, a warm-up round and three timed ones (medians
reported, the first round's figures beside them), each:

- the plain read: DuckDB's `read_csv` of the same file, every column into a table (all text),
  and, for reference, `count(*)` over it;
- the ingest: `EvidenceStore.ingest_csv` into a fresh store: sniff the header, then the native
  scan (zige.engine.native: C, one thread per core) normalises the rows it is sure of, the same SQL
  as the other path the rest (a side file of their lines), the rows are ordered and deduplicated
  by cache-sized buckets, Parquet is written two months at a time, then the manifest. Without the
  native library (`ZIGE_NATIVE=0`), the SQL path: `read_csv` + normalisation in one pass, line-end
  count, `GROUP BY` + `ORDER BY`, DuckDB's COPY.

The generator is vectorised DuckDB SQL over `range()` (no Python per row); the same rows and
seed give the same file.

The mix, per row: 1 % lower-case x plus a trailing space, 0.5 % spaces inside, 0.5 % full-width
digits, 1 % 15-digit numbers, 0.5 % wrong check digits, 0.2 % empty IDs; dates 92 % ISO, the
rest `2026/3/5`, `20260305`, `2026年3月5日`, `2026.03.05` and with a time part; 0.5 % of the rows
repeat the row before them (the same trip, written differently).
"""

from __future__ import annotations

import shutil
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.sql import check_char_parts_sql
from zige.engine.store import EvidenceStore

RAIL = next(k for k in BUILTIN_KINDS if k.code == "rail")
AS_OF = date(2026, 11, 30)
_STATIONS = (
    "['太原南', '北京西', '大同', '运城北', '临汾西', '西安北', '石家庄', '郑州东', '忻州西', '长治东']"
)
_NAMES = "['张三', '李 四', '王五', '赵六六', '钱七', '孙八', '周九', '吴十', '郑 十一', '冯国强']"


def _h(expr: str, salt: int) -> str:
    """A non-negative pseudo-random BIGINT of `expr` (DuckDB's hash, shifted to fit)."""
    return f"CAST(hash({expr}, {salt}) >> 2 AS BIGINT)"


def messy_csv_sql(rows: int, seed: int) -> str:
    """The generated feed as a query (columns in the order of a rail file's header)."""
    check = check_char_parts_sql("hi", "lo", div="float")
    return f"""
WITH base AS (
  SELECT i, CASE WHEN {_h("i", seed + 1)} % 200 = 0 AND i > 0 THEN i - 1 ELSE i END AS j,
         {_h("i", seed + 2)} % 1000 AS mess, {_h("i", seed + 3)} % 100 AS date_mess
  FROM range({rows}) t(i)
), facts AS (
  SELECT i, mess, date_mess,
    140100 + {_h("j", seed + 4)} % 900 AS region,
    DATE '1930-01-01' + CAST({_h("j", seed + 5)} % 25000 AS INTEGER) AS born,
    {_h("j", seed + 6)} % 1000 AS seq,
    DATE '2025-01-01' + CAST({_h("j", seed + 7)} % 365 AS INTEGER) AS day,
    {_h("j", seed + 8)} AS pick
  FROM base
), parts AS (
  SELECT *, year(born) * 10000 + month(born) * 100 + day(born) AS b8 FROM facts
), ids AS (
  SELECT *, region * 1000 + b8 // 100000 AS hi, (b8 % 100000) * 1000 + seq AS lo FROM parts
), full_ids AS (
  SELECT *, CAST(hi AS VARCHAR) || lpad(CAST(lo AS VARCHAR), 8, '0') || {check} AS id18 FROM ids
)
SELECT
  CASE
    WHEN mess < 10 THEN lower(id18) || ' '
    WHEN mess < 15 THEN ' ' || substr(id18, 1, 6) || ' ' || substr(id18, 7)
    WHEN mess < 20 THEN translate(id18, '0123456789X', '０１２３４５６７８９Ｘ')
    WHEN mess < 30 THEN substr(id18, 1, 6) || substr(id18, 9, 9)
    WHEN mess < 35 THEN substr(id18, 1, 17) || CASE WHEN substr(id18, 18, 1) = '1' THEN '2' ELSE '1' END
    WHEN mess < 37 THEN ''
    ELSE id18
  END AS "身份证号",
  {_NAMES}[CAST(pick % 10 AS INTEGER) + 1] AS "姓名",
  CASE
    WHEN date_mess < 2 THEN strftime(day, '%Y/%-m/%-d')
    WHEN date_mess < 4 THEN strftime(day, '%Y%m%d')
    WHEN date_mess < 5 THEN strftime(day, '%Y年%-m月%-d日')
    WHEN date_mess < 6 THEN strftime(day, '%Y.%m.%d')
    WHEN date_mess < 8 THEN strftime(day, '%Y-%m-%d') || ' 08:30:00'
    ELSE strftime(day, '%Y-%m-%d')
  END AS "乘车日期",
  ['G', 'D', 'K', 'T', 'Z'][CAST(pick // 10 % 5 AS INTEGER) + 1] || CAST(pick // 50 % 9000 + 1 AS VARCHAR) AS "车次",
  {_STATIONS}[CAST(pick // 500000 % 10 AS INTEGER) + 1] AS "出发站",
  {_STATIONS}[CAST(pick // 5000000 % 10 AS INTEGER) + 1] AS "到达站"
FROM full_ids
"""


def _connect(workdir: Path, threads: int, memory_limit: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET enable_progress_bar = false")
    spill = workdir / "duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = '{spill}'")
    return con


def messy_csv(workdir: Path, rows: int, seed: int = 7) -> Path:
    """The generated feed file, made once per (rows, seed) and kept in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"rail_messy_{rows}_{seed}.csv"
    if path.is_file():
        return path
    temp = path.with_name(f".{path.name}.tmp")
    con = _connect(workdir, 2, "8GB")
    try:
        con.execute(f"COPY ({messy_csv_sql(rows, seed)}) TO '{temp}' (HEADER, DELIMITER ',')")
    finally:
        con.close()
    temp.replace(path)
    return path


def _timed(con: duckdb.DuckDBPyConnection, query: str) -> float:
    started = time.perf_counter()
    con.execute(query)
    return time.perf_counter() - started


def measure_ingest(
    *,
    workdir: Path,
    rows: int,
    seed: int = 7,
    threads: int = 2,
    memory_limit: str = "12GB",
    rounds: int = 3,
    warmup: int = 1,
) -> dict[str, Any]:
    """Time DuckDB's plain read of the generated CSV and the ingest of it into a fresh store,
    `warmup` + `rounds` times in the same process, each round the plain read then the ingest.

    The figures are the medians of the timed rounds (`rows_per_s` from the median ingest,
    `ratio` = median ingest / median plain read, the plain read being every column into a
    table; `count_read_s`, a `count(*)` over `read_csv`, is given for reference); `first` holds
    the first round's, which the warm-up leaves out: on a virtual machine that hands freed
    memory back to its host, the first pass over fresh memory costs up to twice a later one for
    the plain read and the ingest alike (benchmarks/fresh_memory.py, docs/performance.md), which
    is the machine's state rather than the import's speed. Each round's figures are in
    `rounds_s` as (plain read, ingest) seconds (`first` is None without a warm-up)."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be >= 1 and warmup >= 0 (got {rounds}, {warmup})")
    workdir = Path(workdir)
    path = messy_csv(workdir, rows, seed)
    con = _connect(workdir, threads, memory_limit)
    try:
        done = [
            _ingest_round(con, workdir=workdir, path=path, rows=rows, seed=seed)
            for _ in range(warmup + rounds)
        ]
    finally:
        con.close()
    timed = done[warmup:]
    ingest_s = statistics.median(r["ingest_s"] for r in timed)
    plain_s = statistics.median(r["plain_read_s"] for r in timed)
    count_s = statistics.median(r["count_read_s"] for r in timed)
    # The steps and counts of the round whose ingest took the median time (the middle one).
    middle = sorted(timed, key=lambda r: r["ingest_s"])[(len(timed) - 1) // 2]
    first = done[0]
    return {
        **middle,
        "ingest_s": round(ingest_s, 3),
        "plain_read_s": round(plain_s, 3),
        "count_read_s": round(count_s, 3),
        "rows_per_s": round(rows / ingest_s) if ingest_s else None,
        "ratio": round(ingest_s / plain_s, 3) if plain_s else None,
        "ratio_to_count": round(ingest_s / count_s, 3) if count_s else None,
        "rounds": rounds,
        "warmup": warmup,
        "rounds_s": [(r["plain_read_s"], r["ingest_s"]) for r in done],
        "first": {
            "ingest_s": first["ingest_s"],
            "plain_read_s": first["plain_read_s"],
            "rows_per_s": first["rows_per_s"],
            "ratio": first["ratio"],
        }
        if warmup
        else None,  # without a warm-up, the first round is one of the timed
    }


def _ingest_round(
    con: duckdb.DuckDBPyConnection, *, workdir: Path, path: Path, rows: int, seed: int
) -> dict[str, Any]:
    """One round of `measure_ingest`: the plain read, then the ingest into a fresh store."""
    source = f"read_csv('{path}', all_varchar = true)"
    count_s = _timed(con, f"SELECT count(*) FROM {source}")
    plain_s = _timed(con, f"CREATE OR REPLACE TEMP TABLE plain_read AS SELECT * FROM {source}")
    con.execute("DROP TABLE plain_read")
    root = workdir / f"store-{rows}-{seed}"
    shutil.rmtree(root, ignore_errors=True)
    estore = EvidenceStore(root)
    started, cpu = time.perf_counter(), time.process_time()
    result = estore.ingest_csv(con, path=path, kind=RAIL, batch_id=1, tag=f"s{seed}", as_of=AS_OF)
    ingest_s, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu
    store_bytes = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    return {
        "rows": rows,
        "ingest_s": round(ingest_s, 3),
        "ingest_cpu_s": round(ingest_cpu, 3),
        "plain_read_s": round(plain_s, 3),
        "count_read_s": round(count_s, 3),
        "rows_per_s": round(rows / ingest_s) if ingest_s else None,
        "ratio": round(ingest_s / plain_s, 3) if plain_s else None,
        "rejected": result.rows_rejected,
        "used": result.rows_used,
        "duplicates": result.duplicate_rows,
        "months": len(result.months),
        "fast_path": result.fast,
        "native": result.native,
        "native_note": estore.native_note,
        "csv_bytes": path.stat().st_size,
        "store_bytes": store_bytes,
        "plain_read": "read_csv(all_varchar) of every column into a DuckDB table",
        "steps": {k: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for k, (w, c) in estore.timings.items()},
    }
