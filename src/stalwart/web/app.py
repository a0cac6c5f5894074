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
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from ..app import App
from ..contrib.starlette import CurrentMiddleware
from ..observe.health import bearer_ok
from ..types import ASGIApp, Receive, Scope, Send
from .actions import job_action, jobs_bulk, queue_action, recurring_run
from .auth import Authorize, Principal
from .client_ip import ClientIPConfig, ClientIPMiddleware, client_ip_from_scope
from .formatting import duration, pretty_json, stamp
from .pages import (
    audit_page,
    job_page,
    jobs_list,
    overview,
    processes_page,
    recurring_page,
)
from .probes import healthz, metrics
from .redaction import DEFAULT_REDACT, Redactor
from .render import Settings
from .serving import (
    HAS_BROTLI,
    BodyLimitMiddleware,
    CompressionMiddleware,
    SecurityHeadersMiddleware,
    StaticAssets,
    load_assets,
)
from .workflow_pages import batch_page, batches_page

__all__ = ["PAGE_SIZE", "Guard", "dashboard"]


class JobIdConvertor(Convertor[int]):
    """Path ids of at most 19 digits: a longer number matches no route (404), and no
    number a database column cannot hold reaches the store (the pages check the range)."""

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("jobid", JobIdConvertor())

log = logging.getLogger("stalwart.web")

PAGE_SIZE = 50
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
    metrics_token: str | None = None,
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
    - ``metrics_token``: a bearer token that opens ``/metrics`` without signing in
      (default: the config's ``metrics_token``; None: /metrics needs a principal).
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
        metrics_token=metrics_token if metrics_token is not None else app.config.metrics_token,
    )
    env.filters.update(stamp=stamp, duration=duration, pretty=pretty_json)
    routes = [
        Route("/", overview, name="overview"),
        Route("/jobs", jobs_list, name="jobs"),
        Route("/jobs/bulk", jobs_bulk, methods=["POST"], name="jobs_bulk"),
        Route("/jobs/{job_id:jobid}", job_page, name="job"),
        Route("/jobs/{job_id:jobid}/{action}", job_action, methods=["POST"], name="job_action"),
        Route("/queues/{queue}/{action}", queue_action, methods=["POST"], name="queue_action"),
        Route("/batches", batches_page, name="batches"),
        Route("/batches/{batch_id:jobid}", batch_page, name="batch"),
        Route("/processes", processes_page, name="processes"),
        Route("/recurring", recurring_page, name="recurring"),
        Route("/recurring/{key:path}/run", recurring_run, methods=["POST"], name="recurring_run"),
        Route("/audit", audit_page, name="audit"),
        Route("/static/{asset}", settings.assets, name="static"),
        Route("/healthz", healthz, name="healthz"),
        Route("/metrics", metrics, name="metrics"),
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
    ``scope["state"]["principal"]``. Static assets and /healthz are public; /metrics
    also opens to the bearer ``metrics_token`` when one is set."""

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
        if path == "/metrics" and s.metrics_token:
            headers = dict(scope.get("headers") or [])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if bearer_ok(auth, s.metrics_token):
                await self.app(scope, receive, send)
                return
        if s.authorize is None:
            await HTMLResponse(UNCONFIGURED, 401)(scope, receive, send)
            return
        request = Request(scope, receive)
        result = s.authorize(request)
        principal = await result if inspect.isawaitable(result) else result
        if not isinstance(principal, Principal):
            headers = {}
            realm = getattr(s.authorize, "realm", None)  # BasicAuth's: let browsers ask
            if realm is not None:
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
