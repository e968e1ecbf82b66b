"""The clock every action reads, so that tests and the demo simulator can act in the past.

``now()`` always returns a timezone-aware UTC datetime. ``frozen_at`` and ``set_clock`` replace
the source for the whole process (the simulator is single-threaded); ``reset_clock`` restores
the system clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_source: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time as an aware UTC datetime."""
    if _source is None:
        return datetime.now(UTC)
    value = _source()
    if value.tzinfo is None:
        raise ValueError("the clock source must return aware datetimes")
    return value.astimezone(UTC)


def system_now() -> datetime:
    """Wall-clock UTC, for infrastructure (leases, retries) that must not follow a set clock."""
    return datetime.now(UTC)


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Use ``source`` for ``now()``; ``None`` restores the system clock."""
    global _source
    _source = source


def reset_clock() -> None:
    set_clock(None)


class SettableClock:
    """A clock that stays where it is put and moves only when told."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.current = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        self.current = when.astimezone(UTC)


@contextmanager
def frozen_at(when: datetime) -> Iterator[SettableClock]:
    """Within the block, ``now()`` returns ``when`` (move it with ``clock.set``)."""
    previous = _source
    clock = SettableClock(when)
    set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
