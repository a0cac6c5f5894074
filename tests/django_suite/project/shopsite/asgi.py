"""ASGI: Django, with the Stalwart dashboard mounted at /jobs (Django sign-in)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
django_app = get_asgi_application()

from stalwart.contrib.django.dashboard import mount_dashboard  # noqa: E402

application = mount_dashboard(django_app, "/jobs")
