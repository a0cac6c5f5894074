"""The `stalwart` command (entry point `stalwart.cli:main`).

- `group`: the click group and its global options;
- `common`: the context, shared options, error handling and exit codes, output;
- `admin` (migrate, check, enqueue), `jobs`, `batches`, `queues`, `recurring`: admin
  commands;
- `serve`: `start` and `dashboard`;
- `tools`: `demo` and `bench`.

Exit codes: 0 ok, 1 runtime failure (including an unreachable database), 2 usage or
configuration error.
"""

from __future__ import annotations

from ..collector import paused

with paused():  # see collector.py: start-up
    # Importing the command modules registers their commands on `main`.
    from . import admin, batches, jobs, queues, recurring, serve, tools  # noqa: F401
    from .group import main

__all__ = ["main"]
