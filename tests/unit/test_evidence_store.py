"""The evidence store (zige.engine.store) and its SQL builders (issue 6 item 1).

The ID key builders and the fast normalisation are held against the pure-Python rules of
`zige.ids` and against the general staging SQL (`stage_feed_sql`) they shortcut.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zige.engine import sql
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.store import KEY_LAYOUT, STORE_COLUMNS, EvidenceStore, StoreLayoutError
from zige.ids import IdError, birth_date_of, check_digit, id_from_store_key, normalise_id, store_key

AS_OF = date(2026, 3, 31)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CON = duckdb.connect()
KINDS = {k.code: k for k in BUILTIN_KINDS}


TEXT = pa.string()


def values(select: str, column: list[Any], arrow_type: pa.DataType = TEXT) -> list[Any]:
    """`select` over the column `v` for every value, in order."""
    table = pa.table({"i": pa.array(range(len(column)), pa.int64()), "v": pa.array(column, arrow_type)})
    CON.register("t", table)
    try:
        return [r[1] for r in CON.execute(f"SELECT i, {select} FROM t ORDER BY i").fetchall()]
    finally:
        CON.unregister("t")


def make_id(region: int, born: date, seq: int) -> str:
    first17 = f"{region:06d}{born:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


valid_ids = st.builds(
    make_id,
    st.integers(0, 999_999),
    st.dates(date(1890, 1, 1), AS_OF),
    st.integers(0, 999),
)


# ---------------------------------------------------------------------------------------------
# The key


@PROPERTY
@given(st.lists(valid_ids, min_size=1, max_size=40))
def test_the_key_round_trips_to_the_id_with_its_check_character(ids: list[str]) -> None:
    keys = values(sql.id_key_sql("v"), ids)
    assert keys == [store_key(i) for i in ids]
    assert values(sql.id_number_from_key_sql("v"), keys, pa.int64()) == ids


@PROPERTY
@given(st.lists(valid_ids, min_size=2, max_size=40))
def test_keys_order_people_by_birth_date_first(ids: list[str]) -> None:
    """The store is sorted by key, so a roll's key range (its birth dates) skips the row groups of
    everyone born outside it (zige.engine.scale.key_range_sql)."""
    keys = [store_key(i) for i in ids]
    assert [id_from_store_key(k) for k in keys] == ids
    by_key = [i for _, i in sorted(zip(keys, ids, strict=True))]
    births = [birth_date_of(i) for i in by_key]
    assert births == sorted(births)


def test_a_key_with_leading_zeros_and_an_x_check_character() -> None:
    ids = ["11010519491231002X", make_id(1, date(1950, 1, 1), 7), make_id(0, date(1890, 1, 1), 0)]
    assert ids[1].startswith("000001") and ids[2].startswith("000000")
    keys = values(sql.id_key_sql("v"), ids)
    assert values(sql.id_number_from_key_sql("v"), keys, pa.int64()) == ids


@PROPERTY
@given(st.lists(st.text("0123456789", min_size=17, max_size=17), min_size=1, max_size=40))
def test_the_check_character_by_integer_and_by_float_division_is_gb11643(digits: list[str]) -> None:
    hi, lo = "CAST(substr(v, 1, 9) AS BIGINT)", "CAST(substr(v, 10, 8) AS BIGINT)"
    expected = [check_digit(d) for d in digits]
    assert values(sql.check_char_parts_sql(hi, lo, div="int"), digits) == expected
    assert values(sql.check_char_parts_sql(hi, lo, div="float"), digits) == expected


def _real_day(n: int) -> bool:
    try:
        day = date(n // 10000, n // 100 % 100, n % 100)
    except ValueError:
        return False
    return date(1890, 1, 1) <= day <= AS_OF


@PROPERTY
@given(st.lists(st.integers(18_000_000, 20_991_399), min_size=1, max_size=60))
def test_the_birth_date_rule_in_integer_arithmetic(births: list[int]) -> None:
    edges = [18891231, 18900101, 19000229, 20000229, 20260331, 20260401, 19491301, 19490100, 19490431]
    numbers = births + edges
    got = values(sql.birth_ok_sql("v", AS_OF), numbers, pa.int64())
    assert got == [_real_day(n) for n in numbers]


# ---------------------------------------------------------------------------------------------
# The fast normalisation gives what the general one gives


@st.composite
def messy_id(draw: st.DrawFn) -> str:
    base = draw(valid_ids)
    how = draw(
        st.sampled_from(["plain", "lower", "space", "fullwidth", "old", "bad", "short", "junk", "empty"])
    )
    if how == "lower":
        return base.lower()
    if how == "space":
        return f" {base[:6]} {base[6:]}\t"
    if how == "fullwidth":
        return base.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    if how == "old":
        return base[:6] + base[8:17] if base[6:8] == "19" else base
    if how == "bad":
        return base[:17] + ("0" if base[17] != "0" else "1")
    if how == "short":
        return base[:16]
    if how == "junk":
        return draw(st.text("0123456789Xx -'", max_size=20))
    if how == "empty":
        return draw(st.sampled_from(["", "   ", "\u3000"]))
    return base


def python_id(raw: str) -> tuple[int | None, str | None]:
    try:
        return store_key(normalise_id(raw, as_of=AS_OF)), None
    except IdError as exc:
        return None, exc.reason


@PROPERTY
@given(st.lists(messy_id(), min_size=1, max_size=40))
def test_fast_id_matches_zige_ids(raws: list[str]) -> None:
    key, reason, derived = sql.fast_id_sql("v", AS_OF)
    select = (
        f"CASE WHEN r IS NULL THEN k END, r FROM (SELECT i, {reason} AS r, {key} AS k FROM ("
        f"SELECT *, CASE WHEN NOT id_plain THEN {sql.id18_sql('id_clean')} END AS id18 "
        f"FROM (SELECT *, {derived} FROM t) s0a) s0) s1) q"
    )
    table = pa.table({"i": pa.array(range(len(raws)), pa.int64()), "v": pa.array(raws, pa.string())})
    CON.register("t", table)
    try:
        got = [(r[1], r[2]) for r in CON.execute(f"SELECT i, {select} ORDER BY i").fetchall()]
    finally:
        CON.unregister("t")
    assert got == [python_id(r) for r in raws]


date_texts = st.one_of(
    st.dates(date(1000, 1, 1), date(2999, 12, 31)).map(lambda d: d.isoformat()),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(lambda d: f"{d.year}/{d.month}/{d.day}"),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(lambda d: d.strftime("%Y%m%d")),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(lambda d: f"{d.year}年{d.month}月{d.day}日"),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(lambda d: d.isoformat() + " 12:30:00"),
    st.text("0123456789-/. 年月日", max_size=12),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
)


@PROPERTY
@given(st.lists(date_texts, min_size=1, max_size=40))
def test_fast_date_matches_the_general_parser(texts: list[str]) -> None:
    assert values(sql.fast_date_sql("v"), texts) == values(sql.parse_date_sql("v"), texts)


RAW_ROWS = {
    "rail": ["id_number", "name", "event_date", "train_no", "from_station", "to_station"],
    "app_auth": ["id_number", "name", "event_date", "result"],
    "sentence": ["id_number", "name", "event_date", "penalty", "end_date"],
}


@PROPERTY
@given(
    st.sampled_from(sorted(RAW_ROWS)),
    st.lists(
        st.tuples(messy_id(), st.sampled_from(["张三", "李 四", ""]), date_texts), min_size=1, max_size=30
    ),
)
def test_keyed_staging_matches_the_general_staging(kind_code: str, rows: list[tuple[str, str, str]]) -> None:
    kind, present = KINDS[kind_code], RAW_ROWS[kind_code]
    extra = {"rail": ["G1", "太原", " 北京 "], "app_auth": ["成功"], "sentence": ["有期徒刑", "2030-01-01"]}
    columns: dict[str, list[Any]] = {"_row": list(range(2, len(rows) + 2))}
    for n, name in enumerate(present):
        columns[name] = [r[n] if n < 3 else extra[kind_code][n - 3] for r in rows]
    CON.register("raw", pa.table(columns))
    try:
        general = CON.execute(
            f"SELECT row_no, CASE WHEN reject_reason IS NULL THEN {sql.id_key_sql('id_number')} END, "
            "name_key, event_date, end_date, sub, detail, reject_reason, reject_field, reject_value FROM ("
            + sql.stage_feed_sql(kind=kind, source="raw", present=present, file_no=0, as_of=AS_OF)
            + ") ORDER BY row_no"
        ).fetchall()
        keyed = CON.execute(
            "SELECT row_no, id_key, name_key, event_date, end_date, sub, detail, reject_reason, reject_field, "
            "reject_value FROM ("
            + sql.stage_feed_keyed_sql(kind=kind, source="raw", present=present, as_of=AS_OF)
            + ") ORDER BY row_no"
        ).fetchall()
    finally:
        CON.unregister("raw")
    assert keyed == general


# ---------------------------------------------------------------------------------------------
# Writing and reading the store


def rows_table(rows: list[tuple[str, str, str, int]]) -> pa.Table:
    """(id, event date, detail, row) -> a source for `write_batch`."""
    return pa.table(
        {
            "id_key": pa.array([store_key(r[0]) for r in rows], pa.int64()),
            "event_date": pa.array([date.fromisoformat(r[1]) for r in rows], pa.date32()),
            "end_date": pa.array([None] * len(rows), pa.date32()),
            "sub": pa.array([None] * len(rows), pa.string()),
            "detail": pa.array([r[2] for r in rows], pa.string()),
            "name_key": pa.array(["张三"] * len(rows), pa.string()),
            "row_no": pa.array([r[3] for r in rows], pa.int64()),
        }
    )


A, B, C = (make_id(140105, date(1950 + n, 1, 1), n) for n in range(3))


def write(estore: EvidenceStore, batch_id: int, rows: list[tuple[str, str, str, int]]) -> tuple[Any, int]:
    con = duckdb.connect()
    con.register("src", rows_table(rows))
    written, stored, _ = estore.write_batch(
        con, source="SELECT * FROM src", kind="rail", batch_id=batch_id, tag="t"
    )
    con.close()
    return written, stored


def scan(estore: EvidenceStore) -> list[tuple[Any, ...]]:
    return (
        duckdb.connect()
        .execute(
            f"SELECT feed_kind, month, id_key, event_date, detail, batch_id, row_no FROM ({estore.scan_sql()}) "
            "ORDER BY ALL"
        )
        .fetchall()
    )


def test_a_batch_writes_one_sorted_file_per_month_and_a_manifest(tmp_path: Path) -> None:
    estore = EvidenceStore(tmp_path / "store")
    written, stored = write(
        estore, 1,
        [(C, "2026-03-05", "G1", 2), (A, "2026-03-09", "G2", 3), (B, "2026-04-01", "K1", 4),
         (A, "2026-03-05", "G1", 5), (A, "2026-03-05", "G1", 6)],  # the last is a repeat of row 5
    )  # fmt: skip
    assert stored == 4
    assert written.manifest.files == (
        "kind=rail/month=2026-03/b1-t.parquet",
        "kind=rail/month=2026-04/b1-t.parquet",
    )
    march = pq.read_table(tmp_path / "store" / written.manifest.files[0])
    assert march.column_names == list(STORE_COLUMNS)
    assert march.column("id_key").to_pylist() == sorted(march.column("id_key").to_pylist())
    assert march.column("row_no").to_pylist() == [5, 3, 2]  # A's two days by date, then C
    assert [m.batch_id for m in estore.manifests()] == [1]
    assert scan(estore)[0] == ("rail", "2026-03", store_key(A), date(2026, 3, 5), "G1", 1, 5)


def test_rows_already_stored_are_dropped_and_only_the_touched_months_are_read(tmp_path: Path) -> None:
    estore = EvidenceStore(tmp_path / "store")
    write(estore, 1, [(A, "2026-03-05", "G1", 2), (B, "2026-04-01", "K1", 3)])
    april = tmp_path / "store" / "kind=rail/month=2026-04/b1-t.parquet"
    april.write_bytes(b"not parquet: a batch touching March only must not read April")
    written, stored = write(estore, 2, [(A, "2026-03-05", "G1", 7), (A, "2026-03-05", "G9", 8)])
    assert stored == 1 and written.manifest.files == ("kind=rail/month=2026-03/b2-t.parquet",)
    assert pq.read_table(tmp_path / "store" / written.manifest.files[0]).column("row_no").to_pylist() == [8]


def test_a_failed_rename_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    estore = EvidenceStore(tmp_path / "store")
    write(estore, 1, [(A, "2026-03-05", "G1", 2)])
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "store").rglob("*"))
    calls: list[Path] = []

    def rename(source: Path, target: Path) -> None:
        calls.append(target)
        if target.suffix == ".json":
            raise OSError("disk full")
        source.replace(target)

    failing = EvidenceStore(tmp_path / "store", rename=rename)
    with pytest.raises(OSError, match="disk full"):
        write(failing, 2, [(B, "2026-05-01", "K1", 2), (C, "2026-06-01", "K2", 3)])
    assert len(calls) == 3, "both data files were in place before the manifest failed"
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "store").rglob("*")) == before
    assert [m.batch_id for m in estore.manifests()] == [1]


def test_a_store_written_with_another_key_layout_is_refused(tmp_path: Path) -> None:
    estore = EvidenceStore(tmp_path / "store")
    written, _ = write(estore, 1, [(A, "2026-03-05", "G1", 2)])
    path = tmp_path / "store" / written.manifest.path
    old = json.loads(path.read_text())
    del old["key_layout"]  # as the manifests before the birth-first key: their keys are the ID's digits
    path.write_text(json.dumps(old))
    with pytest.raises(StoreLayoutError, match="key layout 1"):
        estore.manifests()
    with pytest.raises(StoreLayoutError, match="import the batch's file again"):
        estore.manifest(written.manifest.path)


def _as_layout_1(estore: EvidenceStore, manifest: Any) -> None:
    """Rewrite a batch as the region-first layout wrote it: keys = the ID's 17 digits in order,
    files sorted by them, no `key_layout` in the manifest."""
    for relative in manifest.files:
        table = pq.ParquetFile(estore.root / relative).read()
        keys = table.column("id_key").to_numpy()
        first17 = (keys % 1_000_000) * 100_000_000_000 + keys // 1_000_000
        table = table.set_column(0, "id_key", pa.array(first17, pa.int64())).sort_by(
            [("id_key", "ascending"), ("event_date", "ascending"), ("row_no", "ascending")]
        )
        pq.write_table(table, estore.root / relative)
    data = json.loads((estore.root / manifest.path).read_text())
    del data["key_layout"]
    (estore.root / manifest.path).write_text(json.dumps(data))


def test_upgrade_rewrites_an_older_key_layout_and_nothing_else(tmp_path: Path) -> None:
    estore = EvidenceStore(tmp_path / "store")
    rows = [
        (C, "2026-03-05", "G1", 2),
        (A, "2026-03-09", "G2", 3),
        (B, "2026-04-01", "K1", 4),
        (A, "2026-03-05", "G1", 5),
    ]
    first, _ = write(estore, 1, rows)
    second, _ = write(estore, 2, [(B, "2026-03-07", "K2", 2)])
    expected = scan(estore)
    _as_layout_1(estore, first.manifest)
    with pytest.raises(StoreLayoutError):
        scan(estore)

    assert estore.upgrade_key_layout() == ["b1-t"]
    assert estore.upgrade_key_layout() == []  # up to date: nothing to do
    assert scan(estore) == expected
    upgraded = estore.manifests()[0]
    assert upgraded.key_layout == KEY_LAYOUT and upgraded.rows == first.manifest.rows
    assert upgraded.files == tuple(f.removesuffix(".parquet") + "-k2.parquet" for f in first.manifest.files)
    assert not any((estore.root / f).exists() for f in first.manifest.files)
    for relative in upgraded.files:
        keys = pq.read_table(estore.root / relative).column("id_key").to_pylist()
        assert keys == sorted(keys)
    assert estore.manifests()[1] == second.manifest


def test_files_without_a_manifest_are_not_read(tmp_path: Path) -> None:
    estore = EvidenceStore(tmp_path / "store")
    written, _ = write(estore, 1, [(A, "2026-03-05", "G1", 2)])
    (tmp_path / "store" / written.manifest.path).unlink()  # as after a crash before the commit
    assert scan(estore) == []
    assert duckdb.connect().execute(f"SELECT count(*) FROM ({estore.scan_sql()})").fetchall() == [(0,)]


def test_the_import_lock_is_re_entrant_in_a_thread_and_exclusive_between_threads(tmp_path: Path) -> None:
    """A caller holding a kind's import lock around its own transaction (the approval of a
    verification report) runs an import that takes the same lock: the thread does not wait for
    itself. Another thread still waits until the outer hold ends."""
    import threading

    estore = EvidenceStore(tmp_path / "store")
    order: list[str] = []

    def nested() -> None:
        with estore.import_lock("unit_confirm"), estore.import_lock("unit_confirm"):
            order.append("nested")

    inner = threading.Thread(target=nested, daemon=True)
    inner.start()
    inner.join(timeout=10)
    assert order == ["nested"], "the thread waited for its own lock"

    entered = threading.Event()

    def other() -> None:
        with estore.import_lock("unit_confirm"):
            order.append("other")
            entered.set()

    with estore.import_lock("unit_confirm"):
        with estore.import_lock("unit_confirm"):
            pass
        waiting = threading.Thread(target=other, daemon=True)
        waiting.start()
        assert not entered.wait(timeout=0.3), "another thread entered while the lock was held"
        order.append("outer done")
    assert entered.wait(timeout=10)
    waiting.join(timeout=10)
    assert order == ["nested", "outer done", "other"]
