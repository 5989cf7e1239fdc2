"""Feeds into the evidence store: DuckDB's read_csv fast path against the general readers, and
imports of the system of record that touch only their own rows (issue 6 items 1 and 2)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.factories import NOW, make_id
from zige.engine import readers
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.store import EvidenceStore, NotFastPath
from zige.feeds import selectors, services, store
from zige.feeds.models import ImportBatch, ImportStatus
from zige.ids import store_key

RAIL = next(k for k in BUILTIN_KINDS if k.code == "rail")
AS_OF = date(2026, 11, 30)
ID_A = make_id(1, date(1950, 1, 1))
ID_B = make_id(2, date(1951, 2, 2))
HEADER = "身份证号,姓名,乘车日期,车次,出发站,到达站"
BODY = [
    f"{ID_A},张三,2026-03-05,G123,太原南,北京西",
    f"{ID_A.lower()} ,张 三,2026/3/5,G123,太原南,北京西",  # the same trip, written differently
    f"{ID_B[:6]}{ID_B[8:17]},李四,20260401,K601,大同,太原",  # 15 digits
    f"{ID_B[:17]}{'0' if ID_B[17] != '0' else '1'},李四,2026-04-02,K1,大同,太原",  # check digit
    f"{ID_B},李四,2026-02-30,K2,大同,太原",  # no such day
    ",,,,,",  # a blank row keeps its number
    f"{ID_B},,2026-04-03,K3,大同,太原",  # no name
    f"\uff11{ID_B[1:]},李四,2026年4月4日,K4,大同,太原",  # a full-width digit
]


def write(
    path: Path, lines: list[str], *, bom: bool = False, encoding: str = "utf-8", end: str = "\n"
) -> Path:
    path.write_bytes((("\ufeff" if bom else "") + "\n".join(lines) + end).encode(encoding))
    return path


def stored(estore: EvidenceStore) -> list[tuple[Any, ...]]:
    return (
        duckdb.connect()
        .execute(f"SELECT * EXCLUDE (batch_id) FROM ({estore.scan_sql()}) ORDER BY row_no")
        .fetchall()
    )


@pytest.mark.parametrize("end", ["\n", "\n\n\n", "\r\n\r\n", "\r\r"])  # and empty lines at the end: no rows
@pytest.mark.parametrize("bom", [False, True])
def test_the_fast_path_gives_what_the_readers_give(tmp_path: Path, bom: bool, end: str) -> None:
    path = write(
        tmp_path / "rail_2026.csv", ["2026年铁路出行记录", HEADER, *BODY], bom=bom, end=end
    )  # a title row
    fast, slow = EvidenceStore(tmp_path / "fast"), EvidenceStore(tmp_path / "slow")
    con_fast, con_slow = duckdb.connect(), duckdb.connect()
    one = fast.ingest_csv(con_fast, path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
    two = slow.ingest_table(
        con_slow, raw=readers.read_table(path, RAIL.columns), kind=RAIL, batch_id=1, tag="t", as_of=AS_OF
    )
    assert one.fast and not two.fast
    counts = (
        one.rows_read,
        one.rows_used,
        one.rows_rejected,
        one.duplicate_rows,
        one.blank_rows,
        one.header_row,
    )
    assert counts == (two.rows_read, two.rows_used, two.rows_rejected, two.duplicate_rows, two.blank_rows,
                      two.header_row) == (7, 3, 3, 1, 1, 2)  # fmt: skip
    assert stored(fast) == stored(slow)
    assert [r[0] for r in stored(fast)] == [store_key(ID_A), store_key(ID_B), store_key(ID_B)]
    rejects = "SELECT row_no, field, reason FROM ingest_rejects ORDER BY row_no"
    assert (
        con_fast.execute(rejects).fetchall()
        == con_slow.execute(rejects).fetchall()
        == [
            (6, "身份证号", "bad_id_checksum"),
            (7, "乘车日期", "bad_date"),
            (9, "姓名", "missing_value"),
        ]
    )


@pytest.mark.parametrize(
    "lines",
    [
        [HEADER, BODY[0], "", BODY[2]],  # an empty line: DuckDB skips it, a spreadsheet numbers it
        [HEADER, BODY[0], f'{ID_B},"李\n四",2026-04-01,K1,大同,太原'],  # a line break in a value
        [HEADER, BODY[0], f"{ID_B},李四,2026-04-01"],  # a short row
    ],
)
def test_files_the_fast_path_cannot_number_exactly_go_to_the_readers(
    tmp_path: Path, lines: list[str]
) -> None:
    path = write(tmp_path / "rail.csv", lines)
    estore = EvidenceStore(tmp_path / "store")
    with pytest.raises(NotFastPath):
        estore.ingest_csv(duckdb.connect(), path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
    assert estore.manifests() == [] and not list((tmp_path / "store").rglob("*.parquet"))


def test_a_gbk_file_is_not_for_the_fast_path(tmp_path: Path) -> None:
    path = write(tmp_path / "rail.csv", [HEADER, BODY[0]], encoding="gb18030")
    with pytest.raises(NotFastPath, match="UTF-8"):
        EvidenceStore(tmp_path / "s").ingest_csv(
            duckdb.connect(), path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF
        )


# ---------------------------------------------------------------------------------------------
# The system of record


@pytest.fixture
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    return tmp_path / "data"


def do_import(path: Path) -> ImportBatch:
    batch = services.import_submit(
        source=path, file_name=path.name, kind=None, user=None, now=NOW, enqueue=False
    )
    return services.import_execute(batch_id=batch.pk, now=NOW)


@pytest.mark.django_db
def test_a_days_file_adds_files_for_its_months_only(tmp_path: Path, data_dirs: Path) -> None:
    first = do_import(write(tmp_path / "rail_0301.csv", [HEADER, BODY[0], BODY[2]]))
    before = {p: p.read_bytes() for p in (data_dirs / "evidence").rglob("*.parquet")}
    second = do_import(
        write(tmp_path / "rail_0402.csv", [HEADER, BODY[2], f"{ID_A},张三,2026-04-02,G9,太原,大同"])
    )
    assert first.status == second.status == ImportStatus.SUCCEEDED
    assert (second.rows_used, second.duplicate_rows) == (1, 1)  # ID_B's trip of April 1 was stored
    after = {p: p.read_bytes() for p in (data_dirs / "evidence").rglob("*.parquet")}
    assert {p: after[p] for p in before} == before, "earlier files untouched"
    assert sorted(str(p.relative_to(data_dirs / "evidence")) for p in set(after) - set(before)) == [
        f"kind=rail/month=2026-04/b{second.pk}-{second.sha256[:8]}.parquet"
    ]
    records = selectors.evidence_for_person(id_number=ID_A)
    assert [(r["date"], r["file_name"], r["row"]) for r in records] == [
        (date(2026, 4, 2), "rail_0402.csv", 3),
        (date(2026, 3, 5), "rail_0301.csv", 2),
    ]


@pytest.mark.django_db
def test_a_file_with_empty_lines_keeps_the_rows_a_spreadsheet_shows(tmp_path: Path, data_dirs: Path) -> None:
    batch = do_import(write(tmp_path / "rail_2026.csv", [HEADER, BODY[0], "", "", BODY[3], BODY[2]]))
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert [(r.row, r.reason) for r in selectors.rejects_for(batch=batch)] == [(5, "bad_id_checksum")]
    assert [r["row"] for r in selectors.evidence_for_person(id_number=ID_B)] == [6]
    assert store.live_manifests("rail")[0].batch_id == batch.pk


@pytest.mark.django_db
def test_an_empty_line_in_a_file_without_its_last_line_end_keeps_the_numbering(
    tmp_path: Path, data_dirs: Path
) -> None:
    """The SQL path allowed one line fewer than its records for a missing last line end, which
    also hid one skipped empty line: the rows after it were numbered one too low."""
    path = tmp_path / "rail_0305.csv"
    path.write_bytes("\n".join([HEADER, BODY[0], "", BODY[3], BODY[2]]).encode())
    batch = do_import(path)
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    assert (batch.rows_read, batch.blank_rows) == (3, 1)
    assert [(r.row, r.reason) for r in selectors.rejects_for(batch=batch)] == [(4, "bad_id_checksum")]
    assert [r["row"] for r in selectors.evidence_for_person(id_number=ID_B)] == [5]


@pytest.mark.django_db
@pytest.mark.parametrize("end", ["\n\n\n", "\r\n\r\n", "\r\r"])
def test_empty_lines_that_end_a_feed_are_no_rows_whichever_path_imports_it(
    tmp_path: Path, data_dirs: Path, end: str
) -> None:
    """Two files ending in empty lines, one the store reads itself, one it hands to the readers
    (an empty line between its rows): each counts its rows and its blank rows (the row of empty
    cells, and the empty line between rows) and none for the empty lines at its end; the counts
    reconcile."""
    fast = do_import(write(tmp_path / "rail_0301.csv", [HEADER, *BODY], end=end))
    trains = str.maketrans({"G": "D", "K": "T"})  # other trains: no row stored before
    other = [
        ",".join([*line.split(",")[:3], *(c.translate(trains) for c in line.split(",")[3:])]) for line in BODY
    ]
    slow = do_import(write(tmp_path / "rail_0302.csv", [HEADER, other[0], "", *other[1:]], end=end))
    assert fast.status == slow.status == ImportStatus.SUCCEEDED, (fast.message, slow.message)
    for batch, blank in ((fast, 1), (slow, 2)):
        counts = (
            batch.rows_read,
            batch.rows_used,
            batch.rows_rejected,
            batch.duplicate_rows,
            batch.blank_rows,
        )
        assert counts == (7, 3, 3, 1, blank)
        assert batch.rows_read == batch.rows_used + batch.rows_rejected + batch.duplicate_rows


@pytest.mark.django_db
@pytest.mark.parametrize("end", ["\r", "\r\r\n"])
def test_a_feed_with_carriage_returns_keeps_every_row_and_its_spreadsheet_row(
    tmp_path: Path, data_dirs: Path, end: str
) -> None:
    """Lone CRs end rows for the readers and a spreadsheet; the native scan used to read none of
    a CR-only file's rows (and the content hash then refused the file again) and to number
    `\\r\\r\\n` rows by line feeds."""
    bad = f"{ID_B[:17]}{'0' if ID_B[17] != '0' else '1'}"
    lines = ["身份证号,姓名,死亡日期,信息来源", f"{ID_A},张三,2026-06-01,民政", f"{bad},李四,2026-06-02,民政"]
    path = tmp_path / "death_0601.csv"
    path.write_bytes(("".join(line + end for line in lines)).encode())
    batch = do_import(path)
    assert batch.status == ImportStatus.SUCCEEDED, batch.message
    step = 2 if end == "\r\r\n" else 1  # CR CR LF: a row end, then an empty row
    assert (batch.rows_used, batch.rows_rejected) == (1, 1)
    assert [(r.row, r.reason) for r in selectors.rejects_for(batch=batch)] == [
        (1 + 2 * step, "bad_id_checksum")
    ]
    assert [r["row"] for r in selectors.evidence_for_person(id_number=ID_A)] == [1 + step]


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_overlapping_files_at_once_store_each_row_once(
    tmp_path: Path, data_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Import A pauses after reading the stored rows until B has read them too (or, once B
    waits for A's lock, until a second has passed); B then normalises its file only after A
    has committed. Without a lock both read the store empty and both store ID_A's trip."""
    import threading

    from django.db import connection

    shared = f"{ID_A},张三,2026-03-05,G123,太原南,北京西"
    path_a = write(tmp_path / "rail_a.csv", [HEADER, shared, f"{ID_B},李四,2026-03-06,K1,大同,太原"])
    path_b = write(tmp_path / "rail_b.csv", [HEADER, f"{ID_B},李四,2026-03-07,K2,大同,太原", shared])
    # The audit log is append-only (triggers): a transactional test's flush could not remove it.
    monkeypatch.setattr(services, "audit_record", lambda **kwargs: None)
    batches = {
        name: services.import_submit(source=p, file_name=p.name, kind=None, user=None, now=NOW, enqueue=False)
        for name, p in (("A", path_a), ("B", path_b))
    }
    a_paused, b_read, a_done = threading.Event(), threading.Event(), threading.Event()
    live_manifests, ingest_csv = store.live_manifests, EvidenceStore.ingest_csv

    def reading(kind: str | None = None) -> Any:
        found = live_manifests(kind)
        if threading.current_thread().name == "B":
            b_read.set()
        return found

    def ingesting(self: EvidenceStore, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "A":
            a_paused.set()
            b_read.wait(timeout=1)
        else:
            assert a_done.wait(timeout=60)
        return ingest_csv(self, *args, **kwargs)

    monkeypatch.setattr(store, "live_manifests", reading)
    monkeypatch.setattr(EvidenceStore, "ingest_csv", ingesting)
    done: dict[str, ImportBatch] = {}

    def run(name: str) -> None:
        try:
            done[name] = services.import_execute(batch_id=batches[name].pk, now=NOW)
        finally:
            if name == "A":
                a_done.set()
            connection.close()

    thread_a = threading.Thread(target=run, args=("A",), name="A")
    thread_a.start()
    assert a_paused.wait(timeout=60)
    thread_b = threading.Thread(target=run, args=("B",), name="B")
    thread_b.start()
    thread_a.join(timeout=120)
    thread_b.join(timeout=120)
    assert done["A"].status == done["B"].status == ImportStatus.SUCCEEDED, (
        done["A"].message,
        done["B"].message,
    )
    assert (done["A"].rows_used, done["B"].rows_used, done["B"].duplicate_rows) == (2, 1, 1)
    keys = [row[0] for row in stored(store.evidence_store())]
    assert sorted(keys) == sorted([store_key(ID_A), store_key(ID_B), store_key(ID_B)])
