"""The dashboard's pages (GET): overview, job lists, one job, processes, recurring tasks,
audit log. Each reads through the store's verbs (`store.reads`) and renders a template."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import JobNotFound
from ..names import parse_job_id, parse_time
from ..recurring import row_from_config
from ..schedules import parse_schedule
from ..serialization import loads
from ..store import utcnow
from ..store.audit import AuditEvent
from ..store.clock import describe_offset
from ..store.reads import JobFilter, bounds, limit_keys
from ..store.statuses import STATUSES, status_named
from .activity import activity, hour_window, latency_chart, throughput_chart
from .formatting import loads_or_text
from .render import Settings, error_page, path_for, render, settings_of
from .timeline import timeline
from .why import why_waiting
from .workflow_pages import progress_of

__all__ = [
    "audit_page",
    "job_page",
    "jobs_list",
    "overview",
    "processes_page",
    "recurring_page",
]

# Activity charts: the last hour in this many slices, at most this many jobs read each.
BUCKETS, PER_BUCKET = 30, 60
RANGES = {"15m": 15 * 60, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
QUEUE_SORTS = {
    "name": lambda q: (q.name,),
    "ready": lambda q: (-q.ready, q.name),
    "failed": lambda q: (-q.failed, q.name),
    "oldest": lambda q: (q.oldest_ready_at or datetime.max, q.name),
}


# ---- query parameters ----


class BadRequest(Exception):
    pass


def _text_param(request: Request, name: str, max_len: int = 255) -> str | None:
    value = request.query_params.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > max_len:
        raise BadRequest(f"{name} is longer than {max_len} characters")
    return value.strip()


def _id_param(request: Request, name: str) -> int | None:
    value = _text_param(request, name, 20)
    return None if value is None else parse_job_id(value, name)


def _time_param(request: Request, name: str) -> datetime | None:
    value = _text_param(request, name, 40)
    if value is None:
        return None
    try:
        return parse_time(value, name)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


# ---- pages ----


def overview(request: Request) -> Response:
    s = settings_of(request)
    store = s.app.store
    sort = request.query_params.get("sort", "name")
    if sort not in QUEUE_SORTS:
        return error_page(request, 400, f"sort must be one of {', '.join(QUEUE_SORTS)}")
    queues = sorted(store.queues_overview(), key=QUEUE_SORTS[sort])
    counts = store.status_counts(queues)
    since, until = hour_window(utcnow())
    samples = store.finished_sample(since, until, BUCKETS, PER_BUCKET)
    act = activity(samples, since, until, BUCKETS, PER_BUCKET)
    return render(
        request,
        "overview.html",
        queues=queues,
        counts=counts,
        sort=sort,
        sorts=list(QUEUE_SORTS),
        activity=act,
        throughput=throughput_chart(act),
        latency=latency_chart(act),
        preserve=s.app.config.preserve_finished_jobs,
        refresh=True,
    )


def jobs_list(request: Request) -> Response:
    s = settings_of(request)
    try:
        job_id = _text_param(request, "id", 20)
        if job_id is not None:
            return _find_job(request, job_id)
        status = status_named(request.query_params.get("status", "failed"))
        rng = request.query_params.get("range", "")
        if rng and rng not in RANGES:
            raise BadRequest(f"range must be one of {', '.join(RANGES)}")
        since, until = _time_param(request, "since"), _time_param(request, "until")
        if rng:
            since, until = utcnow() - timedelta(seconds=RANGES[rng]), None
        which = JobFilter(
            status=status,
            queue_name=_text_param(request, "queue"),
            task_name=_text_param(request, "task"),
            error_class=_text_param(request, "error_class"),
            since=since,
            until=until,
            batch_id=_id_param(request, "batch"),
        )
        cursor = _text_param(request, "cursor", 80)
        page = s.app.store.jobs_page(which, cursor=cursor, limit=s.page_size)
    except (BadRequest, ValueError) as exc:
        return error_page(request, 400, str(exc))
    counts = s.app.store.status_counts()
    classes = s.app.store.failed_error_classes() if status == "FAILED" else []
    filters = {
        "status": status.lower(),
        "queue": which.queue_name,
        "task": which.task_name,
        "error_class": which.error_class,
        "batch": which.batch_id,
        "range": rng or None,
        "since": None if rng else request.query_params.get("since"),
        "until": None if rng else request.query_params.get("until"),
    }
    rows = [(r, _preview(s, r.task_name, r.args, r.kwargs)) for r in page.rows]
    return render(
        request,
        "jobs.html",
        page=page,
        rows=rows,
        which=which,
        filters=filters,
        counts=counts,
        classes=classes,
        statuses=[x.lower() for x in STATUSES],
        ranges=list(RANGES),
        tasks=sorted(s.app.tasks),
        first_page=cursor is None,
        scan_window=bounds.SCAN_WINDOW,
        refresh=True,
    )


def _find_job(request: Request, raw: str) -> Response:
    try:
        job_id = parse_job_id(raw)
    except ValueError as exc:
        return error_page(request, 400, f"{exc}.")
    try:
        settings_of(request).app.store.job_get(job_id)
    except JobNotFound:
        return error_page(request, 404, f"No job with id {job_id}.")
    return RedirectResponse(path_for(request, "job", job_id=job_id), 303)


def _preview(s: Settings, task_name: str, args: str, kwargs: str) -> str:
    task = s.app.tasks.get(task_name)
    a, k = s.redactor.arguments(loads(args) or [], loads(kwargs) or {}, task.func if task else None)
    parts = [_short(x) for x in a] + [f"{key}={_short(v)}" for key, v in k.items()]
    text = ", ".join(parts)
    return text if len(text) <= 120 else text[:119] + "…"


def _short(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def job_page(request: Request) -> Response:
    s = settings_of(request)
    job_id = int(request.path_params["job_id"])
    detail = s.app.store.job_detail(job_id)
    if detail is None:
        return error_page(
            request,
            404,
            f"No job with id {job_id}: it never existed, or it was discarded or cleared.",
        )
    job = detail.job
    task = s.app.tasks.get(job.task_name)
    args, kwargs = s.redactor.arguments(
        loads(job.args) or [], loads(job.kwargs) or {}, task.func if task else None
    )
    errors = [e for e in (loads_or_text(job.errors) or []) if isinstance(e, dict)]
    now = utcnow()
    reasons = []
    if job.status in ("WAITING", "READY", "SCHEDULED", "BLOCKED", "RUNNING"):
        facts = s.app.store.job_wait_facts(job_id, s.app.config.alive_threshold)
        if facts is not None:
            reasons = why_waiting(facts, s.app.config.alive_threshold)
    context = loads_or_text(job.context)
    result = loads_or_text(job.result) if job.finished_at else None
    depends_on, dependents = s.app.store.job_links(job_id)
    return render(
        request,
        "job.html",
        depends_on=depends_on,
        dependents=dependents,
        progress=progress_of(job.progress),
        job=job,
        detail=detail,
        args=args,
        kwargs=kwargs,
        context=s.redactor(context) if context else None,
        result=s.redactor(result),
        errors=errors,
        events=timeline(detail, errors, now),
        reasons=reasons,
        limit_keys=limit_keys(job),
        limits=loads_or_text(job.concurrency_limits),
        refresh=job.status in ("WAITING", "READY", "SCHEDULED", "BLOCKED", "RUNNING"),
    )


def processes_page(request: Request) -> Response:
    s = settings_of(request)
    store = s.app.store
    procs = store.processes_list()
    held: dict[int | None, list[int]] = {}
    for job_id, process_id, _pid, _name in store.claimed_with_process():
        held.setdefault(process_id, []).append(job_id)
    now = s.app.now()  # the database's time, as heartbeats are written
    threshold = timedelta(seconds=s.app.config.alive_threshold)
    hosts: dict[str, list[Any]] = {}
    for p in procs:
        hosts.setdefault(p.hostname, []).append(
            {
                "p": p,
                "alive": now - p.last_heartbeat_at <= threshold,
                "jobs": held.get(p.id, []),
                "clock": describe_offset(p.clock_offset),
                "clock_off": p.clock_offset is not None
                and abs(p.clock_offset) > s.app.config.clock_tolerance,
            }
        )
    return render(
        request,
        "processes.html",
        hosts=hosts,
        orphans=held.get(None, []),
        threshold=s.app.config.alive_threshold,
        tolerance=s.app.config.clock_tolerance,
        refresh=True,
    )


def recurring_page(request: Request) -> Response:
    s = settings_of(request)
    configured = [row_from_config(rc) for rc in s.app.config.recurring]
    rows = s.app.store.recurring_overview(configured)
    now_aware = datetime.now(UTC)
    items = []
    for r in rows:
        if not r.registered:
            continue
        try:
            nxt: datetime | None = (
                parse_schedule(r.schedule, r.time_zone).next_after(now_aware).replace(tzinfo=None)
            )
            problem = None
        except ValueError as exc:
            nxt, problem = None, str(exc)
        items.append({"r": r, "next": nxt, "problem": problem})
    unregistered = [r for r in rows if not r.registered]
    return render(
        request,
        "recurring.html",
        items=items,
        unregistered=unregistered,
    )


def audit_page(request: Request) -> Response:
    s = settings_of(request)
    before = request.query_params.get("before")
    try:
        before_id = parse_job_id(before, "before") if before else None
    except ValueError:
        return error_page(request, 400, "before must be an event id")
    events: list[AuditEvent] = s.app.store.audit_page(before_id=before_id, limit=s.page_size + 1)
    more = len(events) > s.page_size
    events = events[: s.page_size]
    return render(
        request,
        "audit.html",
        events=events,
        next_before=events[-1].id if more and events else None,
    )
