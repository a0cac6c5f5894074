"""Whether to trace, decided without importing OpenTelemetry.

Tracing is on when the application configured a tracer provider: it has then imported
``opentelemetry.trace`` itself, so a look into ``sys.modules`` tells, for free, when it
has not; only then is `otel.py` (which imports the API) asked.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..context import TRACE_KEY
from ..serialization import dumps, loads

if TYPE_CHECKING:
    from .otel import Otel

__all__ = ["carrier_of", "tracer", "with_carrier"]


def tracer() -> Otel | None:
    """Stalwart's tracer if a tracer provider is configured, else None."""
    if "opentelemetry.trace" not in sys.modules:
        return None
    from . import otel

    return otel.active()


def with_carrier(captured: str | None, carrier: dict[str, str]) -> str | None:
    """The job's captured context (JSON) with the trace ``carrier`` added."""
    if not carrier:
        return captured
    data = loads(captured) if captured else {}
    data[TRACE_KEY] = carrier
    return dumps(data)


def carrier_of(captured: str | None) -> dict[str, str]:
    """The trace carrier a job's captured context holds (empty if none)."""
    if not captured or TRACE_KEY not in captured:
        return {}
    value = (loads(captured) or {}).get(TRACE_KEY)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
