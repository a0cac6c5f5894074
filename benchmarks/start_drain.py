"""What a user gets out of the box: `stalwart start --drain` with a config that sets only
`processes`, timed as a user would time it, next to a tuned pgqueuer in the same run.

For each database URL given, N no-op jobs are enqueued (``enqueue_many``), then
``stalwart start --drain`` runs as a real command in a fresh interpreter on a config
written to a temporary directory (``[[workers]] processes = P`` and whatever ``--set``
adds). Two figures per run:

- **wall/s**: N / the command's whole wall time (imports, fork, registration, drain,
  drain detection, shutdown);
- **drain/s**: N / (last job finished - first job finished), from the jobs table: the
  steady rate, without start-up and shut-down.

``--startup`` instead times a 100-job ``start --drain`` (median of R runs) and splits it:
interpreter + imports, first job finished, command exit.

    python benchmarks/start_drain.py --jobs 200000 --pgqueuer
    python benchmarks/start_drain.py --set prefetch=0 --set threads=5   # the old defaults
    python benchmarks/start_drain.py --startup --repeat 5
    STALWART_SRC=/path/to/older/checkout/src python benchmarks/start_drain.py ...

The command runs as ``python -c "from stalwart.cli import main; main()"`` (what the
``stalwart`` script does), with ``$STALWART_SRC`` first on the path when set.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import stalwart
from stalwart.config import Config

HERE = Path(__file__).resolve().parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/stalwart_bench"

TASKS = """
import stalwart
app = stalwart.App()

@app.task(name="noop")
def noop(n):
    return None
"""


def write_project(directory: Path, url: str, processes: int, sets: list[str]) -> Path:
    (directory / "benchtasks.py").write_text(TASKS)
    lines = ['app = "benchtasks:app"', f'database_url = "{url}"', 'log_level = "WARNING"', ""]
    lines += ["[[workers]]", 'queues = ["*"]', f"processes = {processes}"]
    for item in sets:
        key, _, value = item.partition("=")
        lines.append(f"{key.strip()} = {value.strip()}")
    config = directory / "stalwart.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def enqueue(url: str, jobs: int) -> None:
    app = stalwart.App(config=Config(database_url=url, source="benchmark"))
    app.task(name="noop")(lambda n: None)
    app.migrate()
    app.store.tables_reset()
    for start in range(0, jobs, 10_000):
        app.enqueue_many("noop", [((i,), {}) for i in range(start, min(jobs, start + 10_000))])
    app.close()


def finished_span(url: str) -> tuple[float, int]:
    """Seconds between the first and the last finished job, and how many finished."""
    from datetime import datetime

    import sqlalchemy as sa

    app = stalwart.App(config=Config(database_url=url, source="benchmark"))
    with app.store.engine.connect() as conn:
        first, last, done = conn.execute(
            sa.text(
                "SELECT min(finished_at), max(finished_at), count(*) FROM stalwart_jobs"
                " WHERE finished_at IS NOT NULL"
            )
        ).one()
    app.close()
    if isinstance(first, str):  # SQLite keeps ISO text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return (last - first).total_seconds() if first and last else 0.0, int(done)


def start_drain(directory: Path, config: Path) -> tuple[float, float]:
    """The command's wall time, and the CPU time of it and its children."""
    # SRC: another checkout's src/ (say, before a change), run the same way.
    src = os.environ.get("STALWART_SRC")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (src, str(directory)) if p))
    cmd = [sys.executable, "-c", "from stalwart.cli import main; main()", "--config", str(config)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [*cmd, "start", "--drain"],
        cwd=directory,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def one_run(url: str, jobs: int, processes: int, sets: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        run_url = url.replace("{tmp}", tmp)
        config = write_project(directory, run_url, processes, sets)
        enqueue(run_url, jobs)
        wall, cpu = start_drain(directory, config)
        span, done = finished_span(run_url)
    if done != jobs:
        raise RuntimeError(f"{done} of {jobs} jobs finished")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "wall_per_s": jobs / wall,
        "drain_per_s": jobs / span if span else 0.0,
    }


def pgqueuer(dsn: str, jobs: int, workers: int, batch: int) -> float:
    sys.path.insert(0, str(HERE / "peers"))
    import pgqueuer_peer

    result: dict[str, Any] = dict(
        pgqueuer_peer.run(dsn, jobs, workers, batch_size=batch, measure_latency=False)
    )
    return float(result["drain_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database",
        action="append",
        default=None,
        help=f"database URL, repeatable; {{tmp}} is a temporary directory "
        f"(default: {DEFAULT_PG} and sqlite:///{{tmp}}/bench.db)",
    )
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra [[workers]] setting (TOML value)",
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--pgqueuer",
        action="store_true",
        help="also drain the same N jobs with pgqueuer (tuned: batch 100)",
    )
    parser.add_argument("--pgqueuer-batch", type=int, default=100)
    parser.add_argument(
        "--startup",
        action="store_true",
        help="time a 100-job start --drain instead (median of --repeat)",
    )
    args = parser.parse_args(argv)
    urls = args.database or [DEFAULT_PG, "sqlite:///{tmp}/bench.db"]
    if args.startup:
        for url in urls:
            runs = [one_run(url, 100, args.processes, args.set) for _ in range(args.repeat)]
            walls = [r["wall_s"] for r in runs]
            print(
                f"{url.split(':')[0]:12} 100-job start --drain: median "
                f"{statistics.median(walls):.3f} s wall, "
                f"{statistics.median(r['cpu_s'] for r in runs):.3f} s CPU of all its "
                f"processes (runs: {', '.join(f'{w:.3f}' for w in walls)})"
            )
        return 0
    for _ in range(args.repeat):
        for url in urls:
            r = one_run(url, args.jobs, args.processes, args.set)
            print(
                f"{url.split(':')[0]:12} stalwart start --drain {args.jobs} jobs "
                f"P={args.processes} {' '.join(args.set) or 'defaults'}: "
                f"wall {r['wall_per_s']:,.0f}/s ({r['wall_s']:.2f} s), "
                f"drain {r['drain_per_s']:,.0f}/s",
                flush=True,
            )
        if args.pgqueuer:
            pg = next(u for u in urls if u.startswith("postgres"))
            rate = pgqueuer(
                pg.replace("/stalwart_bench", "/postgres"),
                args.jobs,
                args.processes,
                args.pgqueuer_batch,
            )
            print(
                f"{'pgqueuer':12} batch {args.pgqueuer_batch}, {args.processes} workers: "
                f"drain {rate:,.0f}/s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
