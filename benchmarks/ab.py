"""Stalwart against an earlier Stalwart, interleaved in one run: did a change cost speed?

    git worktree add --detach ../ab-base <rev> && (cd ../ab-base && python -m venv .venv \
        && .venv/bin/pip install -e '.[bench]')
    python benchmarks/ab.py --base ../ab-base --repeat 5

Each side runs its own `benchmarks/peers/stalwart_peer.py` with its own venv (so each
imports its own code), enqueue and drain of the same no-op jobs, alternating base and
head, on PostgreSQL and SQLite. Prints the medians per side and head/base ratios; the
spread between runs of one side is the noise to read the ratio against.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HEAD = Path(__file__).resolve().parent.parent
PG = "postgresql://postgres@127.0.0.1:5432/stalwart_bench"


def run(checkout: Path, dsn: str, jobs: int, workers: int) -> dict[str, float]:
    python = checkout / ".venv" / "bin" / "python"
    script = checkout / "benchmarks" / "peers" / "stalwart_peer.py"
    cmd = [str(python), str(script), "--dsn", dsn, "--jobs", str(jobs)]
    cmd += ["--workers", str(workers), "--no-latency"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=script.parent, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{checkout}: exit {done.returncode}: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(lines[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the earlier code")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--only", default="pg,sqlite", help="pg, sqlite or both")
    args = parser.parse_args()
    sides = {"base": args.base.resolve(), "head": HEAD}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"pg": args.pg, "sqlite": f"sqlite:///{os.path.join(tmp, 'ab.db')}"}
        for i in range(args.repeat):
            for store in args.only.split(","):
                order = ("base", "head") if i % 2 == 0 else ("head", "base")
                for side in order:
                    r = run(sides[side], stores[store], args.jobs, args.workers)
                    results.setdefault((store, side), []).append(r)
                    print(
                        f"run {i + 1} {store} {side}: enqueue {r['enqueue_per_s']:,.0f}/s"
                        f" drain {r['drain_per_s']:,.0f}/s",
                        file=sys.stderr,
                    )
    print(f"\n{args.jobs:,} no-op jobs, {args.workers} workers, {args.repeat} runs per side")
    print("| store | metric | base median | head median | head/base | base runs | head runs |")
    print("|---|---|---:|---:|---:|---|---|")
    for store in args.only.split(","):
        for metric in ("enqueue_per_s", "drain_per_s"):
            b = [r[metric] for r in results[(store, "base")]]
            h = [r[metric] for r in results[(store, "head")]]
            mb, mh = statistics.median(b), statistics.median(h)
            print(
                f"| {store} | {metric} | {mb:,.0f} | {mh:,.0f} | {mh / mb:.2f} "
                f"| {', '.join(f'{x / 1000:.1f}k' for x in b)} "
                f"| {', '.join(f'{x / 1000:.1f}k' for x in h)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
