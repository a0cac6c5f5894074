"""Tests for stalwart.web.client_ip: pure resolution plus the ASGI middleware."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import random
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from stalwart.web.client_ip import (
    MAX_HEADER_LENGTH,
    ClientIPConfig,
    ClientIPMiddleware,
    client_ip_from_scope,
    resolve_client_ip,
)

PROXY = "10.0.0.1"  # a trusted direct peer (load balancer)
OUTSIDER = "198.51.100.50"  # an untrusted direct peer (anyone on the internet)
CLIENT = "203.0.113.7"
TRUSTED = ("10.0.0.0/8", "2001:db8:ffff::/48")
SECRET = ("X-Origin-Verify", "s3cr3t-token")

CF = ClientIPConfig(trusted_proxies=TRUSTED, cloudfront=True)
CF_SECRET = ClientIPConfig(cloudfront=True, origin_secret_header=SECRET)
XFF = ClientIPConfig(trusted_proxies=TRUSTED, forwarded_for=True)
BOTH = ClientIPConfig(trusted_proxies=TRUSTED, cloudfront=True, forwarded_for=True)


def cf(value: str) -> dict[str, str]:
    return {"CloudFront-Viewer-Address": value}


def xff(value: str) -> dict[str, str]:
    return {"X-Forwarded-For": value}


# --------------------------------------------------------------------------- config


def test_bad_network_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300/8"):
        ClientIPConfig(trusted_proxies=["10.0.0.0/8", "10.0.0.300/8"], forwarded_for=True)


def test_networks_are_parsed_non_strict_and_stripped() -> None:
    cfg = ClientIPConfig(trusted_proxies=[" 10.1.2.3/8 ", "192.0.2.9"], forwarded_for=True)
    assert [str(n) for n in cfg.networks] == ["10.0.0.0/8", "192.0.2.9/32"]
    assert cfg.trusted_proxies == (" 10.1.2.3/8 ", "192.0.2.9")


def test_single_string_is_one_network_not_characters() -> None:
    cfg = ClientIPConfig(trusted_proxies="10.0.0.0/8", forwarded_for=True)
    assert [str(n) for n in cfg.networks] == ["10.0.0.0/8"]


def test_non_string_network_rejected() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        ClientIPConfig(trusted_proxies=[167772160], forwarded_for=True)  # type: ignore[list-item]


def test_ipv4_mapped_network_becomes_ipv4() -> None:
    cfg = ClientIPConfig(trusted_proxies=["::ffff:10.0.0.0/104"], forwarded_for=True)
    assert [str(n) for n in cfg.networks] == ["10.0.0.0/8"]
    assert resolve_client_ip("10.9.9.9", xff(CLIENT), cfg) == CLIENT


def test_config_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        XFF.forwarded_for = False  # type: ignore[misc]
    assert hash(XFF) == hash(ClientIPConfig(trusted_proxies=list(TRUSTED), forwarded_for=True))


def test_secret_not_in_repr() -> None:
    assert "s3cr3t" not in repr(CF_SECRET)


def test_secret_header_name_lowercased() -> None:
    assert CF_SECRET.origin_secret_header == ("x-origin-verify", "s3cr3t-token")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cloudfront": True}, "cloudfront=True needs"),
        ({"forwarded_for": True}, "forwarded_for=True needs"),
        ({"origin_secret_header": SECRET}, "only has an effect with cloudfront"),
        ({"cloudfront": True, "origin_secret_header": ("bad name", "x")}, "header name"),
        ({"cloudfront": True, "origin_secret_header": ("X-A", "")}, "printable ASCII"),
        ({"cloudfront": True, "origin_secret_header": ("X-A", "sécret")}, "printable ASCII"),
        ({"cloudfront": True, "origin_secret_header": ("X-A", " pad")}, "printable ASCII"),
    ],
)
def test_unusable_settings_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientIPConfig(**kwargs)


def test_default_config_uses_only_the_peer() -> None:
    headers = {**cf(f"{CLIENT}:443"), **xff(CLIENT)}
    assert resolve_client_ip(PROXY, headers, ClientIPConfig()) == PROXY


# ----------------------------------------------------------------------- cloudfront


def test_cloudfront_ipv4_from_trusted_peer() -> None:
    assert resolve_client_ip(PROXY, cf(f"{CLIENT}:46532"), CF) == CLIENT


def test_cloudfront_ipv6_unbracketed_split_on_last_colon_and_normalized() -> None:
    value = "2001:DB8::8:800:200C:417A:46532"
    assert resolve_client_ip(PROXY, cf(value), CF) == "2001:db8::8:800:200c:417a"


def test_cloudfront_ipv6_full_form_is_compressed() -> None:
    value = "2001:0db8:0000:0000:0000:0000:0000:0001:443"
    assert resolve_client_ip(PROXY, cf(value), CF) == "2001:db8::1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:DB8::ABCD]:0", "2001:db8::abcd"),
        (f"[{CLIENT}]:80", CLIENT),
        (f"{CLIENT}:0", CLIENT),
        (f"{CLIENT}:65535", CLIENT),
        (f"  {CLIENT}:443  ", CLIENT),
    ],
)
def test_cloudfront_bracketed_and_edge_ports(value: str, expected: str) -> None:
    assert resolve_client_ip(PROXY, cf(value), CF) == expected


@pytest.mark.parametrize(
    "name", ["cloudfront-viewer-address", "CLOUDFRONT-VIEWER-ADDRESS", "CloudFront-Viewer-Address"]
)
def test_cloudfront_header_name_case_insensitive(name: str) -> None:
    assert resolve_client_ip(PROXY, {name: f"{CLIENT}:1"}, CF) == CLIENT
    raw = [(name.encode(), f"{CLIENT}:1".encode())]
    assert resolve_client_ip(PROXY, raw, CF) == CLIENT


def test_cloudfront_spoofed_by_untrusted_peer_is_ignored() -> None:
    assert resolve_client_ip(OUTSIDER, cf(f"{CLIENT}:443"), CF) == OUTSIDER


def test_cloudfront_header_ignored_when_disabled() -> None:
    assert resolve_client_ip(PROXY, cf(f"{CLIENT}:443"), XFF) == PROXY


def test_cloudfront_ipv4_mapped_value_becomes_ipv4() -> None:
    assert resolve_client_ip(PROXY, cf(f"::ffff:{CLIENT}:443"), CF) == CLIENT
    assert resolve_client_ip(PROXY, cf(f"[::FFFF:{CLIENT}]:443"), CF) == CLIENT


def test_duplicate_cloudfront_headers_are_ambiguous_and_ignored() -> None:
    raw = [
        (b"cloudfront-viewer-address", b"192.0.2.1:1"),
        (b"cloudfront-viewer-address", f"{CLIENT}:1".encode()),
    ]
    assert resolve_client_ip(PROXY, raw, CF) == PROXY


def test_cloudfront_secret_match_trusts_header_from_any_peer() -> None:
    headers = {**cf(f"{CLIENT}:443"), "x-origin-verify": "s3cr3t-token"}
    assert resolve_client_ip(OUTSIDER, headers, CF_SECRET) == CLIENT


def test_cloudfront_secret_header_name_case_insensitive() -> None:
    raw = [(b"X-ORIGIN-VERIFY", b"s3cr3t-token"), (b"cloudfront-viewer-address", b"[::1]:5")]
    assert resolve_client_ip(OUTSIDER, raw, CF_SECRET) == "::1"


@pytest.mark.parametrize(
    "secret_headers",
    [
        {},
        {"x-origin-verify": "wrong"},
        {"x-origin-verify": "S3CR3T-TOKEN"},
        {"x-origin-verify": "s3cr3t-token-and-more"},
        {"x-origin-verify": "s3cr3t"},
        {"x-origin-verify": ""},
        {"x-origin-verify": "s3cr3t-tökén"},
        {"x-other-header": "s3cr3t-token"},
    ],
)
def test_cloudfront_secret_mismatch_falls_back_to_peer(secret_headers: dict[str, str]) -> None:
    headers = {**cf(f"{CLIENT}:443"), **secret_headers}
    assert resolve_client_ip(OUTSIDER, headers, CF_SECRET) == OUTSIDER


@pytest.mark.parametrize("order", [(b"guess", b"s3cr3t-token"), (b"s3cr3t-token", b"guess")])
def test_cloudfront_secret_sent_twice_is_rejected(order: tuple[bytes, bytes]) -> None:
    raw = [
        (b"x-origin-verify", order[0]),
        (b"x-origin-verify", order[1]),
        (b"cloudfront-viewer-address", f"{CLIENT}:1".encode()),
    ]
    assert resolve_client_ip(OUTSIDER, raw, CF_SECRET) == OUTSIDER


def test_cloudfront_secret_surrounding_whitespace_is_not_part_of_value() -> None:
    # HTTP strips optional whitespace around field values; mappings may not have.
    headers = {**cf(f"{CLIENT}:443"), "x-origin-verify": " s3cr3t-token\t"}
    assert resolve_client_ip(OUTSIDER, headers, CF_SECRET) == CLIENT


def test_cloudfront_secret_or_trusted_peer_either_suffices() -> None:
    cfg = ClientIPConfig(trusted_proxies=TRUSTED, cloudfront=True, origin_secret_header=SECRET)
    assert resolve_client_ip(PROXY, cf(f"{CLIENT}:1"), cfg) == CLIENT
    assert resolve_client_ip(OUTSIDER, cf(f"{CLIENT}:1"), cfg) == OUTSIDER


GARBAGE = [
    "nonsense",
    f"{CLIENT}:99999",
    f"{CLIENT}:123456",
    ":80",
    "[::1",
    "[::1]",
    "[::1]443",
    "[]:443",
    "",
    "   ",
    CLIENT,  # no port
    f"{CLIENT}:",
    f"{CLIENT}:-1",
    f"{CLIENT}:+80",
    f"{CLIENT}:8 0",
    f"{CLIENT}:\u0668\u0660",  # Arabic-Indic digits: isdigit() but not ASCII
    "\uff11.\uff12.\uff13.\uff14:80",  # fullwidth digits
    "203.0.113.07:80",  # leading zero: ambiguous octal
    "256.1.1.1:80",
    "fe80::1%eth0:80",  # zone id
    "2001:db8::1",  # IPv6 without port: "2001:db8:" is not an address
    "x" * 10 * 1024,
    "1" * 10 * 1024 + ":80",
    "héllo:80",
    "💥:443",
    f"{CLIENT}\x00:80",
    f"{CLIENT}:80, 192.0.2.1:80",
]


@pytest.mark.parametrize("value", GARBAGE)
def test_cloudfront_garbage_is_ignored(value: str) -> None:
    assert resolve_client_ip(PROXY, cf(value), CF) == PROXY


def test_cloudfront_garbage_falls_through_to_forwarded_for() -> None:
    headers = {**cf("nonsense"), **xff(CLIENT)}
    assert resolve_client_ip(PROXY, headers, BOTH) == CLIENT


def test_cloudfront_wins_over_forwarded_for() -> None:
    headers = {**cf("192.0.2.44:1"), **xff(CLIENT)}
    assert resolve_client_ip(PROXY, headers, BOTH) == "192.0.2.44"


# ------------------------------------------------------------------ x-forwarded-for


def test_forwarded_for_single_hop() -> None:
    assert resolve_client_ip(PROXY, xff(CLIENT), XFF) == CLIENT


def test_forwarded_for_skips_trusted_hops_from_the_right() -> None:
    assert resolve_client_ip(PROXY, xff(f"{CLIENT}, 10.0.0.2, 10.0.0.3"), XFF) == CLIENT


def test_forwarded_for_never_takes_leftmost_just_because() -> None:
    # The client prepended a fake address; our proxy appended the real one.
    assert resolve_client_ip(PROXY, xff(f"1.1.1.1, {CLIENT}, 10.0.0.2"), XFF) == CLIENT
    assert resolve_client_ip(PROXY, xff(f"1.1.1.1, {CLIENT}"), XFF) == CLIENT


def test_forwarded_for_spoofed_by_untrusted_peer_is_ignored() -> None:
    assert resolve_client_ip(OUTSIDER, xff(CLIENT), XFF) == OUTSIDER


def test_forwarded_for_ignored_when_disabled() -> None:
    assert resolve_client_ip(PROXY, xff(CLIENT), CF) == PROXY


def test_forwarded_for_all_trusted_returns_leftmost_hop() -> None:
    assert resolve_client_ip(PROXY, xff("10.0.0.9, 10.0.0.8, 10.0.0.2"), XFF) == "10.0.0.9"


def test_forwarded_for_invalid_entry_stops_at_last_trusted_hop() -> None:
    value = f"{CLIENT}, nonsense, 10.0.0.2, 10.0.0.3"
    assert resolve_client_ip(PROXY, xff(value), XFF) == "10.0.0.2"


def test_forwarded_for_invalid_rightmost_entry_falls_back_to_peer() -> None:
    assert resolve_client_ip(PROXY, xff(f"{CLIENT}, nonsense"), XFF) == PROXY


def test_forwarded_for_empty_entry_stops_walk() -> None:
    assert resolve_client_ip(PROXY, xff(f"{CLIENT},,10.0.0.2"), XFF) == "10.0.0.2"


def test_forwarded_for_entries_with_ports_are_invalid() -> None:
    assert resolve_client_ip(PROXY, xff(f"{CLIENT}:443"), XFF) == PROXY


def test_forwarded_for_ipv6_entries_normalized() -> None:
    value = "2001:DB8:1::0001, 2001:db8:ffff::5"
    assert resolve_client_ip("2001:db8:ffff::1", xff(value), XFF) == "2001:db8:1::1"


def test_forwarded_for_ipv4_mapped_entries() -> None:
    # Mapped trusted hop is skipped as IPv4; mapped client comes out as IPv4.
    value = f"::ffff:{CLIENT}, ::ffff:10.0.0.2"
    assert resolve_client_ip(PROXY, xff(value), XFF) == CLIENT


def test_multiple_forwarded_for_headers_joined_in_order() -> None:
    raw = [
        (b"x-forwarded-for", b"1.1.1.1, 198.51.100.1"),
        (b"host", b"example.com"),
        (b"X-Forwarded-For", b"198.51.100.2, 10.0.0.2"),
    ]
    assert resolve_client_ip(PROXY, raw, XFF) == "198.51.100.2"
    swapped = [raw[2], raw[1], raw[0]]
    assert resolve_client_ip(PROXY, swapped, XFF) == "198.51.100.1"


def test_multiple_forwarded_for_headers_across_trusted_hops() -> None:
    raw = [(b"x-forwarded-for", CLIENT.encode()), (b"x-forwarded-for", b"10.0.0.2")]
    assert resolve_client_ip(PROXY, raw, XFF) == CLIENT


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "nonsense",
        ":80",
        "[::1",
        f"{CLIENT}:99999",
        "x" * 10 * 1024,
        ", ".join([CLIENT] * 1000),  # > 4 KiB even though every entry is valid
        "\u0661\u0662\u0663.\u0660.\u0661\u0661\u0663.\u0667",  # Arabic-Indic digits
        "203.0.113.7\u200b",  # zero-width space
        "💥",
        "fe80::1%eth0",
    ],
)
def test_forwarded_for_garbage_falls_back_to_peer(value: str) -> None:
    assert resolve_client_ip(PROXY, xff(value), XFF) == PROXY


def test_forwarded_for_length_limit_boundary() -> None:
    pad = "10.0.0.2, "
    value = pad * ((MAX_HEADER_LENGTH - len(CLIENT)) // len(pad))
    fits = CLIENT + ", " + value.rstrip(", ")
    assert len(fits) <= MAX_HEADER_LENGTH
    assert resolve_client_ip(PROXY, xff(fits), XFF) == CLIENT
    too_long = " " * (MAX_HEADER_LENGTH + 1 - len(CLIENT)) + CLIENT
    assert resolve_client_ip(PROXY, xff(too_long), XFF) == PROXY


def test_forwarded_for_length_limit_applies_to_joined_headers() -> None:
    chunk = ", ".join(["10.0.0.2"] * 300).encode()  # ~3 KiB each, 6 KiB joined
    raw = [(b"x-forwarded-for", CLIENT.encode() + b", " + chunk), (b"x-forwarded-for", chunk)]
    assert resolve_client_ip(PROXY, raw, XFF) == PROXY


# ----------------------------------------------------------------- peer & inputs


def test_ipv4_mapped_peer_is_trusted_and_reported_as_ipv4() -> None:
    assert resolve_client_ip("::ffff:10.0.0.1", xff(CLIENT), XFF) == CLIENT
    assert resolve_client_ip("::ffff:198.51.100.50", xff(CLIENT), XFF) == OUTSIDER


def test_ipv6_peer_is_normalized() -> None:
    assert resolve_client_ip("2001:DB8:0::1", {}, ClientIPConfig()) == "2001:db8::1"


def test_missing_peer_returns_none_and_trusts_no_forwarded_for() -> None:
    assert resolve_client_ip(None, {}, XFF) is None
    assert resolve_client_ip(None, xff(CLIENT), XFF) is None
    assert resolve_client_ip(None, cf(f"{CLIENT}:1"), CF) is None
    assert resolve_client_ip("", xff(CLIENT), XFF) is None


def test_missing_peer_with_matching_secret_uses_cloudfront() -> None:
    headers = {**cf(f"{CLIENT}:443"), "x-origin-verify": "s3cr3t-token"}
    assert resolve_client_ip(None, headers, CF_SECRET) == CLIENT


def test_non_ip_peer_is_passed_through_but_never_trusted() -> None:
    cfg = ClientIPConfig(trusted_proxies=["0.0.0.0/0", "::/0"], forwarded_for=True)
    assert resolve_client_ip("testclient", xff(CLIENT), cfg) == "testclient"
    assert resolve_client_ip(PROXY, xff(CLIENT), cfg) == CLIENT  # control


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-forwarded-for",)],
        [(b"x-forwarded-for", CLIENT.encode(), b"extra")],
        [(b"x-forwarded-for", 42)],
        [(None, CLIENT.encode())],
        [b"x-forwarded-for: 203.0.113.7"],
        42,
        None,
        {"x-forwarded-for": 42},
    ],
)
def test_malformed_header_containers_never_raise(headers: Any) -> None:
    assert resolve_client_ip(PROXY, headers, BOTH) == PROXY


def test_malformed_pairs_do_not_hide_valid_ones() -> None:
    raw: list[Any] = [(b"junk",), (b"x-forwarded-for", CLIENT.encode())]
    assert resolve_client_ip(PROXY, raw, XFF) == CLIENT


def test_latin1_header_bytes_never_raise() -> None:
    raw = [(b"x-forwarded-for", bytes(range(256)))]
    assert resolve_client_ip(PROXY, raw, XFF) == PROXY


def test_starlette_headers_repeated_values_are_all_read() -> None:
    starlette_datastructures = pytest.importorskip("starlette.datastructures")
    headers = starlette_datastructures.Headers(
        raw=[(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", CLIENT.encode())]
    )
    # Headers["x-forwarded-for"] alone would give "1.1.1.1"; we must see both.
    assert resolve_client_ip(PROXY, headers, XFF) == CLIENT


def test_fuzzed_values_never_raise_and_only_yield_addresses() -> None:
    rng = random.Random(1234)
    alphabet = "0123456789abcdefABCDEF:.[], %-\t\x00é٣💥"
    allowed_results = {PROXY}
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for headers in (cf(value), xff(value), {**cf(value), **xff(value)}):
            result = resolve_client_ip(PROXY, headers, BOTH)
            assert result is not None
            if result not in allowed_results:
                # Anything else must be a normalized address taken from the header.
                assert str(ipaddress.ip_address(result)) == result
                assert "%" not in result


# ---------------------------------------------------------------------- middleware


class RecordingApp:
    """A minimal ASGI app that records the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.received: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            self.received.append(await receive())
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


def run(
    mw: ClientIPMiddleware, scope: dict[str, Any], messages: Iterable[Mapping[str, Any]] = ()
) -> list[Any]:
    inbox = [dict(m) for m in messages] or [{"type": "http.request", "body": b""}]
    sent: list[Any] = []

    async def receive() -> Any:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    return sent


def http_scope(
    client: tuple[str, int] | None, headers: list[tuple[bytes, bytes]], **extra: Any
) -> dict[str, Any]:
    return {"type": "http", "client": client, "headers": headers, **extra}


def test_middleware_sets_state_and_keeps_scope_client() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app, trusted_proxies=TRUSTED, forwarded_for=True)
    scope = http_scope((PROXY, 5555), [(b"x-forwarded-for", f"1.1.1.1, {CLIENT}".encode())])
    sent = run(mw, scope)

    seen = app.scopes[0]
    assert seen["state"]["client_ip"] == CLIENT
    assert seen["client"] == (PROXY, 5555)  # the direct peer stays visible
    assert client_ip_from_scope(seen) == CLIENT
    # receive/send are passed through untouched.
    assert app.received == [{"type": "http.request", "body": b""}]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


def test_middleware_cloudfront_with_secret() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app, cloudfront=True, origin_secret_header=SECRET)
    headers = [
        (b"cloudfront-viewer-address", b"2001:DB8::8:800:200C:417A:46532"),
        (b"x-origin-verify", b"s3cr3t-token"),
    ]
    run(mw, http_scope((OUTSIDER, 1), headers))
    assert app.scopes[0]["state"]["client_ip"] == "2001:db8::8:800:200c:417a"

    run(mw, http_scope((OUTSIDER, 1), headers[:1]))
    assert app.scopes[1]["state"]["client_ip"] == OUTSIDER


def test_middleware_spoofed_headers_from_outsider_ignored() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app, trusted_proxies=TRUSTED, cloudfront=True, forwarded_for=True)
    headers = [(b"cloudfront-viewer-address", b"1.1.1.1:1"), (b"x-forwarded-for", b"1.1.1.1")]
    run(mw, http_scope((OUTSIDER, 1), headers))
    assert app.scopes[0]["state"]["client_ip"] == OUTSIDER


def test_middleware_preserves_existing_state() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app)
    state = {"db": "engine"}
    run(mw, http_scope((CLIENT, 1), [], state=state))
    assert app.scopes[0]["state"] is state
    assert state == {"db": "engine", "client_ip": CLIENT}


def test_middleware_missing_client() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app, trusted_proxies=TRUSTED, forwarded_for=True)
    scope: dict[str, Any] = {"type": "http", "headers": [(b"x-forwarded-for", CLIENT.encode())]}
    run(mw, scope)
    assert app.scopes[0]["state"] == {"client_ip": None}
    assert "client" not in app.scopes[0]
    # Explicit None resolves the same way, and the stored None is not replaced
    # by a fallback in client_ip_from_scope.
    run(mw, http_scope(None, [(b"x-forwarded-for", CLIENT.encode())]))
    assert app.scopes[1]["state"]["client_ip"] is None
    assert client_ip_from_scope(app.scopes[1]) is None


def test_middleware_websocket_scope() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app, trusted_proxies=TRUSTED, forwarded_for=True)
    scope = {
        "type": "websocket",
        "client": ("10.0.0.1", 1),
        "headers": [(b"x-forwarded-for", CLIENT.encode())],
    }
    run(mw, scope, [{"type": "websocket.connect"}])
    assert app.scopes[0]["state"]["client_ip"] == CLIENT


def test_middleware_lifespan_passes_through_untouched() -> None:
    app = RecordingApp()
    mw = ClientIPMiddleware(app)
    shared_state: dict[str, Any] = {}
    scope = {"type": "lifespan", "state": shared_state}
    run(mw, scope, [{"type": "lifespan.startup"}])
    assert app.scopes == [scope]
    assert shared_state == {}
    assert scope == {"type": "lifespan", "state": {}}


def test_middleware_rejects_bad_config_at_construction() -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        ClientIPMiddleware(RecordingApp(), trusted_proxies=["not-a-network"], forwarded_for=True)
    with pytest.raises(ValueError, match="forwarded_for=True needs"):
        ClientIPMiddleware(RecordingApp(), forwarded_for=True)


def test_client_ip_from_scope_without_middleware_uses_peer_only() -> None:
    scope = http_scope((OUTSIDER, 1), [(b"x-forwarded-for", CLIENT.encode())])
    assert client_ip_from_scope(scope) == OUTSIDER
    assert client_ip_from_scope({"type": "http"}) is None
    assert client_ip_from_scope({"type": "http", "client": None, "state": {}}) is None
