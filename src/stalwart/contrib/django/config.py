"""Stalwart's configuration from Django's settings: one configuration, not two.

Any key of ``stalwart.toml`` may be given in the backend's ``OPTIONS`` (or in a
``STALWART`` setting, which ``OPTIONS`` overrides key by key). The database defaults to
Django's own ``DATABASES["default"]`` (``OPTIONS["database"]`` names another alias); a
``database_url`` key points Stalwart elsewhere instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from ...config import Config, parse_config
from ...errors import ConfigError

# Keys of OPTIONS that are ours, not stalwart.toml's.
DJANGO_KEYS = ("database",)

_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}


def raw_options(alias: str, options: Mapping[str, Any]) -> dict[str, Any]:
    from django.conf import settings

    merged = dict(getattr(settings, "STALWART", None) or {})
    merged.update(options)
    return merged


def build_config(alias: str, options: Mapping[str, Any]) -> tuple[Config, str, bool]:
    """The Config of a backend, the Django database alias it shares, and whether
    ``database_url`` was given (then Stalwart's database is not necessarily Django's)."""
    raw = raw_options(alias, options)
    db_alias = str(raw.pop("database", "default"))
    explicit = "database_url" in raw
    source = f"settings.TASKS[{alias!r}]['OPTIONS']"
    if not explicit:
        raw["database_url"] = django_database_url(db_alias)
    try:
        return parse_config(raw, source=source), db_alias, explicit
    except ConfigError:
        raise


def django_database_url(alias: str) -> str:
    """A Stalwart database URL for Django's database ``alias`` (as its connection's
    settings are now: a test run's test database included)."""
    from django.db import connections

    try:
        conn = connections[alias]
    except Exception as exc:
        raise ConfigError(
            [f"Stalwart: Django has no database {alias!r} (DATABASES): {exc}"]
        ) from exc
    s = conn.settings_dict
    vendor = conn.vendor
    if vendor not in _SCHEMES:
        raise ConfigError(
            [
                f"Stalwart: DATABASES[{alias!r}] is {vendor!r}; Stalwart runs on sqlite, "
                "postgresql and mysql (or give OPTIONS['database_url'])"
            ]
        )
    if vendor == "sqlite":
        name = str(s.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            raise ConfigError(
                [
                    f"Stalwart: DATABASES[{alias!r}] is an in-memory SQLite database, which "
                    "workers in other processes cannot see; use a file (for tests, "
                    "DATABASES[...]['TEST']['NAME'])"
                ]
            )
        return f"sqlite:///{Path(name).resolve()}"
    port = s.get("PORT")
    url = URL.create(
        _SCHEMES[vendor],
        username=s.get("USER") or None,
        password=s.get("PASSWORD") or None,
        host=s.get("HOST") or None,
        port=int(port) if port else None,
        database=s.get("NAME") or None,
    )
    return url.render_as_string(hide_password=False)


def same_database(a: str, b: str) -> bool:
    """Whether two database URLs name the same database (drivers aside)."""
    from sqlalchemy.engine import make_url

    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() != ub.get_backend_name():
        return False
    if ua.get_backend_name() == "sqlite":
        return Path(ua.database or "").resolve() == Path(ub.database or "").resolve()
    return (ua.host or "localhost", ua.port, ua.database) == (
        ub.host or "localhost",
        ub.port,
        ub.database,
    )
