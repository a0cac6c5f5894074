"""What the pages show, computed from the store's records: redaction, the timeline of
a job, the reasons a job waits, throughput and latency, chart geometry.

Pure functions of plain data, so each is tested without a server.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..percentiles import percentile
from ..store import QueueSelector
from ..store.reads import FinishedSample, JobDetail, LiveProcess, WaitFacts, bounds, limit_keys

REDACTED = "[redacted]"
# Matched case-insensitively as substrings of keys (and of parameter names), with
# "-" and "_" ignored: "api-key", "API_KEY" and "apikey" all match "apikey".
DEFAULT_REDACT = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "cookie",
    "credential",
    "session",
)


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


class Redactor:
    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = tuple(_norm(k) for k in keys if k)

    def secret(self, name: str) -> bool:
        n = _norm(name)
        return any(k in n for k in self.keys)

    def __call__(self, value: Any) -> Any:
        """A copy of ``value`` with the values of secret-looking keys replaced, at any
        depth of dicts and lists."""
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and self.secret(k) else self(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def arguments(
        self, args: list[Any], kwargs: dict[str, Any], func: Callable[..., Any] | None
    ) -> tuple[list[Any], dict[str, Any]]:
        """Redacted arguments; positional ones by the task's parameter names, if known."""
        names: list[str] = []
        if func is not None:
            try:
                names = [
                    p.name
                    for p in inspect.signature(func).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
            except (TypeError, ValueError):
                names = []
        out_args = [
            REDACTED if i < len(names) and self.secret(names[i]) else self(a)
            for i, a in enumerate(args)
        ]
        return out_args, self(kwargs)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def loads_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---- time ----


def ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return ""
    delta = (now - then).total_seconds()
    word = "ago" if delta >= 0 else "from now"
    return f"{duration(abs(delta))} {word}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = abs(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def stamp(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- the timeline of a job ----


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    label: str
    detail: str = ""
    kind: str = "info"  # info | good | bad | wait
    future: bool = False


def timeline(detail: JobDetail, errors: list[dict[str, Any]], now: datetime) -> list[Event]:
    """State changes of a job, from the times and errors stored with it."""
    job = detail.job
    events = [Event(job.enqueued_at, "Enqueued", f"on queue {job.queue_name}")]
    if (job.scheduled_at - job.enqueued_at).total_seconds() > 1:
        events.append(
            Event(job.scheduled_at, "Due", "scheduled with a delay", "wait", job.scheduled_at > now)
        )
    for n, e in enumerate(errors, 1):
        at = _parse_at(e.get("at"))
        if at is None:
            continue
        cls = str(e.get("class", "Error"))
        crash = cls.endswith(("ProcessExited", "ProcessPruned"))
        label = "Crashed" if crash else "Cancelled" if cls.endswith("Cancelled") else "Error"
        events.append(Event(at, f"{label} #{n}", f"{cls}: {e.get('message', '')}", "bad"))
    if detail.ready_since is not None:
        events.append(Event(detail.ready_since, "Ready", "waiting for a worker", "wait"))
    if detail.scheduled_for is not None:
        future = detail.scheduled_for > now
        events.append(Event(detail.scheduled_for, "Runs", "scheduled", "wait", future))
    if detail.blocked_since is not None:
        events.append(
            Event(
                detail.blocked_since, "Blocked", f"on concurrency key {detail.blocked_on}", "wait"
            )
        )
    if detail.claim is not None:
        who = detail.claim.process_name or f"process {detail.claim.process_id}"
        events.append(Event(detail.claim.at, "Claimed", f"by {who}"))
    elif job.started_at is not None:
        events.append(Event(job.started_at, "Started", f"attempt {max(job.attempts, 1)}"))
    if job.finished_at is not None:
        events.append(Event(job.finished_at, "Finished", "successfully", "good"))
    if detail.failed_at is not None:
        events.append(Event(detail.failed_at, "Failed", "no retry left", "bad"))
    return sorted(events, key=lambda e: e.at)


def _parse_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at.replace(tzinfo=None) if at.tzinfo is not None else at


# ---- why isn't this job running? ----


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    job_ids: list[int] = field(default_factory=list)
    blocking: bool = True


def worker_patterns(p: LiveProcess) -> list[str]:
    queues = p.metadata.get("queues", ["*"])
    return [str(q) for q in queues] if isinstance(queues, list) else ["*"]


def why_waiting(f: WaitFacts, alive_threshold: float) -> list[Reason]:
    """Every reason that holds the job back, most decisive first."""
    if f.status == "RUNNING":
        who = "a worker"
        if f.claim is not None and f.claim.process_name:
            who = f"{f.claim.process_name} (host {f.claim.hostname}, pid {f.claim.pid})"
        return [Reason("running", f"It is running: claimed by {who}.", blocking=False)]
    if f.status == "FAILED":
        return [Reason("failed", "It failed and has no retry left; retry it by hand.")]
    if f.status == "SUCCESSFUL":
        return [Reason("finished", "It finished successfully.", blocking=False)]
    reasons: list[Reason] = []
    q = f.queue_name
    if f.status == "SCHEDULED" and f.scheduled_for is not None:
        if f.scheduled_for > f.now:
            reasons.append(
                Reason(
                    "scheduled",
                    f"It is scheduled for {stamp(f.scheduled_for)} "
                    f"({ago(f.scheduled_for, f.now)}).",
                )
            )
        elif not any(p.kind == "dispatcher" for p in f.live):
            reasons.append(
                Reason(
                    "no_dispatcher",
                    f"It has been due since {stamp(f.scheduled_for)}, but no dispatcher is "
                    "running to move it to ready.",
                )
            )
    if f.status == "BLOCKED" and f.blocked_on is not None:
        holders = f.holders_running + f.holders_ready
        msg = f"It waits on concurrency key {f.blocked_on!r}"
        if f.semaphore is not None:
            msg += (
                f" (no slot free; the limit frees at the latest at {stamp(f.semaphore.expires_at)})"
            )
        if holders:
            running = ", ".join(f"#{i}" for i in f.holders_running) or "none"
            ready = ", ".join(f"#{i}" for i in f.holders_ready)
            msg += f", held by running jobs {running}"
            if ready:
                msg += f" and by ready jobs {ready}"
        else:
            msg += ", held by no job now (it is freed when the key expires)"
        reasons.append(Reason("semaphore", msg + ".", holders))
    if f.paused:
        reasons.append(Reason("paused", f"Queue {q!r} is paused; resume it to run its jobs."))
    workers = [p for p in f.live if p.kind == "worker"]
    mine = [p for p in workers if QueueSelector(tuple(worker_patterns(p))).matches(q)]
    if not workers:
        reasons.append(
            Reason(
                "no_worker",
                f"No worker is running: none has sent a heartbeat in the last "
                f"{duration(alive_threshold)}.",
            )
        )
    elif not mine:
        listened = sorted({pat for p in workers for pat in worker_patterns(p)})
        reasons.append(
            Reason(
                "no_worker",
                f"No live worker takes jobs from queue {q!r}; the {len(workers)} live "
                f"worker(s) listen to: {', '.join(listened)}.",
            )
        )
    if f.status == "READY":
        if f.ahead_higher or f.ahead_same:
            parts = []
            if f.ahead_higher:
                parts.append(f"{_count(f.ahead_higher)} of higher priority")
            if f.ahead_same:
                parts.append(f"{_count(f.ahead_same)} of the same priority enqueued earlier")
            reasons.append(
                Reason("behind", f"It is behind ready jobs in queue {q!r}: {' and '.join(parts)}.")
            )
        if mine:
            capacity = sum(
                int(p.metadata.get("threads", 1)) + int(p.metadata.get("prefetch", 0)) for p in mine
            )
            in_hand = sum(p.in_hand for p in mine)
            if in_hand >= capacity:
                reasons.append(
                    Reason(
                        "busy",
                        f"Every worker of queue {q!r} is busy: {in_hand} job(s) in hand for "
                        f"a capacity of {capacity}.",
                    )
                )
    if not reasons:
        reasons.append(
            Reason(
                "next",
                "Nothing holds it back: a worker takes it at its next poll.",
                blocking=False,
            )
        )
    return reasons


def _count(n: int) -> str:
    return f"{n:,}+" if n >= bounds.COUNT_CAP else f"{n:,}"


# ---- throughput and latency ----


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


__all__ = [
    "DEFAULT_REDACT",
    "Activity",
    "Chart",
    "Event",
    "Reason",
    "Redactor",
    "activity",
    "limit_keys",
    "timeline",
    "why_waiting",
]
