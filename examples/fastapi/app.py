"""A FastAPI app with a Stalwart worker embedded in the web process.

    pip install 'stalwart[web]' fastapi
    STALWART_DATABASE_URL=sqlite:///fastapi-demo.db stalwart migrate
    STALWART_DATABASE_URL=sqlite:///fastapi-demo.db uvicorn app:api

POST /signups {"email": ...} enqueues a welcome job; GET /jobs/{id} shows it. The
worker and dispatcher run in threads of the uvicorn process, started and stopped with
its lifespan (graceful: a running job gets shutdown_timeout to finish).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import stalwart
from stalwart.contrib.starlette import CurrentMiddleware, lifespan

jobs = stalwart.App(os.environ.get("STALWART_DATABASE_URL"))


class Current(stalwart.CurrentAttributes):
    client_ip: str | None = None


@jobs.task(queue_name="mail", retry=stalwart.Retry(attempts=3, base=0.5))
def send_welcome(email: str) -> dict[str, str]:
    # A real app would send mail here. The request's client IP travelled with the job.
    return {"sent_to": email, "requested_from": Current.client_ip or "unknown"}


api = FastAPI(lifespan=lifespan(jobs, queues=["mail"], threads=2))
api.add_middleware(CurrentMiddleware)


class Signup(BaseModel):
    email: str


@api.post("/signups", status_code=202)
async def signup(body: Signup) -> dict[str, object]:
    job = await send_welcome.aenqueue(body.email)
    return {"job_id": job.id, "status": job.status}


@api.get("/jobs/{job_id}")
async def job(job_id: int) -> dict[str, object]:
    try:
        result = jobs.get_result(job_id)
    except stalwart.JobNotFound:
        raise HTTPException(404, f"no job {job_id}") from None
    return {"status": result.status, "return_value": result.return_value}
