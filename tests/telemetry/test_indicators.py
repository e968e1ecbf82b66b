"""Every indicator against values computed by hand on small fixed worlds, through the API."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pytest

from esn.clock import frozen_at
from esn.usage import kinds
from telemetry.indicators import network
from tests.conftest import ApiClient, make_user
from tests.telemetry import world
from tests.telemetry.reference import Ev

PUBLISH = kinds.POST_PUBLISH.name
COMMENT = kinds.COMMENT_CREATE.name
REACT = kinds.REACTION_ADD.name
MENTION = kinds.MENTION.name
VISIT = kinds.VISIT.name


def test_the_worked_reciprocity_example():
    """SMG_MODEL.md: ties {1→2, 2→1, 1→3, 3→4} give N1 = 0.5."""
    values = network([(1, 2), (2, 1), (1, 3), (3, 4)], {1: 1, 2: 1, 3: 1, 4: 1}, {}, 1, 90)
    assert values["N1"].value == 0.5
    assert (values["N1"].numerator, values["N1"].denominator) == (2, 4)


@pytest.fixture
def office(app) -> dict[str, Any]:
    """Ten eligible people in two departments of five: A = the lead and p1-p4, B = p5-p9;
    plus a bot (p10) whose events never count. UTC time zones."""
    a, b = world.make_departments(2)
    with frozen_at(world.BEFORE):
        lead = make_user("lead@example.org", roles=["employee", "governance_lead"], department_id=a)
    people = world.make_people(
        [{"department_id": a}] * 4 + [{"department_id": b}] * 5 + [{"is_bot": True}]
    )
    return {"lead": lead, "p": {i + 1: u.id for i, u in enumerate(people)}, "a": a, "b": b}


def office_events(p: dict[int, int]) -> list[Ev]:
    at = world.at
    return [
        Ev(at(1, 10), PUBLISH, p[1], None, "innovation", 1, 1, question=True),
        Ev(at(1, 11), REACT, p[3], p[1], "innovation", 1, 1),  # first response: +1 h
        Ev(at(1, 12), COMMENT, p[2], p[1], "innovation", 1),  # first comment: +2 h
        Ev(at(1, 13), COMMENT, p[1], p[1], "innovation", 1),  # own thread: activity only
        Ev(at(2, 10), PUBLISH, p[2], None, "service", 2, 2),
        Ev(at(12, 10), COMMENT, p[5], p[2], "service", 2),  # +240 h, a Saturday
        Ev(at(3, 10), PUBLISH, p[3], None, None, 3, 3),
        Ev(at(3, 15), COMMENT, p[7], p[3], None, 3),  # +5 h
        Ev(at(4, 10), REACT, p[6], p[3], None, 3, 3),
        Ev(at(10, 10), PUBLISH, p[1], None, None, 4, 4),
        Ev(at(11, 10), COMMENT, p[6], p[1], None, 4),  # +24 h
        Ev(at(15, 10), PUBLISH, p[4], None, None, 5, 5),
        Ev(at(15, 16), COMMENT, p[6], p[4], None, 5),  # +6 h
        Ev(at(16, 10), PUBLISH, p[5], None, "service", 6, 6),
        Ev(at(16, 14), COMMENT, p[4], p[5], "service", 6),  # +4 h
        Ev(at(5, 21), MENTION, p[4], p[5]),  # a Saturday evening
        Ev(at(7, 10), MENTION, p[5], p[4]),
        Ev(at(5, 9), VISIT, p[7]),
        Ev(at(20, 9), VISIT, p[8]),
        # A bot's activity counts nowhere.
        Ev(at(8, 10), COMMENT, p[10], p[1], None, 4),
        Ev(at(8, 11), VISIT, p[10]),
    ]


def indicators(api: ApiClient, scope: str, window: int, last: date) -> dict[str, Any]:
    response = api.get(
        f"/api/v1/governance/indicators?scope={scope}&window_days={window}&at={last}"
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scope"] == scope and body["window_days"] == window
    assert body["at"] == last.isoformat()
    return {"population": body["population"], **{i["key"]: i for i in body["indicators"]}}


def shown(item: dict[str, Any], value: float, numerator: float | None = None,
          denominator: float | None = None) -> None:  # fmt: skip
    assert not item["suppressed"] and item["reason"] is None, item
    assert math.isclose(item["value"], value, rel_tol=1e-12), (item, value)
    if numerator is not None:
        assert (item["numerator"], item["denominator"]) == (numerator, denominator), item


def hidden(item: dict[str, Any]) -> None:
    assert item["suppressed"] and item["reason"] == "insufficient_data", item
    assert item["value"] is None and item["numerator"] is None, item


@pytest.fixture
def lead_api(app, office) -> ApiClient:
    world.record(office_events(office["p"]))
    with frozen_at(world.at(30)):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
    return api


def test_the_office_by_hand(app, office, lead_api):
    last = world.START + timedelta(days=27)
    with frozen_at(world.at(30)):
        got = indicators(lead_api, "org", 28, last)
    assert got["population"] == 10
    # Interactions (self-interactions and the bot's excluded): p1 2, p2 2, p3 2, p4 3, p5 3,
    # p6 3, p7 1 = 16, by 7 people. Active: p1-p8. Contributions: p1 2, p2 2, p3 1, p4 2,
    # p5 2, p6 2, p7 1 = 12, by 7 people.
    shown(got["A1"], 0.7, 7, 10)
    shown(got["A2"], 0.8, 8, 10)
    shown(got["A3"], 0.7, 7, 10)
    # Sorted with zeros: 0 0 0 1 1 2 2 2 2 2; sum i*x = 4 + 5 + 2 * (6+7+8+9+10) = 89;
    # G = 2 * 89 / (10 * 12) - 11/10.
    shown(got["P2"], 2 * 89 / 120 - 1.1)
    # Top 10% of 7 contributors = 1 person with 2 of the 12.
    shown(got["P3"], 2 / 12, 2, 12)
    # Two of the 16 interactions fall on a Saturday (day 5 21:00, day 12 10:00).
    shown(got["H1"], 2 / 16, 2, 16)
    # Threads 1-6 by p1 p2 p3 p1 p4 p5; answered within 7 days: all but thread 2 (240 h).
    shown(got["R1"], 5 / 6, 5, 6)
    # First comments by someone else after 2, 240, 5, 24, 6, 4 hours: median of 2 4 5 6 24
    # 240 is 5.5; p90 is the 6th of 6.
    shown(got["R2"], 5.5)
    assert got["R2"]["detail"] == {"p90_hours": 240.0}
    # Distinct ties: 3→1 2→1 5→2 6→3 6→1 4→5 5→4 7→3 6→4; reciprocated: 4→5 and 5→4.
    shown(got["N1"], 2 / 9, 2, 9)
    # Across departments: all but 3→1 and 2→1: EI = (7 - 2) / 9, s = 7/9.
    shown(got["X1"], 5 / 9)
    assert math.isclose(got["X1"]["detail"]["s"], 7 / 9)
    # s_exp = 1 - (5*4 + 5*4) / (10*9) = 5/9.
    shown(got["X2"], (7 / 9) / (5 / 9))
    # Both departments have people with ties into the organisation.
    shown(got["X4"], 1.0, 2, 2)
    # Active per day / active in the 28 days to it, days 1-27 (day 0 has nobody active yet):
    # 3/3 1/3 2/4 1/5 2/6 0 1/7 0 0 1/7 1/7 1/7 0 0 2/7 2/7 0 0 0 1/8 and seven zeros.
    expected_a4 = (1 + 1 / 3 + 2 / 4 + 1 / 5 + 2 / 6 + 8 / 7 + 1 / 8) / 27
    shown(got["A4"], expected_a4)
    # Active in the 30 days to day 27 / in the 365 days: the same 8 people.
    shown(got["T2"], 1.0, 8, 8)
    # No contributor cohort whose third month after is complete: nothing to show.
    hidden(got["T1"])
    # No reports at all.
    hidden(got["R4"])


def test_a_process_and_a_department_by_hand(app, office, lead_api):
    last = world.START + timedelta(days=27)
    with frozen_at(world.at(30)):
        service = indicators(lead_api, "process:service", 28, last)
        b = indicators(lead_api, f"department:{office['b']}", 28, last)
        small = indicators(lead_api, "department:" + str(office["a"]), 7, last)
    # Service events: p2's thread 2, p5's comment on it, p5's thread 6, p4's comment on it.
    assert service["population"] == 10
    shown(service["A1"], 0.3, 3, 10)
    shown(service["A3"], 0.3, 3, 10)
    # Two threads by two authors: too few people to show a response rate.
    hidden(service["R1"])
    hidden(service["R2"])
    # Department B: p5-p9, of whom p5 p6 p7 interacted.
    assert b["population"] == 5
    shown(b["A1"], 0.6, 3, 5)
    # Network figures per department need 10 people.
    for key in ("N1", "X1", "X2", "X4"):
        hidden(b[key])
    # Department A over the last week (days 21-27): nobody active; A1 is 0 of 5, shown.
    assert small["population"] == 5
    shown(small["A1"], 0.0, 0, 5)
    hidden(small["P3"])


def test_escalation_latency_by_hand(app, office):
    p = office["p"]
    at = world.at
    world.record(
        [
            Ev(at(2, 10), kinds.REPORT_RAISE.name, p[1], None, "service", obj=101),
            Ev(at(3, 10), kinds.REPORT_RESOLVE.name, p[2], None, "service", obj=101),  # 24 h
            Ev(at(4, 10), kinds.REPORT_RAISE.name, p[3], None, None, obj=102),
            Ev(at(4, 14), kinds.REPORT_RESOLVE.name, p[2], None, None, obj=102),  # 4 h
            Ev(at(5, 10), kinds.REPORT_RAISE.name, p[3], None, None, obj=103),  # open
        ]
    )
    with frozen_at(world.at(30)):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
        last = world.START + timedelta(days=27)
        org = indicators(api, "org", 28, last)
        service = indicators(api, "process:service", 28, last)
    shown(org["R4"], 14.0)
    assert org["R4"]["denominator"] == 2
    shown(service["R4"], 24.0)


def test_cohort_retention_by_hand(app, office):
    """T1: people whose first contribution fell in month m who contribute in month m+3, over
    the six latest months m whose month m+3 has ended by the end of ``at``."""
    p = office["p"]
    day = world.START  # 2026-03-02

    def on(d: date, hour: int = 10) -> Any:
        from datetime import UTC, datetime, time

        return datetime.combine(d, time(hour), UTC)

    # Cohort March 2026: p1 p2 p3 p4 p5 p6 first contribute in March; p1 p2 p3 contribute
    # again in June (March + 3), p4 in May only (not retained), p5 in July only.
    events = [Ev(on(day + timedelta(days=i)), PUBLISH, p[i + 1], None, None, 10 + i, 10 + i)
              for i in range(6)]  # fmt: skip
    events += [
        Ev(on(date(2026, 6, 3)), PUBLISH, p[1], None, None, 20, 20),
        Ev(on(date(2026, 6, 4)), PUBLISH, p[2], None, None, 21, 21),
        Ev(on(date(2026, 6, 30)), PUBLISH, p[3], None, None, 22, 22),
        Ev(on(date(2026, 5, 30)), PUBLISH, p[4], None, None, 23, 23),
        Ev(on(date(2026, 7, 1)), PUBLISH, p[5], None, None, 24, 24),
    ]
    world.record(events)
    with frozen_at(on(date(2026, 8, 2))):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
        july = indicators(api, "org", 90, date(2026, 7, 31))
        june = indicators(api, "org", 90, date(2026, 6, 29))
    # At 2026-07-31 the cohorts are 2026-04 back to 2025-11 (July, April + 3, has ended):
    # only March holds first contributions: 6 people, of whom p1 p2 p3 contributed in June.
    shown(july["T1"], 0.5, 3, 6)
    # At 2026-06-29 June has not ended: March is not a cohort yet; nothing to show.
    hidden(june["T1"])


def test_figures_are_kept_and_recomputed_when_their_world_changes(app, office, lead_api):
    from sqlalchemy import func, select, update

    from esn.accounts.models import User
    from esn.extensions import db
    from esn.usage.rollups import Figures

    last = world.START + timedelta(days=27)
    with frozen_at(world.at(30)):
        first = indicators(lead_api, "org", 28, last)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Figures)) == 1
        assert indicators(lead_api, "org", 28, last) == first  # served from what was kept
        # p9 leaves: the population is computed again, not read from the kept figures.
        db.session.execute(update(User).where(User.id == office["p"][9]).values(is_active=False))
        db.session.commit()
        after = indicators(lead_api, "org", 28, last)
    assert after["population"] == 9
    shown(after["A1"], 7 / 9, 7, 9)
