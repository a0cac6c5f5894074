"""Percentiles, for `stalwart bench` and the dashboard's latency charts.

One definition for both: linear interpolation between the closest ranks (what numpy
calls "linear", Hyndman and Fan's type 7), extended to weighted values by placing each
value at the middle of its weight, the weights laid end to end in value order. With no
weights (or equal ones) it is the unweighted type 7.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["percentile"]


def percentile(
    values: Sequence[float], p: float, weights: Sequence[float] | None = None
) -> float | None:
    """The ``p``-th percentile (0-100) of ``values``, None when there are none.

    ``weights``, one per value, make some values count more (a value standing for a
    busy minute of a sample, say); values of weight 0 or less are left out.
    """
    if weights is None:
        ordered = sorted(values)
        if not ordered:
            return None
        rank = (len(ordered) - 1) * p / 100.0
        low = int(rank)
        if low >= len(ordered) - 1:
            return ordered[-1]
        return ordered[low] + (ordered[low + 1] - ordered[low]) * (rank - low)
    if len(weights) != len(values):
        raise ValueError("percentile: one weight per value")
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        return None
    # Each value sits at the middle of its weight, counted from the first one's middle:
    # with weights of 1, at 0, 1, 2, ... as ranks do.
    positions = []
    before = 0.0
    for _, w in pairs:
        positions.append(before + w / 2 - pairs[0][1] / 2)
        before += w
    top = positions[-1]
    rank = top * p / 100.0
    for i in range(len(pairs) - 1):
        lo, hi = positions[i], positions[i + 1]
        if rank < hi:
            share = (rank - lo) / (hi - lo)
            return pairs[i][0] + (pairs[i + 1][0] - pairs[i][0]) * share
    return pairs[-1][0]
