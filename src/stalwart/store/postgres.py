"""PostgreSQL's fast paths: the same verbs as the generic store, in fewer round trips.

Chosen once, when the store is built (`open_store`), for a database that has writable
CTEs and COPY (PostgreSQL through psycopg 3). Each method here does what the generic
verb of its table module does, and the store conformance suite (`tests/store/`) holds
both to the same behaviour:

- the claim: pick, delete from ready, insert into claimed and read the jobs in ONE
  statement, the SQL written once per kind of queue pattern and sent as it is;
- the completion of plain successes: release the claims and finish the jobs in ONE
  statement, the rows passed as one JSON parameter;
- bulk enqueue by COPY, its text written by hand;
- LISTEN/NOTIFY wake-ups (`notify.py` holds the listening thread);
- VACUUM of the queue tables when dead rows pile up (autovacuum off or lagging).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, text

from . import schema as s
from .capabilities import Capabilities
from .flow import settle
from .generic import Store
from .migrations import QUEUE_TABLES
from .notify import CHANNEL, ReadyListener
from .ready import JOB_FIELDS, claimed_jobs, pattern_kind, pattern_sql, pattern_value
from .records import ClaimedJob, NewJob, Outcome, QueueSelector

log = logging.getLogger("stalwart.store")

# From this many jobs on, enqueue_many writes by COPY instead of INSERT.
COPY_THRESHOLD = 100
# COPY is sent in blocks of this many rows: the server stores one while the next is sent.
COPY_BLOCK = 2000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_JOB_COLUMNS = (
    "id",
    "task_name",
    "queue_name",
    "priority",
    "args",
    "kwargs",
    "context",
    "concurrency_limits",
    "unique_key",
    "scheduled_at",
    "enqueued_at",
    "attempts",
    "crashes",
    "timeout",
    "expires_at",
    "rate_limits",
    "batch_id",
)


class PostgresStore(Store):
    # ---- the claim ----

    def ready_claim(
        self, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        if limit <= 0:
            return []
        claim = partial(self._claim, process_id=process_id, queues=queues, limit=limit)
        # One pattern is one statement: atomic by itself, no BEGIN/COMMIT round trips.
        if len(queues.patterns) == 1:
            rows, now = self.run_statement(claim)
        else:
            rows, now = self.run(claim)
        return claimed_jobs(rows, now)

    def _claim_pattern(
        self,
        conn: Connection,
        pattern: str,
        taken: list[int],
        limit: int,
        process_id: int | None,
        now: datetime,
    ) -> Sequence[Any]:
        params: dict[str, Any] = {
            "limit": limit,
            "pid": process_id,
            "now": now,
            "pattern": pattern_value(pattern),
        }
        if taken:
            params["taken"] = taken
        return conn.exec_driver_sql(claim_sql(pattern_kind(pattern), bool(taken)), params).all()

    def ready_listener(
        self, on_ready: Callable[[str], None], stopping: threading.Event
    ) -> ReadyListener | None:
        """LISTEN on ``listen_url`` if given, else on the store's own URL, unless that
        goes through a transaction pooler: LISTEN needs a session, so workers poll."""
        if self.listen_url is not None:
            return ReadyListener(self.listen_url, on_ready, stopping)
        if self.transaction_pooling:
            log.warning(
                "transaction_pooling is on and listen_url is not set: LISTEN needs a "
                "session, so this worker polls every polling_interval (set listen_url to "
                "a direct PostgreSQL URL to be woken at once)"
            )
            return None
        url = self.engine.url.render_as_string(hide_password=False)
        return ReadyListener(url, on_ready, stopping)

    def notify_ready(self, conn: Connection, queues: Iterable[str]) -> None:
        # Once per queue per transaction, never per row; delivered at commit.
        for queue in sorted(set(queues)):
            conn.execute(text("SELECT pg_notify(:c, :q)"), {"c": CHANNEL, "q": queue})

    # ---- the completion ----

    def claimed_complete(self, process_id: int | None, outcomes: Sequence[Outcome]) -> list[int]:
        plain = all(o.kind == "success" and o.concurrency_limits is None for o in outcomes)
        if not outcomes or not plain:
            return super().claimed_complete(process_id, outcomes)
        if not any(o.workflow for o in outcomes):
            return self.run_statement(partial(self._finish, process_id=process_id, done=outcomes))
        if not self.preserve_finished_jobs:
            return super().claimed_complete(process_id, outcomes)
        # Jobs of batches or with dependents: the same statement, then their bookkeeping,
        # in one transaction.
        return self.run(partial(self._finish_settled, process_id=process_id, done=outcomes))

    def _finish_settled(
        self, conn: Connection, process_id: int | None, done: Sequence[Outcome]
    ) -> list[int]:
        finished = self._finish(conn, process_id, done)
        mine = set(finished)
        ended = [(o.job_id, True) for o in done if o.workflow and o.job_id in mine]
        if ended:
            settle(self, conn, ended, self.clock.now())
        return finished

    def _finish(
        self, conn: Connection, process_id: int | None, done: Sequence[Outcome]
    ) -> list[int]:
        """Release the claims and mark the jobs finished (or delete them): one round trip."""
        owner = "process_id IS NULL" if process_id is None else "process_id = :pid"
        # The ids as one array literal, joined in C: psycopg adapts a list value by
        # value, and that cost more than the rest of the statement's client side.
        taken = (
            f"WITH done AS (DELETE FROM {s.claimed_executions.name}"
            f" WHERE job_id = ANY(CAST(:ids AS bigint[])) AND {owner} RETURNING job_id) "
        )
        params: dict[str, Any] = {
            "ids": array_text([str(o.job_id) for o in done]),
            "pid": process_id,
        }
        jobs = s.jobs.name
        if not self.preserve_finished_jobs:
            sql = taken + f"DELETE FROM {jobs} WHERE id IN (SELECT job_id FROM done) RETURNING id"
        else:
            # The rows as one JSON parameter, encoded in C; times in whole microseconds
            # (encoding a float costs twice an int). Not arrays through unnest: with
            # those the planner joined the rows to the deleted claims in a nested loop
            # and the completion fell behind the workers.
            sql = taken + (
                f"UPDATE {jobs} AS j SET unique_key = NULL,"
                " finished_at = to_timestamp(v.f / 1000000.0::float8) AT TIME ZONE 'UTC',"
                " started_at = to_timestamp(v.s / 1000000.0::float8) AT TIME ZONE 'UTC',"
                " result = v.r, attempts = j.attempts + 1"
                " FROM json_to_recordset(CAST(:rows AS json))"
                " AS v(i bigint, s bigint, f bigint, r text)"
                " JOIN done ON done.job_id = v.i WHERE j.id = v.i RETURNING j.id"
            )
            params["rows"] = json.dumps(
                [
                    {
                        "i": o.job_id,
                        "s": int(o.started_at * 1e6),
                        "f": int(o.finished_at * 1e6),
                        "r": o.result,
                    }
                    for o in done
                ]
            )
        return [row[0] for row in conn.execute(text(sql), params).fetchall()]

    # ---- bulk enqueue ----

    def _insert_plain(self, conn: Connection, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        plain = all(j.concurrency_limits is None for j in jobs)
        # The caller's own connection (Django's, say) may be through another driver.
        can_copy = conn.engine is self.engine or Capabilities.of(conn.dialect).copy_from
        if len(jobs) < COPY_THRESHOLD or not plain or not can_copy:
            return super()._insert_plain(conn, jobs, now)
        return self._copy_jobs(conn, jobs, now)

    def _copy_jobs(self, conn: Connection, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        """Bulk enqueue by COPY: ids drawn from the sequence first, then one COPY per table.

        The rows are written as COPY text by hand, a block at a time: the driver's
        write_row, value by value, cost more than everything else an enqueue does.
        """
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            # The sequence looked up first: in the same statement the lookup runs once
            # per id, and costs five times what nextval does.
            cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (s.jobs.name,))
            sequence = cur.fetchone()[0]
            cur.execute(
                "SELECT nextval(CAST(%s AS regclass)) FROM generate_series(1, %s)",
                (sequence, len(jobs)),
            )
            ids = sorted(int(r[0]) for r in cur.fetchall())
            now_text = now.isoformat()
            block: list[str] = []
            ready_lines: list[str] = []
            scheduled_lines: list[str] = []
            ready_queues: set[str] = set()
            job_columns = ", ".join(_JOB_COLUMNS)
            # Each block of rows is sent as soon as it is written: the server stores
            # one while the next is formatted here (two cores, not one after the other).
            with cur.copy(f"COPY {s.jobs.name} ({job_columns}) FROM STDIN") as copy:
                for job_id, j in zip(ids, jobs, strict=True):
                    queue = copy_text(j.queue_name)
                    at = now_text if j.scheduled_at == now else j.scheduled_at.isoformat()
                    block.append(
                        f"{job_id}\t{copy_text(j.task_name)}\t{queue}\t{j.priority}"
                        f"\t{copy_text(j.args)}\t{copy_text(j.kwargs)}\t{copy_null(j.context)}"
                        f"\t{copy_null(j.concurrency_limits)}\t{copy_null(j.unique_key)}"
                        f"\t{at}\t{now_text}\t0\t0\t{copy_opt(j.timeout)}"
                        f"\t{copy_opt(j.expires_at)}\t{copy_null(j.rate_limits)}"
                        f"\t{copy_null(None if j.batch_id is None else str(j.batch_id))}\n"
                    )
                    if j.scheduled_at <= now:
                        ready_lines.append(f"{job_id}\t{queue}\t{j.priority}\t{now_text}\n")
                        ready_queues.add(j.queue_name)
                    else:
                        scheduled_lines.append(
                            f"{job_id}\t{queue}\t{j.priority}\t{now_text}\t{at}\n"
                        )
                    if len(block) == COPY_BLOCK:
                        copy.write("".join(block))
                        block.clear()
                if block:
                    copy.write("".join(block))
            execution = "job_id, queue_name, priority, created_at"
            if ready_lines:
                self.notify_ready(conn, ready_queues)
                sql = f"COPY {s.ready_executions.name} ({execution}) FROM STDIN"
                _copy(cur, sql, ready_lines)
            if scheduled_lines:
                sql = f"COPY {s.scheduled_executions.name} ({execution}, scheduled_at) FROM STDIN"
                _copy(cur, sql, scheduled_lines)
        return ids

    # ---- upkeep ----

    def queue_tables_vacuum(self, min_dead: int = 10_000) -> list[str]:
        """VACUUM the execution tables that hold more than ``min_dead`` dead rows (and the
        jobs table past that and a fifth of its live rows); return their names. So that
        a server with autovacuum off or lagging still keeps the claim's index scan short.
        Rows a long transaction elsewhere can still see are left for later."""
        # The jobs table gets one dead row per finished job; it is vacuumed once they
        # pass a fifth of its live rows too, so a big history is not scanned each time.
        q = text(
            "SELECT relname FROM pg_stat_user_tables WHERE (relname = ANY(:names)"
            " AND n_dead_tup > :n) OR (relname = :jobs"
            " AND n_dead_tup > GREATEST(:n, n_live_tup / 5))"
        )
        params = {"names": list(QUEUE_TABLES), "n": min_dead, "jobs": s.jobs.name}
        tables = self.run(lambda conn: [str(r) for r in conn.execute(q, params).scalars()])
        for table in tables:
            # VACUUM cannot run in a transaction; it does not block inserts or deletes.
            self.run_statement(partial(_vacuum, table=table))
        return tables


def _vacuum(conn: Connection, *, table: str) -> None:
    conn.execute(text(f"VACUUM {table}"))


@functools.cache
def claim_sql(kind: str, excludes_taken: bool) -> str:
    """The one-statement claim, in the driver's pyformat style. Each step finds its rows
    through ``= ANY(ARRAY(...))``: an index lookup whatever the statistics say. A join
    let a stale estimate (fresh tables, autovacuum off) pick hash joins over full scans
    of ready and jobs on every claim."""
    conditions = pattern_sql(kind, "queue_name", "%(pattern)s")
    if excludes_taken:
        conditions.append("NOT (job_id = ANY(%(taken)s))")
    fields = ", ".join(c.name for c in JOB_FIELDS)
    ready, claimed = s.ready_executions.name, s.claimed_executions.name
    return (
        f"WITH picked AS (SELECT job_id FROM {ready} WHERE {' AND '.join(conditions)}"
        " ORDER BY priority DESC, job_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),"
        f" deleted AS (DELETE FROM {ready}"
        " WHERE job_id = ANY(ARRAY(SELECT job_id FROM picked)) RETURNING job_id),"
        f" inserted AS (INSERT INTO {claimed} (job_id, process_id, created_at)"
        " SELECT job_id, CAST(%(pid)s AS BIGINT), CAST(%(now)s AS TIMESTAMP) FROM deleted"
        " RETURNING job_id)"
        f" SELECT {fields} FROM {s.jobs.name} WHERE id = ANY(ARRAY(SELECT job_id FROM inserted))"
        " ORDER BY priority DESC, id"
    )


def _copy(cur: Any, sql: str, lines: list[str]) -> None:
    with cur.copy(sql) as copy:
        for start in range(0, len(lines), COPY_BLOCK):
            copy.write("".join(lines[start : start + COPY_BLOCK]))


def array_text(elements: list[str]) -> str:
    """An array literal of elements already in its syntax (numbers)."""
    return "{" + ",".join(elements) + "}"


def copy_text(value: str) -> str:
    """A value in COPY's text format: backslash, tab and line breaks escaped."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_null(value: str | None) -> str:
    return "\\N" if value is None else copy_text(value)


def copy_opt(value: float | datetime | None) -> str:
    """A number or a time in COPY's text format (NULL as \\N)."""
    if value is None:
        return "\\N"
    return value.isoformat() if isinstance(value, datetime) else repr(float(value))
