"""Serving the dashboard like a product, with nothing in front of it: compression,
fingerprinted static assets, security headers and a request body limit.

Plain ASGI middleware (no Starlette import), usable around any ASGI app.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import mimetypes
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..types import ASGIApp, Message, Receive, Scope, Send

brotli: Any
try:  # brotli is optional: without it text is gzip-compressed only
    brotli = importlib.import_module("brotli")
except ImportError:  # pragma: no cover - exercised where brotli is not installed
    brotli = None

HAS_BROTLI = brotli is not None
# Below this, compression costs more than the bytes it saves.
MIN_COMPRESS_SIZE = 512
_COMPRESSIBLE = ("text/", "application/json", "application/javascript", "image/svg+xml")


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers") or ():
        if k.lower() == name:
            return bytes(v).decode("latin-1")
    return ""


def pick_encoding(accept: str) -> str | None:
    """ "br" if the client takes it (and brotli is installed), else "gzip", else None."""
    offered: dict[str, float] = {}
    for part in accept.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        offered[name.strip().lower()] = q
    if HAS_BROTLI and offered.get("br", 0) > 0:
        return "br"
    if offered.get("gzip", 0) > 0:
        return "gzip"
    return None


def compress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        assert brotli is not None
        # Quality 5: most of the size win of 11 at a small fraction of the CPU.
        return bytes(brotli.compress(data, quality=5))
    return gzip.compress(data, compresslevel=6, mtime=0)


class _Stream:
    """Incremental compressor for streamed responses."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "br":
            assert brotli is not None
            self.br = brotli.Compressor(quality=5)
        else:
            self.gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip framing

    def feed(self, data: bytes) -> bytes:
        if self.encoding == "br":
            return bytes(self.br.process(data))
        return self.gz.compress(data)

    def finish(self) -> bytes:
        if self.encoding == "br":
            return bytes(self.br.finish())
        return self.gz.flush()


class CompressionMiddleware:
    """brotli or gzip for text responses, as the client's Accept-Encoding allows."""

    def __init__(self, app: ASGIApp, minimum_size: int = MIN_COMPRESS_SIZE) -> None:
        self.app = app
        self.minimum_size = minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = pick_encoding(_header(scope, b"accept-encoding"))
        if encoding is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        stream: _Stream | None = None
        passthrough = False

        async def wrapped(message: Message) -> None:
            nonlocal start, stream, passthrough
            if message["type"] == "http.response.start":
                headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
                ctype = next((v.decode("latin-1") for k, v in headers if k == b"content-type"), "")
                already = any(k == b"content-encoding" for k, _ in headers)
                passthrough = (
                    already
                    or not ctype.startswith(_COMPRESSIBLE)
                    or message["status"] in (204, 304)
                )
                if passthrough:
                    await send(message)
                else:
                    start = message
                return
            if message["type"] != "http.response.body" or passthrough or start is None:
                await send(message)
                return
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if stream is None and not more:
                # The whole body at once: compress it if it is worth it.
                if len(body) >= self.minimum_size:
                    body = compress(body, encoding)
                    start["headers"] = _with_encoding(start, encoding, len(body))
                else:
                    start["headers"] = _vary(start)
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            if stream is None:
                stream = _Stream(encoding)
                start["headers"] = _with_encoding(start, encoding, None)
                await send(start)
            chunk = stream.feed(body) + (b"" if more else stream.finish())
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

        await self.app(scope, receive, wrapped)


def _vary(start: Message) -> list[tuple[bytes, bytes]]:
    headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
    return [*headers, (b"vary", b"Accept-Encoding")]


def _with_encoding(start: Message, encoding: str, length: int | None) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in _vary(start) if k.lower() != b"content-length"]
    headers.append((b"content-encoding", encoding.encode()))
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return headers


# ---- static assets ----


@dataclass(frozen=True)
class Asset:
    name: str  # "app.css"
    url_name: str  # "app.3f2a9c1d04be.css": the hash is part of the URL
    content_type: str
    etag: str
    body: bytes
    encoded: dict[str, bytes]  # "br"/"gzip" -> precompressed body


def load_assets(package: str = "stalwart.web", folder: str = "static") -> dict[str, Asset]:
    """The shipped static files by name, fingerprinted and precompressed once."""
    out: dict[str, Asset] = {}
    root = resources.files(package).joinpath(folder)
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, dot, ext = entry.name.rpartition(".")
        url_name = f"{stem}.{digest}.{ext}" if dot else f"{entry.name}.{digest}"
        ctype = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype == "application/javascript":
            ctype += "; charset=utf-8"
        encoded: dict[str, bytes] = {}
        if ctype.startswith(_COMPRESSIBLE) and len(body) >= MIN_COMPRESS_SIZE:
            encoded["gzip"] = compress(body, "gzip")
            if HAS_BROTLI:
                encoded["br"] = compress(body, "br")
        out[entry.name] = Asset(entry.name, url_name, ctype, f'"{digest}"', body, encoded)
    return out


IMMUTABLE = "public, max-age=31536000, immutable"


class StaticAssets:
    """Serves `load_assets` files: by their fingerprinted URL with an immutable cache
    header, by their plain name revalidated every time (ETag)."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets
        self.by_url = {a.url_name: (a, True) for a in assets.values()}
        self.by_url.update({a.name: (a, False) for a in assets.values()})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = str(scope.get("path_params", {}).get("asset", ""))
        found = self.by_url.get(name)
        if found is None or scope.get("method") not in ("GET", "HEAD"):
            status = 404 if found is None else 405
            await _plain(send, status, b"not found" if status == 404 else b"method not allowed")
            return
        asset, fingerprinted = found
        headers = [
            (b"cache-control", IMMUTABLE.encode() if fingerprinted else b"no-cache"),
            (b"etag", asset.etag.encode()),
            (b"vary", b"Accept-Encoding"),
            (b"x-content-type-options", b"nosniff"),
        ]
        inm = _header(scope, b"if-none-match")
        if inm and asset.etag in [t.strip() for t in inm.split(",")]:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = asset.body
        encoding = pick_encoding(_header(scope, b"accept-encoding"))
        if encoding is not None and encoding in asset.encoded:
            body = asset.encoded[encoding]
            headers.append((b"content-encoding", encoding.encode()))
        headers += [
            (b"content-type", asset.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---- headers and limits ----

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy (no inline script) and friends on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {bytes(k).lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                if b"cache-control" not in names:
                    # Pages show job data: keep them out of shared and disk caches.
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, wrapped)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _plain(send, 413, b"request body too large")
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, b"request body too large")
