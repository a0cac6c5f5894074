"""The one rule for queue names and worker queue patterns, for priorities, and for what
can be a job id."""

from __future__ import annotations

import re
from datetime import UTC, datetime

MIN_PRIORITY, MAX_PRIORITY = -100, 100
# Ids are 64-bit signed integers on every database (BIGINT; SQLite's INTEGER).
MAX_ID = 2**63 - 1
# 1 to 100 letters, digits and ``_ . : -``: safe in SQL LIKE patterns, URLs and logs.
_NAME = r"[A-Za-z0-9_.:-]{1,100}"
_QUEUE_NAME = re.compile(rf"^{_NAME}$")
# What a worker listens to: a name, a prefix ending in ``*``, or ``*`` alone.
_QUEUE_PATTERN = re.compile(rf"^(\*|{_NAME}\*?)$")


def check_queue_name(name: object, where: str = "queue_name") -> str:
    if not isinstance(name, str) or not _QUEUE_NAME.match(name):
        raise ValueError(
            f"{where}: {name!r} is not a valid queue name; use 1 to 100 letters, digits, "
            "'_', '.', ':' or '-'"
        )
    return name


def check_queue_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not _QUEUE_PATTERN.match(pattern):
        raise ValueError(
            f"{pattern!r} is not a queue name or pattern; use letters, digits, '_', '.', ':', "
            "'-', a trailing '*' for a prefix, or '*' alone for all queues"
        )
    return pattern


def check_priority(priority: object, where: str = "priority") -> int:
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not MIN_PRIORITY <= priority <= MAX_PRIORITY
    ):
        raise ValueError(
            f"{where}: {priority!r} is not an integer from {MIN_PRIORITY} to {MAX_PRIORITY}"
        )
    return priority


def is_job_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def parse_job_id(raw: object, where: str = "job id") -> int:
    """A job id from text a person gave (``"#42"``, ``"42"``), or ValueError saying why
    it cannot be one (no database is asked about a number no column can hold)."""
    text = str(raw).strip().lstrip("#")
    if not (text.isdigit() and len(text) <= 19) or not is_job_id(int(text)):
        raise ValueError(
            f"{where}: {str(raw)[:40]!r} is not a job id (a whole number from 1 to {MAX_ID})"
        )
    return int(text)


# Times a person may give (filters, cursors): within what every database stores.
_EARLIEST, _LATEST = datetime(1970, 1, 1), datetime(9999, 12, 30)


def parse_time(raw: str, where: str) -> datetime:
    """A naive-UTC datetime from ISO 8601 text (an offset is converted to UTC), or
    ValueError saying why not; years 1970 to 9999 only."""
    try:
        at = datetime.fromisoformat(raw.strip())
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{where}: {raw[:40]!r} is not a date and time (YYYY-MM-DDTHH:MM)"
        ) from None
    if not _EARLIEST <= at <= _LATEST:
        raise ValueError(f"{where}: {raw[:40]!r} is out of range (years 1970 to 9999)")
    return at
