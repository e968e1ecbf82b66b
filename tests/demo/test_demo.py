"""The demo organisation: acted out through the product's actions, deterministic, and telling
the maturity story the README promises (different levels per process, readings that move)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from esn import access
from esn.accounts.models import User
from esn.demo.company import default_company
from esn.demo.simulate import Simulation
from esn.extensions import Base, db
from esn.governance.readings import Reading
from esn.social.models import Comment, Post, Reaction
from esn.usage.kinds import get
from esn.usage.models import UsageEvent
from tests.conftest import ApiClient

END = date(2026, 6, 30)
BLOCKING = {"fail", "missing", "insufficient_data", "stale_evidence"}


def _readings() -> list[tuple[Any, ...]]:
    rows = db.session.scalars(select(Reading).order_by(Reading.id))
    return [(r.measured_through, r.taken_at, r.content, r.facts) for r in rows]


def _events_by_kind() -> dict[str, int]:
    rows = db.session.execute(
        select(UsageEvent.kind, func.count()).group_by(UsageEvent.kind).order_by(UsageEvent.kind)
    )
    return {kind: n for kind, n in rows}


def _wipe() -> None:
    """Empty every table and restart the ids, as a new database would."""
    db.session.rollback()
    tables = [t for t in Base.metadata.sorted_tables if t.name != "alembic_version"]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        # Checked at commit, when every table is empty (departments refer to each other).
        db.session.execute(text("PRAGMA defer_foreign_keys = ON"))
        for table in reversed(tables):
            db.session.execute(table.delete())
        if db.session.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        ).first():
            db.session.execute(text("DELETE FROM sqlite_sequence"))
    db.session.commit()


def test_same_seed_same_readings(app: Flask) -> None:
    spec = default_company(60, 4)
    first = Simulation(spec, seed=11, end=END).run()
    readings, events = _readings(), _events_by_kind()
    assert len(readings) == 3 and first.counts["posts"] > 0

    _wipe()
    second = Simulation(spec, seed=11, end=END).run()
    assert second.counts == first.counts
    assert _events_by_kind() == events
    assert _readings() == readings

    _wipe()
    other = Simulation(spec, seed=12, end=END).run()
    assert other.counts != first.counts


def test_everything_went_through_the_actions(app: Flask) -> None:
    """Every row the simulation made has the usage event its action records, and every event
    is of a declared kind: nothing was written around the actions."""
    result = Simulation(default_company(60, 3), seed=5, end=END).run()
    events = _events_by_kind()
    for kind in events:
        get(kind)  # raises for an undeclared kind
    posts = db.session.scalar(select(func.count()).select_from(Post))
    comments = db.session.scalar(select(func.count()).select_from(Comment))
    reactions = db.session.scalar(select(func.count()).select_from(Reaction))
    # An album photo is published as a post of its own.
    photos = result.counts.get("photos", 0)
    assert photos > 0 and photos == events["photos:photo:upload"]
    assert posts == result.counts["posts"] + photos == events["social:post:publish"]
    assert comments == result.counts["comments"] == events["social:comment:create"]
    assert reactions == events["social:reaction:add"] - events.get("social:reaction:remove", 0)
    assert events["account:session:visit"] == result.counts["visits"]
    # Nobody answered or reacted to what the access policy would not show them (externals see
    # only their own groups).
    seen: dict[tuple[int, int], bool] = {}
    responses = [
        *db.session.execute(select(Comment.author_id, Comment.post_id)).tuples(),
        *db.session.execute(
            select(Reaction.user_id, Reaction.target_id).where(Reaction.target_type == "post")
        ).tuples(),
    ]
    for person_id, post_id in responses:
        if (person_id, post_id) not in seen:
            reader, post = db.session.get(User, person_id), db.session.get(Post, post_id)
            seen[person_id, post_id] = access.can(reader, "post:read", post)
        assert seen[person_id, post_id], (person_id, post_id)
    # Every event lies inside the simulated period (the clock was set for each action).
    first, last = db.session.execute(
        select(func.min(UsageEvent.occurred_at), func.max(UsageEvent.occurred_at))
    ).one()
    assert first.date() >= result.start
    assert last.date() <= date(2026, 7, 1)  # the last reading is taken the morning after


# SQLite only: the story is the simulation's and the model's (the same readings come from both
# databases: test_same_seed_same_readings and the telemetry reference tests run on PostgreSQL
# too), and on PostgreSQL this one test took four and a half minutes of the suite.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_story(app: Flask) -> None:
    """The default company, scaled down: the processes end at different levels, production
    lowest; the first and the last readings differ; every blocking gate explains itself."""
    result = Simulation(default_company(150, 12), seed=7, end=END).run()
    readings = [db.session.get(Reading, i) for i in result.reading_ids]
    assert len(readings) == 3
    first, last = (
        {p["process"]: p for p in r.content["processes"]}  # type: ignore[union-attr]
        for r in (readings[0], readings[-1])
    )
    levels = {p: v["level"] for p, v in last.items()}
    assert len(set(levels.values())) >= 2, levels
    assert levels["production"] == min(levels.values()), levels
    assert levels["marketing"] > levels["production"]
    assert any(first[p]["level"] != last[p]["level"] for p in last), (first, last)
    for process in last.values():
        for gate in process["blocking"]:
            assert gate["status"] in BLOCKING
            assert gate["level"] == process["level"] + 1
            if gate["status"] == "fail":
                assert gate["explanation"], gate


@pytest.fixture
def instance(app: Flask) -> Path:
    return Path(app.instance_path)


def test_generate_then_ensure_reuses(app: Flask, instance: Path) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=["demo", "generate", "--employees", "40", "--months", "3", "--end", "2026-03-31"]
    )
    assert made.exit_code == 0, made.output
    assert "reading" in made.output and "a governance lead" in made.output
    sign_ins = json.loads((instance / "demo-sign-ins.json").read_text())
    assert (instance / "demo-sign-ins.json").stat().st_mode & 0o077 == 0
    posts = db.session.scalar(select(func.count()).select_from(Post))

    again = runner.invoke(args=["demo", "ensure"])
    assert again.exit_code == 0, again.output
    assert "Generating" not in again.output and "a governance lead" in again.output
    assert db.session.scalar(select(func.count()).select_from(Post)) == posts
    refused = runner.invoke(args=["demo", "generate", "--employees", "40", "--months", "3"])
    assert refused.exit_code != 0 and "holds content already" in refused.output

    # The printed sign-in works, and the governance lead sees the three readings.
    lead = sign_ins["sign_ins"]["governance_lead"]
    api = ApiClient(app)
    assert api.sign_in(lead["email"], lead["password"]).status_code == 200
    listed = api.get("/api/v1/governance/readings")
    assert listed.status_code == 200, listed.get_json()
    assert len(listed.get_json()["items"]) == 3
