"""A province's daily run through the system of record (`zige run`), SQLite through Arrow against
the cursor, side by side in the same run.

    .venv/bin/python benchmarks/daily_run.py                          # 500,000 recipients, 2 rounds
    .venv/bin/python benchmarks/daily_run.py --recipients 2000000 --rounds 2

The province is the one `benchmarks/web_load.py` loads into bench-data/web-<n>/sqlite (generated
and loaded here through the command line when missing: `zige import roster`, `zige import feed`
for every file, the first `zige run` as of 2026-11-30). Each round copies that data directory
twice and runs the next day's run (`zige run --as-of 2026-12-01`: the first run of a month, so
it revises every payment proposal of the month before) in each copy, alternating:

- **arrow**: as shipped (`ZIGE_SQLITE_ARROW=1`): the roll read through a scratch file and ADBC's
  SQLite driver, the decisions staged as Arrow and inserted by one `INSERT … SELECT`;
- **cursor**: the baseline (`ZIGE_SQLITE_ARROW=0`): the roll fetched through Python's `sqlite3`
  cursor, the decisions inserted by `executemany`.

Everything else is the same code in both. It prints, per mode, the median of the rounds: the
command's wall time, the run's own steps (`Run.summary["timings_s"]`: the roll, deciding, saving
the decisions), and the rest after the decisions (reminders, tasks, payment proposals, the
commit); the status counts of both must be equal, or it exits 1. `zige migrate` runs on each
copy first, untimed (a new migration applies to the loaded province).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import web_load  # the province and its loading are web_load's

NEXT_DAY = web_load.AS_OF + dt.timedelta(days=1)
MODES = {"arrow": "1", "cursor": "0"}


def loaded(recipients: int) -> Path:
    """The SQLite data directory of the loaded province (loaded when missing)."""
    target = web_load.Target("sqlite", web_load.ROOT / "bench-data" / f"web-{recipients}" / "sqlite")
    if not (target.data_dir / ".loaded").exists():
        roster, feeds = web_load.province(recipients)
        print(f"loading {recipients:,} recipients into {target.data_dir} …", flush=True)
        web_load.load_fresh(target, roster, feeds, password="bench-daily-run")
    return target.data_dir


def one_run(source: Path, mode: str) -> dict[str, Any]:
    """Copy `source`, run the next day's run in the copy with `mode`, return its figures."""
    copy = source.parent / f"daily-{mode}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.log", ".loaded"))
    subprocess.run(["sync"], check=False)  # the copy's pages on disk, not competing with the run
    target = web_load.Target("sqlite", copy)
    web_load.zige(target, ["migrate"], timeout=900)
    env = target.env() | {"ZIGE_SQLITE_ARROW": MODES[mode]}
    started = time.time()
    done = subprocess.run(
        [str(web_load.ZIGE), "run", "--as-of", NEXT_DAY.isoformat()],
        env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"zige run ({mode}) failed: {done.stderr[-2000:]}")
    with sqlite3.connect(copy / "zige.sqlite3") as con:
        row = con.execute(
            "SELECT started_at, finished_at, summary FROM certification_run WHERE as_of = ? AND status = 'succeeded'",
            [NEXT_DAY.isoformat()],
        ).fetchone()
    shutil.rmtree(copy)
    started_at, finished_at, summary_text = row
    summary = json.loads(summary_text)

    def epoch(text: str) -> float:  # Django stores UTC without the offset on SQLite
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()

    timings = summary["timings_s"]
    return {
        "wall": ended - started,
        "run": epoch(finished_at) - epoch(started_at),
        "roll": timings["load the roll"],
        "decide": timings["decide"],
        "save": timings["save the decisions"],
        "after": ended - epoch(finished_at),
        "status": summary["status"],
        "recipients": summary["recipients"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    source = loaded(args.recipients)
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for round_no in range(1, args.rounds + 1):
        for mode in MODES:
            print(f"round {round_no}: {mode} …", flush=True)
            results[mode].append(one_run(source, mode))
    columns = ("wall", "run", "roll", "decide", "save", "after")
    print()
    print(f"the daily run of {results['arrow'][0]['recipients']:,} recipients on SQLite (zige run --as-of {NEXT_DAY});"
          f" medians of {args.rounds} round(s), seconds")  # fmt: skip
    print(f"{'mode':<8}" + "".join(f"{c:>9}" for c in columns) + "   (range of wall)")
    medians = {}
    for mode, runs in results.items():
        medians[mode] = {c: statistics.median(r[c] for r in runs) for c in columns}
        walls = [r["wall"] for r in runs]
        print(
            f"{mode:<8}"
            + "".join(f"{medians[mode][c]:>9.1f}" for c in columns)
            + f"   ({min(walls):.1f}–{max(walls):.1f})"
        )
    statuses = {json.dumps(r["status"], sort_keys=True) for runs in results.values() for r in runs}
    print(
        "roll: reading the roll; save: storing the decisions; after: reminders, tasks, payment proposals, commit"
    )
    arrow, cursor = medians["arrow"]["wall"], medians["cursor"]["wall"]
    print(f"daily run: arrow {arrow:.1f}s cursor {cursor:.1f}s ratio {cursor / arrow:.2f} | same status counts: "
          f"{'yes' if len(statuses) == 1 else 'NO'}")  # fmt: skip
    if len(statuses) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
