"""CSRF protection for the dashboard's state-changing requests.

Two independent checks, both required:

1. Where the request came from: ``Sec-Fetch-Site`` (sent by every current browser)
   must be ``same-origin`` (or ``none``: typed by the user); without it, an ``Origin``
   header must name this host. A request carrying neither (curl, old clients) is
   judged by the token alone.
2. A token: a random value in an HttpOnly, SameSite=Strict cookie, echoed in a hidden
   form field. Another site can neither read the cookie nor make the browser send it.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "stalwart_csrf"
FIELD = "csrf_token"


def token_of(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    # Our tokens are 43 URL-safe characters; anything else was not set by us.
    return value if value and len(value) == 43 and value.isascii() else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path=request.scope.get("root_path") or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def origin_problem(request: Request) -> str | None:
    """Why the request's origin headers say it is cross-site, or None."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site.lower() in ("same-origin", "none"):
            return None
        return f"Sec-Fetch-Site is {site!r}: actions are only accepted from the dashboard itself"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    host = request.headers.get("host", "")
    netloc = urlsplit(origin).netloc if origin != "null" else ""
    if netloc and netloc.lower() == host.lower():
        return None
    return f"Origin {origin!r} is not this dashboard ({host!r})"


def token_problem(request: Request, submitted: object) -> str | None:
    expected = token_of(request)
    if expected is None:
        return "the CSRF cookie is missing: reload the page and try again"
    if not isinstance(submitted, str) or not hmac.compare_digest(
        submitted.encode("ascii", "replace"), expected.encode("ascii")
    ):
        return "the CSRF token is missing or wrong: reload the page and try again"
    return None
