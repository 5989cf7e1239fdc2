"""A run's decision step two ways, on the same generated evidence store (issue 6):

    .venv/bin/python benchmarks/run_engines.py                        # 200,000 recipients x 20,000,000 rows
    .venv/bin/python benchmarks/run_engines.py --recipients 400000 --events 50000000

- baseline: the batch chain over every stored row with its ID as text, the way runs of the
  system of record fed it before they used the scale engine (`Certification.load_normalised` +
  `decide`; the same evidence query as tests/integration/test_scale_certify.py's `full_chain`);
- now: `zige.engine.scale.ScaleRun.full`, what `certification.services.run_execute` runs.

Each in its own child process (peak memory is per process), wall time and peak memory (max
RSS) side by side, with the ratio; the scale engine runs before and after the chain and the
faster run counts (the first may read the store from disk). Both must agree on every status count, or the benchmark
fails. The store is `zige bench`'s (`zige.bench.generate`, cached in bench-data/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

CHILD = """
import json, resource, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from zige.bench.generate import cache_dir, connect, generate
from zige.engine import sql
from zige.engine.pipeline import Certification, CertifyConfig
from zige.engine.scale import ScaleRun, store_scan_sql

n, m, engine = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = generate(cache_dir(Path("bench-data"), recipients=n, events=m, seed=7), recipients=n, events=m, seed=7)
started = time.perf_counter()
if engine == "chain":
    run = Certification(CertifyConfig(roster=Path(), feeds=Path(), as_of=data.as_of, out=Path(), threads=2))
    ident = sql.id_number_from_key_sql("id_key")
    evidence = (
        f"SELECT 1, row_number() OVER (), feed_kind, {ident}, '', '', event_date, end_date, sub, "
        "coalesce(sub, '') || coalesce(CAST(end_date AS VARCHAR), ''), NULL, NULL, NULL "
        f"FROM ({store_scan_sql([data.store])}) s"
    )
    run.load_normalised(recipients=pq.read_table(data.recipients), evidence=evidence)
    run.decide()
    counts = dict(run.con.execute("SELECT status, count(*) FROM decisions GROUP BY ALL").fetchall())
else:
    scale = ScaleRun(connect(2, "12GB"), data.recipients, data.as_of)
    scale.full([data.store])
    counts = scale.status_counts()
print(json.dumps({
    "seconds": time.perf_counter() - started, "status": counts,
    "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
}))
"""


@dataclass(frozen=True)
class Result:
    seconds: float
    peak_gb: float
    status: dict[str, int]


def measure(engine: str, recipients: int, events: int) -> Result:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(recipients), str(events), engine],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    return Result(**json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    args = parser.parse_args()
    # The store is generated (or found) by the first child, and read from disk by it: the scale
    # engine runs once before and once after the chain, and the faster of its two runs counts.
    first = measure("scale", args.recipients, args.events)
    before = measure("chain", args.recipients, args.events)
    now = min(first, measure("scale", args.recipients, args.events), key=lambda r: r.seconds)
    print(f"{'engine':<34} {'wall':>8} {'peak':>8}")
    for label, result in (("batch chain over ID text (before)", before), ("ScaleRun (runs now)", now)):
        print(f"{label:<34} {result.seconds:>7.1f}s {result.peak_gb:>6.1f}GB")
    same = before.status == now.status
    print(
        f"run engines: {args.recipients:,} recipients x {args.events:,} rows | chain "
        f"{before.seconds:.1f}s scale {now.seconds:.1f}s x{before.seconds / now.seconds:.0f} | "
        f"status counts {'agree' if same else 'DISAGREE'}: {dict(sorted(now.status.items()))}"
    )
    if not same:
        print(f"chain {dict(sorted(before.status.items()))}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
