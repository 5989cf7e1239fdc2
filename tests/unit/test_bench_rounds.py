"""`zige bench --rounds`: the figures of several rounds are their medians, and the ratios the
medians of each round's own (zige.bench.scale.Figures)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zige.bench.cli import _spread
from zige.bench.generate import BenchData
from zige.bench.scale import Figures, Round


def figures() -> Figures:
    data = BenchData(
        root=Path("bench"), recipients=Path("r"), store=Path("s"), as_of=date(2026, 11, 15),
        n_recipients=1, n_events=1, seed=7, rows=1, seconds=0.0, bytes=0,
    )  # fmt: skip
    return Figures(data=data)


def test_one_round_gives_its_own_figures() -> None:
    f = figures()
    f.add_round(Round(certify_s=10.0, floor_s=5.0, increment_s=0.4, certify_cpu_s=18.0, floor_cpu_s=9.0))
    assert (f.certify_s, f.floor_s, f.increment_s) == (10.0, 5.0, 0.4)
    assert f.ratio == 2.0 and f.increment_share == pytest.approx(0.04)
    assert f.cpu_s == {"certify": 18.0, "floor": 9.0}


def test_a_slow_stretch_moves_one_round_not_the_figures() -> None:
    f = figures()
    # the second round ran while the machine was twice as slow: its certify, floor and increment alike
    for certify, floor, increment in ((10.0, 6.0, 0.45), (20.0, 12.0, 0.9), (11.0, 6.5, 0.5)):
        f.add_round(Round(certify, floor, increment, certify_cpu_s=2 * certify, floor_cpu_s=2 * floor))
    assert (f.certify_s, f.floor_s, f.increment_s) == (11.0, 6.5, 0.5)
    # the ratios are each round's own, then their median: not the median certify over the median floor
    assert f.ratio == pytest.approx(sorted([10 / 6, 20 / 12, 11 / 6.5])[1])
    assert f.increment_share == pytest.approx(sorted([0.045, 0.045, 0.5 / 11])[1])
    assert f.cpu_s["certify"] == 22.0


def test_rounds_without_an_increment_have_no_share() -> None:
    f = figures()
    f.add_round(Round(certify_s=10.0, floor_s=5.0, increment_s=None, certify_cpu_s=1, floor_cpu_s=1))
    assert f.increment_s is None and f.increment_share is None


def test_the_spread_is_shown_for_two_rounds_and_more() -> None:
    assert _spread([9.4]) == ""
    assert _spread([9.4, 11.2, 10.0]) == " (median of 3: 9.4-11.2s)"
    assert _spread([0.052, 0.049], "{:.1%}") == " (median of 2: 4.9-5.2%)"
    assert _spread([1.24, 1.7], "{:.2f}") == " (median of 2: 1.24-1.70)"
