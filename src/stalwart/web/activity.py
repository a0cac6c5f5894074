"""Throughput and latency over the last hour, from a bounded sample of finished jobs,
and the geometry of their charts (drawn by the template as inline SVG: no script)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..percentiles import percentile
from ..store.reads import FinishedSample
from .formatting import duration

__all__ = [
    "Activity",
    "Bucket",
    "Chart",
    "activity",
    "hour_window",
    "latency_chart",
    "throughput_chart",
]


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    per_minute: float
    estimated: bool
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class Activity:
    buckets: list[Bucket]
    total: int
    estimated: bool
    wait_p50: float | None
    wait_p95: float | None
    wait_p99: float | None
    run_p50: float | None
    run_p95: float | None
    run_p99: float | None


def activity(
    samples: Sequence[FinishedSample],
    since: datetime,
    until: datetime,
    buckets: int,
    per_bucket: int,
) -> Activity:
    """Throughput and latency from a bounded sample of finished jobs.

    A bucket with fewer than ``per_bucket`` samples is exact; a full one is
    extrapolated from how much of the bucket its samples span. Percentiles over the
    hour weight each sample by its bucket's count, so a busy minute counts more.
    Wait = started - due (scheduled_at); run = finished - started.
    """
    width = (until - since) / buckets
    by_bucket: dict[int, list[FinishedSample]] = {}
    for smp in samples:
        by_bucket.setdefault(smp.bucket, []).append(smp)
    out: list[Bucket] = []
    waits: list[float] = []
    runs: list[float] = []
    weights: list[float] = []
    total = 0.0
    estimated_any = False
    for i in range(buckets):
        start = since + width * i
        rows = by_bucket.get(i, [])
        span = min(width, until - start).total_seconds()
        count = float(len(rows))
        estimated = len(rows) >= per_bucket
        if estimated:
            covered = (rows[-1].finished_at - start).total_seconds()
            count = len(rows) * span / max(covered, 1e-3)
            estimated_any = True
        total += count
        weight = count / len(rows) if rows else 0.0
        bucket_waits = []
        for r in rows:
            if r.started_at is None:
                continue
            wait = max((r.started_at - r.scheduled_at).total_seconds(), 0.0)
            run = max((r.finished_at - r.started_at).total_seconds(), 0.0)
            bucket_waits.append(wait)
            waits.append(wait)
            runs.append(run)
            weights.append(weight)
        out.append(
            Bucket(
                start=start,
                per_minute=count * 60 / span if span > 0 else 0.0,
                estimated=estimated,
                p50=percentile(bucket_waits, 50),
                p95=percentile(bucket_waits, 95),
                p99=percentile(bucket_waits, 99),
            )
        )
    return Activity(
        buckets=out,
        total=round(total),
        estimated=estimated_any,
        wait_p50=percentile(waits, 50, weights),
        wait_p95=percentile(waits, 95, weights),
        wait_p99=percentile(waits, 99, weights),
        run_p50=percentile(runs, 50, weights),
        run_p95=percentile(runs, 95, weights),
        run_p99=percentile(runs, 99, weights),
    )


# ---- chart geometry (the template draws it as inline SVG: no script) ----


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    css: str
    points: str
    # Each point also drawn as a dot: one busy minute alone is a visible mark.
    dots: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    lines: list[Line]
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]


CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 560, 160, 48, 20, 8


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = float(10 ** math.floor(math.log10(v)))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _x_labels(buckets: Sequence[Bucket], slot: float) -> list[tuple[float, str]]:
    labels = []
    step = max(len(buckets) // 6, 1)
    for i in range(0, len(buckets), step):
        labels.append((PAD_L + slot * i, buckets[i].start.strftime("%H:%M")))
    return labels


def throughput_chart(a: Activity) -> Chart:
    n = max(len(a.buckets), 1)
    plot_w, plot_h = CHART_W - PAD_L, CHART_H - PAD_B - PAD_T
    top = _nice_max(max((b.per_minute for b in a.buckets), default=0.0))
    slot = plot_w / n
    bars = []
    for i, b in enumerate(a.buckets):
        h = plot_h * b.per_minute / top
        approx = "~" if b.estimated else ""
        bars.append(
            Bar(
                x=round(PAD_L + slot * i + 1, 1),
                y=round(PAD_T + plot_h - h, 1),
                w=round(max(slot - 2, 1), 1),
                h=round(h, 1),
                title=f"{b.start:%H:%M} {approx}{b.per_minute:.1f} jobs/min",
            )
        )
    y_labels = [(PAD_T + plot_h * (1 - f), f"{top * f:g}") for f in (0, 0.5, 1)]
    return Chart(CHART_W, CHART_H, bars, [], y_labels, _x_labels(a.buckets, slot))


def latency_chart(a: Activity) -> Chart:
    n = max(len(a.buckets), 1)
    plot_w, plot_h = CHART_W - PAD_L, CHART_H - PAD_B - PAD_T
    top = _nice_max(max((b.p99 or 0.0 for b in a.buckets), default=0.0))
    slot = plot_w / n
    lines = []
    for name, css in (("p50", "p50"), ("p95", "p95"), ("p99", "p99")):
        dots = []
        for i, b in enumerate(a.buckets):
            v = getattr(b, name)
            if v is None:
                continue
            x = PAD_L + slot * (i + 0.5)
            y = PAD_T + plot_h * (1 - v / top)
            dots.append((round(x, 1), round(y, 1)))
        lines.append(Line(name, css, " ".join(f"{x},{y}" for x, y in dots), dots))
    y_labels = [(PAD_T + plot_h * (1 - f), duration(top * f)) for f in (0, 0.5, 1)]
    return Chart(CHART_W, CHART_H, [], lines, y_labels, _x_labels(a.buckets, slot))


def hour_window(now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(hours=1), now
