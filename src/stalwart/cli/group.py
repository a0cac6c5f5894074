"""The `stalwart` click group and its global options; the commands register on it
from the other modules of this package.

The global options (``--config``, ``--database``, ``--log-level``, ``--log-format``)
are accepted before the command or after it (`stalwart start --log-level debug`):
every command gets them too, unless it has an option of that name of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .common import Context

__all__ = ["main"]

LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)
FORMATS = click.Choice(["text", "json"], case_sensitive=False)


def _set(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A command's copy of a global option: given there, it sets what the group's would."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        obj = ctx.find_object(Context)
        if value is None or obj is None:
            return
        setattr(obj, field, value)
        if field in ("log_level", "log_format"):
            obj.apply_logging()

    return callback


def _global_options() -> list[click.Option]:
    return [
        click.Option(
            ["--config", "config_path"],
            type=click.Path(dir_okay=False),
            default=None,
            help="Config file (default: ./stalwart.toml or [tool.stalwart] in pyproject.toml).",
        ),
        click.Option(
            ["--database"],
            default=None,
            metavar="URL",
            help="Database URL (overrides the config and $STALWART_DATABASE_URL).",
        ),
        click.Option(
            ["--log-level"],
            type=LEVELS,
            default=None,
            help="Log level (default: WARNING; `start` and `dashboard`: the config's log_level).",
        ),
        click.Option(
            ["--log-format"],
            type=FORMATS,
            default=None,
            help="text, or json: one JSON object per line (default: the config's log_format).",
        ),
    ]


class StalwartCommand(click.Command):
    """A command that also takes the global options after its name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        own = {p.name for p in self.params}
        for option in _global_options():
            if option.name not in own:
                option.expose_value = False
                option.callback = _set(str(option.name))
                self.params.append(option)


class StalwartGroup(click.Group):
    command_class = StalwartCommand
    group_class = type  # subgroups (`jobs`, `queues`, ...) are StalwartGroups too


@click.group(cls=StalwartGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: ./stalwart.toml or [tool.stalwart] in pyproject.toml).",
)
@click.option(
    "--database", default=None, metavar="URL", help="Database URL (overrides the config)."
)
@click.option(
    "--log-level", type=LEVELS, default=None, help="Default WARNING (start: the config's)."
)
@click.option("--log-format", type=FORMATS, default=None, help="text (default) or json.")
@click.version_option(package_name="stalwart")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    database: str | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Stalwart: background jobs stored in your own SQL database."""
    if isinstance(ctx.obj, Context):  # a host (manage.py stalwart) passes its own
        ctx.obj.config_path = config_path or ctx.obj.config_path
        ctx.obj.database = database or ctx.obj.database
        ctx.obj.log_level, ctx.obj.log_format = log_level, log_format
    else:
        ctx.obj = Context(config_path, database, log_level=log_level, log_format=log_format)
    ctx.obj.apply_logging()
