"""Recurring schedules: cron lines (via croniter) and plain phrases, in a time zone.

Phrases: ``every second``, ``every 5 seconds``, ``every minute``, ``every 10 minutes``,
``every hour``, ``every 2 hours``, ``every day at 9am``, ``every day at 17:30``,
``every monday at 10:30``, ``every weekday at 8am``. Anything else is read as a cron
line (5 fields, or 6 with seconds first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DAYS = {
    "monday": "1",
    "tuesday": "2",
    "wednesday": "3",
    "thursday": "4",
    "friday": "5",
    "saturday": "6",
    "sunday": "0",
    "day": "*",
    "weekday": "1-5",
    "weekend": "0,6",
}
_EVERY_N = re.compile(r"^every\s+(?:(\d+)\s+)?(second|minute|hour|day)s?$")
_EVERY_AT = re.compile(
    r"^every\s+(" + "|".join(_DAYS) + r")\s+at\s+(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$"
)


class Schedule(Protocol):
    @property
    def text(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime:
        """The first run time strictly after ``moment`` (aware datetimes, UTC out)."""
        ...


@dataclass(frozen=True)
class IntervalSchedule:
    text: str
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        # Aligned to the epoch, so every scheduler computes the same run times.
        ts = moment.timestamp()
        nxt = (int(ts // self.seconds) + 1) * self.seconds
        return datetime.fromtimestamp(nxt, UTC)


@dataclass(frozen=True)
class CronSchedule:
    text: str
    cron: str
    zone: ZoneInfo

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        nxt: datetime = croniter(self.cron, local, second_at_beginning=True).get_next(datetime)
        return nxt.astimezone(UTC)


def parse_schedule(text: str, time_zone: str = "UTC") -> Schedule:
    """A Schedule from a phrase or a cron line; ValueError saying what is wrong."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {time_zone!r} (use an IANA name like 'Europe/Paris')"
        ) from None
    phrase = " ".join(text.lower().split())
    if m := _EVERY_N.match(phrase):
        n = int(m.group(1) or 1)
        if n < 1:
            raise ValueError(f"{text!r}: the interval must be at least 1")
        seconds = n * _UNITS[m.group(2)]
        if m.group(2) == "day":
            return CronSchedule(text, f"0 0 0 */{n} * *" if n > 1 else "0 0 0 * * *", zone)
        return IntervalSchedule(text, seconds)
    if m := _EVERY_AT.match(phrase):
        day, hour, minute, ampm = m.group(1), int(m.group(2)), int(m.group(3) or 0), m.group(4)
        if ampm:
            if not 1 <= hour <= 12:
                raise ValueError(f"{text!r}: {hour}{ampm} is not a time")
            hour = hour % 12 + (12 if ampm == "pm" else 0)
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r}: {hour}:{minute:02d} is not a time")
        return CronSchedule(text, f"0 {minute} {hour} * * {_DAYS[day]}", zone)
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"{text!r} is neither a phrase ('every 5 minutes', 'every day at 9am', "
            "'every monday at 10:30') nor a cron line of 5 or 6 fields"
        )
    cron = " ".join(["0", *fields]) if len(fields) == 5 else text
    if not croniter.is_valid(cron, second_at_beginning=True):
        raise ValueError(f"{text!r} is not a valid cron line")
    return CronSchedule(text, cron, zone)


def run_times_between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Run times in (start, end], in order."""
    out = []
    t = schedule.next_after(start)
    while t <= end:
        out.append(t)
        t = schedule.next_after(t)
    return out
