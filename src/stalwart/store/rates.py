"""SQL of `stalwart_rate_limits` and `stalwart_throttled_executions`: start rates.

A rate lets at most ``limit`` jobs of a key start in any window of ``per`` seconds,
across every worker and host. The count is taken at the start itself (`rate_acquire`,
called by the worker right before it runs a job with rates): the key's row holds the
recent start times and is locked for the moment of the decision, so starts of one key
are ordered and starts of other keys never wait on it. A job over a rate leaves claimed
for its key's line (`throttled_executions`), in priority then FIFO order; the
dispatcher lets the head of a line go back to ready as starts free (`throttled_release`),
and a job newer than the line's head joins the line even when a start is free, so the
line keeps its order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, and_, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from . import schema as s
from .base import StoreBase, from_epoch, to_epoch
from .flow import Placer, settle
from .semaphores import Waiting, make_ready

rl = s.rate_limits
th = s.throttled_executions


@dataclass(frozen=True, slots=True)
class RateDenied:
    """A start refused: the job joins the line of ``key`` until ``due_at``."""

    key: str
    due_at: datetime


def parse_rates(text: str | None) -> list[dict[str, Any]]:
    return json.loads(text) if text else []


def _starts(conn: Connection, key: str, now: datetime) -> list[float]:
    """The key's recorded start times, its row locked for this transaction."""
    for _ in range(3):
        row = conn.execute(select(rl.c.starts).where(rl.c.key == key).with_for_update()).first()
        if row is not None:
            return [float(t) for t in json.loads(row[0])]
        try:
            with conn.begin_nested():  # another worker may create the row at the same time
                conn.execute(insert(rl).values(key=key, starts="[]", updated_at=now))
        except IntegrityError:
            continue
    raise RuntimeError(f"could not create the rate row of {key!r}")


def _in_window(starts: list[float], at: float, per: float) -> list[float]:
    # Starts later than ``at`` (another host's clock ahead) count too: conservative.
    return sorted(t for t in starts if t > at - per)


def _line_ahead(conn: Connection, key: str, job_id: int, priority: int) -> bool:
    """Whether jobs older (or of higher priority) than ``job_id`` wait in the key's line."""
    ahead = or_(th.c.priority > priority, and_(th.c.priority == priority, th.c.job_id < job_id))
    q = select(exists(select(th.c.job_id).where(th.c.rate_key == key, ahead)))
    return bool(conn.execute(q).scalar())


class RatesStore(StoreBase):
    def rate_acquire(
        self, job_id: int, priority: int, rates_text: str, at: float
    ) -> RateDenied | None:
        """Take one start of every rate of the job at ``at`` (epoch seconds), or none:
        None when the job may start now, else which line it joins and until when."""
        rates = sorted(parse_rates(rates_text), key=lambda r: str(r["key"]))
        return self.run(lambda conn: self._acquire(conn, job_id, priority, rates, at))

    def _acquire(
        self, conn: Connection, job_id: int, priority: int, rates: list[dict[str, Any]], at: float
    ) -> RateDenied | None:
        now = self.clock.now()
        granted: list[tuple[str, list[float]]] = []
        denied: list[RateDenied] = []
        for rate in rates:
            key, limit, per = str(rate["key"]), int(rate["limit"]), float(rate["per"])
            starts = _in_window(_starts(conn, key, now), at, per)
            if len(starts) >= limit:
                free_at = starts[len(starts) - limit] + per
                denied.append(RateDenied(key, from_epoch(free_at)))
            elif _line_ahead(conn, key, job_id, priority):
                denied.append(RateDenied(key, from_epoch(at)))
            else:
                granted.append((key, [*starts, at]))
        if denied:
            return max(denied, key=lambda d: d.due_at)
        for key, starts in granted:
            conn.execute(
                update(rl).where(rl.c.key == key).values(starts=json.dumps(starts), updated_at=now)
            )
        return None

    def throttled_release(self, batch_size: int = 100) -> int:
        """Let the heads of due lines go back to ready, as many as their rate has starts
        free now; push the rest's next look to when the next start frees."""
        now = self.clock.now()
        keys_q = (
            select(th.c.rate_key)
            .where(th.c.due_at <= now)
            .group_by(th.c.rate_key)
            .limit(batch_size)
        )
        keys = self.run(lambda conn: [str(k) for k in conn.execute(keys_q).scalars()])
        released = 0
        for key in keys:
            released += self.run(partial(self._release_line, key=key, now=now))
        return released

    def _release_line(self, conn: Connection, *, key: str, now: datetime) -> int:
        head = conn.execute(
            select(th.c.job_id, s.jobs.c.rate_limits)
            .select_from(th.join(s.jobs, s.jobs.c.id == th.c.job_id))
            .where(th.c.rate_key == key)
            .order_by(th.c.priority.desc(), th.c.job_id)
            .limit(1)
        ).first()
        if head is None:
            return 0
        rate = next((r for r in parse_rates(head[1]) if r["key"] == key), None)
        at = to_epoch(now)
        if rate is None:  # the job no longer names this rate: let it go
            limit, per, starts = 1, 0.0, []
        else:
            limit, per = int(rate["limit"]), float(rate["per"])
            starts = _in_window(_starts(conn, key, now), at, per)
        free = max(0, limit - len(starts))
        line = (
            conn.execute(
                select(th.c.job_id, th.c.queue_name, th.c.priority, s.jobs.c.concurrency_limits)
                .select_from(th.join(s.jobs, s.jobs.c.id == th.c.job_id))
                .where(th.c.rate_key == key)
                .order_by(th.c.priority.desc(), th.c.job_id)
                .limit(free)
            ).all()
            if free
            else []
        )
        if line:
            ids = [int(r[0]) for r in line]
            conn.execute(delete(th).where(th.c.job_id.in_(ids)))
            lets = [Waiting(int(r[0]), r[1], int(r[2]), r[3]) for r in line]
            if discarded := make_ready(conn, lets, now):
                settle(cast(Placer, self), conn, [(i, False) for i in discarded], now)
            self.notify_ready(conn, {r[1] for r in line})
        # The rest look again when the next start frees (all taken), or after about one
        # start's time (the heads just let go have not started yet).
        if free == 0:
            nxt = from_epoch(starts[len(starts) - limit] + per)
        else:
            nxt = now + timedelta(seconds=max(0.01, per / limit))
        conn.execute(update(th).where(th.c.rate_key == key, th.c.due_at <= now).values(due_at=nxt))
        return len(line)
