"""Building small worlds of people and usage events for the telemetry tests, through the
product's own event writer (``record_usage``) with chosen times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, update

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.directory.models import Department
from esn.extensions import db
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.recorder import record_usage
from esn.usage.rollup_job import ROLLUP_TABLES
from esn.usage.rollups import FillState
from tests.conftest import make_user
from tests.telemetry.reference import Ev, P

START = date(2026, 3, 2)  # a Monday: day 0 of every world
BEFORE = datetime.combine(START - timedelta(days=1), time(9), UTC)

PAYLOADS: dict[str, Any] = {
    kinds.POST_PUBLISH.name: lambda e: {"kind": "post", "is_question": e.question},
    kinds.COMMENT_CREATE.name: lambda e: {"is_reply": False, "on_question": False},
    kinds.REACTION_ADD.name: lambda e: {"reaction": "like", "target": "post"},
    kinds.MENTION.name: lambda e: {"source": "post"},
    kinds.FOLLOW.name: lambda e: {"target": "user"},
}


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(START + timedelta(days=day), time(hour, minute), UTC)


def make_departments(count: int) -> list[int]:
    with frozen_at(BEFORE):
        ids = []
        for i in range(count):
            dept = Department(code=f"D{i}", name=f"Department {i}")
            db.session.add(dept)
            db.session.flush()
            ids.append(dept.id)
        db.session.commit()
    return ids


def make_people(specs: list[dict[str, Any]]) -> list[User]:
    """People created the day before the world starts, without passwords (fast)."""
    with frozen_at(BEFORE):
        return [
            make_user(f"person{i}@example.org", password=None, **spec)
            for i, spec in enumerate(specs)
        ]


def person(user: User) -> P:
    return P(user.id, user.department_id, user.is_bot, user.is_external, user.time_zone)


def record(events: list[Ev]) -> None:
    users = {u.id: u for u in db.session.query(User)}
    for e in sorted(events, key=lambda e: e.at):
        payload = PAYLOADS.get(e.kind, lambda _: None)(e)
        record_usage(
            e.kind,
            users[e.actor] if e.actor is not None else None,
            owner_id=e.owner,
            process=e.process,
            thread_root_id=e.root,
            object_id=e.obj,
            object_type="post" if e.obj is not None else None,
            payload=payload,
            at=e.at,
        )
    db.session.commit()


def clear_events() -> None:
    """No events and no rollups (between examples of a property test)."""
    db.session.rollback()
    db.session.execute(delete(UsageEvent))
    for table in ROLLUP_TABLES:
        db.session.execute(delete(table))
    db.session.execute(delete(FillState))
    db.session.commit()


def set_people(users: list[User], attributes: list[dict[str, Any]]) -> None:
    db.session.rollback()
    for user, attrs in zip(users, attributes, strict=True):
        db.session.execute(update(User).where(User.id == user.id).values(**attrs))
    db.session.commit()
    for user in users:
        db.session.refresh(user)


def record_privacy(api: Any) -> None:
    response = api.put(
        "/api/v1/governance/privacy",
        json={
            "dpia_reference": "DPIA-2026-01",
            "works_council_consent_on": "2026-01-15",
            "works_council_reference": "WC-2026-03",
        },
    )
    assert response.status_code == 200, response.get_json()
