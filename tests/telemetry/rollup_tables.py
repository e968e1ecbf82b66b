"""Helpers for the rollup job's tests: a busy little world over a few weeks, and every rollup
table dumped as sorted rows, so that two builds can be compared exactly."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, Table, select

from esn.extensions import db
from esn.usage import kinds
from esn.usage.rollup_job import FILL_STATE, ROLLUP_TABLES
from esn.usage.rollups import FillState
from tests.telemetry import world
from tests.telemetry.reference import Ev

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata"]
PROCESSES = [None, "innovation", "service", "marketing"]


def dump(engine: Engine) -> dict[str, Any]:
    """Every rollup table as its sorted rows, and the fill state's ``done_through``."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for model in ROLLUP_TABLES:
            table: Table = model.__table__  # type: ignore[assignment]
            rows = [tuple(row) for row in conn.execute(select(table))]
            out[table.name] = sorted(rows, key=repr)
        out["done_through"] = conn.scalar(
            select(FillState.done_through).where(FillState.name == FILL_STATE)
        )
    return out


def busy_world(days: int = 20, people: int = 9, seed: int = 11) -> dict[str, Any]:
    """Two departments, ``people`` people in four time zones (one bot, one external), and
    events on every day of ``days``: threads answered on later days, reactions, mentions,
    self-interactions, visits, follows and moderation reports raised and resolved on other
    days. Returns the people and the last day with events."""
    rng = random.Random(seed)
    a, b = world.make_departments(2)
    users = world.make_people(
        [
            {
                "department_id": (a, b)[i % 2],
                "time_zone": ZONES[i % len(ZONES)],
                "is_bot": i == people - 1,
                "is_external": i == people - 2,
            }
            for i in range(people)
        ]
    )
    ids = [u.id for u in users]
    events: list[Ev] = []
    roots: list[tuple[int, int, str | None]] = []
    next_id = 1
    for day in range(days):
        for _ in range(rng.randint(6, 14)):
            when = world.at(day, rng.randint(0, 23), rng.randint(0, 59))
            actor = rng.choice(ids)
            kind = rng.choice(
                ["post", "comment", "comment", "react", "mention", "visit", "follow", "self"]
            )
            process = rng.choice(PROCESSES)
            if kind == "post" or (not roots and kind in ("comment", "react", "self")):
                events.append(
                    Ev(
                        when,
                        kinds.POST_PUBLISH.name,
                        actor,
                        None,
                        process,
                        next_id,
                        next_id,
                        question=rng.random() < 0.3,
                    )
                )
                roots.append((next_id, actor, process))
                next_id += 1
            elif kind in ("comment", "react"):
                root, author, root_process = rng.choice(roots)
                name = kinds.COMMENT_CREATE.name if kind == "comment" else kinds.REACTION_ADD.name
                events.append(Ev(when, name, actor, author, root_process, root, root))
            elif kind == "self":
                root, author, root_process = rng.choice(roots)
                events.append(
                    Ev(when, kinds.COMMENT_CREATE.name, author, author, root_process, root)
                )
            elif kind == "mention":
                events.append(Ev(when, kinds.MENTION.name, actor, rng.choice(ids), process))
            elif kind == "visit":
                events.append(Ev(when, kinds.VISIT.name, actor))
            else:
                events.append(Ev(when, kinds.FOLLOW.name, actor, rng.choice(ids)))
        if day % 3 == 0:
            report = 1000 + day
            events.append(
                Ev(
                    world.at(day, 8),
                    kinds.REPORT_RAISE.name,
                    rng.choice(ids),
                    None,
                    rng.choice(PROCESSES),
                    obj=report,
                )
            )
            if day + 2 < days:
                events.append(
                    Ev(
                        world.at(day + 2, 9),
                        kinds.REPORT_RESOLVE.name,
                        ids[0],
                        None,
                        None,
                        obj=report,
                    )
                )
    world.record(events)
    db.session.commit()
    return {"people": users, "last_day": world.START + timedelta(days=days - 1), "days": days}


def first_event_day() -> date:
    """The day the rollups start from: people are created (an event) the day before START."""
    return world.BEFORE.date()
