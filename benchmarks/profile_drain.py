"""Where a default `stalwart start --drain` spends its Python CPU, per part of the worker.

Enqueues N no-op jobs (as `start_drain.py` does), runs ``stalwart start --drain`` with
only ``processes = P`` configured under ``py-spy record --gil --subprocesses`` (samples
only threads that hold the GIL: Python CPU, not waits on the database), and sorts the
worker processes' samples into the parts of the hot path, each sample counted once, in
the order below (first match wins). The database server's own CPU per job is
`cpu_split.py`'s to measure.

    pip install py-spy
    python benchmarks/profile_drain.py --jobs 100000
    python benchmarks/profile_drain.py --raw /tmp/drain.txt   # keep py-spy's stacks
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from start_drain import DEFAULT_PG, enqueue, write_project

# (part, a frame that marks it); a stack goes to the first part with a frame in it.
PARTS = [
    ("completion: JSON of the results", ("json/encoder.py",)),
    ("completion: statement (SQLAlchemy, psycopg)", ("Completer._flush",)),
    ("completion: queue hand-off", ("Completer.",)),
    ("claim: statement and rows", ("Worker._claim",)),
    ("claim loop: waits, hand-off to threads", ("Worker._poll_once",)),
    ("attempt: arguments (JSON)", ("serialization.py",)),
    ("attempt: timeout/cancel watch", ("Interrupts.",)),
    ("attempt: context, hooks, spans", ("run_sync (stalwart/context.py", "AttemptObserver.")),
    ("attempt: outcome, prefetch sizing", ("outcomes.py", "Worker._finished", "Attempts.push")),
    ("attempt: the rest", ("Attempts.run_sync",)),
    ("pool: thread hand-off, bookkeeping", ("ExecutionPool.",)),
    ("heartbeats, listener, other threads", ("",)),
]


def parts_of(raw: str) -> tuple[collections.Counter[str], int, int]:
    """Samples per part in the worker processes; worker and supervisor totals."""
    counts: collections.Counter[str] = collections.Counter()
    workers = supervisor = 0
    for line in raw.splitlines():
        # The command line in a process frame holds a ';' of its own.
        line = line.replace("import main; main()", "import main main()")
        stack, _, n = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        if len(frames) < 2 or not frames[1].startswith("process "):
            supervisor += int(n)  # the supervisor itself: imports, forks, drain looks
            continue
        workers += int(n)
        part = next(name for name, marks in PARTS if any(m in stack for m in marks))
        counts[part] += int(n)
    return counts, workers, supervisor


def report(raw: str) -> None:
    counts, workers, supervisor = parts_of(raw)
    total = workers + supervisor
    print(f"  worker processes {workers} ({workers / total:.0%}), supervisor {supervisor}")
    for name, _ in PARTS:
        share = counts[name] / workers if workers else 0.0
        print(f"  {share:6.1%}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default=DEFAULT_PG)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--raw", default=None, help="also keep py-spy's raw stacks here")
    parser.add_argument("--read", default=None, help="only sort the stacks of an earlier --raw")
    args = parser.parse_args()
    if args.read:
        report(Path(args.read).read_text())
        return 0
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = write_project(directory, args.database, args.processes, [])
        enqueue(args.database, args.jobs)
        out = args.raw or str(directory / "raw.txt")
        spy_args = ["record", "--gil", "--subprocesses", "--nonblocking", "--rate", "250"]
        cmd = [sys.executable, "-c", "from stalwart.cli import main; main()"]
        start = ["--config", str(config), "start", "--drain"]
        subprocess.run(
            [spy, *spy_args, "--format", "raw", "-o", out, "--", *cmd, *start],
            cwd=directory,
            env={"PYTHONPATH": str(directory), "PATH": "/usr/bin:/bin"},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        raw = Path(out).read_text()
    print(f"{args.jobs} jobs, {args.processes} worker processes, defaults; GIL-held samples:")
    report(raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
