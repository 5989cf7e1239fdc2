"""Generated recipients and evidence stores for the province-scale benchmark (issue 6 item 4).

Everything is vectorised DuckDB SQL over `range()`: no Python runs per row. The same
(recipients, events, seed, version) always gives the same bytes' worth of facts (the random
numbers are `hash()` of the row number and a salt, never `random()`), so a store is generated
once and cached under `bench-data/`.

Layout (the evidence-store contract of issue 6 item 1):

    <root>/recipients.parquet                               one row per recipient (normalised)
    <root>/store/kind=<kind>/month=<YYYY-MM>/b<batch>.parquet
        id_key BIGINT, event_date DATE, end_date DATE, sub VARCHAR, detail VARCHAR,
        name_key VARCHAR, batch_id BIGINT, row_no BIGINT        -- each file sorted by id_key, event_date

`id_key` is the integer of the ID's first 17 digits (the check digit is implied); `sub` is the
normalised class of the staged feed (`pass`/`fail`, `eligible`/`lost`/`unreachable`,
`dead`/`missing`, `custodial`/`non_custodial`), NULL for the kinds that have none.

The mix (shares of all rows): rail and flight dominate; hospital, checkup, border, app and
terminal authentications; a thin layer of unit confirmations, overseas reviews, deaths,
cremations, declarations, sentences and releases. About a fifth of the rows belong to
recipients. Recipients fall into three groups by `r % 20`: travellers (0-8: trains, flights
and the rest), locally active (9-13: hospital, checkup, app/terminal only) and quiet (14-19:
no routine evidence), and each recipient has a role (`hash % 10000`) that gives the rare
records — deaths, cremations, declarations, unit confirmations, sentences and releases — so
every status and most reasons of docs/rules.md occur (a traveller who dies keeps travelling:
`review`; a quiet one: `stop`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from zige.engine.sql import date_literal, id_number_from_key_sql

GENERATOR_VERSION = 5  # 5: the birth-first store key
INCREMENT_VERSION = 2  # the daily batch (its new losses are dated within the last week)
DEFAULT_AS_OF = date(2026, 11, 15)
MONTHS = 24  # the store holds the 24 months up to the as-of month

# Share of all rows, and the share of a kind's rows that belong to recipients.
BIG_KINDS: dict[str, tuple[float, float]] = {
    "rail": (0.529, 0.20),
    "flight": (0.25, 0.20),
    "hospital": (0.07, 0.30),
    "checkup": (0.05, 0.30),
    "border": (0.03, 0.05),
    "app_auth": (0.04, 0.40),
    "terminal_auth": (0.02, 0.60),
}
RARE_KINDS: dict[str, float] = {
    "unit_confirm": 0.005,
    "overseas_review": 0.001,
    "release": 0.0005,
    "death": 0.002,
    "cremation": 0.0015,
    "declared": 0.0002,
    "sentence": 0.0008,
}
# Recipient groups (r % 20) that produce rows of a big kind.
TRAVELLERS = 9  # groups 0..8
ACTIVE = 14  # groups 0..13
KIND_NO = {k: i for i, k in enumerate([*BIG_KINDS, *RARE_KINDS])}


@dataclass(frozen=True)
class BenchData:
    root: Path
    recipients: Path
    store: Path
    as_of: date
    n_recipients: int
    n_events: int
    seed: int
    rows: int  # rows actually written to the store
    seconds: float  # generation time (of the run that made it)
    bytes: int

    @property
    def population(self) -> int:
        return population(self.n_recipients)


def population(n_recipients: int) -> int:
    """Non-recipients who leave evidence: fifteen times the recipients (a province's travellers)."""
    return max(15 * n_recipients, 1000)


def months(as_of: date) -> list[date]:
    """First days of the store's months, oldest first, ending with the as-of month."""
    index = as_of.year * 12 + as_of.month - 1
    return [date(m // 12, m % 12 + 1, 1) for m in range(index - MONTHS + 1, index + 1)]


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def id_key_sql(p: str, n_recipients: int) -> str:
    """The store key (`zige.ids.store_key`: birth date, sequence, region) of generated person `p`
    (recipients are 0..N-1, older and 14-prefixed).

    Region 14PPCC (11 prefectures x 9 counties), a birth day (days 1-28 of every month: integer
    arithmetic only, always a real date) from the person number, and a 3-digit sequence that
    keeps recipients (000-499) and everyone else (500-999) apart. Recipients are born 1936-1965,
    everyone else 1952-2003.
    """
    p = f"CAST({p} AS BIGINT)"
    region = f"(140000 + (1 + ({p}) % 11) * 100 + 1 + (({p}) // 11) % 9)"
    rest = f"(({p}) // 99)"
    recip = f"(({p}) < {n_recipients})"
    # A multiplier prime to both periods spreads consecutive people over the birth years.
    day = f"CASE WHEN {recip} THEN ({rest} * 7919) % 10080 ELSE ({rest} * 7919) % 17472 END"
    year = f"(CASE WHEN {recip} THEN 1936 ELSE 1952 END + ({day}) // 336)"
    ymd = f"(({year}) * 10000 + (({day}) // 28 % 12 + 1) * 100 + ({day}) % 28 + 1)"
    seq = (
        f"CASE WHEN {recip} THEN ({rest} // 10080) % 500 "
        f"ELSE 500 + (({p}) - {n_recipients}) // 99 // 17472 % 500 END"
    )
    return (
        f"(CAST({ymd} AS BIGINT) * 1000000000 + CAST({seq} AS BIGINT) * 1000000 + CAST({region} AS BIGINT))"
    )


def _h(expr: str, salt: int) -> str:
    """A deterministic pseudo-random UBIGINT of `expr` and a salt."""
    return f"hash({expr}, {salt})"


def recipients_sql(n: int, as_of: date, seed: int) -> str:
    """The normalised roster: one row per recipient with the columns the decisions read."""
    d = date_literal(as_of)
    key = id_key_sql("r", n)
    role = f"{_h('r', seed * 101 + 1)} % 10000"
    h2 = f"{_h('r', seed * 101 + 2)} % 1000"
    h3 = f"{_h('r', seed * 101 + 3)} % 100000"
    return f"""
SELECT person_no, name, name AS name_key, id_key,
  {id_number_from_key_sql("id_key")} AS id_number,
  unit_no, benefit_status, status_since, status_reason, monthly_amount, mobile,
  retirement_date, last_certified_on, grp, role
FROM (
  SELECT r, {key} AS id_key,
    'P' || lpad(CAST(r AS VARCHAR), 9, '0') AS person_no,
    '居民' || CAST(r AS VARCHAR) AS name,
    'U' || lpad(CAST(r % 2003 AS VARCHAR), 5, '0') AS unit_no,
    CASE WHEN {h2} < 40 THEN 'suspended' ELSE 'normal' END AS benefit_status,
    CASE WHEN {h2} < 40 AND {h3} % 10 > 0 THEN CAST({d} - CAST({h3} % 700 AS INTEGER) AS DATE) END
      AS status_since,
    CASE WHEN {h2} < 15 THEN '服刑' WHEN {h2} < 40 THEN '无法联系' END AS status_reason,
    CAST(2000 + {h3} % 4000 + 0.5 AS DECIMAL(18, 2)) AS monthly_amount,
    CASE WHEN {h2} % 10 < 7 THEN '13' || lpad(CAST(r % 1000000000 AS VARCHAR), 9, '0') END AS mobile,
    CAST({d} - CAST(({h3} * 7) % 9000 AS INTEGER) AS DATE) AS retirement_date,
    CASE WHEN {h2} % 10 < 6 THEN CAST({d} - CAST(({h3} * 13) % 720 AS INTEGER) AS DATE) END
      AS last_certified_on,
    r % 20 AS grp, {role} AS role
  FROM range({n}) t(r)
) s
"""


def big_kind_sql(*, kind: str, count: int, month: date, n: int, seed: int, batch: int, row_base: int) -> str:
    """`count` rows of a routine kind dated in `month`: owners drawn from recipients or others.

    One hash per row; its bit fields give the owner class, the recipient group, the day, the
    person and the result.
    """
    share = BIG_KINDS[kind][1]
    salt = seed * 100003 + KIND_NO[kind] * 1009 + (month.year * 12 + month.month) * 7 + batch * 5
    span = (_next_month(month) - month).days
    groups = TRAVELLERS if kind in ("rail", "flight") else ACTIVE
    slots = max(n // 20, 1)
    owner = (
        f"CASE WHEN h % 1024 < {int(share * 1024)} "
        f"THEN least((h // 1048576 % {slots}) * 20 + h // 1024 % {groups}, {n - 1}) "
        f"ELSE {n} + h // 1048576 % {population(n)} END"
    )
    sub = (
        "CASE WHEN h // 72057594037927936 % 100 < 95 THEN 'pass' ELSE 'fail' END"
        if kind in ("app_auth", "terminal_auth")
        else "CAST(NULL AS VARCHAR)"
    )
    return f"""
SELECT {id_key_sql("p", n)} AS id_key,
  CAST({date_literal(month)} + CAST(h // 32768 % {span} AS INTEGER) AS DATE) AS event_date,
  CAST(NULL AS DATE) AS end_date, {sub} AS sub, CAST(NULL AS VARCHAR) AS detail,
  CAST(NULL AS VARCHAR) AS name_key, CAST({batch} AS BIGINT) AS batch_id, {row_base} + i AS row_no
FROM (SELECT i, h, {owner} AS p FROM (SELECT i, {_h("i", salt)} AS h FROM range({count}) t(i)) s0) s
ORDER BY id_key, event_date
"""


def rare_rows_sql(
    *, m: int, n: int, as_of: date, seed: int, batch: int, first: date, spread_days: int = 700
) -> str:
    """Every record of the rare kinds: recipients' by role, everyone else's at random.

    Columns: kind, id_key, event_date, end_date, sub. Recipient rows come from table `roster`.
    """
    d = date_literal(as_of)
    window = (as_of - first).days + 15  # a few days beyond the as-of date too
    h5 = f"{_h('id_key', seed * 101 + 5)}"
    day = f"CAST({d} - CAST({h5} % {spread_days} AS INTEGER) AS DATE)"
    quiet = f"(grp >= {ACTIVE} OR role < 15)"  # the active who die and keep travelling: rare
    role_rows = [
        ("death", f"role < 150 AND {quiet}", day, "NULL", "NULL"),
        ("cremation", f"role < 60 AND {quiet}", f"CAST({day} + 3 AS DATE)", "NULL", "NULL"),
        ("cremation", "role >= 150 AND role < 170", day, "NULL", "NULL"),
        ("declared", "role >= 170 AND role < 180", day, "'dead'", "NULL"),
        ("declared", "role >= 180 AND role < 190", day, "'missing'", "NULL"),
        ("unit_confirm", "role >= 190 AND role < 205", day, "'lost'", "NULL"),
        ("unit_confirm", "role >= 205 AND role < 245", day, "'unreachable'", "NULL"),
        ("sentence", "role >= 245 AND role < 250", day, "'custodial'", "NULL"),
        ("sentence", "role >= 250 AND role < 260", day, "'custodial'", f"CAST({day} + 1100 AS DATE)"),
        ("release", "role >= 255 AND role < 260", f"CAST({day} + CAST({h5} % 300 AS INTEGER) AS DATE)",
         "NULL", "NULL"),
        ("sentence", "role >= 260 AND role < 265", day, "'non_custodial'", "NULL"),
        ("release", "role >= 265 AND role < 270", day, "NULL", "NULL"),
        ("unit_confirm", "role >= 270 AND role < 1000", day, "'eligible'", "NULL"),
        ("overseas_review", "role >= 1000 AND role < 1030", day, "NULL", "NULL"),
    ]  # fmt: skip
    parts = [
        f"SELECT '{kind}' AS kind, id_key, {when} AS event_date, CAST({end} AS DATE) AS end_date, "
        f"CAST({sub} AS VARCHAR) AS sub FROM roster WHERE {cond}"
        for kind, cond, when, sub, end in role_rows
    ]
    subs = {
        "unit_confirm": "CASE WHEN h % 10 < 8 THEN 'eligible' WHEN h % 10 < 9 THEN 'lost' ELSE 'unreachable' END",
        "declared": "CASE WHEN h % 2 = 0 THEN 'dead' ELSE 'missing' END",
        "sentence": "CASE WHEN h % 3 = 0 THEN 'non_custodial' ELSE 'custodial' END",
    }
    for kind, share in RARE_KINDS.items():
        count = int(m * share)
        salt = seed * 100003 + KIND_NO[kind] * 1009 + batch * 5
        end = "CAST(event_date + 1000 AS DATE)" if kind == "sentence" else "CAST(NULL AS DATE)"
        parts.append(
            f"SELECT '{kind}' AS kind, {id_key_sql('p', n)} AS id_key, event_date, {end} AS end_date, "
            f"CAST({subs.get(kind, 'NULL')} AS VARCHAR) AS sub FROM ("
            f"SELECT {n} + {_h('i', salt)} % {population(n)} AS p, {_h('i', salt + 1)} % 1000 AS h, "
            f"CAST({date_literal(first)} + CAST({_h('i', salt + 2)} % {window} AS INTEGER) AS DATE) AS event_date "
            f"FROM range({count}) t(i)) s"
        )
    return " UNION ALL ".join(parts)


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet, COMPRESSION snappy)")


def _month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def write_rare(con: duckdb.DuckDBPyConnection, store: Path, batch: int, *, row_base: int) -> int:
    """Write the table `rare` (kind, id_key, event_date, end_date, sub) into its month partitions."""
    written = 0
    # Physically ordered by kind and day, each partition's filter reads only its row groups.
    con.execute("CREATE OR REPLACE TABLE rare AS SELECT * FROM rare ORDER BY kind, event_date, id_key")
    parts = con.execute(
        "SELECT kind, year(event_date), month(event_date), count(*) FROM rare GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    for kind, year, month, count in parts:
        first = date(year, month, 1)
        where = (
            f"kind = '{kind}' AND event_date >= {date_literal(first)} "
            f"AND event_date < {date_literal(_next_month(first))}"
        )
        _copy(
            con,
            f"SELECT id_key, event_date, end_date, sub, CAST(NULL AS VARCHAR) AS detail, "
            f"CAST(NULL AS VARCHAR) AS name_key, CAST({batch} AS BIGINT) AS batch_id, "
            f"{row_base + written} + row_number() OVER (ORDER BY id_key, event_date, sub) AS row_no "
            f"FROM rare WHERE {where} ORDER BY id_key, event_date",
            store / f"kind={kind}" / f"month={_month_label(first)}" / f"b{batch:06d}.parquet",
        )
        written += int(count)
    return written


def connect(threads: int = 2, memory_limit: str = "12GB") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    return con


def generate(
    root: Path,
    *,
    recipients: int,
    events: int,
    seed: int = 7,
    as_of: date = DEFAULT_AS_OF,
    threads: int = 2,
    memory_limit: str = "12GB",
    progress: Callable[[str], None] | None = None,
) -> BenchData:
    """Generate (or reuse) the recipients and the store for (recipients, events, seed)."""
    meta_path = root / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == GENERATOR_VERSION:
            return _data(root, meta)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    con = connect(threads, memory_limit)
    n = max(recipients, 20)
    roster_path = root / "recipients.parquet"
    con.execute(f"CREATE TABLE roster AS {recipients_sql(n, as_of, seed)}")
    _copy(con, "SELECT * EXCLUDE (grp, role) FROM roster ORDER BY person_no", roster_path)
    store = root / "store"
    months_ = months(as_of)
    rows = 0
    for kind, (share, _) in BIG_KINDS.items():
        per_month = int(events * share) // len(months_)
        say(f"generate {kind}: {per_month * len(months_):,} rows")
        for month in months_:
            query = big_kind_sql(
                kind=kind, count=per_month, month=month, n=n, seed=seed, batch=1, row_base=rows
            )
            _copy(con, query, store / f"kind={kind}" / f"month={_month_label(month)}" / "b000001.parquet")
            rows += per_month
    say("generate the rare kinds")
    con.execute(
        f"CREATE TABLE rare AS {rare_rows_sql(m=events, n=n, as_of=as_of, seed=seed, batch=1, first=months_[0])}"
    )
    rows += write_rare(con, store, 1, row_base=rows)
    con.close()
    seconds = time.perf_counter() - started
    meta = {
        "version": GENERATOR_VERSION, "recipients": n, "events": events, "seed": seed,
        "as_of": as_of.isoformat(), "rows": rows, "seconds": round(seconds, 1),
        "bytes": sum(p.stat().st_size for p in root.rglob("*.parquet")),
    }  # fmt: skip
    meta_path.write_text(json.dumps(meta, indent=2))
    return _data(root, meta)


def _data(root: Path, meta: dict[str, object]) -> BenchData:
    return BenchData(
        root=root, recipients=root / "recipients.parquet", store=root / "store",
        as_of=date.fromisoformat(str(meta["as_of"])), n_recipients=int(str(meta["recipients"])),
        n_events=int(str(meta["events"])), seed=int(str(meta["seed"])), rows=int(str(meta["rows"])),
        seconds=float(str(meta["seconds"])), bytes=int(str(meta["bytes"])),
    )  # fmt: skip


def cache_dir(base: Path, *, recipients: int, events: int, seed: int) -> Path:
    return base / f"store-r{recipients}-e{events}-s{seed}-v{GENERATOR_VERSION}"


def generate_increment(
    data: BenchData, target: Path, *, share: float = 0.01, batch: int = 2, threads: int = 2,
    memory_limit: str = "12GB",
) -> int:  # fmt: skip
    """A day's new batch: `share` x the store's rows, in their own files under `target` (same layout).

    Most rows are dated in the last weeks up to the as-of date; the batch also carries deaths,
    declarations and unit confirmations for recipients who have earlier evidence (their loss
    date changes, which the increment must notice).
    """
    if target.exists():
        shutil.rmtree(target)
    con = connect(threads, memory_limit)
    n, seed = data.n_recipients, data.seed + 1000 * batch
    con.execute(f"CREATE TABLE roster AS {recipients_sql(n, data.as_of, data.seed)}")
    events = int(data.n_events * share)
    months_ = months(data.as_of)[-2:]
    rows = 0
    for kind, (kshare, _) in BIG_KINDS.items():
        per_month = int(events * kshare) // len(months_)
        for month in months_:
            query = big_kind_sql(
                kind=kind, count=per_month, month=month, n=n, seed=seed, batch=batch, row_base=rows
            )
            _copy(
                con, query, target / f"kind={kind}" / f"month={_month_label(month)}" / f"b{batch:06d}.parquet"
            )
            rows += per_month
    # New rare records: fresh roles for a slice of recipients (a different seed), so travellers
    # with trips before and after the new date get a death or a declaration now.
    con.execute(
        "CREATE TABLE roster2 AS SELECT * REPLACE "
        f"({_h('id_key', seed)} % 10000 AS role) FROM roster WHERE {_h('id_key', seed + 9)} % 100 < 3"
    )
    con.execute("DROP TABLE roster")
    con.execute("ALTER TABLE roster2 RENAME TO roster")
    con.execute(
        "CREATE TABLE rare AS "
        + rare_rows_sql(
            m=events, n=n, as_of=data.as_of, seed=seed, batch=batch, first=months_[0], spread_days=7
        )
    )
    rows += write_rare(con, target, batch, row_base=rows)
    con.close()
    return rows
