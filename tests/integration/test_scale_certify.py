"""The province-scale path (`zige.engine.scale`) decides exactly what the batch chain decides.

- generated stores (zige.bench.generate) of a few hundred recipients: the reduced path against
  the full chain (`Certification.load_normalised` + `decide` over every stored row), at the
  generator's as-of date and at earlier ones (many rows after D, month boundaries);
- Hypothesis provinces (the strategy of test_engine_matches_oracle: records crowding around
  D, same-day ties, sentences ending on D, dates after D) written as a store, against the
  pure-Python oracle `zige.rules.decide`, with recent windows of 0, 3 and 400 days;
- the daily increment: the kept rows plus a new batch give what a full run over everything
  gives, including a loss reported late (dated before the recent window: the targeted
  re-read) and a later as-of date; only the people whose decision the batch or the later date
  can change are decided again, and the written output (the saved files and the changed rows
  beside them) reads as a full run's files. The oracle's provinces compare the payment
  actions too, at later dates across month ends, deadlines and reminders.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_engine_matches_oracle import Person, provinces
from zige import rules
from zige.bench.generate import (
    GENERATOR_VERSION,
    BenchData,
    connect,
    generate,
    generate_increment,
    recipients_sql,
)
from zige.engine import scale, sql
from zige.engine.kinds import CUSTODIAL_PENALTIES, NON_CUSTODIAL_MARKERS
from zige.engine.pipeline import Certification, CertifyConfig
from zige.engine.scale import ScaleRun, output_sql, store_scan_sql
from zige.ids import id_from_store_key, store_key

DECISION = "person_no, status, reason, evidence_kind, evidence_date, certified_on, due_on, remind, channel"
ACTION = "person_no, action, effective_month, months, amount"


def _scale(
    recipients: Path, stores: list[Path], as_of: date, *, window_days: int = 10, state: Path | None = None
) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]], ScaleRun]:
    run = ScaleRun(connect(), recipients, as_of, window_days=window_days)
    run.full(stores, state=state)
    return (*_outcome(run.con), run)


def _outcome(con: duckdb.DuckDBPyConnection) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    decisions = set(con.execute(f"SELECT {DECISION} FROM decisions").fetchall())
    actions = set(con.execute(f"SELECT {ACTION} FROM actions").fetchall())
    return decisions, actions


def full_chain(
    recipients: Path, stores: list[Path], as_of: date
) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """The batch chain over every stored row (the store is already deduplicated)."""
    config = CertifyConfig(roster=Path("roster"), feeds=Path("feeds"), as_of=as_of, out=Path("out"))
    run = Certification(config)
    ident = sql.id_number_from_key_sql("id_key")
    # Rows differing only in `sub`/`end_date` are different records: give them distinct details.
    evidence = (
        f"SELECT 1, row_number() OVER (), feed_kind, {ident}, '', '', event_date, end_date, sub, "
        "coalesce(sub, '') || coalesce(CAST(end_date AS VARCHAR), ''), NULL, NULL, NULL "
        f"FROM ({store_scan_sql(stores)}) s"
    )
    run.load_normalised(recipients=pq.read_table(recipients), evidence=evidence)
    run.decide()
    outcome = _outcome(run.con)
    run.con.close()
    return outcome


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[BenchData]:
    base = tmp_path_factory.mktemp("scale")
    return [
        generate(base / "s1", recipients=400, events=40_000, seed=1, threads=1, memory_limit="1GB"),
        generate(base / "s2", recipients=3000, events=100_000, seed=2, threads=1, memory_limit="1GB"),
    ]


@pytest.mark.parametrize("shift", [0, 1, 16, 45, 200])
def test_reduced_path_equals_full_chain_on_generated_stores(generated: list[BenchData], shift: int) -> None:
    for data in generated:
        as_of = data.as_of - timedelta(days=shift)
        decisions, actions, run = _scale(data.recipients, [data.store], as_of)
        expected_decisions, expected_actions = full_chain(data.recipients, [data.store], as_of)
        assert decisions == expected_decisions
        assert actions == expected_actions
        run.con.close()


def test_generated_store_has_every_status_and_the_layout(generated: list[BenchData]) -> None:
    data = generated[1]
    decisions, _, run = _scale(data.recipients, [data.store], data.as_of)
    assert {d[1] for d in decisions} == {"eligible", "pending", "review", "stop", "suspend"}
    reasons = {d[2] for d in decisions}
    assert {
        "rail",
        "flight",
        "no_evidence",
        "alive_after_death",
        "death",
        "imprisoned",
        "unreachable",
    } <= reasons
    files = list(data.store.glob("kind=*/month=*/*.parquet"))
    assert {f.parent.parent.name for f in files} >= {"kind=rail", "kind=death", "kind=sentence"}
    schema = pq.read_schema(files[0])
    assert schema.field("id_key").type == pa.int64()
    assert schema.names[:8] == [
        "id_key",
        "event_date",
        "end_date",
        "sub",
        "detail",
        "name_key",
        "batch_id",
        "row_no",
    ]
    # each file sorted by id_key, event_date; a fifth or so of the rows belong to recipients
    keys = run.con.execute(
        f"SELECT count(*) FILTER (WHERE id_key IN (SELECT id_key FROM recipients_input)) / count(*) "
        f"FROM read_parquet('{files[0]}')"
    ).fetchone()
    assert keys is not None
    table = pq.read_table(files[0]).select(["id_key", "event_date"]).to_pylist()
    assert table == sorted(table, key=lambda r: (r["id_key"], r["event_date"]))
    share = run.con.execute(
        f"SELECT avg(CASE WHEN id_key IN (SELECT id_key FROM recipients_input) THEN 1 ELSE 0 END) "
        f"FROM ({store_scan_sql([data.store])})"
    ).fetchone()
    assert share is not None and 0.12 < share[0] < 0.3
    run.con.close()


def test_generator_ids_are_unique_and_valid() -> None:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT id_number, id_key FROM ({recipients_sql(5000, date(2026, 11, 15), 3)})"
    ).fetchall()
    assert len({r[0] for r in rows}) == 5000
    from zige.ids import normalise_id

    for ident, key in rows[:500]:
        assert store_key(ident) == key
        assert id_from_store_key(key) == ident
        assert normalise_id(ident, as_of=date(2026, 11, 15)) == ident  # raises IdError if invalid


def test_increment_equals_full_run_with_late_losses(generated: list[BenchData], tmp_path: Path) -> None:
    data = generated[1]
    state = tmp_path / "state"
    _scale(data.recipients, [data.store], data.as_of, state=state)
    batch = tmp_path / "batch"
    generate_increment(data, batch, share=0.05, threads=1, memory_limit="1GB")
    # Late reports: deaths dated long before the recent window for travellers with trips after.
    con = connect(1, "1GB")
    late = tmp_path / "late"
    con.execute(
        f"""COPY (
          SELECT r.id_key, CAST({sql.date_literal(data.as_of)} - 300 AS DATE) AS event_date,
                 CAST(NULL AS DATE) AS end_date, CAST(NULL AS VARCHAR) AS sub, CAST(NULL AS VARCHAR) AS detail,
                 CAST(NULL AS VARCHAR) AS name_key, 3 AS batch_id, 1 AS row_no,
                 'death' AS kind, strftime(CAST({sql.date_literal(data.as_of)} - 300 AS DATE), '%Y-%m') AS month
          FROM read_parquet('{data.recipients}') r WHERE hash(r.id_key) % 40 = 0
        ) TO '{late}' (FORMAT parquet, PARTITION_BY (kind, month))"""
    )
    # The batch's files sit in their own root; the late file joins them as part of the batch.
    for path in late.rglob("*.parquet"):
        target = batch / path.relative_to(late)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    for later in (0, 3):
        as_of = data.as_of + timedelta(days=later)
        run = ScaleRun(connect(), data.recipients, as_of)
        run.increment(state=state, batch=[batch], store=[data.store, batch])
        assert "re-read" in run.timings, "the late deaths must make the targeted re-read run"
        got = _outcome(run.con)
        expected = full_chain(data.recipients, [data.store, batch], as_of)
        assert got == expected
        assert any(d[2] == "alive_after_death" for d in got[0])
        run.con.close()


def _small_batch(
    con: duckdb.DuckDBPyConnection, data: BenchData, root: Path, picks: list[tuple[str, str, int]]
) -> Path:
    """A batch of one row per pick (person_no, kind, days before the as-of date; an `app_auth`
    row is a failed authentication)."""
    values = ", ".join(f"('{p}', '{k}', {d})" for p, k, d in picks)
    day = f"CAST({sql.date_literal(data.as_of)} - x.days AS DATE)"
    con.execute(
        f"""COPY (
          SELECT r.id_key, {day} AS event_date, CAST(NULL AS DATE) AS end_date,
                 CASE WHEN x.kind = 'declared' THEN 'dead' WHEN x.kind = 'app_auth' THEN 'fail' END AS sub,
                 CAST(NULL AS VARCHAR) AS detail,
                 CAST(NULL AS VARCHAR) AS name_key, 9 AS batch_id, 1 AS row_no,
                 x.kind, strftime({day}, '%Y-%m') AS month
          FROM read_parquet('{data.recipients}') r JOIN (VALUES {values}) x(person_no, kind, days)
            ON r.person_no = x.person_no
        ) TO '{root}' (FORMAT parquet, PARTITION_BY (kind, month))"""
    )
    return root


def test_increment_decides_again_only_the_people_the_batch_touches(
    generated: list[BenchData], tmp_path: Path
) -> None:
    """Same as-of date: only the touched recipients are decided again; the others keep their
    saved decision and actions; the result (and the chained next increment) equals a full run.
    A later as-of date also decides again the people it is due for (`due_again_sql`)."""
    data = generated[1]
    state = tmp_path / "state"
    before, before_actions, run = _scale(data.recipients, [data.store], data.as_of, state=state)
    status = {str(d[0]): str(d[1]) for d in before}
    pending = sorted(p for p, s in status.items() if s == "pending")[:4]
    eligible = sorted(p for p, s in status.items() if s == "eligible")[:3]
    assert len(pending) == 4 and len(eligible) == 3
    picks = [(p, "rail", 1) for p in pending] + [(p, "death", 2) for p in eligible[:2]]
    picks += [(eligible[2], "declared", 0)]
    batch = _small_batch(run.con, data, tmp_path / "batch", picks)
    run.con.close()
    stores = [data.store, batch]
    touched = {p for p, _, _ in picks}

    inc = ScaleRun(connect(), data.recipients, data.as_of)
    inc.increment(state=state, batch=[batch], store=stores, save=tmp_path / "state1")
    assert inc.timings["decided again"] == len(touched)
    got = _outcome(inc.con)
    assert got == full_chain(data.recipients, stores, data.as_of)
    after = {d[0]: d for d in got[0]}
    assert {p for p in touched if after[p][1] != status[p]} == touched  # each touched one moved
    assert {d for d in before if d[0] not in touched} == {d for d in got[0] if d[0] not in touched}
    assert {a for a in before_actions if a[0] not in touched} <= got[1]
    inc.write(tmp_path / "out")
    results = inc.con.execute(f"SELECT * FROM ({output_sql(tmp_path / 'out', 'results')})").fetchall()
    assert len(results) == len(before) and all(len(r[1]) == 18 for r in results)
    inc.con.close()

    # The next day's increment from the merged state, at the same date, then one day later.
    second = _small_batch(
        connect(), data, tmp_path / "batch2", [(pending[0], "death", 0), (eligible[0], "flight", 0)]
    )
    stores2 = [*stores, second]
    for later in (0, 1):
        as_of = data.as_of + timedelta(days=later)
        nxt = ScaleRun(connect(), data.recipients, as_of)
        nxt.increment(state=tmp_path / "state1", batch=[second], store=stores2)
        # A day later, the people whose decision the date itself can change are decided too.
        due = nxt.timings.get("due at the later date", 0.0)
        assert bool(due) == bool(later)
        assert nxt.timings["decided again"] <= 2 + due < len(before)
        assert _outcome(nxt.con) == full_chain(data.recipients, stores2, as_of)
        nxt.con.close()


def test_a_chained_day_writes_only_what_changed(generated: list[BenchData], tmp_path: Path) -> None:
    """A saved increment's state: the base state's kept rows, results and actions as second names
    of its files, the day's kept rows as one more part, and the results and actions of the
    people decided again since the base beside them. A full run saved over it leaves none of
    those."""
    data = generated[1]
    state0 = tmp_path / "state0"
    before, _, run = _scale(data.recipients, [data.store], data.as_of, state=state0)
    people = sorted(str(d[0]) for d in before)
    first = _small_batch(run.con, data, tmp_path / "b1", [(people[0], "rail", 0), (people[1], "death", 1)])
    second = _small_batch(run.con, data, tmp_path / "b2", [(people[2], "death", 0)])
    run.con.close()
    stores = [data.store, first, second]
    changed: set[str] = set()
    for day, batch in ((1, first), (2, second)):
        chained = ScaleRun(connect(), data.recipients, data.as_of)
        chained.increment(
            state=tmp_path / f"state{day - 1}",
            batch=[batch],
            store=stores[: day + 1],
            save=tmp_path / f"state{day}",
        )
        changed |= {str(r[0]) for r in chained.con.execute("SELECT person_no FROM recipients").fetchall()}
        assert _outcome(chained.con) == full_chain(data.recipients, stores[: day + 1], data.as_of)
        chained.con.close()
        state = tmp_path / f"state{day}"
        assert {p.name for p in state.glob("reduced*.parquet")} == {
            "reduced.parquet",
            *(f"reduced-{k:04d}.parquet" for k in range(1, day + 1)),
        }
        for name in ("reduced.parquet", "results.parquet", "actions.parquet"):
            assert (state / name).samefile(state0 / name)
        con = duckdb.connect()
        written = con.execute(f"SELECT person_no FROM read_parquet('{state / 'results-changed.parquet'}')")
        assert sorted(str(r[0]) for r in written.fetchall()) == sorted(changed)
        # The thresholds, merged from the base's and the people decided again, are what the
        # state's loss dates and winners give.
        for table in ("targets", "compact", "saved"):
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{state / table}.parquet')")
        assert sorted(con.execute("SELECT * FROM saved").fetchall()) == sorted(
            con.execute(scale.saved_thresholds_sql()).fetchall()
        )
        con.close()
    # The last state reads as the merge of its files: the same as a full run's.
    nxt = ScaleRun(connect(), data.recipients, data.as_of + timedelta(days=1))
    nxt.increment(state=tmp_path / "state2", batch=[second], store=stores)
    assert _outcome(nxt.con) == full_chain(data.recipients, stores, data.as_of + timedelta(days=1))
    nxt.con.close()
    _scale(data.recipients, stores, data.as_of, state=tmp_path / "state2")[2].con.close()
    assert sorted(p.name for p in (tmp_path / "state2").glob("*.parquet")) == [
        f"{t}.parquet" for t in ("actions", "compact", "rare", "reduced", "results", "saved", "targets")
    ]


def test_a_state_is_replaced_whole_or_not_at_all(
    generated: list[BenchData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`save_state` writes a new directory and swaps it in: a failure while writing leaves the
    earlier state as it was; a directory that is not a state is refused, untouched; a chained
    day cannot be saved over the state it starts from."""
    data = generated[0]
    state = tmp_path / "state"
    _scale(data.recipients, [data.store], data.as_of, state=state)[2].con.close()
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    monkeypatch.setattr(scale, "saved_thresholds_sql", lambda *a, **k: "SELECT no_such_column")
    with pytest.raises(duckdb.Error):
        _scale(data.recipients, [data.store], data.as_of + timedelta(days=1), state=state)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before

    other = tmp_path / "not-a-state"
    other.mkdir()
    (other / "keep.parquet").write_bytes(b"mine")
    with pytest.raises(ValueError, match="not a state directory"):
        _scale(data.recipients, [data.store], data.as_of, state=other)
    assert [p.name for p in other.iterdir()] == ["keep.parquet"]

    run = ScaleRun(connect(), data.recipients, data.as_of)
    with pytest.raises(ValueError, match="beside the state"):
        run.increment(state=state, batch=[data.store], store=[data.store], save=state)
    run.con.close()


def _written(out: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """A written run's results and actions (`output_sql`), sorted."""
    con = duckdb.connect()
    tables = [sorted(con.execute(output_sql(out, t)).fetchall(), key=repr) for t in ("results", "actions")]
    con.close()
    return tables[0], tables[1]


def _written_now(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The run's own results and actions, sorted as `_written` sorts a written run's."""
    tables = [sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in ("results", "actions")]
    return tables[0], tables[1]


def test_a_later_date_decides_again_whom_the_date_changes(generated: list[BenchData], tmp_path: Path) -> None:
    """Decided days later with no new row that matters: the people whose custodial sentence's
    planned end passed, whose roll date came, or whose deadline or reminder came are decided
    again (`due_again_sql`), and the result equals a full run at the later date."""
    data = generated[1]
    later = data.as_of + timedelta(days=10)
    day = sql.date_literal(data.as_of)
    con = connect(1, "1GB")
    # A custodial sentence ending between the two dates for a few recipients: suspended at the
    # state's date, no longer at the later one.
    sentences = tmp_path / "sentences"
    con.execute(
        f"""COPY (
          SELECT r.id_key, CAST({day} - 200 AS DATE) AS event_date, CAST({day} + 5 AS DATE) AS end_date,
                 'custodial' AS sub, CAST(NULL AS VARCHAR) AS detail, CAST(NULL AS VARCHAR) AS name_key,
                 4 AS batch_id, 1 AS row_no, 'sentence' AS kind,
                 strftime(CAST({day} - 200 AS DATE), '%Y-%m') AS month
          FROM read_parquet('{data.recipients}') r
          WHERE r.benefit_status = 'normal' AND hash(r.id_key) % 50 = 0
        ) TO '{sentences}' (FORMAT parquet, PARTITION_BY (kind, month))"""
    )
    # And a last certification the roll dates between the two dates for a few others.
    recipients = tmp_path / "recipients.parquet"
    con.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN hash(id_key) % 50 = 1 THEN CAST({day} + 5 AS DATE) "
        f"ELSE last_certified_on END AS last_certified_on) FROM read_parquet('{data.recipients}')) "
        f"TO '{recipients}' (FORMAT parquet)"
    )
    certified = dict(
        con.execute(
            f"SELECT person_no, id_key FROM read_parquet('{recipients}') WHERE hash(id_key) % 50 = 1"
        ).fetchall()
    )
    serving = dict(
        con.execute(
            f"SELECT r.person_no, r.id_key FROM read_parquet('{data.recipients}') r "
            f"SEMI JOIN read_parquet('{sentences}/**/*.parquet') s ON r.id_key = s.id_key"
        ).fetchall()
    )
    stores = [data.store, sentences]
    state = tmp_path / "state"
    before, _, run = _scale(recipients, stores, data.as_of, state=state)
    imprisoned = {d[0] for d in before if d[2] == "imprisoned" and d[0] in serving}
    assert imprisoned
    run.con.close()
    # The day's batch: one trip, of someone else, long ago (it changes no decision).
    other = sorted(str(d[0]) for d in before)[0]
    batch = _small_batch(con, data, tmp_path / "batch", [(other, "rail", 900)])
    inc = ScaleRun(connect(), recipients, later)
    inc.increment(state=state, batch=[batch], store=[*stores, batch])
    after = _outcome(inc.con)
    assert after == full_chain(recipients, [*stores, batch], later)
    still = {d[0] for d in after[0] if d[2] == "imprisoned"}
    assert imprisoned - still  # the sentence's end changed their decision (nothing else did)
    due = {r[0] for r in inc.con.execute("SELECT id_key FROM due").fetchall()}
    assert {serving[p] for p in imprisoned} <= due
    pending = {d[0] for d in before if d[0] in certified and d[1] == "pending"}
    assert pending and {certified[p] for p in pending} <= due
    assert pending & {d[0] for d in after[0] if d[1] == "eligible"}  # certified on the roll since
    assert 0 < inc.timings["decided again"] < len(before)
    inc.con.close()


def test_increment_decides_again_only_whom_the_batch_can_change(
    generated: list[BenchData], tmp_path: Path
) -> None:
    """At the state's date a touched recipient is decided again only if the batch has a rare row
    of theirs or alive evidence newer than their saved newest (same day: a kind of lower rank in
    docs/rules.md §3 wins) or after their loss. Older trips, the same record again, a lower
    ranked kind on the same day, rows after the as-of date and failed authentications change
    nothing. The written files, read as `output_sql` does, equal a full run's."""
    data = generated[1]
    state = tmp_path / "state"
    before, _, run = _scale(data.recipients, [data.store], data.as_of, state=state)
    run.write(tmp_path / "out-before")
    by_reason: dict[str, list[tuple[object, ...]]] = {}
    for d in sorted(before, key=repr):
        if d[1] == "eligible":
            by_reason.setdefault(str(d[2]), []).append(d)
    # Who has rows of the rare kinds: without any but units' confirmations of eligibility, a
    # person is decided from the batch's newest record and those confirmations alone
    # (`newest_facts_sql`); with others, by all the builders.
    rare_kinds = "('death', 'cremation', 'declared', 'unit_confirm', 'sentence', 'release')"
    people_rare = run.con.execute(
        f"SELECT r.person_no, bool_and(s.feed_kind = 'unit_confirm' AND s.sub = 'eligible') "
        f"FROM read_parquet('{data.recipients}') r JOIN ({store_scan_sql([data.store])}) s ON r.id_key = s.id_key "
        f"WHERE s.feed_kind IN {rare_kinds} GROUP BY r.person_no"
    ).fetchall()
    with_rare = {str(p) for p, confirmations_only in people_rare if not confirmations_only}
    confirmed = {str(p) for p, confirmations_only in people_rare if confirmations_only}
    plain = [d for d in sorted(before, key=repr) if str(d[0]) not in with_rare | confirmed]
    pending = sorted(str(d[0]) for d in plain if d[1] == "pending")
    rail = [d for d in plain if d[1] == "eligible" and d[2] == "rail"]
    flight = [d for d in plain if d[1] == "eligible" and d[2] == "flight"]
    ruled = [d for d in by_reason["rail"] if str(d[0]) in with_rare and d[4] != data.as_of]
    # confirmed by their unit: one whose newest is a trip, one whose newest is the confirmation
    confirmed_rail = [d for d in by_reason["rail"] if str(d[0]) in confirmed and d[4] != data.as_of]
    confirmed_last = [d for d in by_reason.get("unit_confirm", []) if str(d[0]) in confirmed]
    assert len(rail) >= 6 and flight and pending and ruled and confirmed_rail and confirmed_last

    def days(decision: tuple[object, ...]) -> int:
        evidence = decision[4]
        assert isinstance(evidence, date)
        return (data.as_of - evidence).days

    changing = [
        (pending[0], "rail", 1),  # newer
        (str(flight[0][0]), "rail", days(flight[0])),  # same day, rank 1
        (str(ruled[0][0]), "flight", days(ruled[0]) - 1),  # newer, for one with rare rows
        (str(confirmed_rail[0][0]), "flight", days(confirmed_rail[0]) - 1),  # newer, confirmed by their unit
    ]
    # A trip older than the unit's confirmation, their newest: no winner is saved for them (it is a
    # rare row), so the trip is taken and they are decided again, the confirmation still newest.
    confirmation_stays = [(str(confirmed_last[0][0]), "rail", days(confirmed_last[0]) + 1)]
    unchanged = [
        (str(rail[0][0]), "rail", days(rail[0]) + 5),  # older than the saved newest
        (str(rail[1][0]), "rail", days(rail[1])),  # the same winner again
        (str(rail[2][0]), "hospital", days(rail[2])),  # same day, a kind ranked after rail
        (str(rail[3][0]), "flight", -3),  # after the as-of date: not evidence yet
        (str(rail[4][0]), "app_auth", 0),  # a failed authentication
    ]
    batch = _small_batch(run.con, data, tmp_path / "batch", changing + unchanged + confirmation_stays)
    run.con.close()
    stores = [data.store, batch]

    inc = ScaleRun(connect(), data.recipients, data.as_of)
    inc.increment(state=state, batch=[batch], store=stores)
    assert inc.timings["decided again"] == len(changing) + 1
    assert inc.timings["decided from the newest"] == len(changing)  # all but the one with other rare rows
    got = _outcome(inc.con)
    assert got == full_chain(data.recipients, stores, data.as_of)
    after = {d[0]: d for d in got[0]}
    assert after[flight[0][0]][2] == "rail"  # the same-day tie goes to rail
    assert after[confirmed_rail[0][0]][2] == "flight" and after[confirmed_last[0][0]] == confirmed_last[0]
    assert {d for d in got[0] if d[0] not in {p for p, _, _ in changing}} <= before
    inc.write(tmp_path / "out")
    changed_file = tmp_path / "out" / "results-changed.parquet"
    # The changed rows carry the decision only: the ID, name and unit are the base row's, filled
    # in as `output_sql` reads them (the comparison with the full run below holds them to it).
    assert inc.con.execute(
        f"SELECT count(*), count(id_number), count(name), count(unit_no) FROM read_parquet('{changed_file}')"
    ).fetchone() == (len(changing) + 1, 0, 0, 0)
    inc.con.close()

    full = ScaleRun(connect(), data.recipients, data.as_of)
    full.full(stores)
    full.write(tmp_path / "out-full")
    full.con.close()
    assert _written(tmp_path / "out") == _written(tmp_path / "out-full")
    assert _written(tmp_path / "out") != _written(tmp_path / "out-before")
    # A full run written over an increment's output leaves no changed rows behind.
    again = ScaleRun(connect(), data.recipients, data.as_of)
    again.full([data.store])
    again.write(tmp_path / "out")
    again.con.close()
    assert not (tmp_path / "out" / "results-changed.parquet").exists()
    assert _written(tmp_path / "out") == _written(tmp_path / "out-before")


def test_increment_refuses_an_earlier_as_of(generated: list[BenchData], tmp_path: Path) -> None:
    data = generated[0]
    _scale(data.recipients, [data.store], data.as_of, state=tmp_path / "state")
    run = ScaleRun(connect(), data.recipients, data.as_of - timedelta(days=1))
    with pytest.raises(ValueError, match="before the state"):
        run.increment(state=tmp_path / "state", batch=[data.store], store=[data.store])


def test_cleared_losses_are_no_evidence_and_a_cleared_state_takes_no_increment(
    generated: list[BenchData], tmp_path: Path
) -> None:
    """`full(cleared=…)`: a person's loss and missing records dated on or before their day in
    `cleared` are no evidence; those dated later are; nobody else's decision moves."""
    data = generated[1]
    before, _, plain = _scale(data.recipients, [data.store], data.as_of)
    by_person = {row[0]: row for row in before}
    targets = plain.con.execute(
        "SELECT r.person_no, t.id_key, t.loss_date, t.missing_date FROM targets t "
        "JOIN recipients r ON r.id_number = t.id_key WHERE t.loss_date IS NOT NULL OR t.missing_date IS NOT NULL "
        "ORDER BY r.person_no"
    ).fetchall()
    plain.con.close()
    assert len(targets) > 20
    # Half cleared on their earliest loss or declaration, half the day before it (no effect).
    earliest = {
        person: min(d for d in (loss, missing) if d is not None) for person, _, loss, missing in targets
    }
    on_day = {person for i, (person, *_rest) in enumerate(targets) if i % 2 == 0}
    cleared = [
        (key, earliest[person] - timedelta(days=0 if person in on_day else 1))
        for person, key, _, _ in targets
    ]
    run = ScaleRun(connect(), data.recipients, data.as_of)
    run.con.execute("CREATE TABLE cleared (id_key BIGINT, cleared_on DATE)")
    run.con.executemany("INSERT INTO cleared VALUES (?, ?)", cleared)
    run.full([data.store], state=tmp_path / "state", cleared="cleared")
    after = {row[0]: row for row in _outcome(run.con)[0]}
    left = run.con.execute(
        "SELECT r.person_no, t.loss_date, t.missing_date FROM targets t JOIN recipients r ON r.id_number = t.id_key"
    ).fetchall()
    moved = {person for person in after if after[person] != by_person[person]}
    assert moved and moved <= on_day  # only people cleared on (or after) their earliest record
    for person, loss, missing in left:
        if person in on_day:  # what is left of their records is dated after the day cleared
            assert all(d is None or d > earliest[person] for d in (loss, missing))
        elif person in earliest:
            assert earliest[person] in (loss, missing)
    run.con.close()
    increment = ScaleRun(connect(), data.recipients, data.as_of)
    with pytest.raises(ValueError, match="cleared"):
        increment.increment(state=tmp_path / "state", batch=[data.store], store=[data.store])


# --- Hypothesis provinces against the oracle -------------------------------------------------


def _sub(kind: str, label: str) -> str | None:
    """The store's `sub`: the oracle's record carries the normalised result, or a sentence's text."""
    if kind == "sentence":
        if any(m in label for m in NON_CUSTODIAL_MARKERS):
            return "non_custodial"
        return "custodial" if any(p in label for p in CUSTODIAL_PENALTIES) else "non_custodial"
    return label or None


def write_province(root: Path, people: list[Person], split: list[int]) -> tuple[Path, list[Path]]:
    """Recipients Parquet and one store root per batch (`split[i]`: the batch of record i)."""
    recipients = pa.table(
        {
            "person_no": [p.recipient.person_no for p in people],
            "name": [p.raw["name"] for p in people],
            "id_key": [store_key(p.recipient.id_number) for p in people],
            "id_number": [p.recipient.id_number for p in people],
            "unit_no": ["U1" for _ in people],
            "benefit_status": [p.recipient.benefit_status for p in people],
            "status_since": pa.array([p.recipient.status_since for p in people], pa.date32()),
            "status_reason": [p.recipient.status_reason for p in people],
            # The roll as the engine reads a roster: 月养老金 to four places (docs/rules.md §5).
            "monthly_amount": pa.array(
                [rules.pension_read(p.recipient.monthly_amount) for p in people], pa.decimal128(18, 4)
            ),
            "mobile": pa.array([p.recipient.mobile for p in people], pa.string()),
            "retirement_date": pa.array([p.recipient.retirement_date for p in people], pa.date32()),
            "last_certified_on": pa.array([p.recipient.last_certified_on for p in people], pa.date32()),
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(recipients, root / "recipients.parquet")
    rows: list[dict[str, object]] = []
    for p in people:
        for record, _ in p.records:
            rows.append(
                {"id_key": store_key(p.recipient.id_number), "event_date": record.day, "end_date": record.end_date,
                 "sub": _sub(record.kind, record.sub), "kind": record.kind,
                 "month": f"{record.day.year:04d}-{record.day.month:02d}"}
            )  # fmt: skip
    stores = [root / f"batch{b}" for b in range(max(split, default=0) + 1)]
    con = duckdb.connect()
    for b, store in enumerate(stores):
        chosen = [r for r, s in zip(rows, split, strict=True) if s == b]
        store.mkdir()
        if not chosen:
            continue
        table = pa.Table.from_pylist(
            chosen,
            schema=pa.schema(
                [("id_key", pa.int64()), ("event_date", pa.date32()), ("end_date", pa.date32()),
                 ("sub", pa.string()), ("kind", pa.string()), ("month", pa.string())]
            ),
        )  # fmt: skip
        con.register("chosen", table)
        con.execute(
            "COPY (SELECT id_key, event_date, end_date, sub, CAST(NULL AS VARCHAR) AS detail, "
            "CAST(NULL AS VARCHAR) AS name_key, 1 AS batch_id, 1 AS row_no, kind, month FROM chosen "
            f"ORDER BY id_key, event_date) TO '{store}' (FORMAT parquet, PARTITION_BY (kind, month), OVERWRITE_OR_IGNORE)"
        )
        con.unregister("chosen")
    return root / "recipients.parquet", stores


def _expected(people: list[Person], as_of: date) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for person in people:
        e = rules.decide(recipient=person.recipient, records=[r for r, _ in person.records], as_of=as_of)
        a = e.action
        out[person.recipient.person_no] = (
            e.status, e.reason, e.evidence_kind, e.evidence_date, e.certified_on, e.due_on, int(e.remind), e.channel,
            *((a.action, a.effective_month, a.months, a.amount) if a else (None,) * 4),
        )  # fmt: skip
    return out


def _got(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[object, ...]]:
    """Each decision with its payment action (NULLs without one), as `_expected` gives them."""
    columns = ", ".join(f"d.{c.strip()}" for c in DECISION.split(","))
    actions = ", ".join(f"a.{c.strip()}" for c in ACTION.split(",")[1:])
    rows = con.execute(
        f"SELECT {columns}, {actions} FROM decisions d LEFT JOIN actions a ON d.person_no = a.person_no"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    province=provinces(),
    window=st.sampled_from([0, 3, 400]),
    parts=st.sampled_from([2, scale.MAX_REDUCED_PARTS]),
    rebase=st.sampled_from([0.0, scale.REBASE_SHARE, 1.0]),
    data=st.data(),
)
def test_reduced_path_equals_oracle(
    province: tuple[date, list[Person]],
    window: int,
    parts: int,
    rebase: float,
    data: st.DataObject,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_of, people = province
    root = tmp_path_factory.mktemp("hyp")
    n_records = sum(len(p.records) for p in people)
    split = data.draw(st.lists(st.integers(0, 1), min_size=n_records, max_size=n_records))
    recipients, stores = write_province(root, people, split)
    # the whole store at once
    run = ScaleRun(connect(1, "1GB"), recipients, as_of, window_days=window)
    run.full(stores, state=root / "state")
    assert _got(run.con) == _expected(people, as_of)
    run.con.close()
    # batch 0 first, then batch 1 as the day's increment, possibly decided some days later
    # (across month ends, deadlines, reminders and sentences' ends: `due_again_sql`)
    later = data.draw(st.sampled_from([0, 0, 1, 17, 30, 92, 200]))
    first = ScaleRun(connect(1, "1GB"), recipients, as_of, window_days=window)
    first.full(stores[:1], state=root / "state0")
    first.con.close()
    increment = ScaleRun(connect(1, "1GB"), recipients, as_of + timedelta(days=later))
    increment.increment(
        state=root / "state0", batch=stores[1:] or stores[:1], store=stores, save=root / "state1"
    )
    assert _got(increment.con) == _expected(people, as_of + timedelta(days=later))
    increment.con.close()
    # the next days: a chain of saved states with no new rows (batch 0 again changes nothing, and
    # batch 1's rows are only in the state), each the previous one's files with the day's kept
    # rows and changed results beside them, or written whole (`parts`, `rebase`: how soon)
    monkeypatch.setattr(scale, "MAX_REDUCED_PARTS", parts)
    monkeypatch.setattr(scale, "REBASE_SHARE", rebase)
    after = as_of + timedelta(days=later)
    for day in (1, 2, 3):
        after += timedelta(days=data.draw(st.sampled_from([0, 1, 16, 45, 120])))
        again = ScaleRun(connect(1, "1GB"), recipients, after)
        save = root / f"state{day + 1}" if day < 3 else None
        again.increment(state=root / f"state{day}", batch=stores[:1], store=stores, save=save)
        assert _got(again.con) == _expected(people, after)
        again.write(root / f"out{day}")
        assert _written(root / f"out{day}") == _written_now(again.con)
        again.con.close()


# --- the command ---------------------------------------------------------------------------------


LAST_LINE = re.compile(
    r"^bench: certify \d+\.\ds floor \d+\.\ds ratio \d+\.\d\d \| ingest (n/a|\d+\.\dM rows/s ratio (\d+\.\d|n/a)) "
    r"\| pandas (x\d+|n/a) splink (x\d+|n/a) \| peak \d+\.\dGB$"
)


def _bench(tmp_path: Path, *extra: str) -> Result:
    from zige.bench.cli import bench

    args = ["--recipients", "600", "--events", "30000", "--data-dir", str(tmp_path), "--skip-ingest", *extra]
    return CliRunner().invoke(bench, args, catch_exceptions=False)


def test_bench_command_prints_the_table_and_the_last_line(tmp_path: Path) -> None:
    result = _bench(tmp_path, "--slice", "200")
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert LAST_LINE.match(last), last
    assert "pandas x" in last and "splink x" in last
    assert "certify / floor" in result.output and "same counts" in result.output
    assert "daily" in result.output and "saving the" in result.output  # (the table wraps at 80 columns)
    assert not (tmp_path / f"store-r600-e30000-s7-v{GENERATOR_VERSION}" / "work" / "state-next").exists()
    # cached: the second run generates nothing
    assert (tmp_path / f"store-r600-e30000-s7-v{GENERATOR_VERSION}" / "meta.json").exists()


def test_bench_command_measures_rounds_and_reports_their_medians(tmp_path: Path) -> None:
    one = _bench(tmp_path, "--skip-baselines")
    assert one.exit_code == 0, one.output
    assert "median of" not in one.output  # one round by default below the full size
    result = _bench(tmp_path, "--skip-baselines", "--rounds", "2")
    assert result.exit_code == 0, result.output
    assert LAST_LINE.match(result.output.strip().splitlines()[-1])
    # the full run, the floor, their ratio and the increment's share, each with its spread
    assert result.output.count("median of 2") == 4, result.output


def test_bench_command_fails_when_a_baseline_disagrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zige.bench import baselines

    real = baselines.pandas_certify

    def wrong(**kwargs: object) -> object:
        decided = real(**kwargs)  # type: ignore[arg-type]
        decided.loc[decided.index[0], "status"] = (
            "stop" if decided.iloc[0]["status"] != "stop" else "eligible"
        )
        return decided

    monkeypatch.setattr(baselines, "pandas_certify", wrong)
    result = _bench(tmp_path, "--slice", "100")
    assert result.exit_code == 1
    assert "status counts disagree" in result.output or "counts differ" in result.output


def test_the_ingest_is_timed_in_rounds_after_a_warm_up_and_its_medians_reported(tmp_path: Path) -> None:
    from zige.bench.ingest import measure_ingest

    result = measure_ingest(workdir=tmp_path, rows=20_000, rounds=3, warmup=1)
    assert result["rounds"] == 3 and result["warmup"] == 1 and len(result["rounds_s"]) == 4
    timed = result["rounds_s"][1:]
    plain, ingest = sorted(p for p, _ in timed)[1], sorted(i for _, i in timed)[1]
    assert result["ingest_s"] == pytest.approx(ingest, abs=1e-3)
    assert result["plain_read_s"] == pytest.approx(plain, abs=1e-3)
    assert result["ratio"] == pytest.approx(ingest / plain, rel=1e-2)
    assert result["rows_per_s"] == round(20_000 / ingest)
    assert result["first"]["ingest_s"] == result["rounds_s"][0][1]
    # every round imports the same file into a fresh store: the same rows kept and rejected
    assert result["used"] + result["rejected"] + result["duplicates"] == 20_000
    with pytest.raises(ValueError, match="rounds"):
        measure_ingest(workdir=tmp_path, rows=20_000, rounds=0)
    once = measure_ingest(workdir=tmp_path, rows=20_000, rounds=1, warmup=0)
    assert once["first"] is None and once["ingest_s"] == once["rounds_s"][0][1]


def test_bench_command_prints_the_ingest_with_its_warm_up_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zige.bench import ingest

    real = ingest.measure_ingest
    monkeypatch.setattr(ingest, "measure_ingest", lambda **kw: real(**{**kw, "rows": 20_000}))
    from zige.bench.cli import bench

    args = ["--recipients", "600", "--events", "30000", "--data-dir", str(tmp_path), "--skip-baselines"]
    result = CliRunner().invoke(bench, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "median of 3" in result.output and "warm-up" in result.output
    last = result.output.strip().splitlines()[-1]
    assert LAST_LINE.match(last), last
    assert "ingest n/a" not in last
