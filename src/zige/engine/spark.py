"""`zige certify --engine spark`: the same certification on Apache Spark (PySpark).

Every deciding step runs in Spark, from the same SQL builders as the DuckDB run
(`zige.engine.sql`), translated by `zige.engine.dialect.to_spark` (a checked translation: a
construct outside the dialect-neutral subset is an error, never passed through):

1. the readers (`zige.engine.readers`) turn each file into an Arrow table, which becomes a Spark
   DataFrame (Arrow-enabled `createDataFrame`);
2. staging (normalisation, reject reasons), roster and feed deduplication, classification, the
   per-person facts, the decisions and the payment actions are Spark SQL over temporary views;
3. the file counts of `summary.json` are Spark aggregates.

Only the small final tables (recipients, decisions, actions and the rejected rows) are then
collected into the run's local DuckDB connection, where `zige.engine.outputs` writes the same
files as a DuckDB run: results.csv, actions.csv, rejects.csv, reminders.csv, summary.json,
pending/<unit>.xlsx, out_of_province.xlsx. The fuzzy suggestions for broken IDs (never evidence,
never a decision) are computed there too, from the collected rejects.

Spark is local (`local[2]`) unless `SPARK_MASTER` (or `--master` of `spark-submit`, which sets
`spark.master`) says otherwise; see docs/national.md for a cluster.
"""

from __future__ import annotations

import os
import time
from functools import reduce
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from zige.engine import sql
from zige.engine.dialect import to_spark
from zige.engine.kinds import FeedKind
from zige.engine.pipeline import Certification, CertifyConfig, FileReport, Progress, RunResult
from zige.engine.pipeline import certify as pipeline_certify

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Settings every run needs for DuckDB's results: UTC dates, ANSI (strict) casts and arithmetic,
# the current datetime parser, Arrow transfers. No UI, no package downloads.
SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
# Only in local mode: a cluster's spark-defaults.conf / spark-submit decide these.
LOCAL_SETTINGS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "2g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def spark_session(*, master: str | None = None, app_name: str = "zige certify") -> SparkSession:
    """A Spark session on `master`, else `SPARK_MASTER`, else the master spark-submit was given
    (`--master`, i.e. `spark.master`), else `local[2]`."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    chosen = master or os.environ.get("SPARK_MASTER")
    if chosen is None and not _under_spark_submit():
        chosen = "local[2]"
    if chosen is not None:
        builder = builder.master(chosen)
    settings = dict(SETTINGS)
    if chosen is not None and chosen.startswith("local"):
        settings |= LOCAL_SETTINGS
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _under_spark_submit() -> bool:
    """True when spark-submit started this Python (its JVM is already up, with `spark.master`)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "SPARK_ENV_LOADED" in os.environ


def _columns(declaration: str) -> list[tuple[str, str]]:
    """`a INTEGER, b VARCHAR` -> [(a, INTEGER), (b, VARCHAR)]."""
    pairs = [item.split(None, 1) for item in declaration.replace("\n", " ").split(",") if item.strip()]
    return [(name.strip(), kind.strip()) for name, kind in pairs]


class SparkCertification(Certification):
    """A run whose staging, deduplication, decisions and counts are Spark SQL.

    The inherited DuckDB connection `con` only receives the collected final tables, for the
    output writers."""

    def __init__(
        self, config: CertifyConfig, progress: Progress | None = None, *, session: SparkSession
    ) -> None:
        super().__init__(config, progress)
        self.spark = session
        self._pending_feeds: dict[tuple[str, tuple[str, ...]], tuple[FeedKind, list[pa.Table]]] = {}
        self._cached: list[DataFrame] = []
        self._views: list[str] = []

    # -- Spark helpers -----------------------------------------------------------------------

    def sql(self, query: str) -> DataFrame:
        """A DataFrame for one builder query (DuckDB text, translated and checked)."""
        return self.spark.sql(to_spark(query))

    def view(self, name: str, query: str | DataFrame, *, materialise: bool = True) -> DataFrame:
        """Make `name` a temporary view of `query`, computed once: a materialised step is a leaf
        for the next query's planner (a local checkpoint), so plans stay small however many
        files and steps precede it."""
        frame = self.sql(query) if isinstance(query, str) else query
        if materialise:
            frame = frame.localCheckpoint(eager=True)
            self._cached.append(frame)
        frame.createOrReplaceTempView(name)
        self._views.append(name)
        return frame

    def _from_arrow(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)
        self._views.append(name)

    # -- staging -----------------------------------------------------------------------------

    def stage_roster(self, table: pa.Table, report: FileReport) -> None:
        present = [c for c in table.column_names if c != "_row"]
        self._from_arrow("raw_roster", table)
        query = sql.stage_roster_sql(source="raw_roster", present=present, file_no=0, as_of=self.config.as_of)
        self.view("staged_roster", query)
        self.files.insert(0, report)

    def stage_feed(self, kind: FeedKind, table: pa.Table, report: FileReport) -> None:
        """Number the file and keep its table; the files are staged together in `decide`."""
        if not self.files or self.files[0].role != "roster":
            raise RuntimeError("stage the roster before the feeds: file numbers follow the staging order")
        present = sorted(c for c in table.column_names if c != "_row")
        file_no = len(self.files)
        numbered = table.select(["_row", *present]).append_column(
            "_file_no", pa.array([file_no] * table.num_rows, pa.int32())
        )
        self._pending_feeds.setdefault((kind.code, tuple(present)), (kind, []))[1].append(numbered)
        self._fuzzy_hints_from(kind, table, present, file_no)
        self.files.append(report)

    def _stage_feeds(self) -> DataFrame:
        """Every feed file staged: one Spark query per kind and column set, not per file (a query
        costs seconds of planning and code generation however few its rows)."""
        staged: list[DataFrame] = []
        for group, (kind, tables) in enumerate(self._pending_feeds.values()):
            source = f"raw_feed_{group}"
            self._from_arrow(source, pa.concat_tables(tables))
            present = [c for c in tables[0].column_names if c not in ("_row", "_file_no")]
            query = sql.stage_feed_sql(
                kind=kind, source=source, present=present, file_no="_file_no", as_of=self.config.as_of
            )
            staged.append(self.sql(_typed_feed_sql(f"({query}) staged")))
        self._pending_feeds.clear()
        if not staged:
            return self.sql(_empty_feed_sql())
        return reduce(lambda a, b: a.unionByName(b), staged)

    def _fuzzy_hints_from(self, kind: FeedKind, table: pa.Table, present: list[str], file_no: int) -> None:
        """The feed's own birth date / age, kept locally for the fuzzy suggestions (not a decision)."""
        try:
            from zige.engine import fuzzy
        except ImportError:  # pragma: no cover - the fuzzy fallback is optional
            return
        hints = fuzzy.feed_hints_sql(kind=kind, source="raw_source", present=present, file_no=file_no)
        if hints is None:
            return
        self.con.register("raw_source", table)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS fuzzy_hints ({fuzzy.HINTS_COLUMNS})")
        self.con.execute(f"INSERT INTO fuzzy_hints {hints}")
        self.con.unregister("raw_source")
        self._fuzzy_hints = True

    def load_normalised(self, *, recipients: pa.Table, evidence: str | None = None) -> None:
        raise NotImplementedError("the Spark engine certifies files (zige certify --engine spark)")

    # -- deciding ----------------------------------------------------------------------------

    def decide(self) -> None:
        as_of = self.config.as_of
        self.progress("deduplicate and decide (Spark)")
        with self.step("deduplicate"):
            self.view("staged_feed", self._stage_feeds())
            self.view("roster_outcome", sql.roster_outcome_sql())
            self.view("recipients", sql.used_recipients_sql())
            self.view("feed_copies", sql.feed_duplicates_sql())
            self.view("evidence", sql.evidence_sql(self.config.kinds))
        with self.step("decide"):
            self.view("scoped", sql.scoped_evidence_sql(as_of), materialise=False)
            self.view("facts", sql.person_facts_sql())
            self.view("after_facts", sql.after_facts_sql())
            self.view("imprisonment", sql.imprisonment_sql(as_of))
            self.view("decisions", sql.decisions_sql(as_of))
            self.view("actions", sql.actions_sql(as_of))
        with self.step("collect"):
            self._collect()

    def _collect(self) -> None:
        """Copy the final tables into the local DuckDB connection for the output writers."""
        pulls = {
            "recipients": "SELECT * FROM recipients",
            "decisions": "SELECT * FROM decisions",
            "actions": "SELECT * FROM actions",
            # The rows the rejects file and the summary read: unusable roster rows, the outcome of
            # every roster row that was not used, and the rejected feed rows.
            "staged_roster": (
                "SELECT s.* FROM staged_roster s LEFT JOIN roster_outcome o USING (file_no, row_no) "
                "WHERE s.reject_reason IS NOT NULL OR o.outcome <> 'used'"
            ),
            "roster_outcome": "SELECT * FROM roster_outcome WHERE outcome <> 'used'",
            "staged_feed": "SELECT * FROM staged_feed WHERE reject_reason IS NOT NULL",
        }
        for name, query in pulls.items():
            arrow = self.sql(query).toArrow()
            order = [k for k in ("file_no", "row_no", "person_no") if k in arrow.column_names]
            if order:  # a deterministic row order for the writers (e.g. the most common unit name)
                arrow = arrow.sort_by([(k, "ascending") for k in order])
            self.con.register(f"collected_{name}", arrow)
            self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM collected_{name}")
            self.con.unregister(f"collected_{name}")
        self._recipients_ready = True
        self._feed_table_ready = True

    # -- counting ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        self.apply_counts(
            roster_rows=[tuple(r) for r in self.sql(sql.roster_counts_sql()).collect()],
            feed_rows=[tuple(r) for r in self.sql(sql.feed_counts_sql(self.config.as_of)).collect()],
        )

    # -- outputs -----------------------------------------------------------------------------

    def write_outputs(self) -> dict[str, Any]:
        try:
            return super().write_outputs()
        finally:
            self.release()

    def release(self) -> None:
        """Drop this run's cached frames and views from the (possibly shared) session."""
        for frame in self._cached:
            frame.unpersist()
        for name in set(self._views):
            self.spark.catalog.dropTempView(name)
        self._cached.clear()
        self._views.clear()


def _typed_feed_sql(source: str) -> str:
    """`staged_feed`'s columns with their declared types, from `source`."""
    columns = ", ".join(
        f"CAST({name} AS {kind}) AS {name}" for name, kind in _columns(sql.STAGED_FEED_COLUMNS)
    )
    return f"SELECT {columns} FROM {source}"


def _empty_feed_sql() -> str:
    """An empty `staged_feed` (a run with no feed files)."""
    columns = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in _columns(sql.STAGED_FEED_COLUMNS))
    return f"SELECT {columns} FROM (SELECT 1 AS one) nothing WHERE 1 = 0"


def certify(
    config: CertifyConfig,
    progress: Progress | None = None,
    *,
    session: SparkSession | None = None,
    master: str | None = None,
) -> RunResult:
    """`zige certify` on Spark. A session passed in is reused (and left running)."""
    own = session is None
    started = time.perf_counter()
    spark = session or spark_session(master=master)
    startup = time.perf_counter() - started
    try:
        result = pipeline_certify(
            config, progress, engine=lambda c, p: SparkCertification(c, p, session=spark)
        )
    finally:
        if own:
            spark.stop()
    if own:
        result.timings["spark startup"] = startup
    return result
