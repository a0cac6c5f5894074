"""Where a drain's CPU goes: the database server's processes against the workers.

    python benchmarks/cpu_split.py [--dsn postgresql://postgres@127.0.0.1:5432/stalwart_bench]
        [--jobs 60000] [--workers 2]

Enqueues N no-op jobs, then drains them with W Stalwart worker processes (the peer
harness, `peers/stalwart_peer.py`) and reports the CPU seconds the PostgreSQL or
MariaDB server processes used during the drain (their own and their exited children's,
from /proc) and the workers' (whole lifetime, start-up included), each per job, and
how much of the machine stayed idle. On a machine the drain saturates, drain/s is
roughly cores / (server + worker CPU per job): this is the profile that says why.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))

import _common
import stalwart_peer

HZ = os.sysconf("SC_CLK_TCK")


def server_cpu_s() -> float:
    ticks = 0
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(comm) as f:
                if f.read().strip() not in ("postgres", "mariadbd", "mysqld"):
                    continue
            with open(comm.replace("comm", "stat")) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, and those of exited children (backends of closed connections)
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / HZ


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_idle() -> tuple[float, float]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3], sum(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/stalwart_bench")
    parser.add_argument("--jobs", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    stalwart_peer.enqueue(args.dsn, args.jobs)
    opts = {"url": args.dsn, "threads": 10, "prefetch": 200}
    idle0, total0 = machine_idle()
    server0, workers0 = server_cpu_s(), children_cpu_s()
    drain = _common.run_workers(stalwart_peer.__file__, [opts] * args.workers)
    server1, workers1 = server_cpu_s(), children_cpu_s()
    idle1, total1 = machine_idle()
    n = args.jobs
    print(f"drain {n / drain.elapsed_s:,.0f}/s over {drain.elapsed_s:.2f} s")
    print(f"database server CPU {(server1 - server0) / n * 1e6:.1f} us/job")
    print(f"worker processes CPU {(workers1 - workers0) / n * 1e6:.1f} us/job (with start-up)")
    print(f"machine idle {(idle1 - idle0) / (total1 - total0):.0%} (start-up included)")


if __name__ == "__main__":
    main()
