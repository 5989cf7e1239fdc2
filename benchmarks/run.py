"""Benchmarks: `zige bench` (the province-scale store, issue 6), and `certify` on CSV provinces.

    .venv/bin/python benchmarks/run.py [zige bench options]   # the same as `zige bench` / `make bench`
    .venv/bin/python benchmarks/run.py files --sizes 20000 200000

`files` benchmarks `zige certify` on generated CSV provinces (the file path, messy inputs):

For each size it prints:
- the whole command (`zige certify` in a child process): wall time and peak memory (max RSS),
  and the time of each step as the command reports it in summary.json;
- the decision step two ways on the same staged data: the SQL chain in DuckDB (what zige runs)
  against the baseline, the same rules applied person by person in Python (`zige.rules.decide`,
  the straightforward implementation), with the ratio. Both must agree on every status count,
  or the benchmark fails.

Generated provinces are cached in bench-data/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from zige import rules  # noqa: E402
from zige.demo import generate_province  # noqa: E402
from zige.engine.pipeline import Certification, CertifyConfig, discover_feeds  # noqa: E402

AS_OF = date(2026, 11, 30)


def province(size: int) -> tuple[Path, Path]:
    target = ROOT / "bench-data" / f"province-{size}"
    marker = target / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        generated = generate_province(target, recipients=size, as_of=AS_OF, seed=7)
        marker.write_text(f"{time.perf_counter() - started:.1f}s\n")
        return generated.roster, generated.feeds
    return target / "roster.csv", target / "feeds"


def run_cli(roster: Path, feeds: Path, out: Path) -> tuple[float, float, dict[str, float], int]:
    """Wall seconds, peak RSS in MB, per-step timings and rows read of one `zige certify`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "zige"), "certify", "--roster", str(roster), "--feeds", str(feeds),
         "--as-of", AS_OF.isoformat(), "--out", str(out)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # ru_maxrss of children is the largest child so far; runs go from small to large sizes.
    peak = max(peak_kb, before) / 1024
    return wall, peak, summary["timings_s"], summary["totals"]["rows_read"]


def python_baseline(roster: Path, feeds: Path) -> tuple[float, float, Counter[str], Counter[str]]:
    """Decide with SQL and with per-person Python on the same staged tables."""
    config = CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=ROOT / "bench-data" / "unused")
    run = Certification(config)
    run.stage(discover_feeds(feeds, config.kinds))
    started = time.perf_counter()
    run.decide()
    sql_seconds = time.perf_counter() - started
    sql_counts: Counter[str] = Counter(
        dict(run.con.execute("SELECT status, count(*) FROM decisions GROUP BY status").fetchall())
    )
    started = time.perf_counter()
    people = run.con.execute(
        "SELECT person_no, id_number, benefit_status, status_since, status_reason, monthly_amount, mobile, "
        "retirement_date, last_certified_on FROM recipients"
    ).fetchall()
    records: dict[str, list[rules.Record]] = defaultdict(list)
    for ident, kind, day, sub, end in run.con.execute(
        "SELECT e.id_number, e.feed_kind, e.event_date, CASE WHEN e.feed_kind = 'sentence' THEN "
        "CASE WHEN e.sub = 'custodial' THEN '有期徒刑' ELSE '缓刑' END ELSE e.sub END, e.end_date "
        "FROM evidence e SEMI JOIN recipients r USING (id_number)"
    ).fetchall():
        records[ident].append(rules.Record(kind=kind, day=day, sub=sub or "", end_date=end))
    py_counts: Counter[str] = Counter()
    for person_no, ident, benefit, since, reason, amount, mobile, retired, last in people:
        recipient = rules.Recipient(
            person_no=person_no, id_number=ident, benefit_status=benefit, status_since=since,
            status_reason=reason, monthly_amount=amount, mobile=mobile, retirement_date=retired,
            last_certified_on=last,
        )  # fmt: skip
        py_counts[rules.decide(recipient=recipient, records=records[ident], as_of=AS_OF).status] += 1
    py_seconds = time.perf_counter() - started
    run.con.close()
    return sql_seconds, py_seconds, sql_counts, py_counts


def files_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--full", action="store_true", help="also 500,000 recipients")
    parser.add_argument("--no-baseline", action="store_true", help="skip the per-person Python baseline")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([50_000, 500_000] if args.full else [50_000])
    failed = False
    print(f"{'recipients':>10} {'rows read':>11} {'certify s':>10} {'peak MB':>8}  "
          f"{'decide SQL s':>12} {'decide Python s':>15} {'ratio':>6}  slowest step")  # fmt: skip
    for size in sorted(sizes):
        roster, feeds = province(size)
        out = ROOT / "bench-data" / f"out-{size}"
        wall, peak, timings, rows = run_cli(roster, feeds, out)
        steps = {k: v for k, v in timings.items() if k != "total"}
        slowest = max(steps, key=lambda k: steps[k])
        if args.no_baseline:
            sql_s = py_s = float("nan")
            agree = True
        else:
            sql_s, py_s, sql_counts, py_counts = python_baseline(roster, feeds)
            agree = sql_counts == py_counts
            if not agree:
                failed = True
                print(f"  status counts differ: SQL {dict(sql_counts)} vs Python {dict(py_counts)}")
        print(
            f"{size:>10,} {rows:>11,} {wall:>10.1f} {peak:>8.0f}  {sql_s:>12.2f} {py_s:>15.2f} "
            f"{py_s / sql_s:>5.1f}x  {slowest} ({steps[slowest]:.1f}s of {timings['total']:.1f}s)"
        )
        print("           steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in steps.items()))
    return 1 if failed else 0


def main() -> int:
    if sys.argv[1:2] == ["files"]:
        return files_main(sys.argv[2:])
    from zige.bench.cli import bench

    bench.main(args=sys.argv[1:], prog_name="benchmarks/run.py")  # exits with bench's status
    return 0


if __name__ == "__main__":
    sys.exit(main())
