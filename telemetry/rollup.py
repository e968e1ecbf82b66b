"""One UTC day of usage events reduced to the rollups' rows: a pure function, so that the host's
job only reads events and writes rows, and tests can check the reduction on its own.

Rules applied here, once (SMG_MODEL.md): events of bots, of unknown and of system actors are
dropped; a self-interaction (an event whose ``owner`` is its actor: reacting to, answering or
mentioning oneself) counts as activity only, never as an interaction, a contribution, a tie or
a response; "after hours" is outside 07:00-19:00 or on a Saturday or Sunday in the actor's own
time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALL = "*"  # the slice of every event of a person's day
NO_PROCESS = ""  # the slice of events without a business process (visits, follows …)


@dataclass(frozen=True)
class Vocabulary:
    """Which event kinds mean what to telemetry (the host derives it from its kind registry)."""

    interactions: frozenset[str]
    contributions: frozenset[str]
    thread_starts: frozenset[str]
    comments: frozenset[str]
    reactions: frozenset[str]
    reports_raised: frozenset[str] = frozenset()
    reports_resolved: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Person:
    is_bot: bool = False
    time_zone: str = "UTC"
    is_external: bool = False


class Event(NamedTuple):
    occurred_at: datetime  # aware UTC
    kind: str
    actor_id: int | None
    owner_id: int | None
    process: str | None
    thread_root_id: int | None
    object_id: int | None
    is_question: bool = False  # thread starts only


class Counts(NamedTuple):
    events: int
    interactions: int
    contributions: int
    after_hours: int


@dataclass
class DayRollup:
    day: date
    # (slice, person) -> counts
    person_days: dict[tuple[str, int], Counts] = field(default_factory=dict)
    # (slice, source, target) -> weight
    ties: dict[tuple[str, int, int], int] = field(default_factory=dict)
    # root -> (process, author, started_at, is_question)
    thread_starts: dict[int, tuple[str, int, datetime, bool]] = field(default_factory=dict)
    # (root, responder) -> (first response at, first comment at or None)
    responses: dict[tuple[int, int], tuple[datetime, datetime | None]] = field(default_factory=dict)
    # report -> (process, raised at) / report -> resolved at
    reports_raised: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    reports_resolved: dict[int, datetime] = field(default_factory=dict)


class AfterHours:
    """Whether a UTC instant is after hours for a time zone, cached per quarter hour (time zone
    offsets are whole quarters of an hour everywhere)."""

    def __init__(self) -> None:
        self._zones: dict[str, ZoneInfo] = {}
        self._cache: dict[tuple[str, date, int], bool] = {}

    def _zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                zone = ZoneInfo("UTC")
            self._zones[name] = zone
        return zone

    def __call__(self, when: datetime, time_zone: str) -> bool:
        """``when`` is UTC (aware, or naive meaning UTC)."""
        quarter = when.hour * 4 + when.minute // 15
        key = (time_zone, when.date(), quarter)
        hit = self._cache.get(key)
        if hit is None:
            start = datetime.combine(when.date(), time(quarter // 4, quarter % 4 * 15), UTC)
            hit = self.late_at(start, time_zone)
            self._cache[key] = hit
        return hit

    def late_at(self, moment: datetime, time_zone: str) -> bool:
        local = moment.astimezone(self._zone(time_zone))
        return local.weekday() >= 5 or not (7 <= local.hour < 19)

    def hour_split(self, hour_start: datetime, time_zone: str) -> tuple[int, bool, bool]:
        """An hour of UTC (aware ``hour_start``) in a time zone as (split, before, after): the
        minutes before ``split`` are after hours if ``before``, the rest if ``after``. Offsets
        are whole quarters of an hour and lateness changes only at 07:00 and 19:00 local, so
        an hour has at most one change, at a quarter."""
        first = self.late_at(hour_start, time_zone)
        for quarter in (1, 2, 3):
            moment = hour_start + timedelta(minutes=15 * quarter)
            if self.late_at(moment, time_zone) != first:
                return 15 * quarter, first, not first
        return 60, first, first


def reduce_day(
    day: date,
    events: Iterable[Event],
    people: Mapping[int, Person],
    vocabulary: Vocabulary,
    after_hours: AfterHours | None = None,
) -> DayRollup:
    """The rollup rows of ``day`` from that day's events (in any order)."""
    is_after_hours = after_hours or AfterHours()
    out = DayRollup(day)
    counts: dict[tuple[str, int], list[int]] = {}
    ties = out.ties
    v = vocabulary
    for e in events:
        actor = e.actor_id
        if actor is None:
            continue
        person = people.get(actor)
        if person is None or person.is_bot:
            continue
        if e.kind in v.reports_raised and e.object_id is not None:
            out.reports_raised[e.object_id] = (e.process or NO_PROCESS, e.occurred_at)
        elif e.kind in v.reports_resolved and e.object_id is not None:
            out.reports_resolved[e.object_id] = e.occurred_at
        process = e.process or NO_PROCESS
        owner = e.owner_id
        self_interaction = owner == actor
        interaction = e.kind in v.interactions and not self_interaction
        contribution = e.kind in v.contributions and not self_interaction
        late = interaction and is_after_hours(e.occurred_at, person.time_zone)
        for slice_ in (process, ALL):
            row = counts.get((slice_, actor))
            if row is None:
                row = counts[(slice_, actor)] = [0, 0, 0, 0]
            row[0] += 1
            if interaction:
                row[1] += 1
                if late:
                    row[3] += 1
            if contribution:
                row[2] += 1
        if not interaction:
            continue
        if owner is not None:
            target = people.get(owner)
            if target is not None and not target.is_bot:
                for slice_ in (process, ALL):
                    key = (slice_, actor, owner)
                    ties[key] = ties.get(key, 0) + 1
        root = e.thread_root_id
        if e.kind in v.thread_starts:
            if root is None:
                root = e.object_id
            if root is not None:
                out.thread_starts[root] = (process, actor, e.occurred_at, e.is_question)
        elif root is not None and (e.kind in v.comments or e.kind in v.reactions):
            comment_at = e.occurred_at if e.kind in v.comments else None
            seen = out.responses.get((root, actor))
            if seen is None:
                out.responses[(root, actor)] = (e.occurred_at, comment_at)
            else:
                first, first_comment = seen
                if comment_at is not None and (first_comment is None or comment_at < first_comment):
                    first_comment = comment_at
                out.responses[(root, actor)] = (min(first, e.occurred_at), first_comment)
    out.person_days = {key: Counts(*row) for key, row in counts.items()}
    return out


def day_bounds(day: date, tz: object) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day as aware datetimes (``tz`` is ``datetime.UTC``)."""
    start = datetime.combine(day, time(0), tz)  # type: ignore[arg-type]
    return start, start + timedelta(days=1)
