"""The `stalwart.App` behind a `StalwartBackend` (``backend.app``): Django's tasks by
module path, Django's hygiene around every job, Django's database as it is now."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...app import App
from ...config import Config
from ...context import JobInfo
from ...errors import UnknownTaskError
from ...store import Store
from ...tasks import Task

if TYPE_CHECKING:
    from .seam import BackendSeam


class DjangoApp(App):
    def __init__(self, backend: BackendSeam, config: Config) -> None:
        super().__init__(config=config)
        self.backend = backend
        self._django_key: object = None
        self.on_job_start(_before_job)
        self.on_job_end(_after_job)

    @property
    def store(self) -> Store:
        # Django may point its connection elsewhere after the backend is made (a test
        # run's test database): follow it. The URL is rebuilt only when Django's
        # settings for the database change (this runs on every enqueue).
        if self.backend.follows_django:
            key = self.backend.database_settings_key()
            if key != self._django_key:
                url = self.backend.current_database_url()
                if url != self.config.database_url:
                    self.close()
                    self._store = None
                    self.config = replace(self.config, database_url=url)
                self._django_key = key
        return super().store

    def get_task(self, name: str) -> Task[Any, Any]:
        """A registered task, or the Django task of that module path (imported now:
        a worker runs tasks of modules nothing imported yet)."""
        if name not in self.tasks:
            try:
                self.backend.resolve_task(name)
            except Exception as exc:
                raise UnknownTaskError(
                    f"no task named {name!r}: not registered, and not an importable Django "
                    f"task ({exc})"
                ) from None
        return super().get_task(name)

    def after_fork(self) -> None:
        super().after_fork()
        # The parent's Django connections are the parent's: forget them unclosed (closing
        # would end the parent's session on the shared socket).
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            conn.connection = None


def _before_job(_job: JobInfo) -> None:
    # What Django does when a request starts.
    from django.db import close_old_connections, reset_queries

    reset_queries()
    close_old_connections()


def _after_job(_job: JobInfo) -> None:
    # What Django does when a request ends: connections past CONN_MAX_AGE or broken
    # are closed, and so are this context's cache connections.
    from django.core.cache import caches
    from django.db import close_old_connections

    close_old_connections()
    caches.close_all()
