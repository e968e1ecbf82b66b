"""Retention of the usage event log: raw events are kept at most 13 months (SMG_MODEL.md).

Before deleting, the rollups must hold every day that is deleted, so that readings and the
indicators of the last 13 months keep working. Person-level rollup rows older than the cut-off
(person days, ties, threads) are deleted too; what stays is each person's first-contribution
marker, coarsened (so that a later post is not taken for a first one), and the reports (which
name nobody). A marker in the cut-off's month keeps that month only (its contributor cohort is
still measured, T1); an older one becomes ``CONTRIBUTED_BEFORE``, a day before any cohort, so
that it only says "contributed before" and never joins the cohort of a kept month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import Engine, and_, delete, func, or_, select, update

from esn.clock import now
from esn.database import write_intent
from esn.usage.models import UsageEvent
from esn.usage.rollup_job import done_through
from esn.usage.rollups import Figures, FirstContribution, PersonDay, Thread, TieDay

RETENTION_MONTHS = 13
# The day a first-contribution marker older than the kept months is set to: before any month
# a contributor cohort is measured for.
CONTRIBUTED_BEFORE = date(1970, 1, 1)


class RetentionRefused(RuntimeError):
    """The rollups do not yet hold the days that would be deleted."""


@dataclass
class RetentionResult:
    cutoff: date
    events: int
    person_days: int
    ties: int
    threads: int
    first_contributions: int


def cutoff_day(today: date, months: int = RETENTION_MONTHS) -> date:
    """The first day kept: the same day of the month ``months`` months ago (clamped)."""
    index = today.year * 12 + today.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for day in (today.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def apply_retention(engine: Engine, *, dry_run: bool = False) -> RetentionResult:
    cutoff = cutoff_day(now().astimezone(UTC).date())
    start = datetime.combine(cutoff, time(0), UTC)
    with write_intent(), engine.begin() as conn:
        built = done_through(conn)
        oldest = conn.scalar(select(func.min(UsageEvent.occurred_at)))
        if oldest is not None and oldest < start and (built is None or built < cutoff):
            raise RetentionRefused(
                "The rollups do not yet hold the days before "
                f"{cutoff.isoformat()}: run `esn telemetry rollup` first."
            )

        def count(stmt: object) -> int:
            return int(conn.scalar(stmt) or 0)  # type: ignore[call-overload]

        month = cutoff.replace(day=1)
        older = and_(FirstContribution.day < month, FirstContribution.day != CONTRIBUTED_BEFORE)
        in_month = and_(FirstContribution.day > month, FirstContribution.day < cutoff)

        result = RetentionResult(
            cutoff,
            count(select(func.count()).where(UsageEvent.occurred_at < start)),
            count(select(func.count()).select_from(PersonDay).where(PersonDay.day < cutoff)),
            count(select(func.count()).select_from(TieDay).where(TieDay.day < cutoff)),
            count(select(func.count()).select_from(Thread).where(Thread.start_day < cutoff)),
            count(select(func.count()).select_from(FirstContribution).where(or_(older, in_month))),
        )
        if dry_run:
            conn.rollback()
            return result
        conn.execute(delete(UsageEvent).where(UsageEvent.occurred_at < start))
        conn.execute(delete(Figures))
        conn.execute(delete(PersonDay).where(PersonDay.day < cutoff))
        conn.execute(delete(TieDay).where(TieDay.day < cutoff))
        conn.execute(delete(Thread).where(Thread.start_day < cutoff))
        conn.execute(update(FirstContribution).where(older).values(day=CONTRIBUTED_BEFORE))
        conn.execute(update(FirstContribution).where(in_month).values(day=month))
    return result
