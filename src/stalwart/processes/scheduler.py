"""The scheduler's slot in the supervisor (recurring tasks fill it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..app import App
    from .supervisor import Slot


def scheduler_slot(app: App) -> Slot | None:
    """The scheduler runs only where recurring tasks are configured."""
    if app.config.recurring:
        raise ConfigError(
            [
                f"{app.config.source}: recurring: recurring tasks are not supported by this "
                "version yet; remove the [recurring.*] tables"
            ]
        )
    return None
