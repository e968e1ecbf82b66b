"""Retention: raw usage events older than 13 months are deleted (``apply_retention``, ``esn
telemetry retention``), only once the rollups hold those days; afterwards every indicator of
the last 13 months answers exactly as before, and readings still load and reproduce."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.extensions import db
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.retention import RetentionRefused, apply_retention, cutoff_day
from esn.usage.rollup_job import run_rollups
from esn.usage.rollups import FirstContribution, PersonDay, Thread, TieDay
from tests.conftest import ApiClient, make_user
from tests.telemetry import world
from tests.telemetry.dashboard_helpers import needs_readings
from tests.telemetry.reference import Ev

NOW = datetime(2026, 11, 15, 10, tzinfo=UTC)
CUTOFF = date(2025, 10, 15)  # the first day kept: 13 months before 2026-11-15
YESTERDAY = date(2026, 11, 14)
CREATED = datetime(2025, 5, 1, 9, tzinfo=UTC)
PUBLISH = kinds.POST_PUBLISH.name
COMMENT = kinds.COMMENT_CREATE.name
MENTION = kinds.MENTION.name


def on(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def days(first: date, last: date, step: int) -> list[date]:
    out = []
    while first <= last:
        out.append(first)
        first += timedelta(days=step)
    return out


_root = iter(range(1, 1_000_000))


def thread(author: User, answerer: User, day: date, process: str | None = "innovation") -> list[Ev]:
    root = next(_root)
    return [
        Ev(on(day, 9), PUBLISH, author.id, None, process, root, root),
        Ev(on(day, 15), COMMENT, answerer.id, author.id, process, root),
        Ev(on(day, 16), MENTION, author.id, answerer.id, process),
    ]


@pytest.fixture
def setting(app) -> dict[str, Any]:
    """Eleven people in two departments from May 2025:

    - p0-p4 first contribute in June 2025 (before the cut-off) and keep contributing;
    - p5-p9 first contribute on 2025-10-20 (after it); p5 and p6 again in January 2026;
    - p10 first contributes on 2025-10-05, in the cut-off's month but before its day, and
      again in January 2026.

    Everyone visits weekly. So T1 measured at 2026-07-20 (cohorts October 2025 to March
    2026) is about the October cohort: p5-p9 and p10."""
    with frozen_at(CREATED):
        a, b = world.make_departments(2)
        lead = make_user("lead@example.org", roles=["employee", "governance_lead"])
        people = [
            make_user(f"p{i}@example.org", password=None, department_id=(a, b)[i % 2])
            for i in range(11)
        ]
    p = people
    events: list[Ev] = []
    for day in days(date(2025, 6, 2), YESTERDAY, 7):
        events += [Ev(on(day, 8), kinds.VISIT.name, u.id) for u in p]
    for i, day in enumerate(days(date(2025, 6, 3), YESTERDAY, 4)):
        author, answerer = p[i % 5], p[(i + 1) % 5]
        events += thread(author, answerer, day, "innovation" if i % 3 else None)
    for u in p[5:10]:
        events += thread(u, p[0], date(2025, 10, 20), "innovation")
    events += thread(p[10], p[0], date(2025, 10, 5), "innovation")
    for u in (p[5], p[6], p[10]):
        events += thread(u, p[1], date(2026, 1, 12), "innovation")
    # Later activity of p5-p10 (not on contributions in January: T1 above stays small).
    for day in days(date(2026, 3, 2), YESTERDAY, 9):
        for u in p[5:]:
            events += thread(u, p[2], day, "service")
    # Reports: one raised before the cut-off and resolved after it (984 h), one after (24 h).
    for report, raised, resolved in (
        (501, on(date(2025, 10, 10)), on(date(2025, 11, 20))),
        (502, on(date(2026, 2, 1)), on(date(2026, 2, 2))),
    ):
        events.append(Ev(raised, kinds.REPORT_RAISE.name, p[3].id, None, None, obj=report))
        events.append(Ev(resolved, kinds.REPORT_RESOLVE.name, p[4].id, None, None, obj=report))
    # The boundary: the last second before the cut-off goes, the cut-off itself stays.
    events.append(Ev(on(CUTOFF - timedelta(days=1), 23, 59), kinds.VISIT.name, p[3].id))
    events.append(Ev(on(CUTOFF, 0, 0), kinds.VISIT.name, p[4].id))
    world.record(events)
    with frozen_at(NOW):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
    return {"api": api, "lead": lead, "people": people, "departments": (a, b)}


QUERIES = [
    "/api/v1/governance/indicators?scope=org&window_days=90",
    "/api/v1/governance/indicators?scope=org&window_days=365",
    "/api/v1/governance/indicators?scope=org&window_days=30&at=2026-06-30",
    "/api/v1/governance/indicators?scope=org&window_days=90&at=2026-07-20",
    "/api/v1/governance/indicators?scope=process:innovation&window_days=183",
    "/api/v1/governance/indicators?scope=process:innovation&window_days=90&at=2026-07-20",
    "/api/v1/governance/indicators?scope=process:service&window_days=90",
    "/api/v1/governance/indicators/by-department?indicator=A1&window_days=90",
    "/api/v1/governance/indicators/by-department?indicator=R1&window_days=180",
    "/api/v1/governance/network/departments?window_days=365",
]


def answers(api: ApiClient, setting: dict[str, Any]) -> dict[str, Any]:
    a, _ = setting["departments"]
    out = {}
    with frozen_at(NOW):
        for path in [*QUERIES, f"/api/v1/governance/indicators?scope=department:{a}"]:
            response = api.get(path)
            assert response.status_code == 200, (path, response.get_json())
            out[path] = response.get_json()
    return out


def count(model: Any, where: Any = None) -> int:
    db.session.rollback()
    stmt = select(func.count()).select_from(model)
    if where is not None:
        stmt = stmt.where(where)
    return db.session.scalar(stmt) or 0


def test_the_cutoff_is_thirteen_months_back():
    assert cutoff_day(date(2026, 11, 15)) == CUTOFF
    assert cutoff_day(date(2026, 3, 31)) == date(2025, 2, 28)  # clamped
    assert cutoff_day(date(2027, 1, 10)) == date(2025, 12, 10)


def test_retention_is_refused_until_the_rollups_hold_the_days(app, setting):
    old = count(UsageEvent, UsageEvent.occurred_at < on(CUTOFF, 0))
    assert old > 0
    with frozen_at(NOW):
        with pytest.raises(RetentionRefused) as refused:
            apply_retention(db.engine)
        assert "esn telemetry rollup" in str(refused.value)
        assert CUTOFF.isoformat() in str(refused.value)
        result = app.test_cli_runner().invoke(args=["telemetry", "retention"])
        assert result.exit_code != 0
        assert "esn telemetry rollup" in result.output, result.output
        # Rollups built only part of the way: still refused.
        run_rollups(db.engine, CUTOFF - timedelta(days=10))
        with pytest.raises(RetentionRefused):
            apply_retention(db.engine)
    assert count(UsageEvent, UsageEvent.occurred_at < on(CUTOFF, 0)) == old


def test_after_retention_the_last_thirteen_months_answer_as_before(app, setting):
    api = setting["api"]
    before = answers(api, setting)  # builds the rollups up to yesterday
    kept = count(UsageEvent, UsageEvent.occurred_at >= on(CUTOFF, 0))
    old = count(UsageEvent, UsageEvent.occurred_at < on(CUTOFF, 0))
    assert old > 100 and count(PersonDay, PersonDay.day < CUTOFF) > 0

    # The T1 query above is about the October 2025 cohort and is not empty.
    t1 = next(
        i
        for i in before["/api/v1/governance/indicators?scope=org&window_days=90&at=2026-07-20"][
            "indicators"
        ]
        if i["key"] == "T1"
    )
    assert (t1["numerator"], t1["denominator"]) == (3, 6), t1
    # R4 over the year to yesterday: both reports, the one raised before the cut-off too.
    r4 = next(
        i
        for i in before["/api/v1/governance/indicators?scope=org&window_days=365"]["indicators"]
        if i["key"] == "R4"
    )
    assert (r4["value"], r4["denominator"]) == ((984 + 24) / 2, 2), r4

    with frozen_at(NOW):
        dry = app.test_cli_runner().invoke(args=["telemetry", "retention", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert f"would delete {old} events before {CUTOFF}" in dry.output, dry.output
        assert count(UsageEvent, UsageEvent.occurred_at < on(CUTOFF, 0)) == old
        done = app.test_cli_runner().invoke(args=["telemetry", "retention"])
        assert done.exit_code == 0, done.output
        assert f"deleted {old} events before {CUTOFF}" in done.output, done.output

    assert count(UsageEvent, UsageEvent.occurred_at < on(CUTOFF, 0)) == 0
    assert count(UsageEvent, UsageEvent.occurred_at >= on(CUTOFF, 0)) == kept
    # The boundary second: the visit at 23:59 the day before is gone, midnight stays.
    p3, p4 = setting["people"][3], setting["people"][4]
    last_day = (UsageEvent.occurred_at >= on(CUTOFF - timedelta(days=1), 0)) & (
        UsageEvent.occurred_at < on(CUTOFF, 0)
    )
    assert count(UsageEvent, (UsageEvent.actor_id == p3.id) & last_day) == 0
    midnight = UsageEvent.occurred_at == on(CUTOFF, 0)
    assert count(UsageEvent, (UsageEvent.actor_id == p4.id) & midnight) == 1
    # No person-level rollup row before the cut-off either.
    assert count(PersonDay, PersonDay.day < CUTOFF) == 0
    assert count(TieDay, TieDay.day < CUTOFF) == 0
    assert count(Thread, Thread.start_day < CUTOFF) == 0
    assert count(PersonDay, PersonDay.day >= CUTOFF) > 0

    after = answers(api, setting)
    for path in before:
        if "indicators" in before[path] and isinstance(before[path]["indicators"], list):
            was = {i["key"]: i for i in before[path]["indicators"]}
            now = {i["key"]: i for i in after[path]["indicators"]}
            changed = {k: (was[k], now[k]) for k in was if was[k] != now[k]}
            assert not changed, (path, changed)
        assert after[path] == before[path], path

    # Running retention again deletes nothing more and changes nothing.
    with frozen_at(NOW):
        again = apply_retention(db.engine)
    assert (again.events, again.person_days, again.ties, again.threads) == (0, 0, 0, 0)
    assert answers(api, setting) == before


def test_retention_keeps_the_first_contribution_facts_out_of_later_cohorts(app, setting):
    """People who first contributed long before the cut-off must not turn into a cohort of the
    cut-off's month: T1 of the cohorts after the cut-off is unchanged by retention (checked on
    the rows, for every slice)."""
    with frozen_at(NOW):
        run_rollups(db.engine, YESTERDAY)

    def cohorts() -> dict[tuple[str, int], date]:
        db.session.rollback()
        return {
            (s, p): d
            for s, p, d in db.session.execute(
                select(
                    FirstContribution.process, FirstContribution.person_id, FirstContribution.day
                )
            )
        }

    first = cohorts()
    with frozen_at(NOW):
        apply_retention(db.engine)
    second = cohorts()
    assert set(second) == set(first)  # everyone still "has contributed before"
    month = CUTOFF.replace(day=1)
    for key, day in first.items():
        if day >= CUTOFF:
            assert second[key] == day, key
        else:
            # Nothing older than the cut-off remains exact, and nothing lands in a month of
            # the kept period it did not belong to.
            assert second[key] < CUTOFF, (key, day, second[key])
            was_month = day.replace(day=1)
            now_month = second[key].replace(day=1)
            assert now_month == was_month or now_month < month, (key, day, second[key])


@needs_readings
def test_readings_load_and_reproduce_after_retention(app, setting):
    api = setting["api"]
    with frozen_at(NOW):
        first = api.post("/api/v1/governance/readings", json={})
        assert first.status_code == 201, first.get_json()
        apply_retention(db.engine)
        loaded = api.get(f"/api/v1/governance/readings/{first.get_json()['id']}")
        assert loaded.status_code == 200
        assert loaded.get_json() == first.get_json()
        second = api.post("/api/v1/governance/readings", json={})
        assert second.status_code == 201, second.get_json()
        compared = api.get(
            f"/api/v1/governance/readings/compare?from={first.get_json()['id']}"
            f"&to={second.get_json()['id']}"
        )
        assert compared.status_code == 200
    a, b = first.get_json(), second.get_json()
    assert a["indicators"] == b["indicators"]
    # Only the "recent reading" gate may differ: the first reading exists for the second.
    strip = {"recent_reading"}

    def gates(reading: dict[str, Any]) -> list[Any]:
        return [[g for g in p["gates"] if g["gate"] not in strip] for p in reading["processes"]]

    assert gates(a) == gates(b)
    assert all(d["delta"] in (None, 0, 0.0) for d in compared.get_json()["indicators"])


def test_a_rebuild_after_retention_keeps_what_retention_kept(app, setting):
    """``esn telemetry rollup --rebuild`` after retention builds from the 13 months of events
    left; people who first contributed before the cut-off must not turn into new contributor
    cohorts then: every indicator answers as before."""
    api = setting["api"]
    before = answers(api, setting)
    with frozen_at(NOW):
        apply_retention(db.engine)
        rebuilt = app.test_cli_runner().invoke(args=["telemetry", "rollup", "--rebuild"])
        assert rebuilt.exit_code == 0, rebuilt.output
    after = answers(api, setting)
    for path in before:
        if isinstance(before[path].get("indicators"), list):
            was = {i["key"]: i for i in before[path]["indicators"]}
            now = {i["key"]: i for i in after[path]["indicators"]}
            changed = {k: (was[k], now[k]) for k in was if was[k] != now[k]}
            assert not changed, (path, changed)
        assert after[path] == before[path], path
