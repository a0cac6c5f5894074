"""The store's reads for every front end: the dashboard, the command line, the demo and
`stalwart bench` read through these same verbs.

Every read is bounded whatever the size of `stalwart_jobs` (see `bounds`). One module
per thing read:

- `queues`: each queue's counts by status, totals by status (`queues_overview`,
  `status_counts`);
- `jobs`: pages of jobs in one status, filtered (`jobs_page`, `failed_error_classes`);
- `job`: one job's detail and the facts of why it waits (`job_detail`,
  `job_wait_facts`);
- `activity`: a sample of recently finished jobs (`finished_sample`);
- `processes`: the jobs each process holds (`claimed_with_process`);
- `recurring`: recurring tasks with their last run (`recurring_overview`);
- `fleet`: probes for operators' tools: ping, live processes by kind, whether a queue
  was ever used (`database_ping`, `processes_by_kind`, `queue_known`).
"""

from __future__ import annotations

from .activity import ActivityReads, FinishedSample
from .bounds import Estimate
from .fleet import FleetReads
from .job import Claim, JobDetail, JobReads, Semaphore, WaitFacts, limit_keys
from .jobs import JobFilter, JobListReads, JobListRow, JobsPage
from .processes import LiveProcess, ProcessReads
from .queues import QueueReads, QueueStats
from .recurring import RecurringReads, RecurringRow

__all__ = [
    "Claim",
    "Estimate",
    "FinishedSample",
    "JobDetail",
    "JobFilter",
    "JobListRow",
    "JobsPage",
    "LiveProcess",
    "QueueStats",
    "Reads",
    "RecurringRow",
    "Semaphore",
    "WaitFacts",
    "limit_keys",
]


class Reads(
    QueueReads, JobListReads, JobReads, ActivityReads, ProcessReads, RecurringReads, FleetReads
):
    """The read verbs, as one mixin of `Store`."""
