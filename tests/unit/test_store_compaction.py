"""Compaction of the evidence store (小文件合并, `EvidenceStore.compact`): every reader sees each
row exactly once before, during and after it, the merged file is sorted as the store sorts and
written as the ingest writes, and a failure or a crash at any step leaves a correct store.

A compacted store is held against a twin that got the same batches and was never compacted.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zige.engine import store as store_module
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.store import (
    COMPACT_DIR,
    STORE_COLUMNS,
    BatchManifest,
    EvidenceStore,
    FileList,
    StoreBusy,
    StoreLayoutError,
    _stored_records_sql,
    _write_parquet,
    _write_parquet_stream,
)
from zige.ids import check_digit, store_key

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)  # past the default grace (1 h)
RAIL = next(k for k in BUILTIN_KINDS if k.code == "rail")
GROUP = 4  # rows per row group here: every file has several
DB = duckdb.connect()  # opening one costs more than these tests' queries: a cursor each


def make_id(n: int) -> str:
    first17 = f"140105{date(1940, 1, 1) + timedelta(days=37 * n):%Y%m%d}{n % 1000:03d}"
    return first17 + check_digit(first17)


IDS = [make_id(n) for n in range(12)]

# One stored row before the store: (id index, event date or None, detail, kind).
Row = tuple[int, date | None, str, str]


def source_table(rows: list[tuple[int, date | None, str]]) -> pa.Table:
    return pa.table(
        {
            "id_key": pa.array([store_key(IDS[r[0]]) for r in rows], pa.int64()),
            "event_date": pa.array([r[1] for r in rows], pa.date32()),
            "end_date": pa.array([None] * len(rows), pa.date32()),
            "sub": pa.array([None] * len(rows), pa.string()),
            "detail": pa.array([r[2] for r in rows], pa.string()),
            "name_key": pa.array(["张三"] * len(rows), pa.string()),
            "row_no": pa.array(range(2, len(rows) + 2), pa.int64()),
        }
    )


def write(
    estore: EvidenceStore, batch_id: int, rows: list[tuple[int, date | None, str]], kind: str = "rail"
) -> int:
    """Write a batch (the rows in file order, row numbers from 2); the rows stored."""
    with DB.cursor() as con:
        con.register("src", source_table(rows))
        _, stored, _ = estore.write_batch(
            con, source="SELECT * FROM src", kind=kind, batch_id=batch_id, tag="t"
        )
    return stored


def rows_of(query: str) -> list[tuple[Any, ...]]:
    """The rows of a store query in a canonical order (a multiset compared as a sorted list)."""
    with DB.cursor() as con:
        result = con.execute(f"SELECT * FROM ({query})").fetchall()
    return sorted(result, key=repr)


def scan(estore: EvidenceStore, **kwargs: Any) -> list[tuple[Any, ...]]:
    return rows_of(estore.scan_sql(**kwargs))


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def day(month: int, dom: int) -> date:
    return date(2026, month, dom)


def fragmented(root: Path, batches: int = 6) -> EvidenceStore:
    """Batches of rail rows over March, April and no date, overlapping people and days."""
    estore = EvidenceStore(root, row_group_size=GROUP)
    for b in range(1, batches + 1):
        rows = [(
            (b * 5 + i) % len(IDS), day(3 + (i + b) % 2, 1 + (b * 7 + i * 3) % 28) if i % 7 else None, f"G{b}-{i % 3}"
        ) for i in range(9)]  # fmt: skip
        rows.insert(b % 3, (0, day(3, 15), f"T{b}"))  # the same person and day in every batch
        write(estore, b, rows)
    return estore


def merged_files(estore: EvidenceStore) -> list[Path]:
    return sorted(estore.root.glob("kind=*/month=*/c*.parquet"))


# ---------------------------------------------------------------------------------------------
# The merged file


def test_each_partition_becomes_one_file_sorted_as_the_store_sorts_with_every_column(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s")
    before = scan(estore)
    batch_files = estore.files()
    assert len(batch_files) == 18  # 6 batches x (March, April, none)

    result = estore.compact(now=NOW)

    assert [(p.kind, p.month, p.files, p.batches) for p in result.partitions] == [
        ("rail", "2026-03", 6, 6), ("rail", "2026-04", 6, 6), ("rail", "none", 6, 6)
    ]  # fmt: skip
    files = estore.files()
    assert sorted(files) == merged_files(estore) and len(files) == 3 and not files.partial
    assert scan(estore) == before
    for path in files:
        table = pq.read_table(path)
        assert table.column_names == list(STORE_COLUMNS)
        month = path.parent.name.removeprefix("month=")
        sources = [f for f in batch_files if f.parent.name == f"month={month}"]
        expected = pa.concat_tables([pq.read_table(f) for f in sources]).to_pylist()
        # The store's order (key, date: no date last, as DuckDB orders), then each batch's rows in turn.
        expected.sort(
            key=lambda r: (
                r["id_key"],
                r["event_date"] is None,
                r["event_date"] or date.min,
                r["batch_id"],
                r["row_no"],
            )
        )
        assert table.to_pylist() == expected
        record = json.loads((estore.root / COMPACT_DIR / f"{path.name.split('-')[0]}.json").read_text())
        assert record["rows"] == table.num_rows and record["file"].endswith(path.name)
        assert sorted(record["replaces"]) == sorted(f.relative_to(estore.root).as_posix() for f in sources)
        assert [b for b, _ in record["sources"]] == [1, 2, 3, 4, 5, 6]


def test_the_merged_file_has_the_ingests_row_groups_and_writer_settings(tmp_path: Path) -> None:
    """The store's settings (`_PARQUET_OPTIONS`), the detail text zstd: an import leaves it
    uncompressed (`_IMPORT_PARQUET_OPTIONS`), the compaction compresses it."""
    estore = fragmented(tmp_path / "s", batches=5)
    estore.compact(now=NOW)
    [merged] = [p for p in merged_files(estore) if "2026-03" in str(p)]
    table = pq.read_table(merged)
    reference = tmp_path / "reference.parquet"  # the store's writer (`_write_parquet`)
    _write_parquet(table, reference, row_group_size=GROUP)
    got, want = pq.ParquetFile(merged).metadata, pq.ParquetFile(reference).metadata
    assert table.num_rows > 3 * GROUP
    assert [got.row_group(g).num_rows for g in range(got.num_row_groups)] == [
        want.row_group(g).num_rows for g in range(want.num_row_groups)
    ]
    assert all(got.row_group(g).num_rows == GROUP for g in range(got.num_row_groups - 1))

    def settings_of(meta: pq.FileMetaData) -> list[tuple[Any, ...]]:
        column = meta.row_group(0).column
        return [
            (column(c).path_in_schema, column(c).compression, column(c).is_stats_set,
             "PLAIN_DICTIONARY" in column(c).encodings or "RLE_DICTIONARY" in column(c).encodings)
            for c in range(meta.num_columns)
        ]  # fmt: skip

    assert settings_of(got) == settings_of(want)
    assert {c[0]: c[1] for c in settings_of(got)}["detail"] == "ZSTD"
    assert got.schema.to_arrow_schema() == want.schema.to_arrow_schema()
    assert pq.read_table(reference).equals(table)


def test_rows_streamed_in_batches_of_any_size_make_row_groups_of_exactly_the_size(tmp_path: Path) -> None:
    table = (
        source_table([(n % len(IDS), day(3, 1 + n % 28), f"G{n}") for n in range(27)])
        .append_column("batch_id", pa.array([1] * 27, pa.int64()))
        .select(list(STORE_COLUMNS))
    )
    sizes = [1, 7, 13, 2, 4]  # as DuckDB hands them over: at most the size asked for, often fewer
    offsets = list(itertools.accumulate([0, *sizes]))
    batches = [b for a, n in zip(offsets[:-1], sizes, strict=True) for b in table.slice(a, n).to_batches()]
    path = tmp_path / "stream.parquet"
    assert _write_parquet_stream(iter(batches), path, row_group_size=GROUP) == 27
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [4, 4, 4, 4, 4, 4, 3]
    assert pq.read_table(path).equals(table)


def forget_parsed() -> None:
    """Empty this process's parsed manifests and records (`zige.engine.store_cache`)."""
    store_module._MANIFESTS.clear()
    store_module._COMPACTIONS.clear()
    store_module._HOLDERS.clear()


def assert_same_files_without_the_cache(estore: EvidenceStore) -> None:
    """The files resolved with the parsed manifests and records of earlier steps are the files
    resolved from the files on disk alone."""
    warm = estore.files()
    forget_parsed()
    cold = estore.files()
    assert (list(warm), warm.partial, warm.batch_ids) == (list(cold), cold.partial, cold.batch_ids)


# ---------------------------------------------------------------------------------------------
# Every reader, exactly once


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Steps: ("batch", (kind, rows)), ("compact", (min_files, grace hours)), ("later", None)."""
    row = st.tuples(
        st.integers(0, len(IDS) - 1),
        st.one_of(st.none(), st.dates(date(2026, 2, 25), date(2026, 4, 5))),
        st.sampled_from(["G1", "G2", "K3"]),
    )
    steps: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(2, 9))):
        what = draw(st.sampled_from(["batch", "batch", "batch", "compact", "later"]))
        if what == "batch":
            steps.append(
                (
                    "batch",
                    (draw(st.sampled_from(["rail", "death"])), draw(st.lists(row, min_size=1, max_size=8))),
                )
            )
        elif what == "compact":
            steps.append(("compact", (draw(st.integers(2, 4)), draw(st.sampled_from([0, 1])))))
        else:
            steps.append(("later", None))
    steps.insert(len(steps) // 2, ("compact", (2, 0)))  # then later batches meet a merged file
    steps.append(("compact", (2, 1)))
    return steps


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False))
def test_every_reader_sees_the_rows_of_a_store_never_compacted(
    steps: list[tuple[str, Any]], rnd: Any
) -> None:
    with tempfile.TemporaryDirectory(prefix="zige-compact-") as directory:
        root = Path(directory)
        plain = EvidenceStore(root / "plain", row_group_size=GROUP)
        packed = EvidenceStore(root / "packed", row_group_size=GROUP)
        clock, batch_id = NOW, 0
        for what, arg in steps:
            if what == "batch":
                batch_id += 1
                kind, rows = arg
                # The duplicate check against stored rows reads the compacted partitions.
                assert write(packed, batch_id, rows, kind) == write(plain, batch_id, rows, kind)
            elif what == "compact":
                min_files, hours = arg
                packed.compact(now=clock, min_files=min_files, grace=timedelta(hours=hours))
            else:
                clock += timedelta(hours=3)
            assert scan(packed) == scan(plain)
            assert_same_files_without_the_cache(packed)
        manifests = packed.manifests()
        assert manifests == plain.manifests()
        for kinds in (None, ["rail"], ["death"]):
            assert scan(packed, kinds=kinds) == scan(plain, kinds=kinds)
        for _ in range(4):  # readers of some batches (the system of record's succeeded ones)
            subset = rnd.sample(manifests, rnd.randint(0, len(manifests)))
            assert scan(packed, batches=subset) == scan(plain, batches=subset)
            for kind, month in itertools.product(["rail", "death"], ["2026-03", "none"]):
                earlier = packed._partition_files(kind, [month], subset)
                reference = plain._partition_files(kind, [month], subset)
                assert bool(earlier) == bool(reference)
                if reference:
                    assert rows_of(_stored_records_sql(earlier)) == rows_of(_stored_records_sql(reference))
        # One merged file at most per partition, listed once.
        files = packed.files()
        assert len(files) == len(set(files))


def test_a_reader_of_some_batches_reads_only_their_rows_of_a_merged_file(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=4)
    estore.compact(now=NOW, grace=timedelta(0))  # the batches' own files are gone
    assert not list(estore.root.glob("kind=*/month=*/b*.parquet"))
    first_two = estore.manifests()[:2]
    files = estore.files(batches=first_two)
    assert isinstance(files, FileList) and files.partial == frozenset(files) and files.batch_ids == {1, 2}
    rows = scan(estore, batches=first_two)
    assert {r[STORE_COLUMNS.index("batch_id")] for r in rows} == {1, 2}
    assert len(rows) == sum(m.rows for m in first_two)
    # Every batch asked for: the merged files are read whole.
    assert not estore.files(batches=estore.manifests()).partial


def test_a_batch_written_after_a_compaction_keeps_its_file_until_the_next(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=3)
    estore.compact(now=NOW)
    write(estore, 9, [(1, day(3, 30), "new"), (2, day(4, 2), "new")])
    files = estore.files()
    assert sum(1 for f in files if f.name.startswith("b9-")) == 2 and len(files) == 5
    assert len(scan(estore)) == sum(m.rows for m in estore.manifests())
    # Below the threshold: a merged file and one new file are two files.
    assert estore.compact(now=NOW, min_files=3).partitions == []
    result = estore.compact(now=NOW)
    assert [(p.month, p.files, p.batches) for p in result.partitions] == [
        ("2026-03", 2, 4),
        ("2026-04", 2, 4),
    ]
    assert len(estore.files()) == 3


def test_only_the_kinds_asked_for_are_compacted(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=3)
    for b in (7, 8):
        write(estore, b, [(1, day(3, b), "dead")], kind="death")
    result = estore.compact(now=NOW, kinds=["death"])
    assert [(p.kind, p.month, p.files) for p in result.partitions] == [("death", "2026-03", 2)]
    assert len(estore.files(["rail"])) == 9 and len(estore.files(["death"])) == 1


def test_rows_of_a_batch_whose_manifest_went_after_the_merge_are_not_read(tmp_path: Path) -> None:
    """A batch merged while committed, then discarded (the engine-level default merges every
    committed batch): its rows stay in the merged file, and no reader sees them."""
    estore = fragmented(tmp_path / "s", batches=3)
    expected = scan(estore, batches=estore.manifests()[:2])
    estore.compact(now=NOW)
    (estore.root / estore.manifests()[2].path).unlink()
    assert scan(estore) == expected
    estore.compact(now=NOW)  # nothing new to merge: the merged file keeps the rows, still unread
    assert scan(estore) == expected


# ---------------------------------------------------------------------------------------------
# Concurrent readers: the grace period, the lock


def test_a_reader_that_listed_files_before_the_commit_still_reads_them(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s")
    listed = estore.files()  # a run lists the files, then reads them minutes later
    expected = rows_of(estore.read_sql(listed))
    estore.compact(now=NOW)
    assert rows_of(estore.read_sql(listed)) == expected
    estore.compact(now=NOW + timedelta(minutes=59))  # still within the grace: nothing removed
    assert rows_of(estore.read_sql(listed)) == expected

    result = estore.compact(now=LATER)  # then the replaced files go
    assert len(result.removed) == 18
    assert all(not p.exists() for p in listed)
    assert rows_of(estore.scan_sql()) == expected


def test_superseded_merges_and_their_records_go_after_the_grace(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=2)
    estore.compact(now=NOW)
    first = [p for p in merged_files(estore) if "none" not in str(p)]  # March's and April's
    write(estore, 5, [(1, day(3, 30), "x"), (2, day(4, 2), "y")])
    estore.compact(now=LATER)  # merges the merged files with batch 5's; removes the batch files of the first
    assert all(p.exists() for p in first), "the first merged files are still within the grace"
    records = ["c1.json", "c2.json", "c3.json", "c4.json", "c5.json"]  # c3: no-date rows, untouched
    assert sorted(p.name for p in (estore.root / COMPACT_DIR).glob("c*.json")) == records
    expected = scan(estore)
    estore.compact(now=LATER + timedelta(hours=2))
    assert not any(p.exists() for p in first)
    assert sorted(p.name for p in (estore.root / COMPACT_DIR).glob("c*.json")) == [
        "c3.json",
        "c4.json",
        "c5.json",
    ]
    assert scan(estore) == expected
    assert listing(estore.root) == sorted(
        [f"{COMPACT_DIR}/.lock", *(f"{COMPACT_DIR}/c{n}.json" for n in (3, 4, 5)),
         *(f"_manifest/b{b}-t.json" for b in (1, 2, 5)),
         *(p.relative_to(estore.root).as_posix() for p in merged_files(estore))]
    )  # fmt: skip


def test_one_compaction_at_a_time(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=2)
    with estore.lock():
        with pytest.raises(StoreBusy):
            EvidenceStore(estore.root).compact(now=NOW)
        with pytest.raises(StoreBusy):
            EvidenceStore(estore.root).upgrade_key_layout()
    assert len(EvidenceStore(estore.root).compact(now=NOW).partitions) == 3


def test_a_store_of_the_older_key_layout_is_refused_until_upgraded(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=2)
    path = estore.root / estore.manifests()[0].path
    data = json.loads(path.read_text())
    data["key_layout"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(StoreLayoutError):
        estore.compact(now=NOW)
    # The batches the system of record gives (read from their paths) are checked too.
    given = [
        BatchManifest.from_json(p.read_text()) for p in sorted((estore.root / "_manifest").glob("*.json"))
    ]
    with pytest.raises(StoreLayoutError):
        estore.compact(now=NOW, batches=given)
    assert not merged_files(estore)


# ---------------------------------------------------------------------------------------------
# Failures and crashes at each step


class Boom(Exception):
    pass


def failing_rename(match: Callable[[Path], bool]) -> Callable[[Path, Path], None]:
    def rename(source: Path, target: Path) -> None:
        if match(target):
            raise Boom(f"rename to {target.name}")
        source.replace(target)

    return rename


@pytest.mark.parametrize("step", ["write", "rename the merged file", "rename the record (the commit)"])
def test_a_failure_before_the_commit_leaves_the_store_as_it_was(
    tmp_path: Path, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    estore = fragmented(tmp_path / "s")
    before, files = scan(estore), listing(estore.root)
    rename = None
    if step == "write":
        real = store_module._write_parquet_stream

        def half(batches: Any, path: Path, *, row_group_size: int) -> int:
            real(itertools.islice(batches, 1), path, row_group_size=row_group_size)
            raise Boom("disk full")

        monkeypatch.setattr(store_module, "_write_parquet_stream", half)
    elif step == "rename the merged file":
        rename = failing_rename(lambda t: t.suffix == ".parquet")
    else:
        rename = failing_rename(lambda t: t.parent.name == COMPACT_DIR)
    with pytest.raises(Boom):
        EvidenceStore(estore.root, row_group_size=GROUP, rename=rename).compact(now=NOW)
    assert scan(estore) == before
    assert listing(estore.root) == sorted([*files, f"{COMPACT_DIR}/.lock"]), "nothing left behind"
    monkeypatch.undo()
    estore.compact(now=NOW)
    assert scan(estore) == before and len(estore.files()) == 3


def test_a_crash_before_the_commit_leaves_files_nothing_reads_and_the_next_compaction_removes(
    tmp_path: Path,
) -> None:
    """A killed process cleans nothing: its merged file (renamed or not) and its record's
    temporary file stay, unlisted."""
    estore = fragmented(tmp_path / "s")
    before, files = scan(estore), listing(estore.root)
    march = estore.root / "kind=rail/month=2026-03"
    (march / "c1-0123abcd.parquet").write_bytes((march / "b1-t.parquet").read_bytes())
    (march / ".c1-0123abcd.parquet.89abcdef.tmp").write_bytes(b"half a file")
    (estore.root / COMPACT_DIR).mkdir()
    (estore.root / COMPACT_DIR / ".c1.json.0123abcd.tmp").write_text('{"number": 1, ')
    assert scan(estore) == before
    result = estore.compact(now=NOW)
    assert {"kind=rail/month=2026-03/c1-0123abcd.parquet", f"{COMPACT_DIR}/.c1.json.0123abcd.tmp"} <= set(
        result.removed
    )
    assert scan(estore) == before
    estore.compact(now=LATER)
    assert listing(estore.root) == sorted(
        [f"{COMPACT_DIR}/.lock", *(f"{COMPACT_DIR}/c{n}.json" for n in (1, 2, 3)),
         *(f for f in files if f.startswith("_manifest")),
         *(p.relative_to(estore.root).as_posix() for p in merged_files(estore))]
    )  # fmt: skip


def test_a_crash_while_removing_replaced_files_leaves_a_correct_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    estore = fragmented(tmp_path / "s", batches=3)
    estore.compact(now=NOW)
    write(estore, 7, [(1, day(3, 30), "x")])
    estore.compact(now=NOW)  # March again: c1 superseded by c4
    before = scan(estore)
    removed: list[Path] = []

    def remove(path: Path) -> None:
        if len(removed) == 4:
            raise Boom("killed")
        removed.append(path)
        path.unlink()

    monkeypatch.setattr(store_module, "_remove", remove)
    with pytest.raises(Boom):
        estore.compact(now=LATER)
    assert scan(estore) == before
    monkeypatch.undo()
    estore.compact(now=LATER)
    assert scan(estore) == before
    assert not list(estore.root.glob("kind=*/month=*/b*.parquet"))
    assert sorted(p.name for p in (estore.root / COMPACT_DIR).glob("c*.json")) == [
        "c2.json",
        "c3.json",
        "c4.json",
    ]


# ---------------------------------------------------------------------------------------------
# Importing again after a compaction


@pytest.mark.parametrize("use_native", [True, False])
def test_a_file_imported_again_after_a_compaction_stores_nothing(tmp_path: Path, use_native: bool) -> None:
    header = "身份证号,姓名,乘车日期,车次,出发站,到达站"
    lines = [header] + [
        f"{IDS[n % len(IDS)]},张三,2026-0{3 + n % 2}-{1 + n % 28:02d},G{n},太原,北京" for n in range(40)
    ]
    path = tmp_path / "rail.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    estore = EvidenceStore(tmp_path / "s", row_group_size=GROUP, use_native=use_native)
    con = duckdb.connect()
    for batch in (1, 2):  # the second half of the rows again, in a file of its own
        part = tmp_path / f"rail_{batch}.csv"
        part.write_text("\n".join([header, *lines[1 + 20 * (batch - 1) :][:20]]) + "\n", encoding="utf-8")
        estore.ingest_csv(con, path=part, kind=RAIL, batch_id=batch, tag="t", as_of=NOW.date())
    estore.compact(now=NOW, grace=timedelta(0))
    before = scan(estore)
    again = estore.ingest_csv(con, path=path, kind=RAIL, batch_id=3, tag="t", as_of=NOW.date())
    assert (again.rows_used, again.duplicate_rows) == (0, 40)
    assert scan(estore) == before
    assert [m.batch_id for m in estore.manifests()] == [1, 2, 3]


# ---------------------------------------------------------------------------------------------
# The parsed manifests and records (`zige.engine.store_cache`): read once per process, and again
# only when the file at their path is another one


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON texts parsed (manifests and compaction records: the only JSON the store reads)."""
    parsed: list[str] = []
    real = json.loads

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(store_module.json, "loads", counting)
    return parsed


def kinds_of(parsed: list[str]) -> list[str]:
    return sorted("record" if '"sources"' in text else "manifest" for text in parsed)


def test_a_second_lookup_reads_no_manifest_and_no_record(tmp_path: Path, parses: list[str]) -> None:
    estore = fragmented(tmp_path / "s")
    estore.compact(now=NOW)
    paths = [m.path for m in estore.manifests()]
    # As the person page does it: the succeeded imports' manifests by path, then resolve.
    first = estore.resolve([estore.manifest(p) for p in paths])
    parses.clear()
    again = EvidenceStore(estore.root).resolve([EvidenceStore(estore.root).manifest(p) for p in paths])
    assert parses == [], "a second lookup parsed manifests or records again"
    assert again == first and again.partial == first.partial and len(again) == 3
    assert estore.files() == first and parses == []


def test_a_manifest_written_after_the_cache_was_filled_is_read(tmp_path: Path, parses: list[str]) -> None:
    estore = fragmented(tmp_path / "s", batches=3)
    estore.compact(now=NOW)
    before = estore.files()
    parses.clear()
    write(estore, 9, [(1, day(3, 30), "new"), (2, day(4, 2), "new")])
    parses.clear()
    files = estore.files()
    assert kinds_of(parses) == ["manifest"], "only the new manifest is read"
    assert sorted(files) == sorted(
        [*before, *(estore.root / f for f in estore.manifest("_manifest/b9-t.json").files)]
    )
    assert len(scan(estore)) == sum(m.rows for m in estore.manifests())


def test_a_compaction_committed_after_the_cache_was_filled_is_read(tmp_path: Path, parses: list[str]) -> None:
    estore = fragmented(tmp_path / "s")
    listed, expected = estore.files(), scan(estore)
    assert len(listed) == 18 and not merged_files(estore)
    parses.clear()
    estore.compact(now=NOW)
    files = estore.files()
    assert kinds_of(parses) == ["record"] * 3, "only the new records are read, each once"
    assert sorted(files) == merged_files(estore) and scan(estore) == expected
    # A later one supersedes a record: the next reader resolves to the newer merged file.
    write(estore, 7, [(1, day(3, 30), "x")])
    estore.compact(now=NOW)
    files = estore.files()
    assert len(files) == 3 and sorted(files) == sorted(
        estore.root / c.file for c in estore.live_compactions().values()
    )
    assert len(scan(estore)) == len(expected) + 1


def test_a_replaced_or_removed_manifest_or_record_is_read_again(tmp_path: Path) -> None:
    estore = fragmented(tmp_path / "s", batches=3)
    second = estore.manifests()[1]
    assert estore.manifest(second.path) == second
    # Replaced by a rename (as `zige store upgrade` rewrites one): the new file is read.
    fewer = BatchManifest(second.batch_id, second.kind, second.tag, second.files[:1], 1)
    temp = estore.root / "_manifest" / ".b2-t.json.0123abcd.tmp"
    temp.write_text(fewer.to_json(), encoding="utf-8")
    temp.replace(estore.root / second.path)
    assert estore.manifest(second.path) == fewer and estore.manifests()[1] == fewer
    assert set(estore.files()) == {estore.root / f for m in estore.manifests() for f in m.files}
    # Rewritten in place (an operator's editor): read again too.
    (estore.root / second.path).write_text(second.to_json(), encoding="utf-8")
    assert estore.manifest(second.path) == second
    # Removed (a failed import's discard): gone for every reader.
    (estore.root / second.path).unlink()
    with pytest.raises(FileNotFoundError):
        estore.manifest(second.path)
    assert [m.batch_id for m in estore.manifests()] == [1, 3]
    # Records: superseded ones swept after the grace leave the listing; the live ones stay.
    estore.compact(now=NOW)
    write(estore, 8, [(1, day(3, 30), "x")])
    estore.compact(now=NOW)
    assert [c.number for c in estore.compactions()] == [1, 2, 3, 4]
    expected = scan(estore)
    estore.compact(now=LATER)
    assert [c.number for c in estore.compactions()] == [2, 3, 4]
    assert sorted(estore.files()) == merged_files(estore) and scan(estore) == expected


def test_readers_in_threads_share_the_parsed_files(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    estore = fragmented(tmp_path / "s")
    estore.compact(now=NOW, kinds=["rail"])
    forget_parsed()
    expected = estore.files()
    forget_parsed()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: EvidenceStore(estore.root).files(), range(64)))
    assert all(list(g) == list(expected) and g.partial == expected.partial for g in got)
