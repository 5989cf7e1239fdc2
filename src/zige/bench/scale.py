"""The measurements of `zige bench` (issue 6 items 2-4), each on the generated store.

- the scan floor: DuckDB reading the columns the certification needs from the same files;
- the full certification (`zige.engine.scale.ScaleRun.full`), keeping its reduced rows;
- the daily increment: a new batch of 1 % more rows, decided from the kept rows;
- the ingest figure of `zige.bench.ingest.measure_ingest` (messy CSV into a fresh store);
- the baselines of `zige.bench.baselines` (pandas, Splink) on a slice of the recipients, each
  with its status counts, which must equal the engine's on the same people.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from zige.bench.generate import INCREMENT_VERSION, BenchData, connect, generate_increment
from zige.engine import sql
from zige.engine.scale import ScaleRun, floor_sql, store_scan_sql

Say = Callable[[str], None]


@dataclass(frozen=True)
class Round:
    """One round of the full run, the scan floor read right after it, and the same-day increment
    from the state it saved. Rounds follow one another, so that a stretch of a slower machine
    (these virtual machines' speed moves by up to half from one minute to the next) falls on one
    round's figures and their ratios, not on one figure of the median."""

    certify_s: float
    floor_s: float
    increment_s: float | None
    certify_cpu_s: float
    floor_cpu_s: float

    @property
    def ratio(self) -> float:
        return self.certify_s / self.floor_s if self.floor_s else float("nan")

    @property
    def increment_share(self) -> float | None:
        return self.increment_s / self.certify_s if self.increment_s is not None and self.certify_s else None


@dataclass
class Figures:
    """Everything the benchmark measured; None where a part was skipped or is not available.
    With `rounds`, `certify_s`, `floor_s` and `increment_s` are their medians, and the ratios
    the medians of each round's own."""

    data: BenchData
    floor_s: float = 0.0
    certify_s: float = 0.0
    certify_steps: dict[str, float] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    increment_s: float | None = None
    chained_s: float | None = None  # the increment saving the next day's state as well
    next_day_s: float | None = None  # the increment decided one day after the state's date
    increment_rows: int = 0
    increment_status: dict[str, int] = field(default_factory=dict)
    ingest: dict[str, Any] | None = None
    ingest_note: str = ""
    slice_people: int = 0
    slice_rows: int = 0
    engine_slice_s: float | None = None
    engine_slice_status: dict[str, int] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> seconds, status | note
    peak_gb: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # process CPU seconds (both threads)
    rounds: list[Round] = field(default_factory=list)

    def add_round(self, measured: Round) -> None:
        """Keep a round; the figures become the medians of all kept so far."""
        self.rounds.append(measured)
        self.certify_s = statistics.median(r.certify_s for r in self.rounds)
        self.floor_s = statistics.median(r.floor_s for r in self.rounds)
        self.cpu_s["certify"] = statistics.median(r.certify_cpu_s for r in self.rounds)
        self.cpu_s["floor"] = statistics.median(r.floor_cpu_s for r in self.rounds)
        increments = [r.increment_s for r in self.rounds if r.increment_s is not None]
        self.increment_s = statistics.median(increments) if increments else None

    @property
    def ratio(self) -> float:
        if self.rounds:
            return statistics.median(r.ratio for r in self.rounds)
        return self.certify_s / self.floor_s if self.floor_s else float("nan")

    @property
    def increment_share(self) -> float | None:
        """The same-day increment's share of the full run (the median of each round's own)."""
        shares = [share for r in self.rounds if (share := r.increment_share) is not None]
        if shares:
            return statistics.median(shares)
        return self.increment_s / self.certify_s if self.increment_s is not None and self.certify_s else None

    def disagreements(self) -> list[str]:
        """Engines whose status counts on the slice differ from the engine's."""
        return [
            name
            for name, result in self.baselines.items()
            if "status" in result and result["status"] != self.engine_slice_status
        ]


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_gb() -> float:
    """Max RSS of this process and its children so far, in GB (ru_maxrss is in KiB on Linux)."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, children_kb) * 1024 / 1e9


def measure_floor(data: BenchData, *, threads: int, memory_limit: str) -> float:
    con = connect(threads, memory_limit)
    started = time.perf_counter()
    con.execute(floor_sql([data.store])).fetchall()
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def measure_certify(
    data: BenchData, workdir: Path, *, threads: int, memory_limit: str
) -> tuple[float, dict[str, float], dict[str, int], duckdb.DuckDBPyConnection]:
    """The full certification; the connection is returned open (its `decisions` feed the slice)."""
    state = workdir / "state"
    if state.exists():
        shutil.rmtree(state)
    con = connect(threads, memory_limit)
    run = ScaleRun(con, data.recipients, data.as_of)
    started = time.perf_counter()
    run.full([data.store], state=state)
    run.write(workdir / "out")
    seconds = time.perf_counter() - started
    return seconds, dict(run.timings), run.status_counts(), con


def measure_increment(
    data: BenchData,
    workdir: Path,
    *,
    threads: int,
    memory_limit: str,
    share: float = 0.01,
    extras: bool = True,
) -> tuple[float, float | None, float | None, int, dict[str, int]]:
    """Generate a new batch (share x the store's rows) and decide again from the kept rows:
    (seconds, seconds when the next day's state is saved as well, seconds when decided a day
    after the state's date, rows, status counts at the state's date). Without `extras`, the
    same-day increment alone (the two others None)."""
    batch = data.root / f"increment-{int(share * 10000)}bp-v{INCREMENT_VERSION}"
    marker = batch / ".rows"
    if marker.exists():
        rows = int(marker.read_text())
    else:
        rows = generate_increment(data, batch, share=share, threads=threads, memory_limit=memory_limit)
        marker.write_text(str(rows))

    def timed(save: Path | None, days_later: int = 0) -> tuple[float, dict[str, int]]:
        con = connect(threads, memory_limit)
        run = ScaleRun(con, data.recipients, data.as_of + timedelta(days=days_later))
        started = time.perf_counter()
        run.increment(state=workdir / "state", batch=[batch], store=[data.store, batch], save=save)
        run.write(workdir / "out-increment")
        seconds = time.perf_counter() - started
        counts = run.status_counts()
        con.close()
        return seconds, counts

    seconds, counts = timed(None)
    if not extras:
        return seconds, None, None, rows, counts
    # A day of a chain: the same, and the state the next day's increment starts from.
    chained, _ = timed(workdir / "state-next")
    shutil.rmtree(workdir / "state-next")
    # The next day: also decided again, whom the later date can change (`zige.engine.scale.due_again_sql`).
    next_day, _ = timed(None, days_later=1)
    return seconds, chained, next_day, rows, counts


def measure_ingest(workdir: Path, rows: int) -> tuple[dict[str, Any] | None, str]:
    """The ingest measurement (`zige.bench.ingest`) as (figures, note)."""
    from zige.bench import ingest

    return ingest.measure_ingest(workdir=workdir, rows=rows), ""


def ingest_rate(result: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(rows per second, ratio to the plain read) from whatever keys the ingest result uses."""
    if not result:
        return None, None
    rate = next((result[k] for k in ("rows_per_s", "rows_per_second", "rate") if k in result), None)
    ratio = next((result[k] for k in ("ratio", "ratio_to_read", "read_ratio") if k in result), None)
    return (float(rate) if rate is not None else None, float(ratio) if ratio is not None else None)


def slice_frames(
    con: duckdb.DuckDBPyConnection, data: BenchData, people: int
) -> tuple[Any, Any, str]:  # pandas frames; typed loosely so pandas stays an optional import
    """The first `people` recipients (by 个人编号) and every store row of theirs, as pandas frames,
    and a query for the slice's recipients (for the engine's own run on the slice)."""
    recipients_query = f"SELECT * FROM read_parquet({sql.quote(str(data.recipients))}) ORDER BY person_no LIMIT {int(people)}"
    con.execute(f"CREATE OR REPLACE TABLE slice_recipients AS {recipients_query}")
    con.execute(
        "CREATE OR REPLACE TABLE slice_evidence AS "
        f"SELECT e.id_key, e.feed_kind, e.month, e.event_date, e.end_date, e.sub FROM ({store_scan_sql([data.store])}) e "
        "WHERE e.id_key IN (SELECT id_key FROM slice_recipients)"
    )
    recipients = con.execute("SELECT * FROM slice_recipients").df()
    evidence = con.execute("SELECT * EXCLUDE (month) FROM slice_evidence").df()
    return recipients, evidence, "SELECT * FROM slice_recipients"


def engine_on_slice(con: duckdb.DuckDBPyConnection, as_of: date) -> tuple[float, dict[str, int]]:
    """The engine on the slice's rows alone (the baselines' input), timed the same way."""
    run = ScaleRun(con, "SELECT * FROM slice_recipients", as_of)
    started = time.perf_counter()
    run.full("SELECT feed_kind, month, id_key, event_date, end_date, sub FROM slice_evidence")
    seconds = time.perf_counter() - started
    return seconds, run.status_counts()


def run_baselines(recipients: Any, evidence: Any, as_of: date, *, say: Say) -> dict[str, dict[str, Any]]:
    """pandas and Splink (`zige.bench.baselines`) on the slice, each with its status counts.

    A baseline that raises fails the bench: its status counts could not be compared."""
    from zige.bench import baselines

    results: dict[str, dict[str, Any]] = {}
    for name, decide in (("pandas", baselines.pandas_certify), ("splink", baselines.splink_certify)):
        say(f"baseline {name} on {len(recipients):,} recipients, {len(evidence):,} rows")
        started = time.perf_counter()
        decided = decide(recipients=recipients, evidence=evidence, as_of=as_of)
        seconds = time.perf_counter() - started
        status = {str(k): int(v) for k, v in decided["status"].value_counts().items()}
        results[name] = {"seconds": seconds, "status": status}
    return results


def default_slice(recipients: int) -> int:
    return min(50_000, max(recipients // 20, 1))
