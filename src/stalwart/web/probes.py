"""The dashboard's probes: ``/healthz`` (public: 200 when the database answers and is
migrated, else 503 with the reason as JSON) and ``/metrics`` (the database gauges of
`observe/gauges.py`, plus this process's own Stalwart counters when metrics are on;
behind the dashboard's auth, or a bearer token of its own: ``metrics_token``)."""

from __future__ import annotations

import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..observe.health import Readiness
from ..store import Store, open_store
from .render import settings_of

__all__ = ["healthz", "metrics"]

_lock = threading.Lock()


def _probe_store(request: Request) -> Store:
    """One probe store per dashboard (its connections are checked before use)."""
    state = request.app.state
    with _lock:
        store = getattr(state, "probe_store", None)
        if store is None:
            app = settings_of(request).app
            store = state.probe_store = open_store(
                app.config.database_url, probe=True, **app.config.store_options()
            )
            state.readiness = Readiness(store)
    return store


async def healthz(request: Request) -> Response:
    _probe_store(request)
    ok, body = await run_in_threadpool(request.app.state.readiness.check)
    if ok:
        return PlainTextResponse("ok")
    return JSONResponse(body, status_code=503)


async def metrics(request: Request) -> Response:
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
        from prometheus_client.registry import CollectorRegistry

        from ..observe.gauges import DatabaseCollector
    except ImportError:
        return PlainTextResponse(
            "501: /metrics needs prometheus-client: pip install 'stalwart[metrics]'", 501
        )
    from ..observe import metrics_enabled

    app = settings_of(request).app
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(_probe_store(request), app.config.alive_threshold))
    body = await run_in_threadpool(generate_latest, registry)
    if metrics_enabled():  # this process's own counters (enqueues from the dashboard's app)
        body += await run_in_threadpool(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
