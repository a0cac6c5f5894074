"""Resolve the real client IP behind CloudFront and/or reverse proxies.

Forwarding headers are just text a client can send itself, so each source is
trusted only when it is explicitly enabled *and* the hop that delivered it is
known to be ours. The lookup order is:

1. ``CloudFront-Viewer-Address`` -- with ``cloudfront=True``, when the direct
   peer is a trusted proxy or the configured secret origin header matches.
2. ``X-Forwarded-For`` -- with ``forwarded_for=True``, when the direct peer is a
   trusted proxy; the list is walked right to left past trusted hops.
3. The direct peer (``scope["client"][0]``).

Malformed or oversized header values are ignored rather than raising: a bad
header must never turn into a 500, and it must never be believed either.

``ClientIPMiddleware`` is plain ASGI (no Starlette import). It stores the result
in ``scope["state"]["client_ip"]`` and deliberately leaves ``scope["client"]``
alone: that tuple is the TCP peer the server actually saw, which access logs,
rate limiters and audit code may rely on, and overwriting it with header-derived
data would make spoofable input indistinguishable from transport facts (and
would be applied twice if the server's own proxy-header handling is also on).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..types import ASGIApp, Receive, Scope, Send

__all__ = [
    "CLOUDFRONT_VIEWER_ADDRESS",
    "MAX_HEADER_LENGTH",
    "X_FORWARDED_FOR",
    "ClientIPConfig",
    "ClientIPMiddleware",
    "client_ip_from_scope",
    "resolve_client_ip",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Headers = Mapping[str, str] | Iterable[tuple[bytes, bytes]]

CLOUDFRONT_VIEWER_ADDRESS: Final = "cloudfront-viewer-address"
X_FORWARDED_FOR: Final = "x-forwarded-for"
# Real values are a few dozen bytes; anything past this is abuse, not data.
MAX_HEADER_LENGTH: Final = 4096

# RFC 9110 token characters, so a typo'd header name fails at startup.
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Longest textual IPv6 address (IPv4-embedded form) is 45 characters.
_MAX_IP_TEXT: Final = 45
_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmap(ip: IPAddress) -> IPAddress:
    # ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket; treat
    # it as IPv4 so "10.0.0.0/8" trust rules and the output agree either way.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _parse_ip(text: str) -> IPAddress | None:
    """Strictly parse a header-supplied IP; None instead of raising."""
    # isascii: cheap guard against Unicode digits whatever ipaddress accepts;
    # "%": a zone id is meaningless for a remote client and would leak out.
    if not text or len(text) > _MAX_IP_TEXT or not text.isascii() or "%" in text:
        return None
    try:
        return _unmap(ipaddress.ip_address(text))
    except ValueError:
        return None


def _parse_network(text: str) -> IPNetwork:
    net = ipaddress.ip_network(text.strip(), strict=False)
    if (
        isinstance(net, ipaddress.IPv6Network)
        and net.prefixlen >= 96
        and net.subnet_of(_IPV4_MAPPED)
    ):
        # Match _unmap(): addresses are compared as IPv4, so the rule must be too.
        mapped = net.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def _valid_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit() and int(text) <= 65535


def _parse_viewer_address(value: str) -> IPAddress | None:
    """Parse CloudFront's ``ip:port`` (IPv6 bare or bracketed)."""
    value = value.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            return None
    else:
        # CloudFront writes IPv6 unbracketed, so only the LAST colon separates
        # the port ("2001:db8::1:443" -> "2001:db8::1", "443").
        host, sep, port = value.rpartition(":")
        if not sep:
            return None
    if not _valid_port(port):
        return None
    return _parse_ip(host)


def _collect(headers: Headers, wanted: frozenset[str]) -> dict[str, list[str]]:
    """Values of the wanted headers (lowercase names), in arrival order."""
    found: dict[str, list[str]] = {}
    try:
        pairs: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                continue
            raw_name, raw_value = pair
            if isinstance(raw_name, bytes | bytearray):
                # ASGI headers are bytes; latin-1 maps every byte, so never fails.
                raw_name = bytes(raw_name).decode("latin-1")
            if isinstance(raw_value, bytes | bytearray):
                raw_value = bytes(raw_value).decode("latin-1")
            if not isinstance(raw_name, str) or not isinstance(raw_value, str):
                continue
            name = raw_name.lower()
            if name in wanted:
                found.setdefault(name, []).append(raw_value)
    except (TypeError, ValueError):
        # Not iterable / not unpackable: treat like absent headers, never raise.
        return {}
    return found


@dataclass(frozen=True)
class ClientIPConfig:
    """Which forwarding sources to believe, and from whom.

    ``trusted_proxies`` accepts addresses or CIDR networks (host bits are
    allowed, ``strict=False``); a bad entry raises ``ValueError`` naming it.
    Settings that could never take effect also raise, so a misconfigured
    deployment fails at startup instead of silently logging proxy IPs.
    """

    trusted_proxies: Iterable[str] = ()
    cloudfront: bool = False
    # (header name, secret value). repr=False: the secret must not end up in logs.
    origin_secret_header: tuple[str, str] | None = field(default=None, repr=False)
    forwarded_for: bool = False
    networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = self.trusted_proxies
        # A lone string is an Iterable[str] too; iterating it would yield characters.
        entries = (raw,) if isinstance(raw, str) else tuple(raw)
        networks: list[IPNetwork] = []
        for entry in entries:
            if not isinstance(entry, str):
                raise ValueError(f"trusted proxy must be a string, got {entry!r}")
            try:
                networks.append(_parse_network(entry))
            except ValueError as exc:
                raise ValueError(f"invalid trusted proxy network {entry!r}: {exc}") from None
        # Frozen dataclass: normalise via object.__setattr__ (tuple => hashable).
        object.__setattr__(self, "trusted_proxies", entries)
        object.__setattr__(self, "networks", tuple(networks))

        secret = self.origin_secret_header
        if secret is not None:
            name, value = secret
            if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
                raise ValueError(f"invalid origin secret header name {name!r}")
            # Printable ASCII only: that is what survives HTTP intact, and it lets
            # the comparison work on bytes without encoding ambiguity.
            if (
                not isinstance(value, str)
                or not value
                or not value.isascii()
                or not value.isprintable()
                or value != value.strip()
            ):
                raise ValueError("origin secret header value must be non-empty printable ASCII")
            object.__setattr__(self, "origin_secret_header", (name.lower(), value))
            if not self.cloudfront:
                raise ValueError("origin_secret_header only has an effect with cloudfront=True")
        if self.cloudfront and not networks and secret is None:
            raise ValueError(
                "cloudfront=True needs trusted_proxies or origin_secret_header; "
                "otherwise CloudFront-Viewer-Address could never be trusted"
            )
        if self.forwarded_for and not networks:
            raise ValueError("forwarded_for=True needs trusted_proxies")

    def is_trusted(self, ip: IPAddress | None) -> bool:
        return ip is not None and any(ip in net for net in self.networks)


def _secret_matches(config: ClientIPConfig, found: dict[str, list[str]]) -> bool:
    if config.origin_secret_header is None:
        return False
    name, expected = config.origin_secret_header
    values = found.get(name, [])
    # Exactly one copy: a second value means someone else also set it.
    if len(values) != 1:
        return False
    value = values[0].strip()
    candidate = value.encode("ascii") if value.isascii() else b""
    # Constant-time compare so response timing does not leak the secret.
    return hmac.compare_digest(candidate, expected.encode("ascii"))


def _from_cloudfront(
    config: ClientIPConfig, peer_trusted: bool, found: dict[str, list[str]]
) -> IPAddress | None:
    values = found.get(CLOUDFRONT_VIEWER_ADDRESS, [])
    # CloudFront sends exactly one; more than one is ambiguous, so ignore them all.
    if len(values) != 1 or len(values[0]) > MAX_HEADER_LENGTH:
        return None
    if not (peer_trusted or _secret_matches(config, found)):
        return None
    return _parse_viewer_address(values[0])


def _from_forwarded_for(
    config: ClientIPConfig, peer_ip: IPAddress, found: dict[str, list[str]]
) -> IPAddress | None:
    values = found.get(X_FORWARDED_FOR, [])
    # Repeated headers are one list in order (RFC 9110 field-line combination).
    joined = ",".join(values)
    if len(joined) > MAX_HEADER_LENGTH:
        return None
    # Each trusted proxy appends the address it saw, so walking from the right
    # past our own proxies reaches the first hop we did not add ourselves. The
    # leftmost value is whatever the client chose to send and proves nothing.
    nearest_trusted = peer_ip
    for entry in reversed(joined.split(",")):
        ip = _parse_ip(entry.strip())
        if ip is None:
            # Garbage here could only have been written by the hop left of the
            # last trusted proxy; stop and report that proxy as the furthest
            # address we can vouch for, rather than guessing past the garbage.
            return nearest_trusted
        if not config.is_trusted(ip):
            return ip
        nearest_trusted = ip
    # Every entry is ours (e.g. internal health checks): the leftmost is the
    # furthest known hop, consistent with the "last trusted hop" rule above.
    return nearest_trusted


def resolve_client_ip(peer: str | None, headers: Headers, config: ClientIPConfig) -> str | None:
    """Return the client IP for a request, or None if nothing is known.

    ``peer`` is the direct TCP peer (``scope["client"][0]``). ``headers`` may be
    a mapping (dict, Starlette ``Headers``; all ``items()`` are read, so repeated
    headers count) or ASGI ``(bytes, bytes)`` pairs. Never raises on header input.
    """
    peer_ip = _parse_ip(peer) if isinstance(peer, str) else None
    peer_trusted = config.is_trusted(peer_ip)

    if config.cloudfront or config.forwarded_for:
        wanted = {CLOUDFRONT_VIEWER_ADDRESS, X_FORWARDED_FOR}
        if config.origin_secret_header is not None:
            wanted.add(config.origin_secret_header[0])
        found = _collect(headers, frozenset(wanted))

        if config.cloudfront:
            ip = _from_cloudfront(config, peer_trusted, found)
            if ip is not None:
                return str(ip)
        if config.forwarded_for and peer_trusted and peer_ip is not None:
            ip = _from_forwarded_for(config, peer_ip, found)
            if ip is not None:
                return str(ip)

    if peer_ip is not None:
        return str(peer_ip)
    # Non-IP peers (e.g. "testclient", some unix-socket servers) are passed
    # through verbatim: they come from the server, not from the client.
    return peer if isinstance(peer, str) and peer else None


def client_ip_from_scope(scope: Mapping[str, Any]) -> str | None:
    """The resolved client IP; the direct peer if the middleware did not run.

    Falling back to the peer (never to headers) keeps code that calls this
    without the middleware installed correct for a no-proxy deployment.
    """
    state = scope.get("state")
    if isinstance(state, Mapping) and "client_ip" in state:
        value = state["client_ip"]
        return value if isinstance(value, str) else None
    client = scope.get("client")
    if client and isinstance(client[0], str) and client[0]:
        return client[0]
    return None


class ClientIPMiddleware:
    """Pure-ASGI middleware that sets ``scope["state"]["client_ip"]``.

    Runs for ``http`` and ``websocket`` scopes; everything else (``lifespan``)
    passes through untouched, because lifespan state is shared by all requests.
    ``scope["client"]`` is never modified (see the module docstring).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Iterable[str] = (),
        cloudfront: bool = False,
        origin_secret_header: tuple[str, str] | None = None,
        forwarded_for: bool = False,
    ) -> None:
        self.app = app
        self.config = ClientIPConfig(
            trusted_proxies=trusted_proxies,
            cloudfront=cloudfront,
            origin_secret_header=origin_secret_header,
            forwarded_for=forwarded_for,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else None
            ip = resolve_client_ip(peer, scope.get("headers") or (), self.config)
            # Per the ASGI spec, servers give each request a *copy* of the
            # lifespan state, so writing into it does not leak across requests.
            state = scope.get("state")
            if not isinstance(state, MutableMapping):
                state = dict(state) if isinstance(state, Mapping) else {}
                scope["state"] = state
            state["client_ip"] = ip
        await self.app(scope, receive, send)
