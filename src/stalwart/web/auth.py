"""Who may see the dashboard, and who may act in it.

An authorizer is any callable ``authorize(request) -> Principal | None`` (sync or
async); `BasicAuth` is the one shipped. ``None`` means "not authenticated": the
dashboard answers 401. A `Principal` with ``read_only=True`` sees every page but
cannot retry, discard, cancel, pause or run anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user: ``name`` is what the audit log records."""

    name: str
    read_only: bool = False


Authorize = Callable[[Request], "Principal | Awaitable[Principal | None] | None"]


def _digest(value: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of the
    # length and content of the secret.
    return hashlib.sha256(value.encode("utf-8")).digest()


class BasicAuth:
    """HTTP basic auth against fixed users: ``admins`` may act, ``viewers`` only look.

    ``BasicAuth(admins={"alice": "s3cret"}, viewers={"bob": "pw"})``. Use it over
    HTTPS only: basic auth sends the password with every request.
    """

    realm = "Stalwart"

    def __init__(
        self,
        admins: Mapping[str, str] | None = None,
        viewers: Mapping[str, str] | None = None,
    ) -> None:
        users: dict[str, tuple[bytes, bool]] = {}
        for mapping, read_only in ((admins or {}, False), (viewers or {}, True)):
            for name, password in mapping.items():
                if not name or ":" in name:
                    raise ValueError(f"basic auth user name {name!r} must be non-empty, no ':'")
                if not password:
                    raise ValueError(f"basic auth user {name!r} has an empty password")
                if name in users:
                    raise ValueError(f"basic auth user {name!r} is both an admin and a viewer")
                users[name] = (_digest(password), read_only)
        if not users:
            raise ValueError("BasicAuth needs at least one user (admins= or viewers=)")
        self._users = users

    def __call__(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        if not sep:
            return None
        given = _digest(password)
        found: Principal | None = None
        # Every user is compared, so the time taken does not tell which names exist.
        for user, (expected, read_only) in self._users.items():
            name_ok = hmac.compare_digest(_digest(user), _digest(name))
            password_ok = hmac.compare_digest(expected, given)
            if name_ok and password_ok:
                found = Principal(user, read_only=read_only)
        return found

    @classmethod
    def from_env_values(cls, admins: str | None, viewers: str | None) -> BasicAuth | None:
        """From ``"alice:pw,bob:pw"`` strings (the `stalwart dashboard` environment
        variables); None when both are empty."""
        parsed = [_parse_users(admins or "", "admins"), _parse_users(viewers or "", "viewers")]
        if not parsed[0] and not parsed[1]:
            return None
        return cls(admins=parsed[0], viewers=parsed[1])


def _parse_users(value: str, what: str) -> dict[str, str]:
    users = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, password = item.partition(":")
        if not sep or not name or not password:
            raise ValueError(f"{what}: expected name:password pairs separated by commas")
        users[name] = password
    return users
