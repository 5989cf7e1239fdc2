"""Shared fixtures."""

from __future__ import annotations

import pytest

from tests.factories import NOW

PASSWORD = "correct horse battery"


@pytest.fixture
def now():  # type: ignore[no-untyped-def]
    """A fixed 'now' for services (domain code never reads the clock)."""
    return NOW


@pytest.fixture
def password() -> str:
    return PASSWORD
