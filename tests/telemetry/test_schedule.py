"""The worker's telemetry pass: rollups up to yesterday, one scheduled reading a month, and
nothing at all without the privacy record."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from esn.clock import frozen_at
from esn.extensions import db
from esn.governance.readings import Reading
from esn.governance.telemetry_service import run_schedule
from esn.usage.rollup_job import FILL_STATE
from esn.usage.rollups import FillState, PersonDay
from tests.conftest import ApiClient, make_user
from tests.telemetry import world
from tests.telemetry.reference import Ev


def readings() -> list[tuple[str, object]]:
    db.session.rollback()
    return [
        (r.trigger, r.measured_through)
        for r in db.session.scalars(select(Reading).order_by(Reading.id))
    ]


def test_the_monthly_pass(app):
    with frozen_at(world.BEFORE):
        make_user("lead@example.org", roles=["employee", "governance_lead"])
    people = world.make_people([{}] * 6)
    world.record([Ev(world.at(d, 10), "account:session:visit", p.id) for d in range(5)
                  for p in people])  # fmt: skip

    with frozen_at(world.at(10)):
        assert run_schedule() == "off: no privacy record"
        assert db.session.scalar(select(func.count()).select_from(PersonDay)) == 0
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
        outcome = run_schedule()
    assert outcome.startswith("reading ")
    done = db.session.scalar(select(FillState.done_through).where(FillState.name == FILL_STATE))
    assert done == world.START + timedelta(days=9)  # yesterday
    assert readings() == [("schedule", world.START + timedelta(days=9))]

    with frozen_at(world.at(20)):  # the same month (March 2026): no second reading
        assert run_schedule() == "rollups built; this month's reading exists"
    with frozen_at(world.at(31)):  # April
        assert run_schedule().startswith("reading ")
    assert [t for t, _ in readings()] == ["schedule", "schedule"]


def test_the_schedule_can_be_off(app):
    app.config["READING_SCHEDULE"] = "off"
    with frozen_at(world.BEFORE):
        make_user("lead@example.org", roles=["employee", "governance_lead"])
    with frozen_at(world.at(10)):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
        assert run_schedule() == "rollups built"
    assert readings() == []
