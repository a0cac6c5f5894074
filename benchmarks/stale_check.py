"""What checking pooled connections on checkout costs: µs per `enqueue`, per
`get_result` and per checkout alone, one thread, with no check, with Stalwart's hang-up
check (one poll() of the socket, the default) and with SQLAlchemy's ``pool_pre_ping``
(a round trip).

    python benchmarks/stale_check.py [--calls 2000] [--repeat 5]
        [--postgres URL] [--mysql URL]

The three modes are interleaved, each run is ``--calls`` calls of each verb; the
median of ``--repeat`` runs is printed per database, mode and verb.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import stalwart
from stalwart.config import Config
from stalwart.store import open_store
from stalwart.store.engine import make_engine

MODES = {
    "none": {"hangup_check": False},
    "hangup check": {},
    "pool_pre_ping": {"hangup_check": False, "pool_pre_ping": True},
}


def app_for(url: str, options: dict[str, Any]) -> stalwart.App:
    app = stalwart.App(config=Config(database_url=url, source="bench"))
    kind = type(open_store(url))
    app._store = kind(make_engine(url, **options))
    return app


def one_run(url: str, options: dict[str, Any], calls: int) -> tuple[float, float, float]:
    """µs per enqueue, per get_result, and per checkout alone (connect() and close()
    of a pooled connection: where the check is paid)."""
    app = app_for(url, options)
    task = app.task(name="bench.noop")(lambda: None)
    task.enqueue()  # connect and warm outside the timing
    start = time.perf_counter()
    ids = [task.enqueue().id for _ in range(calls)]
    enqueue = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for job_id in ids:
        app.get_result(job_id)
    get = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for _ in range(calls):
        app.store.engine.connect().close()
    checkout = (time.perf_counter() - start) / calls * 1e6
    app.store.tables_reset()
    app.close()
    return enqueue, get, checkout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/stalwart_bench")
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306/stalwart_bench")
    args = parser.parse_args()
    print("| database | checkout check | µs per enqueue | µs per get_result | µs per checkout |")
    print("|---|---|---:|---:|---:|")
    for name, url in (("PostgreSQL", args.postgres), ("MariaDB", args.mysql)):
        migrating = open_store(url)
        migrating.migrate()
        migrating.tables_reset()
        migrating.dispose()
        runs: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):
            for mode, options in MODES.items():
                runs[mode].append(one_run(url, dict(options), args.calls))
        for mode, got in runs.items():
            enqueue, get, checkout = (statistics.median(r[i] for r in got) for i in range(3))
            print(f"| {name} | {mode} | {enqueue:.0f} | {get:.0f} | {checkout:.1f} |", flush=True)


if __name__ == "__main__":
    main()
