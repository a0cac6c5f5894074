"""`stalwart.percentiles.percentile`: the one percentile of bench and dashboard."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from stalwart.percentiles import percentile


def type7(values: list[float], p: float) -> float:
    """The textbook definition: interpolate between the two nearest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_unweighted_is_linear_between_closest_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 0) == 1.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 90) == pytest.approx(46.0)
    rng = random.Random(7)
    for _ in range(200):
        values = [rng.uniform(0, 1000) for _ in range(rng.randint(1, 50))]
        for p in (0, 1, 50, 75, 90, 95, 99, 100):
            assert percentile(values, p) == type7(values, p)


def test_equal_weights_are_no_weights() -> None:
    rng = random.Random(11)
    for _ in range(100):
        values = [rng.uniform(0, 10) for _ in range(rng.randint(1, 30))]
        for p in (0, 50, 95, 99, 100):
            assert percentile(values, p, [1.0] * len(values)) == percentile(values, p)
            assert percentile(values, p, [3.5] * len(values)) == pytest.approx(
                percentile(values, p)
            )


def test_weights_pull_toward_heavy_values() -> None:
    values = [1.0, 2.0, 3.0]
    assert percentile(values, 50, [1.0, 1.0, 1.0]) == 2.0
    high = percentile(values, 50, [1.0, 1.0, 10.0])
    low = percentile(values, 50, [10.0, 1.0, 1.0])
    assert high is not None and low is not None
    assert high > 2.0 and low < 2.0 and high - 2.0 == pytest.approx(2.0 - low)
    assert percentile(values, 50, [0.0, 0.0, 0.0]) is None  # nothing weighs anything
    assert percentile(values, 50, [0.0, 1.0, 0.0]) == 2.0
    assert percentile([5.0, 1.0], 100, [1.0, 4.0]) == 5.0
    with pytest.raises(ValueError, match="one weight per value"):
        percentile(values, 50, [1.0])


def test_monotone_in_p() -> None:
    rng = random.Random(3)
    values = [rng.expovariate(1.0) for _ in range(40)]
    weights = [rng.uniform(0.1, 5) for _ in values]
    for w in (None, weights):
        got = [percentile(values, p, w) for p in range(0, 101, 5)]
        assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(got))
