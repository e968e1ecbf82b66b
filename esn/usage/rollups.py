"""The rollups of the usage event log: what readings and the dashboard read instead of the raw
log. Person-level rows (a person's counts per day, the ties between people per day, the threads)
are built one UTC day at a time by ``esn.usage.rollup_job``; each day is built in one transaction
together with its checkpoint, so a job killed midway leaves complete days only and a rerun
continues where it stopped.

Process slices: ``process`` is the business process of the events counted, ``""`` for events
without one (visits, follows) and ``"*"`` for all of a person's events of the day together (the
organisation and department scopes read only ``"*"`` rows).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from esn.database import UTCDateTime
from esn.extensions import Base

ALL = "*"
NO_PROCESS = ""


class PersonDay(Base):
    """What one person did on one UTC day in one process slice."""

    __tablename__ = "telemetry_person_days"
    __table_args__ = (
        Index("ix_telemetry_person_days_person", "person_id", "process", "day"),
        # The job builds, and redoes, one day across every slice.
        Index("ix_telemetry_person_days_day", "day"),
    )

    process: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    interactions: Mapped[int] = mapped_column(Integer)
    contributions: Mapped[int] = mapped_column(Integer)
    # Interactions outside 07:00-19:00 local time or at a local weekend (H1).
    after_hours: Mapped[int] = mapped_column(Integer)
    # Days since the person's previous active day in the same slice (None: the first one);
    # lets stickiness (A4) count the people active in the 28 days to a day without reading
    # every day.
    gap_days: Mapped[int | None] = mapped_column(Integer)


class TieDay(Base):
    """u -> v: ``source`` commented on, reacted to or mentioned content by ``target``, or
    mentioned ``target``, ``weight`` times that day in that slice."""

    __tablename__ = "telemetry_tie_days"
    __table_args__ = (Index("ix_telemetry_tie_days_day", "day"),)

    process: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)


class Thread(Base):
    """A published post or article and when someone else first answered it (R1, R2)."""

    __tablename__ = "telemetry_threads"
    __table_args__ = (
        Index("ix_telemetry_threads_day", "start_day"),
        Index("ix_telemetry_threads_process_day", "process", "start_day"),
    )

    root_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    process: Mapped[str] = mapped_column(String(32))
    author_id: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    start_day: Mapped[date] = mapped_column(Date)
    is_question: Mapped[bool] = mapped_column(Boolean)
    # First comment or reaction by someone other than the author / first comment only.
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_comment_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FirstContribution(Base):
    """The day of a person's first contribution in a slice (contributor cohorts, T1)."""

    __tablename__ = "telemetry_first_contributions"

    process: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)


class Report(Base):
    """A report raised for moderation and when it was resolved (escalation latency, R4)."""

    __tablename__ = "telemetry_reports"
    __table_args__ = (Index("ix_telemetry_reports_resolved", "resolved_at"),)

    report_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    process: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FillState(Base):
    """How far a rollup has been built: every day up to ``done_through`` is complete."""

    __tablename__ = "telemetry_fill_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_through: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Figures(Base):
    """The indicators of one scope, day and window as computed from the rollups (before the
    privacy rules; aggregates only), kept so that the dashboard and readings do not recompute
    them. ``version`` says what they were computed from (the rollups' fill state and the
    people, departments, memberships and scopes that decide populations); an entry of another
    version is recomputed."""

    __tablename__ = "telemetry_figures"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[date] = mapped_column(Date, primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    population: Mapped[int] = mapped_column(Integer)
    values: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
