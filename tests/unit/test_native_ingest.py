"""The native CSV scan (zige.engine.native) gives the store the SQL path gives (issue 6 item 2).

Every test ingests the same file twice, once through the native scan and once through SQL only
(`EvidenceStore(use_native=False)`), and compares everything an import leaves: the files of the
store (names and rows, in order), the manifest, the counts and the rejects. The native scan is a
fast path: a row it is not sure of goes through the SQL, so the comparison covers both the rows it
normalises itself and its hand-over. `assert_same_store` also reads the file through
`zige.engine.readers` (`ingest_table`, the path of the files the other two hand over), which must
give the same again.
"""

from __future__ import annotations

import gc
import itertools
import mmap
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from zige.bench.ingest import messy_csv
from zige.engine import native, readers
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.store import (
    EvidenceStore,
    IngestResult,
    NotFastPath,
    _month_runs,
    _months_and_days,
    _pieces,
    native_eligible,
)
from zige.ids import check_digit

REQUIRED = os.environ.get("ZIGE_REQUIRE_NATIVE") == "1"  # make test: setup built it
pytestmark = pytest.mark.skipif(
    not native.available() and not REQUIRED, reason="native library not built (make setup)"
)

AS_OF = date(2026, 11, 30)
KINDS = {k.code: k for k in BUILTIN_KINDS}
RAIL = KINDS["rail"]
HEADER = "身份证号,姓名,乘车日期,车次,出发站,到达站"


def make_id(region: int, born: date, seq: int) -> str:
    first17 = f"{region:06d}{born:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


GOOD = make_id(140105, date(1950, 3, 5), 123)
OTHER = make_id(140106, date(1948, 12, 31), 7)


def ingest(
    tmp_path: Path, name: str, path: Path, *, use_native: bool, kind: Any = RAIL, batches: int = 1
) -> tuple[EvidenceStore, list[IngestResult], list[list[tuple[Any, ...]]]]:
    """Ingest `path` as batches 1..n into a fresh store; the results and each batch's rejects."""
    estore = EvidenceStore(tmp_path / name, use_native=use_native)
    con = duckdb.connect()
    results, rejects = [], []
    for batch in range(1, batches + 1):
        results.append(estore.ingest_csv(con, path=path, kind=kind, batch_id=batch, tag="t", as_of=AS_OF))
        rejects.append(con.execute("SELECT * FROM ingest_rejects ORDER BY row_no").fetchall())
    return estore, results, rejects


def store_contents(estore: EvidenceStore) -> dict[str, list[dict[str, Any]]]:
    """Every file of the store (relative path) with its rows in file order."""
    return {
        str(path.relative_to(estore.root)): pq.read_table(path).to_pylist()
        for path in sorted(estore.root.rglob("*.parquet"))
    }


def counts(result: IngestResult) -> tuple[Any, ...]:
    return (
        result.rows_read, result.rows_used, result.rows_rejected, result.duplicate_rows, result.blank_rows,
        result.header_row, result.encoding, result.months, result.manifest.files, result.manifest.rows,
    )  # fmt: skip


def ingest_read(
    tmp_path: Path, name: str, path: Path, *, kind: Any = RAIL, batches: int = 1
) -> tuple[EvidenceStore, list[IngestResult], list[list[tuple[Any, ...]]]]:
    """`ingest` through `zige.engine.readers` (`ingest_table`): the path of every file the other
    two hand over, and of `zige certify`."""
    estore = EvidenceStore(tmp_path / name, use_native=False)
    con = duckdb.connect()
    results, rejects = [], []
    for batch in range(1, batches + 1):
        raw = readers.read_table(path, kind.columns)
        results.append(estore.ingest_table(con, raw=raw, kind=kind, batch_id=batch, tag="t", as_of=AS_OF))
        rejects.append(con.execute("SELECT * FROM ingest_rejects ORDER BY row_no").fetchall())
    return estore, results, rejects


def reconciles(result: IngestResult) -> bool:
    return result.rows_read == result.rows_used + result.rows_rejected + result.duplicate_rows


def assert_same_store(
    tmp_path: Path, path: Path, *, kind: Any = RAIL, batches: int = 1
) -> list[IngestResult]:
    """The native scan, the SQL path and the readers give one store, counts and rejects."""
    fast, fast_results, fast_rejects = ingest(
        tmp_path, "native", path, use_native=True, kind=kind, batches=batches
    )
    slow, slow_results, slow_rejects = ingest(
        tmp_path, "sql", path, use_native=False, kind=kind, batches=batches
    )
    read, read_results, read_rejects = ingest_read(tmp_path, "readers", path, kind=kind, batches=batches)
    assert all(r.native for r in fast_results), fast.native_note
    assert not any(r.native for r in slow_results)
    assert [counts(r) for r in fast_results] == [counts(r) for r in slow_results]
    assert [counts(r) for r in fast_results] == [counts(r) for r in read_results]
    assert all(reconciles(r) for r in fast_results + slow_results + read_results)
    assert fast_rejects == slow_rejects == read_rejects
    assert store_contents(fast) == store_contents(slow) == store_contents(read)
    return fast_results


def write_csv(path: Path, lines: list[str], *, newline: str = "\n", end: str = "\n") -> Path:
    path.write_bytes((newline.join([HEADER, *lines]) + end).encode("utf-8"))
    return path


def test_the_generated_messy_feed_gives_the_same_store(tmp_path: Path) -> None:
    path = messy_csv(tmp_path / "gen", 40_000, seed=3)
    result = assert_same_store(tmp_path, path)[0]
    # The generator's mess reaches both sides: rejects, duplicates and several months.
    assert result.rows_rejected > 100
    assert result.duplicate_rows > 50
    assert len(result.months) == 12


EDGE_ROWS = [
    f"{GOOD},张三,2026-03-05,G1,太原南,北京西",
    f"{GOOD.lower()} ,张 三,2026/3/5,G1, 太原南,北京西\u3000",  # same record written differently
    f"\u3000{GOOD[:6]} {GOOD[6:]},张三,20260305,G1,太原南,北京西",  # a third copy
    f"'{GOOD},张三,2026年3月5日,G1,太原南,北京西",
    f"{GOOD.translate(str.maketrans('0123456789', '０１２３４５６７８９'))},张三,2026.03.05,G2,太原南,大同",
    f"{GOOD[:6]}{GOOD[8:17]},老号码,1999-12-31 08:30:00,K7,大同,太原",  # a 15-digit number
    f"{OTHER},李四,2026-02-29,G3,太原,北京",  # not a day
    f"{OTHER},李四,2026-13-01,G3,太原,北京",
    f"{OTHER},李四,45000,G3,太原,北京",  # an Excel serial day
    f"{OTHER},李四,2026-3-5T10:00,G3,太原,北京",
    f"{OTHER},李四,0999-01-01,G3,太原,北京",
    f"{OTHER},,2026-03-06,G3,太原,北京",  # no name
    f"{OTHER},\u3000,2026-03-06,G3,太原,北京",
    f"{OTHER},\u00a0李四\u00a0,2026-03-06,G3,太原,北京",
    f"{OTHER},李四,,G3,太原,北京",  # no date
    f"{OTHER[:17]}{'1' if OTHER[17] != '1' else '2'},李四,2026-03-07,G3,太原,北京",  # check digit
    f"{OTHER[:16]},李四,2026-03-07,G3,太原,北京",  # too short
    f"{OTHER}X,李四,2026-03-07,G3,太原,北京",  # too long
    "14010520300101123X,未来,2026-03-07,G3,太原,北京",  # born after the as-of date
    ",,,,,",  # a blank row
    " , ,\u3000, , ,",  # another
    f'{OTHER},"李四, 先生",2026-03-08,G5,"太原,南",北京',  # quoted values
    f'{OTHER},"李""四",2026-03-08,G5,太原,北京',
    f"{OTHER},李\t四,2026-03-09,G6,太原,北京",  # a tab inside
    f"{OTHER},李四,2026-03-10,\u2003G7\u2003,太原\u3000南,北京",
    f"{OTHER},李四,2026-03-10,G7,太原 南,北京",  # not the same detail as the row above
    f"{OTHER},李四,2026-03-10,G7,太原 南,北京",  # an exact duplicate of the row above
    f"{GOOD},张三,1950-03-04,G1,太原南,北京西",  # a day before the birth date: bad_date
    f"{GOOD},张三,1950-03-05,G9,太原南,北京西",  # the birth date itself: a possible day
    f"{OTHER[:6]}{OTHER[8:17]},老号码,1948-12-30,K7,大同,太原",  # a 15-digit ID, before its birth
    f"{OTHER},李四,2026-01-31,D1,大同,忻州",
    f"{OTHER},李四,2025-12-31,D1,大同,忻州",
    # The rejects the native scan gives itself (an empty ID on a row with a date, a plain ID with
    # a wrong check character) and their neighbours, which it leaves to the SQL path.
    '"",张三,2026-03-05,G1,太原南,北京西',
    ",张三,2026-03-05,G1,太原南,北京西",
    '"",,2026-03-05,"",,',  # not blank: the date
    '"","","","","",""',  # blank
    '"",张三,"",G1,太原南,北京西',  # no date either: the SQL path says which comes first
    '"",张三,2026-13-05,G1,太原南,北京西',
    '" ",张三,2026-03-05,G1,太原南,北京西',
    '"\u3000",张三,2026-03-05,G1,太原南,北京西',
    f'{OTHER[:17]}{"X" if OTHER[17] != "X" else "0"},"",2026-03-05,"",太原,',
    f"{OTHER[:17]}{'X' if OTHER[17] != 'X' else '0'},张三,2026-13-05,G1,太原,北京",
    f'"{OTHER[:17]}{"X" if OTHER[17] != "X" else "0"}",张三,2026-03-05,G1,太原,北京',
    f"{OTHER[:17]}{'x' if OTHER[17] != 'X' else '0'},张三,2026-03-05,G1,太原,北京",
    f"{OTHER[:16]}A{OTHER[17]},张三,2026-03-05,G1,太原,北京",
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_edge_rows_give_the_same_store(tmp_path: Path, newline: str) -> None:
    """Ending in two empty lines, which no path counts (the readers counted them as blank rows)."""
    path = write_csv(tmp_path / "edge.csv", EDGE_ROWS, newline=newline, end=newline * 3)
    result = assert_same_store(tmp_path, path)[0]
    assert result.blank_rows == 3
    assert result.rows_rejected >= 10


def import_feed(tmp_path: Path, name: str, path: Path, *, use_native: bool | None) -> tuple[Any, ...]:
    """As `zige.feeds.services` imports a file: `ingest_csv` (native scan first, or SQL only),
    the readers when it hands the file over; `use_native=None`: the readers alone. The counts,
    rejects, store and which path read the file."""
    estore, con = EvidenceStore(tmp_path / name, use_native=bool(use_native)), duckdb.connect()
    try:
        if use_native is None:
            raise NotFastPath("the readers alone")
        result = estore.ingest_csv(con, path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
        taken = "native" if result.native else "sql"
    except NotFastPath:
        raw = readers.read_table(path, RAIL.columns)
        result = estore.ingest_table(con, raw=raw, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
        taken = "readers"
    rejects = con.execute("SELECT * FROM ingest_rejects ORDER BY row_no").fetchall()
    return counts(result), reconciles(result), rejects, store_contents(estore), taken


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize(
    "end",
    [
        "\n\n",
        "\n\n\n",
        "\r\n\r\n",
        "\r\n\r\n\r\n",
        "\r\r",
        "\r\r\r",
        "\r\r\n",
        "\n\r",
        "\n\r\n",
        "\r\n\r",
        "\r\n\n",
    ],
)
def test_empty_lines_that_end_a_file_are_no_rows_on_any_path(tmp_path: Path, newline: str, end: str) -> None:
    """The last row's line end and empty lines after it, in LF, CRLF and lone CR (a row end to
    the readers, stripped from the end by the native scan, refused by the SQL path when the file
    mixes them): whichever path reads the file, it has the rows of the file without those lines
    — the same counts, rejects and store — and the blank rows before them still count: the
    rows of empty cells among the edge rows and one just before the end."""
    rows = [*EDGE_ROWS, ",,,,,"]
    plain = import_feed(
        tmp_path, "plain", write_csv(tmp_path / "plain.csv", rows, newline=newline), use_native=None
    )
    path = write_csv(tmp_path / "ended.csv", rows, newline=newline, end=end)
    paths = {str(how): import_feed(tmp_path, str(how), path, use_native=how) for how in (True, False, None)}
    for got in paths.values():
        assert got[:4] == plain[:4]
    blank_rows, rows_read = plain[0][4], plain[0][0]
    assert plain[1] and blank_rows == 4 and rows_read == len(rows) - 4
    # The native scan reads each of these files itself, the SQL path at least those with one kind
    # of line end (DuckDB refuses some mixtures: then the readers read them).
    assert paths["True"][4] == "native"
    assert paths["False"][4] == "sql" or end.replace(newline, "")


@pytest.mark.parametrize("end", ["\n\n\n", "\r\n\r\n", "\r\r", "\n\r\n"])
def test_a_header_followed_by_empty_lines_only_has_no_rows_on_any_path(tmp_path: Path, end: str) -> None:
    """No row and no blank row, whichever path reads it."""
    path = tmp_path / "empty.csv"
    path.write_bytes(f"{HEADER}{end}".encode())
    for how in (True, False, None):
        got = import_feed(tmp_path, str(how), path, use_native=how)
        assert got[0][:5] == (0, 0, 0, 0, 0) and got[1], (how, got[4])


def test_the_scan_rejects_only_an_empty_id_on_a_dated_row_and_a_plain_id_with_a_wrong_check() -> None:
    """Which of the edge rows the scan rejects itself (the test above holds them to the SQL
    path's rejects): spreadsheet rows, reasons and values."""
    body = "\n".join(EDGE_ROWS).encode() + b"\n"
    buf = np.frombuffer(body, dtype=np.uint8)
    scan = native.scan_file(
        buf, 0, len(body), first_row=2, threads=1, width=6, delimiter=",", id_col=0, name_col=1, date_col=2,
        other_cols=[3, 4, 5], other_required=[c.required for c in RAIL.others],
        birth_low=18900101, birth_high=20261130,
    )  # fmt: skip
    (part,) = scan.rejects
    values = [bytes(part.data[a:b]).decode() for a, b in zip([0, *part.ends[:-1]], part.ends, strict=True)]
    got = [
        (int(row), native.REJECT_REASONS[int(code)], value)
        for row, code, value in zip(part.rows, part.codes, values, strict=True)
    ]
    wrong = f"{OTHER[:17]}{'X' if OTHER[17] != 'X' else '0'}"
    expected_lines = {
        f"{OTHER[:17]}{'1' if OTHER[17] != '1' else '2'},李四,2026-03-07,G3,太原,北京": "bad_id_checksum",
        "14010520300101123X,未来,2026-03-07,G3,太原,北京": "bad_id_checksum",  # the first check fails
        '"",张三,2026-03-05,G1,太原南,北京西': "missing_value",
        ",张三,2026-03-05,G1,太原南,北京西": "missing_value",
        '"",,2026-03-05,"",,': "missing_value",
        f'{wrong},"",2026-03-05,"",太原,': "bad_id_checksum",
        f"{wrong},张三,2026-13-05,G1,太原,北京": "bad_id_checksum",
    }
    expected = [
        (EDGE_ROWS.index(line) + 2, reason, line.split(",")[0] if reason == "bad_id_checksum" else "")
        for line, reason in expected_lines.items()
    ]
    assert got == sorted(expected)


@pytest.mark.parametrize("earliest", [None, "1950-01-01"])
def test_dates_before_1970_and_far_apart(tmp_path: Path, earliest: str | None) -> None:
    rows = [
        f"{GOOD},张三,1969-12-31,G1,太原,北京",  # the month just before 1970 (month -1)
        f"{GOOD},张三,1969-12-30,G1,太原,北京",
        f"{OTHER},李四,2999-06-30,G1,太原,北京",
        f"{OTHER},李四,1970-01-01,G1,太原,北京",
    ]
    if earliest:
        rows.append(f"{OTHER},李四,{earliest},G1,太原,北京")
    result = assert_same_store(tmp_path, write_csv(tmp_path / "old.csv", rows))[0]
    assert result.months == [*(["1950-01"] if earliest else []), "1969-12", "1970-01", "2999-06"]


def test_a_second_batch_of_the_same_rows_is_all_duplicates_on_both_paths(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "again.csv", EDGE_ROWS)
    first, second = assert_same_store(tmp_path, path, batches=2)
    assert second.rows_used == 0
    assert second.duplicate_rows == first.rows_read - first.rows_rejected


def test_a_month_larger_than_its_share_is_written_in_pieces_holding_the_same_rows(tmp_path: Path) -> None:
    """A month of more rows than `piece_rows` and than its share of the threads' work is written
    as several files of consecutive rows (so that a day's feed, one month, is written on every
    core): together, in order, they hold the SQL path's rows of the month; a second batch of
    the same file finds every row stored before, in the pieces."""
    path = messy_csv(tmp_path / "gen", 6_000, seed=5)
    stores = {
        "native": EvidenceStore(tmp_path / "native", use_native=True, piece_rows=100),
        "sql": EvidenceStore(tmp_path / "sql", use_native=False),
    }
    con = duckdb.connect()
    con.execute("SET threads = 64")  # a share of the work: 6,000 / 64 rows; `piece_rows` is more
    results = {
        name: [estore.ingest_csv(con, path=path, kind=RAIL, batch_id=b, tag="t", as_of=AS_OF) for b in (1, 2)]
        for name, estore in stores.items()
    }
    native_first, sql_first = results["native"][0], results["sql"][0]
    assert native_first.native and not sql_first.native
    assert native_first.months == sql_first.months and len(native_first.months) == 12
    assert (native_first.rows_used, native_first.rows_rejected, native_first.duplicate_rows) == (
        sql_first.rows_used, sql_first.rows_rejected, sql_first.duplicate_rows,
    )  # fmt: skip
    for month in sql_first.months:
        directory = f"kind=rail/month={month}"
        expected = pq.read_table(stores["sql"].root / f"{directory}/b1-t.parquet").to_pylist()
        pieces = [f for f in native_first.manifest.files if f.startswith(directory + "/")]
        count = -(-len(expected) // 100)  # about 500 rows a month, at most 100 a piece
        assert count >= 4 and [Path(f).name for f in pieces] == [
            f"b1-t-{k}.parquet" for k in range(1, count + 1)
        ]
        assert [
            row for f in pieces for row in pq.read_table(stores["native"].root / f).to_pylist()
        ] == expected
        sizes = [pq.ParquetFile(stores["native"].root / f).metadata.num_rows for f in pieces]
        assert max(sizes) - min(sizes) <= 1
    for name in stores:
        second = results[name][1]
        first = results[name][0]
        assert second.rows_used == 0 and second.duplicate_rows == first.rows_read - first.rows_rejected


def test_pieces_cover_a_month_in_order_each_at_most_the_limit() -> None:
    for first, last, at_most in [(0, 0, 5), (3, 4, 5), (0, 10, 5), (0, 11, 5), (7, 1_007, 1), (0, 10, 100)]:
        pieces = _pieces(first, last, at_most)
        assert pieces[0][0] == first and pieces[-1][1] == last
        assert all(a == b for (_, a), (b, _) in itertools.pairwise(pieces))
        assert all(b - a <= at_most for a, b in pieces)
        assert len(pieces) == max(1, -(-(last - first) // at_most))


@given(st.lists(st.integers(min_value=-30, max_value=30), max_size=60))
def test_month_runs_give_each_month_of_a_sorted_array_and_where_it_starts(values: list[int]) -> None:
    months = np.asarray(sorted(values), dtype=np.int32)  # the ordered rows' months, as int32
    found, starts = _month_runs(months)
    assert found == sorted(set(values))
    assert starts == [sorted(values).index(m) for m in found]
    assert all(isinstance(m, int) for m in found)


def test_a_file_without_the_last_line_end_and_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + "\n".join([HEADER, *EDGE_ROWS[:6]])).encode("utf-8"))
    assert_same_store(tmp_path, path)


def test_a_title_row_above_the_header(tmp_path: Path) -> None:
    path = tmp_path / "title.csv"
    path.write_bytes("\n".join(["2026年3月铁路出行数据,,,,,", HEADER, *EDGE_ROWS]).encode("utf-8"))
    results = assert_same_store(tmp_path, path)
    assert results[0].header_row == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            f"{GOOD},张三,2026-03-05,G1,太原,北京\n\n{OTHER},李四,2026-03-05,G1,太原,北京\n", id="empty-line"
        ),
        pytest.param(
            f"{GOOD},张三,2026-03-05,G1,太原,北京\n\n{OTHER[:17]}{'1' if OTHER[17] != '1' else '2'},李四,2026-03-05,"
            f"G1,太原,北京\n{OTHER},李四,2026-03-06,G1,太原,北京",
            id="empty-line-and-no-last-line-end",  # not one line short for the missing end
        ),
        pytest.param(f"{GOOD},张三,2026-03-05,G1,太原\n", id="ragged"),
        pytest.param(f'{GOOD},"张\n三",2026-03-05,G1,太原,北京\n', id="quoted-line-break"),
    ],
)
def test_what_the_sql_path_refuses_the_native_scan_hands_over(tmp_path: Path, body: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(f"{HEADER}\n{body}".encode())
    for use_native in (True, False):
        estore = EvidenceStore(tmp_path / f"s{use_native}", use_native=use_native)
        with pytest.raises(NotFastPath):
            estore.ingest_csv(duckdb.connect(), path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
        assert not list(estore.root.rglob("*.parquet")) if estore.root.exists() else True
    assert EvidenceStore(tmp_path / "n").native_note == ""


BAD_CHECK = f"{OTHER[:17]}{'1' if OTHER[17] != '1' else '2'}"
A_ROW, B_ROW, BAD_ROW = (
    f"{GOOD},张三,2026-03-05,G1,太原,北京",
    f"{OTHER},李四,2026-03-06,G2,太原,北京",
    f"{BAD_CHECK},王五,2026-03-07,G3,太原,北京",
)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        # CR only: the readers (and a spreadsheet) read one row; line feeds count none
        pytest.param(f"{HEADER}\r{A_ROW}\r", [2], id="lone-cr-only"),
        pytest.param(f"{HEADER}\r{A_ROW}\n{B_ROW}\n", [2, 3], id="lone-cr-after-the-header"),
        pytest.param(f"{HEADER}\n{A_ROW}\r{B_ROW}\n{BAD_ROW}\n", [2, 3, 4], id="lone-cr-between-rows"),
        pytest.param(f"{HEADER}\n{A_ROW}\r\n{B_ROW}\r{BAD_ROW}", [2, 3, 4], id="lone-cr-no-final-end"),
        # CR CR LF: a row end and an empty row to the readers and a spreadsheet
        pytest.param(f"{HEADER}\r\r\n{A_ROW}\r\r\n{BAD_ROW}\r\r\n{B_ROW}\r\r\n", [3, 5, 7], id="cr-cr-lf"),
        pytest.param(f"{HEADER}\r\n{A_ROW}\r\r\n{BAD_ROW}\r\n{B_ROW}\r\n", [2, 4, 5], id="cr-cr-lf-once"),
    ],
)
def test_a_lone_carriage_return_goes_to_the_readers_on_both_paths(
    tmp_path: Path, text: str, rows: list[int]
) -> None:
    """Python's csv module (the sniffer, the readers) ends a row at a lone CR, the native scan
    and the SQL path's line count at a line feed only: neither may read such a file (the
    native scan used to read 0 rows of a CR-only file, and number `\\r\\r\\n` rows otherwise)."""
    path = tmp_path / "cr.csv"
    path.write_bytes(text.encode())
    for use_native in (True, False):
        estore = EvidenceStore(tmp_path / f"s{use_native}", use_native=use_native)
        with pytest.raises(NotFastPath):
            estore.ingest_csv(duckdb.connect(), path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
        assert not estore.root.exists() or not list(estore.root.rglob("*.parquet"))
    raw = readers.read_table(path, RAIL.columns)
    assert raw.table.column("_row").to_pylist() == rows


@pytest.mark.parametrize(
    "line", [f"{A_ROW}\r{B_ROW}", f"{GOOD},张\r三,2026-03-05,G1,太原,北京", f"{A_ROW}\r\r"]
)
def test_the_scan_stops_at_a_carriage_return_inside_a_line(line: str) -> None:
    body = f"{B_ROW}\n{line}\n{B_ROW}\n".encode()
    buf = np.frombuffer(body, dtype=np.uint8)
    with pytest.raises(native.ScanAborted, match="carriage return"):
        native.scan_file(
            buf, 0, len(body), first_row=2, threads=1, width=6, delimiter=",", id_col=0, name_col=1,
            date_col=2, other_cols=[3, 4, 5], other_required=[c.required for c in RAIL.others],
            birth_low=18900101, birth_high=20261130,
        )  # fmt: skip


@pytest.mark.parametrize("length", [200_000, 3_000_000])
def test_a_long_cell_gives_the_same_rows_on_every_path(tmp_path: Path, length: int) -> None:
    """A long cell in an ignored column: the native scan reads it, the SQL path reads it or (a
    line past DuckDB's `max_line_size`) hands the file to the readers, which read it too (they
    refused a cell over 131,072 characters)."""
    path = tmp_path / "long.csv"
    path.write_bytes(
        (f"{HEADER},备注\n{A_ROW},{'x' * length}\n{BAD_ROW},\n{B_ROW},{'y' * length}\n").encode()
    )
    outcomes = []
    for use_native in (True, False):
        estore, con = EvidenceStore(tmp_path / f"s{use_native}", use_native=use_native), duckdb.connect()
        try:
            result = estore.ingest_csv(con, path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
        except NotFastPath:
            raw = readers.read_table(path, RAIL.columns)
            result = estore.ingest_table(con, raw=raw, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
        rejects = con.execute("SELECT row_no, reason FROM ingest_rejects").fetchall()
        rows = [r["row_no"] for rows in store_contents(estore).values() for r in rows]
        outcomes.append((result.rows_read, result.rows_used, result.rows_rejected, rejects, sorted(rows)))
    raw = readers.read_table(path, RAIL.columns)
    assert outcomes[0] == outcomes[1] == (3, 2, 1, [(3, "bad_id_checksum")], [2, 4])
    assert raw.table.column("_row").to_pylist() == [2, 3, 4]


def test_invalid_utf8_is_handed_over_too(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    good = "".join(f"{GOOD},张三,2026-03-05,G{i},太原,北京\n" for i in range(2000))  # past the sniffed head
    path.write_bytes(f"{HEADER}\n{good}{GOOD},".encode() + b"\xe5\xbc" + b",2026-03-05,G1,a,b\n")
    estore = EvidenceStore(tmp_path / "s")
    with pytest.raises(NotFastPath):
        estore.ingest_csv(duckdb.connect(), path=path, kind=RAIL, batch_id=1, tag="t", as_of=AS_OF)
    assert "UTF-8" in estore.native_note


def test_the_library_is_built_and_loaded() -> None:
    assert native.available(), "make setup builds src/zige/engine/native/_fastcsv.so"


def test_small_pages_are_an_array_of_their_own_that_outlives_its_slices() -> None:
    """The scan's arrays (`native.small_pages`): as `np.empty` gives them, writable, and the
    memory stays mapped while any slice of it is alive."""
    whole = native.small_pages(1 << 20, np.int64)
    assert whole.shape == (1 << 20,) and whole.dtype == np.int64 and whole.flags.writeable
    whole[:] = np.arange(1 << 20)
    tail = whole[-3:]
    del whole
    gc.collect()
    assert tail.tolist() == [(1 << 20) - 3, (1 << 20) - 2, (1 << 20) - 1]
    assert native.small_pages(0, np.uint8).size == 0


def test_only_kinds_without_a_result_column_take_the_native_scan() -> None:
    eligible = {code for code, kind in KINDS.items() if native_eligible(kind)}
    assert {"rail", "flight", "death", "cremation", "release"} <= eligible
    assert not eligible & {"app_auth", "terminal_auth", "unit_confirm", "declared", "sentence"}


# ---------------------------------------------------------------------------------------------
# Generated rows: fragments of every kind of mess, combined at random


def _id(draw: st.DrawFn) -> str:
    region = draw(st.integers(110000, 659999))
    born = draw(st.dates(date(1890, 1, 1), date(2027, 1, 1)))
    base = make_id(region, born, draw(st.integers(0, 999)))
    how = draw(
        st.sampled_from(
            [
                "plain",
                "plain",
                "lower",
                "lower bare",
                "inner x",
                "inner junk",
                "space",
                "full",
                "old",
                "bad",
                "short",
                "quote",
                "empty",
                "quoted empty",
            ]
        )
    )
    return {
        "plain": base,
        "lower": base.lower() + " ",
        # 18 characters, read in place by the scan's fast path (`id_key_of`): a lower-case x at
        # the end, an X or some other character among the first 17
        "lower bare": base.lower(),
        "inner x": _replace_at(base, draw(st.integers(0, 16)), "X"),
        "inner junk": _replace_at(base, draw(st.integers(0, 17)), draw(st.sampled_from(list("-/a :.")))),
        "space": f" {base[:6]}\u00a0{base[6:]}",
        "full": base.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),
        "old": base[:6] + base[8:17],
        "bad": base[:17] + ("0" if base[17] != "0" else "1"),
        "short": base[: draw(st.integers(0, 17))],
        "quote": "`" + base,
        "empty": "",
        "quoted empty": '""',
    }[how]


def _replace_at(text: str, at: int, char: str) -> str:
    return text[:at] + char + text[at + 1 :]


def _day(draw: st.DrawFn) -> str:
    d = draw(st.dates(date(1000, 1, 1), date(9999, 12, 31)))
    how = draw(
        st.sampled_from(
            ["iso", "iso", "slash", "compact", "zh", "dot", "time", "junk", "bad", "iso junk", "zero"]
        )
    )
    if how == "junk":
        return draw(st.text("0123456789-/.年月日T :\u3000", max_size=14))
    if how == "iso junk":  # ten characters as the fast path reads them, one of them wrong
        return _replace_at(f"{d:%Y-%m-%d}", draw(st.integers(0, 9)), draw(st.sampled_from(list("-/0a :."))))
    if how == "zero":  # a year with a leading zero: no date to the SQL path ([1-9]YYY) either
        return f"0{d:%Y-%m-%d}"[:4] + f"{d:%Y-%m-%d}"[4:]
    if how == "bad":
        return f"{d.year}-{draw(st.integers(0, 14)):02d}-{draw(st.integers(0, 33)):02d}"
    return {
        "iso": f"{d:%Y-%m-%d}",
        "slash": f"{d.year}/{d.month}/{d.day}",
        "compact": f"{d:%Y%m%d}",
        "zh": f"{d.year}年{d.month}月{d.day}日",
        "dot": f"{d:%Y.%m.%d}",
        "time": f" {d:%Y-%m-%d} 08:30:00",
    }[how]


# Up to 12 characters: names and details of 8 bytes and more take the scan's 8-byte steps, and
# 、 and の begin with the byte U+3000 begins with (0xE3) without being a space.
_TEXT = st.text(st.sampled_from(list("张李王 大同太原南G1\u3000\u00a0\u2003|-、の")), max_size=12)


@st.composite
def feed_rows(draw: st.DrawFn) -> list[str]:
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        row = [_id(draw), draw(_TEXT), _day(draw), draw(_TEXT), draw(_TEXT), draw(_TEXT)]
        row = [cell if cell or not draw(st.booleans()) else '""' for cell in row]  # empty, or quoted empty
        rows.append(",".join(row))
        if draw(st.booleans()):
            rows.append(rows[draw(st.integers(0, len(rows) - 1))])  # a duplicate
    return rows


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(feed_rows(), st.sampled_from(["\n", "\r\n"]), st.sampled_from(["", "\n", "\n\n", "\n\n\n"]))
def test_generated_rows_give_the_same_store(
    tmp_path_factory: pytest.TempPathFactory, rows: list[str], newline: str, end: str
) -> None:
    tmp_path = tmp_path_factory.mktemp("gen")
    path = write_csv(tmp_path / "g.csv", rows, newline=newline, end=end.replace("\n", newline))
    assert_same_store(tmp_path, path)


# ---------------------------------------------------------------------------------------------
# The order: buckets small enough for the cache give the SQL path's ORDER BY and GROUP BY


HOLE = 3  # rows of garbage between the two ranges of a scan, as between a scan's threads' ranges
GUARD = 77


def guards_intact(scan: native.Scan) -> bool:
    return all(int(array.base[-1]) == GUARD for array in scan.arrays.values())


def make_scan(rows: list[tuple[int, int, int, str, str]], cut: int = 0, room: int = 0) -> native.Scan:
    """A scan holding rows (id_key, day since 1970, row number, name key, detail): the first
    `cut` in one range, then a hole of garbage, then the others in a second range, whose texts
    begin `room` bytes of garbage after the hole's (as `scan_file` reserves room for a range's
    texts), with as many bytes and `room` again after the last."""
    cut = min(cut, len(rows))
    rows = rows[:cut] + [(999, 99_999, -1, "garbage", "garbage")] * (HOLE if cut else 0) + rows[cut:]
    n = len(rows)
    # n + 2 slots (as many as `order_rows` may use) over a buffer with one more: a guard slot,
    # which no call may write (`guards_intact`).
    arrays = {name: np.full(n + 3, GUARD, dtype=dtype)[: n + 2] for name, dtype in native.ROW_ARRAYS.items()}
    for array in arrays.values():
        array[:] = 0
    months, days_of_month = _months_and_days(np.asarray([r[1] for r in rows] or [0], dtype=np.int32))
    texts = {"name": bytearray(), "detail": bytearray()}
    for i, (key, day, row_no, name, detail) in enumerate(rows):
        arrays["id_key"][i], arrays["day"][i], arrays["row_no"][i] = key, day, row_no
        arrays["month"][i] = months[i]
        arrays["sort_key"][i] = (key << 5) | int(days_of_month[i] - 1)
        for column, text in (("name", name), ("detail", detail)):
            if cut and i == cut + HOLE:
                texts[column] += b"~" * room
            arrays[f"{column}_start"][i] = len(texts[column])
            texts[column] += text.encode()
            arrays[f"{column}_end"][i] = len(texts[column])
    data = {
        k: np.frombuffer(bytes(v) + b"\0" * (len(v) + room + 1), dtype=np.uint8).copy()
        for k, v in texts.items()
    }
    ranges = [(0, cut), (cut + HOLE, n - cut - HOLE)] if cut else [(0, n)]
    return native.Scan(arrays, data["name"], data["detail"], ranges, [n], [b""], n, 0, 0)


KEYS = st.sampled_from([110101195001011234, 110101195001011235, 140105194803050012, 650102193001010101, 1])


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(
            KEYS,
            st.one_of(st.integers(20_000, 20_070), st.integers(-400, -330)),  # and months before 1970
            st.sampled_from(["张三", "李四"]),
            st.sampled_from(["G1|a|b", "D2"]),
        ),
        max_size=60,
    ),
    st.sampled_from([1, 2, 3, 8192]),
    st.randoms(use_true_random=False),
    st.sampled_from([1, 2]),
    st.integers(0, 30),
    st.sampled_from([0, 3, 200]),
)
def test_rows_come_out_in_the_store_order_without_duplicates(
    facts: list[tuple[int, int, str, str]], bucket_rows: int, random: Any, threads: int, cut: int, room: int
) -> None:
    row_numbers = list(range(2, len(facts) + 2))
    random.shuffle(row_numbers)  # the SQL path's rows come in any order
    rows = [
        (key // 10, day, row, name, detail)
        for (key, day, name, detail), row in zip(facts, row_numbers, strict=True)
    ]
    scan = make_scan(rows, cut, room)
    filled = [at for at, n in scan.ranges if n]
    # where the second range's texts begin (order_rows writes its outputs over the scan's arrays)
    second_texts = [int(scan.arrays[f"{c}_start"][filled[-1]]) for c in ("name", "detail")] if filled else []
    parts = native.order_rows(scan, scan.ranges, bucket_rows=bucket_rows, threads=threads, split_from=2)
    assert 1 <= len(parts) <= threads
    expected, seen = [], set()
    for key, day, row, name, detail in sorted(
        rows, key=lambda r: (_months_and_days(np.asarray([r[1]]))[0][0], r[0], r[1], r[2])
    ):
        if (key, day, name, detail) not in seen:
            seen.add((key, day, name, detail))
            expected.append((key, day, row, name, detail))
    got = [
        (
            int(out.id_key[i]), int(out.day[i]), int(out.row_no[i]),
            bytes(out.name_data[out.name_off[i] : out.name_off[i + 1]]).decode(),
            bytes(out.detail_data[out.detail_off[i] : out.detail_off[i + 1]]).decode(),
        )
        for out in parts
        for i in range(out.id_key.size)
    ]  # fmt: skip
    assert got == expected
    months = [m for out in parts for m in out.month.tolist()]
    assert months == [int(_months_and_days(np.asarray([r[1]]))[0][0]) for r in expected]
    for out in parts:  # each part's offsets start at 0, one more than its rows
        assert out.name_off[0] == 0 and out.detail_off[0] == 0
        assert out.name_off.size == out.detail_off.size == out.id_key.size + 1
    if len(parts) == 2 and len(filled) == 2 and room:
        # The second part's texts where the second range's were (pages the scan wrote), unless
        # the first half's texts reach past there: then right after those.
        for column, texts, base, start in zip(
            ("name", "detail"), (parts[1].name_data, parts[1].detail_data), (scan.name_data, scan.detail_data),
            second_texts, strict=True,
        ):  # fmt: skip
            every_text = sum(len(r[3 if column == "name" else 4].encode()) for r in rows)
            at = texts.ctypes.data - base.ctypes.data
            assert at == start if start >= every_text else at >= start
    assert guards_intact(scan)  # nothing written past the rows' slots


def test_a_header_without_rows(tmp_path: Path) -> None:
    result = assert_same_store(tmp_path, write_csv(tmp_path / "empty.csv", []))[0]
    assert result.rows_read == 0 and result.manifest.files == ()


def test_store_files_are_encoded_for_the_certification_scans(tmp_path: Path) -> None:
    """The native path's files (docs/performance.md, "The store's Parquet encodings"): the sorted
    key and the row number delta-packed and uncompressed, the dates as dictionaries, the detail
    text uncompressed too (the compaction's files hold it zstd: tests/unit/test_store_compaction.py
    holds them to `_PARQUET_OPTIONS`); and they read back as the SQL path's files do
    (`assert_same_store`)."""
    path = messy_csv(tmp_path / "gen", 20_000, seed=5)
    result = assert_same_store(tmp_path, path)[0]
    files = sorted((tmp_path / "native").rglob("*.parquet"))
    assert files and result.rows_used > 0
    for file in files:
        group = pq.ParquetFile(file).metadata.row_group(0)
        column = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        assert "DELTA_BINARY_PACKED" in column["id_key"].encodings, file
        assert "DELTA_BINARY_PACKED" in column["row_no"].encodings, file
        assert column["id_key"].compression == "UNCOMPRESSED"
        assert column["event_date"].compression == "UNCOMPRESSED"
        assert any("DICTIONARY" in e for e in column["event_date"].encodings)
        assert column["detail"].compression == "UNCOMPRESSED"
        assert column["id_key"].statistics is not None and column["id_key"].statistics.has_min_max


def test_an_import_does_not_load_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas on the first `to_numpy` and the like (1-4 s in a fresh process
    here): a feed import with no rows for the SQL path, one with some (quoted values) and a
    repeated batch (the check against the stored rows) must not pay it (`store._integers`)."""
    path = write_csv(tmp_path / "edge.csv", EDGE_ROWS)
    clean = write_csv(tmp_path / "clean.csv", [f"{GOOD},张三,2026-03-05,G1,太原,北京"])  # no SQL rows
    program = f"""
import sys
import duckdb
from datetime import date
from pathlib import Path
from zige.engine.kinds import BUILTIN_KINDS
from zige.engine.store import EvidenceStore
AS_OF, RAIL = date({AS_OF.year}, {AS_OF.month}, {AS_OF.day}), next(k for k in BUILTIN_KINDS if k.code == "rail")
estore = EvidenceStore(Path({str(tmp_path / "store")!r}), use_native=True)
con = duckdb.connect()
for batch, csv in ((1, {str(clean)!r}), (2, {str(path)!r}), (3, {str(path)!r})):
    result = estore.ingest_csv(con, path=Path(csv), kind=RAIL, batch_id=batch, tag="t", as_of=AS_OF)
    assert result.native and result.rows_read > result.rows_rejected, result
print(result.rows_used, "pandas" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout.split() == ["0", "False"], done.stdout + done.stderr


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> native.MappingPool:
    """A fresh pool of the scan's mappings for the test (`native.small_pages` takes from it)."""
    fresh = native.MappingPool()
    monkeypatch.setattr(native, "POOL", fresh)
    return fresh


HOLDERS = {
    "a view": lambda a: a[10:20],
    "an Arrow buffer": lambda a: pa.py_buffer(a),
    "an Arrow array": lambda a: pa.Array.from_buffers(pa.int64(), a.size // 8, [None, pa.py_buffer(a)]),
}


def _first_byte(held: Any) -> int:
    return (
        int(np.frombuffer(held, dtype=np.uint8)[0])
        if not isinstance(held, pa.Array)
        else int(np.frombuffer(held.buffers()[1], dtype=np.uint8)[0])
    )


@pytest.mark.parametrize("holder", HOLDERS)
def test_a_mapping_is_handed_out_again_only_when_nothing_refers_to_it(
    pool: native.MappingPool, holder: str
) -> None:
    size = 3 << 20
    first = native.small_pages(size, np.uint8)
    first[:] = 7
    held = HOLDERS[holder](first)
    first_address = first.ctypes.data
    del first
    gc.collect()
    # Still referred to (by a view or an Arrow object over it): not handed out.
    while_held = native.small_pages(size, np.uint8)
    second_address = while_held.ctypes.data
    while_held[:] = 9
    assert second_address != first_address and pool.reuses == 0
    assert _first_byte(held) == 7
    del while_held, held
    gc.collect()
    # Both free now: the next request of the same size takes one of them, no third mapping.
    again = native.small_pages(size, np.uint8)
    assert again.ctypes.data in {first_address, second_address}
    assert pool.reuses == 1 and pool.held_bytes() == 2 * native.MappingPool.size_class(size)


def test_small_arrays_are_not_pooled(pool: native.MappingPool) -> None:
    small = native.small_pages(native.POOL_SMALLEST // 2, np.uint8)
    del small
    assert pool.held_bytes() == 0 and native.small_pages(10, np.uint8).size == 10


def test_recycle_keeps_the_newest_free_mappings_and_never_one_in_use(pool: native.MappingPool) -> None:
    pool.keep = 2
    arrays = [native.small_pages((2 + k) << 20, np.uint8) for k in range(4)]
    arrays[0][:] = 5
    in_use = arrays[0]
    del arrays
    gc.collect()
    pool.recycle()
    # Three free: the oldest of them unmapped; the one in use kept and intact.
    assert pool.held_bytes() == sum(native.MappingPool.size_class((2 + k) << 20) for k in (0, 2, 3))
    assert int(in_use[0]) == 5 and int(in_use[-1]) == 5
    assert native.small_pages(3 << 20, np.uint8).size == 3 << 20 and pool.reuses == 1
    pool.clear()
    assert pool.held_bytes() == 0 and int(in_use[1]) == 5


def test_a_pool_turned_off_maps_afresh_every_time() -> None:
    off = native.MappingPool(enabled=False)
    off.add(mmap.mmap(-1, 1 << 20))
    assert off.take(1) is None and off.held_bytes() == 0


@given(st.integers(min_value=native.POOL_SMALLEST, max_value=1 << 40))
def test_size_classes_round_up_to_within_a_fifth_in_whole_pages(size: int) -> None:
    rounded = native.MappingPool.size_class(size)
    assert size <= rounded <= size * 1.19 + mmap.PAGESIZE
    assert rounded % mmap.PAGESIZE == 0
    assert native.MappingPool.size_class(rounded) == rounded  # a class is its own class


def test_an_import_over_the_last_imports_memory_gives_the_same_store(
    tmp_path: Path, pool: native.MappingPool
) -> None:
    """Reused memory holds the last import's bytes: filled with garbage here before each reuse,
    an import must still give, byte for byte, the store it gives on fresh memory."""
    pool.fill_on_reuse = 0xA5
    larger, smaller = messy_csv(tmp_path / "a", 120_000, seed=5), messy_csv(tmp_path / "b", 100_000, seed=6)
    ingest(tmp_path, "first", larger, use_native=True)
    _, results, rejects = ingest(tmp_path, "reused", smaller, use_native=True)
    assert pool.reuses >= 10  # the scan's arrays and the buckets' room, at least
    fresh = native.MappingPool(enabled=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "POOL", fresh)
        _, fresh_results, fresh_rejects = ingest(tmp_path, "fresh", smaller, use_native=True)
    assert all(r.native for r in results)
    assert [counts(r) for r in results] == [counts(r) for r in fresh_results]
    assert rejects == fresh_rejects
    assert store_contents(EvidenceStore(tmp_path / "reused")) == store_contents(
        EvidenceStore(tmp_path / "fresh")
    )


# ---------------------------------------------------------------------------------------------
# The fast split: a line's cells found 16 bytes at a time, its UTF-8 checked ahead (fastcsv.c)

SCAN_OPTIONS: dict[str, Any] = {
    "width": 6, "id_col": 0, "name_col": 1, "date_col": 2, "other_cols": [3, 4, 5],
    "other_required": [c.required for c in RAIL.others], "birth_low": 18900101, "birth_high": 20261130,
}  # fmt: skip
_PIECES = [
    b"a", b"1", b" ", b",", "张".encode(), "é".encode(), "\U00020000".encode(), "\u3000".encode(),
    b"\x80", b"\xc0\xaf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f", b"\xe4\xb8", b"\xff",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=40).map(b"".join) | st.binary(max_size=64), st.integers(0, 40)
)
def test_the_scans_utf8_check_agrees_with_pythons_decoder(data: bytes, shift: int) -> None:
    """Overlongs, surrogates, code points past U+10FFFF, cut and stray bytes: what Python's
    strict decoder refuses, the check refuses, wherever in its 16-byte steps and 16 KB pieces."""
    if native.utf8_valid(b"") is None:
        pytest.skip("no SSSE3 on this CPU: the scan splits every line in the byte loop")
    for padded in (b"a" * shift + data, b"a" * (16384 - shift) + data + b"b" * shift):
        try:
            padded.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        assert native.utf8_valid(padded) is valid, padded[-80:]


_CELL = st.lists(
    st.sampled_from(
        ["a", "张", "é", "\U00020000", " ", "\u3000", '"', '""', "\r", "\t", "\x01", "\x7f", "|", ";"]
    ),
    max_size=10,
).map("".join)


@st.composite
def raw_lines(draw: st.DrawFn) -> bytes:
    """Lines a feed may hold: good rows, rows of any width with quotes, tabs, control characters
    and CRs in their cells, empty lines, invalid UTF-8; LF or CRLF; the last with or without."""
    lines = []
    for _ in range(draw(st.integers(1, 30))):
        how = draw(st.sampled_from(["good", "good", "good", "cells", "empty", "bad_utf8", "one_special"]))
        if how == "empty":
            line = b""
        elif how == "cells":
            line = ",".join(draw(st.lists(_CELL, min_size=1, max_size=8))).encode()
        else:
            cells = [draw(st.sampled_from([GOOD, OTHER, GOOD.lower()])), draw(_CELL) or "张三", "2026-03-05"]
            line = ",".join([*cells, draw(_CELL), draw(_CELL), draw(_CELL)]).encode()
            if how == "bad_utf8":
                at = draw(st.integers(0, len(line)))
                line = (
                    line[:at]
                    + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe4\xb8"]))
                    + line[at:]
                )
            elif how == "one_special":  # in an otherwise plain row, anywhere: a cell's first byte, its last
                line = ",".join([GOOD, "张三", "2026-03-05", "G1", "太原南", "北京西"]).encode()
                at = draw(st.integers(0, len(line)))
                line = (
                    line[:at]
                    + draw(st.sampled_from([b"\r", b'"', b"\t", b"\x01", b"\x7f", b","]))
                    + line[at:]
                )
        lines.append(line + draw(st.sampled_from([b"\n", b"\r\n"])))
    body = b"".join(lines)
    return body.rstrip(b"\r\n") if draw(st.booleans()) else body


def scan_outcome(body: bytes, delimiter: str) -> Any:
    """What `scan_file` gives of `body`: the abort, or the fast rows, lines, slow text and rejects."""
    buf = np.frombuffer(body, dtype=np.uint8) if body else np.zeros(1, dtype=np.uint8)
    try:
        scan = native.scan_file(
            buf, 0, len(body), first_row=2, threads=1, delimiter=delimiter, **SCAN_OPTIONS
        )
    except native.ScanAborted as exc:
        return str(exc)
    if not body:  # nothing to split: no range, no rejects
        assert (scan.ranges, scan.rejects, scan.lines, scan.slow) == ([], [], [], [])
        return "empty"
    ((at, n),) = scan.ranges
    a = scan.arrays

    def text(data: npt.NDArray[np.uint8], start: str, end: str, i: int) -> bytes:
        return bytes(data[int(a[start][i]) : int(a[end][i])])

    rows = [
        (int(a["id_key"][i]), int(a["day"][i]), int(a["row_no"][i]),
         text(scan.name_data, "name_start", "name_end", i), text(scan.detail_data, "detail_start", "detail_end", i))
        for i in range(at, at + n)
    ]  # fmt: skip
    (rejects,) = scan.rejects
    return rows, scan.lines, scan.slow, rejects.rows.tolist(), rejects.codes.tolist(), bytes(rejects.data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_lines(), st.sampled_from([",", "\t"]))
@example(body=b"", delimiter=",")  # a feed of one empty line, its newline stripped (CI, 2026-12-01)
def test_the_fast_split_gives_what_the_byte_loop_gives(
    monkeypatch: pytest.MonkeyPatch, body: bytes, delimiter: str
) -> None:
    """The same rows, row numbers, texts, slow lines, rejects and aborts (with their reason and
    line) as when every line goes through the byte loop."""
    if delimiter != ",":
        body = body.replace(b",", delimiter.encode())
    monkeypatch.setattr(native, "BYTE_LOOP", True)
    reference = scan_outcome(body, delimiter)
    monkeypatch.setattr(native, "BYTE_LOOP", False)
    assert scan_outcome(body, delimiter) == reference


def test_ranges_scanned_at_once_number_their_rows_as_one_scan_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ranges on two threads, each numbering its rows from the file's first and moved on by
    the first's lines afterwards: the rejects' and the slow rows' row numbers are the SQL path's.
    With a sample that sees only long rows, the estimate of the first range's lines falls short
    of its short rows: the scan stops and runs again with its lines counted, to the same store."""
    monkeypatch.setattr(native, "SPLIT_FROM_BYTES", 1 << 14)
    long_rows = [f"{GOOD},张三,2026-03-{1 + n % 28:02d},G{n},{'太原南' * 40},北京西" for n in range(1500)]
    short_rows = []
    for n in range(12_000):
        if n % 97 == 0:
            short_rows.append(f"{OTHER[:17]}{'1' if OTHER[17] != '1' else '2'},李四,2026-04-07,G3,太原,北京")
        elif n % 89 == 0:
            short_rows.append(f'{OTHER},"李,四",2026-04-08,G{n},太原,北京')  # quoted: the SQL path's row
        else:
            short_rows.append(f"{OTHER},李四,2026-04-{1 + n % 28:02d},D{n},大同,运城北")
    path = write_csv(tmp_path / "mixed.csv", long_rows + short_rows + long_rows[:2000])
    scans = []
    ranges = native._scan_ranges

    def counted(*args: Any, **kwargs: Any) -> native.Scan:
        scans.append(args[2])
        return ranges(*args, **kwargs)

    monkeypatch.setattr(native, "_scan_ranges", counted)
    for sample, tries in ((native.ESTIMATE_SAMPLE, 1), (4096, 2)):
        monkeypatch.setattr(native, "ESTIMATE_SAMPLE", sample)
        scans.clear()
        (tmp_path / f"sample-{sample}").mkdir()
        results = assert_same_store(tmp_path / f"sample-{sample}", path)
        assert len(scans) == tries and len(scans[-1]) == min(2, os.cpu_count() or 1), scans
        assert results[0].rows_rejected > 100
