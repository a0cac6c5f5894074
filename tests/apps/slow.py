"""A FastAPI app whose job is still running when the server is told to stop
(tests/test_examples.py): the embedded worker lets it finish."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI

import stalwart
from stalwart.contrib.starlette import lifespan

jobs = stalwart.App(os.environ["STALWART_DATABASE_URL"])


@jobs.task
def slow() -> str:
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        time.sleep(0.05)
    assert stalwart.current_job().shutting_down, "the server was not stopped meanwhile"
    return "finished after the shutdown began"


api = FastAPI(lifespan=lifespan(jobs, threads=1))


@api.post("/slow", status_code=202)
async def enqueue_slow() -> dict[str, int]:
    return {"job_id": (await slow.aenqueue()).id}
