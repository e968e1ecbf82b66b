"""Reads and actions behind the dashboard: rollups brought up to date, indicators per scope,
breakdowns with complementary suppression, readings taken, listed and compared."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import not_found
from esn.api.types import MAX_ID
from esn.clock import now
from esn.directory.models import Department
from esn.extensions import db
from esn.governance import queries as governance
from esn.governance.measure import Scope, measure, population_query, raw_indicators
from esn.governance.readings import Reading, _facts_json, compute_reading
from esn.processes import SCORED
from esn.usage.kinds import declare
from esn.usage.models import UsageEvent
from esn.usage.recorder import record_usage
from esn.usage.rollup_job import done_through, run_rollups
from esn.usage.rollups import ALL, TieDay
from telemetry import DEFINITIONS_VERSION, privacy
from telemetry.indicators import INDICATORS

READING_TAKE = declare(
    "governance:reading:take", description="a reading (snapshot) of every indicator and level"
)


def telemetry_refusal() -> str | None:
    return governance.telemetry_refusal()


def last_complete_day() -> date:
    return now().astimezone(UTC).date() - timedelta(days=1)


def department_exists(department_id: int) -> bool:
    # An id beyond the column's range names no department (PostgreSQL would refuse to compare
    # it with an INTEGER column: a 500 instead of a 404).
    if not 1 <= department_id <= MAX_ID:
        return False
    return db.session.get(Department, department_id) is not None


def indicator_keys() -> list[str]:
    return list(INDICATORS)


def bring_rollups_up_to(at: date) -> None:
    """Build the rollups of the days up to ``at`` that are not built yet. Ends the session's
    transaction, so that what follows reads them."""
    # The job writes in its own transactions: end ours first, which on SQLite may hold the
    # write lock already (a POST begins with BEGIN IMMEDIATE).
    db.session.commit()
    with db.engine.connect() as conn:
        built = done_through(conn)
    if built is None or built < at:
        run_rollups(db.engine, through=at)


def indicators(scope: Scope, at: date, window_days: int) -> tuple[int, list[dict[str, Any]]]:
    population, values = measure(scope, at, window_days)
    return population, [values[k].public() for k in INDICATORS]


def _top_departments() -> list[Department]:
    return list(
        db.session.scalars(
            select(Department).where(Department.parent_id.is_(None)).order_by(Department.id)
        )
    )


def breakdown(key: str, at: date, window_days: int) -> list[dict[str, Any]]:
    """``key`` for each top-level department (with its sub-departments), suppressed per the
    privacy rules, with complementary suppression across the rows."""
    k = privacy.minimum_people(key, department_scope=True)
    rows = []
    names = {}
    for department in _top_departments():
        scope = Scope("department", str(department.id))
        population, values = raw_indicators(scope, at, window_days)
        guarded = privacy.guard({key: values[key]}, population, department_scope=True)[key]
        rows.append(privacy.BreakdownRow(department.id, population, guarded))
        names[department.id] = department.name
    return [
        {
            "department_id": r.group,
            "department": names[r.group],
            "value": r.value.value,
            "suppressed": r.value.suppressed,
            "reason": r.value.reason,
        }
        for r in privacy.complementary(rows, k)
    ]


def department_matrix(at: date, window_days: int) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Distinct ties between top-level departments with at least ``K_SENSITIVE`` eligible
    people; ``ties[i][j]`` counts ties from department i to department j."""
    shown: list[Department] = []
    top_of: dict[int, int] = {}
    for department in _top_departments():
        from esn.directory.queries import subtree_ids

        ids = list(db.session.scalars(subtree_ids(department.id)))
        for dept in ids:
            top_of[dept] = department.id
        scope = Scope("department", str(department.id))
        size = db.session.scalar(
            select(func.count()).select_from(population_query(scope, at).subquery())
        )
        if (size or 0) >= privacy.K_SENSITIVE:
            shown.append(department)
    index = {d.id: i for i, d in enumerate(shown)}
    department_of = dict(db.session.execute(select(User.id, User.department_id)).tuples().all())
    matrix = [[0] * len(shown) for _ in shown]
    start = at - timedelta(days=window_days - 1)
    ties = db.session.execute(
        select(TieDay.source_id, TieDay.target_id)
        .where(TieDay.process == ALL, TieDay.day.between(start, at))
        .distinct()
    ).tuples()
    for u, v in ties:
        du, dv = department_of.get(u), department_of.get(v)
        a = index.get(top_of.get(du, -1)) if du is not None else None
        b = index.get(top_of.get(dv, -1)) if dv is not None else None
        if a is not None and b is not None:
            matrix[a][b] += 1
    return [{"id": d.id, "name": d.name} for d in shown], matrix


# --- readings -----------------------------------------------------------------------------------


def rulebook() -> Any:
    from telemetry.rulebook import load_rulebook

    return load_rulebook(current_app.config.get("TELEMETRY_RULEBOOK") or None)


def do_take_reading(user: User | None, at: date, *, trigger: str) -> Reading:
    """Measure through ``at`` and freeze it. The caller checked the privacy record and brought
    the rollups up to ``at``."""
    facts = governance.governance_facts(now())
    last = db.session.scalar(select(func.max(Reading.taken_at)))
    if last is not None:
        import dataclasses

        facts = dataclasses.replace(facts, last_reading_at=last)
    book = rulebook()
    reading = Reading(
        taken_at=now(),
        measured_through=at,
        definitions_version=DEFINITIONS_VERSION,
        thresholds_version=book.version,
        taken_by_id=user.id if user is not None else None,
        trigger=trigger,
        content=compute_reading(at, facts, book),
        facts=_facts_json(facts),
    )
    db.session.add(reading)
    db.session.flush()
    record_usage(READING_TAKE, user, object_type="reading", object_id=reading.id)
    return reading


def list_readings(cursor: str | None, limit: int) -> tuple[list[Reading], str | None]:
    stmt = select(Reading).order_by(Reading.id.desc()).limit(limit + 1)
    if cursor is not None:
        (before,) = decode_cursor(cursor, (int,))
        stmt = stmt.where(Reading.id < before)
    items = list(db.session.scalars(stmt))
    if len(items) > limit:
        items = items[:limit]
        return items, encode_cursor(items[-1].id)
    return items, None


def access_reading(reading_id: int) -> Reading:
    reading = db.session.get(Reading, reading_id)
    if reading is None:
        raise not_found()
    return reading


def _ref(r: Reading) -> dict[str, Any]:
    return {
        "id": r.id,
        "taken_at": r.taken_at,
        "measured_through": r.measured_through,
        "thresholds_version": r.thresholds_version,
    }


def compare(before: Reading, after: Reading) -> dict[str, Any]:
    processes = []
    old = {p["process"]: p for p in before.content["processes"]}
    for new in after.content["processes"]:
        prior = old.get(new["process"])
        if prior is None:
            continue
        statuses = {(g["gate"], g["level"]): g["status"] for g in prior["gates"]}
        changed = [
            {
                "gate": g["gate"],
                "level": g["level"],
                "from_status": statuses.get((g["gate"], g["level"])),
                "to_status": g["status"],
            }
            for g in new["gates"]
            if statuses.get((g["gate"], g["level"])) != g["status"]
        ]
        a, b = prior["level"], new["level"]
        processes.append(
            {
                "process": new["process"],
                "from_level": a,
                "to_level": b,
                "change": "up" if b > a else "down" if b < a else "same",
                "gates_changed": changed,
            }
        )
    deltas = []
    for scope, figures in after.content["indicators"].items():
        prior_figures = before.content["indicators"].get(scope)
        if prior_figures is None:
            continue
        prior_values = {i["key"]: i for i in prior_figures["indicators"]}
        for item in figures["indicators"]:
            was = prior_values.get(item["key"])
            if was is None:
                continue
            hidden = bool(was["suppressed"] or item["suppressed"])
            deltas.append(
                {
                    "scope": scope,
                    "key": item["key"],
                    "from_value": None if hidden else was["value"],
                    "to_value": None if hidden else item["value"],
                    "delta": None if hidden else item["value"] - was["value"],
                    "suppressed": hidden,
                }
            )
    return {
        "from_reading": _ref(before),
        "to_reading": _ref(after),
        "processes": processes,
        "indicators": deltas,
    }


def my_events(user: User, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    stmt = (
        select(UsageEvent)
        .where(UsageEvent.actor_id == user.id)
        .order_by(UsageEvent.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        (before,) = decode_cursor(cursor, (int,))
        stmt = stmt.where(UsageEvent.id < before)
    items = list(db.session.scalars(stmt))
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1].id)
    return items, next_cursor


def run_schedule() -> str:
    """What ``esn worker`` does for telemetry on each pass: bring the rollups up to yesterday
    and, on the monthly schedule, take this month's reading if nobody has. Several workers may
    run it at once: the check and the reading happen in one write transaction, which SQLite
    serialises and PostgreSQL serialises on the fill state's row lock."""
    from esn.database import write_intent
    from esn.usage.rollup_job import FILL_STATE
    from esn.usage.rollups import FillState

    db.session.rollback()  # read what others have committed
    if telemetry_refusal() is not None:
        return "off: no privacy record"
    yesterday = last_complete_day()
    bring_rollups_up_to(yesterday)
    # The dashboard's first view: the organisation and each process over the default window
    # and the gates' long one, computed now rather than while a governance lead waits.
    for scope in [Scope("org"), *(Scope("process", p.value) for p in SCORED)]:
        for window in (90, 183):
            measure(scope, yesterday, window)
    db.session.commit()
    if current_app.config["READING_SCHEDULE"] != "monthly":
        return "rollups built"
    moment = now().astimezone(UTC)
    month_start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with write_intent():
        db.session.rollback()
        db.session.execute(
            select(FillState.name).where(FillState.name == FILL_STATE).with_for_update()
        )
        taken = db.session.scalar(
            select(func.count())
            .select_from(Reading)
            .where(Reading.trigger == "schedule", Reading.taken_at >= month_start)
        )
        if taken:
            db.session.rollback()
            return "rollups built; this month's reading exists"
        reading = do_take_reading(None, yesterday, trigger="schedule")
        db.session.commit()
    return f"reading {reading.id} taken"
