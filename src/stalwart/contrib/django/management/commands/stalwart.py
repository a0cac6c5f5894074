"""``python manage.py stalwart ...``: every `stalwart` command with Django set up, its
configuration from the settings (``TASKS[...]['OPTIONS']``) and its tasks discovered in
the installed apps' ``tasks`` modules.

    python manage.py stalwart migrate
    python manage.py stalwart start
    python manage.py stalwart --backend mail jobs list --status failed
    python manage.py stalwart dashboard --port 8080   # signed in with Django's users
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from ...cli_context import run_stalwart


class Command(BaseCommand):
    help = "Run a Stalwart command (start, migrate, check, dashboard, jobs, queues, ...)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("stalwart_args", nargs=argparse.REMAINDER)

    def run_from_argv(self, argv: list[str]) -> None:
        # Every argument is Stalwart's (click parses them, --help included).
        raise SystemExit(run_stalwart(argv[2:], prog_name=f"{argv[0]} {argv[1]}"))

    def handle(self, *args: Any, **options: Any) -> None:
        code = run_stalwart(list(options.get("stalwart_args") or []), prog_name="stalwart")
        if code:
            raise SystemExit(code)
