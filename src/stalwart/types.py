"""Types shared across Stalwart: the ASGI callables of the web front end.

Plain typing only, so the core imports it without the web stack (no Starlette here).
The shapes are those of the ASGI 3 specification: a scope is a mapping, messages are
mappings, and an application is ``async def app(scope, receive, send)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
