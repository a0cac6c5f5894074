"""The dashboard: a Starlette application to mount into any ASGI app.

    from stalwart.web import BasicAuth, dashboard

    dash = dashboard(app, auth=BasicAuth(admins={"alice": os.environ["DASH_PW"]}))
    # Starlette: Mount("/jobs", app=dash); FastAPI: api.mount("/jobs", dash)

Pages are rendered on the server (Jinja2, autoescaped) and work without JavaScript;
``static/app.js`` only adds auto-refresh and confirmations. Closed by default: with no
``auth`` every page answers 401 saying how to configure access.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..app import App
from ..contrib.starlette import CurrentMiddleware
from ..errors import JobNotFound
from ..recurring import row_from_config
from ..schedules import parse_schedule
from ..serialization import loads
from ..store import FailedFilter, utcnow
from ..store.audit import AuditEvent
from ..store.reads import JobFilter, QueueStats, bounds, limit_keys
from ..store.statuses import STATUSES, status_named
from ..tasks import check_queue_name
from ..types import ASGIApp, Receive, Scope, Send
from . import csrf
from .auth import Authorize, BasicAuth, Principal
from .client_ip import ClientIPConfig, ClientIPMiddleware, client_ip_from_scope
from .present import (
    DEFAULT_REDACT,
    Redactor,
    activity,
    ago,
    duration,
    hour_window,
    latency_chart,
    loads_or_text,
    pretty_json,
    stamp,
    throughput_chart,
    timeline,
    why_waiting,
)
from .serving import (
    HAS_BROTLI,
    BodyLimitMiddleware,
    CompressionMiddleware,
    SecurityHeadersMiddleware,
    StaticAssets,
    load_assets,
)

log = logging.getLogger("stalwart.web")

PAGE_SIZE = 50
# Activity charts: the last hour in this many slices, at most this many jobs read each.
BUCKETS, PER_BUCKET = 30, 60
RANGES = {"15m": 15 * 60, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
QUEUE_SORTS = {
    "name": lambda q: (q.name,),
    "ready": lambda q: (-q.ready, q.name),
    "failed": lambda q: (-q.failed, q.name),
    "oldest": lambda q: (q.oldest_ready_at or datetime.max, q.name),
}
NOTICES = {
    "retried": "Retried {n} job(s).",
    "discarded": "Discarded {n} job(s).",
    "cancelled": "Cancelled the job.",
    "not_cancelled": "The job was not waiting any more: nothing was cancelled.",
    "paused": "Paused the queue.",
    "resumed": "Resumed the queue.",
    "ran": "Enqueued a run of the recurring task.",
    "nothing": "Nothing selected: no job was changed.",
}
UNCONFIGURED = """\
<!doctype html><meta charset="utf-8"><title>Stalwart: access not configured</title>
<h1>401: the Stalwart dashboard is closed</h1>
<p>No way to sign in has been configured, so nothing is shown. To open it:</p>
<ul>
<li>In code: <code>stalwart.web.dashboard(app, auth=BasicAuth(admins={"alice": "..."},
viewers={"bob": "..."}))</code>, or <code>auth=my_authorize</code>, a callable
<code>authorize(request) -&gt; Principal | None</code>.</li>
<li>With <code>stalwart dashboard</code>: set
<code>STALWART_DASHBOARD_ADMINS="alice:password"</code> (and optionally
<code>STALWART_DASHBOARD_VIEWERS="bob:password"</code> for read-only users)
in its environment, then restart it.</li>
</ul>
"""


@dataclass(frozen=True)
class Settings:
    app: App
    authorize: Authorize | None
    read_only: bool
    redactor: Redactor
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    page_size: int
    assets: StaticAssets
    env: Environment


def dashboard(
    app: App,
    *,
    auth: Authorize | None = None,
    read_only: bool = False,
    redact: Iterable[str] = DEFAULT_REDACT,
    client_ip: ClientIPConfig | None = None,
    allow_ips: Iterable[str] = (),
    max_body_size: int = 64 * 1024,
    page_size: int = PAGE_SIZE,
) -> Starlette:
    """The dashboard of ``app`` as a Starlette application.

    - ``auth``: `BasicAuth(...)` or any ``authorize(request) -> Principal | None``
      (sync or async). None: every page answers 401 (closed by default).
    - ``read_only``: nobody may act, whatever their role.
    - ``redact``: keys whose values are hidden in arguments, context and results
      (case-insensitive substrings, at any depth).
    - ``client_ip``: how to find the client IP behind proxies or CloudFront; None
      trusts only the TCP peer (or what a `ClientIPMiddleware` around this app found).
    - ``allow_ips``: if given, only clients in these networks get in (403 otherwise).
    - ``max_body_size``: larger request bodies get 413.
    """
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow_ips)
    env = Environment(
        loader=PackageLoader("stalwart.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    settings = Settings(
        app=app,
        authorize=auth,
        read_only=read_only,
        redactor=Redactor(redact),
        allow_networks=networks,
        page_size=page_size,
        assets=StaticAssets(load_assets()),
        env=env,
    )
    env.filters.update(stamp=stamp, duration=duration, pretty=pretty_json)
    routes = [
        Route("/", overview, name="overview"),
        Route("/jobs", jobs_list, name="jobs"),
        Route("/jobs/bulk", jobs_bulk, methods=["POST"], name="jobs_bulk"),
        Route("/jobs/{job_id:int}", job_page, name="job"),
        Route("/jobs/{job_id:int}/{action}", job_action, methods=["POST"], name="job_action"),
        Route("/queues/{queue}/{action}", queue_action, methods=["POST"], name="queue_action"),
        Route("/processes", processes_page, name="processes"),
        Route("/recurring", recurring_page, name="recurring"),
        Route("/recurring/{key:path}/run", recurring_run, methods=["POST"], name="recurring_run"),
        Route("/audit", audit_page, name="audit"),
        Route("/static/{asset}", settings.assets, name="static"),
        Route("/healthz", healthz, name="healthz"),
    ]
    middleware = []
    if client_ip is not None:
        middleware.append(
            Middleware(
                ClientIPMiddleware,
                trusted_proxies=client_ip.trusted_proxies,
                cloudfront=client_ip.cloudfront,
                origin_secret_header=client_ip.origin_secret_header,
                forwarded_for=client_ip.forwarded_for,
            )
        )
    middleware += [
        Middleware(SecurityHeadersMiddleware),
        Middleware(CompressionMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=max_body_size),
        Middleware(CurrentMiddleware),
        Middleware(Guard, settings=settings),
    ]
    web = Starlette(routes=routes, middleware=middleware)
    web.state.settings = settings
    if auth is None:
        log.warning("stalwart dashboard: no auth configured; every page answers 401")
    log.info("stalwart dashboard: compression %s", "brotli and gzip" if HAS_BROTLI else "gzip")
    return web


# ---- the guard: IP allowlist and authentication, before any page ----


def route_path(scope: Scope) -> str:
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


class Guard:
    """Lets a request through only from an allowed IP with a principal; sets
    ``scope["state"]["principal"]``. Static assets and /healthz are public."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path.startswith("/static/") or path == "/healthz":
            await self.app(scope, receive, send)
            return
        s = self.settings
        if s.allow_networks and not _ip_allowed(client_ip_from_scope(scope), s.allow_networks):
            await PlainTextResponse("403: your IP address is not allowed", 403)(
                scope, receive, send
            )
            return
        if s.authorize is None:
            await HTMLResponse(UNCONFIGURED, 401)(scope, receive, send)
            return
        request = Request(scope, receive)
        result = s.authorize(request)
        principal = await result if inspect.isawaitable(result) else result
        if not isinstance(principal, Principal):
            headers = {}
            if isinstance(s.authorize, BasicAuth) or hasattr(s.authorize, "realm"):
                realm = getattr(s.authorize, "realm", "Stalwart")
                headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
            body = "401: sign in to see the Stalwart dashboard"
            await PlainTextResponse(body, 401, headers=headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _ip_allowed(ip: str | None, networks: Sequence[Any]) -> bool:
    if ip is None:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in n for n in networks)


# ---- helpers shared by the pages ----


def settings_of(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def principal_of(request: Request) -> Principal:
    p: Principal = request.scope["state"]["principal"]
    return p


def can_act(request: Request) -> bool:
    return not (settings_of(request).read_only or principal_of(request).read_only)


def path_for(
    request: Request, name: str, query: Mapping[str, Any] | None = None, **params: Any
) -> str:
    """A path (no host) to a route of this app, under the mount path."""
    # Path parameters are percent-encoded: a recurring key may hold "/" or spaces.
    quoted = {k: quote(v, safe="") if isinstance(v, str) else v for k, v in params.items()}
    path = str(request.scope.get("root_path", "")) + str(request.app.url_path_for(name, **quoted))
    q = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    return f"{path}?{urlencode(q)}" if q else path


class BadRequest(Exception):
    pass


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    s = settings_of(request)
    token = csrf.token_of(request)
    fresh = token is None
    if token is None:
        token = csrf.new_token()
    notice = None
    code = request.query_params.get("notice")
    if code in NOTICES:
        n = request.query_params.get("n", "")
        notice = NOTICES[code].format(n=int(n) if n.isdigit() else 0)
    now = utcnow()
    html = s.env.get_template(template).render(
        request=request,
        url=lambda route, query=None, **p: path_for(request, route, query, **p),
        static=lambda name: path_for(request, "static", asset=s.assets.assets[name].url_name),
        principal=principal_of(request),
        can_act=can_act(request),
        read_only=s.read_only,
        csrf_token=token,
        notice=notice,
        now=now,
        ago=lambda t: ago(t, now),
        **context,
    )
    response = HTMLResponse(html, status)
    if fresh:
        csrf.set_cookie(response, request, token)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


def _text_param(request: Request, name: str, max_len: int = 255) -> str | None:
    value = request.query_params.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > max_len:
        raise BadRequest(f"{name} is longer than {max_len} characters")
    return value.strip()


def _time_param(request: Request, name: str) -> datetime | None:
    value = _text_param(request, name, 40)
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


# ---- pages ----


def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


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
    raw = raw.lstrip("#")
    if not raw.isdigit():
        return error_page(request, 400, f"{raw!r} is not a job id")
    try:
        settings_of(request).app.store.job_get(int(raw))
    except JobNotFound:
        return error_page(request, 404, f"No job with id {int(raw)}.")
    return RedirectResponse(path_for(request, "job", job_id=int(raw)), 303)


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
    if job.status in ("READY", "SCHEDULED", "BLOCKED", "RUNNING"):
        facts = s.app.store.job_wait_facts(job_id, s.app.config.alive_threshold)
        if facts is not None:
            reasons = why_waiting(facts, s.app.config.alive_threshold)
    context = loads_or_text(job.context)
    result = loads_or_text(job.result) if job.finished_at else None
    return render(
        request,
        "job.html",
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
        can_cancel=hasattr(s.app, "cancel_job"),
        refresh=job.status in ("READY", "SCHEDULED", "BLOCKED", "RUNNING"),
    )


def processes_page(request: Request) -> Response:
    s = settings_of(request)
    store = s.app.store
    procs = store.processes_list()
    held: dict[int | None, list[int]] = {}
    for job_id, process_id, _pid, _name in store.claimed_with_process():
        held.setdefault(process_id, []).append(job_id)
    now = utcnow()
    threshold = timedelta(seconds=s.app.config.alive_threshold)
    hosts: dict[str, list[Any]] = {}
    for p in procs:
        hosts.setdefault(p.hostname, []).append(
            {
                "p": p,
                "alive": now - p.last_heartbeat_at <= threshold,
                "jobs": held.get(p.id, []),
            }
        )
    return render(
        request,
        "processes.html",
        hosts=hosts,
        orphans=held.get(None, []),
        threshold=s.app.config.alive_threshold,
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
        can_run=_run_now_of(s.app) is not None,
    )


def _run_now_of(app: App) -> Callable[[str], Any] | None:
    """``app.recurring.run_now`` where the running version of Stalwart has it."""
    recurring = getattr(app, "recurring", None)
    run_now = getattr(recurring, "run_now", None)
    return run_now if callable(run_now) else None


def audit_page(request: Request) -> Response:
    s = settings_of(request)
    before = request.query_params.get("before")
    if before is not None and not before.isdigit():
        return error_page(request, 400, "before must be an event id")
    events: list[AuditEvent] = s.app.store.audit_page(
        before_id=int(before) if before else None, limit=s.page_size + 1
    )
    more = len(events) > s.page_size
    events = events[: s.page_size]
    return render(
        request,
        "audit.html",
        events=events,
        next_before=events[-1].id if more and events else None,
    )


# ---- actions: POST only, for principals who may act, with CSRF checks ----


class Form:
    """A URL-encoded form (all the dashboard's forms are: no multipart parser needed)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])


async def _checked_form(request: Request) -> Form | Response:
    """The form of an action request, or the response refusing it."""
    if not can_act(request):
        return error_page(request, 403, "Your role is read-only: you cannot change anything.")
    problem = csrf.origin_problem(request)
    if problem is None:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # Only URL-encoded forms are read; anything else carries no token (so: 403).
        raw = await request.body() if ctype == "application/x-www-form-urlencoded" else b""
        body = raw.decode("utf-8", "replace")
        try:
            form = Form(parse_qs(body, keep_blank_values=True, max_num_fields=2000))
        except ValueError:
            return error_page(request, 400, "Too many form fields.")
        problem = csrf.token_problem(request, form.get(csrf.FIELD))
        if problem is None:
            return form
    return error_page(request, 403, f"Refused: {problem}.")


def _audit(
    request: Request,
    action: str,
    *,
    target: str | None = None,
    job_ids: Sequence[int] = (),
    affected: int = 0,
) -> None:
    settings_of(request).app.store.audit_record(
        actor=principal_of(request).name,
        client_ip=client_ip_from_scope(request.scope),
        action=action,
        target=target,
        job_ids=job_ids,
        affected=affected,
    )


def _redirect(request: Request, name: str, query: Mapping[str, Any], **params: Any) -> Response:
    return RedirectResponse(path_for(request, name, query, **params), 303)


async def job_action(request: Request) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    s = settings_of(request)
    job_id = int(request.path_params["job_id"])
    action = request.path_params["action"]
    store = s.app.store
    if action == "retry":
        n = await run_in_threadpool(store.failed_retry, FailedFilter([job_id]))
        await run_in_threadpool(_audit, request, "retry", job_ids=[job_id], affected=n)
        return _redirect(request, "job", {"notice": "retried", "n": n}, job_id=job_id)
    if action == "discard":
        n = await run_in_threadpool(store.failed_discard, FailedFilter([job_id]))
        await run_in_threadpool(_audit, request, "discard", job_ids=[job_id], affected=n)
        return _redirect(request, "jobs", {"status": "failed", "notice": "discarded", "n": n})
    if action == "cancel":
        cancel = getattr(s.app, "cancel_job", None)
        if cancel is None:
            return error_page(request, 501, "This version of Stalwart cannot cancel jobs.")
        done = bool(await run_in_threadpool(cancel, job_id))
        await run_in_threadpool(
            _audit, request, "cancel", job_ids=[job_id], affected=1 if done else 0
        )
        notice = "cancelled" if done else "not_cancelled"
        return _redirect(request, "job", {"notice": notice}, job_id=job_id)
    return error_page(request, 404, f"Unknown action {action!r}.")


async def jobs_bulk(request: Request) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    form = checked
    s = settings_of(request)
    action = form.get("action")
    if action not in ("retry", "discard"):
        return error_page(request, 400, "action must be retry or discard")
    scope = form.get("scope", "selected")
    back: dict[str, Any] = {"status": "failed"}
    if scope == "matching":
        # Every failed job matching the list's filters (the ones FailedFilter knows).
        fields = {k: form.get(k) for k in ("queue", "task", "error_class")}
        clean = {k: v.strip() for k, v in fields.items() if v and v.strip()}
        if any(len(v) > 255 for v in clean.values()):
            return error_page(request, 400, "filter values are at most 255 characters")
        which = FailedFilter(
            None,
            queue_name=clean.get("queue"),
            task_name=clean.get("task"),
            error_class=clean.get("error_class"),
        )
        target = "failed jobs where " + (
            ", ".join(f"{k}={v!r}" for k, v in sorted(clean.items())) or "all"
        )
        ids: list[int] = []
        back.update(clean)
    elif scope == "selected":
        raw = form.getlist("job_id")
        if not all(x.isdigit() for x in raw) or len(raw) > 1000:
            return error_page(request, 400, "job_id must be up to 1000 job ids")
        ids = sorted({int(x) for x in raw})
        if not ids:
            return _redirect(request, "jobs", {**back, "notice": "nothing"})
        which, target = FailedFilter(ids), None
    else:
        return error_page(request, 400, "scope must be selected or matching")
    verb = s.app.store.failed_retry if action == "retry" else s.app.store.failed_discard
    n = await run_in_threadpool(verb, which)
    await run_in_threadpool(
        _audit, request, f"bulk_{action}", target=target, job_ids=ids, affected=n
    )
    notice = "retried" if action == "retry" else "discarded"
    return _redirect(request, "jobs", {**back, "notice": notice, "n": n})


async def queue_action(request: Request) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    s = settings_of(request)
    action = request.path_params["action"]
    try:
        queue = check_queue_name(request.path_params["queue"])
    except ValueError as exc:
        return error_page(request, 400, str(exc))
    if action not in ("pause", "resume"):
        return error_page(request, 404, f"Unknown action {action!r}.")
    verb = s.app.store.queue_pause if action == "pause" else s.app.store.queue_resume
    changed = bool(await run_in_threadpool(verb, queue))
    await run_in_threadpool(_audit, request, action, target=queue, affected=int(changed))
    return _redirect(request, "overview", {"notice": "paused" if action == "pause" else "resumed"})


async def recurring_run(request: Request) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    s = settings_of(request)
    key = request.path_params["key"]
    run_now = _run_now_of(s.app)
    if run_now is None:
        return error_page(request, 501, "This version of Stalwart cannot run recurring tasks now.")
    try:
        result = await run_in_threadpool(run_now, key)
    except LookupError as exc:
        return error_page(request, 404, f"No recurring task {key!r}: {exc}")
    job_id = getattr(result, "id", result if isinstance(result, int) else None)
    ids = [int(job_id)] if isinstance(job_id, int) else []
    await run_in_threadpool(_audit, request, "run_recurring", target=key, job_ids=ids, affected=1)
    return _redirect(request, "recurring", {"notice": "ran"})


__all__ = ["QueueStats", "Settings", "dashboard"]
