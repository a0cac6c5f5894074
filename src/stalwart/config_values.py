"""The config file's keys and what each accepts: a checker per key returns the clean
value or raises `Bad` with the reason (`config.py` adds the file and the key)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .names import check_queue_name, check_queue_pattern

_APP_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class Bad(Exception):
    pass


def integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        ok = isinstance(v, int) and not isinstance(v, bool)
        if not ok or v < minimum or (maximum is not None and v > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise Bad(f"expected an integer {bound}, got {v!r}")
        return int(v)

    return check


def prefetch(v: Any) -> int | str:
    if v == "auto":
        return "auto"
    try:
        return integer(0, 100_000)(v)
    except Bad:
        raise Bad(f'expected "auto" or an integer from 0 to 100000, got {v!r}') from None


def duration(minimum: float = 0.0) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        seconds: float | None = None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            seconds = float(v)
        elif isinstance(v, str) and (m := _DURATION.match(v)):
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        if seconds is None or seconds < minimum or seconds != seconds:
            raise Bad(
                f"expected a duration >= {minimum:g} s (seconds, or a string like "
                f"'500ms', '30s', '5m', '2h', '7d'), got {v!r}"
            )
        return seconds

    return check


def boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise Bad(f"expected true or false, got {v!r}")


def string(v: Any) -> str:
    if isinstance(v, str) and v.strip():
        return v
    raise Bad(f"expected a non-empty string, got {v!r}")


def app_path(v: Any) -> str:
    if isinstance(v, str) and _APP_PATH.match(v):
        return v
    raise Bad(f"expected 'module.path:attribute' (e.g. 'myproject.jobs:app'), got {v!r}")


def queues(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise Bad(f"expected a non-empty list of queue names, got {v!r}")
    for q in v:
        try:
            check_queue_pattern(q)
        except ValueError as exc:
            raise Bad(str(exc)) from None
    return tuple(v)


def queue_name(v: Any) -> str:
    try:
        return check_queue_name(v, "queue")
    except ValueError as exc:
        raise Bad(str(exc)) from None


def log_level(v: Any) -> str:
    if isinstance(v, str) and v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        return v.upper()
    raise Bad(f"expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {v!r}")


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v in choices:
            return str(v)
        raise Bad(f"expected one of {', '.join(choices)}, got {v!r}")

    return check


def list_of(v: Any) -> tuple[Any, ...]:
    if isinstance(v, list):
        return tuple(v)
    raise Bad(f"expected a list, got {v!r}")


def table(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return dict(v)
    raise Bad(f"expected a table, got {v!r}")


TOP_KEYS: dict[str, Callable[[Any], Any]] = {
    "app": app_path,
    "database_url": string,
    "transaction_pooling": boolean,
    "listen_url": string,
    "migrate_url": string,
    "preserve_finished_jobs": boolean,
    "clear_finished_jobs_after": duration(0),
    "shutdown_timeout": duration(0),
    "timeout_grace": duration(0),
    "heartbeat_interval": duration(0.1),
    "alive_threshold": duration(1),
    "clock_tolerance": duration(0),
    "max_crashes": integer(1),
    "log_level": log_level,
    "log_format": one_of("text", "json"),
    "metrics_port": integer(1, 65535),
    "health_port": integer(1, 65535),
    "probe_host": string,
    "metrics_token": string,
    "scheduler": boolean,
}
WORKER_KEYS: dict[str, Callable[[Any], Any]] = {
    "queues": queues,
    "threads": integer(1, 1000),
    "processes": integer(1, 256),
    "polling_interval": duration(0.001),
    "prefetch": prefetch,
    "idle_backoff_cap": integer(1, 100_000),
    "notify_polling_interval": duration(0.001),
}
DISPATCHER_KEYS: dict[str, Callable[[Any], Any]] = {
    "polling_interval": duration(0.001),
    "batch_size": integer(1, 100_000),
    "concurrency_maintenance_interval": duration(0.1),
}
RECURRING_KEYS: dict[str, Callable[[Any], Any]] = {
    "schedule": string,
    "task": string,
    "command": string,
    "args": list_of,
    "kwargs": table,
    "queue_name": queue_name,
    "priority": integer(-100, 100),
    "description": string,
    "time_zone": string,
    "missed": one_of("skip", "latest", "all"),
    "missed_window": duration(0),
}
