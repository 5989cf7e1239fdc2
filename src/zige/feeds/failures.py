"""Why an import failed, was refused or was a duplicate, in the words an officer reads.

The one place where a whole-file import failure gets its Chinese text. Every failure has

- a stable code (`ImportBatch.failure_code`): the engine's readers give theirs
  (`zige.engine.readers.ReadErrorCode`: the file cannot be read at all); refusals before a
  batch exists (`ImportRefused`) and the system's own failures have the others below;
- a message in Chinese made from the code's template (`FAILURE_ZH`) and the facts of the
  failure (file name, column labels, row and byte numbers): `ImportBatch.message`, shown on the
  pages (imports, the inbox's quarantine, a verification whose evidence could not be stored);
- the English text for support staff (`ImportBatch.detail`): the engine's message naming the
  file, or the exception's type and text. It is shown under 技术详情, kept in the audit row and
  the server log, and is what the command line prints.

A certification run's failures (`Run.failure_code`, `Run.message`, `Run.detail`) are told here
too (`RUN_FAILURE_ZH`, `run_failure_for`, `RUN_INTERRUPTED`): the same system failures, in a
run's words, plus `store_busy` (the evidence store held by a compaction or upgrade).

An exception nobody foresaw gets `unknown`: a Chinese message naming its type, its text as the
detail. Nothing here raises: a failure is always recorded, whatever it was.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
from django.db import OperationalError

from zige.engine.readers import ReadError
from zige.engine.store import StoreBusy, StoreLayoutError

UNKNOWN = "unknown"
# The text of a detail is cut here (an exception's text may be long: a DuckDB error quotes SQL).
DETAIL_LIMIT = 4000

# Code -> the officer's message (every `ReadErrorCode` has one: tests/integration/test_import_failures.py). `{file}` is the name the file was uploaded under; the other
# fields are the facts `ReadError.params` or the raising code give (numbers already formatted).
FAILURE_ZH: dict[str, str] = {
    # The file cannot be read at all (zige.engine.readers.ReadErrorCode).
    "no_such_file": "上传的文件“{file}”已不在服务器上，无法导入；请重新上传该文件。",
    "unsupported_type": "文件“{file}”的类型“{suffix}”不受支持；请上传 CSV、Excel（xlsx、xls）或 Parquet 文件。",
    "binary": "文件“{file}”含有二进制内容，不是文本格式的 CSV 文件；请在 Excel 中另存为“CSV UTF-8”，或直接上传 xlsx 文件。",
    "bad_bom": "文件“{file}”开头标明为 {encoding} 编码，但内容不是有效的 {encoding}（前 {byte} 个字节之后有无法解码的内容）；请另存为 UTF-8 编码后重新上传。",
    "undecodable": "文件“{file}”的文字编码无法识别：既不是 UTF-8，也不是 GBK/GB18030（前 {byte} 个字节之后有无法解码的内容）；请另存为 UTF-8 编码的 CSV 后重新上传。",
    "no_header": "文件“{file}”的前 {rows} 行中找不到表头：表头须包含必填列 {required}。可用的列名：{accepted}。",
    "missing_columns": "文件“{file}”第 {row} 行的表头缺少必填列：{missing}（必填列为 {required}）。可用的列名：{accepted}。",
    "bad_csv": "文件“{file}”无法按 CSV 格式读取（例如引号不配对或单元格内容异常）；请检查文件后重新上传。",
    "bad_excel": "文件“{file}”不是可以读取的 Excel 工作簿（可能已损坏、加密，或并非 Excel 格式）。",
    "excel_too_large": "文件“{file}”第一张工作表的单元格一直延伸到 {cell}（{rows} 行 × {columns} 列），"
    "超出可读取的范围；请删除数据区域右侧和下方多余的单元格（或将数据复制到新工作簿）后重新上传。",
    "bad_parquet": "文件“{file}”不是可以读取的 Parquet 文件（可能已损坏或不完整）。",
    "column_not_text": "文件“{file}”中有列的数据类型无法转换为文本，无法读取。",
    # Refused before an import is recorded (`ImportRefused`); `unsupported_type` above too.
    "unknown_kind": "未知的数据类型“{kind}”；可用的类型代码：{known}。",
    "kind_from_name": "无法从文件名“{file}”识别数据类型：文件名须以类型代码开头（如 rail_2026.csv），或指定类型。",
    "too_large": "文件“{file}”过大（{size}，上限 {limit}）。",
    # The system.
    "duplicate": "与第 {original} 号导入（{original_file}）内容相同，未重复导入。",
    "interrupted": "导入被中断（处理进程已终止），未写入任何数据；请重新上传该文件。",
    "database_busy": "数据库正忙（另一项导入或认证正在写入），等待超时；本次导入未写入任何数据，请稍后重新上传该文件。",
    "store_layout": "证据库中有旧格式的数据，须由系统管理员升级证据库（zige store upgrade）后才能导入；本次导入未写入任何数据。",
    "disk_full": "服务器磁盘空间不足，本次导入未写入任何数据；请联系系统管理员。",
    "out_of_memory": "服务器内存不足，无法处理文件“{file}”，本次导入未写入任何数据；请联系系统管理员，或将文件拆分后分别导入。",
    # Failed before failures had codes (migration feeds 0003): the English text is the detail.
    "legacy": "导入失败（该记录早于失败原因的中文说明，原因见技术详情）。",
    UNKNOWN: "发生内部错误（{error_type}），本次导入未写入任何数据；请将技术详情提供给系统管理员。",
}
# Code -> the officer's message for a failed certification run (`run_failure_for`).
RUN_FAILURE_ZH: dict[str, str] = {
    "interrupted": "认证运行被中断（处理进程已终止），未保存任何结果；请重新发起运行。",
    "store_busy": "证据库正被其他任务（整理或升级）占用，本次认证未保存任何结果；请稍后重新发起运行。",
    "store_layout": "证据库中有旧格式的数据，须由系统管理员升级证据库（zige store upgrade）后才能运行认证；本次认证未保存任何结果。",
    "out_of_memory": "服务器内存不足，本次认证未保存任何结果；请联系系统管理员。",
    "disk_full": "服务器磁盘空间不足，本次认证未保存任何结果；请联系系统管理员。",
    "database_busy": "数据库正忙（另一项导入或认证正在写入），等待超时；本次认证未保存任何结果，请稍后重新发起运行。",
    # Failed before run failures had codes (migration certification 0004): the English text is the detail.
    "legacy": "认证运行失败（该记录早于失败原因的中文说明，原因见技术详情）。",
    UNKNOWN: "认证运行发生内部错误（{error_type}），未保存任何结果；请将技术详情提供给系统管理员。",
}
_SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}  # extended codes keep these in the low byte
# lock_not_available (lock_timeout), deadlock_detected, serialization_failure
_POSTGRES_BUSY = {"55P03", "40P01", "40001"}


@dataclass(frozen=True)
class ImportFailure:
    code: str
    message: str  # Chinese, for the pages
    detail: str  # English, for support staff, the logs and the command line


class _Facts(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "？"  # a template field the raising code did not give: never an error page


def failure_message(code: str, params: Mapping[str, Any], *, table: Mapping[str, str] = FAILURE_ZH) -> str:
    """The Chinese message of a failure code with its facts (`unknown`'s for a code not in
    `table`: an import's, or a run's `RUN_FAILURE_ZH`)."""
    template = table.get(code, table[UNKNOWN])
    return template.format_map(_Facts(params))


def _exception_detail(exc: BaseException) -> str:
    """The English detail of an exception nobody raised for the officer: its type and text."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _cut(text: str) -> str:
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


class ImportRefused(ValueError):
    """A file that cannot be imported as given, refused before anything is recorded (an unknown
    kind, an unsupported type, too large). `code` and `message` (Chinese) are for the pages,
    `detail` (English) for the command line; `str()` gives both, Chinese first."""

    def __init__(self, code: str, *, detail: str, **params: Any) -> None:
        self.code = code
        self.params = params
        self.message = failure_message(code, params)
        self.detail = detail
        super().__init__(f"{self.message} / {detail}")


def suffix_text(suffix: str) -> str:
    return suffix or "（无扩展名）"


def duplicate_failure(*, original_pk: int, original_file: str) -> ImportFailure:
    return ImportFailure(
        "duplicate",
        failure_message("duplicate", {"original": original_pk, "original_file": original_file}),
        f"Same content as import #{original_pk} ({original_file}); nothing imported.",
    )


INTERRUPTED = ImportFailure(
    "interrupted",
    FAILURE_ZH["interrupted"],
    "The import was interrupted (its worker process ended); nothing was stored: upload the file again.",
)


RUN_INTERRUPTED = ImportFailure(
    "interrupted",
    RUN_FAILURE_ZH["interrupted"],
    "The run was interrupted (its worker process ended); no result was stored: start it again.",
)


def _database_busy(exc: BaseException) -> bool:
    """A write that waited for another's lock and gave up (SQLite: busy or locked; PostgreSQL:
    a lock timeout, a deadlock, a serialization failure). Django's `OperationalError` carries
    the driver's error as its cause."""
    if not isinstance(exc, OperationalError | sqlite3.OperationalError):
        return False
    for error in (exc, exc.__cause__):
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY:
            return True
        if getattr(error, "sqlstate", None) in _POSTGRES_BUSY:
            return True
    return False


def _system_code(exc: BaseException) -> str:
    if isinstance(exc, StoreLayoutError):
        return "store_layout"
    if isinstance(exc, MemoryError | duckdb.OutOfMemoryException):
        return "out_of_memory"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if _database_busy(exc):
        return "database_busy"
    return UNKNOWN


def failure_for(exc: BaseException, *, file_name: str) -> ImportFailure:
    """The failure `exc` means for the import of `file_name` (the name it was uploaded under;
    the engine knows only the stored copy's)."""
    if isinstance(exc, ReadError):
        params = {**exc.params, "file": file_name}
        if "suffix" in params:
            params["suffix"] = suffix_text(str(params["suffix"]))
        return ImportFailure(exc.code, failure_message(exc.code, params), _cut(f"{file_name}: {exc.reason}"))
    if isinstance(exc, ImportRefused):
        return ImportFailure(exc.code, exc.message, _cut(exc.detail))
    code = _system_code(exc)
    params = {"file": file_name, "error_type": type(exc).__name__}
    return ImportFailure(code, failure_message(code, params), _cut(_exception_detail(exc)))


def _store_busy(exc: BaseException) -> bool:
    """The evidence store held by another: a compaction or key upgrade (`StoreBusy`), or a DuckDB
    file another process holds locked."""
    if isinstance(exc, StoreBusy):
        return True
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def run_failure_for(exc: BaseException) -> ImportFailure:
    """The failure `exc` means for a certification run: its code, Chinese message and English
    detail (the exception's type and text). Never raises."""
    code = "store_busy" if _store_busy(exc) else _system_code(exc)
    message = failure_message(code, {"error_type": type(exc).__name__}, table=RUN_FAILURE_ZH)
    return ImportFailure(code, message, _cut(_exception_detail(exc)))


def is_file_problem(exc: BaseException) -> bool:
    """A failure of the file, not of the system (logged without a traceback)."""
    return isinstance(exc, ReadError | ImportRefused)
