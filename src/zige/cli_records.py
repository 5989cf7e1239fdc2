"""`zige import …` and `zige run …`: the system of record from the command line."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add the record-keeping commands to the `zige` group."""
