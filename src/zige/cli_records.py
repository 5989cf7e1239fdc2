"""`zige import …`, `zige run …` and `zige decisions …`: the system of record from the command line.

The commands use the same services as the web application, run the work inline (not through
the task queue) with a progress bar, and print a one-line result. The data directory and the
database come from `ZIGE_DATA_DIR` / `ZIGE_DATABASE_URL`.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zige.cli_common import error, fail, out, parse_day, progress_bar

if TYPE_CHECKING:
    from zige.feeds.models import ImportBatch


def _setup() -> None:
    from zige.web.bootstrap import setup_django

    setup_django()


def _import(file: Path, kind: str | None) -> int:
    """Import one file inline and print its one-line result.

    The exit status it calls for: 0 imported (or a duplicate, which changes nothing), 1 the
    import failed, 2 the file was refused before importing (missing, unknown kind, too large).
    """
    from django.utils import timezone

    from zige.feeds.failures import ImportRefused
    from zige.feeds.models import ImportStatus
    from zige.feeds.services import import_execute, import_submit

    if not file.is_file():
        error(f"{file}: no such file")
        return 2
    try:
        batch = import_submit(
            source=file, file_name=file.name, kind=kind, user=None, now=timezone.now(), enqueue=False
        )
    except ImportRefused as exc:
        error(str(exc))
        return 2
    if batch.status != ImportStatus.DUPLICATE:
        with progress_bar(f"import {file.name}") as report:
            batch = import_execute(batch_id=batch.pk, now=timezone.now(), progress=report)
    if batch.status == ImportStatus.DUPLICATE:
        said = f"{batch.message} / {batch.detail}" if batch.detail else batch.message
        out.print(
            f"import #{batch.pk} {batch.kind} {batch.file_name}: {said}", highlight=False, soft_wrap=True
        )
        return 0
    if batch.status != ImportStatus.SUCCEEDED:
        # The English detail (the engine's reason, the exception); the pages show the Chinese.
        error(f"import #{batch.pk} {batch.file_name} failed: {batch.detail or batch.message}")
        return 1
    out.print(_import_line(batch), highlight=False, soft_wrap=True)
    return 0


def _import_line(batch: ImportBatch) -> str:
    reconciles = batch.rows_read == batch.rows_used + batch.rows_rejected + batch.duplicate_rows
    parts = [
        f"read {batch.rows_read:,}",
        f"used {batch.rows_used:,}",
        f"rejected {batch.rows_rejected:,}",
        f"duplicates {batch.duplicate_rows:,}",
    ]
    if batch.kind == "roster":
        parts += [f"new {batch.created:,}", f"changed {batch.updated:,}"]
    else:
        parts.append(f"unmatched {batch.unmatched:,}")
    return (
        f"import #{batch.pk} {batch.kind} {batch.file_name}: " + ", ".join(parts)
        + f" (reconciled: {'yes' if reconciles else 'NO'})"
    )  # fmt: skip


def register(main: click.Group) -> None:
    """Add the record-keeping commands to the `zige` group."""

    @main.group(name="import")
    def import_group() -> None:
        """Import the roster or an agency feed file into the system of record."""

    @import_group.command(name="roster")
    @click.argument("file", type=click.Path(path_type=Path))
    def import_roster(file: Path) -> None:
        """Import a roster file (待遇领取人员名册): adds and updates recipients, keeps the history."""
        _setup()
        sys.exit(_import(file, "roster"))

    @import_group.command(name="feed")
    @click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--kind", default=None, help="feed kind (default: from each file name, e.g. rail_…)")
    def import_feed(files: tuple[Path, ...], kind: str | None) -> None:
        """Import agency feed files into the evidence store, one after another.

        Every file is tried; the exit status is the worst of them (1 failed, 2 refused).
        """
        if kind is not None and kind.strip().lower() == "roster":
            fail("use `zige import roster FILE` for the roster")
        _setup()
        sys.exit(max(_import(file, kind) for file in files))

    @main.command(name="run")
    @click.option("--as-of", "as_of", required=True, callback=parse_day, help="比对基准日 YYYY-MM-DD")
    def run_command(as_of: date) -> None:
        """Certify every recipient on the roll as of a date, from the imported evidence."""
        _setup()
        from django.utils import timezone

        from zige.certification.models import RunStatus, Status
        from zige.certification.services import RunRefused, run_execute, run_submit

        try:
            run = run_submit(as_of=as_of, user=None, now=timezone.now(), enqueue=False)
        except RunRefused as exc:
            fail(f"{exc} / the as-of date {as_of.isoformat()} is after today (China Standard Time)", code=2)
        with progress_bar(f"run as of {as_of.isoformat()}") as report:
            run = run_execute(run_id=run.pk, now=timezone.now(), progress=report)
        if run.status != RunStatus.SUCCEEDED:
            fail(f"run #{run.pk} failed: {run.detail or run.message}", code=1)
        status = run.summary.get("status", {})  # JSON keys come back in any order on PostgreSQL
        counts = ", ".join(f"{code} {status.get(code, 0):,}" for code in Status.values)
        previous = run.previous_id
        changes = f"{run.changed:,} changed since run #{previous}" if previous else "first run"
        out.print(
            f"run #{run.pk} as of {as_of.isoformat()}: {run.recipients:,} recipients ({counts}); {changes}; "
            f"fingerprint {run.inputs_fingerprint[:12]}",
            highlight=False,
            soft_wrap=True,
        )


def _database_space() -> tuple[int, int]:
    """SQLite: (file size, bytes in free pages that new rows reuse); PostgreSQL: (0, 0)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        return 0, 0
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_size")
        page = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA page_count")
        pages = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA freelist_count")
        free = int(cursor.fetchone()[0])
    return page * pages, page * free


def _vacuum() -> str:
    """Give the free space back: SQLite rewrites the whole file (VACUUM: needs as much free disk
    as the database and locks it meanwhile); PostgreSQL marks the deleted rows' space reusable
    and refreshes statistics (VACUUM ANALYZE of the decisions table; VACUUM FULL would lock it)."""
    from django.db import connection

    from zige.certification.models import Decision

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("VACUUM")
            return "VACUUM"
        table = connection.ops.quote_name(Decision._meta.db_table)
        cursor.execute(f"VACUUM (ANALYZE) {table}")
        return f"VACUUM (ANALYZE) {Decision._meta.db_table}"


def register_decisions(main: click.Group) -> None:
    """`zige decisions prune` and `zige decisions export` (decision retention)."""

    @main.group(name="decisions")
    def decisions_group() -> None:
        """Decision retention: the latest runs' decisions in the database, older runs' in their
        Parquet copies (docs/architecture.md, "Decision retention")."""

    @decisions_group.command(name="prune")
    @click.option(
        "--keep",
        type=click.IntRange(2),
        default=None,
        help="latest succeeded runs that keep their decisions in the database "
        "(default: ZIGE_KEEP_RUN_DECISIONS, 7)",
    )
    @click.option(
        "--vacuum",
        is_flag=True,
        help="then give the freed space back (SQLite: VACUUM, rewrites and locks the whole file)",
    )
    def prune(keep: int | None, vacuum: bool) -> None:
        """Delete the decisions of the older runs from the database, each only once its Parquet
        copy is checked (exit 1 when a run's copy fails: it keeps its rows). Audited."""
        import time

        _setup()
        from django.conf import settings
        from django.utils import timezone

        from zige.accounts.services import cli_actor
        from zige.certification.services import runs_prune_decisions

        if keep is None:
            keep = settings.ZIGE_KEEP_RUN_DECISIONS
            if keep is None:
                fail("ZIGE_KEEP_RUN_DECISIONS=all keeps every run's decisions: give --keep N to prune")
        size_before, _ = _database_space()
        started = time.perf_counter()
        result = runs_prune_decisions(keep=keep, now=timezone.now(), user=cli_actor())
        took = time.perf_counter() - started
        for p in result.pruned:
            what = "archived" if p.archived_now else "finished archiving"
            out.print(
                f"run #{p.run_id} as of {p.as_of}: {what}, {p.rows:,} decisions deleted", highlight=False
            )
        for r in result.refused:
            error(f"run #{r.run_id} as of {r.as_of} keeps its decisions: {r.reason}")
        kept = ", ".join(f"#{k}" for k in result.kept) or "none"
        out.print(
            f"kept the latest {keep} runs' decisions ({kept}); {len(result.pruned)} run(s) pruned, "
            f"{result.rows:,} rows deleted in {took:.1f} s; {len(result.refused)} refused",
            highlight=False,
            soft_wrap=True,
        )
        size, free = _database_space()
        if size:
            out.print(
                f"SQLite file {size / 1e9:.2f} GB, of which {free / 1e9:.2f} GB free pages "
                "(reused by the next runs; --vacuum gives them back to the disk)",
                highlight=False,
                soft_wrap=True,
            )
        if vacuum:
            started = time.perf_counter()
            done = _vacuum()
            size_after, _ = _database_space()
            shrunk = f": {size_before / 1e9:.2f} GB -> {size_after / 1e9:.2f} GB" if size_after else ""
            out.print(f"{done} in {time.perf_counter() - started:.1f} s{shrunk}", highlight=False)
        if result.refused:
            sys.exit(1)

    @decisions_group.command(name="export")
    @click.argument("run_id", type=int)
    @click.option(
        "--out", "out_file", type=click.Path(path_type=Path), required=True, help="CSV file to write"
    )
    @click.option("--unit", "unit_no", default=None, help="only this unit (单位编号)")
    def export(run_id: int, out_file: Path, unit_no: str | None) -> None:
        """Write a run's decisions (archived or not) from its Parquet copy to a CSV file, with
        个人编号 and 单位编号; an archived run's copy is checked against its recorded SHA-256. Audited."""
        _setup()
        from django.utils import timezone

        from zige.accounts.services import cli_actor
        from zige.certification.models import Run
        from zige.certification.services import ArchiveError, run_decisions_export

        try:
            rows = run_decisions_export(
                run_id=run_id, out=out_file, now=timezone.now(), user=cli_actor(), unit_no=unit_no
            )
        except Run.DoesNotExist:
            fail(f"no succeeded run #{run_id}")
        except ArchiveError as exc:
            fail(str(exc), code=1)
        out.print(f"run #{run_id}: {rows:,} decisions written to {out_file}", highlight=False)
