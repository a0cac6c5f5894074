"""The one ``module:attribute`` importer: the app of the config, a task given on the
command line, a recurring entry's task."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError


def import_attribute(path: str, what: str = "app") -> Any:
    """Import ``module:attribute`` (dots allowed in both), with the current directory
    importable as ``python -m`` has it; ConfigError naming ``what`` and what failed."""
    module_name, _, attr = path.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            [f"{what}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"]
        ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError([f"{what}: module {module_name!r} has no attribute {attr!r}"])
        obj = getattr(obj, part)
    return obj
