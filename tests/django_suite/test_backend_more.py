"""What Django's suite does not check and the issue asks: per-job connection hygiene,
the signals' sender, retries seen through TaskContext, a failed result's times."""

from django.db import connection
from django.db.backends.signals import connection_created
from django.test import TransactionTestCase

from stalwart.contrib.django import StalwartBackend, stalwart_backend
from stalwart.contrib.django.compat import task_finished, task_started
from stalwart.testing import drain

from . import tasks as test_tasks
from .compat import TaskResultStatus, run_jobs


class BackendTests(TransactionTestCase):
    available_apps = ["tests.django_suite"]

    def test_each_job_gets_its_own_django_connection(self):
        # As around a request: connections are closed after a job (CONN_MAX_AGE = 0),
        # so two jobs on the one worker thread open two.
        opened: list[int] = []

        def created(sender, connection, **kwargs):
            if connection.alias == "default":
                opened.append(1)

        connection_created.connect(created)
        try:
            first = test_tasks.count_notes.enqueue()
            second = test_tasks.count_notes.enqueue()
            self.assertEqual(drain(stalwart_backend().app, threads=1), 2)
        finally:
            connection_created.disconnect(created)
        first.refresh()
        second.refresh()
        self.assertEqual((first.return_value, second.return_value), (0, 0))
        self.assertEqual(len(opened), 2)

    def test_signals_are_sent_with_the_backend_class(self):
        seen: list[tuple[object, str, str]] = []

        def record(sender, task_result, **kwargs):
            seen.append((sender, kwargs["signal"] is task_started, task_result.status))

        task_started.connect(record)
        task_finished.connect(record)
        try:
            result = test_tasks.calculate_meaning_of_life.enqueue()
            run_jobs()
        finally:
            task_started.disconnect(record)
            task_finished.disconnect(record)
        self.assertEqual(
            seen,
            [
                (StalwartBackend, True, TaskResultStatus.RUNNING),
                (StalwartBackend, False, TaskResultStatus.SUCCESSFUL),
            ],
        )
        self.assertEqual(stalwart_backend().get_result(result.id).return_value, 42)

    def test_a_retry_is_seen_through_task_context(self):
        statuses: list[str] = []

        def record(sender, task_result, **kwargs):
            statuses.append(task_result.status)

        task_finished.connect(record)
        try:
            result = test_tasks.flaky.enqueue()
            run_jobs()
        finally:
            task_finished.disconnect(record)
        result.refresh()
        # The first attempt leaves the job READY (Stalwart runs it again), the second ends it.
        self.assertEqual(statuses, [TaskResultStatus.READY, TaskResultStatus.SUCCESSFUL])
        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)
        self.assertEqual(result.attempts, 2)
        self.assertEqual(result.return_value["attempt"], 2)
        self.assertEqual(len(result.return_value["worker_ids"]), 2)
        self.assertTrue(result.return_value["worker_ids"][-1].startswith("worker-"))
        self.assertEqual(result.return_value["errors"], ["builtins.ConnectionError"])
        self.assertEqual([e.exception_class for e in result.errors], [ConnectionError])

    def test_a_failed_result_has_finished_at(self):
        result = test_tasks.failing_task_value_error.enqueue()
        run_jobs()
        result.refresh()
        self.assertEqual(result.status, TaskResultStatus.FAILED)
        self.assertIsNotNone(result.finished_at)
        self.assertGreaterEqual(result.finished_at, result.started_at)
        self.assertEqual(result.errors[0].exception_class_path, "builtins.ValueError")

    def test_enqueue_outside_atomic_does_not_use_djangos_connection(self):
        connection.close()
        test_tasks.noop_task.enqueue()
        self.assertIsNone(connection.connection)  # Stalwart's own pool stored it
