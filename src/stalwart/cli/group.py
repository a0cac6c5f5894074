"""The `stalwart` click group and its global options; the commands register on it
from the other modules of this package."""

from __future__ import annotations

import logging

import click

from .common import Context, config_option, database_option

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option("Config file (default: ./stalwart.toml or [tool.stalwart] in pyproject.toml).")
@database_option("Database URL (overrides the config and $STALWART_DATABASE_URL).")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.version_option(package_name="stalwart")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, database: str | None, log_level: str) -> None:
    """Stalwart: background jobs stored in your own SQL database."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not isinstance(ctx.obj, Context):  # a host (manage.py stalwart) may pass its own
        ctx.obj = Context(config_path, database)
