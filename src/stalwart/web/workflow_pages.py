"""The dashboard's batch pages: the list of batches, and one batch with its counts,
progress, callbacks and jobs. (The job page's batch, dependencies and progress are
rendered by `pages.job_page`, with `progress_of`.)"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import BatchNotFound
from ..store.statuses import STATUSES
from ..workflows import BatchResult
from .render import error_page, render, settings_of

__all__ = ["batch_page", "batches_page", "progress_of"]

PAGE = 50


def progress_of(raw: str | None) -> dict[str, Any] | None:
    """A job's stored progress with its percentage (None without a total)."""
    if not raw:
        return None
    try:
        p = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(p, dict):
        return None
    done, total = p.get("done"), p.get("total")
    if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
        p["percent"] = max(0.0, min(100.0, 100.0 * done / total))
    else:
        p["percent"] = None
    return p


def percent_done(b: BatchResult) -> float:
    return 100.0 if b.total == 0 else 100.0 * (b.total - b.pending) / b.total


def batches_page(request: Request) -> Response:
    s = settings_of(request)
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 0 < int(raw) <= 10_000:
        return error_page(request, 400, "page must be a whole number from 1 to 10000")
    page = int(raw)
    rows = s.app.store.batches_list(PAGE + 1, (page - 1) * PAGE)
    # The rows' times are naive UTC, as every page shows them.
    batches = [(BatchResult.from_row(r), r) for r in rows[:PAGE]]
    return render(
        request,
        "batches.html",
        batches=[(b, r, percent_done(b)) for b, r in batches],
        page=page,
        more=len(rows) > PAGE,
        refresh=True,
    )


def batch_page(request: Request) -> Response:
    s = settings_of(request)
    batch_id = int(request.path_params["batch_id"])
    try:
        row = s.app.store.batch_get(batch_id)
    except BatchNotFound:
        return error_page(request, 404, f"No batch with id {batch_id}.")
    b = BatchResult.from_row(row)
    jobs = s.app.store.batch_jobs(batch_id, 100)
    return render(
        request,
        "batch.html",
        b=b,
        row=row,
        percent=percent_done(b),
        jobs=[(j, progress_of(j.progress)) for j in jobs],
        statuses=[x.lower() for x in STATUSES],
        refresh=b.finished_at is None,
    )
