"""Why isn't this job running? Every reason that holds a job back, from the facts the
store read (`Store.job_wait_facts`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import QueueSelector
from ..store.reads import LiveProcess, WaitFacts, bounds
from .formatting import ago, duration, stamp

__all__ = ["Reason", "why_waiting", "worker_patterns"]


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
        return [Reason("successful", "It finished successfully.", blocking=False)]
    reasons: list[Reason] = []
    q = f.queue_name
    if f.status == "WAITING":
        reasons.append(_waiting(f))
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
    if f.throttled_on is not None and f.throttled_until is not None:
        reasons.append(
            Reason(
                "rate",
                f"It is in line for a start under the rate {f.throttled_on!r}: the rate's "
                f"starts are all taken; the next frees at {stamp(f.throttled_until)} "
                f"({ago(f.throttled_until, f.now)}), and jobs ahead in line go first.",
            )
        )
    if f.suspect_since is not None:
        isolation = [p for p in f.live if p.metadata.get("isolation")]
        msg = (
            "It was running when its worker process died, beside other jobs (or it was "
            "charged the crash): it runs next alone, in a process of its own, so that a "
            "crash can be blamed on the job that caused it."
        )
        if isolation:
            msg += " An isolation worker is running now."
        else:
            msg += " A supervisor starts an isolation worker within a heartbeat."
        reasons.append(Reason("suspect", msg))
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


def _waiting(f: WaitFacts) -> Reason:
    """WAITING: the dependencies that have not succeeded yet, each with its status."""
    left = [(i, task, status) for i, task, status in f.waiting_on if status != "SUCCESSFUL"]
    if not left:
        msg = (
            "It waited for jobs it depends on, and they have all ended: the dispatcher "
            "lets it go at its next poll."
        )
        if not any(p.kind == "dispatcher" for p in f.live):
            msg += " No dispatcher is running now."
        return Reason("dependencies", msg)
    named = ", ".join(f"#{i} ({task}, {status.lower()})" for i, task, status in left)
    return Reason(
        "dependencies",
        f"It waits for the job(s) it depends on to succeed: {named}.",
        [i for i, _, _ in left],
    )


def _count(n: int) -> str:
    return f"{n:,}+" if n >= bounds.COUNT_CAP else f"{n:,}"
