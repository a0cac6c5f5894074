"""The dashboard signed in with Django's own users.

ASGI project (``asgi.py``)::

    from django.core.asgi import get_asgi_application
    from stalwart.contrib.django.dashboard import mount_dashboard

    application = mount_dashboard(get_asgi_application(), "/jobs")

WSGI project: ``python manage.py stalwart dashboard --port 8080`` (same sign-in: the
browser's Django session cookie is checked against Django's session store; sign in on
the Django site first, e.g. at /admin/).

Who gets in: active staff users (``allow=``, a callable ``allow(user) -> bool``, to
change that); who may act (retry, discard, cancel, pause, run): users with the
permission ``stalwart.act_on_jobs`` — superusers have it — (``can_act=`` to change
that); everybody else in sees pages only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async

from ...types import ASGIApp, Receive, Scope, Send
from ...web.auth import Principal

UserCheck = Callable[[Any], bool]


def _is_staff(user: Any) -> bool:
    return bool(user.is_staff)


def _has_act_permission(user: Any) -> bool:
    return bool(user.has_perm("stalwart.act_on_jobs"))


class DjangoAuth:
    """An authorizer for `stalwart.web.dashboard`: the request's Django session."""

    def __init__(self, allow: UserCheck = _is_staff, can_act: UserCheck = _has_act_permission):
        self.allow = allow
        self.can_act = can_act

    async def __call__(self, request: Any) -> Principal | None:
        from django.conf import settings

        key = request.cookies.get(settings.SESSION_COOKIE_NAME)
        if not key:
            return None
        principal: Principal | None = await sync_to_async(self.principal_for)(key)
        return principal

    def principal_for(self, session_key: str) -> Principal | None:
        """The principal of a session key, or None (no session, not allowed)."""
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import get_user
        from django.db import close_old_connections
        from django.http import HttpRequest

        close_old_connections()
        try:
            request = HttpRequest()
            request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
            user = get_user(request)  # checks the session's auth hash, as Django does
            if not user.is_authenticated or not user.is_active or not self.allow(user):
                return None
            return Principal(user.get_username(), read_only=not self.can_act(user))
        finally:
            close_old_connections()


def mount_dashboard(
    django_app: ASGIApp,
    path: str = "/jobs",
    *,
    backend: str | None = None,
    auth: DjangoAuth | None = None,
    **dashboard_options: Any,
) -> ASGIApp:
    """Django's ASGI application with the dashboard under ``path``; a visitor not
    signed in is sent to ``settings.LOGIN_URL`` (with ``?next=``)."""
    from ...web import dashboard
    from .lookup import stalwart_backend

    prefix = "/" + path.strip("/")
    authorize = auth or DjangoAuth()
    web = dashboard(stalwart_backend(backend).app, auth=authorize, **dashboard_options)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        route = str(scope.get("path", ""))
        if scope["type"] not in ("http", "websocket") or not (
            route == prefix or route.startswith(prefix + "/")
        ):
            await django_app(scope, receive, send)
            return
        if route == prefix:  # /jobs -> /jobs/
            await _redirect(send, prefix + "/")
            return
        # Starlette's mount convention: the full path stays, root_path says the prefix.
        inner = dict(scope, root_path=str(scope.get("root_path", "")) + prefix)
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            sub = route[len(prefix) :]
            if not sub.startswith("/static/") and sub != "/healthz":
                from starlette.requests import Request

                if await authorize(Request(inner)) is None:
                    await _redirect(send, _login_url(route, scope))
                    return
        await web(inner, receive, send)

    return app


def _login_url(route: str, scope: Scope) -> str:
    from django.conf import settings
    from django.shortcuts import resolve_url

    query = scope.get("query_string", b"").decode("latin-1")
    target = route + (f"?{query}" if query else "")
    return f"{resolve_url(settings.LOGIN_URL)}?next={quote(target)}"


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
