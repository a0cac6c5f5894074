"""Settings of the ported Django task tests (tests/django_suite)."""

from __future__ import annotations

from tests.django_suite.dbs import django_database

SECRET_KEY = "stalwart-tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "stalwart.contrib.django",
    "tests.django_suite",
]
DATABASES = {"default": django_database()}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TASKS = {
    "default": {
        "BACKEND": "stalwart.contrib.django.StalwartBackend",
        "QUEUES": ["default", "queue_1"],
    }
}
