from django.apps import AppConfig


class SuiteConfig(AppConfig):
    name = "tests.django_suite"
    label = "django_suite"
    default_auto_field = "django.db.models.AutoField"
