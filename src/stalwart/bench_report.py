"""`stalwart bench`'s report: the table of each setting's numbers, the change from one
setting to the next, where adding workers stops paying; as text, JSON or a PNG plot.

The measurements come from `stalwart.bench`.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from .errors import ConfigError

# ---- what a sweep measured: the report's input ----


@dataclass(frozen=True)
class Setting:
    processes: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.processes}x{self.threads}"

    @property
    def workers(self) -> int:
        return self.processes * self.threads


@dataclass(frozen=True)
class BenchTask:
    """What each bench job runs: a registered task's name, and its arguments."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class SettingResult:
    setting: Setting
    jobs: int
    failed: int
    elapsed_s: float  # first job enqueued → last job finished
    throughput: float  # jobs per second
    latency_ms: dict[int, float]  # enqueued → finished, by percentile
    run_ms: dict[int, float]  # started → finished, by percentile
    cpu_percent: float  # worker processes, 100 = one core
    peak_rss_mb: float  # sum over the worker processes


__all__ = [
    "COLUMNS",
    "PAYING_GAIN_PERCENT",
    "PERCENTILES",
    "change_percent",
    "changes",
    "check_plot_available",
    "plot",
    "render",
    "stops_paying",
    "to_json",
]

PERCENTILES = (50, 75, 90, 95, 99)
# Below this throughput gain from one setting to the next, adding workers "stops paying".
PAYING_GAIN_PERCENT = 5.0


def check_plot_available() -> None:
    """Fail before any work when ``--plot`` cannot be honoured."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise ConfigError(
            ["--plot needs matplotlib, which is not installed: pip install matplotlib"]
        ) from None


# (key, header, getter, better): better is +1 when more is better, -1 when less is,
# 0 when it is a cost to watch rather than a goal.
Column: TypeAlias = "tuple[str, str, Callable[[SettingResult], float], int]"


def _latency_at(p: int) -> Callable[[SettingResult], float]:
    return lambda r: r.latency_ms[p]


COLUMNS: list[Column] = [
    ("throughput_per_s", "jobs/s", lambda r: r.throughput, +1),
    *[(f"latency_p{p}_ms", f"p{p}", _latency_at(p), -1) for p in PERCENTILES],
    ("run_p50_ms", "run p50", lambda r: r.run_ms[50], -1),
    ("cpu_percent", "CPU %", lambda r: r.cpu_percent, 0),
    ("peak_rss_mb", "RSS MB", lambda r: r.peak_rss_mb, 0),
]


def change_percent(before: float, after: float) -> float | None:
    if not math.isfinite(before) or not math.isfinite(after) or before == 0:
        return None
    return 100.0 * (after - before) / before


def changes(results: Sequence[SettingResult]) -> list[dict[str, Any]]:
    """% change of every column from each setting to the next."""
    out = []
    for before, after in itertools.pairwise(results):
        row: dict[str, Any] = {"from": before.setting.label, "to": after.setting.label}
        for key, _, get, _ in COLUMNS:
            value = change_percent(get(before), get(after))
            row[key] = None if value is None else round(value, 2)
        out.append(row)
    return out


def stops_paying(results: Sequence[SettingResult], *, rate: float | None = None) -> str | None:
    """Where adding workers stops paying: the setting past which no step improves the
    measure by 5 % — throughput for a backlog; p99 latency at a steady rate, where the
    throughput is the rate whatever the workers."""
    key, name, sign = (
        ("throughput_per_s", "throughput", 1.0)
        if rate is None
        else ("latency_p99_ms", "p99 latency", -1.0)
    )
    steps = changes(results)
    paying = [
        i
        for i, step in enumerate(steps)
        if step[key] is not None and sign * step[key] >= PAYING_GAIN_PERCENT
    ]
    if not steps:
        return None
    if paying and paying[-1] == len(steps) - 1:
        last = steps[-1]
        return (
            f"{name.capitalize()} still improves at the largest setting ({last['from']} → "
            f"{last['to']}: {last[key]:+.1f} %): more workers may still pay."
        )
    knee = results[paying[-1] + 1 if paying else 0].setting.label
    return (
        f"Past {knee}, no step improves {name} by {PAYING_GAIN_PERCENT:g} %: more workers "
        "do not pay for this task on this database."
    )


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _fmt_change(value: float | None, better: int) -> str:
    if value is None:
        return "-"
    text = f"{value:+.0f}%" if abs(value) >= 10 else f"{value:+.1f}%"
    if better == 0 or abs(value) < 1.0:
        return text
    good = (value > 0) == (better > 0)
    return f"[green]{text}[/]" if good else f"[red]{text}[/]"


def render(
    results: Sequence[SettingResult],
    console: Console,
    *,
    title: str,
    rate: float | None = None,
    note: str | None = None,
) -> None:
    # Simple boxes: the two tables fit an 80-column terminal.
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column("setting", no_wrap=True)
    for _, header, _, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    for r in results:
        table.add_row(r.setting.label, *(_fmt(get(r)) for _, _, get, _ in COLUMNS))
    console.print(table)
    failed = sum(r.failed for r in results)
    if failed:
        console.print(
            f"[yellow]{failed} job(s) did not succeed and are left out of the numbers.[/]"
        )
    if len(results) > 1:
        diff = Table(
            title="Change from the previous setting, %",
            box=box.SIMPLE_HEAD,
            collapse_padding=True,
            pad_edge=False,
        )
        diff.add_column("from→to", no_wrap=True)
        for _, header, _, _ in COLUMNS:
            diff.add_column(header, justify="right", no_wrap=True)
        by_key = {key: better for key, _, _, better in COLUMNS}
        for step in changes(results):
            diff.add_row(
                f"{step['from']}→{step['to']}",
                *(_fmt_change(step[key], by_key[key]) for key, _, _, _ in COLUMNS),
            )
        console.print(diff)
        verdict = stops_paying(results, rate=rate)
        if verdict:
            console.print(verdict)
    if note:
        console.print(note, style="dim")


def to_json(
    results: Sequence[SettingResult],
    *,
    database_url: str,
    task: BenchTask,
    jobs: int,
    rate: float | None,
) -> dict[str, Any]:
    def num(value: float) -> float | None:
        return round(value, 3) if math.isfinite(value) else None

    return {
        "database": make_url(database_url).render_as_string(hide_password=True),
        "task": task.label or task.name,
        "jobs": jobs,
        "rate_per_s": rate,
        "latency": "enqueued -> finished, ms",
        "settings": [
            {
                "setting": r.setting.label,
                "processes": r.setting.processes,
                "threads": r.setting.threads,
                "workers": r.setting.workers,
                "jobs": r.jobs,
                "failed": r.failed,
                "elapsed_s": num(r.elapsed_s),
                **{key: num(get(r)) for key, _, get, _ in COLUMNS},
            }
            for r in results
        ],
        "changes_percent": changes(results),
    }


def plot(results: Sequence[SettingResult], path: str, *, title: str) -> None:
    """Latency percentiles (and throughput) against the worker settings, as a PNG."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only, no display needed
    plt: Any = importlib.import_module("matplotlib.pyplot")
    labels = [f"{r.setting.label}\n({r.setting.workers})" for r in results]
    xs = list(range(len(results)))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(results)), 4.5))
    for p in PERCENTILES:
        ax.plot(xs, [r.latency_ms[p] for r in results], marker="o", label=f"p{p}")
    ax.set_xticks(xs, labels)
    ax.set_xlabel("processes x threads (workers)")
    ax.set_ylabel("latency, enqueued → finished (ms)")
    ax.grid(True, alpha=0.3)
    right = ax.twinx()
    right.plot(
        xs,
        [r.throughput for r in results],
        color="black",
        linestyle="--",
        marker="s",
        label="jobs/s",
    )
    right.set_ylabel("throughput (jobs/s)")
    lines, names = ax.get_legend_handles_labels()
    more, more_names = right.get_legend_handles_labels()
    ax.legend(lines + more, names + more_names, loc="upper left", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
