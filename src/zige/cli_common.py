"""What every `zige` command shares: the consoles, the one-line error exit, dates, progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

err = Console(stderr=True)
out = Console()

# progress(label, steps_done, steps_total), as the engine and the services report it.
ProgressCallback = Callable[[str, int, int], None]


def error(message: str) -> None:
    """Print a one-line error and carry on (the caller decides the exit status)."""
    err.print(f"[bold red]zige: error:[/] {message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Exit with a one-line reason (never a traceback)."""
    error(message)
    sys.exit(code)


def today() -> date:
    """Today in the installation's time zone (Django's `TIME_ZONE`, China Standard Time), the
    default date of every command that takes one: a host clock in UTC is still the day before
    between 00:00 and 08:00 in China. The command line may read the clock; rules never do (they
    are given the date)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zige.web.settings")
    from django.utils import timezone

    return timezone.localdate()


def parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    """A click callback for YYYY-MM-DD options."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


@contextmanager
def progress_bar(title: str) -> Iterator[ProgressCallback]:
    """A progress bar on the terminal (nothing when stderr is not a terminal)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=None)

        def report(label: str, done: int, total: int) -> None:
            progress.update(task, description=f"{title}: {label}", completed=done, total=total)

        yield report
