"""Indicators of a scope (the organisation, a business process, a department) over a window,
read from the telemetry rollups (never from the raw event log) and computed by ``telemetry``.

The eligible population E of a scope, at day ``at``: the people telemetry counts (active, not
bots, not externals, ``esn.governance.queries``), created by the end of ``at``; for a process
its declared audience, for a department the people of that department and its sub-departments.
Windows are whole UTC days and end on ``at``, inclusive.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, case, distinct, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from esn.accounts.models import User
from esn.clock import now
from esn.directory.models import Department
from esn.directory.queries import subtree_ids
from esn.extensions import db
from esn.governance.queries import process_audience
from esn.usage.rollups import ALL, PersonDay, Report, Thread, TieDay
from telemetry import indicators, privacy
from telemetry.values import IndicatorValue


@dataclass(frozen=True)
class Scope:
    kind: str  # org | process | department
    key: str | None = None  # the process key or the department id (as text)

    @property
    def name(self) -> str:
        return self.kind if self.key is None else f"{self.kind}:{self.key}"

    @property
    def slice(self) -> str:
        """The rollup slice the scope reads."""
        return self.key if self.kind == "process" and self.key else ALL

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``org``, ``process:<key>`` or ``department:<id>``; ValueError otherwise (the caller
        checks that the process or department exists)."""
        if text == "org":
            return cls("org")
        kind, _, key = text.partition(":")
        if kind == "process" and key:
            return cls("process", key)
        if kind == "department" and key.isdigit() and len(key) <= 18:
            return cls("department", str(int(key)))
        raise ValueError(text)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), UTC)


def population_query(scope: Scope, at: date) -> Select[tuple[int]]:
    """The ids of the scope's eligible people at ``at``."""
    if scope.kind == "process":
        assert scope.key is not None
        audience = process_audience(scope.key).subquery()
        return select(User.id).where(
            User.id.in_(select(audience.c.id)), User.created_at < _end_of(at)
        )
    stmt = select(User.id).where(
        User.is_active.is_(True),
        User.is_bot.is_(False),
        User.is_external.is_(False),
        User.created_at < _end_of(at),
    )
    if scope.kind == "department":
        assert scope.key is not None
        stmt = stmt.where(User.department_id.in_(subtree_ids(int(scope.key))))
    return stmt


def _window(at: date, days: int) -> tuple[date, date]:
    return at - timedelta(days=days - 1), at


def _millis_between(later: Any, earlier: Any, postgres: bool) -> Any:
    """Whole milliseconds from ``earlier`` to ``later`` (NULL when ``later`` is), in SQL."""
    seconds: Any
    if postgres:
        seconds = func.extract("epoch", later - earlier)
    else:
        seconds = (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.round(seconds * 1000.0)


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _month_start(day: date, months_later: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


def raw_indicators(
    scope: Scope, at: date, window_days: int
) -> tuple[int, dict[str, IndicatorValue]]:
    """(population, every indicator and extra metric, before the privacy rules)."""
    start, end = _window(at, window_days)
    slice_ = scope.slice
    people = population_query(scope, at).subquery("population")
    members = select(people.c.id)
    in_people = PersonDay.person_id.in_(members)
    rows = db.session.execute(select(User.id, User.department_id).where(User.id.in_(members))).all()
    population = {uid: dept for uid, dept in rows}
    n = len(population)
    out: dict[str, IndicatorValue] = {}

    # A1 A2 A3 P2 P3 H1: each eligible person's sums over the window.
    totals = {
        pid: indicators.PersonTotals(ev, it, co, ah)
        for pid, ev, it, co, ah in db.session.execute(
            select(
                PersonDay.person_id,
                func.sum(PersonDay.events),
                func.sum(PersonDay.interactions),
                func.sum(PersonDay.contributions),
                func.sum(PersonDay.after_hours),
            )
            .where(PersonDay.process == slice_, PersonDay.day.between(start, end), in_people)
            .group_by(PersonDay.person_id)
        )
    }
    out.update(indicators.activity(n, totals, window_days))

    # A4: active person-days from 27 days before the window, by day and gap.
    gap = case((PersonDay.gap_days < indicators.STICKY_DAYS, PersonDay.gap_days), else_=None)
    sticky = db.session.execute(
        select(PersonDay.day, gap, func.count())
        .where(
            PersonDay.process == slice_,
            PersonDay.day.between(start - timedelta(days=indicators.STICKY_DAYS - 1), end),
            in_people,
        )
        .group_by(PersonDay.day, gap)
    ).all()
    out["A4"] = indicators.stickiness(start, end, [(d, g, c) for d, g, c in sticky], n)

    # R1 R2 Q1: the threads the scope's people started in the window; the database gives the
    # waits in milliseconds (reading 100,000s of timestamps into Python costs seconds).
    postgres = db.session.get_bind().dialect.name == "postgresql"
    threads = select(
        Thread.author_id,
        _millis_between(Thread.first_response_at, Thread.started_at, postgres),
        _millis_between(Thread.first_comment_at, Thread.started_at, postgres),
        Thread.is_question,
    ).where(Thread.start_day.between(start, end), Thread.author_id.in_(members))
    if scope.kind == "process":
        threads = threads.where(Thread.process == scope.key)
    out.update(
        indicators.responses(
            [
                (
                    author,
                    response / 3_600_000 if response is not None else None,
                    comment / 3_600_000 if comment is not None else None,
                    bool(question),
                )
                for author, response, comment, question in db.session.execute(threads).tuples()
            ],
            window_days,
        )
    )

    # R4: reports resolved in the window (not about people: the organisation or a process).
    reports = select(Report.raised_at, Report.resolved_at).where(
        Report.resolved_at.is_not(None),
        Report.resolved_at >= datetime.combine(start, time(0), UTC),
        Report.resolved_at < _end_of(end),
    )
    if scope.kind == "process":
        reports = reports.where(Report.process == scope.key)
    if scope.kind == "department":
        out["R4"] = indicators.escalation([], window_days)
    else:
        out["R4"] = indicators.escalation(
            [_hours(b, a) for a, b in db.session.execute(reports) if b is not None], window_days
        )

    # N1 X1 X2 X4: the distinct ties of the window from or to the scope's people.
    ties = db.session.execute(
        select(TieDay.source_id, TieDay.target_id)
        .where(
            TieDay.process == slice_,
            TieDay.day.between(start, end),
            or_(TieDay.source_id.in_(members), TieDay.target_id.in_(members)),
        )
        .distinct()
    ).all()
    department_of: dict[int, int | None] = {
        uid: dept
        for uid, dept in db.session.execute(
            select(User.id, User.department_id).where(User.is_bot.is_(False))
        )
    }
    departments = db.session.scalar(
        select(func.count(distinct(User.department_id))).where(
            User.is_active.is_(True),
            User.is_bot.is_(False),
            User.is_external.is_(False),
            User.department_id.is_not(None),
        )
    )
    out.update(
        indicators.network(
            [(u, v) for u, v in ties], population, department_of, departments or 0, window_days
        )
    )

    # T1: the six latest contributor cohorts whose third month after is complete by ``at``.
    out["T1"] = _retention(slice_, members, at, window_days)

    # T2: active in the 30 days to ``at`` / active in the 365 days to ``at``.
    def active_since(days: int) -> int:
        return (
            db.session.scalar(
                select(func.count(distinct(PersonDay.person_id))).where(
                    PersonDay.process == slice_,
                    PersonDay.day.between(at - timedelta(days=days - 1), at),
                    in_people,
                )
            )
            or 0
        )

    out["T2"] = indicators.health(active_since(30), active_since(365), window_days)

    # External participants active in the scope's slice.
    externals = db.session.scalar(
        select(func.count(distinct(PersonDay.person_id))).where(
            PersonDay.process == slice_,
            PersonDay.day.between(start, end),
            PersonDay.person_id.in_(
                select(User.id).where(User.is_external.is_(True), User.is_bot.is_(False))
            ),
        )
    )
    out["EXT"] = indicators.externals(externals or 0, window_days)
    return n, out


def _retention(slice_: str, members: Any, at: date, window_days: int) -> IndicatorValue:
    from esn.usage.rollups import FirstContribution

    # Month m is a cohort when the month m+3 has ended by the end of ``at``.
    last = _month_start(at + timedelta(days=1), -4)
    months = [_month_start(last, -i) for i in range(6)]
    first = months[-1]
    cohorts: dict[date, set[int]] = defaultdict(set)
    for person, day in db.session.execute(
        select(FirstContribution.person_id, FirstContribution.day).where(
            FirstContribution.process == slice_,
            FirstContribution.day >= first,
            FirstContribution.day < _month_start(last, 1),
            FirstContribution.person_id.in_(members),
        )
    ):
        cohorts[_month_start(day)].add(person)
    retained: dict[date, set[int]] = defaultdict(set)
    for person, day in db.session.execute(
        select(PersonDay.person_id, PersonDay.day).where(
            PersonDay.process == slice_,
            PersonDay.contributions > 0,
            PersonDay.day >= _month_start(first, 3),
            PersonDay.day < _month_start(last, 4),
            PersonDay.person_id.in_(members),
        )
    ):
        retained[_month_start(day, -3)].add(person)
    return indicators.retention(dict(cohorts), dict(retained), window_days)


def world_version() -> str:
    """What figures depend on besides the rollups of their days: how far the rollups are built
    (a thread's response rate changes as later days are built) and who is in which population
    (people, departments, memberships, process scopes). A figure computed under another
    version is computed again."""
    from esn.governance.models import ProcessScope, ScopeDepartment, ScopeGroup
    from esn.groups.models import GroupMember
    from esn.usage.rollup_job import FILL_STATE
    from esn.usage.rollups import FillState

    parts = [
        db.session.execute(
            select(FillState.done_through, FillState.updated_at).where(FillState.name == FILL_STATE)
        ).first(),
        db.session.execute(
            select(
                func.count(),
                func.max(User.updated_at),
                func.max(User.created_at),
                func.sum(case((User.is_active.is_(True), 1), else_=0)),
                func.sum(case((User.is_bot.is_(True), 1), else_=0)),
                func.sum(case((User.is_external.is_(True), 1), else_=0)),
                func.sum(func.coalesce(User.department_id, 0)),
            )
        ).first(),
        db.session.execute(
            select(func.count(), func.sum(func.coalesce(Department.parent_id, 0)))
        ).first(),
        db.session.execute(select(func.count(), func.max(GroupMember.joined_at))).first(),
        db.session.execute(select(func.count(), func.max(ProcessScope.updated_at))).first(),
        db.session.execute(select(func.count()).select_from(ScopeDepartment)).first(),
        db.session.execute(select(func.count()).select_from(ScopeGroup)).first(),
    ]
    text = repr([tuple(p) if p is not None else None for p in parts])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_indicators(
    scope: Scope, at: date, window_days: int
) -> tuple[int, dict[str, IndicatorValue]]:
    """``raw_indicators``, read from the figures kept for this scope, day and window when they
    were computed under the current ``world_version``; computed and kept otherwise. Keeping
    them is best effort: a figure that cannot be written now is simply computed next time."""
    from esn.usage.rollups import Figures

    version = world_version()
    kept = db.session.get(Figures, (scope.name, at, window_days))
    if kept is not None and kept.version == version:
        return kept.population, {v["key"]: IndicatorValue(**v) for v in kept.values}
    n, values = raw_indicators(scope, at, window_days)
    row = {
        "scope": scope.name, "at": at, "window_days": window_days, "version": version,
        "population": n, "values": [dataclasses.asdict(v) for v in values.values()],
        "computed_at": now(),
    }  # fmt: skip
    try:
        with db.session.begin_nested():
            db.session.merge(Figures(**row))
    except SQLAlchemyError:
        pass  # e.g. SQLite's write lock is busy: it is only a cache
    return n, values


def measure(scope: Scope, at: date, window_days: int) -> tuple[int, dict[str, IndicatorValue]]:
    """(population, indicators and extra metrics) with the privacy rules applied."""
    n, values = cached_indicators(scope, at, window_days)
    return n, privacy.guard(values, n, department_scope=scope.kind == "department")


def measurer(scope: Scope, at: date) -> Callable[[str, int], IndicatorValue | None]:
    """``measure(metric, window_days)`` for the assessment, computing each window once."""
    cache: dict[int, dict[str, IndicatorValue]] = {}

    def one(metric: str, window_days: int) -> IndicatorValue | None:
        if window_days not in cache:
            cache[window_days] = measure(scope, at, window_days)[1]
        return cache[window_days].get(metric)

    return one


def department_exists(department_id: int) -> bool:
    return db.session.get(Department, department_id) is not None


__all__ = ["Scope", "measure", "measurer", "population_query", "raw_indicators"]
