"""The admin commands (`jobs`, `queues`, `recurring`) read through the same store verbs
as the dashboard, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import stalwart
from stalwart.cli import main
from stalwart.store import RecurringTaskRow, utcnow
from stalwart.testing import drain


@pytest.fixture
def tasks(app: stalwart.App) -> dict[str, stalwart.Task]:  # type: ignore[type-arg]
    @app.task(name="ok.echo")
    def echo(value: object) -> object:
        return value

    @app.task(name="mail.deliver", queue_name="mail")
    def deliver(account_id: int) -> None:
        raise ValueError(f"SMTP said no to {account_id}")

    return {"echo": echo, "deliver": deliver}


def cli(app: stalwart.App, *args: str) -> Any:
    """Run ``stalwart --database URL ARGS...``; the parsed JSON it printed."""
    result = CliRunner().invoke(main, ["--database", app.config.database_url, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_jobs_list_by_status_with_finished_as_successful(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    done = [tasks["echo"].enqueue(i).id for i in range(3)]
    failed = tasks["deliver"].enqueue(7).id
    drain(app)
    ready = tasks["echo"].enqueue("later").id
    scheduled = tasks["echo"].using(run_after=timedelta(hours=1)).enqueue(1).id

    listed = cli(app, "jobs", "list", "--json")  # failed by default
    assert [j["id"] for j in listed] == [failed]
    assert listed[0]["status"] == "FAILED"
    assert listed[0]["errors"][0]["message"] == "SMTP said no to 7"
    for name in ("successful", "finished", "FINISHED"):
        listed = cli(app, "jobs", "list", "--status", name, "--json")
        assert sorted(j["id"] for j in listed) == sorted(done), name
        assert {j["status"] for j in listed} == {"SUCCESSFUL"}
    assert [j["id"] for j in cli(app, "jobs", "list", "--status", "ready", "--json")] == [ready]
    assert [j["id"] for j in cli(app, "jobs", "list", "--status", "scheduled", "--json")] == [
        scheduled
    ]
    assert cli(app, "jobs", "list", "--status", "ready", "--queue", "mail", "--json") == []
    newest = cli(app, "jobs", "list", "--status", "successful", "--limit", "2", "--json")
    assert len(newest) == 2
    table = cli(app, "jobs", "list", "--status", "finished")
    assert "successful jobs" in table and "ok.echo" in table
    bad = CliRunner().invoke(
        main, ["--database", app.config.database_url, "jobs", "list", "--status", "done"]
    )
    assert bad.exit_code == 2


def test_jobs_list_filters_go_past_the_scan_window(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stalwart.store.reads import bounds

    monkeypatch.setattr(bounds, "SCAN_WINDOW", 4)
    rare = tasks["deliver"].enqueue(1).id
    app.enqueue_many(tasks["echo"], [((i,), {}) for i in range(10)])
    # Ten newer ready jobs of another task: the first windows hold no mail.deliver.
    listed = cli(app, "jobs", "list", "--status", "ready", "--task", "mail.deliver", "--json")
    assert [j["id"] for j in listed] == [rare]


def test_queues_list_counts_by_status(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    tasks["deliver"].enqueue(1)
    drain(app)
    tasks["echo"].enqueue(2)
    tasks["echo"].using(run_after=timedelta(hours=1)).enqueue(3)
    app.pause_queue("reports")
    queues = cli(app, "queues", "list", "--json")
    zero = {"waiting": 0, "ready": 0, "scheduled": 0, "running": 0, "blocked": 0, "failed": 0}
    assert queues == {
        "default": {"paused": False, **zero, "ready": 1, "scheduled": 1},
        "mail": {"paused": False, **zero, "failed": 1},
        "reports": {"paused": True, **zero},
    }
    table = cli(app, "queues", "list")
    assert "reports" in table and "yes" in table


def test_recurring_list_shows_the_config_without_writing(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    now = utcnow()
    app.store.recurring_upsert(
        RecurringTaskRow(key="hourly", schedule="every hour", task_name="ok.echo", static=False)
    )
    job = app.store.recurring_enqueue(
        "hourly",
        now - timedelta(minutes=5),
        stalwart.store.NewJob("ok.echo", "default", 0, "[1]", "{}", now),
    )
    config = tmp_path / "stalwart.toml"
    config.write_text(
        '[recurring.nightly]\ncommand = "pass"\nschedule = "every day at 9am"\nmissed = "latest"\n'
    )
    args = ["--config", str(config), "recurring", "list"]
    rows = {r["key"]: r for r in cli(app, *args, "--json")}
    assert set(rows) == {"hourly", "nightly"}
    hourly, nightly = rows["hourly"], rows["nightly"]
    assert (hourly["task"], hourly["registered"], hourly["static"]) == ("ok.echo", True, False)
    assert hourly["last_run"] is not None and job is not None
    assert nightly["task"] == "stalwart.command" and nightly["missed"] == "latest"
    assert (nightly["registered"], nightly["static"], nightly["last_run"]) == (False, True, None)
    assert nightly["next_run"].endswith("T09:00:00+00:00")
    assert "registered" in cli(app, *args)  # the mark, however the table wraps it
    # Listing wrote nothing: the config's task is still not in the database.
    assert [t.key for t in app.store.recurring_list()] == ["hourly"]


def test_one_status_list_named_as_job_status() -> None:
    from stalwart.store.statuses import EXECUTIONS, STATUSES, status_named

    assert set(STATUSES) == {str(s) for s in stalwart.JobStatus}
    assert list(EXECUTIONS) == [s for s in STATUSES if s != "SUCCESSFUL"]
    assert status_named("finished") == status_named(" Successful ") == "SUCCESSFUL"
    with pytest.raises(ValueError, match="ready, scheduled, running, blocked, failed, successful"):
        status_named("done")


def test_commands_that_need_the_schema_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stalwart.toml here
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    for command in (["start"], ["dashboard"], ["bench", "--jobs", "1", "--sweep", "1x1"]):
        result = CliRunner().invoke(main, ["--database", url, *command])
        assert result.exit_code == 2, (command, result.output)
        assert "needs migrations" in result.output and "stalwart migrate" in result.output


def test_retry_discard_pause_resume(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    first, second = (tasks["deliver"].enqueue(i).id for i in range(2))
    drain(app)
    assert "Retried 1 failed job(s)." in cli(app, "jobs", "retry", str(first))
    assert app.get_result(first).status == "READY"
    assert "Discarded 1 failed job(s)." in cli(app, "jobs", "discard", "--queue", "mail")
    assert [j["id"] for j in cli(app, "jobs", "list", "--json")] == []
    assert app.get_result(first).status == "READY" and second
    nothing = CliRunner().invoke(main, ["--database", app.config.database_url, "jobs", "retry"])
    assert nothing.exit_code == 2
    assert "paused" in cli(app, "queues", "pause", "mail")
    assert "was already paused" in cli(app, "queues", "pause", "mail")
    assert app.paused_queues() == {"mail"}
    assert "resumed" in cli(app, "queues", "resume", "mail")
    assert app.paused_queues() == set()


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "show", "99999999999999999999"],
        ["jobs", "show", "0"],
        ["jobs", "cancel", str(2**63)],
        ["jobs", "retry", "1", "9" * 50],
    ],
)
def test_job_ids_out_of_range_are_a_clear_usage_error(app: stalwart.App, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["--database", app.config.database_url, *args])
    assert result.exit_code == 2, result.output
    assert "is not a job id (a whole number from 1 to 9223372036854775807)" in result.output
    assert "Traceback" not in result.output


def test_global_options_work_after_the_command(app: stalwart.App) -> None:
    url = app.config.database_url
    for args in (
        ["queues", "list", "--json", "--database", url, "--log-level", "debug"],
        ["--log-format", "json", "jobs", "list", "--database", url, "--json"],
        ["jobs", "list", "--status", "ready", "--log-format", "json", "--database", url],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
    bad = CliRunner().invoke(main, ["queues", "list", "--log-level", "loud", "--database", url])
    assert bad.exit_code == 2


def test_cli_actions_go_to_the_audit_log_with_the_os_user(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    from stalwart.cli.common import os_user

    failed = [tasks["deliver"].enqueue(i).id for i in range(3)]
    drain(app)
    waiting = tasks["echo"].enqueue(1).id
    cli(app, "jobs", "retry", str(failed[0]))
    cli(app, "jobs", "discard", "--queue", "mail")
    result = CliRunner().invoke(
        main, ["--database", app.config.database_url, "jobs", "cancel", str(waiting), "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["cancelled"] == [waiting]
    cli(app, "queues", "pause", "mail")
    cli(app, "queues", "resume", "mail")
    events = list(reversed(app.store.audit_page(limit=10)))
    assert [(e.action, e.affected) for e in events] == [
        ("retry", 1),
        ("bulk_discard", 2),
        ("cancel", 1),
        ("pause", 1),
        ("resume", 1),
    ]
    assert {e.actor for e in events} == {f"{os_user()} (cli)"}
    assert events[0].job_ids == [failed[0]] and events[3].target == "mail"
    assert events[1].target == "failed jobs where queue='mail'"


def test_pausing_a_queue_nobody_ever_used_warns(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    tasks["deliver"].enqueue(1)  # the "mail" queue is in use
    url = app.config.database_url
    typo = CliRunner().invoke(main, ["--database", url, "queues", "pause", "mial", "--json"])
    assert typo.exit_code == 0
    assert "no job, worker or pause has ever named queue 'mial'" in typo.stderr
    assert json.loads(typo.stdout)["known"] is False
    known = CliRunner().invoke(main, ["--database", url, "queues", "pause", "mail"])
    assert known.exit_code == 0 and "warning" not in known.stderr
    assert app.paused_queues() == {"mial", "mail"}


def test_json_times_have_their_offset_and_text_shows_arguments_as_json(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    job = tasks["echo"].enqueue({"name": "Zoë", "tags": ["a"]}).id
    shown = cli(app, "jobs", "show", str(job), "--json")
    assert shown["enqueued_at"].endswith("+00:00") and shown["scheduled_at"].endswith("+00:00")
    text = cli(app, "jobs", "show", str(job))
    assert 'args: [{"name": "Zoë", "tags": ["a"]}]' in text
    assert "'name'" not in text


def test_tables_are_not_cut_when_piped(app: stalwart.App) -> None:
    long_name = "reports." + "quarterly_revenue_by_region_" * 5 + "final"

    @app.task(name=long_name)
    def report() -> None: ...

    report.enqueue()
    out = cli(app, "jobs", "list", "--status", "ready")
    assert long_name in out


def test_check_warns_of_queues_no_configured_worker_listens_to(tmp_path: Path, db_url: str) -> None:
    import subprocess
    import sys

    (tmp_path / "lonely.py").write_text(
        "import stalwart\napp = stalwart.App()\n"
        "@app.task(name='mail.send', queue_name='mail')\ndef send() -> None: ...\n"
        "@app.task(name='bulk.send', queue_name='bulk')\ndef bulk() -> None: ...\n"
    )
    (tmp_path / "stalwart.toml").write_text(
        f'app = "lonely:app"\ndatabase_url = "{db_url}"\n[[workers]]\nqueues = ["mail*"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-c", "from stalwart.cli import main; main()", "check", "--json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert len(result["warnings"]) == 1
    assert (
        "queue 'bulk' (task bulk.send) is listened to by no configured worker"
        in (result["warnings"][0])
    )
