"""Stalwart for Django: a `django.tasks` backend, `manage.py stalwart`, the dashboard
signed in with Django's users.

    INSTALLED_APPS += ["stalwart.contrib.django"]
    TASKS = {"default": {"BACKEND": "stalwart.contrib.django.StalwartBackend",
                         "QUEUES": ["default"], "OPTIONS": {}}}

Works with Django 6 (`django.tasks`) and with Django 5.2 and the `django-tasks` backport.
The backend is imported on first use (Django imports this package while it loads apps).
"""

from __future__ import annotations

from typing import Any

__all__ = ["StalwartBackend", "StalwartTask", "stalwart_backend"]


def __getattr__(name: str) -> Any:
    if name in ("StalwartBackend", "StalwartTask"):
        from . import backend

        return getattr(backend, name)
    if name == "stalwart_backend":
        from .lookup import stalwart_backend

        return stalwart_backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
