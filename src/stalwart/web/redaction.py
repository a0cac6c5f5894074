"""Redaction: the values of secret-looking keys hidden wherever the dashboard shows
job data (arguments, captured context, results)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["DEFAULT_REDACT", "REDACTED", "Redactor"]

REDACTED = "[redacted]"
# Matched case-insensitively as substrings of keys (and of parameter names), with
# "-" and "_" ignored: "api-key", "API_KEY" and "apikey" all match "apikey".
DEFAULT_REDACT = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "cookie",
    "credential",
    "session",
)


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


class Redactor:
    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = tuple(_norm(k) for k in keys if k)

    def secret(self, name: str) -> bool:
        n = _norm(name)
        return any(k in n for k in self.keys)

    def __call__(self, value: Any) -> Any:
        """A copy of ``value`` with the values of secret-looking keys replaced, at any
        depth of dicts and lists."""
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and self.secret(k) else self(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def arguments(
        self, args: list[Any], kwargs: dict[str, Any], func: Callable[..., Any] | None
    ) -> tuple[list[Any], dict[str, Any]]:
        """Redacted arguments; positional ones by the task's parameter names, if known."""
        names: list[str] = []
        if func is not None:
            try:
                names = [
                    p.name
                    for p in inspect.signature(func).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
            except (TypeError, ValueError):
                names = []
        out_args = [
            REDACTED if i < len(names) and self.secret(names[i]) else self(a)
            for i, a in enumerate(args)
        ]
        return out_args, self(kwargs)
