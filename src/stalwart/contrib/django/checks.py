"""System checks that need the database (``manage.py check --database default``, and
``migrate``): Stalwart's database is reachable (stalwart.E001) and its schema is up to
date (stalwart.W002, a warning: ``--fail-level WARNING`` makes it fail a deploy)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.database)
def stalwart_database(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    from .backend import StalwartBackend
    from .compat import task_backends

    messages: list[Any] = []
    for alias, params in (getattr(settings, "TASKS", {}) or {}).items():
        if not str(params.get("BACKEND", "")).startswith("stalwart.contrib.django"):
            continue
        backend = task_backends[alias]
        if not isinstance(backend, StalwartBackend):
            continue
        if databases is not None and backend.database_alias not in databases:
            continue
        try:
            pending = backend.app.store.pending_migrations()
        except Exception as exc:
            messages.append(
                checks.Error(
                    f"Stalwart (TASKS[{alias!r}]) cannot reach its database: "
                    f"{' '.join(str(getattr(exc, 'orig', exc)).split())}",
                    id="stalwart.E001",
                )
            )
            continue
        if pending:
            messages.append(
                # A warning, so that Django's own `migrate` (which runs these checks) is
                # not stopped by ours.
                checks.Warning(
                    f"Stalwart (TASKS[{alias!r}]) needs migrations {', '.join(pending)}",
                    hint="run `python manage.py stalwart migrate`",
                    id="stalwart.W002",
                )
            )
    return messages
