"""`ZIGE_KEEP_RUN_DECISIONS`: how many of the latest runs keep their decisions in the database."""

from __future__ import annotations

import pytest

from zige.web.settings import _keep_run_decisions


def test_a_number_of_runs_or_all() -> None:
    assert _keep_run_decisions("7") == 7
    assert _keep_run_decisions(" 30 ") == 30
    assert _keep_run_decisions("2") == 2
    assert _keep_run_decisions("all") is None
    assert _keep_run_decisions("ALL") is None


@pytest.mark.parametrize("text", ["1", "0", "-3", "", "seven", "7.5"])
def test_fewer_than_two_or_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ZIGE_KEEP_RUN_DECISIONS"):
        _keep_run_decisions(text)
