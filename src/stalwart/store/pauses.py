"""SQL of `stalwart_pauses`: paused queues (they survive restarts: they are rows)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from . import schema as s
from .base import StoreBase

p = s.pauses


class PausesStore(StoreBase):
    def queue_pause(self, queue_name: str) -> bool:
        """Pause a queue; False if it was paused already."""

        def body(conn: Connection) -> bool:
            if conn.execute(select(p.c.queue_name).where(p.c.queue_name == queue_name)).first():
                return False
            conn.execute(insert(p).values(queue_name=queue_name, created_at=self.clock.now()))
            return True

        return self.run(body)

    def queue_resume(self, queue_name: str) -> bool:
        """Resume a queue; False if it was not paused."""
        return self.run(
            lambda conn: conn.execute(delete(p).where(p.c.queue_name == queue_name)).rowcount > 0
        )

    def queues_paused(self) -> set[str]:
        return self.read(lambda conn: set(conn.execute(select(p.c.queue_name)).scalars()))
