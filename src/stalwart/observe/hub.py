"""The process-wide switches of observability.

Metrics are counted only in a process that turned them on (`enable_metrics`): the
supervisor of `stalwart start --metrics-port` does so before it forks, so its workers
count too; an application process (a web server that enqueues) may call it to get
Stalwart's counters on prometheus-client's default registry. Until then every call
into `metrics()` finds None and the hot path does nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["enable_metrics", "metrics", "metrics_enabled"]

_metrics: Metrics | None = None


def metrics() -> Metrics | None:
    """The metrics of this process, or None while they are off."""
    return _metrics


def metrics_enabled() -> bool:
    return _metrics is not None


def enable_metrics(multiprocess_dir: str | None = None) -> Metrics:
    """Count Stalwart's metrics in this process (prometheus-client must be installed:
    ``pip install 'stalwart[metrics]'``).

    ``multiprocess_dir``: prometheus-client's multiprocess mode, for a process that
    forks workers (`stalwart start` passes its own directory): every process writes its
    counts there and a scrape sums them, those of dead processes included.
    """
    global _metrics
    if _metrics is not None:
        return _metrics
    if multiprocess_dir is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    try:
        from . import metrics as module
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise RuntimeError(
            "metrics need prometheus-client: pip install 'stalwart[metrics]'"
        ) from exc
    _metrics = module.Metrics(multiprocess=multiprocess_dir is not None)
    return _metrics
