"""`stalwart bench`: a small sweep (2 settings x 200 no-op jobs) on SQLite, through the
API and the command line, with real forked worker processes."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import stalwart
from stalwart import bench
from stalwart.cli import main
from stalwart.config import Config
from stalwart.errors import ConfigError

pytestmark = pytest.mark.slow

SWEEP = "1x1,1x2"
JOBS = 200


def square(x: int) -> int:
    return x * x


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    result = CliRunner().invoke(main, ["--database", url, "migrate"])
    assert result.exit_code == 0, result.output
    return url


def test_parse_sweep() -> None:
    assert bench.parse_sweep(" 1x1, 2X4 ,4x8") == [
        bench.Setting(1, 1),
        bench.Setting(2, 4),
        bench.Setting(4, 8),
    ]
    assert bench.parse_sweep("2x4")[0].workers == 8
    for bad in ("", "2", "x4", "0x1", "1x0", "1x2x3", "ax4"):
        with pytest.raises(ValueError, match="sweep"):
            bench.parse_sweep(bad)


def test_resolve_task(url: str) -> None:
    app = stalwart.App(config=Config(database_url=url))
    assert bench.resolve_task(app, "noop").name == bench.NOOP_TASK
    sleeping = bench.resolve_task(app, "sleep:5")
    assert (sleeping.name, sleeping.args) == (bench.SLEEP_TASK, (5.0,))
    mine = bench.resolve_task(app, "tests.test_bench:square", [3])
    assert mine.name == "tests.test_bench.square" and mine.args == (3,)
    assert app.get_task(mine.name).func is square
    for bad in ("sleep:x", "sleep:-1", "nothing", "tests.test_bench:missing", "no_such_mod:f"):
        with pytest.raises(ValueError, match="task"):
            bench.resolve_task(app, bad)
    app.close()


def test_sweep_measures_every_setting(url: str) -> None:
    app = stalwart.App(config=Config(database_url=url, preserve_finished_jobs=False))
    bench.prepare(app)  # finished jobs are kept for the measurement, whatever the config
    task = bench.resolve_task(app, "noop")
    results = bench.run_sweep(app, task, bench.parse_sweep(SWEEP), JOBS, polling_interval=0.01)
    app.close()
    assert [r.setting.label for r in results] == ["1x1", "1x2"]
    for r in results:
        assert (r.jobs, r.failed) == (JOBS, 0)
        assert r.throughput > 0 and r.elapsed_s > 0
        latencies = [r.latency_ms[p] for p in bench.PERCENTILES]
        assert all(v >= 0 for v in latencies)
        assert latencies == sorted(latencies)  # p50 <= p75 <= ... <= p99
        assert 0 <= r.run_ms[50] <= r.latency_ms[50]
        assert r.cpu_percent >= 0 and r.peak_rss_mb > 0
    [step] = bench.changes(results)
    assert (step["from"], step["to"]) == ("1x1", "1x2")
    assert all(step[key] is None or math.isfinite(step[key]) for key, _, _, _ in bench.COLUMNS)


def test_command_prints_both_tables_and_json(url: str) -> None:
    runner = CliRunner()
    args = ["--database", url, "bench", "--jobs", str(JOBS), "--sweep", SWEEP]
    args += ["--polling-interval", "0.01"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "jobs/s" in out and "p99" in out and "CPU %" in out
    assert "Change from the previous setting" in out and "1x1→1x2" in out

    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    # From the first brace: older click versions mix the progress lines (stderr) in.
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert [s["setting"] for s in data["settings"]] == ["1x1", "1x2"]
    for s in data["settings"]:
        assert s["jobs"] == JOBS and s["failed"] == 0 and s["throughput_per_s"] > 0
        assert all(s[f"latency_p{p}_ms"] >= 0 for p in bench.PERCENTILES)
    assert data["changes_percent"][0]["from"] == "1x1"


def test_command_refuses_bad_options(url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--database", url, "bench", "--sweep", "4"])
    assert result.exit_code == 2 and "PROCESSESxTHREADS" in result.output
    result = runner.invoke(main, ["--database", url, "bench", "--task", "sleep:z"])
    assert result.exit_code == 2 and "sleep:MS" in result.output


def test_plot_needs_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install matplotlib"):
        bench.check_plot_available()
