"""Web dashboard and ASGI helpers for Stalwart.

`dashboard(app, auth=...)` is the dashboard, a Starlette app to mount anywhere;
`ClientIPMiddleware` finds the real client IP behind proxies and CloudFront for any
ASGI app.
"""

from .app import dashboard
from .auth import BasicAuth, Principal
from .client_ip import ClientIPConfig, ClientIPMiddleware, client_ip_from_scope, resolve_client_ip
from .redaction import DEFAULT_REDACT
from .serving import HAS_BROTLI

__all__ = [
    "DEFAULT_REDACT",
    "HAS_BROTLI",
    "BasicAuth",
    "ClientIPConfig",
    "ClientIPMiddleware",
    "Principal",
    "client_ip_from_scope",
    "dashboard",
    "resolve_client_ip",
]
