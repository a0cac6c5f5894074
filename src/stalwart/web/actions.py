"""The dashboard's actions: POST only, for principals who may act, after the CSRF
checks; each one is written to the audit log and redirects to a page saying what it
did."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..names import check_queue_name, is_job_id
from ..store import FailedFilter
from . import csrf
from .client_ip import client_ip_from_scope
from .render import can_act, error_page, path_for, principal_of, settings_of

__all__ = ["job_action", "jobs_bulk", "queue_action", "recurring_run"]


class Form:
    """A URL-encoded form (all the dashboard's forms are: no multipart parser needed)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])


async def _checked_form(request: Request) -> Form | Response:
    """The form of an action request, or the response refusing it."""
    if not can_act(request):
        return error_page(request, 403, "Your role is read-only: you cannot change anything.")
    problem = csrf.origin_problem(request)
    if problem is None:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # Only URL-encoded forms are read; anything else carries no token (so: 403).
        raw = await request.body() if ctype == "application/x-www-form-urlencoded" else b""
        body = raw.decode("utf-8", "replace")
        try:
            form = Form(parse_qs(body, keep_blank_values=True, max_num_fields=2000))
        except ValueError:
            return error_page(request, 400, "Too many form fields.")
        problem = csrf.token_problem(request, form.get(csrf.FIELD))
        if problem is None:
            return form
    return error_page(request, 403, f"Refused: {problem}.")


def form_action(
    handler: Callable[[Request, Form], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """An action endpoint: ``handler`` runs with the form only once `_checked_form` let
    the request through."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        checked = await _checked_form(request)
        if isinstance(checked, Response):
            return checked
        return await handler(request, checked)

    return endpoint


def _audit(
    request: Request,
    action: str,
    *,
    target: str | None = None,
    job_ids: Sequence[int] = (),
    affected: int = 0,
) -> None:
    settings_of(request).app.store.audit_record(
        actor=principal_of(request).name,
        client_ip=client_ip_from_scope(request.scope),
        action=action,
        target=target,
        job_ids=job_ids,
        affected=affected,
    )


def _redirect(request: Request, name: str, query: Mapping[str, Any], **params: Any) -> Response:
    return RedirectResponse(path_for(request, name, query, **params), 303)


@form_action
async def job_action(request: Request, form: Form) -> Response:
    s = settings_of(request)
    job_id = int(request.path_params["job_id"])
    if not is_job_id(job_id):
        return error_page(request, 404, f"No job with id {job_id}.")
    action = request.path_params["action"]
    store = s.app.store
    if action == "retry":
        n = await run_in_threadpool(store.failed_retry, FailedFilter([job_id]))
        await run_in_threadpool(_audit, request, "retry", job_ids=[job_id], affected=n)
        return _redirect(request, "job", {"notice": "retried", "n": n}, job_id=job_id)
    if action == "discard":
        n = await run_in_threadpool(store.failed_discard, FailedFilter([job_id]))
        await run_in_threadpool(_audit, request, "discard", job_ids=[job_id], affected=n)
        return _redirect(request, "jobs", {"status": "failed", "notice": "discarded", "n": n})
    if action == "cancel":
        done = bool(await run_in_threadpool(s.app.cancel_job, job_id))
        await run_in_threadpool(
            _audit, request, "cancel", job_ids=[job_id], affected=1 if done else 0
        )
        notice = "cancelled" if done else "not_cancelled"
        return _redirect(request, "job", {"notice": notice}, job_id=job_id)
    return error_page(request, 404, f"Unknown action {action!r}.")


@form_action
async def jobs_bulk(request: Request, form: Form) -> Response:
    s = settings_of(request)
    action = form.get("action")
    if action not in ("retry", "discard"):
        return error_page(request, 400, "action must be retry or discard")
    scope = form.get("scope", "selected")
    back: dict[str, Any] = {"status": "failed"}
    if scope == "matching":
        # Every failed job matching the list's filters (the ones FailedFilter knows).
        fields = {k: form.get(k) for k in ("queue", "task", "error_class")}
        clean = {k: v.strip() for k, v in fields.items() if v and v.strip()}
        if any(len(v) > 255 for v in clean.values()):
            return error_page(request, 400, "filter values are at most 255 characters")
        which = FailedFilter(
            None,
            queue_name=clean.get("queue"),
            task_name=clean.get("task"),
            error_class=clean.get("error_class"),
        )
        target = "failed jobs where " + (
            ", ".join(f"{k}={v!r}" for k, v in sorted(clean.items())) or "all"
        )
        ids: list[int] = []
        back.update(clean)
    elif scope == "selected":
        raw = form.getlist("job_id")
        ok = all(len(x) <= 19 and x.isdigit() and is_job_id(int(x)) for x in raw)
        if not ok or len(raw) > 1000:
            return error_page(request, 400, "job_id must be up to 1000 job ids")
        ids = sorted({int(x) for x in raw})
        if not ids:
            return _redirect(request, "jobs", {**back, "notice": "nothing"})
        which, target = FailedFilter(ids), None
    else:
        return error_page(request, 400, "scope must be selected or matching")
    verb = s.app.store.failed_retry if action == "retry" else s.app.store.failed_discard
    n = await run_in_threadpool(verb, which)
    await run_in_threadpool(
        _audit, request, f"bulk_{action}", target=target, job_ids=ids, affected=n
    )
    notice = "retried" if action == "retry" else "discarded"
    return _redirect(request, "jobs", {**back, "notice": notice, "n": n})


@form_action
async def queue_action(request: Request, form: Form) -> Response:
    s = settings_of(request)
    action = request.path_params["action"]
    try:
        queue = check_queue_name(request.path_params["queue"])
    except ValueError as exc:
        return error_page(request, 400, str(exc))
    if action not in ("pause", "resume"):
        return error_page(request, 404, f"Unknown action {action!r}.")
    verb = s.app.store.queue_pause if action == "pause" else s.app.store.queue_resume
    changed = bool(await run_in_threadpool(verb, queue))
    await run_in_threadpool(_audit, request, action, target=queue, affected=int(changed))
    return _redirect(request, "overview", {"notice": "paused" if action == "pause" else "resumed"})


@form_action
async def recurring_run(request: Request, form: Form) -> Response:
    s = settings_of(request)
    key = request.path_params["key"]
    try:
        job = await run_in_threadpool(s.app.recurring.run_now, key)
    except LookupError as exc:
        return error_page(request, 404, f"No recurring task {key!r}: {exc}")
    await run_in_threadpool(
        _audit, request, "run_recurring", target=key, job_ids=[job.id], affected=1
    )
    return _redirect(request, "recurring", {"notice": "ran"})
