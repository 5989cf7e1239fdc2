"""What every `zige` command shares: the consoles, the one-line error exit, dates, progress."""

from __future__ import annotations

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
