"""ASGI middleware giving every request a fresh context, like every job gets.

Works with Starlette, FastAPI and any ASGI application::

    app = Starlette(routes=..., middleware=[Middleware(CurrentMiddleware)])
    # or: app = CurrentMiddleware(asgi_app, fill=lambda scope: ...)

Each HTTP or websocket request runs in a new, empty `contextvars.Context`: context
variables and `CurrentAttributes` set while handling one request are gone for the
next, whatever thread or task serves it. Before the app runs, every declared
`CurrentAttributes` attribute named ``client_ip`` is set to the request's client IP
(resolved by `stalwart.web.ClientIPMiddleware` when that runs first, else the direct
peer), then ``fill(scope)`` may set more. Jobs enqueued while handling the request
carry these values.

Put it outermost, or at least outside anything that sets context variables you need:
values set outside it are not visible inside (the context is empty, not a copy).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable

from ..context import CurrentAttributes
from ..types import ASGIApp, Receive, Scope, Send


def request_client_ip(scope: Scope) -> str | None:
    state = scope.get("state")
    if isinstance(state, dict) and state.get("client_ip"):
        return str(state["client_ip"])
    client = scope.get("client")
    return str(client[0]) if client else None


class CurrentMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        fill: Callable[[Scope], None] | None = None,
        set_client_ip: bool = True,
    ) -> None:
        self.app = app
        self.fill = fill
        self.set_client_ip = set_client_ip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Awaiting the task passes a cancellation of this request on to it.
        await asyncio.get_running_loop().create_task(
            self._handle(scope, receive, send), context=contextvars.Context()
        )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.set_client_ip:
            ip = request_client_ip(scope)
            for cls in list(CurrentAttributes._registry.values()):
                if "client_ip" in cls._vars:
                    cls.set(client_ip=ip)
        if self.fill is not None:
            self.fill(scope)
        await self.app(scope, receive, send)
