"""Starlette and FastAPI (any ASGI app): a fresh context per request, like every job
gets (`CurrentMiddleware`), and a worker embedded in the web process (`lifespan`).

    from stalwart.contrib.starlette import CurrentMiddleware, lifespan

    api = FastAPI(lifespan=lifespan(app, queues=["default"], threads=2))
    api.add_middleware(CurrentMiddleware)

``lifespan(app, ...)`` starts a worker and a dispatcher (threads of the web process)
when the server starts and stops them gracefully when it shuts down: running jobs get
``shutdown_timeout`` to finish, the rest go back to ready. ``inner=`` chains your own
lifespan. For small deployments; bigger ones run `stalwart start` beside the app.

The middleware:

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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..context import CurrentAttributes
from ..types import ASGIApp, Receive, Scope, Send
from .embedded import EmbeddedWorkers

if TYPE_CHECKING:
    from ..app import App

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


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


def lifespan(
    app: App,
    *,
    queues: Sequence[str] = ("*",),
    threads: int = 2,
    dispatcher: bool = True,
    scheduler: bool = False,
    polling_interval: float = 0.1,
    inner: Lifespan | None = None,
) -> Lifespan:
    """A lifespan for ``Starlette(lifespan=...)`` / ``FastAPI(lifespan=...)`` that runs
    Stalwart's actors in the web process while it serves. The embedded workers are
    ``web_app.state.stalwart`` while it runs."""

    @asynccontextmanager
    async def run(web_app: Any) -> AsyncIterator[Any]:
        workers = EmbeddedWorkers(
            app,
            queues=queues,
            threads=threads,
            dispatcher=dispatcher,
            scheduler=scheduler,
            polling_interval=polling_interval,
        )
        state = getattr(web_app, "state", None)
        if state is not None:
            state.stalwart = workers
        workers.start()
        try:
            if inner is None:
                yield None
            else:
                async with inner(web_app) as value:
                    yield value
        finally:
            # Waiting for running jobs must not block the event loop's other shutdowns.
            await asyncio.to_thread(workers.stop)

    return run
