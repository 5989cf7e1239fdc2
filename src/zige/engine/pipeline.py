"""The batch certification on DuckDB: files in, per-person decisions and payment actions out.

`certify()` reads every file, stages it through the SQL builders of `zige.engine.sql`, decides
every recipient in a handful of set-based queries and writes the outputs of spec §7. Nothing
here loops over events in Python.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from zige.engine import fuzzy, sql
from zige.engine.kinds import (
    BUILTIN_KINDS,
    ROSTER_COLUMNS,
    Column,
    FeedKind,
    headers_by_label,
    kind_for_filename,
)
from zige.engine.labels import KIND_ZH
from zige.engine.readers import SUPPORTED_SUFFIXES, RawTable, ReadError, read_table

# progress(label, steps_done, steps_total): called as each step starts.
Progress = Callable[[str, int, int], None]


class CertifyError(Exception):
    """A fatal problem with the inputs: the run decides nothing. The message is one line."""


@dataclass(frozen=True)
class CertifyConfig:
    roster: Path
    feeds: Path
    as_of: date
    out: Path
    home_province: str = "14"
    insured_region_code: str = ""  # 附件2 参保地行政区划; default: the province's own code
    app_name: str = "民生山西"
    kinds: tuple[FeedKind, ...] = BUILTIN_KINDS
    threads: int | None = None

    @property
    def region_code(self) -> str:
        return self.insured_region_code or f"{self.home_province}0000"


@dataclass
class FileReport:
    file: str
    role: str  # "roster" or the feed kind
    format: str
    encoding: str
    header_row: int
    rows_read: int
    blank_rows: int
    rows_used: int = 0
    rows_rejected: int = 0
    duplicate_rows: int = 0
    unmatched: int = 0
    after_as_of: int = 0
    out_of_scope: int = 0
    # Label -> the header as the file heads the column (`zige.engine.kinds.headers_by_label`):
    # for rejects.csv, not for summary.json.
    headers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        del data["headers"]
        data["reconciles"] = self.rows_read == self.rows_used + self.rows_rejected + self.duplicate_rows
        return data


@dataclass
class RunResult:
    out: Path
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def discover_feeds(feeds: Path, kinds: tuple[FeedKind, ...]) -> list[tuple[Path, FeedKind]]:
    """Every feed file under `feeds` with its kind; an unknown file is fatal (spec §3)."""
    if not feeds.is_dir():
        raise CertifyError(f"{feeds}: feeds directory not found")
    found: list[tuple[Path, FeedKind]] = []
    for path in sorted(p for p in feeds.rglob("*") if p.is_file()):
        name = path.name
        if name.startswith((".", "~$")):
            continue  # hidden files and Excel lock files are not data
        kind = kind_for_filename(name, kinds)
        if kind is None:
            known = ", ".join(k.code for k in kinds)
            raise CertifyError(
                f"{path.relative_to(feeds)}: no known feed kind in the file name (known: {known})"
            )
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise CertifyError(f"{path.relative_to(feeds)}: unsupported file type {path.suffix or '(none)'}")
        found.append((path, kind))
    return found


class Certification:
    """One run: a DuckDB connection holding the staged inputs and the decisions."""

    def __init__(self, config: CertifyConfig, progress: Progress | None = None) -> None:
        self.config = config
        self._report_progress = progress or (lambda _label, _done, _total: None)
        self.steps_done = 0
        self.steps_total = 4
        self.con = duckdb.connect()
        if config.threads:
            self.con.execute(f"SET threads = {int(config.threads)}")
        self.files: list[FileReport] = []
        self.timings: dict[str, float] = {}
        self._feed_table_ready = False
        self._recipients_ready = False
        self._fuzzy_hints = False
        self.fuzzy_counts: dict[str, int] | None = None

    def progress(self, label: str) -> None:
        self._report_progress(label, self.steps_done, self.steps_total)
        self.steps_done += 1

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """A timed step; `label` names it in summary.json's timings."""
        started = time.perf_counter()
        yield
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - started

    # -- staging -----------------------------------------------------------------------------

    def _read(self, path: Path, columns: Any) -> RawTable:
        try:
            return read_table(path, columns)
        except ReadError as exc:
            raise CertifyError(str(exc)) from None

    def stage(self, feeds: list[tuple[Path, FeedKind]]) -> None:
        """Read and normalise the roster and every feed file into the staged tables."""
        self.steps_total = len(feeds) + 4
        self.progress(f"read {self.config.roster.name}")
        with self.step("read roster"):
            raw = self._read(self.config.roster, ROSTER_COLUMNS)
            report = self._report(raw, self.config.roster.name, "roster", ROSTER_COLUMNS)
            self.stage_roster(raw.table, report)
        for path, kind in feeds:
            label = str(path.relative_to(self.config.feeds))
            with self.step("read feeds"):
                self.progress(f"read {label}")
                raw = self._read(path, kind.columns)
                self.stage_feed(kind, raw.table, self._report(raw, label, kind.code, kind.columns))

    def stage_roster(self, table: pa.Table, report: FileReport) -> None:
        """Normalise a raw roster table (as a reader returns it) into `staged_roster`."""
        present = [c for c in table.column_names if c != "_row"]
        query = sql.stage_roster_sql(source="raw_source", present=present, file_no=0, as_of=self.config.as_of)
        self.con.register("raw_source", table)
        self.con.execute(f"CREATE TABLE staged_roster AS {query}")
        self.con.unregister("raw_source")
        self.files.insert(0, report)

    def stage_feed(self, kind: FeedKind, table: pa.Table, report: FileReport) -> None:
        """Normalise one raw feed table into `staged_feed`; files are numbered in call order."""
        if not self._feed_table_ready:
            self.con.execute(f"CREATE TABLE staged_feed ({sql.STAGED_FEED_COLUMNS})")
            self._feed_table_ready = True
        if not self.files or self.files[0].role != "roster":
            raise RuntimeError("stage the roster before the feeds: file numbers follow the staging order")
        present = [c for c in table.column_names if c != "_row"]
        file_no = len(self.files)
        query = sql.stage_feed_sql(
            kind=kind, source="raw_source", present=present, file_no=file_no, as_of=self.config.as_of
        )
        self.con.register("raw_source", table)
        self.con.execute(f"INSERT INTO staged_feed {query}")
        hints = fuzzy.feed_hints_sql(kind=kind, source="raw_source", present=present, file_no=file_no)
        if hints is not None:  # the feed's own birth date / age, for the fuzzy fallback
            self.con.execute(f"CREATE TABLE IF NOT EXISTS fuzzy_hints ({fuzzy.HINTS_COLUMNS})")
            self.con.execute(f"INSERT INTO fuzzy_hints {hints}")
            self._fuzzy_hints = True
        self.con.unregister("raw_source")
        self.files.append(report)

    def load_normalised(self, *, recipients: pa.Table, evidence: str | None = None) -> None:
        """Load inputs that are already normalised and deduplicated, instead of staging files.

        This is how the system of record runs the same decisions over its own tables: the
        recipients of the roll (one row per person, no rejects) and the evidence store.

        `recipients` has the columns of `staged_roster` that the decisions read (`person_no`,
        `name`, `id_number`, `unit_no`, `benefit_status`, `monthly_amount`, `mobile`,
        `status_since`, `status_reason`, `retirement_date`, `last_certified_on`, …); extra columns
        (such as database keys) are carried into the `recipients` table. Only 正常/暂停 rows are
        kept. `evidence` is a query giving the `staged_feed` columns of used records (reject
        columns NULL; `file_no`, `row_no` unique per record, their order the duplicate order).
        `decide()` then skips the roster deduplication, and `reconcile()` does not apply.
        """
        self.con.register("normalised_recipients", recipients)
        self.con.execute(
            "CREATE TABLE recipients AS SELECT * FROM normalised_recipients "
            "WHERE benefit_status IN ('normal', 'suspended')"
        )
        self.con.unregister("normalised_recipients")
        self._recipients_ready = True
        if not self._feed_table_ready:
            self.con.execute(f"CREATE TABLE staged_feed ({sql.STAGED_FEED_COLUMNS})")
            self._feed_table_ready = True
        if evidence is not None:
            self.con.execute(f"INSERT INTO staged_feed {evidence}")

    @staticmethod
    def _report(raw: RawTable, label: str, role: str, columns: tuple[Column, ...]) -> FileReport:
        return FileReport(
            file=label, role=role, format=raw.format, encoding=raw.encoding, header_row=raw.header_row,
            rows_read=raw.rows_read, blank_rows=raw.blank_rows,
            headers=headers_by_label(columns, raw.headers),
        )  # fmt: skip

    # -- deciding ----------------------------------------------------------------------------

    def decide(self) -> None:
        """Deduplicate, classify and decide every recipient (tables `decisions`, `actions`)."""
        as_of = self.config.as_of
        con = self.con
        if not self._feed_table_ready:  # a run with no feed files at all
            con.execute(f"CREATE TABLE staged_feed ({sql.STAGED_FEED_COLUMNS})")
            self._feed_table_ready = True
        self.progress("deduplicate and decide")
        with self.step("deduplicate"):
            if not self._recipients_ready:
                con.execute(f"CREATE TABLE roster_outcome AS {sql.roster_outcome_sql()}")
                con.execute(f"CREATE TABLE recipients AS {sql.used_recipients_sql()}")
                self._recipients_ready = True
            con.execute(f"CREATE TABLE feed_copies AS {sql.feed_duplicates_sql()}")
            con.execute(f"CREATE TABLE evidence AS {sql.evidence_sql(self.config.kinds)}")
        with self.step("decide"):
            con.execute(f"CREATE TEMP VIEW scoped AS {sql.scoped_evidence_sql(as_of)}")
            con.execute(f"CREATE TABLE facts AS {sql.person_facts_sql()}")
            con.execute(f"CREATE TABLE after_facts AS {sql.after_facts_sql()}")
            con.execute(f"CREATE TABLE imprisonment AS {sql.imprisonment_sql(as_of)}")
            con.execute(f"CREATE TABLE decisions AS {sql.decisions_sql(as_of)}")
            con.execute(f"CREATE TABLE actions AS {sql.actions_sql(as_of)}")

    def suggest(self) -> None:
        """Fuzzy fallback for broken IDs (`zige.engine.fuzzy`): suggested matches for a person to
        accept, in tables of their own; never evidence, never a decision (docs/rules.md §4a)."""
        with self.step("suggest"):
            roster_columns = {c[0] for c in self.con.execute("DESCRIBE recipients").fetchall()}
            self.fuzzy_counts = fuzzy.create_suggestions(
                self.con,
                as_of=self.config.as_of,
                hints="fuzzy_hints" if self._fuzzy_hints else None,
                roster_birth="r.birth_date_text" if "birth_date_text" in roster_columns else None,
            )

    # -- counting ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        self.apply_counts(
            roster_rows=self.con.execute(sql.roster_counts_sql()).fetchall(),
            feed_rows=self.con.execute(sql.feed_counts_sql(self.config.as_of)).fetchall(),
        )

    def apply_counts(self, *, roster_rows: list[Any], feed_rows: list[Any]) -> None:
        """The file reports from the rows of `sql.roster_counts_sql` and `sql.feed_counts_sql`."""
        roster_counts = {outcome: n for outcome, n, _ in roster_rows}
        roster = self.files[0]
        roster.duplicate_rows = roster_counts.get("duplicate", 0)
        roster.rows_used = roster_counts.get("used", 0)
        roster.rows_rejected = roster.rows_read - roster.rows_used - roster.duplicate_rows
        roster.out_of_scope = sum(out_of_scope for _, _, out_of_scope in roster_rows)
        for file_no, rejected, duplicates, used, unmatched, later in feed_rows:
            report = self.files[file_no]
            report.rows_rejected, report.duplicate_rows, report.rows_used = rejected, duplicates, used
            report.unmatched, report.after_as_of = unmatched, later

    # -- outputs -----------------------------------------------------------------------------

    def write_outputs(self) -> dict[str, Any]:
        from zige.engine import outputs

        self.progress("write outputs")
        with self.step("write outputs"):
            return outputs.write_all(self)


def certify(
    config: CertifyConfig,
    progress: Progress | None = None,
    *,
    engine: Callable[[CertifyConfig, Progress | None], Certification] = Certification,
) -> RunResult:
    """Run the whole certification and write the outputs to `config.out`.

    `engine` makes the run: DuckDB's `Certification`, or `zige.engine.spark`'s on Spark."""
    if not config.roster.is_file():
        raise CertifyError(f"{config.roster}: roster file not found")
    feeds = discover_feeds(config.feeds, config.kinds)
    run = engine(config, progress)
    started = time.perf_counter()
    run.stage(feeds)
    run.decide()
    run.suggest()
    run.reconcile()
    config.out.mkdir(parents=True, exist_ok=True)
    summary = run.write_outputs()
    run.timings["total"] = time.perf_counter() - started
    summary["timings_s"] = {k: round(v, 3) for k, v in run.timings.items()}
    (config.out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    run.con.close()
    return RunResult(config.out, summary, run.timings)


__all__ = ["KIND_ZH", "CertifyConfig", "CertifyError", "RunResult", "certify"]
