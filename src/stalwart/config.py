"""Configuration: `stalwart.toml` or `[tool.stalwart]` in pyproject.toml, overridden by
`STALWART_*` environment variables, validated as a whole.

Validation collects every problem, each as one line naming the file, the key and the
reason (`stalwart.toml: workers[0].threads: expected an integer >= 1, got 'five'`), so
`stalwart check` can print them all at once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .config_values import (
    DISPATCHER_KEYS,
    RECURRING_KEYS,
    TOP_KEYS,
    WORKER_KEYS,
    Bad,
)
from .errors import ConfigError
from .schedules import parse_schedule

DEFAULT_DATABASE_URL = "sqlite:///stalwart.db"
ENV_PREFIX = "STALWART_"


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
        except Bad as bad:
            problems.append(f"{where}{key}: {bad}")
    return clean


def parse_config(raw: Mapping[str, Any], source: str = "config") -> Config:
    """Validate a raw mapping (as read from TOML) into a Config, or raise ConfigError."""
    problems: list[str] = []
    prefix = f"{source}: "
    sections = {"workers", "dispatchers", "recurring"}
    top = {k: v for k, v in raw.items() if k not in sections}
    values: dict[str, Any] = _check_section(top, TOP_KEYS, prefix, problems)

    if "workers" in raw:
        values["workers"] = tuple(
            WorkerConfig(**_check_section(w, WORKER_KEYS, f"{prefix}workers[{i}].", problems))
            for i, w in enumerate(_sections(raw["workers"], f"{prefix}workers", problems))
        )
    if "dispatchers" in raw:
        values["dispatchers"] = tuple(
            DispatcherConfig(
                **_check_section(d, DISPATCHER_KEYS, f"{prefix}dispatchers[{i}].", problems)
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
        clean = _check_section(body, RECURRING_KEYS, where, problems)
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
