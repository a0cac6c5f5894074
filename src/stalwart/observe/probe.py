"""The probe server of `stalwart start --metrics-port/--health-port`: a child of the
supervisor (forked like the workers, restarted if it dies) serving

- ``/metrics``: the whole fleet of this supervisor — prometheus-client's multiprocess
  files of every worker (those that died included), plus the database gauges;
- ``/livez``: 200 while the supervisor's loop turns (`health.Pulse`);
- ``/readyz``: 200 when the database answers and is migrated, else 503 with the reason.

Its sockets are bound by the supervisor before it forks (a port in use stops `start`
at once, not a child in a restart loop). It registers no process row: it must answer
while the database is away. Plain `http.server`: no dependency for health checks.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ..processes.base import Actor
from ..store import open_store
from .health import Pulse, Readiness, bearer_ok, liveness

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ProbeConfig", "ProbeHTTPServer", "ProbeServer", "bind"]

log = logging.getLogger("stalwart.probe")


@dataclass(frozen=True)
class ProbeConfig:
    host: str = "0.0.0.0"
    metrics_port: int | None = None
    health_port: int | None = None
    # With it, /metrics wants "Authorization: Bearer <token>".
    metrics_token: str | None = None
    # prometheus-client's multiprocess directory of this fleet.
    multiprocess_dir: str | None = None


class ProbeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    routes: frozenset[str] = frozenset()


def bind(config: ProbeConfig) -> list[ProbeHTTPServer]:
    """The listening sockets: one per port (one for both if they are the same)."""
    ports: dict[int, set[str]] = {}
    if config.metrics_port is not None:
        ports.setdefault(config.metrics_port, set()).add("/metrics")
    if config.health_port is not None:
        ports.setdefault(config.health_port, set()).update({"/livez", "/readyz"})
    servers: list[ProbeHTTPServer] = []
    for port, routes in ports.items():
        try:
            server = ProbeHTTPServer((config.host, port), BaseHTTPRequestHandler)
        except OSError as exc:
            for s in servers:
                s.server_close()
            raise OSError(f"cannot listen on {config.host}:{port}: {exc.strerror}") from exc
        server.routes = frozenset(routes)
        servers.append(server)
    return servers


class ProbeServer(Actor):
    kind = "probe"

    def __init__(
        self,
        app: App,
        servers: list[ProbeHTTPServer],
        pulse: Pulse | None,
        config: ProbeConfig,
        *,
        name: str | None = None,
        supervisor_id: int | None = None,
    ) -> None:
        super().__init__(app, name=name, supervisor_id=supervisor_id)
        self.servers, self.pulse, self.config = servers, pulse, config

    def run(self) -> None:
        store = open_store(
            self.app.config.database_url, probe=True, **self.app.config.store_options()
        )
        readiness = Readiness(store)
        registry = self._registry(store) if self.config.metrics_port is not None else None
        handler = _handler(self, readiness, registry)
        threads = []
        for server in self.servers:
            server.RequestHandlerClass = handler
            thread = threading.Thread(
                target=server.serve_forever, name=f"{self.name}-http", daemon=True
            )
            thread.start()
            threads.append(thread)
        where = ", ".join(
            f"{s.server_address[0]!s}:{s.server_address[1]} {sorted(s.routes)}"
            for s in self.servers
        )
        log.info("%s serving %s", self.name, where)
        self.stopping.wait()
        for server in self.servers:
            server.shutdown()
        store.dispose()

    def _registry(self, store: Any) -> Any:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        from .gauges import DatabaseCollector

        registry = CollectorRegistry()
        if self.config.multiprocess_dir:
            MultiProcessCollector(registry, path=self.config.multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(DatabaseCollector(store, self.app.config.alive_threshold))
        return registry


def _handler(probe: ProbeServer, readiness: Readiness, registry: Any) -> type:
    token = probe.config.metrics_token

    class Handler(BaseHTTPRequestHandler):
        server: ProbeHTTPServer

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in self.server.routes:
                self._send(404, "text/plain; charset=utf-8", b"404: not found\n")
            elif path == "/livez":
                self._json(*liveness(probe.pulse))
            elif path == "/readyz":
                self._json(*readiness.check())
            elif token and not bearer_ok(self.headers.get("Authorization"), token):
                self._send(401, "text/plain; charset=utf-8", b"401: bearer token needed\n")
            else:
                from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))

        def _json(self, ok: bool, body: dict[str, Any]) -> None:
            data = (json.dumps(body) + "\n").encode()
            self._send(200 if ok else 503, "application/json", data)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s: " + format, self.address_string(), *args)

    return Handler
