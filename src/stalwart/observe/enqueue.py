"""What `App.enqueue` reports: the PRODUCER span and trace context of its jobs (when
tracing is on), and the enqueued counter (when metrics are on). With both off,
`sending` hands back one shared do-nothing object."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from . import hub
from .tracing import tracer, with_carrier

if TYPE_CHECKING:
    from .metrics import Metrics
    from .otel import Otel

__all__ = ["Sending", "count_enqueued", "sending"]


class Sending:
    """One enqueue call as the observers see it."""

    def context(self, captured: str | None) -> str | None:
        """The captured context to store with the jobs (the trace context added)."""
        return captured

    def sent(self, ids: Sequence[int]) -> None:
        """The jobs are written (in the caller's transaction, if it gave one)."""


_NOTHING: AbstractContextManager[Sending] = nullcontext(Sending())


class _Observed(Sending):
    def __init__(
        self,
        otel: Otel | None,
        span: Any,
        carrier: dict[str, str],
        metrics: Metrics | None,
        queue: str,
        task: str,
    ) -> None:
        self.otel, self.span, self.carrier, self.metrics = otel, span, carrier, metrics
        self.queue, self.task = queue, task

    def context(self, captured: str | None) -> str | None:
        return with_carrier(captured, self.carrier)

    def sent(self, ids: Sequence[int]) -> None:
        if self.otel is not None:
            self.otel.sent(self.span, ids)
        if self.metrics is not None:
            self.metrics.enqueued(self.queue, self.task, len(ids))


def sending(queue: str, task: str, count: int = 1) -> AbstractContextManager[Sending]:
    otel, metrics = tracer(), hub.metrics()
    if otel is None and metrics is None:
        return _NOTHING
    return _observed(otel, metrics, queue, task, count)


@contextmanager
def _observed(
    otel: Otel | None, metrics: Metrics | None, queue: str, task: str, count: int
) -> Iterator[Sending]:
    if otel is None:
        yield _Observed(None, None, {}, metrics, queue, task)
        return
    with otel.send(queue, task, count) as (span, carrier):
        yield _Observed(otel, span, carrier, metrics, queue, task)


def count_enqueued(queue: str, task: str, n: int = 1) -> None:
    """Jobs enqueued outside `App.enqueue` (recurring runs)."""
    metrics = hub.metrics()
    if metrics is not None:
        metrics.enqueued(queue, task, n)
