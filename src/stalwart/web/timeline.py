"""The timeline of a job: its state changes, from the times and errors stored with
it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..store.reads import JobDetail

__all__ = ["Event", "timeline"]


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
    for entry in history(job.history):
        events.append(entry)
    if detail.ready_since is not None:
        events.append(Event(detail.ready_since, "Ready", "waiting for a worker", "wait"))
    if detail.suspect_since is not None:
        events.append(
            Event(detail.suspect_since, "Runs alone", "waiting for an isolation worker", "wait")
        )
    if detail.throttled_on is not None and detail.throttled_until is not None:
        events.append(
            Event(
                detail.throttled_until,
                "Rate",
                f"in line for a start of rate {detail.throttled_on}",
                "wait",
                detail.throttled_until > now,
            )
        )
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


# A job's history entries (JSON on its row) as timeline events: label, kind.
_HISTORY = {
    "interrupted": ("Handed back", "wait"),
    "suspect": ("Suspect", "wait"),
    "crash": ("Crash charged", "bad"),
    "cancel": ("Cancel asked", "info"),
    "rate": ("Over its rate", "wait"),
}


def history(text: str | None) -> list[Event]:
    """What happened to the job besides its attempts (`store/history.py`)."""
    try:
        entries = json.loads(text) if text else []
    except ValueError:
        return []
    out = []
    for e in entries if isinstance(entries, list) else []:
        at = _parse_at(e.get("at")) if isinstance(e, dict) else None
        if at is None:
            continue
        label, kind = _HISTORY.get(str(e.get("event")), (str(e.get("event")), "info"))
        out.append(Event(at, label, str(e.get("detail", "")), kind))
    return out


def _parse_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at.replace(tzinfo=None) if at.tzinfo is not None else at
