"""`zige user …`, `zige serve`, `zige worker`, `zige audit verify`: operating the system."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add the operator commands to the `zige` group."""
