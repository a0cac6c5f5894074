"""Stalwart behind PgBouncer in transaction pooling mode (a private PgBouncer from
tests/bouncer.py in front of the test PostgreSQL): migrations from several processes
at once, and a 2,000-job `stalwart start` fleet, polling or woken through `listen_url`.
The store conformance suite runs through it too (tests/store, "postgresql-pgbouncer")."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import stalwart
from stalwart.config import Config, load_config
from stalwart.errors import ConfigError
from stalwart.store import open_store

from . import bouncer
from .conftest import SERVER_URLS, _migrated, drop_all
from .fleet import REPO, Fleet, write_config

POLLING_LINE = "transaction_pooling is on and listen_url is not set"


@pytest.fixture
def pooled() -> Iterator[bouncer.Bouncer]:
    why = bouncer.why_unavailable()
    if why is not None:
        print(f"\n*** SKIPPED: no PgBouncer here: {why} ***")
        pytest.skip(f"no PgBouncer here: {why}")
    with bouncer.pgbouncer(SERVER_URLS["postgresql"], pool_size=5) as running:
        yield running


def test_the_pooling_options_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "stalwart.toml"
    path.write_text('transaction_pooling = true\nmigrate_url = "postgresql://direct/db"\n')
    env = {"STALWART_LISTEN_URL": "postgresql://u:p@direct:5432/db?x=1"}
    config = load_config(path, env=env)
    assert config.store_options() == {
        "preserve_finished_jobs": True,
        "transaction_pooling": True,
        "listen_url": "postgresql://u:p@direct:5432/db?x=1",
        "migrate_url": "postgresql://direct/db",
        "clock_tolerance": 30.0,
    }
    path.write_text('transaction_pooling = "yes"\n')
    with pytest.raises(ConfigError, match="transaction_pooling: expected true or false"):
        load_config(path, env={})


def test_check_through_the_pooler_needs_the_flag_and_says_so(
    pooled: bouncer.Bouncer, tmp_path: Path
) -> None:
    """`stalwart check`'s probe sends statement_timeout as a startup parameter, which
    PgBouncer refuses; with transaction_pooling it does not."""
    direct = open_store(SERVER_URLS["postgresql"])
    if direct.pending_migrations():
        direct.migrate()
    direct.dispose()
    answers = {}
    for flag in ("false", "true"):
        (tmp_path / "stalwart.toml").write_text(
            f'database_url = "{pooled.url}"\ntransaction_pooling = {flag}\n'
        )
        done = subprocess.run(
            [sys.executable, "-c", "from stalwart.cli import main; main()", "check"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        answers[flag] = (done.returncode, done.stdout + done.stderr)
    assert answers["false"][0] == 2, answers
    assert "set transaction_pooling = true" in answers["false"][1], answers
    assert answers["true"][0] == 0, answers


@pytest.mark.slow
def test_migrations_from_four_processes_at_once_through_the_pooler(
    pooled: bouncer.Bouncer,
) -> None:
    """Each step takes a transaction-level lock: no session needed, none left held."""
    direct = open_store(SERVER_URLS["postgresql"])
    drop_all(direct)
    _migrated.discard(SERVER_URLS["postgresql"])
    code = (
        "import sys; from stalwart.store import open_store; "
        "print(open_store(sys.argv[1], transaction_pooling=True).migrate())"
    )
    command = [sys.executable, "-c", code, pooled.url]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    # One run applied everything; the others found nothing left to do.
    assert sorted(o.strip() == "[]" for o in outs) == [False, True, True, True], outs
    assert direct.pending_migrations() == []
    with direct.engine.connect() as conn:
        held = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"
                " AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
            ),
            {"k": 0x5374616C},  # migrations.py's key
        )
        assert held.scalar() == 0
    direct.dispose()


@pytest.mark.slow
def test_migrate_url_is_where_migrations_run(pooled: bouncer.Bouncer) -> None:
    direct_url = SERVER_URLS["postgresql"]
    direct = open_store(direct_url)
    drop_all(direct)
    _migrated.discard(direct_url)
    wrong = make_url(direct_url).set(database="stalwart_no_such_db").render_as_string(False)
    store = open_store(pooled.url, transaction_pooling=True, migrate_url=wrong)
    with pytest.raises(Exception, match="stalwart_no_such_db"):
        store.migrate()
    store.dispose()
    assert direct.pending_migrations() != []
    store = open_store(pooled.url, transaction_pooling=True, migrate_url=direct_url)
    assert store.migrate() != []
    assert store.pending_migrations() == []  # read through the pooler
    store.dispose()
    direct.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("wake", ["polling", "listen_url"])
def test_a_2000_job_fleet_through_the_pooler(
    wake: str, pooled: bouncer.Bouncer, tmp_path: Path
) -> None:
    direct_url = SERVER_URLS["postgresql"]
    direct = open_store(direct_url)
    if direct.pending_migrations():
        direct.migrate()
    direct.tables_reset()
    direct.dispose()
    extra: dict[str, object] = {"transaction_pooling": True}
    if wake == "listen_url":
        extra["listen_url"] = direct_url
    write_config(tmp_path / "stalwart.toml", pooled.url, processes=2, threads=5, **extra)
    sys.path.insert(0, str(REPO))
    from tests.apps.procapp import app as procapp

    config = Config(database_url=pooled.url, transaction_pooling=True, source="tests")
    app = stalwart.App(config=config)
    app.tasks.update(procapp.tasks)
    fleet = Fleet(tmp_path, pooled.url, tmp_path / "events.log", app)
    try:
        # Over 100 jobs: enqueued by COPY, through the pooler.
        ids = app.enqueue_many("proc.noop", [((n,), {}) for n in range(2000)]).ids
        sup = fleet.start("--drain")
        out, _ = sup.communicate(timeout=240)
        assert sup.returncode == 0, out
        statuses = {r.status for r in app.store.jobs_get(ids)}
        assert statuses == {stalwart.JobStatus.SUCCESSFUL}, out
        assert "prepared statement" not in out, out
        # Two worker processes: each says once that it polls, or none does.
        assert out.count(POLLING_LINE) == (2 if wake == "polling" else 0), out
    finally:
        fleet.kill_leftovers()
        app.close()
