"""Finding the configured `StalwartBackend`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from ...errors import ConfigError

if TYPE_CHECKING:
    from .backend import StalwartBackend


def stalwart_backend(alias: str | None = None) -> StalwartBackend:
    """The backend of ``settings.TASKS[alias]``; without an alias, ``"default"`` if it is
    Stalwart's, else the first Stalwart backend configured."""
    from .backend import StalwartBackend
    from .compat import task_backends

    tasks = getattr(settings, "TASKS", {}) or {}
    if alias is None:
        ours = [
            name
            for name, params in tasks.items()
            if str(params.get("BACKEND", "")).startswith("stalwart.contrib.django")
        ]
        if not ours:
            raise ConfigError(
                [
                    "settings.TASKS has no backend 'stalwart.contrib.django.StalwartBackend' "
                    "(TASKS = {'default': {'BACKEND': "
                    "'stalwart.contrib.django.StalwartBackend'}})"
                ]
            )
        alias = "default" if "default" in ours else ours[0]
    backend = task_backends[alias]
    if not isinstance(backend, StalwartBackend):
        raise ConfigError([f"settings.TASKS[{alias!r}] is not a StalwartBackend"])
    return backend
