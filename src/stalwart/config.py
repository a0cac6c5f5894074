"""Configuration: `stalwart.toml` or `[tool.stalwart]` in pyproject.toml, overridden by
`STALWART_*` environment variables, validated as a whole.

Validation collects every problem, each as one line naming the file, the key and the
reason (`stalwart.toml: workers[0].threads: expected an integer >= 1, got 'five'`), so
`stalwart check` can print them all at once.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .names import check_queue_name, check_queue_pattern
from .schedules import parse_schedule

DEFAULT_DATABASE_URL = "sqlite:///stalwart.db"
ENV_PREFIX = "STALWART_"
_APP_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class WorkerConfig:
    queues: tuple[str, ...] = ("*",)
    threads: int = 5
    processes: int = 1
    polling_interval: float = 0.1
    # Claimed jobs kept waiting for a thread: a count, or "auto" (about 50 ms of work,
    # at most 200; see processes/prefetch.py).
    prefetch: int | str = "auto"
    # Idle: the wait between polls doubles up to polling_interval x idle_backoff_cap; on
    # PostgreSQL with LISTEN up, to notify_polling_interval (notifications wake it).
    idle_backoff_cap: int = 20
    notify_polling_interval: float = 30.0


@dataclass(frozen=True)
class DispatcherConfig:
    polling_interval: float = 1.0
    batch_size: int = 500
    concurrency_maintenance_interval: float = 60.0


@dataclass(frozen=True)
class RecurringConfig:
    key: str
    schedule: str
    task: str | None = None
    command: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue_name: str | None = None
    priority: int | None = None
    description: str | None = None
    time_zone: str = "UTC"
    missed: str = "skip"
    missed_window: float = 86400.0


@dataclass(frozen=True)
class Config:
    app: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    # database_url goes through a pooler in transaction mode (PgBouncer): no prepared
    # statements, nothing that needs a session on it (README, "Behind PgBouncer").
    transaction_pooling: bool = False
    # Direct URLs for what needs a session: LISTEN, and `stalwart migrate` if wanted.
    listen_url: str | None = None
    migrate_url: str | None = None
    preserve_finished_jobs: bool = True
    clear_finished_jobs_after: float = 86400.0
    shutdown_timeout: float = 10.0
    # After a job is interrupted (timeout, cancel), how long it may take to stop before
    # its worker process is recycled.
    timeout_grace: float = 5.0
    heartbeat_interval: float = 10.0
    alive_threshold: float = 60.0
    # A host whose clock is off the database's by more than this is told loudly (every
    # time Stalwart uses is corrected by the measured offset whatever it is).
    clock_tolerance: float = 30.0
    max_crashes: int = 3
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line
    # `stalwart start`'s probe server: /metrics, /livez and /readyz (None: off).
    metrics_port: int | None = None
    health_port: int | None = None
    probe_host: str = "0.0.0.0"
    # A bearer token /metrics wants (the probe server's and the dashboard's).
    metrics_token: str | None = None
    workers: tuple[WorkerConfig, ...] = (WorkerConfig(),)
    dispatchers: tuple[DispatcherConfig, ...] = (DispatcherConfig(),)
    scheduler: bool = True
    recurring: tuple[RecurringConfig, ...] = ()
    # Where the values came from, for messages.
    source: str = "defaults"

    def store_options(self) -> dict[str, Any]:
        """`open_store`'s keywords that this configuration sets."""
        return {
            "preserve_finished_jobs": self.preserve_finished_jobs,
            "transaction_pooling": self.transaction_pooling,
            "listen_url": self.listen_url,
            "migrate_url": self.migrate_url,
            "clock_tolerance": self.clock_tolerance,
        }


# ---- value checkers: each returns the clean value or raises _Bad(reason) ----


class _Bad(Exception):
    pass


def _int(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        ok = isinstance(v, int) and not isinstance(v, bool)
        if not ok or v < minimum or (maximum is not None and v > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise _Bad(f"expected an integer {bound}, got {v!r}")
        return int(v)

    return check


def _prefetch(v: Any) -> int | str:
    if v == "auto":
        return "auto"
    try:
        return _int(0, 100_000)(v)
    except _Bad:
        raise _Bad(f'expected "auto" or an integer from 0 to 100000, got {v!r}') from None


def _duration(minimum: float = 0.0) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        seconds: float | None = None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            seconds = float(v)
        elif isinstance(v, str) and (m := _DURATION.match(v)):
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        if seconds is None or seconds < minimum or seconds != seconds:
            raise _Bad(
                f"expected a duration >= {minimum:g} s (seconds, or a string like "
                f"'500ms', '30s', '5m', '2h', '7d'), got {v!r}"
            )
        return seconds

    return check


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise _Bad(f"expected true or false, got {v!r}")


def _str(v: Any) -> str:
    if isinstance(v, str) and v.strip():
        return v
    raise _Bad(f"expected a non-empty string, got {v!r}")


def _app_path(v: Any) -> str:
    if isinstance(v, str) and _APP_PATH.match(v):
        return v
    raise _Bad(f"expected 'module.path:attribute' (e.g. 'myproject.jobs:app'), got {v!r}")


def _queues(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise _Bad(f"expected a non-empty list of queue names, got {v!r}")
    for q in v:
        try:
            check_queue_pattern(q)
        except ValueError as exc:
            raise _Bad(str(exc)) from None
    return tuple(v)


def _queue_name(v: Any) -> str:
    try:
        return check_queue_name(v, "queue")
    except ValueError as exc:
        raise _Bad(str(exc)) from None


def _log_level(v: Any) -> str:
    if isinstance(v, str) and v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        return v.upper()
    raise _Bad(f"expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {v!r}")


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v in choices:
            return str(v)
        raise _Bad(f"expected one of {', '.join(choices)}, got {v!r}")

    return check


def _list(v: Any) -> tuple[Any, ...]:
    if isinstance(v, list):
        return tuple(v)
    raise _Bad(f"expected a list, got {v!r}")


def _table(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return dict(v)
    raise _Bad(f"expected a table, got {v!r}")


_TOP: dict[str, Callable[[Any], Any]] = {
    "app": _app_path,
    "database_url": _str,
    "transaction_pooling": _bool,
    "listen_url": _str,
    "migrate_url": _str,
    "preserve_finished_jobs": _bool,
    "clear_finished_jobs_after": _duration(0),
    "shutdown_timeout": _duration(0),
    "timeout_grace": _duration(0),
    "heartbeat_interval": _duration(0.1),
    "alive_threshold": _duration(1),
    "clock_tolerance": _duration(0),
    "max_crashes": _int(1),
    "log_level": _log_level,
    "log_format": _one_of("text", "json"),
    "metrics_port": _int(1, 65535),
    "health_port": _int(1, 65535),
    "probe_host": _str,
    "metrics_token": _str,
    "scheduler": _bool,
}
_WORKER: dict[str, Callable[[Any], Any]] = {
    "queues": _queues,
    "threads": _int(1, 1000),
    "processes": _int(1, 256),
    "polling_interval": _duration(0.001),
    "prefetch": _prefetch,
    "idle_backoff_cap": _int(1, 100_000),
    "notify_polling_interval": _duration(0.001),
}
_DISPATCHER: dict[str, Callable[[Any], Any]] = {
    "polling_interval": _duration(0.001),
    "batch_size": _int(1, 100_000),
    "concurrency_maintenance_interval": _duration(0.1),
}
_RECURRING: dict[str, Callable[[Any], Any]] = {
    "schedule": _str,
    "task": _str,
    "command": _str,
    "args": _list,
    "kwargs": _table,
    "queue_name": _queue_name,
    "priority": _int(-100, 100),
    "description": _str,
    "time_zone": _str,
    "missed": _one_of("skip", "latest", "all"),
    "missed_window": _duration(0),
}


def _check_section(
    raw: Mapping[str, Any],
    spec: Mapping[str, Callable[[Any], Any]],
    where: str,
    problems: list[str],
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        checker = spec.get(key)
        if checker is None:
            known = ", ".join(sorted(spec))
            problems.append(f"{where}{key}: unknown key (known keys: {known})")
            continue
        try:
            clean[key] = checker(value)
        except _Bad as bad:
            problems.append(f"{where}{key}: {bad}")
    return clean


def parse_config(raw: Mapping[str, Any], source: str = "config") -> Config:
    """Validate a raw mapping (as read from TOML) into a Config, or raise ConfigError."""
    problems: list[str] = []
    prefix = f"{source}: "
    sections = {"workers", "dispatchers", "recurring"}
    top = {k: v for k, v in raw.items() if k not in sections}
    values: dict[str, Any] = _check_section(top, _TOP, prefix, problems)

    if "workers" in raw:
        values["workers"] = tuple(
            WorkerConfig(**_check_section(w, _WORKER, f"{prefix}workers[{i}].", problems))
            for i, w in enumerate(_sections(raw["workers"], f"{prefix}workers", problems))
        )
    if "dispatchers" in raw:
        values["dispatchers"] = tuple(
            DispatcherConfig(
                **_check_section(d, _DISPATCHER, f"{prefix}dispatchers[{i}].", problems)
            )
            for i, d in enumerate(_sections(raw["dispatchers"], f"{prefix}dispatchers", problems))
        )
    if "recurring" in raw:
        values["recurring"] = _recurring(raw["recurring"], prefix, problems)
    if problems:
        raise ConfigError(problems)
    return Config(source=source, **values)


def _sections(value: Any, where: str, problems: list[str]) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"{where}: expected a list of tables ([[{where.split(': ')[-1]}]])")
        return []
    return value


def _recurring(value: Any, prefix: str, problems: list[str]) -> tuple[RecurringConfig, ...]:
    if not isinstance(value, dict):
        problems.append(f"{prefix}recurring: expected a table of [recurring.NAME] tables")
        return ()
    out = []
    for key, body in value.items():
        where = f"{prefix}recurring.{key}."
        if not isinstance(body, dict):
            problems.append(f"{prefix}recurring.{key}: expected a table")
            continue
        clean = _check_section(body, _RECURRING, where, problems)
        if "schedule" not in body:
            problems.append(f"{where}schedule: missing (a cron line or 'every ...')")
            continue
        if ("task" in body) == ("command" in body):
            problems.append(f"{where}task: give exactly one of task or command")
            continue
        if "schedule" in clean:
            try:
                parse_schedule(clean["schedule"], clean.get("time_zone", "UTC"))
            except ValueError as exc:
                problems.append(f"{where}schedule: {exc}")
                continue
        out.append(RecurringConfig(key=key, **clean))
    return tuple(out)


_RAW_ENV = {"database_url", "listen_url", "migrate_url", "metrics_token"}


def _env_value(text: str) -> Any:
    """Environment values are TOML literals when they parse as one, else strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def find_config_file(start: Path | None = None) -> Path | None:
    base = start or Path.cwd()
    for name in ("stalwart.toml", "pyproject.toml"):
        candidate = base / name
        if candidate.is_file():
            if name == "pyproject.toml":
                with candidate.open("rb") as fh:
                    if "stalwart" not in tomllib.load(fh).get("tool", {}):
                        continue
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {}).get("stalwart")
        if not isinstance(tool, dict):
            raise ConfigError([f"{path}: has no [tool.stalwart] table"])
        return tool
    return data


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the config file (explicit, $STALWART_CONFIG, ./stalwart.toml or
    ./pyproject.toml), apply `STALWART_*` variables and ``overrides``, validate."""
    env = os.environ if env is None else env
    chosen = (
        Path(path)
        if path
        else (Path(env["STALWART_CONFIG"]) if env.get("STALWART_CONFIG") else None)
    )
    file = chosen or find_config_file()
    raw: dict[str, Any] = read_config_file(file) if file else {}
    sources = [str(file)] if file else []
    scalar_keys = {f.name for f in fields(Config)} - {
        "workers",
        "dispatchers",
        "recurring",
        "source",
    }
    for key in sorted(scalar_keys):
        var = ENV_PREFIX + key.upper()
        if var in env:
            # Secrets and URLs are taken as they are, never read as TOML.
            raw[key] = env[var] if key in _RAW_ENV else _env_value(env[var])
            sources.append(f"${var}")
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    return parse_config(raw, source=" + ".join(sources) if sources else "defaults")
