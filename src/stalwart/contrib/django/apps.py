"""The Django app: ``INSTALLED_APPS += ["stalwart.contrib.django"]`` (label ``stalwart``)."""

from __future__ import annotations

from django.apps import AppConfig


class StalwartConfig(AppConfig):
    name = "stalwart.contrib.django"
    label = "stalwart"
    verbose_name = "Stalwart"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the database checks)
