"""`zige import …` and `zige run …`: the system of record from the command line.

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

    from zige.feeds.models import ImportStatus
    from zige.feeds.services import ImportRefused, import_execute, import_submit

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
        out.print(
            f"import #{batch.pk} {batch.kind} {batch.file_name}: {batch.message}",
            highlight=False,
            soft_wrap=True,
        )
        return 0
    if batch.status != ImportStatus.SUCCEEDED:
        error(f"import #{batch.pk} {batch.file_name} failed: {batch.message}")
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
        from zige.certification.services import run_execute, run_submit

        run = run_submit(as_of=as_of, user=None, now=timezone.now(), enqueue=False)
        with progress_bar(f"run as of {as_of.isoformat()}") as report:
            run = run_execute(run_id=run.pk, now=timezone.now(), progress=report)
        if run.status != RunStatus.SUCCEEDED:
            fail(f"run #{run.pk} failed: {run.message}", code=1)
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
