"""The output files of spec §7, written from the decided tables of a `Certification`."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from zige.engine import forms, fuzzy
from zige.engine.labels import KIND_ZH
from zige.engine.sql import formula_safe_sql, quote, reject_reason_zh_sql, roster_rejects_sql
from zige.ids import sex_of

if TYPE_CHECKING:
    from zige.engine.pipeline import Certification

STATUSES = ("eligible", "stop", "suspend", "review", "pending")
RESULT_COLUMNS = (
    "person_no", "id_number", "name", "unit_no", "status", "reason", "evidence_kind", "evidence_date",
    "certified_on", "due_on", "remind", "channel",
)  # fmt: skip
BENEFIT_STATUS_ZH = {"normal": "正常", "suspended": "暂停", "terminated": "终止"}


def _copy(run: Certification, query: str, path: Path) -> None:
    run.con.execute(f"COPY ({query}) TO {quote(str(path))} (HEADER, DELIMITER ',')")


def masked_name_sql(col: str) -> str:
    """张三 -> 张*, 王小明 -> 王*明: enough for the person to recognise, not to identify."""
    return (
        f"CASE WHEN length({col}) <= 1 THEN {col} "
        f"WHEN length({col}) = 2 THEN left({col}, 1) || '*' "
        f"ELSE left({col}, 1) || repeat('*', length({col}) - 2) || right({col}, 1) END"
    )


def reminder_message_sql(app_name: str) -> str:
    """The reminder text: to the person by SMS, or for the unit to pass on (spec §2, notice 一(四))."""
    due = "strftime(due_on, '%Y年%m月%d日')"
    sms = (
        f"'【养老保险待遇资格认证提醒】' || {masked_name_sql('name')} || '您好，您的领取养老保险待遇资格认证将于' "
        f"|| {due} || '到期，请及时通过“{app_name}”APP刷脸认证，或联系所在单位办理。'"
    )
    unit = (
        f"'请通知' || {masked_name_sql('name')} || '（个人编号' || person_no || '）于' || {due} "
        f"|| '前完成领取养老保险待遇资格认证，本人无手机号码，可由单位协助使用“{app_name}”APP或认证终端办理。'"
    )
    return f"CASE WHEN channel = 'sms' THEN {sms} ELSE {unit} END"


def write_all(run: Certification) -> dict[str, Any]:
    cfg, con, out = run.config, run.con, run.config.out
    con.execute("CREATE TABLE files (file_no INTEGER, file VARCHAR)")
    con.executemany("INSERT INTO files VALUES (?, ?)", [(i, f.file) for i, f in enumerate(run.files)])
    # Each file's headers by label (a few per file): rejects.csv names the column as the file does.
    con.execute("CREATE TABLE file_headers (file_no INTEGER, field VARCHAR, header VARCHAR)")
    headers = [(i, label, header) for i, f in enumerate(run.files) for label, header in f.headers.items()]
    if headers:
        con.executemany("INSERT INTO file_headers VALUES (?, ?, ?)", headers)

    # results.csv, actions.csv and reminders.csv are the run's contract with programs (spec §7: the
    # system of record joins them on person_no, the SMS gateway reads reminders.csv): the roster's
    # text is written exactly. The files for people to open (rejects, suggested matches) are
    # formula-safe.
    _copy(run, f"SELECT {', '.join(RESULT_COLUMNS)} FROM decisions ORDER BY person_no", out / "results.csv")
    _copy(
        run,
        "SELECT person_no, action, effective_month, months, amount FROM actions ORDER BY person_no, action",
        out / "actions.csv",
    )
    _copy(run, _rejects_query(), out / "rejects.csv")
    if run.fuzzy_counts is None:
        run.suggest()
    _copy(run, fuzzy.report_sql(), out / "suggested_matches.csv")
    _copy(
        run,
        "SELECT person_no, channel, CASE WHEN channel = 'sms' THEN mobile END AS phone, due_on, "
        f"{reminder_message_sql(cfg.app_name)} AS message FROM decisions WHERE remind = 1 ORDER BY person_no",
        out / "reminders.csv",
    )
    pending_units = _write_pending(run)
    out_of_province = _write_out_of_province(run)
    return _summary(run, pending_units, out_of_province)


def _rejects_query() -> str:
    """rejects.csv: spec §6's five columns (`field` by the column's label, `reason` a code), then
    the reason in Chinese (原因说明, as the import's rejects download has it) and the column as
    the file heads it (文件中的列名: 公民身份号码 where the label is 身份证号), for the officer who
    corrects the file. Set-based: a CASE and a join with the few headers of each file.

    The text that comes from the agencies' files — the file's name, the rejected `value` and the
    header — is formula-safe (`formula_safe_sql`, as the site's rejects download): a value such
    as `=HYPERLINK(…)` is written `'=HYPERLINK(…)`, never run by Excel or WPS (docs/security.md).
    `field` (a label), `row` and the reason code are the system's own and are written as they are."""
    return f"""
SELECT {formula_safe_sql("f.file")} AS file, x.row_no AS row, x.field, {formula_safe_sql("x.value")} AS value,
       x.reason, {reject_reason_zh_sql("x.reason")} AS "原因说明",
       {formula_safe_sql("coalesce(h.header, x.field)")} AS "文件中的列名"
FROM (
  {roster_rejects_sql()}
  UNION ALL
  SELECT file_no, row_no, reject_field, reject_value, reject_reason
  FROM staged_feed WHERE reject_reason IS NOT NULL
) x JOIN files f USING (file_no)
LEFT JOIN file_headers h ON h.file_no = x.file_no AND h.field = x.field
ORDER BY x.file_no, x.row_no
"""


def _safe_filename(text: str) -> str:
    return re.sub(r"[^\w.-]", "_", text) or "_"


def _unit_names(run: Certification) -> dict[str, str]:
    rows = run.con.execute(
        "SELECT unit_no, mode(unit_name) FILTER (WHERE unit_name <> '') FROM recipients GROUP BY unit_no"
    ).fetchall()
    return {unit: name or "" for unit, name in rows}


def evidence_text(kind: str | None, day: Any) -> str:
    """附件1's evidence line: the kind in Chinese and the record's date ("铁路出行 2026-03-05")."""
    if not kind:
        return ""
    return f"{KIND_ZH.get(kind, kind)} {day.isoformat() if day else ''}".strip()


def _write_pending(run: Certification) -> int:
    directory = run.config.out / "pending"
    if directory.exists():
        shutil.rmtree(directory)  # a stale list from an earlier run must not survive
    directory.mkdir(parents=True)
    table: pa.Table = run.con.sql(
        """
        SELECT d.unit_no, d.person_no, d.name, r.sex, d.id_number, r.benefit_status, r.status_since,
               r.status_reason, r.address, r.health, d.status, d.reason, d.evidence_kind, d.evidence_date
        FROM decisions d JOIN recipients r USING (person_no)
        WHERE d.status IN ('pending', 'review')
        ORDER BY d.unit_no, d.status DESC, d.person_no
        """
    ).to_arrow_table()
    by_unit: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in table.to_pylist():
        by_unit[row["unit_no"]].append(
            {
                "person_no": row["person_no"],
                "name": row["name"],
                "sex": row["sex"] or sex_of(row["id_number"]),
                "id_number": row["id_number"],
                "benefit_status": BENEFIT_STATUS_ZH.get(row["benefit_status"], ""),
                "status_since": row["status_since"].isoformat() if row["status_since"] else "",
                "status_reason": row["status_reason"] or "",
                "address": row["address"] or "",
                "health": row["health"] or "",
                "status": row["status"],
                "reason": row["reason"],
                "evidence": evidence_text(row["evidence_kind"], row["evidence_date"]),
            }
        )
    names = _unit_names(run)
    jobs = [
        (
            directory / f"{_safe_filename(unit_no)}.xlsx",
            unit_no,
            names.get(unit_no, ""),
            run.config.as_of,
            rows,
        )
        for unit_no, rows in by_unit.items()
    ]
    workers = min(os.cpu_count() or 1, 8)
    if workers > 1 and len(jobs) >= PARALLEL_WORKBOOKS_FROM:
        # Thousands of small workbooks: each costs milliseconds of packaging in xlsxwriter, so
        # they are spread over the cores. "spawn" keeps DuckDB's threads out of the children.
        chunks = [jobs[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_write_pending_chunk, chunks))
    else:
        _write_pending_chunk(jobs)
    return len(by_unit)


PARALLEL_WORKBOOKS_FROM = 200
PendingJob = tuple[Path, str, str, date, list[dict[str, str]]]


def _write_pending_chunk(jobs: list[PendingJob]) -> None:
    for path, unit_no, unit_name, as_of, rows in jobs:
        forms.write_pending_workbook(path, unit_no=unit_no, unit_name=unit_name, as_of=as_of, rows=rows)


def _region6(value: str | None, fallback: str) -> str:
    """附件2 居住地行政区划 (docs/rules.md §6.1): the roster's code cut to 6 digits; the ID's region
    (`fallback`) only when the roster has nothing. A value that holds no 6-digit code
    (`太原市小店区`) is kept as given: the workbook marks it yellow for the unit to correct, and
    the 户籍 region, which is not where the person lives, is never put in its place."""
    text = (value or "").strip()
    if not text:
        return fallback
    digits = re.sub(r"[^0-9]", "", text.translate(forms.FULLWIDTH_DIGITS))
    return digits[:6] if len(digits) >= 6 else text


def _write_out_of_province(run: Certification) -> int:
    cfg = run.config
    table: pa.Table = run.con.sql(
        f"""
        SELECT * FROM recipients
        WHERE substr(id_number, 1, 2) <> {quote(cfg.home_province)} AND has_social_card = 'no'
        ORDER BY unit_no, person_no
        """
    ).to_arrow_table()
    rows = []
    for r in table.to_pylist():
        ident = r["id_number"]
        rows.append(
            {
                "unit_no": r["unit_no"],
                "residence_region": _region6(r["residence_region"], ident[:6]),
                "person_no": r["person_no"],
                "name": r["name"],
                "sex": r["sex"] or sex_of(ident),
                "ethnicity": r["ethnicity"] or "",
                "birth_date": f"{ident[6:10]}-{ident[10:12]}-{ident[12:14]}",
                "id_number": ident,
                "political_status": r["political_status"] or "",
                "health": r["health"] or "",
                "former_employer": r["former_employer"] or "",
                "retirement_category": r["retirement_category"] or "",
                "retirement_date": r["retirement_date"].isoformat() if r["retirement_date"] else "",
                "hukou": r["hukou"] or "",
                "address": r["address"] or "",
                "phone": r["phone"] or "",
            }
        )
    forms.write_out_of_province_workbook(
        cfg.out / "out_of_province.xlsx", as_of=cfg.as_of, insured_region_code=cfg.region_code, rows=rows
    )
    return len(rows)


def decision_counts(con: duckdb.DuckDBPyConnection, *, decisions: str, actions: str) -> dict[str, Any]:
    """Counts per status, reason, status/reason, reminder channel and payment action.

    `decisions` is a table or view with status, reason, remind, channel; `actions` a FROM clause
    yielding action, months, amount (one row per action). Used by `summary.json` and by the
    system of record's run summary alike.
    """
    status = dict.fromkeys(STATUSES, 0) | dict(
        con.execute(f"SELECT status, count(*) FROM {decisions} GROUP BY status").fetchall()
    )
    reason = dict(
        con.execute(f"SELECT reason, count(*) FROM {decisions} GROUP BY ALL ORDER BY ALL").fetchall()
    )
    status_reason = {
        f"{code}/{why}": count
        for code, why, count in con.execute(
            f"SELECT status, reason, count(*) FROM {decisions} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    channels = dict(
        con.execute(
            f"SELECT channel, count(*) FROM {decisions} WHERE CAST(remind AS INTEGER) = 1 GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    )
    action_counts = {
        action: {
            "count": count,
            "months": int(months or 0),
            "amount": str(Decimal(amount or 0).quantize(Decimal("0.01"))),
        }
        for action, count, months, amount in con.execute(
            f"SELECT action, count(*), sum(months), sum(amount) FROM {actions} GROUP BY action ORDER BY action"
        ).fetchall()
    }
    return {
        "recipients": sum(status.values()),
        "status": status,
        "reason": reason,
        "status_reason": status_reason,
        "reminders": {"total": sum(channels.values()), "channel": channels},
        "actions": action_counts,
    }


def _summary(run: Certification, pending_units: int, out_of_province: int) -> dict[str, Any]:
    con = run.con
    rejects = dict(
        con.execute(
            f"""
            SELECT reason, count(*) FROM (
              SELECT reason FROM ({roster_rejects_sql()})
              UNION ALL SELECT reject_reason FROM staged_feed WHERE reject_reason IS NOT NULL
            ) GROUP BY reason ORDER BY reason
            """
        ).fetchall()
    )
    files = [f.as_dict() for f in run.files]
    return {
        "as_of": run.config.as_of.isoformat(),
        "home_province": run.config.home_province,
        **decision_counts(con, decisions="decisions", actions="actions"),
        "rejects": {"total": sum(rejects.values()), "reason": rejects},
        "files": files,
        "totals": {
            key: sum(f[key] for f in files)
            for key in ("rows_read", "rows_used", "rows_rejected", "duplicate_rows", "unmatched")
        },
        "reconciles": all(f["reconciles"] for f in files),
        "pending_workbooks": pending_units,
        "out_of_province": out_of_province,
        "suggested_matches": run.fuzzy_counts,
    }
