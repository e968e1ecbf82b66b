"""HTTP boundary of the governance dashboard: indicators per scope, readings and their
comparison (the contract in docs/api.md), and what is measured about oneself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint
from pydantic import Field
from sqlalchemy import func, select

from esn import access
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.problems import FieldError, Problem, not_found, validation_problem
from esn.api.spec import operation
from esn.api.types import Cursor, Day, Input, Output
from esn.clock import now
from esn.extensions import db
from esn.governance import telemetry_service as service
from esn.governance.measure import Scope
from esn.governance.readings import Reading
from esn.processes import SCORED
from esn.usage.models import UsageEvent
from esn.usage.rollups import ALL, PersonDay

bp = Blueprint("governance_dashboard", __name__, url_prefix="/api/v1")
TAGS = ["governance dashboard"]
MAX_WINDOW = 400


def _lead() -> User:
    user = require_user()
    access.require(user, "governance:manage")
    return user


def _refuse_without_privacy_record() -> None:
    reason = service.telemetry_refusal()
    if reason is not None:
        raise Problem(409, "Conflict", reason, kind="telemetry-not-permitted")


class IndicatorQuery(Input):
    scope: str = Field("org", max_length=40, description="org | process:<key> | department:<id>")
    window_days: int = Field(90, ge=1, le=MAX_WINDOW)
    at: Day | None = Field(None, description="last day of the window; default: yesterday (UTC)")


class IndicatorOut(Output):
    key: str
    value: float | None
    numerator: float | None
    denominator: float | None
    suppressed: bool
    reason: str | None
    detail: dict[str, float] | None = None


class IndicatorsOut(Output):
    scope: str
    at: date
    window_days: int
    population: int
    indicators: list[IndicatorOut]


def _invalid(field: str, message: str) -> Problem:
    return validation_problem(
        [FieldError(pointer=f"/{field}", location="query", message=message)], message
    )


def _scope(text: str) -> Scope:
    try:
        scope = Scope.parse(text)
    except ValueError:
        raise _invalid(
            "scope",
            "scope must be org, process:<key> (marketing, recruitment, innovation, production, "
            "service) or department:<id>.",
        ) from None
    if scope.kind == "process" and scope.key not in {p.value for p in SCORED}:
        raise _invalid("scope", f"Unknown process {scope.key!r}.")
    if scope.kind == "department" and not service.department_exists(int(scope.key or 0)):
        raise not_found()
    return scope


def _at(value: date | None) -> date:
    last = service.last_complete_day()
    if value is None:
        return last
    if value > last:
        raise _invalid("at", f"at must be a complete day: {last.isoformat()} or earlier.")
    return value


@operation(
    bp,
    "/governance/indicators",
    "GET",
    summary="Every indicator of a scope over a window",
    tags=TAGS,
    query=IndicatorQuery,
    response=IndicatorsOut,
    responses={409: "Telemetry is off: no privacy record (DPIA, works council consent)"},
)
def get_indicators(query: IndicatorQuery) -> IndicatorsOut:
    """Aggregates only: a figure about fewer than k people is suppressed (``value`` null,
    ``reason`` "insufficient_data"). Governance leads and administrators."""
    _lead()
    _refuse_without_privacy_record()
    scope = _scope(query.scope)
    at = _at(query.at)
    service.bring_rollups_up_to(at)
    population, values = service.indicators(scope, at, query.window_days)
    db.session.commit()  # the figures computed are kept for the next view
    return IndicatorsOut(
        scope=scope.name,
        at=at,
        window_days=query.window_days,
        population=population,
        indicators=[IndicatorOut(**v) for v in values],
    )


class BreakdownQuery(Input):
    indicator: str = Field(max_length=8)
    window_days: int = Field(90, ge=1, le=MAX_WINDOW)
    at: Day | None = None


class BreakdownRow(Output):
    department_id: int
    department: str
    value: float | None
    suppressed: bool
    reason: str | None


class BreakdownOut(Output):
    indicator: str
    at: date
    window_days: int
    departments: list[BreakdownRow]


@operation(
    bp,
    "/governance/indicators/by-department",
    "GET",
    summary="One indicator for each top-level department",
    tags=TAGS,
    query=BreakdownQuery,
    response=BreakdownOut,
    responses={409: "Telemetry is off"},
)
def get_breakdown(query: BreakdownQuery) -> BreakdownOut:
    """Departments under k people are suppressed, and when exactly one is, so is the next
    smallest (complementary suppression), so that no hidden figure can be derived."""
    _lead()
    _refuse_without_privacy_record()
    if query.indicator not in service.indicator_keys():
        raise _invalid("indicator", "Unknown indicator.")
    at = _at(query.at)
    service.bring_rollups_up_to(at)
    rows = service.breakdown(query.indicator, at, query.window_days)
    return BreakdownOut(
        indicator=query.indicator,
        at=at,
        window_days=query.window_days,
        departments=[BreakdownRow(**r) for r in rows],
    )


class MatrixQuery(Input):
    window_days: int = Field(90, ge=1, le=MAX_WINDOW)
    at: Day | None = None


class MatrixOut(Output):
    at: date
    window_days: int
    departments: list[dict[str, Any]]
    ties: list[list[int]]


@operation(
    bp,
    "/governance/network/departments",
    "GET",
    summary="The department-to-department interaction matrix",
    tags=TAGS,
    query=MatrixQuery,
    response=MatrixOut,
    responses={409: "Telemetry is off"},
)
def get_matrix(query: MatrixQuery) -> MatrixOut:
    """Distinct ties between the top-level departments over the window; only departments with
    at least 10 eligible people appear (k for per-department network figures)."""
    _lead()
    _refuse_without_privacy_record()
    at = _at(query.at)
    service.bring_rollups_up_to(at)
    departments, matrix = service.department_matrix(at, query.window_days)
    return MatrixOut(at=at, window_days=query.window_days, departments=departments, ties=matrix)


# --- readings ------------------------------------------------------------------------------------


class GateOut(Output):
    gate: str
    level: int
    kind: str
    metric: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    threshold: float | None
    status: str
    window_days: int | None
    source: str


class BlockingOut(GateOut):
    distance: float | None = None  # units of the numerator (or hours, days) still to go
    explanation: str | None = None  # the same in words


class ProcessOut(Output):
    process: str
    level: int
    measured_level: int
    declared_level: int
    ambition: int | None
    gap: int | None
    gates: list[GateOut]
    blocking: list[BlockingOut]


class ScopeFigures(Output):
    population: int
    window_days: int
    indicators: list[IndicatorOut]


class ReadingOut(Output):
    id: int
    taken_at: datetime
    measured_through: date
    definitions_version: str
    thresholds_version: str
    trigger: str
    processes: list[ProcessOut]
    indicators: dict[str, ScopeFigures]


class ReadingSummary(Output):
    id: int
    taken_at: datetime
    measured_through: date
    definitions_version: str
    thresholds_version: str
    trigger: str
    levels: dict[str, int]


class ReadingList(Output):
    items: list[ReadingSummary]
    next_cursor: str | None


class ReadingCreate(Input):
    at: Day | None = Field(None, description="last day measured; default: yesterday (UTC)")


class ReadingListQuery(Input):
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


def reading_out(reading: Reading) -> ReadingOut:
    content = reading.content
    return ReadingOut(
        id=reading.id,
        taken_at=reading.taken_at,
        measured_through=reading.measured_through,
        definitions_version=reading.definitions_version,
        thresholds_version=reading.thresholds_version,
        trigger=reading.trigger,
        processes=content["processes"],
        indicators=content["indicators"],
    )


@operation(
    bp,
    "/governance/readings",
    "POST",
    summary="Take a reading",
    tags=TAGS,
    body=ReadingCreate,
    response=ReadingOut,
    status=201,
    responses={409: "Telemetry is off"},
)
def create_reading(body: ReadingCreate) -> ReadingOut:
    """Freezes every indicator and every process's assessment, with the definitions and
    thresholds versions used."""
    user = _lead()
    _refuse_without_privacy_record()
    at = _at(body.at)
    service.bring_rollups_up_to(at)
    reading = service.do_take_reading(user, at, trigger="manual")
    db.session.commit()
    return reading_out(reading)


@operation(
    bp,
    "/governance/readings",
    "GET",
    summary="Readings, newest first",
    tags=TAGS,
    query=ReadingListQuery,
    response=ReadingList,
)
def list_readings(query: ReadingListQuery) -> ReadingList:
    _lead()
    items, next_cursor = service.list_readings(query.cursor, query.limit)
    return ReadingList(
        items=[
            ReadingSummary(
                id=r.id,
                taken_at=r.taken_at,
                measured_through=r.measured_through,
                definitions_version=r.definitions_version,
                thresholds_version=r.thresholds_version,
                trigger=r.trigger,
                levels={p["process"]: p["level"] for p in r.content["processes"]},
            )
            for r in items
        ],
        next_cursor=next_cursor,
    )


class CompareQuery(Input):
    from_: int = Field(alias="from", ge=1, le=2**31 - 1)
    to: int = Field(ge=1, le=2**31 - 1)


class Transition(Output):
    process: str
    from_level: int
    to_level: int
    change: str  # up | down | same
    gates_changed: list[dict[str, Any]]


class IndicatorDelta(Output):
    scope: str
    key: str
    from_value: float | None
    to_value: float | None
    delta: float | None
    suppressed: bool


class ReadingRef(Output):
    id: int
    taken_at: datetime
    measured_through: date
    thresholds_version: str


class Comparison(Output):
    from_reading: ReadingRef
    to_reading: ReadingRef
    processes: list[Transition]
    indicators: list[IndicatorDelta]


@operation(
    bp,
    "/governance/readings/compare",
    "GET",
    summary="Compare two readings",
    tags=TAGS,
    query=CompareQuery,
    response=Comparison,
)
def compare_readings(query: CompareQuery) -> Comparison:
    """Per process the level before and after and the gates that changed state; per scope and
    indicator the change. A figure suppressed in either reading has no delta."""
    _lead()
    before, after = service.access_reading(query.from_), service.access_reading(query.to)
    return Comparison(**service.compare(before, after))


@operation(
    bp,
    "/governance/readings/<int:reading_id>",
    "GET",
    summary="A reading",
    tags=TAGS,
    response=ReadingOut,
)
def get_reading(reading_id: int) -> ReadingOut:
    _lead()
    return reading_out(service.access_reading(reading_id))


# --- what is measured about me --------------------------------------------------------------------


class MyDay(Output):
    day: date
    events: int
    interactions: int
    contributions: int


class MyEvent(Output):
    occurred_at: datetime
    kind: str
    object_type: str | None
    object_id: int | None
    process: str | None


class MyUsage(Output):
    explanation: str
    totals: dict[str, int]
    days: list[MyDay]
    events: list[MyEvent]
    next_cursor: str | None


class MyUsageQuery(Input):
    limit: int = Field(100, ge=1, le=500)
    cursor: Cursor | None = None


@operation(
    bp,
    "/me/usage",
    "GET",
    summary="What is measured about me",
    tags=TAGS,
    query=MyUsageQuery,
    response=MyUsage,
)
def my_usage(query: MyUsageQuery) -> MyUsage:
    """Your own recorded events (newest first) and your daily counts as telemetry sees them.
    Nobody else can read these; the dashboard shows only aggregates over at least 5 people."""
    user = require_user()
    since = now().astimezone(UTC).date() - timedelta(days=396)
    days = db.session.execute(
        select(PersonDay.day, PersonDay.events, PersonDay.interactions, PersonDay.contributions)
        .where(PersonDay.person_id == user.id, PersonDay.process == ALL, PersonDay.day >= since)
        .order_by(PersonDay.day.desc())
        .limit(400)
    ).all()
    totals = db.session.execute(
        select(func.count(UsageEvent.id)).where(UsageEvent.actor_id == user.id)
    ).scalar_one()
    events, next_cursor = service.my_events(user, query.cursor, query.limit)
    return MyUsage(
        explanation=(
            "Every action you take is recorded as a usage event with its time, kind, object and "
            "business process. Telemetry counts them per day; governance sees only aggregates "
            "over groups of at least 5 people, never your figures. Raw events are deleted "
            "after 13 months."
        ),
        totals={
            "events": int(totals),
            "interactions_last_13_months": sum(int(d.interactions) for d in days),
            "contributions_last_13_months": sum(int(d.contributions) for d in days),
        },
        days=[
            MyDay(
                day=d.day,
                events=d.events,
                interactions=d.interactions,
                contributions=d.contributions,
            )
            for d in days
        ],
        events=events,
        next_cursor=next_cursor,
    )
