"""The migrated schema is the declared one, and `migrate` is safe twice and concurrently."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from stalwart.store import open_store
from stalwart.store.engine import make_engine, normalize_url
from stalwart.store.migrations import MIGRATIONS, applied_versions
from stalwart.store.schema import metadata

from .conftest import SERVER_URLS


def fresh_database_url(backend: str, tmp_path: Path, name: str) -> str:
    """An empty database of its own, so migrations start from nothing."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.db')}"
    server = normalize_url(SERVER_URLS[backend])
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def _shape(engine: Engine) -> dict[str, object]:
    insp = inspect(engine)
    shape: dict[str, object] = {}
    for table in metadata.sorted_tables:
        cols = {c["name"]: bool(c["nullable"]) for c in insp.get_columns(table.name)}
        pk = tuple(insp.get_pk_constraint(table.name)["constrained_columns"])
        # A unique constraint and a unique index are the same to us (MySQL reports the
        # one as the other): both count as "unique".
        uniques = {
            u["name"]: tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name)
        }
        indexes: dict[str, tuple[str, ...]] = {}
        for i in insp.get_indexes(table.name):
            if i["name"] in uniques or i.get("duplicates_constraint"):
                continue
            columns = tuple(c for c in i["column_names"] if c is not None)
            (uniques if i["unique"] else indexes)[str(i["name"])] = columns
        fks = sorted(
            (tuple(f["constrained_columns"]), f["referred_table"])
            for f in insp.get_foreign_keys(table.name)
        )
        shape[table.name] = {
            "columns": cols,
            "pk": pk,
            "unique": uniques,
            "index": indexes,
            "fk": fks,
        }
    return shape


def _declared() -> dict[str, object]:
    shape: dict[str, object] = {}
    for table in metadata.sorted_tables:
        cols = {c.name: bool(c.nullable) for c in table.columns}
        pk = tuple(c.name for c in table.primary_key.columns)
        uniques = {
            str(u.name): tuple(c.name for c in u.columns)
            for u in table.constraints
            if u.__class__.__name__ == "UniqueConstraint"
        }
        indexes: dict[str, tuple[str, ...]] = {}
        for i in table.indexes:
            columns = tuple(
                getattr(e, "name", None) or e.element.name  # type: ignore[union-attr]
                for e in i.expressions
            )
            (uniques if i.unique else indexes)[str(i.name)] = columns
        fks = sorted(
            (tuple(fk.parent.name for fk in c.elements), c.referred_table.name)
            for c in table.foreign_key_constraints
        )
        shape[table.name] = {
            "columns": cols,
            "pk": pk,
            "unique": uniques,
            "index": indexes,
            "fk": fks,
        }
    return shape


def test_migrated_schema_equals_declared(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path, "stalwart_schema_check")
    store = open_store(url)
    try:
        applied = store.migrate()
        assert applied == [m.version for m in MIGRATIONS]
        assert _shape(store.engine) == _declared()
        # eleven, the audit log, four of job control, three of workflows
        assert len(metadata.tables) == 19
        assert all(name.startswith("stalwart_") for name in metadata.tables)
    finally:
        store.dispose()


def test_migrate_twice_is_a_no_op(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path, "stalwart_migrate_twice")
    store = open_store(url)
    try:
        assert store.migrate() != []
        assert store.migrate() == []
        assert store.pending_migrations() == []
        assert applied_versions(store.engine) == [m.version for m in MIGRATIONS]
    finally:
        store.dispose()


def _migrate_in_child(
    url: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    store = open_store(url)
    barrier.wait()
    try:
        out.put(("ok", store.migrate()))
    except Exception as exc:
        out.put(("error", repr(exc)))
    finally:
        store.dispose()


@pytest.mark.parametrize("runs", [2])
def test_concurrent_migrations_from_two_processes(backend: str, tmp_path: Path, runs: int) -> None:
    url = fresh_database_url(backend, tmp_path, "stalwart_migrate_race")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(runs)
    out = ctx.Queue()
    procs = [ctx.Process(target=_migrate_in_child, args=(url, barrier, out)) for _ in range(runs)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(kind == "ok" for kind, _ in results), results
    applied = sorted((r for _, r in results), key=len)
    # Exactly one run applied the migrations; the other found nothing left to do.
    assert applied[0] == []
    assert applied[1] == [m.version for m in MIGRATIONS]
    store = open_store(url)
    try:
        assert _shape(store.engine) == _declared()
    finally:
        store.dispose()


def test_database_url_driver_is_chosen_for_plain_urls() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("mysql://u@h/db").drivername == "mysql+pymysql"
    assert normalize_url("mariadb://u@h/db").drivername == "mysql+pymysql"
    assert make_url(str(normalize_url("sqlite:///x.db"))).drivername == "sqlite"


def test_a_database_at_an_older_version_gets_only_the_newer_migrations(
    backend: str, tmp_path: Path
) -> None:
    from stalwart.store.audit import audit_events
    from stalwart.store.migrations import (
        JOB_CONTROL_COLUMNS,
        JOB_CONTROL_TABLES,
        WORKFLOW_COLUMNS,
        WORKFLOW_TABLES,
        schema_migrations,
    )

    url = fresh_database_url(backend, tmp_path, "stalwart_migrate_delta")
    store = open_store(url)
    try:
        store.migrate()
        # Put the database back at 0001, as one migrated before 0002 existed: undo 0007
        # (the partial unique-key index, where it ran), 0004 (workflows), 0005 (clock
        # offsets), 0003 (job control) and 0002 (the audit log); 0006 (a trigger) is
        # replaced when it runs again.
        with store.engine.begin() as conn:
            if backend == "postgresql":
                conn.execute(text("DROP INDEX uq_stalwart_jobs_unique_key"))
                conn.execute(
                    text(
                        "ALTER TABLE stalwart_jobs ADD CONSTRAINT uq_stalwart_jobs_unique_key"
                        " UNIQUE (unique_key)"
                    )
                )
            conn.execute(text("ALTER TABLE stalwart_processes DROP COLUMN clock_offset"))
            for table in WORKFLOW_TABLES:
                table.drop(conn)
            on = " ON stalwart_jobs" if backend == "mariadb" else ""
            conn.execute(text(f"DROP INDEX ix_stalwart_jobs_batch{on}"))
            for column in WORKFLOW_COLUMNS:
                conn.execute(text(f"ALTER TABLE stalwart_jobs DROP COLUMN {column}"))
            for table in JOB_CONTROL_TABLES:
                table.drop(conn)
            for column in JOB_CONTROL_COLUMNS:
                conn.execute(text(f"ALTER TABLE stalwart_jobs DROP COLUMN {column}"))
            audit_events.drop(conn)
            conn.execute(schema_migrations.delete().where(schema_migrations.c.version != "0001"))
        assert store.pending_migrations() == [m.version for m in MIGRATIONS[1:]]
        assert store.migrate() == [m.version for m in MIGRATIONS[1:]]
        assert _shape(store.engine) == _declared()
        assert inspect(store.engine).has_table(audit_events.name)
        if backend == "postgresql":  # the constraint became the partial index
            with store.engine.connect() as conn:
                definition = conn.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                    {"n": "uq_stalwart_jobs_unique_key"},
                ).scalar_one()
            assert definition.endswith("WHERE (unique_key IS NOT NULL)")
    finally:
        store.dispose()
