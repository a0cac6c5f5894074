"""The backend-agnostic parts of Django 6.1's tests/tasks/test_immediate_backend.py,
run against StalwartBackend: every enqueue is followed by a real worker run
(`run_jobs`), then the result is read back (`refresh`) and checked as upstream checks
the ImmediateBackend's.

Left out (ImmediateBackend's own behaviour, the opposite of a queue's):
- test_throws_keyboard_interrupt: the immediate backend lets KeyboardInterrupt reach
  the caller of enqueue; in a queue there is no caller left, so the job fails and the
  worker goes on (`test_keyboard_interrupt_fails_the_job_not_the_worker`, ours).
- test_cannot_get_result, test_cannot_refresh_result: StalwartBackend supports results
  (every test here reads them).
- test_cannot_pass_run_after: StalwartBackend supports run_after
  (`test_run_after_waits`, ours).
- ImmediateBackendTransactionTestCase.test_doesnt_wait_until_transaction_commit_by_default:
  ours waits for the commit by design (test_transactions.py).
"""

from datetime import timedelta

from django.test import SimpleTestCase, override_settings
from django.utils import timezone

from stalwart.contrib.django import StalwartBackend

from . import tasks as test_tasks
from .compat import (
    LOGGER_NAME,
    STALWART,
    InvalidTask,
    TaskResultStatus,
    arun_jobs,
    default_task_backend,
    run_jobs,
    task_backends,
)


@override_settings(TASKS={"default": {"BACKEND": STALWART, "QUEUES": []}})
class StalwartBackendTestCase(SimpleTestCase):
    def test_using_correct_backend(self):
        self.assertEqual(default_task_backend, task_backends["default"])
        self.assertIsInstance(task_backends["default"], StalwartBackend)
        self.assertEqual(default_task_backend.alias, "default")
        self.assertEqual(default_task_backend.options, {})

    def test_enqueue_task(self):
        for task in [test_tasks.noop_task, test_tasks.noop_task_async]:
            with self.subTest(task):
                result = task.enqueue(1, two=3)
                run_jobs()
                result.refresh()

                self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)
                self.assertIs(result.is_finished, True)
                self.assertIsNotNone(result.started_at)
                self.assertIsNotNone(result.last_attempted_at)
                self.assertIsNotNone(result.finished_at)
                self.assertGreaterEqual(result.started_at, result.enqueued_at)
                self.assertGreaterEqual(result.finished_at, result.started_at)
                self.assertIsNone(result.return_value)
                self.assertEqual(result.task, task)
                self.assertEqual(result.args, [1])
                self.assertEqual(result.kwargs, {"two": 3})
                self.assertEqual(result.attempts, 1)

    async def test_enqueue_task_async(self):
        for task in [test_tasks.noop_task, test_tasks.noop_task_async]:
            with self.subTest(task):
                result = await task.aenqueue()
                await arun_jobs()
                await result.arefresh()

                self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)
                self.assertIs(result.is_finished, True)
                self.assertIsNotNone(result.started_at)
                self.assertIsNotNone(result.last_attempted_at)
                self.assertIsNotNone(result.finished_at)
                self.assertGreaterEqual(result.started_at, result.enqueued_at)
                self.assertGreaterEqual(result.finished_at, result.started_at)
                self.assertIsNone(result.return_value)
                self.assertEqual(result.task, task)
                self.assertEqual(result.args, [])
                self.assertEqual(result.kwargs, {})
                self.assertEqual(result.attempts, 1)

    def test_catches_exception(self):
        test_data = [
            (
                test_tasks.failing_task_value_error,  # Task function.
                ValueError,  # Expected exception.
                "This Task failed due to ValueError",  # Expected message.
            ),
            (
                test_tasks.failing_task_system_exit,
                SystemExit,
                "This Task failed due to SystemExit",
            ),
        ]
        for task, exception, message in test_data:
            with (
                self.subTest(task),
                self.assertLogs(LOGGER_NAME, level="ERROR") as captured_logs,
            ):
                result = task.enqueue()
                run_jobs()
                result.refresh()

                self.assertEqual(len(captured_logs.output), 1)
                self.assertIn(message, captured_logs.output[0])

                self.assertEqual(result.status, TaskResultStatus.FAILED)
                with self.assertRaisesMessage(ValueError, "Task failed"):
                    result.return_value
                self.assertIs(result.is_finished, True)
                self.assertIsNotNone(result.started_at)
                self.assertIsNotNone(result.last_attempted_at)
                self.assertIsNotNone(result.finished_at)
                self.assertGreaterEqual(result.started_at, result.enqueued_at)
                self.assertGreaterEqual(result.finished_at, result.started_at)
                self.assertEqual(result.errors[0].exception_class, exception)
                traceback = result.errors[0].traceback
                self.assertIs(
                    traceback and traceback.endswith(f"{exception.__name__}: {message}\n"),
                    True,
                    traceback,
                )
                self.assertEqual(result.task, task)
                self.assertEqual(result.args, [])
                self.assertEqual(result.kwargs, {})

    def test_keyboard_interrupt_fails_the_job_not_the_worker(self):
        # Ours, for upstream's test_throws_keyboard_interrupt.
        with self.assertLogs(LOGGER_NAME, level="ERROR"):
            result = test_tasks.failing_task_keyboard_interrupt.enqueue()
            after = test_tasks.calculate_meaning_of_life.enqueue()
            self.assertEqual(run_jobs(), 2)
        result.refresh()
        after.refresh()
        self.assertEqual(result.status, TaskResultStatus.FAILED)
        self.assertEqual(result.errors[0].exception_class, KeyboardInterrupt)
        self.assertEqual(after.return_value, 42)

    def test_complex_exception(self):
        with self.assertLogs(LOGGER_NAME, level="ERROR"):
            result = test_tasks.complex_exception.enqueue()
            run_jobs()
        result.refresh()

        self.assertEqual(result.status, TaskResultStatus.FAILED)
        with self.assertRaisesMessage(ValueError, "Task failed"):
            result.return_value
        self.assertIsNotNone(result.started_at)
        self.assertIsNotNone(result.last_attempted_at)
        self.assertIsNotNone(result.finished_at)
        self.assertGreaterEqual(result.started_at, result.enqueued_at)
        self.assertGreaterEqual(result.finished_at, result.started_at)

        self.assertIsNone(result._return_value)
        self.assertEqual(result.errors[0].exception_class, ValueError)
        self.assertIn('ValueError(ValueError("This task failed"))', result.errors[0].traceback)

        self.assertEqual(result.task, test_tasks.complex_exception)
        self.assertEqual(result.args, [])
        self.assertEqual(result.kwargs, {})

    def test_complex_return_value(self):
        with self.assertLogs(LOGGER_NAME, level="ERROR"):
            result = test_tasks.complex_return_value.enqueue()
            run_jobs()
        result.refresh()

        self.assertEqual(result.status, TaskResultStatus.FAILED)
        self.assertIsNotNone(result.started_at)
        self.assertIsNotNone(result.last_attempted_at)
        self.assertIsNotNone(result.finished_at)
        self.assertGreaterEqual(result.started_at, result.enqueued_at)
        self.assertGreaterEqual(result.finished_at, result.started_at)
        self.assertIsNone(result._return_value)
        self.assertEqual(result.errors[0].exception_class, TypeError)
        self.assertIn("Unsupported type", result.errors[0].traceback)

    def test_result(self):
        result = default_task_backend.enqueue(test_tasks.calculate_meaning_of_life, [], {})
        run_jobs()
        result.refresh()

        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)
        self.assertEqual(result.return_value, 42)

    async def test_result_async(self):
        result = await default_task_backend.aenqueue(test_tasks.calculate_meaning_of_life, [], {})
        await arun_jobs()
        await result.arefresh()

        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)
        self.assertEqual(result.return_value, 42)

    def test_run_after_waits(self):
        # Ours, for upstream's test_cannot_pass_run_after.
        later = timezone.now() + timedelta(hours=1)
        result = test_tasks.noop_task.using(run_after=later).enqueue()
        self.assertEqual(run_jobs(), 0)
        result.refresh()
        self.assertEqual(result.status, TaskResultStatus.READY)  # scheduled reads as READY
        self.assertEqual(result.task.run_after, later)

    def test_enqueue_logs(self):
        with self.assertLogs(LOGGER_NAME, level="DEBUG") as captured_logs:
            result = test_tasks.noop_task.enqueue()
            run_jobs()

        self.assertEqual(len(captured_logs.output), 3)

        self.assertIn("enqueued", captured_logs.output[0])
        self.assertIn(result.id, captured_logs.output[0])

        self.assertIn("state=RUNNING", captured_logs.output[1])
        self.assertIn(result.id, captured_logs.output[1])

        self.assertIn("state=SUCCESSFUL", captured_logs.output[2])
        self.assertIn(result.id, captured_logs.output[2])

    def test_failed_logs(self):
        with self.assertLogs(LOGGER_NAME, level="DEBUG") as captured_logs:
            result = test_tasks.failing_task_value_error.enqueue()
            run_jobs()

        self.assertEqual(len(captured_logs.output), 3)
        self.assertIn("state=RUNNING", captured_logs.output[1])
        self.assertIn(result.id, captured_logs.output[1])

        self.assertIn("state=FAILED", captured_logs.output[2])
        self.assertIn(result.id, captured_logs.output[2])

    def test_successful_task_no_none_in_logs(self):
        with self.assertLogs(LOGGER_NAME, level="DEBUG") as captured_logs:
            result = test_tasks.noop_task.enqueue()
            run_jobs()
        result.refresh()

        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)

        for log_output in captured_logs.output:
            self.assertNotIn("None", log_output)

    def test_takes_context(self):
        result = test_tasks.get_task_id.enqueue()
        run_jobs()
        result.refresh()

        self.assertEqual(result.return_value, result.id)

    def test_context(self):
        result = test_tasks.test_context.enqueue(1)
        run_jobs()
        result.refresh()
        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)

    def test_validate_on_enqueue(self):
        task_with_custom_queue_name = test_tasks.noop_task.using(queue_name="unknown_queue")

        with override_settings(TASKS={"default": {"BACKEND": STALWART, "QUEUES": ["queue-1"]}}):
            with self.assertRaisesMessage(
                InvalidTask, "Queue 'unknown_queue' is not valid for backend"
            ):
                task_with_custom_queue_name.enqueue()

    async def test_validate_on_aenqueue(self):
        task_with_custom_queue_name = test_tasks.noop_task.using(queue_name="unknown_queue")

        with override_settings(TASKS={"default": {"BACKEND": STALWART, "QUEUES": ["queue-1"]}}):
            with self.assertRaisesMessage(
                InvalidTask, "Queue 'unknown_queue' is not valid for backend"
            ):
                await task_with_custom_queue_name.aenqueue()
