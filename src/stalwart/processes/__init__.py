"""The actors: worker, dispatcher (and, with the supervisor, scheduler)."""

from .dispatcher import Dispatcher
from .worker import Worker

__all__ = ["Dispatcher", "Worker"]
