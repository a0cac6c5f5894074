"""How long does a scrape of `/metrics` take with 1,000,000 jobs in the table?

    python benchmarks/metrics_scrape.py --database postgresql://postgres@127.0.0.1/stalwart_metrics_bench

Loads ``--jobs`` jobs in the dashboard benchmark's mix (90% finished over a day, 5%
failed, 2% scheduled, a few running and blocked, the rest ready: see
`dashboard_pages.py`), then serves the probe server of `stalwart start --metrics-port`
(the same handler, database gauges and all) and times ``--repeat`` real HTTP scrapes;
prints the median and the worst. The goal: under 100 ms. The database is emptied first
(``--skip-load`` reuses it).
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

import stalwart
from stalwart.config import Config
from stalwart.observe.probe import ProbeConfig, ProbeServer, bind


def dashboard_loader() -> object:
    spec = importlib.util.spec_from_file_location(
        "dashboard_pages", Path(__file__).with_name("dashboard_pages.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1/stalwart_metrics_bench"
    )
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-load", action="store_true", help="Reuse the loaded database.")
    opts = parser.parse_args()

    app = stalwart.App(config=Config(database_url=opts.database, source="benchmark"))
    app.migrate()
    if not opts.skip_load:
        pages = dashboard_loader()
        app.store.tables_reset()
        print(f"loading {opts.jobs:,} jobs into {app.store.engine.url!r}", file=sys.stderr)
        pages.load(app, opts.jobs)  # type: ignore[attr-defined]
        pages.shape(app, opts.jobs)  # type: ignore[attr-defined]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = ProbeConfig(host="127.0.0.1", metrics_port=port)
    server = ProbeServer(app, bind(config), None, config, name="probe-bench")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    time.sleep(0.5)
    url = f"http://127.0.0.1:{port}/metrics"
    body = urllib.request.urlopen(url, timeout=30).read().decode()  # warm-up
    times = []
    for _ in range(opts.repeat):
        t0 = time.perf_counter()
        urllib.request.urlopen(url, timeout=30).read()
        times.append((time.perf_counter() - t0) * 1000)
    server.stop()
    gauges = [line for line in body.splitlines() if line.startswith("stalwart_queue_jobs")]
    print("\n".join(gauges))
    med = statistics.median(times)
    print(
        f"\n/metrics with {opts.jobs:,} jobs on {app.store.engine.dialect.name}: "
        f"median {med:.1f} ms, max {max(times):.1f} ms over {opts.repeat} scrapes "
        f"(goal: under 100 ms)"
    )


if __name__ == "__main__":
    main()
