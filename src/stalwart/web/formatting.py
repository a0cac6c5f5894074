"""How values are written on the pages: times, durations, JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["ago", "duration", "loads_or_text", "pretty_json", "stamp"]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def loads_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return ""
    delta = (now - then).total_seconds()
    word = "ago" if delta >= 0 else "from now"
    return f"{duration(abs(delta))} {word}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = abs(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def stamp(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")
