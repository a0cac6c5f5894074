"""What `App.enqueue_many` returns: the stored jobs, their results made when read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, overload

from .results import JobResult
from .store import NewJob

Call = tuple[Sequence[Any], Mapping[str, Any]]


class ResultMaker(Protocol):
    def _enqueued_result(
        self,
        job_id: int,
        job: NewJob,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        now: datetime,
    ) -> JobResult: ...


class EnqueuedJobs(Sequence[JobResult]):
    """The jobs `enqueue_many` stored, in order: ``ids``, or a `JobResult` per item.

    Results are made when read, so enqueueing 100,000 jobs does not build 100,000
    objects nobody looks at.
    """

    def __init__(
        self, app: ResultMaker, ids: list[int], jobs: list[NewJob], calls: list[Call], now: datetime
    ) -> None:
        self.ids = ids
        self._app, self._jobs, self._calls, self._now = app, jobs, calls, now

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> JobResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[JobResult]: ...

    def __getitem__(self, index: int | slice) -> JobResult | list[JobResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        args, kwargs = self._calls[index]
        return self._app._enqueued_result(
            self.ids[index], self._jobs[index], args, kwargs, self._now
        )
