"""What every page and action of the dashboard shares: its settings, who is asking,
links under the mount path, and rendering a template (with its CSRF token)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..app import App
from ..store import utcnow
from . import csrf
from .auth import Authorize, Principal
from .formatting import ago
from .redaction import Redactor
from .serving import StaticAssets

__all__ = [
    "NOTICES",
    "Settings",
    "can_act",
    "error_page",
    "path_for",
    "principal_of",
    "render",
    "settings_of",
]

# What a page says after an action redirected to it (?notice=...&n=...).
NOTICES = {
    "retried": "Retried {n} job(s).",
    "discarded": "Discarded {n} job(s).",
    "cancelled": "Cancelled the job. A running job stops within about a second.",
    "not_cancelled": "The job had ended already: nothing was cancelled.",
    "paused": "Paused the queue.",
    "resumed": "Resumed the queue.",
    "ran": "Enqueued a run of the recurring task.",
    "nothing": "Nothing selected: no job was changed.",
}


@dataclass(frozen=True)
class Settings:
    """One dashboard's options, kept in ``web.state.settings``."""

    app: App
    authorize: Authorize | None
    read_only: bool
    redactor: Redactor
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    page_size: int
    assets: StaticAssets
    env: Environment
    # A bearer token that opens /metrics without signing in (None: sign in).
    metrics_token: str | None = None


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
