"""What becomes of the jobs of a process that died: its supervisor knows (waitpid), or
anyone finds its heartbeat stale (pruning, on any host).

The blame is exact where it can be (`StoreProtocol.claimed_recover`): jobs held but
not started go back charged nothing; a job that ran alone is charged the crash; jobs
that ran beside others are suspects, each to run alone before anything is charged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from ..errors import DatabaseUnavailable, ProcessExited, ProcessPruned, error_record
from ..observe.attempts import crashed
from ..store import StoreProtocol

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.supervisor")


class CrashRecovery:
    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def store(self) -> StoreProtocol:
        return self.app.store

    def child_gone(self, name: str, pid: int, code: int, running: Sequence[int] | None) -> int:
        """A child of ours is gone; ``running``: what it ran when it died (its board).
        Returns how many suspects its death made."""
        try:
            row = self.store.process_by_name(name)
            if row is None:
                return 0
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            error = ProcessExited(f"process {name} (pid {pid}) {how}")
            return self.recover(row.id, error, running)
        except DatabaseUnavailable as exc:
            # Its row stays; pruning finds it once its heartbeat is stale.
            log.warning("could not recover jobs of %s now: %s", name, exc)
            return 0

    def recover(self, process_id: int, error: Exception, running: Sequence[int] | None) -> int:
        record = error_record(error, "")
        done = self.store.claimed_recover(process_id, record, self.should_retry, running)
        crashed(done, record)  # log lines and counters of the crashes charged
        if done.retried or done.failed or done.suspects:
            log.warning(
                "jobs of a dead process (%s): %d handed back unstarted, %d charged a crash "
                "and to run again alone, %d failed (no crash left), %d suspect(s) to run alone",
                type(error).__name__,
                len(done.handed_back),
                len(done.retried),
                len(done.failed),
                len(done.suspects),
            )
        return len(done.suspects) + len(done.retried)

    def should_retry(self, task_name: str, crashes: int) -> bool:
        task = self.app.tasks.get(task_name)
        on_crash = task.options.on_crash if task else "retry"
        max_crashes = task.options.max_crashes if task else self.app.config.max_crashes
        # The poison guard: a job that kills its process every time ends up failed.
        return on_crash == "retry" and crashes < max_crashes

    def prune(self, skip_ids: set[int | None], skip_names: set[str]) -> int:
        """Recover the jobs of processes anywhere whose heartbeat is stale; returns how
        many suspects that made."""
        made = 0
        try:
            threshold = timedelta(seconds=self.app.config.alive_threshold)
            for row in self.store.processes_stale(threshold):
                if row.id in skip_ids or row.name in skip_names:
                    continue
                log.warning(
                    "pruning %s %s (pid %d on %s): no heartbeat since %s",
                    row.kind,
                    row.name,
                    row.pid,
                    row.hostname,
                    row.last_heartbeat_at,
                )
                error = ProcessPruned(
                    f"process {row.name} (pid {row.pid} on {row.hostname}) stopped "
                    f"heartbeating; last heartbeat {row.last_heartbeat_at} UTC"
                )
                # From afar nobody knows which of its jobs were running.
                made += self.recover(row.id, error, None)
        except DatabaseUnavailable as exc:
            log.warning("could not prune dead processes now: %s", exc)
        return made
