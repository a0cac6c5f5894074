"""Every peer benchmark in one run, one at a time, and one table comparing them.

    python benchmarks/peers/run_all.py [--jobs 20000] [--workers 2] [--repeat 3]
        [--only stalwart-pg,pgqueuer,...] [--json FILE] [--markdown FILE]

Each peer runs as its own script (``<peer>_peer.py --dsn ... --jobs N --workers W``) in a
fresh interpreter, so no peer's imports or leftovers touch another's numbers; never two
at once.  The runs go round-robin (every peer once, then every peer again, ...) so a
slow stretch of this shared machine hits all peers alike; each column of the table is
the median of the ``--repeat`` runs of that peer.

Ratios compare each peer with Stalwart on the same kind of store: the PostgreSQL peers
and the Redis ones (RQ, Celery: what teams run instead of a database queue) with
Stalwart on PostgreSQL, huey with Stalwart on SQLite.  For throughput a ratio above 1
means faster than Stalwart; for latency and memory it means more than Stalwart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/stalwart_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
# One peer run may take this long (20,000 jobs at RQ's few hundred a second, plus its
# latency probe) before it is counted as failed.
RUN_TIMEOUT_S = 900

METRICS = ("enqueue_per_s", "drain_per_s", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb")
HEADERS = ("enqueue/s", "drain/s", "pickup p50 ms", "pickup p99 ms", "peak RSS MB")


@dataclass(frozen=True)
class Peer:
    name: str  # what --only takes
    script: str
    database: str  # the store, as shown in the table
    dsn_kind: str  # "pg", "sqlite" or "redis"
    reference: str  # the Stalwart row it is compared with


PEERS = (
    Peer("stalwart-pg", "stalwart_peer.py", "PostgreSQL", "pg", "stalwart-pg"),
    Peer("pgqueuer", "pgqueuer_peer.py", "PostgreSQL", "pg", "stalwart-pg"),
    Peer("procrastinate", "procrastinate_peer.py", "PostgreSQL", "pg", "stalwart-pg"),
    Peer("raw-sql-floor", "raw_sql_floor.py", "PostgreSQL", "pg", "stalwart-pg"),
    Peer("stalwart-sqlite", "stalwart_peer.py", "SQLite", "sqlite", "stalwart-sqlite"),
    Peer("huey", "huey_peer.py", "SQLite", "sqlite", "stalwart-sqlite"),
    Peer("rq", "rq_peer.py", "Redis", "redis", "stalwart-pg"),
    Peer("celery", "celery_peer.py", "Redis", "redis", "stalwart-pg"),
)
# Each Redis peer FLUSHes a database number of its own.
REDIS_DB = {"rq": 14, "celery": 15}


def dsn_for(peer: Peer, args: argparse.Namespace, sqlite_dir: str) -> str:
    if peer.dsn_kind == "pg":
        return str(args.pg)
    if peer.dsn_kind == "sqlite":
        return f"sqlite:///{os.path.join(sqlite_dir, peer.name + '.db')}"
    return f"{str(args.redis).rstrip('/')}/{REDIS_DB[peer.name]}"


def run_peer(peer: Peer, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run of one peer's script; its JSON result (or {"error": ...})."""
    cmd = [sys.executable, os.path.join(HERE, peer.script), "--dsn", dsn]
    cmd += ["--jobs", str(args.jobs), "--workers", str(args.workers)]
    if not args.latency:
        cmd.append("--no-latency")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=HERE, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {RUN_TIMEOUT_S} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def median_of(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per metric, the median over the runs that have it."""
    out: dict[str, float | None] = {}
    for metric in METRICS:
        values = [float(r[metric]) for r in runs if r.get(metric) is not None]
        out[metric] = round(statistics.median(values), 2) if values else None
    return out


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _cell(value: float | None, ref: float | None, is_reference: bool) -> str:
    text = _number(value)
    if is_reference or value is None or not ref:
        return text
    return f"{text} ({value / ref:.2f}x)"


def table_rows(medians: dict[str, dict[str, float | None]], peers: list[Peer]) -> list[list[str]]:
    rows = []
    for peer in peers:
        m = medians.get(peer.name)
        if m is None:
            rows.append([peer.name, peer.database, *(["failed"] * len(METRICS)), peer.reference])
            continue
        ref = medians.get(peer.reference, {})
        is_ref = peer.reference == peer.name
        cells = [_cell(m[k], ref.get(k), is_ref) for k in METRICS]
        rows.append([peer.name, peer.database, *cells, "-" if is_ref else peer.reference])
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def markdown(report: dict[str, Any], rows: list[list[str]]) -> str:
    head = ["system", "database/broker", *HEADERS, "ratio vs"]
    lines = [
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; machine: {report['machine']}  ",
        f"{report['jobs']:,} no-op jobs, {report['workers']} worker processes per system, "
        f"median of {report['repeat']} runs; ratios (x) are to Stalwart on the same store "
        "(Redis peers: Stalwart on PostgreSQL).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---", *["---:"] * len(HEADERS), "---"]) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    failures = report.get("failures") or {}
    if failures:
        lines.append("")
        lines += [f"- {name}: {err}" for name, errs in failures.items() for err in errs]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per peer run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per peer")
    parser.add_argument("--repeat", type=int, default=3, help="runs per peer (median shown)")
    parser.add_argument(
        "--only", default=None, help=f"comma-separated peers: {','.join(p.name for p in PEERS)}"
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL DSN (default: %(default)s)")
    parser.add_argument(
        "--redis",
        default=DEFAULT_REDIS,
        help="Redis URL without database number; RQ uses db 14, Celery db 15, both FLUSHed",
    )
    parser.add_argument(
        "--no-latency", dest="latency", action="store_false", help="skip pickup latency"
    )
    parser.add_argument("--json", dest="json_file", default=None, help="write every run here")
    parser.add_argument("--markdown", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--jobs, --workers and --repeat must be >= 1")

    peers = list(PEERS)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = sorted(set(wanted) - {p.name for p in PEERS})
        if unknown:
            parser.error(f"unknown peer(s) {', '.join(unknown)}")
        peers = [p for p in PEERS if p.name in wanted]

    console = Console(stderr=True)
    sqlite_dir = tempfile.mkdtemp(prefix="stalwart-peers-")
    runs: dict[str, list[dict[str, Any]]] = {p.name: [] for p in peers}
    failures: dict[str, list[str]] = {}
    try:
        for r in range(args.repeat):
            for peer in peers:
                console.print(f"[dim]run {r + 1}/{args.repeat}[/] {peer.name} ...", end=" ")
                started = time.monotonic()
                result = run_peer(peer, dsn_for(peer, args, sqlite_dir), args)
                took = time.monotonic() - started
                if "error" in result:
                    failures.setdefault(peer.name, []).append(str(result["error"]))
                    console.print(f"[red]failed[/] ({took:.0f} s): {result['error']}")
                else:
                    runs[peer.name].append(result)
                    console.print(
                        f"drain {result['drain_per_s']:,.0f}/s, "
                        f"p50 {result['latency_p50_ms']} ms ({took:.0f} s)"
                    )
    finally:
        shutil.rmtree(sqlite_dir, ignore_errors=True)

    medians = {name: median_of(rs) for name, rs in runs.items() if rs}
    rows = table_rows(medians, peers)
    report = {
        "command": "python benchmarks/peers/run_all.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "jobs": args.jobs,
        "workers": args.workers,
        "repeat": args.repeat,
        "median": medians,
        "runs": runs,
        "failures": failures,
    }

    table = Table(
        title=f"{args.jobs:,} no-op jobs, {args.workers} worker processes, "
        f"median of {args.repeat} run(s)"
    )
    for header in ("system", "database/broker"):
        table.add_column(header)
    for header in HEADERS:
        table.add_column(header, justify="right")
    table.add_column("ratio vs")
    for row in rows:
        table.add_row(*row)
    Console(width=max(150, Console().width)).print(table)
    console.print(
        "Ratios (x): peer / Stalwart on the same store (Redis peers: Stalwart on PostgreSQL)."
    )

    if args.json_file:
        with open(args.json_file, "w") as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(report, rows))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
