"""A small shop: orders confirmed by a job (tests/django_suite/test_project.py)."""

from tests.django_suite.dbs import django_database

SECRET_KEY = "stalwart-e2e-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "stalwart.contrib.django",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "shopsite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": django_database()}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/admin/login/"
STATIC_URL = "/static/"
TASKS = {
    "default": {
        "BACKEND": "stalwart.contrib.django.StalwartBackend",
        "QUEUES": ["default", "mail"],
        "OPTIONS": {
            "workers": [{"queues": ["*"], "threads": 2, "polling_interval": 0.05}],
            "dispatchers": [{"polling_interval": 0.2}],
            "shutdown_timeout": "5s",
        },
    }
}
