"""A province's daily run through the system of record (`zige run`), the fast bulk paths against
the plain ones, side by side in the same run.

    .venv/bin/python benchmarks/daily_run.py                          # 500,000 recipients, 2 rounds
    .venv/bin/python benchmarks/daily_run.py --recipients 2000000 --rounds 2
    .venv/bin/python benchmarks/daily_run.py --recipients 2000000 --database postgres

The province is the one `benchmarks/web_load.py` loads into bench-data/web-<n>/<database> (and,
on PostgreSQL, the database `zige_load_<n>`); it is generated and loaded here through the command
line when missing (`zige import roster`, `zige import feed` for every file, the first `zige run`
as of 2026-11-30). Each round copies that data directory (and database: `CREATE DATABASE …
TEMPLATE`) once per mode and runs the next day's run (`zige run --as-of 2026-12-01`: the first
run of a month, so it revises every payment proposal of the month before) in each copy,
alternating. On SQLite:

- **arrow**: as shipped (`ZIGE_SQLITE_ARROW=1`): the roll read through a scratch file and ADBC's
  SQLite driver, the decisions staged as Arrow and inserted by one `INSERT … SELECT`;
- **cursor**: the baseline (`ZIGE_SQLITE_ARROW=0`): the roll fetched through Python's `sqlite3`
  cursor, the decisions inserted by `executemany`.

On PostgreSQL:

- **csv**: as shipped (`ZIGE_PG_CSV_COPY=1`): the decisions written as CSV by DuckDB and sent to
  `COPY … FROM STDIN` as they are;
- **rows**: the baseline (`ZIGE_PG_CSV_COPY=0`): the same `COPY`, fed row by row from Python.

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
import re
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
# database -> mode -> the setting's value (the first mode is the shipped one, the second the baseline)
MODES = {
    "sqlite": {"arrow": ("ZIGE_SQLITE_ARROW", "1"), "cursor": ("ZIGE_SQLITE_ARROW", "0")},
    "postgres": {"csv": ("ZIGE_PG_CSV_COPY", "1"), "rows": ("ZIGE_PG_CSV_COPY", "0")},
}
PG_URL = "postgres://postgres@127.0.0.1"


def loaded(database: str, recipients: int) -> web_load.Target:
    """The loaded province (loaded when missing)."""
    data_dir = web_load.ROOT / "bench-data" / f"web-{recipients}" / database
    url = ""
    if database == "postgres":
        url = f"{PG_URL}/zige_load_{recipients}"
        if not web_load.pg_database_exists(PG_URL, f"zige_load_{recipients}"):
            (data_dir / ".loaded").unlink(missing_ok=True)
    target = web_load.Target(database, data_dir, url)
    if not (data_dir / ".loaded").exists():
        roster, feeds = web_load.province(recipients)
        print(f"loading {recipients:,} recipients into {data_dir} …", flush=True)
        if url:
            web_load.pg_recreate(PG_URL, f"zige_load_{recipients}")
        web_load.load_fresh(target, roster, feeds, password="bench-daily-run")
    return target


def _pg_copy(source: str, name: str) -> str:
    """A fresh copy of PostgreSQL database `source` named `name` (only zige_daily_* are dropped)."""
    if not re.fullmatch(r"zige_daily_[a-z]+_\d+", name):
        raise SystemExit(f"refusing to drop database {name!r}")
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return f"{PG_URL}/{name}"


def _pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_RUN_SQL = (
    "SELECT started_at, finished_at, summary FROM certification_run WHERE as_of = {} AND status = 'succeeded'"
)


def one_run(source: web_load.Target, mode: str) -> dict[str, Any]:
    """Copy `source`, run the next day's run in the copy with `mode`, return its figures."""
    copy = source.data_dir.parent / f"daily-{source.database}-{mode}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(source.data_dir, copy, ignore=shutil.ignore_patterns("*.log", ".loaded"))
    url, database = "", ""
    if source.url:
        database = f"zige_daily_{mode}_{source.url.rsplit('_', 1)[1]}"
        url = _pg_copy(source.url.rsplit("/", 1)[1], database)
    subprocess.run(["sync"], check=False)  # the copy's pages on disk, not competing with the run
    target = web_load.Target(source.database, copy, url)
    web_load.zige(target, ["migrate"], timeout=900)
    setting, value = MODES[source.database][mode]
    env = target.env() | {setting: value}
    started = time.time()
    done = subprocess.run(
        [str(web_load.ZIGE), "run", "--as-of", NEXT_DAY.isoformat()],
        env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"zige run ({mode}) failed: {done.stderr[-2000:]}")
    if url:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as pg:
            row = pg.execute(_RUN_SQL.format("%s"), [NEXT_DAY]).fetchone()
        _pg_drop(database)
    else:
        with sqlite3.connect(copy / "zige.sqlite3") as con:
            row = con.execute(_RUN_SQL.format("?"), [NEXT_DAY.isoformat()]).fetchone()
    shutil.rmtree(copy)
    if row is None:
        raise SystemExit(f"zige run ({mode}): no succeeded run as of {NEXT_DAY}")
    started_at, finished_at, summary = row
    if isinstance(summary, str):
        summary = json.loads(summary)

    def epoch(value: str | dt.datetime) -> float:  # Django stores UTC without the offset on SQLite
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()

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
    parser.add_argument("--database", choices=sorted(MODES), default="sqlite")
    args = parser.parse_args(argv)
    source = loaded(args.database, args.recipients)
    modes = list(MODES[args.database])
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for round_no in range(1, args.rounds + 1):
        for mode in modes:
            print(f"round {round_no}: {mode} …", flush=True)
            results[mode].append(one_run(source, mode))
    columns = ("wall", "run", "roll", "decide", "save", "after")
    print()
    print(f"the daily run of {results[modes[0]][0]['recipients']:,} recipients on {args.database} "
          f"(zige run --as-of {NEXT_DAY}); medians of {args.rounds} round(s), seconds")  # fmt: skip
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
    (fast, fast_s), (plain, plain_s) = ((m, medians[m]["wall"]) for m in modes)
    print(f"daily run ({args.database}): {fast} {fast_s:.1f}s {plain} {plain_s:.1f}s ratio {plain_s / fast_s:.2f} "
          f"| same status counts: {'yes' if len(statuses) == 1 else 'NO'}")  # fmt: skip
    if len(statuses) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
