"""CPU per no-op job of one in-process worker (1 thread, prefetch 200) on SQLite:
``resource.getrusage`` around `stalwart.testing.drain`, SQLite's own work included.

    python benchmarks/cpu_per_job.py [--jobs 20000] [--database URL]
    PYTHONPATH=/path/to/older/checkout/src python benchmarks/cpu_per_job.py

CPU time moves much less with the machine's load than wall time: with PYTHONPATH set to
another checkout's src/, it compares two versions of the hot path on a shared machine.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import stalwart
from stalwart import testing
from stalwart.config import Config


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--database", default=None, help="default: a new SQLite file")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/cpu.db"
    app = stalwart.App(config=Config(database_url=url, source="benchmark"))
    app.task(name="noop")(lambda n: None)
    app.migrate()
    app.store.tables_reset()
    app.enqueue_many("noop", [((i,), {}) for i in range(args.jobs)])
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    testing.drain(app, threads=1, prefetch=200)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"{stalwart.__file__}: {cpu / args.jobs * 1e6:.1f} µs CPU and "
        f"{wall / args.jobs * 1e6:.1f} µs wall per job ({args.jobs} jobs)"
    )
    app.close()


if __name__ == "__main__":
    main()
