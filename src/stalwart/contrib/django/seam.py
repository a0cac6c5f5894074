"""What the app, the runner and the results need of a `StalwartBackend` (so they do
not import it: the backend imports them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ...app import App


class BackendSeam(Protocol):
    alias: str
    follows_django: bool

    @property
    def app(self) -> App: ...

    def current_database_url(self) -> str: ...

    def database_settings_key(self) -> object: ...

    def resolve_task(self, module_path: str) -> Any: ...
