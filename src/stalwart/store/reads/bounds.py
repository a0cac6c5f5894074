"""How the reads stay bounded, whatever the size of `stalwart_jobs`.

Lists walk an index in keyset order and stop after a page; filters that no index
serves look at a window of at most `SCAN_WINDOW` rows per page (the page then says how
far it looked); counts that could grow with the table stop at a cap; totals of the
jobs table are estimates read from the database's statistics.

Read these constants as ``bounds.SCAN_WINDOW`` (the module's attribute, at call time),
so a test can lower them for every read at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, select

__all__ = ["COUNT_CAP", "SCAN_WINDOW", "Estimate", "capped_count"]

# Rows a filtered list page looks at, at most, when no index serves the filter.
SCAN_WINDOW = 10_000
# Counts shown as "N+" past this (jobs ahead in line, capped table counts).
COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class Estimate:
    """A row count: exact, estimated from statistics, or at least ``value``."""

    value: int
    kind: str  # "exact" | "estimate" | "at_least"


def capped_count(conn: Connection, q: Select[Any], cap: int) -> Estimate:
    """How many rows ``q`` returns, counting no further than ``cap``."""
    bounded = select(func.count()).select_from(q.limit(cap + 1).subquery())
    n = int(conn.execute(bounded).scalar_one())
    return Estimate(min(n, cap), "at_least" if n > cap else "exact")
