"""`manage.py stalwart`: the `stalwart` command line with its configuration, app and
dashboard sign-in taken from Django."""

from __future__ import annotations

from typing import Any

from ...cli.common import Context
from ...errors import ConfigError
from .lookup import stalwart_backend


class DjangoContext(Context):
    """The CLI's context for a `StalwartBackend`: config from the settings, the
    backend's app, Django's users for the dashboard."""

    def __init__(self, alias: str | None) -> None:
        super().__init__(None, None)
        self.backend = stalwart_backend(alias)
        self._config = self.backend.app.config

    @property
    def config(self) -> Any:
        return self.backend.app.config

    def app(self) -> Any:
        return self.backend.app

    def dashboard_auth(self) -> Any:
        from .dashboard import DjangoAuth

        return DjangoAuth()


def run_stalwart(args: list[str], prog_name: str) -> int:
    """Run the `stalwart` command line on ``args``; the exit code."""
    from django.db import connections
    from django.utils.module_loading import autodiscover_modules

    from ...cli import main
    from ...cli.common import err

    alias = None
    if args[:1] == ["--backend"] and len(args) > 1:
        alias, args = args[1], args[2:]
    elif args[:1] and args[0].startswith("--backend="):
        alias, args = args[0].split("=", 1)[1], args[1:]
    if any(a in ("--config", "--database") for a in args[:1]):
        err.print(
            "stalwart: under manage.py the configuration is Django's settings "
            "(TASKS[...]['OPTIONS']); --config and --database are not taken"
        )
        return 2
    try:
        autodiscover_modules("tasks")
        context = DjangoContext(alias)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"config error: {problem}", highlight=False, soft_wrap=True)
        return 2
    # Nothing of this process's Django connections goes into the supervisor's children.
    connections.close_all()
    try:
        main.main(args=args, prog_name=prog_name, obj=context, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
