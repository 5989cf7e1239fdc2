"""Compaction of the evidence store (小文件合并): a store fragmented by daily imports, before and after.

    .venv/bin/python benchmarks/compaction.py                    # 200,000 recipients x 20,000,000 rows
    .venv/bin/python benchmarks/compaction.py --repeat 5 --people 100

1. `zige bench`'s generated store (`zige.bench.generate`, cached under --work; one file per kind
   and month) is re-split into daily imports: each kind-month's rows by their day, one batch
   with its own file and manifest per kind and day (what ~14 agencies' daily files leave after
   two years), written as the ingest writes them (`_write_parquet`: zstd, 16,384-row groups,
   sorted by key, date, row). Same rows.
2. `EvidenceStore.compact` on a hard-linked copy of it, --repeat times (a compaction never
   changes a file in place): wall and CPU time, rows/s, files before and after; then the sweep
   of the replaced files (grace 0).
3. A person's lookup as the person page does it (`feeds.selectors.evidence_for_person`): read
   every batch's manifest, resolve them to files (`EvidenceStore.resolve`: batch files and
   merged ones), then `WHERE id_key = ?` over them on one DuckDB kept by the process (256 MB),
   for --people recipients in turn, --repeat rounds; fragmented and compacted alternately.
4. `ScaleRun.full` over the fragmented and the compacted store (`EvidenceStore.scan_sql()`, the
   query the system of record's runs give it) and over the generated store, alternately,
   --repeat times each: every status count must be the same, or the benchmark fails.

The machine's load (`os.getloadavg`) is printed before and after: the timings are medians with
their range, not a quiet machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from zige.bench.generate import BenchData, cache_dir, connect, generate  # noqa: E402
from zige.engine import sql  # noqa: E402
from zige.engine.scale import ScaleRun  # noqa: E402
from zige.engine.store import (  # noqa: E402
    MANIFEST_DIR,
    ROW_GROUP,
    BatchManifest,
    EvidenceStore,
    _write_parquet,
)
from zige.ids import id_from_store_key  # noqa: E402


def fragment(data: BenchData, target: Path) -> int:
    """The generated store as daily imports (see the module docstring); returns the batches."""
    if (target / "done.json").exists():
        return int(json.loads((target / "done.json").read_text())["batches"])
    if target.exists():
        shutil.rmtree(target)
    (target / MANIFEST_DIR).mkdir(parents=True)
    days: dict[tuple[str, str], list[tuple[str, str, Any]]] = {}  # (day, kind) -> (month, kind, rows)
    for path in sorted(data.store.glob("kind=*/month=*/*.parquet")):
        kind, month = path.parent.parent.name.removeprefix("kind="), path.parent.name.removeprefix("month=")
        table = pq.read_table(path)
        table = table.sort_by([("event_date", "ascending"), ("id_key", "ascending"), ("row_no", "ascending")])
        day = table.column("event_date")
        for value in pc.unique(day).to_pylist():
            mask = pc.is_null(day) if value is None else pc.equal(day, value)
            days[(str(value), kind)] = (month, kind, table.filter(mask))
    batch = 0
    for (_, kind), (month, _, rows) in sorted(days.items()):
        batch += 1
        rows = rows.sort_by([("id_key", "ascending"), ("event_date", "ascending"), ("row_no", "ascending")])
        ids = pa.array(np.full(rows.num_rows, batch, dtype=np.int64))
        rows = rows.set_column(rows.schema.get_field_index("batch_id"), "batch_id", ids)
        relative = f"kind={kind}/month={month}/b{batch}-daily.parquet"
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        _write_parquet(rows, target / relative, row_group_size=ROW_GROUP)
        manifest = BatchManifest(batch, kind, "daily", (relative,), rows.num_rows)
        (target / manifest.path).write_text(manifest.to_json(), encoding="utf-8")
    (target / "done.json").write_text(json.dumps({"batches": batch}))
    return batch


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def cpu_times() -> float:
    t = os.times()
    return t.user + t.system


def compact_copies(fragmented: Path, work: Path, repeat: int) -> tuple[list[dict[str, Any]], Path]:
    results = []
    for n in range(repeat):
        copy = work / f"compacted-{n}"
        if copy.exists():
            shutil.rmtree(copy)
        subprocess.run(["cp", "-al", str(fragmented), str(copy)], check=True)
        estore = EvidenceStore(copy)
        files = len(estore.files())
        started, cpu = time.perf_counter(), cpu_times()
        result = estore.compact(now=datetime.now(UTC))
        wall, used = time.perf_counter() - started, cpu_times() - cpu
        rows = sum(p.rows for p in result.partitions)
        started = time.perf_counter()
        swept = estore.compact(now=datetime.now(UTC), grace=timedelta(0))
        results.append({
            "seconds": wall, "cpu": used, "rows": rows, "rows_per_s": rows / wall, "partitions": len(result.partitions),
            "files_before": files, "files_after": len(estore.files()),
            "bytes_before": sum(p.bytes_before for p in result.partitions),
            "bytes_after": sum(p.bytes_after for p in result.partitions),
            "sweep_seconds": time.perf_counter() - started, "removed": len(swept.removed),
            "largest": max((p.rows, p.seconds, p.kind, p.month) for p in result.partitions),
        })  # fmt: skip
    return results, work / "compacted-0"


def people(data: BenchData, count: int) -> list[int]:
    """Recipients with routine records (travellers: `r % 20 < 9`), spread over the roll."""
    keys = pq.read_table(data.recipients, columns=["id_key"]).column("id_key").to_pylist()
    travellers = [k for i, k in enumerate(keys) if i % 20 < 9]
    step = max(1, len(travellers) // count)
    return travellers[::step][:count]


def lookups(root: Path, keys: list[int], con: duckdb.DuckDBPyConnection) -> dict[str, list[float]]:
    """Each person's lookup as the person page does it: manifests, resolve, then the query."""
    estore = EvidenceStore(root)
    paths = sorted(p.relative_to(root).as_posix() for p in (root / MANIFEST_DIR).glob("b*.json"))
    listing, query, total, found = [], [], [], 0
    for key in keys:
        started = time.perf_counter()
        files = estore.resolve([estore.manifest(p) for p in paths])
        listed = time.perf_counter()
        rows = con.execute(
            f"SELECT batch_id, row_no, feed_kind, {sql.record_kind_sql()} AS record_kind, event_date, end_date, "
            f"sub, detail FROM ({estore.read_sql(files)}) WHERE id_key = ? AND "
            f"{sql.id_number_from_key_sql('id_key')} = ?",
            [key, id_from_store_key(key)],
        ).fetchall()
        done = time.perf_counter()
        found += len(rows)
        listing.append(listed - started)
        query.append(done - listed)
        total.append(done - started)
    return {
        "listing": listing,
        "query": query,
        "total": total,
        "rows": [float(found)],
        "files": [float(len(files))],
    }


def full_run(data: BenchData, store: Any) -> tuple[float, dict[str, int]]:
    con = connect(2, "12GB")
    run = ScaleRun(con, data.recipients, data.as_of)
    started = time.perf_counter()
    run.full(store)
    seconds = time.perf_counter() - started
    counts = dict(sorted(run.status_counts().items()))
    con.close()
    return seconds, counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--work", type=Path, default=None, help="default bench-data/compaction-r<n>-e<m>")
    args = parser.parse_args()
    work = args.work or ROOT / "bench-data" / f"compaction-r{args.recipients}-e{args.events}"
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load_before": os.getloadavg(), "started": datetime.now(UTC).isoformat()}
    data = generate(
        cache_dir(work, recipients=args.recipients, events=args.events, seed=7),
        recipients=args.recipients, events=args.events, seed=7, progress=print,
    )  # fmt: skip
    started = time.perf_counter()
    batches = fragment(data, work / "fragmented")
    report["fragment"] = {"batches": batches, "seconds": time.perf_counter() - started, "rows": data.rows}
    print(f"fragmented store: {batches:,} daily batches of {data.rows:,} rows", flush=True)

    report["compaction"], compacted = compact_copies(work / "fragmented", work, args.repeat)
    print(json.dumps(report["compaction"], default=str), flush=True)

    keys = people(data, args.people)
    con = duckdb.connect(config={"memory_limit": "256MB"})  # as the person page keeps one
    rounds: dict[str, dict[str, list[float]]] = {"fragmented": {}, "compacted": {}}
    for _ in range(args.repeat):
        for name, root in (("fragmented", work / "fragmented"), ("compacted", compacted)):
            got = lookups(root, keys, con)
            for part, values in got.items():
                rounds[name].setdefault(part, []).append(
                    statistics.median(values) if part not in ("rows", "files") else values[0]
                )
    report["lookup_ms"] = {
        name: {part: {k: v * (1000 if part not in ("rows", "files") else 1) if k != "n" else v
                      for k, v in spread(values).items()} for part, values in parts.items()}
        for name, parts in rounds.items()
    }  # fmt: skip
    print(json.dumps(report["lookup_ms"]), flush=True)
    assert rounds["fragmented"]["rows"] == rounds["compacted"]["rows"], "the lookups found other rows"

    runs: dict[str, list[float]] = {"fragmented": [], "compacted": [], "generated": []}
    counts: dict[str, dict[str, int]] = {}
    for _ in range(args.repeat):
        for name, store in (
            ("fragmented", EvidenceStore(work / "fragmented").scan_sql()),
            ("compacted", EvidenceStore(compacted).scan_sql()),
            ("generated", [data.store]),
        ):
            seconds, status = full_run(data, store)
            runs[name].append(seconds)
            assert counts.setdefault(name, status) == status
    assert counts["fragmented"] == counts["compacted"] == counts["generated"], counts
    report["full_run_s"] = {name: spread(values) for name, values in runs.items()}
    report["status"] = counts["compacted"]
    report["load_after"] = os.getloadavg()
    report["finished"] = datetime.now(UTC).isoformat()
    print(json.dumps(report, indent=1, default=str))
    (work / "report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
