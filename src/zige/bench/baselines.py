"""Baselines the benchmark runs beside the engine (issue 6 item 3): the same decisions, other tools.

- `pandas_certify`: what an analyst would write (基线: pandas) — merge the evidence onto the
  recipients by ID, group by person, and apply the rules to each group. The rules applied are
  the project's oracle, `zige.rules.decide` (spec §2, §8; notice 晋社保局发〔2018〕40号), so
  the baseline decides exactly what the engine decides, one Python call per person.
- `splink_link` / `splink_certify`: Splink's deterministic linkage (确定性匹配) of evidence rows
  to recipients on the DuckDB backend — the exact 64-bit ID key, optionally also name + birth
  date — and then the same per-person apply step on Splink's links.

Inputs are two pandas frames: `recipients` with the columns of the engine's `recipients` table
plus `id_key` (the integer value of the ID's first 17 digits), and `evidence` with the evidence
store's columns (`id_key`, `feed_kind`, `event_date`, `end_date`, `sub`, `detail`, `name_key`;
one row per deduplicated record). `recipients_evidence_from_engine` builds both from a DuckDB
connection after a `Certification` run. Dates may be `datetime.date` objects or pandas
datetimes (as read back from Parquet); amounts `Decimal` or float.

Nothing here reads the clock except for timing (`as_of` is given) or touches the network.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from zige import rules
from zige.engine.sql import id_key_sql

# The engine stores a sentence's 刑罚种类 as its class; the oracle reads the penalty text.
PENALTY_TEXT = {"custodial": "有期徒刑", "non_custodial": "管制"}
RECIPIENT_COLUMNS = (
    "person_no", "id_number", "id_key", "benefit_status", "status_since", "status_reason", "monthly_amount",
    "mobile", "retirement_date", "last_certified_on",
)  # fmt: skip
EVIDENCE_COLUMNS = ("id_key", "feed_kind", "event_date", "end_date", "sub")
RESULT_COLUMNS = (
    "person_no", "status", "reason", "evidence_kind", "evidence_date", "certified_on", "due_on", "remind",
    "channel", "action", "effective_month", "months", "amount",
)  # fmt: skip
ID_KEY_SQL = id_key_sql("{col}")  # the store key of an ID (zige.ids.store_key)


# --- the engine's tables as frames ------------------------------------------------------------


def recipients_evidence_from_engine(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `recipients` and `evidence` tables of a decided `Certification` run, with `id_key`.

    Recipients keep every column of the engine's table; evidence has the store's columns. Dates
    come out as `datetime.date` and amounts as `Decimal` (through Arrow, not DuckDB's `.df()`,
    which would turn amounts into floats).
    """
    recipients = (
        con.sql(f"SELECT *, {ID_KEY_SQL.format(col='id_number')} AS id_key FROM recipients")
        .to_arrow_table()
        .to_pandas()
    )
    evidence = (
        con.sql(
            f"SELECT {ID_KEY_SQL.format(col='id_number')} AS id_key, feed_kind, event_date, end_date, sub, "
            "detail, name_key FROM evidence"
        )
        .to_arrow_table()
        .to_pandas()
    )
    return recipients, evidence


# --- the oracle's inputs from frame rows (shared with the tests and the benchmark) -------------


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def as_date(value: Any) -> date | None:
    """A `datetime.date` from a date, a datetime, a pandas/NumPy datetime, or None/NaT."""
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    day: date = pd.Timestamp(value).date()
    return day


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _amount(value: Any) -> Decimal | None:
    if _missing(value):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def oracle_recipient(row: Mapping[str, Any]) -> rules.Recipient:
    """The oracle's `Recipient` from one row of the engine's `recipients` table (any mapping)."""
    return rules.Recipient(
        person_no=str(row["person_no"]), id_number=_text(row["id_number"]),
        benefit_status="suspended" if row["benefit_status"] == "suspended" else "normal",
        status_since=as_date(row["status_since"]), status_reason=_text(row["status_reason"]),
        monthly_amount=_amount(row["monthly_amount"]), mobile=_text(row["mobile"]) or None,
        retirement_date=as_date(row["retirement_date"]), last_certified_on=as_date(row["last_certified_on"]),
    )  # fmt: skip


def oracle_record(*, kind: str, day: Any, sub: Any, end_date: Any) -> rules.Record:
    """The oracle's `Record` from one evidence row (`sub` of a sentence is its class)."""
    text = _text(sub)
    if kind == "sentence":
        text = PENALTY_TEXT.get(text, text)
    when = as_date(day)
    assert when is not None, "an evidence record always has its date"
    return rules.Record(kind=kind, day=when, sub=text, end_date=as_date(end_date))


def decision_row(person_no: str, decision: rules.Decision) -> dict[str, Any]:
    """One output row (`RESULT_COLUMNS`) of a decision."""
    action = decision.action
    return {
        "person_no": person_no, "status": decision.status, "reason": decision.reason,
        "evidence_kind": decision.evidence_kind, "evidence_date": decision.evidence_date,
        "certified_on": decision.certified_on, "due_on": decision.due_on, "remind": int(decision.remind),
        "channel": decision.channel, "action": action.action if action else None,
        "effective_month": action.effective_month if action else None,
        "months": action.months if action else None, "amount": action.amount if action else None,
    }  # fmt: skip


# --- pandas: merge, group by, apply -----------------------------------------------------------


def _in_scope(recipients: pd.DataFrame) -> pd.DataFrame:
    """正常 and 暂停 recipients only, as the engine keeps them (and `name_key` for Splink)."""
    columns = list(RECIPIENT_COLUMNS) + (["name_key"] if "name_key" in recipients else [])
    return recipients.loc[recipients["benefit_status"].isin(["normal", "suspended"]), columns]


def _decide_merged(merged: pd.DataFrame, *, as_of: date, custom_alive: Iterable[str]) -> pd.DataFrame:
    """Group the recipient-evidence rows by person and apply the rules to each group."""
    custom = tuple(custom_alive)

    def decide_person(group: pd.DataFrame) -> pd.Series:
        first = group.iloc[0]
        recipient = oracle_recipient({"person_no": group.name, **first.to_dict()})
        records = [
            oracle_record(kind=kind, day=day, sub=sub, end_date=end)
            for kind, day, sub, end in zip(
                group["feed_kind"], group["event_date"], group["sub"], group["end_date"], strict=True
            )
            if not _missing(kind)
        ]
        decision = rules.decide(recipient=recipient, records=records, as_of=as_of, custom_alive=custom)
        return pd.Series(decision_row(recipient.person_no, decision))

    if merged.empty:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    decided = merged.groupby("person_no", sort=False).apply(decide_person)
    return decided.reset_index(drop=True)[list(RESULT_COLUMNS)]


def pandas_certify(
    *, recipients: pd.DataFrame, evidence: pd.DataFrame, as_of: date, custom_alive: Iterable[str] = ()
) -> pd.DataFrame:
    """Decide every recipient the way an analyst would in pandas: one row per recipient.

    `merge` the evidence onto the recipients by `id_key` (a left join: people without any
    evidence keep one row), `groupby` person, and `apply` `zige.rules.decide` to each group.
    Columns: `RESULT_COLUMNS` (status, reason, deciding evidence, C, due date, reminder and the
    payment action of spec §8).
    """
    merged = _in_scope(recipients).merge(evidence[list(EVIDENCE_COLUMNS)], on="id_key", how="left")
    return _decide_merged(merged, as_of=as_of, custom_alive=custom_alive)


# --- Splink: deterministic linkage ------------------------------------------------------------


def _birth_key(id_key: pd.Series) -> pd.Series:
    """出生日期 yyyymmdd from the store key (it begins with the birth date: zige.ids.store_key)."""
    return id_key // 1_000_000_000


def splink_pairs(
    *, recipients: pd.DataFrame, evidence: pd.DataFrame, name_birth: bool = False
) -> tuple[pd.DataFrame, float]:
    """Splink's deterministic links: (`recipient_pos`, `evidence_pos`) row positions, and seconds.

    Splink 5 on a fresh in-memory DuckDB, `link_only` between the two frames, blocking rules as
    the match rules: the exact `id_key`; with `name_birth`, also the same `name_key` and birth
    date (from the ID) — a looser rule that can link a record whose ID differs from the roster's.
    """
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.internals.blocking_rule_creator import BlockingRuleCreator

    started = time.perf_counter()
    columns = ["unique_id", "id_key"] + (["name_key", "birth"] if name_birth else [])
    left = pd.DataFrame({"unique_id": range(len(recipients)), "id_key": recipients["id_key"].to_numpy()})
    right = pd.DataFrame({"unique_id": range(len(evidence)), "id_key": evidence["id_key"].to_numpy()})
    if name_birth:
        left["name_key"] = recipients["name_key"].to_numpy()
        left["birth"] = _birth_key(left["id_key"])
        right["name_key"] = evidence["name_key"].to_numpy()
        right["birth"] = _birth_key(right["id_key"])
    match_rules: list[BlockingRuleCreator | dict[str, Any]] = [block_on("id_key")]
    if name_birth:
        match_rules.append(block_on("name_key", "birth"))
    settings = SettingsCreator(
        link_type="link_only",
        blocking_rules_to_generate_predictions=match_rules,
        comparisons=[],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    con = duckdb.connect()
    try:
        db_api = DuckDBAPI(connection=con)
        linker = Linker(
            [
                db_api.register(left[columns], dataset_display_name="recipients"),
                db_api.register(right[columns], dataset_display_name="evidence"),
            ],
            settings,
            log_level=None,
        )
        links = linker.inference.deterministic_link()
        physical = links.physical_name
        # Splink orders each pair by source dataset name; read the sides by name, not position.
        pairs = con.sql(
            "SELECT CASE WHEN source_dataset_l = 'recipients' THEN unique_id_l ELSE unique_id_r END "
            "  AS recipient_pos, "
            "CASE WHEN source_dataset_l = 'recipients' THEN unique_id_r ELSE unique_id_l END AS evidence_pos "
            f"FROM {physical}"
        ).df()
    finally:
        con.close()
    return pairs, time.perf_counter() - started


def splink_link(
    *, recipients: pd.DataFrame, evidence: pd.DataFrame, name_birth: bool = False
) -> dict[str, Any]:
    """Link evidence rows to recipients with Splink: rows linked, people linked, seconds."""
    pairs, seconds = splink_pairs(recipients=recipients, evidence=evidence, name_birth=name_birth)
    return {
        "matched_rows": int(pairs["evidence_pos"].nunique()),
        "matched_people": int(pairs["recipient_pos"].nunique()),
        "seconds": seconds,
    }


def splink_certify(
    *,
    recipients: pd.DataFrame,
    evidence: pd.DataFrame,
    as_of: date,
    name_birth: bool = False,
    decide_with: Literal["pandas", "engine"] = "pandas",
    custom_alive: Iterable[str] = (),
) -> pd.DataFrame:
    """Decide every recipient on Splink's links instead of the pandas merge (same output as
    `pandas_certify`).

    `decide_with="pandas"` applies the rules per person as `pandas_certify` does;
    `decide_with="engine"` hands the linked records (each carrying its recipient's ID) to the
    engine's SQL through `Certification.load_normalised` (custom kinds: the engine's defaults).
    `attrs["link_seconds"]` and `attrs["decide_seconds"]` time the two parts.
    """
    scoped = recipients.loc[recipients["benefit_status"].isin(["normal", "suspended"])].reset_index(drop=True)
    pairs, link_seconds = splink_pairs(recipients=scoped, evidence=evidence, name_birth=name_birth)
    started = time.perf_counter()
    if decide_with == "engine":
        result = _engine_decide(scoped, evidence, pairs, as_of=as_of)
    else:
        linked = (
            evidence[list(EVIDENCE_COLUMNS)].iloc[pairs["evidence_pos"].to_numpy()].drop(columns="id_key")
        )
        linked["recipient_pos"] = pairs["recipient_pos"].to_numpy()
        merged = _in_scope(scoped).rename_axis("recipient_pos").reset_index()
        merged = merged.merge(linked, on="recipient_pos", how="left").drop(columns="recipient_pos")
        result = _decide_merged(merged, as_of=as_of, custom_alive=custom_alive)
    result.attrs["link_seconds"] = link_seconds
    result.attrs["decide_seconds"] = time.perf_counter() - started
    return result


RECIPIENT_DATE_COLUMNS = ("status_since", "retirement_date", "last_certified_on")


def _recipients_table(scoped: pd.DataFrame) -> pa.Table:
    """The recipients as Arrow with the engine's types, whatever pandas inferred (datetimes read
    back from Parquet, float amounts, all-empty columns)."""
    table = pa.Table.from_pandas(scoped, preserve_index=False)
    for index, column in enumerate(table.schema):
        target = None
        if column.name in RECIPIENT_DATE_COLUMNS:
            target = pa.date32()
        elif column.name == "monthly_amount":
            target = pa.decimal128(18, 2)
        elif pa.types.is_null(column.type):
            target = pa.string()
        if target is not None and column.type != target:
            values = table.column(index)
            if pa.types.is_floating(column.type):
                values = pc.round(values, 2)
            table = table.set_column(index, column.name, values.cast(target, safe=False))
    return table


def _engine_decide(
    scoped: pd.DataFrame, evidence: pd.DataFrame, pairs: pd.DataFrame, *, as_of: date
) -> pd.DataFrame:
    """The engine's decisions on the records Splink linked (`RESULT_COLUMNS`)."""
    from zige.engine.pipeline import Certification, CertifyConfig

    linked = evidence.iloc[pairs["evidence_pos"].to_numpy()]
    feed = pd.DataFrame(
        {
            "file_no": 1,
            "row_no": range(len(linked)),
            "feed_kind": linked["feed_kind"].to_numpy(),
            "id_number": scoped["id_number"].iloc[pairs["recipient_pos"].to_numpy()].to_numpy(),
            "name_key": linked["name_key"].to_numpy(),
            "event_date": linked["event_date"].to_numpy(),
            "end_date": linked["end_date"].to_numpy(),
            "sub": linked["sub"].to_numpy(),
            "detail": linked["detail"].to_numpy(),
        }
    )
    unused = Path("splink-baseline")
    run = Certification(CertifyConfig(roster=unused, feeds=unused, as_of=as_of, out=unused))
    try:
        run.con.register("splink_linked", feed)
        run.load_normalised(
            recipients=_recipients_table(scoped),
            evidence=(
                "SELECT file_no, row_no, feed_kind, id_number, name_key AS name, name_key, "
                "CAST(event_date AS DATE), CAST(end_date AS DATE), sub, detail, NULL, NULL, NULL "
                "FROM splink_linked"
            ),
        )
        run.decide()
        columns = ", ".join(c for c in RESULT_COLUMNS if c != "person_no")
        return (
            run.con.sql(f"SELECT person_no, {columns} FROM decisions LEFT JOIN actions USING (person_no)")
            .to_arrow_table()
            .to_pandas()
        )
    finally:
        run.con.close()


__all__ = [
    "as_date",
    "decision_row",
    "oracle_recipient",
    "oracle_record",
    "pandas_certify",
    "recipients_evidence_from_engine",
    "splink_certify",
    "splink_link",
    "splink_pairs",
]
