"""Transactional enqueue: inside ``transaction.atomic()`` the job is written through
Django's own connection, so it commits or rolls back with the user's rows, and no
worker can see it before the commit. On each database of the run."""

import threading
import time
from functools import partial

from django.db import connection, transaction
from django.test import TransactionTestCase

from stalwart.contrib.django import stalwart_backend
from stalwart.processes import Worker
from tests.helpers import count, running, wait_for

from . import tasks as test_tasks
from .compat import TaskResultDoesNotExist, TaskResultStatus, run_jobs
from .models import Note


def stored_jobs() -> int:
    return count(stalwart_backend().app.store, "jobs")


class TransactionalEnqueueTests(TransactionTestCase):
    available_apps = ["tests.django_suite"]

    def test_commit_stores_the_job_with_the_rows(self):
        with transaction.atomic():
            Note.objects.create(text="order 1")
            result = test_tasks.add_note.enqueue("from the job")
            self.assertTrue(connection.in_atomic_block)
        self.assertEqual(stored_jobs(), 1)
        self.assertEqual(run_jobs(), 1)
        result.refresh()
        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL, result.errors)
        self.assertEqual(
            sorted(Note.objects.values_list("text", flat=True)), ["from the job", "order 1"]
        )

    def test_rollback_drops_the_job_with_the_rows(self):
        with self.assertRaises(RuntimeError), transaction.atomic():
            Note.objects.create(text="order 2")
            result = test_tasks.add_note.enqueue("never")
            raise RuntimeError("the view failed")
        self.assertEqual(Note.objects.count(), 0)
        self.assertEqual(stored_jobs(), 0)
        with self.assertRaises(TaskResultDoesNotExist):
            result.refresh()
        self.assertEqual(run_jobs(), 0)

    def test_savepoint_rollback_drops_only_its_job(self):
        with transaction.atomic():
            kept = test_tasks.add_note.enqueue("kept")
            with self.assertRaises(RuntimeError), transaction.atomic():
                test_tasks.add_note.enqueue("dropped")
                raise RuntimeError
        self.assertEqual(stored_jobs(), 1)
        run_jobs()
        kept.refresh()
        self.assertEqual(kept.status, TaskResultStatus.SUCCESSFUL)
        self.assertEqual(list(Note.objects.values_list("text", flat=True)), ["kept"])

    def test_a_worker_cannot_see_an_uncommitted_job(self):
        # A real worker polls all along while the job's transaction stays open for a
        # second in another thread; the job runs only once it is committed.
        entered, release = threading.Event(), threading.Event()

        def view() -> None:
            with transaction.atomic():
                Note.objects.create(text="order")
                test_tasks.add_note.enqueue("late")
                entered.set()
                release.wait(30)
            connection.close()

        app = stalwart_backend().app
        with running(Worker(app, threads=2, polling_interval=0.01)):
            t = threading.Thread(target=view)
            t.start()
            try:
                self.assertTrue(entered.wait(30))
                time.sleep(1.0)  # the worker claims (or waits on SQLite's lock) meanwhile
                self.assertEqual(Note.objects.count(), 0)  # neither the row nor the job
            finally:
                release.set()
                t.join(30)
            wait_for(lambda: Note.objects.count() == 2, what="the job after the commit")
        self.assertEqual(sorted(Note.objects.values_list("text", flat=True)), ["late", "order"])

    def test_on_commit_pattern_of_djangos_docs(self):
        with transaction.atomic():
            Note.objects.create(text="paid")
            transaction.on_commit(partial(test_tasks.add_note.enqueue, "receipt"))
            with connection.cursor() as cursor:  # this transaction's own view
                cursor.execute("SELECT COUNT(*) FROM stalwart_jobs")
                self.assertEqual(cursor.fetchone()[0], 0)
        self.assertEqual(stored_jobs(), 1)
        run_jobs()
        self.assertEqual(Note.objects.count(), 2)

    def test_outside_atomic_the_job_is_stored_at_once(self):
        result = test_tasks.add_note.enqueue("autocommit")
        self.assertEqual(stored_jobs(), 1)
        self.assertEqual(stalwart_backend().get_result(result.id), result)
