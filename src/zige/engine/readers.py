"""Readers: any agency file in, one Arrow table of raw text out (spec §5).

A reader does only what cannot be done in SQL: decode the bytes, find the header row under
any title rows, map header labels (Chinese or English aliases) to logical columns, and number
the rows as a spreadsheet shows them. Every value stays text; cleaning and validation happen in
the engine's SQL (`zige.engine.sql`), vectorised over the whole file.

The returned table has `_row` (the spreadsheet row number) and one string column per logical
column found. Blank rows are dropped but keep their place in the numbering, and are counted
(`blank_rows`); the empty lines that end a CSV file are no rows at all (`_tolerant_body`), as in
the evidence store's SQL path and native scan.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from zige.engine.kinds import Column, accepted_headers, alternate_name, normalise_header

if TYPE_CHECKING:
    import _csv

HEADER_SEARCH_ROWS = 30
CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
SUPPORTED_SUFFIXES = CSV_SUFFIXES | EXCEL_SUFFIXES | PARQUET_SUFFIXES
_DELIMITERS = (",", "\t", "|", ";")
# The time zone of evidence days: a timestamp with a zone is converted to it before its date is
# taken (`_parquet_text`); one without a zone is taken as local time already.
LOCAL_TIME_ZONE = "Asia/Shanghai"
# What counts as empty in a cell, for dropping blank rows: every Unicode space (full-width
# U+3000 included) and the zero-width no-break space (a stray BOM). One set for every reader, so
# the Arrow and the csv-module paths and Excel/Parquet agree on which rows are blank.
_BLANK_CHARS = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\ufeff"
_LINE_END = re.compile(r"\r\n|\r|\n")
# The longest cell the csv module reads (its default, 131,072 characters, refused whole files that
# the evidence store's native scan and DuckDB read: a long note in an ignored column). A cell is
# as long as the file may be (`ZIGE_MAX_IMPORT_BYTES`, 2 GiB by default): the readers hold the
# whole text in memory already, so a limit here would only make the outcome depend on the path.
FIELD_LIMIT = 2**31 - 1
csv.field_size_limit(FIELD_LIMIT)


def _is_blank(text: str) -> bool:
    return not text.strip(_BLANK_CHARS)


def _non_blank_mask(columns: Iterable[pa.Array | pa.ChunkedArray], length: int) -> pa.Array:
    """True for the rows with text in some cell (columns already cast to string, nulls as "")."""
    mask = None
    for column in columns:
        has_text = pc.not_equal(pc.utf8_trim(column, _BLANK_CHARS), "")
        mask = has_text if mask is None else pc.or_(mask, has_text)
    return mask if mask is not None else pa.array([True] * length, pa.bool_())


# Why a whole file cannot be read: a stable code for each way, with the facts as parameters
# (`ReadError.params`), so that the system of record can say it in Chinese
# (`zige.feeds.failures`) while the message stays English for the command line and the logs.
ReadErrorCode = Literal[
    "no_such_file",  # file
    "unsupported_type",  # file, suffix, supported
    "binary",  # file
    "bad_bom",  # file, encoding, byte: a byte-order mark the rest of the bytes do not follow
    "undecodable",  # file, byte: neither UTF-8 nor GBK/GB18030
    "no_header",  # file, required, accepted, rows: no row in the first `rows` has any required column
    "missing_columns",  # file, row, missing, required, accepted: the closest row lacks `missing`
    "bad_csv",  # file, error
    "bad_excel",  # file, error
    "excel_too_large",  # file, cell, rows, columns: the first sheet's cells reach too far to read
    "bad_parquet",  # file, error
    "column_not_text",  # file, error
]
READ_ERROR_CODES: tuple[ReadErrorCode, ...] = get_args(ReadErrorCode)


class ReadError(Exception):
    """A file that cannot be read at all. The message names the file and says why in English;
    `code` (a `ReadErrorCode`) and `params` (`file` and the facts the reason names: column
    labels, row and byte numbers) say the same for a translation."""

    def __init__(self, path: Path, reason: str, *, code: ReadErrorCode, **params: str | int) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason
        self.code: ReadErrorCode = code
        self.params: dict[str, str | int] = {"file": path.name, **params}


@dataclass(frozen=True)
class RawTable:
    path: Path
    format: str
    encoding: str
    header_row: int
    headers: dict[str, str]  # logical column -> header label as found in the file
    table: pa.Table  # `_row` int64 + one string column per logical column found
    blank_rows: int

    @property
    def rows_read(self) -> int:
        return int(self.table.num_rows)


def match_header(cells: Sequence[object], columns: Sequence[Column]) -> dict[str, int] | None:
    """Positions of the logical columns in a header row, or None when a required one is missing.

    Each column takes its first alias present (aliases are ordered most specific first), and a
    header cell serves one column only. A column with `every_alias` also takes its other aliases
    present, as `<name>_alt1`, `<name>_alt2` … (`zige.engine.kinds.alternate_name`).
    """
    labels = [normalise_header(c) for c in cells]
    positions: dict[str, int] = {}
    taken: set[int] = set()
    for column in columns:
        extra = 0
        for alias in column.aliases:
            wanted = normalise_header(alias)
            found = next((i for i, lab in enumerate(labels) if lab == wanted and i not in taken), None)
            if found is None:
                continue
            taken.add(found)
            if column.name not in positions:
                positions[column.name] = found
                if not column.every_alias:
                    break
            else:
                extra += 1
                positions[alternate_name(column.name, extra)] = found
        if column.name not in positions and column.required:
            return None
    return positions


def _find_header(
    rows: Iterable[Sequence[object]], columns: Sequence[Column]
) -> tuple[int, dict[str, int], list[object]] | None:
    for index, cells in enumerate(rows):
        if index >= HEADER_SEARCH_ROWS:
            return None
        positions = match_header(cells, columns)
        if positions is not None:
            return index, positions, list(cells)
    return None


def _missing_header_reason(columns: Sequence[Column]) -> str:
    required = [c for c in columns if c.required]
    wanted = "、".join(c.zh for c in required)
    accepted = "; ".join(accepted_headers(c, "/") for c in required)
    return (
        f"no header row with the required columns ({wanted}) in the first {HEADER_SEARCH_ROWS} rows; "
        f"accepted headers: {accepted}"
    )


def _accepted(columns: Sequence[Column]) -> str:
    """The headers each of `columns` may have, for the officer: 姓名／name；乘车日期／出行日期／travel_date."""
    return "；".join(accepted_headers(c) for c in columns)


def _no_header(path: Path, columns: Sequence[Column], *heads: Sequence[Sequence[object]]) -> ReadError:
    """The error for a file whose first rows (`heads`: each way of splitting them) hold no header:
    `missing_columns` naming the required columns absent from the row that has the most of them
    (the header the file meant; its number as a spreadsheet shows it), or `no_header` when no
    row has any. `accepted` lists every header each absent column may have (出行日期 is as good
    as 乘车日期: spec §3). The English message is the same for both."""
    required = [c for c in columns if c.required]
    best: tuple[int, list[Column]] | None = None
    for rows in heads:
        for index, cells in enumerate(rows[:HEADER_SEARCH_ROWS]):
            labels = {normalise_header(c) for c in cells}
            missing = [c for c in required if not any(normalise_header(a) in labels for a in c.aliases)]
            if len(missing) < len(required) and (
                best is None or (len(missing), index) < (len(best[1]), best[0])
            ):
                best = (index, missing)
    reason = _missing_header_reason(columns)
    wanted = "、".join(c.zh for c in required)
    if best is None or not best[1]:
        return ReadError(
            path,
            reason,
            code="no_header",
            required=wanted,
            accepted=_accepted(required),
            rows=HEADER_SEARCH_ROWS,
        )
    absent = "、".join(c.zh for c in best[1])
    return ReadError(
        path, reason, code="missing_columns", row=best[0] + 1, missing=absent, required=wanted,
        accepted=_accepted(best[1]),
    )  # fmt: skip


def _cell_text(value: object) -> str:
    """An Excel or Parquet cell as the text a person would read in it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return ""  # a missing number (NaN), as some writers store an empty numeric cell
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _build_table(
    data_rows: Sequence[Sequence[object]],
    first_row_number: int,
    positions: dict[str, int],
    convert: bool,
) -> tuple[pa.Table, int]:
    """Columns for the positions; blank rows dropped, numbering kept."""
    numbers: list[int] = []
    kept: list[Sequence[object]] = []
    for offset, cells in enumerate(data_rows):
        if not all(_is_blank(c if isinstance(c, str) else _cell_text(c)) for c in cells):
            numbers.append(first_row_number + offset)
            kept.append(cells)
    blank = len(data_rows) - len(kept)
    arrays: dict[str, pa.Array] = {"_row": pa.array(numbers, type=pa.int64())}
    for name, pos in positions.items():
        if convert:
            values = [_cell_text(r[pos]) if pos < len(r) else "" for r in kept]
        else:
            values = [r[pos] if pos < len(r) else "" for r in kept]  # type: ignore[misc]
        arrays[name] = pa.array(values, type=pa.string())
    return pa.table(arrays), blank


_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig", "UTF-8"),
    (b"\xff\xfe\x00\x00", "utf-32", "UTF-32"),  # before UTF-16 LE, whose BOM is its prefix
    (b"\x00\x00\xfe\xff", "utf-32", "UTF-32"),
    (b"\xff\xfe", "utf-16", "UTF-16"),
    (b"\xfe\xff", "utf-16", "UTF-16"),
)


def decode_bytes(data: bytes, path: Path) -> tuple[str, str]:
    """Text and the encoding it was found in: UTF-8 (with or without BOM), UTF-16/32 with a BOM,
    or GB18030 (a superset of GBK and GB2312). A byte-order mark is never part of the text."""
    for bom, encoding, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                # From the file's start (the UTF-8 codec counts from after the mark, UTF-16/32 not).
                at = exc.start + (len(bom) if encoding == "utf-8-sig" else 0)
                raise ReadError(
                    path,
                    f"starts with a {label} byte-order mark but is not valid {label} (byte {at})",
                    code="bad_bom",
                    encoding=label,
                    byte=at,
                ) from None
            return text.removeprefix("\ufeff"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 has its own byte-order mark (84 31 95 33), which decodes to U+FEFF.
        return data.decode("gb18030").removeprefix("\ufeff"), "gb18030"
    except UnicodeDecodeError as exc:
        raise ReadError(
            path, f"not text in UTF-8 or GBK/GB18030 (byte {exc.start})", code="undecodable", byte=exc.start
        ) from None


def _csv_rows(text: str, delimiter: str) -> _csv.Reader:
    """Python's csv module over text. `newline=""` makes CR, LF and CRLF all end a record (as
    Excel and Arrow do) and keeps a line break inside a quoted value as it is."""
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def read_csv(path: Path, columns: Sequence[Column]) -> RawTable:
    data = path.read_bytes()
    if b"\x00" in data[:4096] and not data.startswith(tuple(bom for bom, _, _ in _BOMS)):
        raise ReadError(path, "binary content, not a CSV text file", code="binary")
    text, encoding = decode_bytes(data, path)
    sample = text[:65536]
    try:
        heads: list[list[list[str]]] = []
        for delimiter in _DELIMITERS:
            head = list(_limited(_csv_rows(sample, delimiter), HEADER_SEARCH_ROWS))
            found = _find_header(head, columns)
            if found is not None:
                break
            heads.append(head)
        else:
            raise _no_header(path, columns, *heads)
        header_index, positions, header_cells = found
        table, blank = _parse_csv_body(text, delimiter, header_index, positions)
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit
        raise ReadError(path, f"not readable as CSV ({exc})", code="bad_csv", error=str(exc)) from None
    headers = {name: str(header_cells[pos]).strip() for name, pos in positions.items()}
    return RawTable(path, "csv", encoding, header_index + 1, headers, table, blank)


def _limited(rows: Iterable[list[str]], limit: int) -> Iterable[list[str]]:
    for index, row in enumerate(rows):
        if index >= limit:
            return
        yield row


def _parse_csv_body(
    text: str, delimiter: str, header_index: int, positions: dict[str, int]
) -> tuple[pa.Table, int]:
    """Rows after the header. Fast path: Arrow's C++ parser when every row has the first data
    row's width; otherwise Python's csv module, which tolerates ragged rows. Both give the same
    table for the same text."""
    reader = _csv_rows(text, delimiter)
    # Skip to the header by records, not lines: a title cell may hold a line break.
    for _ in range(header_index + 1):
        next(reader)
    body = text[_char_offset_of_line(text, reader.line_num) :]
    first_row_number = header_index + 2
    fast = _arrow_body(body, delimiter, positions, first_row_number)
    if fast is not None:
        return fast
    return _tolerant_body(body, delimiter, positions, first_row_number)


def _tolerant_body(
    body: str, delimiter: str, positions: dict[str, int], first_row_number: int
) -> tuple[pa.Table, int]:
    """The csv-module path: any row width; a missing cell reads as empty.

    The empty lines at the end of the text (records with no character at all, which the csv
    module reads as `[]`, after the last line with any character) are no rows: not blank rows
    either. An empty line between records is a blank row (it has a row number after it, as a
    spreadsheet shows), and so is a line of only separators or spaces anywhere: a record with
    cells. DuckDB's `read_csv` and the native scan skip the empty lines that end a file too, so
    every path counts a file's rows alike."""
    rows = list(_csv_rows(body, delimiter))
    while rows and not rows[-1]:
        rows.pop()
    return _build_table(rows, first_row_number, positions, convert=False)


def _without_trailing_empty_lines(body: str) -> str:
    """`body` without the empty lines that end it: up to its last character that is not a line
    end, and that line's own end (LF, CRLF or a lone CR, as `_csv_rows` reads line ends). No
    copy of a text that has no such lines (`rstrip` would copy a whole file's text)."""
    content = len(body)
    while content and body[content - 1] in "\r\n":
        content -= 1
    cut = content + (2 if body.startswith("\r\n", content) else 1) if content else 0
    return body if cut >= len(body) else body[:cut]


def _char_offset_of_line(text: str, line_count: int) -> int:
    """Where line `line_count + 1` starts, lines ending in CR, LF or CRLF (as `_csv_rows` reads)."""
    if line_count <= 0:
        return 0
    for number, match in enumerate(_LINE_END.finditer(text), start=1):
        if number == line_count:
            return match.end()
    return len(text)


def _arrow_body(
    body: str, delimiter: str, positions: dict[str, int], first_row_number: int
) -> tuple[pa.Table, int] | None:
    """The Arrow path, or None when the rows are ragged (the tolerant path takes over). The
    empty lines that end the text are cut first: Arrow would read each as a row of empty cells,
    where the tolerant path reads none."""
    body = _without_trailing_empty_lines(body)
    if not body:
        return pa.table(
            {"_row": pa.array([], pa.int64())} | {n: pa.array([], pa.string()) for n in positions}
        ), 0
    if body.startswith("\ufeff"):
        return None  # Arrow would drop it as a byte-order mark; here it belongs to the first cell
    width = len(next(_csv_rows(body, delimiter), []))
    if width <= max(positions.values(), default=0):
        return None

    def ragged(_row: object) -> str:
        return "error"  # Arrow then raises ArrowInvalid and the tolerant parser takes over

    try:
        parsed = pa_csv.read_csv(
            io.BytesIO(body.encode("utf-8")),
            read_options=pa_csv.ReadOptions(
                autogenerate_column_names=True, use_threads=True, block_size=1 << 24
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                ignore_empty_lines=False,
                newlines_in_values=True,
                invalid_row_handler=ragged,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if parsed.num_columns != width:
        return None
    numbers = pa.array(range(first_row_number, first_row_number + len(parsed)), pa.int64())
    mask = _non_blank_mask(parsed.columns, len(parsed))
    arrays: dict[str, pa.Array] = {"_row": pc.filter(numbers, mask)}
    for name, pos in positions.items():
        arrays[name] = pc.filter(parsed.column(pos), mask).combine_chunks()
    table = pa.table(arrays)
    return table, len(parsed) - table.num_rows


# The most cells (rows x columns, from A1 to the farthest cell with content) the first sheet of
# a workbook may span. calamine turns the sheet into a dense grid before anything can look at
# it, and a grid it cannot allocate aborts the process (no exception): one stray cell at
# XFD200000 asks for 100 GB. A full sheet of 1,048,576 rows x 60 columns still fits.
MAX_EXCEL_CELLS = 1_048_576 * 60
_CELL_REF = re.compile(rb"<(?:[A-Za-z0-9_]+:)?c\b[^>]*?\sr=\"([A-Z]{1,3})([0-9]{1,7})\"[^>]*?(?<!/)>")


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _first_sheet_member(archive: zipfile.ZipFile) -> str | None:
    """The first worksheet's part in an XLSX/XLSM package (the workbook's first <sheet>)."""
    from xml.etree import ElementTree

    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return None
    sheet = next((e for e in workbook.iter() if e.tag.endswith("}sheet") or e.tag == "sheet"), None)
    if sheet is None:
        return None
    rel_id = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
    for rel in rels.iter():
        if rel.attrib.get("Id") == rel_id and (target := rel.attrib.get("Target")):
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return None


def _check_excel_extent(path: Path) -> None:
    """Refuse an XLSX/XLSM whose first sheet spans more than `MAX_EXCEL_CELLS` (from A1 to its
    farthest cell with content), before calamine builds the grid. Streams the sheet's XML; a
    package this cannot follow is left to calamine (which says what is wrong with it)."""
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        member = _first_sheet_member(archive)
        if member is None or member not in archive.namelist():
            return
        max_row = max_column = 0
        tail = b""
        with archive.open(member) as stream:
            while chunk := stream.read(1 << 20):
                text = tail + chunk
                cut = text.rfind(b"<")
                body, tail = (text[:cut], text[cut:]) if cut > 0 else (text, b"")
                for letters, digits in _CELL_REF.findall(body):
                    max_column = max(max_column, _column_number(letters.decode()))
                    max_row = max(max_row, int(digits))
        for letters, digits in _CELL_REF.findall(tail):
            max_column = max(max_column, _column_number(letters.decode()))
            max_row = max(max_row, int(digits))
    if max_row * max_column > MAX_EXCEL_CELLS:
        cell = f"{_column_letters(max_column)}{max_row}"
        raise ReadError(
            path,
            f"the first sheet's cells reach {cell} ({max_row} rows x {max_column} columns), too many "
            f"to read (at most {MAX_EXCEL_CELLS:,} cells); delete the stray cells or copy the data "
            "to a new workbook",
            code="excel_too_large", cell=cell, rows=max_row, columns=max_column,
        )  # fmt: skip


def read_excel(path: Path, columns: Sequence[Column]) -> RawTable:
    from python_calamine import CalamineWorkbook

    # Not a package this can read: calamine says what is wrong with it.
    with contextlib.suppress(zipfile.BadZipFile, OSError, EOFError, zlib.error):
        _check_excel_extent(path)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        # Without skipping the empty area the rows start at A1, so list index + 1 is the row
        # number a spreadsheet shows, however many empty rows sit above the data.
        rows: Sequence[Sequence[object]] = sheet.to_python(skip_empty_area=False)
    except Exception as exc:  # calamine raises its own error types for every malformed workbook
        error = f"{type(exc).__name__}: {exc}"
        raise ReadError(
            path, f"not a readable Excel workbook ({error})", code="bad_excel", error=error
        ) from None
    head = [[_cell_text(c) for c in r] for r in rows[:HEADER_SEARCH_ROWS]]
    found = _find_header(head, columns)
    if found is None:
        raise _no_header(path, columns, head)
    header_index, positions, header_cells = found
    table, blank = _build_table(rows[header_index + 1 :], header_index + 2, positions, convert=True)
    headers = {name: str(header_cells[pos]).strip() for name, pos in positions.items()}
    fmt = path.suffix.lower().lstrip(".")
    return RawTable(path, fmt, "", header_index + 1, headers, table, blank)


def _china_time(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A timestamp column with a time zone (an instant, often stored in UTC) as the wall-clock
    time in China (`LOCAL_TIME_ZONE`), without a zone: an evidence day is the day in China, and
    2026-06-01 03:00 China time is 2026-05-31 19:00 UTC. pyarrow reads the system's zone
    database; without one (a slim container) Python's `zoneinfo` does, which falls back to the
    `tzdata` package (installed with pandas)."""
    unit = column.type.unit
    try:
        local = pc.cast(column, pa.timestamp(unit, tz=LOCAL_TIME_ZONE))
        return pc.local_timestamp(local)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        zone = ZoneInfo(LOCAL_TIME_ZONE)
        values = [None if v is None else v.astimezone(zone).replace(tzinfo=None) for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.timestamp(unit))])


def _parquet_text(column: pa.ChunkedArray) -> pa.Array:
    """A Parquet column as cell text; nulls as empty. Floats as a spreadsheet shows them. A
    timestamp with a time zone is taken in China time (`_china_time`); one without a zone is
    taken as it is, as local (China) time already."""
    if pa.types.is_floating(column.type):
        return pa.array([_cell_text(v) for v in column.to_pylist()], pa.string())
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        column = _china_time(column)
    return pc.fill_null(pc.cast(column, pa.string()), "").combine_chunks()


def read_parquet(path: Path, columns: Sequence[Column]) -> RawTable:
    try:
        source = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several error types for a broken file
        raise ReadError(
            path, f"not a readable Parquet file ({exc})", code="bad_parquet", error=str(exc)
        ) from None
    positions = match_header(source.column_names, columns)
    if positions is None:
        raise _no_header(path, columns, [source.column_names])
    try:
        texts = {name: _parquet_text(source.column(pos)) for name, pos in positions.items()}
        all_text = [_parquet_text(c) for c in source.columns if _castable(c.type)]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ReadError(
            path, f"a column cannot be read as text ({exc})", code="column_not_text", error=str(exc)
        ) from None
    numbers = pa.array(range(2, source.num_rows + 2), pa.int64())
    mask = _non_blank_mask(all_text, source.num_rows)
    arrays = {"_row": pc.filter(numbers, mask)} | {n: pc.filter(a, mask) for n, a in texts.items()}
    table = pa.table(arrays)
    headers = {name: source.column_names[pos] for name, pos in positions.items()}
    return RawTable(path, "parquet", "", 1, headers, table, source.num_rows - table.num_rows)


def _castable(type_: pa.DataType) -> bool:
    return not (pa.types.is_nested(type_) or pa.types.is_binary(type_))


def read_table(path: Path, columns: Sequence[Column]) -> RawTable:
    """Read any supported file into raw text columns; `ReadError` naming the file otherwise."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ReadError(path, "no such file", code="no_such_file")
    if suffix in CSV_SUFFIXES:
        return read_csv(path, columns)
    if suffix in EXCEL_SUFFIXES:
        return read_excel(path, columns)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, columns)
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    raise ReadError(
        path,
        f"unsupported file type {suffix or '(none)'}; expected one of {supported}",
        code="unsupported_type",
        suffix=suffix,
        supported=supported,
    )
