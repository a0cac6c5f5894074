"""A client process with a warm pool, for tests/test_reconnect.py.

    python -m tests.apps.reconnect_client URL CALLS FIRST [--no-hangup-check]
        [--transaction-pooling]

Warms its pool (several connections, each verb once), prints ``warm`` and waits for a
line on stdin (the test restarts the database meanwhile); then makes CALLS calls in a
row, cycling enqueue, get_result, cancel_job from the FIRST (0, 1 or 2), and prints one
JSON line: what each call returned or raised.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import stalwart
from stalwart.config import Config
from stalwart.store import open_store
from stalwart.store.engine import make_engine

pooled = "--transaction-pooling" in sys.argv
config = Config(database_url=sys.argv[1], transaction_pooling=pooled, source="reconnect test")
app = stalwart.App(config=config)


@app.task(name="reconnect.noop")
def noop(n: int) -> int:
    return n


def main() -> None:
    calls, first = int(sys.argv[2]), int(sys.argv[3])
    if "--no-hangup-check" in sys.argv:
        # Only the retry in StoreBase.run stands between a stale connection and us.
        kind = type(open_store(app.config.database_url))
        url = app.config.database_url
        engine = make_engine(url, hangup_check=False, transaction_pooling=pooled)
        app._store = kind(engine, transaction_pooling=pooled)
    # Warm: three connections in the pool at once, and every verb once.
    held = [app.store.engine.connect() for _ in range(3)]
    for conn in held:
        conn.exec_driver_sql("SELECT 1")
    for conn in held:
        conn.close()
    warm = noop.enqueue(0)
    app.get_result(warm.id)
    app.cancel_job(warm.id)
    waiting = [noop.enqueue(-1).id]  # so that a first cancel_job has a job to cancel
    print("warm", flush=True)
    sys.stdin.readline()

    out: list[dict[str, Any]] = []
    for n in range(calls):
        verb = ("enqueue", "get_result", "cancel_job")[(first + n) % 3]
        try:
            if verb == "enqueue":
                job_id = noop.enqueue(n).id
                waiting.append(job_id)
                out.append({"verb": verb, "job": job_id})
            elif verb == "get_result":
                job_id = waiting[-1] if waiting else warm.id
                status = app.get_result(job_id).status.value
                out.append({"verb": verb, "job": job_id, "status": status})
            else:
                job_id = waiting.pop() if waiting else noop.enqueue(n).id
                out.append({"verb": verb, "job": job_id, "cancelled": app.cancel_job(job_id)})
        except Exception as exc:
            out.append({"verb": verb, "error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(out), flush=True)
    app.close()


if __name__ == "__main__":
    main()
