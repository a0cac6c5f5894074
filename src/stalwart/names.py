"""The one rule for queue names and worker queue patterns, and for priorities."""

from __future__ import annotations

import re

MIN_PRIORITY, MAX_PRIORITY = -100, 100
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
