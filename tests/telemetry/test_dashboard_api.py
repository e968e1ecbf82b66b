"""The dashboard's boundary: who may call it, what it says without a privacy record, what it
does with bad input (a 4xx problem, never a 500, nothing written), and "what is measured about
me" (one's own events and counts only)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.extensions import db
from esn.governance.readings import Reading
from esn.usage.models import UsageEvent
from esn.usage.rollup_job import ROLLUP_TABLES, run_rollups
from esn.usage.rollups import ALL, Figures, FillState, PersonDay
from tests.conftest import ApiClient, make_user
from tests.telemetry import world
from tests.telemetry.dashboard_helpers import (
    ASKED,
    LAST,
    PUBLISH,
    circle,
    departments,
    gate,
    lead,
    people_in,
    store_reading,
)
from tests.telemetry.reference import Ev

PROBLEM = "application/problem+json"


def routes(reading: int) -> list[tuple[str, str]]:
    return [
        ("GET", "/api/v1/governance/indicators"),
        ("GET", "/api/v1/governance/indicators?scope=process:innovation"),
        ("GET", "/api/v1/governance/indicators/by-department?indicator=A1"),
        ("GET", "/api/v1/governance/network/departments"),
        ("POST", "/api/v1/governance/readings"),
        ("GET", "/api/v1/governance/readings"),
        ("GET", f"/api/v1/governance/readings/{reading}"),
        ("GET", f"/api/v1/governance/readings/compare?from={reading}&to={reading}"),
    ]


def call(api: ApiClient, method: str, path: str) -> Any:
    with frozen_at(ASKED):
        if method == "POST":
            return api.post(path, json={})
        return api.get(path)


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == PROBLEM, response.mimetype
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["type"], body
    return body


@pytest.fixture
def small_world(app) -> dict[str, Any]:
    (dept,) = departments([6])
    (six, _) = people_in([dept], [6])
    events = []
    for day in range(0, 21, 2):
        events += circle(six, day, "innovation")
    world.record(events)
    return {"department": dept, "people": six}


def test_employees_get_403_and_strangers_401_on_every_dashboard_route(app, small_world):
    api = lead(app)  # the privacy record exists: a refusal would not be about it
    reading = store_reading(1, {"org": {"A1": 0.5}}, [gate("A1", 2, "pass", 0.5)])
    with frozen_at(world.BEFORE):
        make_user("employee@example.org", roles=["employee"])
    with frozen_at(ASKED):
        employee = ApiClient(app)
        assert employee.sign_in("employee@example.org").status_code == 200
    stranger = ApiClient(app)
    before = written()
    for method, path in routes(reading):
        body = is_problem(call(employee, method, path), 403)
        assert body["type"].endswith("/forbidden"), body
        response = call(stranger, method, path)
        is_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    is_problem(call(stranger, "GET", "/api/v1/me/usage"), 401)
    # None of that measured or took anything (the employee's visit of the day aside).
    after = written()
    assert after.pop("events") == before.pop("events") + 1
    assert after == before
    # The lead may, on every route.
    for method, path in routes(reading):
        response = call(api, method, path)
        assert response.status_code == (201 if method == "POST" else 200), path


def test_without_the_privacy_record_the_dashboard_says_why(app, small_world):
    with frozen_at(world.BEFORE):
        make_user("lead@example.org", roles=["employee", "governance_lead"])
    with frozen_at(ASKED):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
    for method, path in [
        ("GET", "/api/v1/governance/indicators"),
        ("GET", f"/api/v1/governance/indicators?scope=department:{small_world['department']}"),
        ("GET", "/api/v1/governance/indicators/by-department?indicator=A1"),
        ("GET", "/api/v1/governance/network/departments"),
        ("POST", "/api/v1/governance/readings"),
    ]:
        body = is_problem(call(api, method, path), 409)
        assert "DPIA" in body["detail"] and "works council" in body["detail"], body
        assert "/governance/privacy" in body["detail"], body
    # The command refuses with the same message.
    with frozen_at(ASKED):
        result = app.test_cli_runner().invoke(args=["telemetry", "reading"])
    assert result.exit_code != 0
    assert "DPIA" in result.output and "works council" in result.output, result.output
    # Nothing was measured or taken.
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Reading)) == 0
    assert db.session.scalar(select(func.count()).select_from(PersonDay)) == 0
    assert db.session.scalar(select(func.count()).select_from(FillState)) == 0


# --- what is measured about me -------------------------------------------------------------------


def test_me_usage_shows_my_own_events_and_counts_only(app):
    (dept,) = departments([3])
    with frozen_at(world.BEFORE):
        me = make_user("me@example.org", roles=["employee"], department_id=dept)
        other = make_user(
            "other@example.org", roles=["employee", "governance_lead"], department_id=dept
        )
    mine, theirs = [], []
    for day in range(0, 20, 2):
        # I post and comment on their posts; they post, react to mine and mention me.
        mine.append(Ev(world.at(day, 9), PUBLISH, me.id, None, "innovation", 100 + day, 100 + day))
        mine.append(
            Ev(world.at(day, 10), "social:comment:create", me.id, other.id, "innovation", 900 + day)
        )
        theirs.append(Ev(world.at(day, 11), PUBLISH, other.id, None, None, 900 + day, 900 + day))
        theirs.append(
            Ev(
                world.at(day, 12),
                "social:reaction:add",
                other.id,
                me.id,
                "innovation",
                100 + day,
                100 + day,
            )
        )
        theirs.append(Ev(world.at(day, 13), "social:mention:create", other.id, me.id))
    world.record(mine + theirs)
    run_rollups(db.engine, LAST)

    for who, own, foreign in ((me, mine, theirs), (other, theirs, mine)):
        with frozen_at(ASKED):
            api = ApiClient(app)
            assert api.sign_in(who.email).status_code == 200
            # The first request of the day records a visit (which that same request may not
            # see yet on SQLite: its read began before the visit was committed).
            assert api.get("/api/v1/me/usage").status_code == 200
            body = api.get("/api/v1/me/usage").get_json()
            # Every page, too.
            paged: list[dict[str, Any]] = []
            cursor = None
            while True:
                query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
                page = api.get("/api/v1/me/usage" + query).get_json()
                paged += page["events"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
        db.session.rollback()
        recorded = list(
            db.session.execute(
                select(UsageEvent.kind, UsageEvent.object_id)
                .where(UsageEvent.actor_id == who.id)
                .order_by(UsageEvent.id.desc())
            ).tuples()
        )
        got = [(e["kind"], e["object_id"]) for e in body["events"]]
        assert got == recorded
        assert [(e["kind"], e["object_id"]) for e in paged] == recorded
        assert body["totals"]["events"] == len(recorded)
        # Nothing of the other person's: I never reacted or mentioned, they never commented.
        foreign_only = {e.kind for e in foreign} - {e.kind for e in own}
        assert foreign_only and not foreign_only & {kind for kind, _ in got}, foreign_only
        assert {(e.kind, e.obj) for e in own if e.obj is not None} <= set(got)
        # Counts per day: the person's own rollup rows, nobody else's.
        rows = {
            d: (ev, it, co)
            for d, ev, it, co in db.session.execute(
                select(
                    PersonDay.day, PersonDay.events, PersonDay.interactions, PersonDay.contributions
                ).where(PersonDay.person_id == who.id, PersonDay.process == ALL)
            )
        }
        assert {
            d["day"]: (d["events"], d["interactions"], d["contributions"]) for d in body["days"]
        } == {d.isoformat(): v for d, v in rows.items()}
        assert body["totals"]["interactions_last_13_months"] == sum(v[1] for v in rows.values())
        assert body["totals"]["contributions_last_13_months"] == sum(v[2] for v in rows.values())
        if who is me:  # by hand: ten days of a post and a comment
            assert set(rows.values()) == {(2, 2, 2)} and len(rows) == 10
            assert body["totals"]["interactions_last_13_months"] == 20


def test_me_usage_takes_no_one_elses_id(app):
    """No parameter names another person: an unknown one is refused or ignored, never
    followed."""
    with frozen_at(world.BEFORE):
        me = make_user("me@example.org", roles=["employee"])
        other = make_user("other@example.org", roles=["employee"])
    world.record([Ev(world.at(1, 10), PUBLISH, other.id, None, None, 900, 900)])
    with frozen_at(ASKED):
        api = ApiClient(app)
        assert api.sign_in(me.email).status_code == 200
        for query in (f"?user_id={other.id}", f"?actor_id={other.id}", f"?person={other.id}"):
            response = api.get("/api/v1/me/usage" + query)
            assert response.status_code in (200, 400, 422), response.status_code
            if response.status_code == 200:
                events = response.get_json()["events"]
                assert all(e["object_id"] != 900 for e in events), events
                assert response.get_json()["totals"]["events"] == len(events)
            else:
                assert response.mimetype == PROBLEM


# --- bad input -----------------------------------------------------------------------------------


def written() -> dict[str, int]:
    db.session.rollback()
    out = {
        "events": db.session.scalar(select(func.count()).select_from(UsageEvent)) or 0,
        "readings": db.session.scalar(select(func.count()).select_from(Reading)) or 0,
        "fill_state": db.session.scalar(select(func.count()).select_from(FillState)) or 0,
        "users": db.session.scalar(select(func.count()).select_from(User)) or 0,
    }
    for model in ROLLUP_TABLES:
        if model is Figures:
            continue  # a cache of computed figures: the one valid request below fills it
        out[model.__tablename__] = db.session.scalar(select(func.count()).select_from(model)) or 0
    return out


BAD_REQUESTS: list[tuple[str, str, Any, set[int]]] = [
    # (method, path, JSON body, accepted statuses)
    ("GET", "/api/v1/governance/indicators?scope=bogus", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=process:unknown", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=process:", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=department:999999", None, {404}),
    ("GET", "/api/v1/governance/indicators?scope=department:0", None, {404}),
    (
        "GET",
        "/api/v1/governance/indicators?scope=department:999999999999999999",
        None,
        {404},
    ),
    ("GET", "/api/v1/governance/indicators?scope=department:99999999999999999999", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=department:-1", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=department:abc", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=org%00", None, {422}),
    ("GET", "/api/v1/governance/indicators?scope=" + "x" * 500, None, {422}),
    ("GET", "/api/v1/governance/indicators?window_days=0", None, {422}),
    ("GET", "/api/v1/governance/indicators?window_days=401", None, {422}),
    ("GET", "/api/v1/governance/indicators?window_days=-5", None, {422}),
    ("GET", "/api/v1/governance/indicators?window_days=abc", None, {422}),
    ("GET", "/api/v1/governance/indicators?window_days=99999999999999999999", None, {422}),
    # ASKED is 2026-03-24 10:00 UTC: the last complete day is the 23rd.
    ("GET", "/api/v1/governance/indicators?at=2026-03-24", None, {422}),
    ("GET", "/api/v1/governance/indicators?at=2030-01-01", None, {422}),
    ("GET", "/api/v1/governance/indicators?at=yesterday", None, {422}),
    ("GET", "/api/v1/governance/indicators?at=2026-02-30", None, {422}),
    ("GET", "/api/v1/governance/indicators?at=0001-01-01", None, {422}),
    ("GET", "/api/v1/governance/indicators?at=0001-03-01&window_days=1", None, {422}),
    ("GET", "/api/v1/governance/indicators?at=1970-01-01&window_days=400", None, {200}),
    ("GET", "/api/v1/governance/indicators/by-department?indicator=ZZ", None, {422}),
    ("GET", "/api/v1/governance/indicators/by-department", None, {422}),
    (
        "GET",
        "/api/v1/governance/indicators/by-department?indicator=A1&window_days=0",
        None,
        {422},
    ),
    (
        "GET",
        "/api/v1/governance/indicators/by-department?indicator=A1&at=0001-01-01",
        None,
        {422},
    ),
    (
        "GET",
        "/api/v1/governance/indicators/by-department?indicator=A1&at=2030-01-01",
        None,
        {422},
    ),
    ("GET", "/api/v1/governance/network/departments?window_days=401", None, {422}),
    ("GET", "/api/v1/governance/network/departments?at=0001-01-01", None, {422}),
    ("GET", "/api/v1/governance/network/departments?at=nope", None, {422}),
    ("POST", "/api/v1/governance/readings", {"at": "2030-01-01"}, {422}),
    ("POST", "/api/v1/governance/readings", {"at": "not a date"}, {422}),
    ("POST", "/api/v1/governance/readings", {"at": "0001-01-01"}, {422}),
    ("POST", "/api/v1/governance/readings", {"at": 20260301}, {422}),
    ("POST", "/api/v1/governance/readings", {"surprise": 1}, {422}),
    ("POST", "/api/v1/governance/readings", [], {422}),
    ("GET", "/api/v1/governance/readings/999999", None, {404}),
    ("GET", "/api/v1/governance/readings/0", None, {404}),
    ("GET", "/api/v1/governance/readings/99999999999999", None, {404}),
    ("GET", "/api/v1/governance/readings/abc", None, {404}),
    ("GET", "/api/v1/governance/readings?limit=0", None, {422}),
    ("GET", "/api/v1/governance/readings?cursor=abc", None, {400}),
    ("GET", "/api/v1/governance/readings/compare?from=999998&to=999999", None, {404}),
    ("GET", "/api/v1/governance/readings/compare?from=abc&to=1", None, {422}),
    ("GET", "/api/v1/governance/readings/compare?from=1", None, {422}),
    ("GET", "/api/v1/governance/readings/compare?from=0&to=1", None, {422}),
    ("GET", "/api/v1/governance/readings/compare?from=99999999999999&to=1", None, {422}),
    ("GET", "/api/v1/me/usage?cursor=abc", None, {400}),
    ("GET", "/api/v1/me/usage?limit=0", None, {422}),
]


def test_bad_input_is_a_4xx_problem_and_writes_nothing(app, small_world):
    api = lead(app)
    reading = store_reading(1, {"org": {"A1": 0.5}}, [gate("A1", 2, "pass", 0.5)])
    run_rollups(db.engine, LAST)
    with frozen_at(ASKED):
        # The first request of the day records the visit; the rest write nothing.
        assert api.get("/api/v1/governance/readings").status_code == 200
    before = written()
    failures = []
    for method, path, body, statuses in [
        *BAD_REQUESTS,
        ("GET", f"/api/v1/governance/readings/compare?from={reading}&to=999999", None, {404}),
        ("GET", f"/api/v1/governance/readings/compare?from=999999&to={reading}", None, {404}),
    ]:
        with frozen_at(ASKED):
            response = api.post(path, json=body) if method == "POST" else api.get(path)
        if response.status_code not in statuses or (
            response.status_code >= 400 and response.mimetype != PROBLEM
        ):
            failures.append(
                (method, path, body, response.status_code, response.get_data(as_text=True)[:200])
            )
    assert not failures, "\n".join(map(str, failures))
    after = written()
    # (The one accepted request, a window in 1969-1970, built no rollups either.)
    assert after == before
