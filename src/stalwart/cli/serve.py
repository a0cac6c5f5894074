"""Serving commands: `start` (the supervisor and its processes) and `dashboard` (the web
dashboard under uvicorn)."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..collector import paused
from ..config import Config
from ..errors import ConfigError
from ..observe import enable_metrics
from ..observe.probe import ProbeConfig
from .common import (
    Context,
    check_recurring_tasks,
    config_option,
    console,
    err,
    fail,
    handle_errors,
    require_migrated,
    unlistened_queues,
)
from .group import main

__all__ = ["serve_dashboard", "start"]


@main.command()
@config_option()
@click.option(
    "--drain",
    is_flag=True,
    help="Exit 0 once nothing is ready, running or blocked and no scheduled job is due "
    "within --drain-within.",
)
@click.option(
    "--drain-within",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With --drain: scheduled jobs (retries included) due within this long are waited for.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus /metrics of this whole fleet on this port (needs stalwart[metrics]).",
)
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve /livez and /readyz (Kubernetes probes) on this port (may equal --metrics-port).",
)
@click.pass_obj
@handle_errors
def start(
    obj: Context,
    config_path: str | None,
    drain: bool,
    drain_within: float,
    metrics_port: int | None,
    health_port: int | None,
) -> None:
    """Start the supervisor: it forks the configured workers and dispatchers."""
    from ..processes.supervisor import Supervisor

    if config_path:
        obj.config_path = config_path
    config = obj.config
    obj.apply_logging(config)
    problems = check_recurring_tasks(config)
    if problems:
        raise ConfigError(problems)
    with probe_setup(config, metrics_port, health_port) as probe:
        # The collector waits out the set-up (the app, the driver's import, the first
        # connection), which is then frozen: see collector.py.
        with paused(then_freeze=True):
            app = obj.app()  # after probe_setup: the app's metrics count fleet-wide too
            require_migrated(app)
            for line in unlistened_queues(app):
                err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
            if probe is not None and probe.metrics_port is not None:
                try:
                    enable_metrics(probe.multiprocess_dir)
                except RuntimeError as exc:  # the metrics extra is not installed
                    fail(str(exc), 2)
            try:
                supervisor = Supervisor(app, drain=drain, drain_within=drain_within, probe=probe)
            except OSError as exc:
                fail(str(exc), 2)
        code = supervisor.run()
    if supervisor.drain_report:
        err.print(f"stalwart: drained: {supervisor.drain_report}", highlight=False, soft_wrap=True)
    app.close()
    exit_now(code)


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: freeing every module of a process that
    is done costs ~0.1-0.2 s, a third of a short `start --drain`. Exit handlers (an
    OpenTelemetry exporter's flush) and logging still run; output is flushed first."""
    import atexit
    import sys

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


@contextmanager
def probe_setup(
    config: Config, metrics_port: int | None, health_port: int | None
) -> Iterator[ProbeConfig | None]:
    """The probe server's settings (flags over config); with metrics, prometheus-client's
    multiprocess directory: $PROMETHEUS_MULTIPROC_DIR if set (yours to empty), else a
    new one, removed at exit."""
    metrics_port = metrics_port or config.metrics_port
    health_port = health_port or config.health_port
    if metrics_port is None and health_port is None:
        yield None
        return
    made = None
    directory = None
    if metrics_port is not None:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            directory = made = tempfile.mkdtemp(prefix="stalwart-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield ProbeConfig(
            host=config.probe_host,
            metrics_port=metrics_port,
            health_port=health_port,
            metrics_token=config.metrics_token,
            multiprocess_dir=directory,
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


@main.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--root-path", default="", help="Path prefix when a proxy mounts it, e.g. /jobs.")
@click.option("--read-only", is_flag=True, help="Nobody may act: pages only.")
@click.option(
    "--trusted-proxy", multiple=True, metavar="CIDR", help="A proxy whose headers are believed."
)
@click.option("--cloudfront", is_flag=True, help="Believe CloudFront-Viewer-Address.")
@click.option("--forwarded-for", is_flag=True, help="Believe X-Forwarded-For (trusted hops).")
@click.option(
    "--origin-secret-header",
    default=None,
    metavar="NAME",
    help="Header CloudFront adds with $STALWART_DASHBOARD_ORIGIN_SECRET as its value.",
)
@click.option("--allow-ip", multiple=True, metavar="CIDR", help="Only these clients get in.")
@click.option(
    "--certfile",
    "--ssl-certfile",
    "ssl_certfile",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="TLS certificate (PEM, the chain included): serve HTTPS, with HSTS.",
)
@click.option(
    "--keyfile",
    "--ssl-keyfile",
    "ssl_keyfile",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="The certificate's private key (PEM).",
)
@click.option(
    "--http2",
    is_flag=True,
    help="Serve HTTP/2 (and HTTP/1.1) over TLS with Hypercorn (pip install 'stalwart[http2]').",
)
@click.pass_obj
@handle_errors
def serve_dashboard(
    obj: Context,
    host: str,
    port: int,
    root_path: str,
    read_only: bool,
    trusted_proxy: tuple[str, ...],
    cloudfront: bool,
    forwarded_for: bool,
    origin_secret_header: str | None,
    allow_ip: tuple[str, ...],
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    http2: bool,
) -> None:
    """Serve the web dashboard, production-ready with no proxy needed in front.

    Users come from the environment: STALWART_DASHBOARD_ADMINS="alice:pw,..." may act,
    STALWART_DASHBOARD_VIEWERS="bob:pw" may only look. With neither, every page
    answers 401 saying how to set them.
    """
    import os

    import uvicorn

    from ..web import BasicAuth, ClientIPConfig
    from ..web import dashboard as make_dashboard

    try:
        auth = obj.dashboard_auth() or BasicAuth.from_env_values(
            os.environ.get("STALWART_DASHBOARD_ADMINS"),
            os.environ.get("STALWART_DASHBOARD_VIEWERS"),
        )
        secret = os.environ.get("STALWART_DASHBOARD_ORIGIN_SECRET")
        if origin_secret_header and not secret:
            raise ValueError("--origin-secret-header needs $STALWART_DASHBOARD_ORIGIN_SECRET")
        client_ip = None
        if trusted_proxy or cloudfront or forwarded_for:
            client_ip = ClientIPConfig(
                trusted_proxies=trusted_proxy,
                cloudfront=cloudfront,
                forwarded_for=forwarded_for,
                origin_secret_header=(
                    (origin_secret_header, secret or "") if origin_secret_header else None
                ),
            )
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("--certfile and --keyfile go together")
        if http2 and ssl_certfile is None:
            raise ValueError("--http2 needs --certfile and --keyfile (browsers speak h2 over TLS)")
        if http2 and importlib.util.find_spec("hypercorn") is None:
            raise ValueError("--http2 needs Hypercorn: pip install 'stalwart[http2]'")
    except ValueError as exc:
        fail(str(exc), 2)
    app = obj.app()
    obj.apply_logging(app.config)
    require_migrated(app)
    web = make_dashboard(
        app, auth=auth, read_only=read_only, client_ip=client_ip, allow_ips=allow_ip
    )
    if auth is None:
        err.print(
            "[bold yellow]stalwart:[/] no users configured: every page answers 401. Set "
            "STALWART_DASHBOARD_ADMINS=name:password (and STALWART_DASHBOARD_VIEWERS).",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"Stalwart dashboard on http{'s' if ssl_certfile else ''}://{host}:{port}"
        + (" (HTTP/2 and HTTP/1.1)" if http2 else "")
    )
    if http2:
        from ..web.http2 import serve_http2

        assert ssl_certfile is not None and ssl_keyfile is not None
        serve_http2(
            web,
            host=host,
            port=port,
            root_path=root_path,
            certfile=ssl_certfile,
            keyfile=ssl_keyfile,
        )
        return
    uvicorn.run(
        web,
        host=host,
        port=port,
        root_path=root_path,
        # Our ClientIPMiddleware decides which forwarding headers to believe.
        proxy_headers=False,
        server_header=False,
        # Idle keep-alive connections are closed soon; a slow client cannot hold
        # the server (h11 caps header size; the app caps bodies).
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        limit_concurrency=256,
        backlog=512,
        h11_max_incomplete_event_size=16 * 1024,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
